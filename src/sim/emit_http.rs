//! The HTTP client the simulator's OTLP/HTTP exporters use: reqwest driven on the Tokio
//! runtime. The SDK's batch processor exports from its own thread with a plain executor,
//! where reqwest's async client finds no reactor; each request is spawned onto the runtime
//! captured at build time and its result awaited from there.

use bytes::Bytes;
use http::{Request, Response};
use opentelemetry_http::{HttpClient, HttpError};
use std::future::Future;
use std::pin::Pin;

/// reqwest on a captured Tokio runtime handle.
#[derive(Debug, Clone)]
pub(super) struct RuntimeHttpClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl RuntimeHttpClient {
    /// Captures the current runtime (call inside one).
    pub(super) fn current() -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        Some(Self {
            client: reqwest::Client::new(),
            runtime,
        })
    }
}

async fn send(
    client: reqwest::Client,
    request: Request<Bytes>,
) -> Result<Response<Bytes>, HttpError> {
    let request = reqwest::Request::try_from(request)?;
    let response = client.execute(request).await?;
    let mut out = Response::builder().status(response.status());
    for (k, v) in response.headers() {
        out = out.header(k, v);
    }
    let body = response.bytes().await?;
    Ok(out.body(body)?)
}

impl HttpClient for RuntimeHttpClient {
    fn send_bytes<'life0, 'async_trait>(
        &'life0 self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let task = self.runtime.spawn(send(self.client.clone(), request));
        Box::pin(async move { task.await? })
    }
}
