//! `POST /users/rotate`: its body, its handler, its configuration
//! (`from_env`), and its entry in the route table.

use super::*;

/// `POST /users/rotate`
pub struct RotateId<S: ?Sized> {
    pub store: Arc<S>,
    pub ids: IdPolicy,
    /// The per-source-address limit on ids taken (creates and rotations alike).
    pub limit: Option<AddressLimit>,
    pub clock: Arc<dyn Clock>,
}

async fn handle_rotate_id<S: Store + ?Sized>(
    handler: &RotateId<S>,
    now: SystemTime,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let body: PrivateIdBody = parse_json(req)?;
    let caller = parse_private_id(&body.private_id)?;
    let quota = handler.limit.as_ref().map(|l| l.quota(req.source, now));
    let store = &*handler.store;
    let public_id = rotate_public_id(store, handler.ids, &caller, quota.as_ref(), now).await?;
    Ok(ApiResponse::ok(
        200,
        Some(json!({"publicId": public_id.to_string()})),
    ))
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

/// The handler the route table holds.
pub type Dyn = RotateId<dyn Store>;

/// Its entry in the route table (`routes/mod.rs`): how the local server and the tests
/// build it from their [`Wiring`], over `dyn` ports.
impl RouteFile for Dyn {
    const ROUTE: RouteInfo = RouteInfo {
        key: "POST /users/rotate",
        function: "rotate-id",
    };

    fn wire(w: &Wiring) -> Self {
        RotateId {
            store: w.store.clone(),
            ids: w.ids,
            limit: w.create_limit.clone(),
            clock: w.clock.clone(),
        }
    }

    fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }
}

impl<S: IntoDyn<dyn Store> + ?Sized> From<RotateId<S>> for Endpoint
{
    fn from(h: RotateId<S>) -> Self {
        Self::RotateId(RotateId {
            store: h.store.into_dyn(),
            ids: h.ids,
            limit: h.limit,
            clock: h.clock,
        })
    }
}
