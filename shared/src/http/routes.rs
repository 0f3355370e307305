//! The four routes, each generic over its store (and publisher): a Lambda function
//! instantiates its one route with the concrete DynamoDB store and Pusher client.

use super::{
    ApiError, ApiRequest, ApiResponse, Handler, parse_form_or_json, parse_json, parse_private_id,
    parse_public_id, parse_room_id, path_param,
};
use crate::config::{self, ConfigError, Lookup};
use crate::domain::RoomId;
use crate::domain::channels::authorize_channel;
use crate::domain::messages::{Message, RateLimit, send_message};
use crate::domain::rooms::{RoomKey, connect};
use crate::domain::users::{IdPolicy, create_user};
use crate::realtime::Realtime;
use crate::realtime::pusher::{PusherClient, PusherCredentials, SocketId};
use crate::store::{DynamoStore, Store};
use serde::Deserialize;
use serde_json::{Value, json};

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

/// `POST /users/create`
pub struct CreateUser<S> {
    pub store: S,
    pub ids: IdPolicy,
}

/// `POST /users/{publicId}/connect`
pub struct Connect<S> {
    pub store: S,
    pub room_key: RoomKey,
}

/// `POST /rooms/{roomId}/message`
pub struct SendMessage<S, R> {
    pub store: S,
    pub realtime: R,
    pub rate: RateLimit,
}

/// `POST /pusher/auth`
pub struct ChannelAuth<S> {
    pub store: S,
    pub credentials: PusherCredentials,
}

pub(super) async fn handle_create_user<S: Store + ?Sized>(
    store: &S,
    ids: IdPolicy,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
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
    let user = create_user(store, ids).await?;
    Ok(ApiResponse::ok(
        201,
        Some(json!({
            "publicId": user.public_id.to_string(),
            "privateId": user.private_id.expose(),
            "username": user.username,
        })),
    ))
}

pub(super) async fn handle_connect<S: Store + ?Sized>(
    store: &S,
    room_key: &RoomKey,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let target = parse_public_id(path_param(req, "users"))?;
    let body: ConnectBody = parse_json(req)?;
    let me = parse_private_id(&body.private_id)?;
    let room = connect(store, room_key, &me, target).await?;
    Ok(ApiResponse::ok(
        200,
        Some(json!({"roomId": room.as_str(), "channel": room.channel()})),
    ))
}

pub(super) async fn handle_send_message<S: Store + ?Sized, R: Realtime + ?Sized>(
    store: &S,
    realtime: &R,
    rate: RateLimit,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let room = parse_room_id(path_param(req, "rooms"))?;
    let body: MessageBody = parse_json(req)?;
    let sender = parse_private_id(&body.private_id)?;
    let message = Message::parse(body.message)?;
    send_message(store, realtime, rate, &room, &sender, &message).await?;
    Ok(ApiResponse::ok(204, None))
}

pub(super) async fn handle_channel_auth<S: Store + ?Sized>(
    store: &S,
    credentials: &PusherCredentials,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
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
    let auth = authorize_channel(store, credentials, &socket_id, &room, &caller).await?;
    Ok(ApiResponse::ok(200, Some(json!({"auth": auth.auth}))))
}

pub const CREATE_USER: &str = "POST /users/create";
pub const CONNECT: &str = "POST /users/{publicId}/connect";
pub const SEND_MESSAGE: &str = "POST /rooms/{roomId}/message";
pub const CHANNEL_AUTH: &str = "POST /pusher/auth";

impl<S: Store> Handler for CreateUser<S> {
    fn route(&self) -> &'static str {
        CREATE_USER
    }
    async fn handle(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        handle_create_user(&self.store, self.ids, req).await
    }
    async fn warm_up(&self) {
        self.store.warm_up().await;
    }
}

impl<S: Store> Handler for Connect<S> {
    fn route(&self) -> &'static str {
        CONNECT
    }
    fn path_param_name(&self) -> Option<&'static str> {
        Some("publicId")
    }
    async fn handle(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        handle_connect(&self.store, &self.room_key, req).await
    }
    async fn warm_up(&self) {
        self.store.warm_up().await;
    }
}

impl<S: Store, R: Realtime> Handler for SendMessage<S, R> {
    fn route(&self) -> &'static str {
        SEND_MESSAGE
    }
    fn path_param_name(&self) -> Option<&'static str> {
        Some("roomId")
    }
    async fn handle(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        handle_send_message(&self.store, &self.realtime, self.rate, req).await
    }
    async fn warm_up(&self) {
        tokio::join!(self.store.warm_up(), self.realtime.warm_up());
    }
}

impl<S: Store> Handler for ChannelAuth<S> {
    fn route(&self) -> &'static str {
        CHANNEL_AUTH
    }
    async fn handle(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        handle_channel_auth(&self.store, &self.credentials, req).await
    }
    async fn warm_up(&self) {
        self.store.warm_up().await;
    }
}

// Configuration: each route reads only the variables it needs (create-user never sees
// the Pusher secret or the room key), validating them all before building a client.

impl CreateUser<DynamoStore> {
    pub async fn from_env(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let table = config::table_name(env)?;
        let timeouts = config::dynamodb_timeouts(env)?;
        Ok(Self {
            store: DynamoStore::from_lambda_env(env, table, timeouts)?,
            ids: IdPolicy::default(),
        })
    }
}

impl Connect<DynamoStore> {
    pub async fn from_env(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let table = config::table_name(env)?;
        let timeouts = config::dynamodb_timeouts(env)?;
        let room_key = config::room_key(env)?;
        Ok(Self {
            store: DynamoStore::from_lambda_env(env, table, timeouts)?,
            room_key,
        })
    }
}

impl SendMessage<DynamoStore, PusherClient> {
    pub async fn from_env(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let table = config::table_name(env)?;
        let timeouts = config::dynamodb_timeouts(env)?;
        let pusher = config::pusher(env)?;
        let rate = config::rate_limit(env)?;
        config::check_rate_window(rate, timeouts)?;
        let realtime = PusherClient::new(&pusher).map_err(|e| ConfigError::Invalid {
            name: config::PUSHER_HOST,
            reason: format!("cannot build an HTTP client: {e:#}"),
        })?;
        Ok(Self {
            store: DynamoStore::from_lambda_env(env, table, timeouts)?,
            realtime,
            rate,
        })
    }
}

impl ChannelAuth<DynamoStore> {
    pub async fn from_env(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let table = config::table_name(env)?;
        let timeouts = config::dynamodb_timeouts(env)?;
        let pusher = config::pusher(env)?;
        Ok(Self {
            store: DynamoStore::from_lambda_env(env, table, timeouts)?,
            credentials: pusher.credentials,
        })
    }
}
