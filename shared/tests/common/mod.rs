//! What these tests share beyond the test kit (`secret-rooms-test-kit`): the four
//! functions configured as in production on a fresh table, and their test settings.
#![allow(dead_code, unused_imports)]

pub use secret_rooms_test_kit::events::{Reply, api_event, invoke};
pub use secret_rooms_test_kit::tables::{
    ENDPOINT_VAR, Items, fresh_store, fresh_table_name, round_trip_counter, test_timeouts,
};
pub use secret_rooms_test_kit::{dynamodb_proxy, pusher_receiver};

use pusher_receiver as receiver;
use secret_rooms::domain::ports::{Clock, SystemClock};
use std::collections::HashMap;
use std::sync::Arc;

pub const RATE_LIMIT: u32 = 8;
pub const ROOM_KEY: &str = "59830ebc3a4184110566bf1a290d08473dfdcbd492ce498b14cd1a5e2fa2e441";

/// Environment for `Endpoint::from_env`: a fresh table, the test room key, and Pusher
/// pointed at `pusher_base` (the receiver).
pub fn env_map(table: &str, pusher_base: &str) -> HashMap<String, String> {
    HashMap::from([
        ("TABLE_NAME".into(), table.into()),
        ("ROOM_ID_KEY".into(), ROOM_KEY.into()),
        ("PUSHER_APP_ID".into(), receiver::APP_ID.into()),
        ("PUSHER_KEY".into(), receiver::KEY.into()),
        ("PUSHER_SECRET".into(), receiver::SECRET.into()),
        ("PUSHER_HOST".into(), pusher_base.into()),
        ("PUSHER_TIMEOUT_MS".into(), "1500".into()),
        // A day-long window, so that no test runs across a window's end.
        ("MESSAGE_RATE_LIMIT".into(), RATE_LIMIT.to_string()),
        ("MESSAGE_RATE_WINDOW_SECS".into(), "86400".into()),
        // Tests connect one identity to more than the 30 rooms an hour of production
        // (the room cap); the connect limit's own test sets its own.
        ("CONNECT_RATE_LIMIT".into(), "1000".into()),
    ])
    .into_iter()
    // What Lambda sets (credentials, region) and the test command's moto endpoint and
    // timeouts: the functions read them from this map, not from the process.
    .chain(
        [
            "AWS_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            ENDPOINT_VAR,
            "DYNAMODB_ATTEMPT_TIMEOUT_MS",
            "DYNAMODB_OPERATION_TIMEOUT_MS",
        ]
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), std::env::var(name).ok()?))),
    )
    .collect()
}

use secret_rooms::http::{Endpoint, Route};
use secret_rooms::projector::{Projector, StreamReader};
use serde_json::{Value, json};

tokio::task_local! {
    /// Set by [`on_both_backends!`]: the functions of this test run on the embedded store.
    static ON_EMBEDDED: bool;
}

/// Run `test` with its functions on the embedded store (see [`Functions::start_with`]).
pub async fn on_embedded<F: std::future::Future>(test: F) -> F::Output {
    ON_EMBEDDED.scope(true, test).await
}

/// Each test named, as a `dynamodb::` test (moto) and an `embedded::` one (an in-memory
/// embedded store, no server needed): the same body, the same assertions.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod dynamodb {
            $(#[tokio::test]
            async fn $name() {
                super::$name().await
            })*
        }
        mod embedded {
            $(#[tokio::test]
            async fn $name() {
                $crate::common::on_embedded(super::$name()).await
            })*
        }
    };
}

/// Where the functions keep their state.
enum Backend {
    /// A fresh table on moto, and its stream as Lambda reads it for `project-changes`
    /// (straight from the test command's server, not through any proxy a test puts
    /// before the functions).
    Dynamo {
        table: String,
        project_changes: Box<Projector>,
        stream: Box<StreamReader>,
    },
    /// An in-memory embedded store, whose own worker keeps the room lists.
    Embedded(secret_rooms::store::EmbeddedStore),
}

/// The eight route functions (and, on DynamoDB, the stream's) on one fresh store,
/// configured as in production but for the endpoints: moto for DynamoDB (or, in an
/// `embedded::` test, the embedded store, wired as the local server wires it), the
/// receiver for Pusher.
pub struct Functions {
    backend: Backend,
    /// One a route, in `Route::ALL`'s order.
    endpoints: Vec<Endpoint>,
}

impl Functions {
    pub async fn start(pusher_base: &str) -> Self {
        Self::start_with_clock(pusher_base, Arc::new(SystemClock)).await
    }

