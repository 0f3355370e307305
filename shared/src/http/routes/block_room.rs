//! `POST /rooms/{roomId}/block`: its body, its handler, its configuration
//! (`from_env`), and its entry in the route table.

use super::*;

/// `POST /rooms/{roomId}/block`
pub struct BlockRoom<S: ?Sized> {
    pub store: Arc<S>,
    pub clock: Arc<dyn Clock>,
}

async fn handle_block_room<S: Store + ?Sized>(
    store: &S,
    now: SystemTime,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let room = parse_room_id(path_param(req, "rooms"))?;
    let body: PrivateIdBody = parse_json(req)?;
    let caller = parse_private_id(&body.private_id)?;
    block_room(store, &room, &caller, now).await?;
    Ok(ApiResponse::ok(204, None))
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

impl BlockRoom<DynamoStore> {
    pub async fn from_env(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let dynamo = DynamoConfig::read(env)?;
        Ok(Self {
            store: dynamo.store(env)?,
            clock: Arc::new(SystemClock),
        })
    }
}

/// The handler the route table holds.
pub type Dyn = BlockRoom<dyn Store>;

/// Its entry in the route table (`routes/mod.rs`): how the local server and the tests
/// build it from their [`Wiring`], over `dyn` ports.
impl RouteFile for Dyn {
    const ROUTE: RouteInfo = RouteInfo {
        key: "POST /rooms/{roomId}/block",
        function: "block-room",
    };

    fn wire(w: &Wiring) -> Self {
        BlockRoom {
            store: w.store.clone(),
            clock: w.clock.clone(),
        }
    }

    fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }
}

impl<S: IntoDyn<dyn Store> + ?Sized> From<BlockRoom<S>> for Endpoint
{
    fn from(h: BlockRoom<S>) -> Self {
        Self::BlockRoom(BlockRoom {
            store: h.store.into_dyn(),
            clock: h.clock,
        })
    }
}
