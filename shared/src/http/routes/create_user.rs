//! `POST /users/create`: its body, its handler, its configuration
//! (`from_env`), and its entry in the route table.

use super::*;

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

/// The handler the route table holds.
pub type Dyn = CreateUser<dyn Store>;

/// Its entry in the route table (`routes/mod.rs`): how the local server and the tests
/// build it from their [`Wiring`], over `dyn` ports.
impl RouteFile for Dyn {
    const ROUTE: RouteInfo = RouteInfo {
        key: "POST /users/create",
        function: "create-user",
    };

    fn wire(w: &Wiring) -> Self {
        CreateUser {
            ids: w.ids,
            limit: w.create_limit.clone(),
            ..CreateUser::new(w.store.clone(), w.clock.clone())
        }
    }

    fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }
}

impl<S: IntoDyn<dyn Store> + ?Sized> From<CreateUser<S>> for Endpoint
{
    fn from(h: CreateUser<S>) -> Self {
        Self::CreateUser(CreateUser {
            store: h.store.into_dyn(),
            ids: h.ids,
            user_ids: h.user_ids,
            limit: h.limit,
            clock: h.clock,
        })
    }
}
