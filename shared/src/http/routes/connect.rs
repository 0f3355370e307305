//! `POST /users/{publicId}/connect`: its body, its handler, its configuration
//! (`from_env`), and its entry in the route table.

use super::*;

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

async fn handle_connect<S: Store + ?Sized, R: Realtime + ?Sized>(
    handler: &Connect<S, R>,
    now: SystemTime,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let target = parse_public_id(path_param(req, "users"))?;
    let body: PrivateIdBody = parse_json(req)?;
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

impl Connect<DynamoStore, PusherClient> {
    pub async fn from_env(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let dynamo = DynamoConfig::read(env)?;
        let room_key = config::room_key(env)?;
        let pusher = config::pusher(env)?;
        let limits = config::connect_limits(env)?;
        Ok(Self {
            store: dynamo.store(env)?,
            limits,
            realtime: Arc::new(crate::wiring::pusher_client(&pusher)?),
            room_key,
            clock: Arc::new(SystemClock),
        })
    }
}

/// The handler the route table holds.
pub type Dyn = Connect<dyn Store, dyn Realtime>;

/// Its entry in the route table (`routes/mod.rs`): how the local server and the tests
/// build it from their [`Wiring`], over `dyn` ports.
impl RouteFile for Dyn {
    const ROUTE: RouteInfo = RouteInfo {
        key: "POST /users/{publicId}/connect",
        function: "connect",
    };

    fn wire(w: &Wiring) -> Self {
        Connect {
            store: w.store.clone(),
            limits: w.connect,
            realtime: w.realtime.clone(),
            room_key: w.room_key.clone(),
            clock: w.clock.clone(),
        }
    }

    fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }
}

impl<S, R> From<Connect<S, R>> for Endpoint
where
    S: IntoDyn<dyn Store> + ?Sized,
    R: IntoDyn<dyn Realtime> + ?Sized,
{
    fn from(h: Connect<S, R>) -> Self {
        Self::Connect(Connect {
            store: h.store.into_dyn(),
            limits: h.limits,
            realtime: h.realtime.into_dyn(),
            room_key: h.room_key,
            clock: h.clock,
        })
    }
}
