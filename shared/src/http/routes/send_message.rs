//! `POST /rooms/{roomId}/message`: its body, its handler, its configuration
//! (`from_env`), and its entry in the route table.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MessageBody {
    private_id: String,
    message: String,
    /// The sender's id for the message: a retry under it is answered, not kept twice.
    #[serde(default)]
    id: Option<String>,
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

impl SendMessage<DynamoStore, PusherClient> {
    pub async fn from_env(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let dynamo = DynamoConfig::read(env)?;
        let pusher = config::pusher(env)?;
        let rate = config::rate_limit(env)?;
        let ttl = config::message_ttl(env)?;
        config::check_rate_window(rate, dynamo.timeouts)?;
        let realtime = crate::wiring::pusher_client(&pusher)?;
        Ok(Self {
            store: dynamo.store(env)?,
            realtime: Arc::new(realtime),
            rate,
            ttl,
            clock: Arc::new(SystemClock),
        })
    }
}

/// The handler the route table holds.
pub type Dyn = SendMessage<dyn Store, dyn Realtime>;

/// Its entry in the route table (`routes/mod.rs`): how the local server and the tests
/// build it from their [`Wiring`], over `dyn` ports.
impl RouteFile for Dyn {
    const ROUTE: RouteInfo = RouteInfo {
        key: "POST /rooms/{roomId}/message",
        function: "send-message",
    };

    fn wire(w: &Wiring) -> Self {
        SendMessage {
            store: w.store.clone(),
            realtime: w.realtime.clone(),
            rate: w.rate,
            ttl: w.ttl,
            clock: w.clock.clone(),
        }
    }

    fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }
}

impl<S, R> From<SendMessage<S, R>> for Endpoint
where
    S: IntoDyn<dyn Store> + ?Sized,
    R: IntoDyn<dyn Realtime> + ?Sized,
{
    fn from(h: SendMessage<S, R>) -> Self {
        Self::SendMessage(SendMessage {
            store: h.store.into_dyn(),
            realtime: h.realtime.into_dyn(),
            rate: h.rate,
            ttl: h.ttl,
            clock: h.clock,
        })
    }
}
