//! The HTTP edge, independent of how requests arrive: parse the request into domain
//! types, call one domain operation, map the result to a response.

pub mod errors;
pub mod lambda;

use crate::domain::channels::authorize_channel;
use crate::domain::messages::{Message, RateLimit, send_message};
use crate::domain::rooms::{RoomKey, connect};
use crate::domain::users::{IdPolicy, create_user};
use crate::domain::{PrivateId, PublicId, RoomId};
use crate::realtime::Realtime;
use crate::realtime::pusher::{PusherCredentials, SocketId};
use crate::store::Store;
pub use errors::ApiError;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;

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
}

/// A response: status, JSON body (none for 204) and headers beyond content-type.
#[derive(Debug, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Option<Value>,
    pub retry_after: Option<u32>,
    /// The error code, for the request's log line.
    pub error_code: Option<&'static str>,
}

impl ApiResponse {
    fn ok(status: u16, body: Option<Value>) -> Self {
        Self {
            status,
            body,
            retry_after: None,
            error_code: None,
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
            error_code: Some(e.code),
        }
    }
}

/// One route with what it needs, built once at start-up.
pub enum Endpoint {
    CreateUser {
        store: Arc<dyn Store>,
        ids: IdPolicy,
    },
    Connect {
        store: Arc<dyn Store>,
        room_key: RoomKey,
    },
    SendMessage {
        store: Arc<dyn Store>,
        realtime: Arc<dyn Realtime>,
        rate: RateLimit,
    },
    ChannelAuth {
        store: Arc<dyn Store>,
        credentials: PusherCredentials,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConnectBody {
    private_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MessageBody {
    private_id: String,
    message: String,
}

/// What pusher-js sends; other parameters a client adds are ignored.
#[derive(Deserialize)]
struct ChannelAuthBody {
    socket_id: String,
    channel_name: String,
    #[serde(rename = "privateId")]
    private_id: String,
}

impl Endpoint {
    /// The route as API Gateway names it, for logs.
    pub fn route(&self) -> &'static str {
        match self {
            Self::CreateUser { .. } => "POST /users/create",
            Self::Connect { .. } => "POST /users/{publicId}/connect",
            Self::SendMessage { .. } => "POST /rooms/{roomId}/message",
            Self::ChannelAuth { .. } => "POST /pusher/auth",
        }
    }

    /// The name of the route's path parameter, if it has one.
    pub fn path_param_name(&self) -> Option<&'static str> {
        match self {
            Self::Connect { .. } => Some("publicId"),
            Self::SendMessage { .. } => Some("roomId"),
            _ => None,
        }
    }

    /// The path parameter, from the router or else from the path's segment after
    /// `users`/`rooms` (a stage prefix before them is allowed).
    fn path_param<'a>(&self, req: &'a ApiRequest) -> &'a str {
        if let Some(p) = &req.path_param {
            return p;
        }
        let segments: Vec<&str> = req.path.split('/').collect();
        let collection = match self {
            Self::Connect { .. } => "users",
            Self::SendMessage { .. } => "rooms",
            _ => return "",
        };
        segments
            .windows(2)
            .rev()
            .find(|w| w[0] == collection)
            .map_or("", |w| w[1])
    }

    pub async fn handle(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        if !req.method.eq_ignore_ascii_case("POST") {
            return Err(ApiError::new(
                405,
                "method_not_allowed",
                format!("{} takes POST only.", self.route()),
            ));
        }
        match self {
            Self::CreateUser { store, ids } => {
                // No body or `{}`: nothing else is meant, so nothing else is taken.
                if !req.body.is_empty() {
                    let body: Value = parse_json(req)?;
                    if body.as_object().is_none_or(|o| !o.is_empty()) {
                        return Err(ApiError::bad_request(
                            "malformed_body",
                            "POST /users/create takes an empty body or {}.",
                        ));
                    }
                }
                let user = create_user(store.as_ref(), *ids).await?;
                Ok(ApiResponse::ok(
                    201,
                    Some(json!({
                        "publicId": user.public_id.to_string(),
                        "privateId": user.private_id.expose(),
                        "username": user.username,
                    })),
                ))
            }
            Self::Connect { store, room_key } => {
                let target = parse_public_id(self.path_param(req))?;
                let body: ConnectBody = parse_json(req)?;
                let me = parse_private_id(&body.private_id)?;
                let room = connect(store.as_ref(), room_key, &me, target).await?;
                Ok(ApiResponse::ok(
                    200,
                    Some(json!({"roomId": room.as_str(), "channel": room.channel()})),
                ))
            }
            Self::SendMessage {
                store,
                realtime,
                rate,
            } => {
                let room = parse_room_id(self.path_param(req))?;
                let body: MessageBody = parse_json(req)?;
                let sender = parse_private_id(&body.private_id)?;
                let message = Message::parse(body.message)?;
                send_message(
                    store.as_ref(),
                    realtime.as_ref(),
                    *rate,
                    &room,
                    &sender,
                    &message,
                )
                .await?;
                Ok(ApiResponse::ok(204, None))
            }
            Self::ChannelAuth { store, credentials } => {
                let body: ChannelAuthBody = parse_form_or_json(req)?;
                let socket_id = SocketId::parse(&body.socket_id).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_socket_id",
                        "socket_id must be digits.digits, as Pusher assigns it.",
                    )
                })?;
                let room = RoomId::from_channel(&body.channel_name).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_channel_name",
                        "channel_name must be a room channel: private-<roomId>.",
                    )
                })?;
                let caller = parse_private_id(&body.private_id)?;
                let auth =
                    authorize_channel(store.as_ref(), credentials, &socket_id, &room, &caller)
                        .await?;
                Ok(ApiResponse::ok(200, Some(json!({"auth": auth.auth}))))
            }
        }
    }
}

