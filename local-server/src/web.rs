//! The chat page, compiled into the binary so that `cargo run` serves it with no build
//! step and no network, and `config.json`, which tells the page where the API and the
//! realtime server are.

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The page's files by path: its own (`web/`), and the client library's modules
/// (`clients/js/src/`) under `/client/`, on which the page is a view.
const FILES: &[(&str, &str, &str)] = &[
    ("/", HTML, include_str!("../web/index.html")),
    ("/index.html", HTML, include_str!("../web/index.html")),
    ("/style.css", CSS, include_str!("../web/style.css")),
    ("/app.js", JS, include_str!("../web/app.js")),
    ("/config.js", JS, include_str!("../web/config.js")),
    ("/upgrade.js", JS, include_str!("../web/upgrade.js")),
    ("/realtime.js", JS, include_str!("../web/realtime.js")),
    ("/view/dom.js", JS, include_str!("../web/view/dom.js")),
    (
        "/view/identity.js",
        JS,
        include_str!("../web/view/identity.js"),
    ),
    ("/view/rooms.js", JS, include_str!("../web/view/rooms.js")),
    ("/view/chat.js", JS, include_str!("../web/view/chat.js")),
    (
        "/view/presence.js",
        JS,
        include_str!("../web/view/presence.js"),
    ),
    (
        "/client/index.js",
        JS,
        include_str!("../../clients/js/src/index.js"),
    ),
    (
        "/client/client.js",
        JS,
        include_str!("../../clients/js/src/client.js"),
    ),
    (
        "/client/e2e1.js",
        JS,
        include_str!("../../clients/js/src/e2e1.js"),
    ),
    (
        "/client/bytes.js",
        JS,
        include_str!("../../clients/js/src/bytes.js"),
    ),
    (
        "/client/e2e2.js",
        JS,
        include_str!("../../clients/js/src/e2e2.js"),
    ),
    (
        "/client/sessions.js",
        JS,
        include_str!("../../clients/js/src/sessions.js"),
    ),
    (
        "/client/storage.js",
        JS,
        include_str!("../../clients/js/src/storage.js"),
    ),
];

/// The page runs only its own files: no inline script or style, no other origin's
/// script, no framing. It may connect only to this server and to the realtime server its
/// `config.json` names, so that a link with other realtime settings in its address
/// cannot make it talk to another server.
pub fn content_security_policy(page_config: &Value) -> String {
    let mut connect = vec!["'self'".to_owned()];
    let api = page_config["apiBase"].as_str().unwrap_or_default();
    if !api.is_empty() {
        connect.push(api.trim_end_matches('/').to_owned());
    }
    let pusher = &page_config["pusher"];
    if let Some(host) = pusher["wsHost"].as_str() {
        let scheme = if pusher["forceTLS"].as_bool() == Some(false) {
            "ws"
        } else {
            "wss"
        };
        match pusher["wsPort"].as_u64() {
            Some(port) => connect.push(format!("{scheme}://{host}:{port}")),
            None => connect.push(format!("{scheme}://{host}")),
        }
    } else if let Some(cluster) = pusher["cluster"].as_str() {
        connect.push(format!("wss://ws-{cluster}.pusher.com"));
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src {}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        connect.join(" ")
    )
}

fn security_headers(csp: HeaderValue) -> impl Fn(Response) -> std::future::Ready<Response> + Clone {
    move |mut response: Response| {
        let headers = response.headers_mut();
        headers.insert("content-security-policy", csp.clone());
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
            ("cross-origin-opener-policy", "same-origin"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        std::future::ready(response)
    }
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
    // Only printable ASCII goes into the policy (hosts, ports, URLs); anything else in a
    // configured host falls back to this server alone.
    let csp = HeaderValue::from_str(&content_security_policy(&page_config)).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        )
    });
    let mut router = Router::new();
    for &(path, content_type, body) in FILES {
        router = router.route(path, get(move || async move { file(content_type, body) }));
    }
    router
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
        .layer(axum::middleware::map_response(security_headers(csp)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn connect_src(config: Value) -> String {
        let csp = content_security_policy(&config);
        let directive = csp
            .split("; ")
            .find(|d| d.starts_with("connect-src "))
            .unwrap_or_default();
        directive.trim_start_matches("connect-src ").to_owned()
    }

    #[test]
    fn the_page_may_connect_only_where_its_configuration_says() {
        // The embedded realtime server: this origin alone.
        let local = json!({"apiBase": "", "pusher": {"key": "k", "sameOrigin": true}});
        assert_eq!(connect_src(local), "'self'");
        // Pusher itself, by cluster.
        let pusher = json!({"apiBase": "", "pusher": {"key": "k", "cluster": "eu"}});
        assert_eq!(connect_src(pusher), "'self' wss://ws-eu.pusher.com");
        // A self-hosted server, without TLS, and an API elsewhere.
        let hosted = json!({"apiBase": "https://api.example/", "pusher": {"key": "k",
            "wsHost": "ws.example", "wsPort": 6001, "forceTLS": false}});
        assert_eq!(
            connect_src(hosted),
            "'self' https://api.example ws://ws.example:6001"
        );
    }

    /// Every module the page loads imports only modules served here: a file the
    /// library gains is served too, or the page would not start.
    #[test]
    fn every_relative_import_of_a_served_module_is_served() {
        let served: Vec<&str> = FILES.iter().map(|&(path, _, _)| path).collect();
        let mut imports = 0;
        for &(path, content_type, body) in FILES {
            if content_type != JS {
                continue;
            }
            let folder = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            for line in body.lines() {
                let line = line.trim_start();
                if !(line.starts_with("import ") || line.starts_with("export ")) {
                    continue;
                }
                let Some(from) = line.split(" from \"").nth(1) else {
                    continue;
                };
                let target = from.split('"').next().unwrap_or_default();
                let resolved = if let Some(relative) = target.strip_prefix("./") {
                    format!("{folder}{relative}")
                } else if let Some(relative) = target.strip_prefix("../") {
                    let parent = folder.trim_end_matches('/');
                    let up = &parent[..parent.rfind('/').map_or(0, |i| i + 1)];
                    format!("{up}{relative}")
                } else {
                    continue;
                };
                imports += 1;
                assert!(
                    served.contains(&resolved.as_str()),
                    "{path} imports {target}, which is not served"
                );
            }
        }
        assert!(imports > 10, "{imports} imports read: the parse found them");
    }
}
