//! The route table and the eight routes' handlers, each generic over its store (and
//! publisher): a Lambda function instantiates its one route with the concrete DynamoDB
//! store and Pusher client.

use super::{
    ApiError, ApiRequest, ApiResponse, Handler, parse_form_or_json, parse_json, parse_private_id,
    parse_public_id, parse_room_id, path_param,
};
use crate::config::{self, ConfigError, Lookup};
use crate::domain::SocketId;
use crate::domain::addresses::AddressLimit;
use crate::domain::channels::{authorize_channel, authorize_inbox};
use crate::domain::history::{
    Before, Cursor, DEFAULT_PAGE, MAX_PAGE, MessageTtl, list_messages, list_messages_newest_first,
};
use crate::domain::inbox::list_rooms;
use crate::domain::messages::{Message, RateLimit, send_message};
use crate::domain::ports::{Clock, SystemClock};
use crate::domain::rooms::{
    ConnectLimits, INBOX_PREFIX, RoomKey, block_room, connect_and_announce,
};
use crate::domain::sent::MessageId;
use crate::domain::users::{IdPolicy, UserIds, create_user, rotate_public_id};
use crate::domain::{PublicKey, RoomId};
use crate::realtime::Realtime;
use crate::realtime::pusher::{PusherClient, PusherCredentials};
use crate::store::{DynamoStore, Store};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::SystemTime;

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
    /// The sender's id for the message: a retry under it is answered, not kept twice.
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HistoryBody {
    private_id: String,
    #[serde(default)]
    after: Option<String>,
    /// Newest first from here: a cursor, or empty for the newest message.
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
}

/// What pusher-js sends; other parameters a client adds are ignored.
#[derive(Deserialize)]
struct ChannelAuthBody {
    socket_id: String,
    channel_name: String,
    #[serde(rename = "privateId")]
    private_id: String,
}

/// Every route of the service: the Lambda glue, the local server's router, the tests
/// and the benchmarks follow this table, and a test (`shared/tests/route_table.rs`)
/// checks that `openapi.yaml`, `template.yaml`, `functions/` and `events/` agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    CreateUser,
    Connect,
    SendMessage,
    ChannelAuth,
    ListMessages,
    BlockRoom,
    ListRooms,
    RotateId,
}

impl Route {
    pub const ALL: [Route; 8] = [
        Route::CreateUser,
        Route::Connect,
        Route::SendMessage,
        Route::ChannelAuth,
        Route::ListMessages,
        Route::BlockRoom,
        Route::ListRooms,
        Route::RotateId,
    ];

    /// API Gateway's route key, as logged: `POST /users/{publicId}/connect`.
    pub const fn key(self) -> &'static str {
        match self {
            Self::CreateUser => "POST /users/create",
            Self::Connect => "POST /users/{publicId}/connect",
            Self::SendMessage => "POST /rooms/{roomId}/message",
            Self::ChannelAuth => "POST /pusher/auth",
            Self::ListMessages => "POST /rooms/{roomId}/messages",
            Self::BlockRoom => "POST /rooms/{roomId}/block",
            Self::ListRooms => "POST /users/rooms",
            Self::RotateId => "POST /users/rotate",
        }
    }

    /// The path template (API Gateway's and axum's syntax alike).
    pub const fn path(self) -> &'static str {
        match self {
            Self::CreateUser => "/users/create",
            Self::Connect => "/users/{publicId}/connect",
            Self::SendMessage => "/rooms/{roomId}/message",
            Self::ChannelAuth => "/pusher/auth",
            Self::ListMessages => "/rooms/{roomId}/messages",
            Self::BlockRoom => "/rooms/{roomId}/block",
            Self::ListRooms => "/users/rooms",
            Self::RotateId => "/users/rotate",
        }
    }

    /// The one path parameter, if the route has one.
    pub const fn path_param(self) -> Option<&'static str> {
        match self {
            Self::Connect => Some("publicId"),
            Self::SendMessage | Self::ListMessages | Self::BlockRoom => Some("roomId"),
            Self::CreateUser | Self::ChannelAuth | Self::ListRooms | Self::RotateId => None,
        }
    }

    /// The Lambda function (crate, binary and `events/` file name) that serves it.
    pub const fn function(self) -> &'static str {
        match self {
            Self::CreateUser => "create-user",
            Self::Connect => "connect",
            Self::SendMessage => "send-message",
            Self::ChannelAuth => "channel-auth",
            Self::ListMessages => "list-messages",
            Self::BlockRoom => "block-room",
            Self::ListRooms => "list-rooms",
            Self::RotateId => "rotate-id",
        }
    }

    /// The concrete path for a path parameter (ignored by routes without one).
    pub fn path_with(self, param: &str) -> String {
        match self.path_param() {
            Some(name) => self.path().replace(&format!("{{{name}}}"), param),
            None => self.path().to_owned(),
        }
    }
}

