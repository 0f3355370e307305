//! `POST /rooms/{roomId}/messages`: its body, its handler, its configuration
//! (`from_env`), and its entry in the route table.

use super::*;

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

/// `POST /rooms/{roomId}/messages`
pub struct ListMessages<S: ?Sized> {
    pub store: Arc<S>,
    pub clock: Arc<dyn Clock>,
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

impl ListMessages<DynamoStore> {
    pub async fn from_env(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let dynamo = DynamoConfig::read(env)?;
        Ok(Self {
            store: dynamo.store(env)?,
            clock: Arc::new(SystemClock),
        })
    }
}

/// The handler the route table holds.
pub type Dyn = ListMessages<dyn Store>;

/// Its entry in the route table (`routes/mod.rs`): how the local server and the tests
/// build it from their [`Wiring`], over `dyn` ports.
impl RouteFile for Dyn {
    const ROUTE: RouteInfo = RouteInfo {
        key: "POST /rooms/{roomId}/messages",
        function: "list-messages",
    };

    fn wire(w: &Wiring) -> Self {
        ListMessages {
            store: w.store.clone(),
            clock: w.clock.clone(),
        }
    }

    fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }
}

impl<S: IntoDyn<dyn Store> + ?Sized> From<ListMessages<S>> for Endpoint
{
    fn from(h: ListMessages<S>) -> Self {
        Self::ListMessages(ListMessages {
            store: h.store.into_dyn(),
            clock: h.clock,
        })
    }
}
