//! `POST /rooms/{roomId}/block`: its body, its handler, and its configuration (`from_env`).

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