// Each route's handler, generic over its ports so that a Lambda binary instantiates only
// its own route over the concrete DynamoDB store (and Pusher client), while the local
// server and the tests run the very same handlers over `dyn Store`.

/// `POST /users/create`
pub struct CreateUser<S: ?Sized> {
    pub store: Arc<S>,
    pub ids: IdPolicy,
    /// This instance's blocks of numeric ids.
    pub user_ids: UserIds,
    /// The per-source-address limit, `None` when turned off.
    pub limit: Option<AddressLimit>,
    pub clock: Arc<dyn Clock>,
}

impl<S: ?Sized> CreateUser<S> {
    /// All ids from the full spaces, blocks of [`UserIds::DEFAULT_BLOCK`], no
    /// per-address limit (tests, benchmarks; the functions read theirs with `from_env`).
    pub fn new(store: Arc<S>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            ids: IdPolicy::default(),
            user_ids: UserIds::default(),
            limit: None,
            clock,
        }
    }
}

/// `POST /users/{publicId}/connect`
pub struct Connect<S: ?Sized, R: ?Sized> {
    pub store: Arc<S>,
    /// Connects per identity and window (`CONNECT_RATE_LIMIT`, `CONNECT_RATE_WINDOW_SECS`),
    /// and how long offers stand (`OFFER_TTL`).
    pub limits: ConnectLimits,
    /// Announces the room on the target's inbox channel.
    pub realtime: Arc<R>,
    pub room_key: RoomKey,
    pub clock: Arc<dyn Clock>,
}

/// `POST /rooms/{roomId}/message`
pub struct SendMessage<S: ?Sized, R: ?Sized> {
    pub store: Arc<S>,
    pub realtime: Arc<R>,
    pub rate: RateLimit,
    /// How long the room's history keeps the message.
    pub ttl: MessageTtl,
    pub clock: Arc<dyn Clock>,
}

/// `POST /rooms/{roomId}/messages`
pub struct ListMessages<S: ?Sized> {
    pub store: Arc<S>,
    pub clock: Arc<dyn Clock>,
}

/// `POST /rooms/{roomId}/block`
pub struct BlockRoom<S: ?Sized> {
    pub store: Arc<S>,
    pub clock: Arc<dyn Clock>,
}

/// `POST /pusher/auth`
pub struct ChannelAuth<S: ?Sized> {
    pub store: Arc<S>,
    pub credentials: PusherCredentials,
    /// Names inbox channels.
    pub room_key: RoomKey,
}

/// `POST /users/rooms`
pub struct ListRooms<S: ?Sized> {
    pub store: Arc<S>,
    pub room_key: RoomKey,
    pub clock: Arc<dyn Clock>,
}

/// `POST /users/rotate`
pub struct RotateId<S: ?Sized> {
    pub store: Arc<S>,
    pub ids: IdPolicy,
    /// The per-source-address limit on ids taken (creates and rotations alike).
    pub limit: Option<AddressLimit>,
    pub clock: Arc<dyn Clock>,
}

async fn handle_create_user<S: Store + ?Sized>(
    handler: &CreateUser<S>,
    now: SystemTime,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    // No body, `{}` or `{"publicKey"}`: nothing else is meant, so nothing else is taken.
    let mut public_key = None;
    if !req.body.is_empty() {
        let body: Value = parse_json(req)?;
        let Some(fields) = body
            .as_object()
            .filter(|o| o.keys().all(|k| k == "publicKey"))
        else {
            return Err(ApiError::bad_request(
                "malformed_body",
                "POST /users/create takes an empty body, {} or {\"publicKey\": \"…\"}.",
            ));
        };
        if let Some(key) = fields.get("publicKey") {
            public_key = Some(key.as_str().and_then(PublicKey::parse).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_public_key",
                    "publicKey must be an X25519 public key: 32 bytes as unpadded base64url \
                     (43 characters).",
                )
            })?);
        }
    }
    let quota = handler.limit.as_ref().map(|l| l.quota(req.source, now));
    let store = &*handler.store;
    let user = create_user(
        store,
        &handler.user_ids,
        handler.ids,
        quota.as_ref(),
        public_key,
        now,
    )
    .await?;
    Ok(ApiResponse::ok(
        201,
        Some(json!({
            "publicId": user.public_id.to_string(),
            "privateId": user.private_id.expose(),
            "username": user.username,
        })),
    ))
}