    /// The functions, reading the time from `clock`.
    pub async fn start_with_clock(pusher_base: &str, clock: Arc<dyn Clock>) -> Self {
        Self::start_with(pusher_base, clock, &[]).await
    }

    /// The functions, with `extra` variables over the test settings.
    pub async fn start_with(
        pusher_base: &str,
        clock: Arc<dyn Clock>,
        extra: &[(&str, &str)],
    ) -> Self {
        if ON_EMBEDDED.try_with(|on| *on).unwrap_or(false) {
            return Self::start_embedded(pusher_base, clock, extra);
        }
        let store = fresh_store().await;
        let mut env = env_map(store.table(), pusher_base);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let lookup = move |k: &str| env.get(k).cloned();
        let mut endpoints = Vec::new();
        for route in Route::ALL {
            let endpoint = Endpoint::from_env(route, &lookup)
                .await
                .expect("valid test configuration");
            endpoints.push(endpoint.with_clock(clock.clone()));
        }
        Self {
            endpoints,
            backend: Backend::Dynamo {
                table: store.table().to_owned(),
                project_changes: Box::new(
                    Projector::from_env(&lookup).expect("valid test configuration"),
                ),
                stream: Box::new(
                    secret_rooms::projector::reader_for(&store)
                        .await
                        .expect("a stream reader"),
                ),
            },
        }
    }

    /// The same functions over an in-memory embedded store, from the same settings,
    /// wired as the local server wires them ([`Endpoint::all`]).
    fn start_embedded(pusher_base: &str, clock: Arc<dyn Clock>, extra: &[(&str, &str)]) -> Self {
        use secret_rooms::config;
        let mut env = env_map("unused", pusher_base);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let lookup = move |k: &str| env.get(k).cloned();
        let store = secret_rooms::store::EmbeddedStore::in_memory().expect("an in-memory store");
        let pusher = config::pusher(&lookup).expect("valid test configuration");
        let wiring = secret_rooms::http::Wiring {
            store: Arc::new(store.clone()),
            realtime: Arc::new(secret_rooms::wiring::pusher_client(&pusher).expect("a client")),
            credentials: pusher.credentials.clone(),
            room_key: config::room_key(&lookup).expect("valid test configuration"),
            clock,
            rate: config::rate_limit(&lookup).expect("valid test configuration"),
            ttl: config::message_ttl(&lookup).expect("valid test configuration"),
            connect: config::connect_limits(&lookup).expect("valid test configuration"),
            create_limit: config::create_limit(&lookup).expect("valid test configuration"),
            ids: secret_rooms::domain::users::IdPolicy::default(),
        };
        Self {
            endpoints: Endpoint::all(wiring),
            backend: Backend::Embedded(store),
        }
    }

    /// Let the room lists catch up with every write so far: on DynamoDB, deliver the
    /// table's stream to `project-changes`, as Lambda does, until it is read to its end
    /// (a record it reports failed fails the test); on the embedded store, apply what
    /// its writes queued.
    pub async fn settle(&self) {
        match &self.backend {
            Backend::Dynamo {
                project_changes,
                stream,
                ..
            } => {
                stream
                    .settle(project_changes)
                    .await
                    .expect("the stream's function projects every record");
            }
            Backend::Embedded(store) => {
                store
                    .settle()
                    .await
                    .expect("the projection applies every change");
            }
        }
    }

    pub fn endpoint(&self, route: Route) -> &Endpoint {
        let at = Route::ALL.iter().position(|r| *r == route);
        &self.endpoints[at.expect("every route is in Route::ALL")]
    }

    pub async fn call(
        &self,
        route: Route,
        path: &str,
        content_type: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        invoke(
            self.endpoint(route),
            &api_event(route, path, content_type, body),
        )
        .await
    }

    pub async fn create(&self) -> (String, String, String) {
        self.create_with(None).await
    }

