//! The chat page, compiled into the binary so that `cargo run` serves it with no build
//! step and no network, and `config.json`, which tells the page where the API and the
//! realtime server are.

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

const INDEX: &str = include_str!("../web/index.html");
const APP: &str = include_str!("../web/app.js");
const REALTIME: &str = include_str!("../web/realtime.js");
const STYLE: &str = include_str!("../web/style.css");

/// The page runs only its own files: no inline script or style, no other origin's
/// script, no framing. It may call the API and the realtime server wherever the
/// configuration puts them (another origin when deployed), so `connect-src` stays open
/// to HTTPS and WebSocket origins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self' https: wss: ws:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")],
        body,
    )
        .into_response()
}

/// `/`, its scripts and style, and `config.json` with `page_config` in it.
pub fn router(page_config: Value) -> Router {
    let config = page_config.to_string();
    Router::new()
        .route(
            "/",
            get(|| async { file("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/index.html",
            get(|| async { file("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/app.js",
            get(|| async { file("text/javascript; charset=utf-8", APP) }),
        )
        .route(
            "/realtime.js",
            get(|| async { file("text/javascript; charset=utf-8", REALTIME) }),
        )
        .route(
            "/style.css",
            get(|| async { file("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/config.json",
            get(move || {
                let config = config.clone();
                async move {
                    (
                        [
                            (CONTENT_TYPE, "application/json"),
                            (CACHE_CONTROL, "no-cache"),
                        ],
                        config,
                    )
                        .into_response()
                }
            }),
        )
        .layer(axum::middleware::map_response(security_headers))
}