async fn handle_connect<S: Store + ?Sized, R: Realtime + ?Sized>(
    handler: &Connect<S, R>,
    now: SystemTime,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let target = parse_public_id(path_param(req, "users"))?;
    let body: ConnectBody = parse_json(req)?;
    let me = parse_private_id(&body.private_id)?;
    let (store, realtime) = (&*handler.store, &*handler.realtime);
    let key = &handler.room_key;
    let connected =
        connect_and_announce(store, realtime, key, &me, target, handler.limits, now).await?;
    // The room is in the target's inbox either way; the live announcement is a courtesy
    // whose failure the requester need not hear of (nor could tell from an unused id's).
    if let Some(e) = connected.announce_failed {
        tracing::warn!(error = %e, "inbox announcement failed");
    }
    let room = connected.room;
    Ok(ApiResponse::ok(
        200,
        Some(json!({"roomId": room.as_str(), "channel": room.channel()})),
    ))
}

async fn handle_send_message<S: Store + ?Sized, R: Realtime + ?Sized>(
    handler: &SendMessage<S, R>,
    now: SystemTime,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let room = parse_room_id(path_param(req, "rooms"))?;
    let body: MessageBody = parse_json(req)?;
    let sender = parse_private_id(&body.private_id)?;
    let message = Message::parse(body.message)?;
    let id = body.id.map(MessageId::parse).transpose()?;
    let (store, realtime) = (&*handler.store, &*handler.realtime);
    let (rate, ttl) = (handler.rate, handler.ttl);
    send_message(
        store, realtime, rate, ttl, &room, &sender, &message, id, now,
    )
    .await?;
    Ok(ApiResponse::ok(204, None))
}

async fn handle_list_messages<S: Store + ?Sized>(
    store: &S,
    now: SystemTime,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let room = parse_room_id(path_param(req, "rooms"))?;
    let body: HistoryBody = parse_json(req)?;
    let caller = parse_private_id(&body.private_id)?;
    let cursor = |name: &str, text: String| {
        Cursor::parse(&text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                format!("{name} must be a cursor that this route returned as next."),
            )
        })
    };
    if body.after.is_some() && body.before.is_some() {
        return Err(ApiError::bad_request(
            "invalid_cursor",
            "Give after (oldest first) or before (newest first), not both.",
        ));
    }
    let before = match body.before {
        None => None,
        Some(text) if text.is_empty() => Some(Before::Newest),
        Some(text) => Some(Before::Cursor(cursor("before", text)?)),
    };
    let after = body.after.map(|text| cursor("after", text)).transpose()?;
    let limit = match body.limit {
        None => DEFAULT_PAGE,
        Some(n @ 1..=100) => n as usize,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit must be between 1 and {MAX_PAGE}."),
            ));
        }
    };
    let page = match before {
        Some(before) => {
            list_messages_newest_first(store, &room, &caller, before, limit, now).await?
        }
        None => list_messages(store, &room, &caller, after, limit, now).await?,
    };
    let next = page.next.map(|cursor| cursor.to_string());
    let messages: Vec<Value> = page
        .messages
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "roomId": room.as_str(),
                "from": {"publicId": m.from.public_id.to_string(), "username": m.from.username},
                "message": m.message,
                "sentAt": m.sent_at,
            })
        })
        .collect();
    Ok(ApiResponse::ok(
        200,
        Some(json!({"messages": messages, "next": next})),
    ))
}

async fn handle_block_room<S: Store + ?Sized>(
    store: &S,
    now: SystemTime,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let room = parse_room_id(path_param(req, "rooms"))?;
    let body: ConnectBody = parse_json(req)?;
    let caller = parse_private_id(&body.private_id)?;
    block_room(store, &room, &caller, now).await?;
    Ok(ApiResponse::ok(204, None))
}

