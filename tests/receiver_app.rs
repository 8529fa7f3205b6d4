//! The receivers wired into the whole app: spans sent over gRPC show up as accepted in the
//! API's /metrics, and the app stops (receivers, then draining workers) on request.

mod receiver_support;

use bytes::Bytes;
use receiver_support::*;
use std::sync::Arc;
use verdict::receiver::loadgen::client::RawOtlpClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_app_and_it_stops_cleanly() {
    let mut config = verdict::config::Config::default();
    config.receivers.grpc_addr = "127.0.0.1:0".into();
    config.receivers.http_addr = "127.0.0.1:0".into();
    config.api.addr = "127.0.0.1:0".into();
    let dir = tempfile::tempdir().unwrap();
    config.alerting.store_path = dir.path().join("alerts");
    config.judge.decision_log = dir
        .path()
        .join("decisions.jsonl")
        .to_string_lossy()
        .into_owned();
    let app = verdict::app::start(config, vec![], Arc::new(verdict::clock::SystemClock))
        .await
        .unwrap();
    let mut c = RawOtlpClient::connect(&format!("http://{}", app.grpc_addr))
        .await
        .unwrap();
    let body = encode(&request(
        svc("cart", "1.0"),
        vec![span(1), span(2), span(3)],
    ));
    assert_eq!(c.export_traces(Bytes::from(body)).await.unwrap(), 0);
    let metrics = reqwest::get(format!("http://{}/metrics", app.api_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "verdict_receiver_accepted_items_total{transport=\"grpc\",signal=\"traces\"} 3"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("verdict_ingest_queue_capacity_items"),
        "{metrics}"
    );
    // A scraper that accepts gzip (Prometheus does) gets the page compressed as rendered.
    let resp = reqwest::Client::new()
        .get(format!("http://{}/metrics", app.api_addr))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let body = resp.bytes().await.unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text).unwrap();
    assert!(
        text.contains(
            "verdict_receiver_accepted_items_total{transport=\"grpc\",signal=\"traces\"} 3"
        ),
        "{text}"
    );
    tokio::time::timeout(std::time::Duration::from_secs(15), app.stop())
        .await
        .expect("app stops");
}
