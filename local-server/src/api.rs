//! The four routes at API Gateway's paths, each handed to the library's [`Endpoint`].

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, Request, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use secret_rooms::http::{ApiError, ApiRequest, ApiResponse, Endpoint, new_request_id};
use std::sync::Arc;

pub struct Endpoints {
    pub create_user: Endpoint,
    pub connect: Endpoint,
    pub send_message: Endpoint,
    pub channel_auth: Endpoint,
}

type Shared = Arc<Endpoints>;

pub fn router(endpoints: Endpoints) -> Router {
    Router::new()
        .route(
            "/users/create",
            post(create_user).fallback(method_not_allowed),
        )
        .route(
            "/users/{public_id}/connect",
            post(connect).fallback(method_not_allowed),
        )
        .route(
            "/rooms/{room_id}/message",
            post(send_message).fallback(method_not_allowed),
        )
        .route(
            "/pusher/auth",
            post(channel_auth).fallback(method_not_allowed),
        )
        .with_state(Arc::new(endpoints))
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

type Param = Result<Path<String>, PathRejection>;
type RawBody = Result<Bytes, BytesRejection>;

type Pick = fn(&Endpoints) -> &Endpoint;

/// Hand the raw pieces to the endpoint. The edge's own failures (a path segment that is
/// not UTF-8 once decoded, an unreadable or oversize body) get the API's JSON shape too.
///
/// The request runs to completion in a task of its own, as an invocation does on Lambda:
/// a client that hangs up does not cut it off between its publish and its log line.
async fn respond(
    endpoints: Shared,
    pick: Pick,
    param: Option<Param>,
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
        // An undecodable segment reaches the library as an empty one, which it refuses
        // with the route's own error code.
        path_param: param.map(|p| p.map(|Path(p)| p).unwrap_or_default()),
        content_type: headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body.to_vec(),
    };
    let request_id = new_request_id();
    let id = request_id.clone();
    let task = tokio::spawn(async move { pick(&endpoints).respond(&request, &id).await });
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

async fn create_user(State(e): State<Shared>, headers: HeaderMap, body: RawBody) -> Response {
    respond(e, |e| &e.create_user, None, &headers, body).await
}

async fn connect(
    State(e): State<Shared>,
    id: Param,
    headers: HeaderMap,
    body: RawBody,
) -> Response {
    respond(e, |e| &e.connect, Some(id), &headers, body).await
}

async fn send_message(
    State(e): State<Shared>,
    id: Param,
    headers: HeaderMap,
    body: RawBody,
) -> Response {
    respond(e, |e| &e.send_message, Some(id), &headers, body).await
}

async fn channel_auth(State(e): State<Shared>, headers: HeaderMap, body: RawBody) -> Response {
    respond(e, |e| &e.channel_auth, None, &headers, body).await
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
    error(
        404,
        "not_found",
        "No such route. The API is POST /users/create, POST /users/{publicId}/connect, POST /rooms/{roomId}/message and POST /pusher/auth.",
    )
}

/// Any origin may call the local API, as the SAM template's CORS allows by default.
pub async fn cors(request: Request, next: Next) -> Response {
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
    response
        .headers_mut()
        .insert("access-control-allow-origin", HeaderValue::from_static("*"));
    response
}
