//! The HTTP edge, independent of how requests arrive: parse the request into domain
//! types, call one domain operation, map the result to a response.

pub mod endpoint;
pub mod errors;
pub mod routes;

use crate::domain::{PrivateId, PublicId, RoomId};
pub use endpoint::{Endpoint, Wiring};
pub use errors::ApiError;
pub use routes::Route;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::future::Future;

/// A request as the edge sees it, whatever carried it (API Gateway, a local server).
#[derive(Debug, Default)]
pub struct ApiRequest {
    pub method: String,
    /// The raw path, used to find the path parameter when none was given.
    pub path: String,
    /// The route's one path parameter, when the router already extracted it.
    pub path_param: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// The client's address (API Gateway's `sourceIp`, the local server's peer), for
    /// the per-address create limit; never logged.
    pub source: Option<std::net::IpAddr>,
}

/// A response: status, JSON body (none for 204) and headers beyond content-type.
#[derive(Debug, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Option<Value>,
    pub retry_after: Option<u32>,
}

impl ApiResponse {
    fn ok(status: u16, body: Option<Value>) -> Self {
        Self {
            status,
            body,
            retry_after: None,
        }
    }

    /// The error body of the SPEC; a 5xx also carries the request id of its log line.
    pub fn from_error(e: &ApiError, request_id: &str) -> Self {
        let mut error = json!({"code": e.code, "message": e.message});
        if e.status >= 500 {
            error["requestId"] = json!(request_id);
        }
        Self {
            status: e.status,
            body: Some(json!({ "error": error })),
            retry_after: e.retry_after,
        }
    }
}

/// One route's request handling, whatever carries the requests: each Lambda function
/// runs one, monomorphized over its concrete store (so that a binary holds only the
/// code its route calls), and the local server and the tests run the same handlers over
/// `dyn Store` (through [`Endpoint`]).
pub trait Handler: Send + Sync {
    /// The route this handler serves (its entry in the route table).
    fn route(&self) -> Route;

    fn handle(
        &self,
        req: &ApiRequest,
    ) -> impl Future<Output = Result<ApiResponse, ApiError>> + Send;

    /// Open the connections the route will use (see `Store::warm_up`).
    fn warm_up(&self) -> impl Future<Output = ()> + Send;
}

/// Handle a request end to end: errors become their JSON answer, and the request gets
/// its one log line (never a private id, key or message text).
pub async fn respond<H: Handler + ?Sized>(
    handler: &H,
    req: &ApiRequest,
    request_id: &str,
) -> ApiResponse {
    let started = std::time::Instant::now();
    let result = if req.method.eq_ignore_ascii_case("POST") {
        handler.handle(req).await
    } else {
        Err(ApiError::new(
            405,
            "method_not_allowed",
            format!("{} takes POST only.", handler.route().key()),
        ))
    };
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let route = handler.route().key();
    match result {
        Ok(response) => {
            tracing::info!(
                request_id,
                route,
                status = response.status,
                latency_ms,
                "request"
            );
            response
        }
        Err(e) => {
            let response = ApiResponse::from_error(&e, request_id);
            let (status, error_code) = (e.status, e.code);
            match &e.detail {
                Some(error) => tracing::error!(
                    request_id, route, status, latency_ms, error_code, error, "request"
                ),
                None => {
                    tracing::info!(request_id, route, status, latency_ms, error_code, "request")
                }
            }
            response
        }
    }
}

/// A request id for logs when the platform gave none: 16 random hex characters.
pub fn new_request_id() -> String {
    // A constant id is still an id; the random source failing here is not worth a 500.
    crate::domain::random::hex(8).unwrap_or_else(|_| "0000000000000000".to_owned())
}

/// The path parameter, from the router or else from the path's segment after
/// `collection` (`users` or `rooms`; a stage prefix before it is allowed).
fn path_param<'a>(req: &'a ApiRequest, collection: &str) -> &'a str {
    if let Some(p) = &req.path_param {
        return p;
    }
    let segments: Vec<&str> = req.path.split('/').collect();
    segments
        .windows(2)
        .rev()
        .find(|w| w[0] == collection)
        .map_or("", |w| w[1])
}

pub(crate) fn parse_public_id(s: &str) -> Result<PublicId, ApiError> {
    PublicId::parse(s).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_public_id",
            "A public id is six digits written ###-###, like 123-456.",
        )
    })
}

pub(crate) fn parse_room_id(s: &str) -> Result<RoomId, ApiError> {
    RoomId::parse(s).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_room_id",
            "That is not a room id; use the roomId that connect returned.",
        )
    })
}

pub(crate) fn parse_private_id(s: &str) -> Result<PrivateId, ApiError> {
    PrivateId::parse(s).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_private_id",
            "privateId must be the 43-character secret that POST /users/create returned.",
        )
    })
}

/// The media type without parameters, lower-cased; `None` when absent.
fn media_type(req: &ApiRequest) -> Option<String> {
    req.content_type.as_deref().map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

/// JSON bodies are read as JSON whatever their content type: `curl -d` sends a form
/// type and a browser's plain `fetch` sends text/plain, and both mean JSON here.
pub(crate) fn parse_json<T: DeserializeOwned>(req: &ApiRequest) -> Result<T, ApiError> {
    decode_json(&req.body)
}

fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "malformed_body",
            "The request needs a JSON body.",
        ));
    }
    let invalid = |e: serde_json::Error| {
        ApiError::bad_request(
            "malformed_body",
            format!("The JSON body is not valid: {e}."),
        )
    };
    // An object, and only an object: serde would also fill a struct from an array.
    let value: Value = serde_json::from_slice(body).map_err(invalid)?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "malformed_body",
            "The body must be a JSON object.",
        ));
    }
    serde_json::from_value(value).map_err(invalid)
}

/// `/pusher/auth` takes pusher-js's form encoding, or JSON; a body that starts with
/// `{` is JSON unless declared a form.
pub(crate) fn parse_form_or_json<T: DeserializeOwned>(req: &ApiRequest) -> Result<T, ApiError> {
    let is_form = match media_type(req).as_deref() {
        Some("application/x-www-form-urlencoded") => true,
        Some("application/json") => false,
        _ => !req.body.trim_ascii_start().starts_with(b"{"),
    };
    if is_form {
        serde_urlencoded::from_bytes(&req.body).map_err(|e| {
            ApiError::bad_request(
                "malformed_body",
                format!("The form body is not valid: {e}."),
            )
        })
    } else {
        decode_json(&req.body)
    }
}

#[cfg(test)]
mod tests {
    use super::{ApiRequest, path_param};

    #[test]
    fn path_parameters_come_from_the_router_or_the_path() {
        let routed = ApiRequest {
            path_param: Some("123-456".into()),
            ..Default::default()
        };
        assert_eq!(path_param(&routed, "users"), "123-456");
        for path in ["/users/123-456/connect", "/prod/users/123-456/connect"] {
            let raw = ApiRequest {
                path: path.into(),
                ..Default::default()
            };
            assert_eq!(path_param(&raw, "users"), "123-456", "{path}");
        }
        let none = ApiRequest {
            path: "/rooms".into(),
            ..Default::default()
        };
        assert_eq!(path_param(&none, "rooms"), "");
    }
}
