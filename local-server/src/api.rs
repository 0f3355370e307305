//! The library's route table at API Gateway's paths, each route served by its handler.

use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, RawPathParamsRejection};
use axum::extract::{ConnectInfo, RawPathParams, Request, State};
use axum::http::header::{CONTENT_TYPE, HOST, ORIGIN, RETRY_AFTER, VARY};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use secret_rooms::http::{
    ApiError, ApiRequest, ApiResponse, Endpoint, Handler, Route, new_request_id,
};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Every route of the library's route table at its path, each served by its handler.
pub fn router(endpoints: Vec<Endpoint>) -> Router {
    endpoints
        .into_iter()
        .fold(Router::new(), |router, endpoint| {
            let route = endpoint.route();
            let endpoint = Arc::new(endpoint);
            let handler = move |peer: Peer, params: Params, headers: HeaderMap, body: RawBody| async move {
                // An undecodable segment reaches the library as an empty one, which it
                // refuses with the route's own error code.
                let param = route.path_param().map(|name| match &params {
                    Ok(params) => params
                        .iter()
                        .find(|(key, _)| *key == name)
                        .map_or_else(String::new, |(_, value)| value.to_owned()),
                    Err(_) => String::new(),
                });
                let source = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
                respond(endpoint, param, source, &headers, body).await
            };
            router.route(route.path(), post(handler).fallback(method_not_allowed))
        })
}

fn to_response(api: ApiResponse) -> Response {
    let mut response = match api.body {
        Some(body) => (
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body.to_string(),
        )
            .into_response(),
        None => Body::empty().into_response(),
    };
    *response.status_mut() =
        StatusCode::from_u16(api.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(seconds) = api.retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

type Params = Result<RawPathParams, RawPathParamsRejection>;
/// The TCP peer (the per-address create limit counts it), present when the server is
/// served with connect info, as `start` does.
type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;
type RawBody = Result<Bytes, BytesRejection>;

/// Hand the raw pieces to the endpoint. The edge's own failures (an unreadable or
/// oversize body) get the API's JSON shape too.
///
/// The request runs to completion in a task of its own, as an invocation does on Lambda:
/// a client that hangs up does not cut it off between its publish and its log line.
async fn respond(
    endpoint: Arc<Endpoint>,
    path_param: Option<String>,
    source: Option<IpAddr>,
    headers: &HeaderMap,
    body: RawBody,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(e) => {
            let message = "The request body could not be read (it may be over the size limit).";
            return error(e.status().as_u16(), "malformed_body", message);
        }
    };
    let request = ApiRequest {
        method: "POST".into(),
        path: String::new(),
        path_param,
        content_type: headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body.to_vec(),
        source,
    };
    let request_id = new_request_id();
    let id = request_id.clone();
    let task = tokio::spawn(async move { endpoint.respond(&request, &id).await });
    match task.await {
        Ok(response) => to_response(response),
        Err(e) => {
            tracing::error!(request_id, error = %e, status = 500, "request");
            to_response(ApiResponse::from_error(
                &ApiError::internal(&e),
                &request_id,
            ))
        }
    }
}

fn error(status: u16, code: &'static str, message: &str) -> Response {
    to_response(ApiResponse::from_error(
        &ApiError::new(status, code, message),
        "",
    ))
}

pub async fn method_not_allowed() -> Response {
    error(405, "method_not_allowed", "This route takes POST only.")
}

pub async fn not_found() -> Response {
    let routes: Vec<&str> = Route::ALL.iter().map(|r| r.key()).collect();
    let (last, others) = routes.split_last().unwrap_or((&"", &[]));
    let message = format!(
        "No such route. The API is {} and {last}.",
        others.join(", ")
    );
    error(404, "not_found", &message)
}

/// Any origin may call the local API, as the SAM template's CORS allows by default.
/// Which browser origins may call the API and open realtime connections.
#[derive(Clone, Debug, Default)]
pub enum Origins {
    /// Any (the default, for local development).
    #[default]
    Any,
    /// This server's own origin and these (`scheme://host[:port]`).
    Only(Arc<[String]>),
}

/// CORS, and the Origin allow-list: a browser request (one with an `Origin` header) from
/// an origin not on the list is refused with 403 before it reaches a route, WebSocket
/// upgrades included. Requests without `Origin` (curl, servers, the REST publishes) and
/// same-origin ones always pass.
pub async fn cors(State(origins): State<Origins>, request: Request, next: Next) -> Response {
    let origin = request
        .headers()
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let host = request
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let allow = match (&origins, &origin) {
        (Origins::Any, _) => Some(HeaderValue::from_static("*")),
        (Origins::Only(_), None) => None,
        (Origins::Only(list), Some(origin)) => {
            let same = origin
                .split_once("://")
                .is_some_and(|(_, rest)| rest == host);
            if !same && !list.iter().any(|o| o == origin) {
                return error(
                    403,
                    "origin_not_allowed",
                    "This server does not accept requests from this page's origin.",
                );
            }
            HeaderValue::from_str(origin).ok()
        }
    };
    let mut response = if request.method() == Method::OPTIONS {
        let mut preflight = StatusCode::NO_CONTENT.into_response();
        let headers = preflight.headers_mut();
        headers.insert(
            "access-control-allow-methods",
            HeaderValue::from_static("POST, OPTIONS"),
        );
        headers.insert(
            "access-control-allow-headers",
            HeaderValue::from_static("content-type"),
        );
        headers.insert("access-control-max-age", HeaderValue::from_static("600"));
        preflight
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    if let Some(allow) = allow {
        headers.insert("access-control-allow-origin", allow);
    }
    if matches!(origins, Origins::Only(_)) {
        headers.insert(VARY, HeaderValue::from_static("origin"));
    }
    response
}