fn parse_public_id(s: &str) -> Result<PublicId, ApiError> {
    PublicId::parse(s).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_public_id",
            "A public id is six digits written ###-###, like 123-456.",
        )
    })
}

fn parse_room_id(s: &str) -> Result<RoomId, ApiError> {
    RoomId::parse(s).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_room_id",
            "That is not a room id; use the roomId that connect returned.",
        )
    })
}

fn parse_private_id(s: &str) -> Result<PrivateId, ApiError> {
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
fn parse_json<T: DeserializeOwned>(req: &ApiRequest) -> Result<T, ApiError> {
    decode_json(&req.body)
}

fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "malformed_body",
            "The request needs a JSON body.",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "malformed_body",
            format!("The JSON body is not valid: {e}."),
        )
    })
}

/// `/pusher/auth` takes pusher-js's form encoding, or JSON; a body that starts with
/// `{` is JSON unless declared a form.
fn parse_form_or_json<T: DeserializeOwned>(req: &ApiRequest) -> Result<T, ApiError> {
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

impl Endpoint {
    /// Handle a request end to end: errors become their JSON answer, and the request
    /// gets its one log line (never a private id, key or message text).
    pub async fn respond(&self, req: &ApiRequest, request_id: &str) -> ApiResponse {
        let started = std::time::Instant::now();
        let result = self.handle(req).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let route = self.route();
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
}

/// A request id for logs when the platform gave none: 16 random hex characters.
pub fn new_request_id() -> String {
    // A constant id is still an id; the random source failing here is not worth a 500.
    crate::random::hex(8).unwrap_or_else(|_| "0000000000000000".to_owned())
}

/// The four routes, one Lambda function each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    CreateUser,
    Connect,
    SendMessage,
    ChannelAuth,
}

impl Endpoint {
    /// Open the connections this endpoint will use, all at once (see `Store::warm_up`).
    pub async fn warm_up(&self) {
        match self {
            Self::CreateUser { store, .. }
            | Self::Connect { store, .. }
            | Self::ChannelAuth { store, .. } => store.warm_up().await,
            Self::SendMessage {
                store, realtime, ..
            } => {
                tokio::join!(store.warm_up(), realtime.warm_up());
            }
        }
    }

    /// Build a route's endpoint from configuration, reading only the variables that
    /// route needs (create-user never sees the Pusher secret or the room key).
    pub async fn from_env(
        route: Route,
        env: crate::config::Lookup<'_>,
    ) -> Result<Self, crate::config::ConfigError> {
        use crate::config;
        use crate::realtime::pusher::PusherClient;
        use crate::store::DynamoStore;

        let table = config::table_name(env)?;
        // Validate everything before the first network client is built.
        let endpoint = match route {
            Route::CreateUser => {
                let store = Arc::new(DynamoStore::from_env(table).await);
                Self::CreateUser {
                    store,
                    ids: IdPolicy::default(),
                }
            }
            Route::Connect => {
                let room_key = config::room_key(env)?;
                let store = Arc::new(DynamoStore::from_env(table).await);
                Self::Connect { store, room_key }
            }
            Route::SendMessage => {
                let pusher = config::pusher(env)?;
                let rate = config::rate_limit(env)?;
                let client =
                    PusherClient::new(&pusher).map_err(|e| config::ConfigError::Invalid {
                        name: config::PUSHER_HOST,
                        reason: format!("cannot build an HTTP client: {e:#}"),
                    })?;
                let store = Arc::new(DynamoStore::from_env(table).await);
                Self::SendMessage {
                    store,
                    realtime: Arc::new(client),
                    rate,
                }
            }
            Route::ChannelAuth => {
                let pusher = config::pusher(env)?;
                let store = Arc::new(DynamoStore::from_env(table).await);
                Self::ChannelAuth {
                    store,
                    credentials: pusher.credentials,
                }
            }
        };
        Ok(endpoint)
    }
}
