//! `POST /users/rooms`: its body, its handler, its configuration
//! (`from_env`), and its entry in the route table.

use super::*;

/// `POST /users/rooms`
pub struct ListRooms<S: ?Sized> {
    pub store: Arc<S>,
    pub room_key: RoomKey,
    pub clock: Arc<dyn Clock>,
}

async fn handle_list_rooms<S: Store + ?Sized>(
    handler: &ListRooms<S>,
    now: SystemTime,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let body: PrivateIdBody = parse_json(req)?;
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

/// The handler the route table holds.
pub type Dyn = ListRooms<dyn Store>;

/// Its entry in the route table (`routes/mod.rs`): how the local server and the tests
/// build it from their [`Wiring`], over `dyn` ports.
impl RouteFile for Dyn {
    const ROUTE: RouteInfo = RouteInfo {
        key: "POST /users/rooms",
        function: "list-rooms",
    };

    fn wire(w: &Wiring) -> Self {
        ListRooms {
            store: w.store.clone(),
            room_key: w.room_key.clone(),
            clock: w.clock.clone(),
        }
    }

    fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }
}

impl<S: IntoDyn<dyn Store> + ?Sized> From<ListRooms<S>> for Endpoint
{
    fn from(h: ListRooms<S>) -> Self {
        Self::ListRooms(ListRooms {
            store: h.store.into_dyn(),
            room_key: h.room_key,
            clock: h.clock,
        })
    }
}
