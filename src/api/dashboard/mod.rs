//! The live dashboard: one self-contained page served at `GET /` on the API address, its
//! scripts and stylesheet embedded in the binary. The page polls the JSON API
//! (deployments, services, graph, alerts) and builds its DOM from text nodes only.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// Scripts may only come from this origin; no inline script or handler ever runs, so even a
/// markup slip could not execute telemetry-supplied text.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file: its URL path, content type and bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/dashboard/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/style.css"),
    },
    Asset {
        path: "/dashboard/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/app.js"),
    },
    Asset {
        path: "/dashboard/util.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/util.js"),
    },
    Asset {
        path: "/dashboard/data.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/data.js"),
    },
    Asset {
        path: "/dashboard/list.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/list.js"),
    },
    Asset {
        path: "/dashboard/detail.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/detail.js"),
    },
    Asset {
        path: "/dashboard/charts.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/charts.js"),
    },
    Asset {
        path: "/dashboard/graph.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/graph.js"),
    },
    Asset {
        path: "/dashboard/layout.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/layout.js"),
    },
];

const INDEX: &str = include_str!("assets/index.html");

/// `GET /` (the page) and `GET /dashboard/*` (its assets). Works with any router state.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new().route(
        "/",
        get(|| async { respond("text/html; charset=utf-8", INDEX) }),
    );
    for a in ASSETS {
        router = router.route(
            a.path,
            get(move || async move { respond(a.content_type, a.body) }),
        );
    }
    router
}

fn respond(content_type: &'static str, body: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    async fn get_path(path: &str) -> Response {
        let app: Router = routes();
        app.oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn index_and_every_asset_are_served_with_csp() {
        for path in std::iter::once("/").chain(ASSETS.iter().map(|a| a.path)) {
            let res = get_path(path).await;
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            assert_eq!(
                res.headers()[header::CONTENT_SECURITY_POLICY],
                CSP,
                "{path}"
            );
        }
    }

    #[test]
    fn every_module_the_page_imports_is_embedded() {
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            for line in a.body.lines().filter(|l| l.starts_with("import ")) {
                let file = line
                    .rsplit("'./")
                    .next()
                    .and_then(|r| r.split('\'').next())
                    .unwrap();
                let path = format!("/dashboard/{file}");
                assert!(
                    ASSETS.iter().any(|x| x.path == path),
                    "{} imports {path}, not embedded",
                    a.path
                );
            }
        }
    }

    #[test]
    fn no_script_writes_markup() {
        for a in ASSETS {
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                let uses = a
                    .body
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .any(|l| l.contains(sink));
                assert!(!uses, "{} uses {sink}", a.path);
            }
        }
    }
}