    /// A create with this body (`None`: no body at all), which must succeed.
    pub async fn create_with(&self, body: Option<&Value>) -> (String, String, String) {
        let body = body.map(Value::to_string);
        let r = self
            .call(
                Route::CreateUser,
                "/users/create",
                Some("application/json"),
                body.as_deref(),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let field = |k: &str| r.body[k].as_str().unwrap().to_owned();
        (field("publicId"), field("privateId"), field("username"))
    }

    pub async fn connect(&self, private_id: &str, public_id: &str) -> Reply {
        let body = json!({"privateId": private_id}).to_string();
        self.call(
            Route::Connect,
            &format!("/users/{public_id}/connect"),
            Some("application/json"),
            Some(&body),
        )
        .await
    }

    /// The room id `private_id` gets connecting to `public_id` (which must succeed).
    pub async fn room(&self, private_id: &str, public_id: &str) -> String {
        let reply = self.connect(private_id, public_id).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["roomId"].as_str().unwrap().to_owned()
    }

    pub async fn send(&self, private_id: &str, room: &str, message: &str) -> Reply {
        let body = json!({"privateId": private_id, "message": message}).to_string();
        self.call(
            Route::SendMessage,
            &format!("/rooms/{room}/message"),
            Some("application/json"),
            Some(&body),
        )
        .await
    }

    /// A page of the room's history: `body` is the JSON body's fields besides the
    /// private id.
    pub async fn history(&self, private_id: &str, room: &str, body: Value) -> Reply {
        let mut body = body;
        body["privateId"] = json!(private_id);
        self.call(
            Route::ListMessages,
            &format!("/rooms/{room}/messages"),
            Some("application/json"),
            Some(&body.to_string()),
        )
        .await
    }

    /// The whole history `private_id` may read, following `next`, as message texts.
    pub async fn history_texts(&self, private_id: &str, room: &str) -> Vec<String> {
        let mut texts = Vec::new();
        let mut after = Value::Null;
        loop {
            let reply = self
                .history(private_id, room, json!({"after": after, "limit": 2}))
                .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            for m in reply.body["messages"].as_array().unwrap() {
                texts.push(m["message"].as_str().unwrap().to_owned());
            }
            after = reply.body["next"].clone();
            if after.is_null() {
                return texts;
            }
        }
    }

    /// `POST /users/rooms`, once the projection has caught up (on AWS it trails the
    /// writes by the stream's delay).
    pub async fn rooms(&self, private_id: &str) -> Reply {
        self.settle().await;
        let body = json!({"privateId": private_id}).to_string();
        self.call(
            Route::ListRooms,
            "/users/rooms",
            Some("application/json"),
            Some(&body),
        )
        .await
    }

    /// `POST /users/rotate`.
    pub async fn rotate(&self, private_id: &str) -> Reply {
        let body = json!({"privateId": private_id}).to_string();
        self.call(
            Route::RotateId,
            "/users/rotate",
            Some("application/json"),
            Some(&body),
        )
        .await
    }

    pub async fn block(&self, private_id: &str, room: &str) -> Reply {
        let body = json!({"privateId": private_id}).to_string();
        self.call(
            Route::BlockRoom,
            &format!("/rooms/{room}/block"),
            Some("application/json"),
            Some(&body),
        )
        .await
    }

    /// Channel auth as pusher-js sends it: form-encoded.
    pub async fn auth(&self, private_id: &str, socket_id: &str, channel: &str) -> Reply {
        let body = serde_urlencoded::to_string([
            ("socket_id", socket_id),
            ("channel_name", channel),
            ("privateId", private_id),
        ])
        .unwrap();
        self.call(
            Route::ChannelAuth,
            "/pusher/auth",
            Some("application/x-www-form-urlencoded"),
            Some(&body),
        )
        .await
    }

    /// The table, in a test that runs on DynamoDB only.
    pub fn table(&self) -> &str {
        match &self.backend {
            Backend::Dynamo { table, .. } => table,
            Backend::Embedded(_) => panic!("a DynamoDB-only test ran on the embedded store"),
        }
    }

    /// The stream's function, in a test that runs on DynamoDB only.
    pub fn project_changes(&self) -> &Projector {
        match &self.backend {
            Backend::Dynamo {
                project_changes, ..
            } => project_changes,
            Backend::Embedded(_) => panic!("a DynamoDB-only test ran on the embedded store"),
        }
    }

    /// Every item of the store, by key: "changes nothing" is checked by comparing two.
    pub async fn snapshot(&self) -> std::collections::BTreeMap<String, Value> {
        match &self.backend {
            Backend::Dynamo { table, .. } => {
                secret_rooms_test_kit::tables::reopen(table)
                    .await
                    .items()
                    .await
            }
            Backend::Embedded(store) => store.items().await,
        }
    }
}

/// The time the domain operations are called with in tests that do not fix it.
pub fn now() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

/// A new message, as `MessageStore::count_message` is told of it: a fresh id each call.
pub fn sent() -> secret_rooms::domain::sent::LastSent {
    use secret_rooms::domain::sent::{LastSent, MessageId};
    let id = MessageId::random().expect("the OS random source");
    let room = secret_rooms::domain::RoomId::parse(&"A".repeat(43)).expect("a room id");
    LastSent::of(&id, &room, "a message", now())
}
