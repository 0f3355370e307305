//! `POST /pusher/auth`: its body, its handler, its configuration
//! (`from_env`), and its entry in the route table.

use super::*;

/// What pusher-js sends; other parameters a client adds are ignored.
#[derive(Deserialize)]
struct ChannelAuthBody {
    socket_id: String,
    channel_name: String,
    #[serde(rename = "privateId")]
    private_id: String,
}

/// `POST /pusher/auth`
pub struct ChannelAuth<S: ?Sized> {
    pub store: Arc<S>,
    pub credentials: PusherCredentials,
    /// Names inbox channels.
    pub room_key: RoomKey,
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

/// The handler the route table holds.
pub type Dyn = ChannelAuth<dyn Store>;

/// Its entry in the route table (`routes/mod.rs`): how the local server and the tests
/// build it from their [`Wiring`], over `dyn` ports.
impl RouteFile for Dyn {
    const ROUTE: RouteInfo = RouteInfo {
        key: "POST /pusher/auth",
        function: "channel-auth",
    };

    fn wire(w: &Wiring) -> Self {
        ChannelAuth {
            store: w.store.clone(),
            credentials: w.credentials.clone(),
            room_key: w.room_key.clone(),
        }
    }

    /// It reads no time.
    fn set_clock(&mut self, _: Arc<dyn Clock>) {}
}

impl<S: IntoDyn<dyn Store> + ?Sized> From<ChannelAuth<S>> for Endpoint
{
    fn from(h: ChannelAuth<S>) -> Self {
        Self::ChannelAuth(ChannelAuth {
            store: h.store.into_dyn(),
            credentials: h.credentials,
            room_key: h.room_key,
        })
    }
}