async fn handle_channel_auth<S: Store + ?Sized>(
    handler: &ChannelAuth<S>,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let body: ChannelAuthBody = parse_form_or_json(req)?;
    let socket_id = SocketId::parse(&body.socket_id).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_socket_id",
            "socket_id must be digits.digits, as Pusher assigns it.",
        )
    })?;
    let (store, credentials) = (&*handler.store, &handler.credentials);
    let channel = body.channel_name.as_str();
    let inbox = channel
        .strip_prefix(INBOX_PREFIX)
        .is_some_and(|mac| RoomId::parse(mac).is_some());
    let room = RoomId::from_channel(channel);
    if room.is_none() && !inbox {
        return Err(ApiError::bad_request(
            "invalid_channel_name",
            "channel_name must be a room channel (private-<roomId>) or an inbox channel \
             (private-inbox-<id>).",
        ));
    }
    let caller = parse_private_id(&body.private_id)?;
    let auth = match room {
        Some(room) => authorize_channel(store, credentials, &socket_id, &room, &caller).await?,
        None => {
            let key = &handler.room_key;
            authorize_inbox(store, credentials, key, &socket_id, channel, &caller).await?
        }
    };
    Ok(ApiResponse::ok(200, Some(json!({ "auth": auth }))))
}

async fn handle_list_rooms<S: Store + ?Sized>(
    handler: &ListRooms<S>,
    now: SystemTime,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let body: ConnectBody = parse_json(req)?;
    let caller = parse_private_id(&body.private_id)?;
    let list = list_rooms(&*handler.store, &handler.room_key, &caller, now).await?;
    let rooms: Vec<Value> = list
        .rooms
        .iter()
        .map(|r| {
            let mut peer = json!({"publicId": r.peer.to_string(), "username": r.peer_username});
            if let Some(key) = r.peer_key {
                peer["publicKey"] = key.to_string().into();
            }
            json!({
                "roomId": r.room.as_str(),
                "channel": r.room.channel(),
                "peer": peer,
                "joined": r.joined,
                "closed": r.closed,
                "lastMessageAt": r.last_message_at,
            })
        })
        .collect();
    Ok(ApiResponse::ok(
        200,
        Some(json!({"inboxChannel": list.inbox_channel, "rooms": rooms})),
    ))
}

async fn handle_rotate_id<S: Store + ?Sized>(
    handler: &RotateId<S>,
    now: SystemTime,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let body: ConnectBody = parse_json(req)?;
    let caller = parse_private_id(&body.private_id)?;
    let quota = handler.limit.as_ref().map(|l| l.quota(req.source, now));
    let store = &*handler.store;
    let public_id = rotate_public_id(store, handler.ids, &caller, quota.as_ref(), now).await?;
    Ok(ApiResponse::ok(
        200,
        Some(json!({"publicId": public_id.to_string()})),
    ))
}

impl<S: Store + ?Sized> Handler for CreateUser<S> {
    fn route(&self) -> Route {
        Route::CreateUser
    }
    async fn handle(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        handle_create_user(self, self.clock.now(), req).await
    }
    async fn warm_up(&self) {
        self.store.warm_up().await;
    }
}

impl<S: Store + ?Sized, R: Realtime + ?Sized> Handler for Connect<S, R> {
    fn route(&self) -> Route {
        Route::Connect
    }
    async fn handle(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        handle_connect(self, self.clock.now(), req).await
    }
    async fn warm_up(&self) {
        tokio::join!(self.store.warm_up(), self.realtime.warm_up());
    }
}

impl<S: Store + ?Sized, R: Realtime + ?Sized> Handler for SendMessage<S, R> {
    fn route(&self) -> Route {
        Route::SendMessage
    }
    async fn handle(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        handle_send_message(self, self.clock.now(), req).await
    }
    async fn warm_up(&self) {
        tokio::join!(self.store.warm_up(), self.realtime.warm_up());
    }
}

impl<S: Store + ?Sized> Handler for ChannelAuth<S> {
    fn route(&self) -> Route {
        Route::ChannelAuth
    }
    async fn handle(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        handle_channel_auth(self, req).await
    }
    async fn warm_up(&self) {
        self.store.warm_up().await;
    }
}

impl<S: Store + ?Sized> Handler for ListMessages<S> {
    fn route(&self) -> Route {
        Route::ListMessages
    }
    async fn handle(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        handle_list_messages(&*self.store, self.clock.now(), req).await
    }
    async fn warm_up(&self) {
        self.store.warm_up().await;
    }
}

impl<S: Store + ?Sized> Handler for BlockRoom<S> {
    fn route(&self) -> Route {
        Route::BlockRoom
    }
    async fn handle(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        handle_block_room(&*self.store, self.clock.now(), req).await
    }
    async fn warm_up(&self) {
        self.store.warm_up().await;
    }
}

impl<S: Store + ?Sized> Handler for ListRooms<S> {
    fn route(&self) -> Route {
        Route::ListRooms
    }
    async fn handle(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        handle_list_rooms(self, self.clock.now(), req).await
    }
    async fn warm_up(&self) {
        self.store.warm_up().await;
    }
}

impl<S: Store + ?Sized> Handler for RotateId<S> {
    fn route(&self) -> Route {
        Route::RotateId
    }
    async fn handle(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        handle_rotate_id(self, self.clock.now(), req).await
    }
    async fn warm_up(&self) {
        self.store.warm_up().await;
    }
}

/// The table and the DynamoDB timeouts, which every function reads first; the client is
/// built last ([`Self::store`]), after the route's own variables, so that configuration
/// errors are reported in that order.
struct DynamoConfig {
    table: String,
    timeouts: crate::store::Timeouts,
}

impl DynamoConfig {
    fn read(env: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::table_name(env)?,
            timeouts: config::dynamodb_timeouts(env)?,
        })
    }

    fn store(self, env: Lookup<'_>) -> Result<Arc<DynamoStore>, ConfigError> {
        Ok(Arc::new(config::dynamo_store(
            env,
            self.table,
            self.timeouts,
        )?))
    }
}

// Configuration: each route reads only the variables it needs (create-user never sees
// the Pusher secret or the room key), validating them all before building a client.

impl CreateUser<DynamoStore> {
    pub async fn from_env(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let dynamo = DynamoConfig::read(env)?;
        let limit = config::create_limit(env)?;
        Ok(Self {
            store: dynamo.store(env)?,
            ids: IdPolicy::default(),
            user_ids: UserIds::default(),
            limit,
            clock: Arc::new(SystemClock),
        })
    }
}

impl Connect<DynamoStore, PusherClient> {
    pub async fn from_env(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let dynamo = DynamoConfig::read(env)?;
        let room_key = config::room_key(env)?;
        let pusher = config::pusher(env)?;
        let limits = config::connect_limits(env)?;
        Ok(Self {
            store: dynamo.store(env)?,
            limits,
            realtime: Arc::new(pusher_client(&pusher)?),
            room_key,
            clock: Arc::new(SystemClock),
        })
    }
}

/// The Pusher client a function publishes with, built once at start-up.
fn pusher_client(
    pusher: &crate::realtime::pusher::PusherConfig,
) -> Result<PusherClient, ConfigError> {
    PusherClient::new(pusher).map_err(|e| ConfigError::Invalid {
        name: config::PUSHER_HOST,
        reason: format!("cannot build an HTTP client: {e:#}"),
    })
}

impl SendMessage<DynamoStore, PusherClient> {
    pub async fn from_env(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let dynamo = DynamoConfig::read(env)?;
        let pusher = config::pusher(env)?;
        let rate = config::rate_limit(env)?;
        let ttl = config::message_ttl(env)?;
        config::check_rate_window(rate, dynamo.timeouts)?;
        let realtime = pusher_client(&pusher)?;
        Ok(Self {
            store: dynamo.store(env)?,
            realtime: Arc::new(realtime),
            rate,
            ttl,
            clock: Arc::new(SystemClock),
        })
    }
}

impl ChannelAuth<DynamoStore> {
    pub async fn from_env(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let dynamo = DynamoConfig::read(env)?;
        let pusher = config::pusher(env)?;
        let room_key = config::room_key(env)?;
        Ok(Self {
            store: dynamo.store(env)?,
            credentials: pusher.credentials,
            room_key,
        })
    }
}

impl ListMessages<DynamoStore> {
    pub async fn from_env(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let dynamo = DynamoConfig::read(env)?;
        Ok(Self {
            store: dynamo.store(env)?,
            clock: Arc::new(SystemClock),
        })
    }
}

impl BlockRoom<DynamoStore> {
    pub async fn from_env(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let dynamo = DynamoConfig::read(env)?;
        Ok(Self {
            store: dynamo.store(env)?,
            clock: Arc::new(SystemClock),
        })
    }
}

impl ListRooms<DynamoStore> {
    pub async fn from_env(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let dynamo = DynamoConfig::read(env)?;
        let room_key = config::room_key(env)?;
        Ok(Self {
            store: dynamo.store(env)?,
            room_key,
            clock: Arc::new(SystemClock),
        })
    }
}

impl RotateId<DynamoStore> {
    pub async fn from_env(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let dynamo = DynamoConfig::read(env)?;
        let limit = config::create_limit(env)?;
        Ok(Self {
            store: dynamo.store(env)?,
            ids: IdPolicy::default(),
            limit,
            clock: Arc::new(SystemClock),
        })
    }
}
