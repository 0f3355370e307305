//! Property-based fuzzing of every route's request handling, through the Lambda
//! handler: arbitrary methods, path parameters, content types and bodies (raw bytes,
//! broken encodings, JSON and forms built from valid and invalid pieces) never panic and
//! never answer 5xx; every error has the SPEC's shape.
//!
//! The test command runs 1024 cases across the routes; a long run is
//! `PROPTEST_CASES=200000 ./scripts/test.sh --test fuzz` (200 000 cases took 76 s here).

mod common;

use common::pusher_receiver::{self as receiver, Receiver};
use common::{ROOM_KEY, invoke, now};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use secret_rooms::domain::messages::RateLimit;
use secret_rooms::domain::ports::SystemClock;
use secret_rooms::domain::rooms::{RoomKey, connect};
use secret_rooms::domain::users::{IdPolicy, UserIds, create_user};
use secret_rooms::http::routes;
use secret_rooms::http::{Endpoint, Route};
use secret_rooms::realtime::pusher::{PusherClient, PusherConfig, PusherCredentials};
use secret_rooms::store::{EmbeddedStore, Store};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

struct World {
    endpoints: Vec<(Route, Endpoint)>,
    /// Valid values to mix in, so that the fuzzer reaches past the parsers.
    public_ids: Vec<String>,
    private_ids: Vec<String>,
    room_ids: Vec<String>,
}

async fn world() -> World {
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::in_memory().unwrap());
    let key = RoomKey::parse(ROOM_KEY).unwrap();
    let alice = create_user(
        store.as_ref(),
        &UserIds::default(),
        IdPolicy::default(),
        None,
        None,
        now(),
    )
    .await
    .unwrap();
    let bob = create_user(
        store.as_ref(),
        &UserIds::default(),
        IdPolicy::default(),
        None,
        None,
        now(),
    )
    .await
    .unwrap();
    let room = connect(
        store.as_ref(),
        &key,
        &alice.private_id,
        bob.public_id,
        now(),
    )
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let credentials = PusherCredentials::new(receiver::KEY, receiver::SECRET);
    let pusher = PusherClient::new(&PusherConfig {
        app_id: receiver::APP_ID.into(),
        credentials: credentials.clone(),
        base_url: receiver.base_url.clone(),
        timeout: Duration::from_secs(2),
    })
    .unwrap();
    let pusher = Arc::new(pusher);
    // Leak the receiver's task for the test's lifetime: it serves every case.
    std::mem::forget(receiver);
    World {
        endpoints: vec![
            (
                Route::CreateUser,
                Endpoint::from(routes::CreateUser::new(
                    store.clone(),
                    Arc::new(SystemClock),
                )),
            ),
            (
                Route::Connect,
                Endpoint::from(routes::Connect {
                    limits: secret_rooms::domain::rooms::ConnectLimits::UNLIMITED,
                    store: store.clone(),
                    realtime: pusher.clone(),
                    room_key: key.clone(),
                    clock: Arc::new(SystemClock),
                }),
            ),
            (
                Route::SendMessage,
                Endpoint::from(routes::SendMessage {
                    store: store.clone(),
                    realtime: pusher,
                    rate: RateLimit {
                        count: 1_000_000,
                        window_secs: 1,
                    },
                    ttl: Default::default(),
                    clock: Arc::new(SystemClock),
                }),
            ),
            (
                Route::ChannelAuth,
                Endpoint::from(routes::ChannelAuth {
                    store: store.clone(),
                    credentials,
                    room_key: key.clone(),
                }),
            ),
            // (Not block: one blocked room would end every later success.)
            (
                Route::ListMessages,
                Endpoint::from(routes::ListMessages {
                    store: store.clone(),
                    clock: Arc::new(SystemClock),
                }),
            ),
            (
                Route::ListRooms,
                Endpoint::from(routes::ListRooms {
                    store: store.clone(),
                    room_key: key,
                    clock: Arc::new(SystemClock),
                }),
            ),
            (
                Route::RotateId,
                Endpoint::from(routes::RotateId {
                    store,
                    ids: Default::default(),
                    limit: None,
                    clock: Arc::new(SystemClock),
                }),
            ),
        ],
        public_ids: vec![alice.public_id.to_string(), bob.public_id.to_string()],
        private_ids: vec![
            alice.private_id.expose().to_owned(),
            bob.private_id.expose().to_owned(),
        ],
        room_ids: vec![room.to_string()],
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".*",
        "[0-9]{3}-[0-9]{3}",
        "[0-9]{1,12}\\\\.[0-9]{1,12}",
        "[A-Za-z0-9_-]{43}",
        "private-[A-Za-z0-9_-]{43}",
        Just(String::new()),
        Just("x".repeat(5000)),
        Just("%00%ff/../\u{0}\u{feff}".to_owned()),
    ]
}

/// A value, valid or not, for one field.
fn value(pool: Vec<String>) -> impl Strategy<Value = Value> {
    let pooled = proptest::sample::select(pool).prop_map(Value::String);
    prop_oneof![
        4 => pooled,
        3 => text().prop_map(Value::String),
        1 => any::<i64>().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => Just(json!([])),
        1 => Just(json!({"nested": {"deep": [1, 2, 3]}})),
        1 => Just(Value::Bool(true)),
    ]
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("privateId".to_owned()),
        Just("message".to_owned()),
        Just("socket_id".to_owned()),
        Just("channel_name".to_owned()),
        Just("after".to_owned()),
        Just("limit".to_owned()),
        // (The pool's private ids are well-formed keys too: 43 base64url characters.)
        Just("publicKey".to_owned()),
        Just("privateID".to_owned()),
        "[a-z_]{1,12}",
    ]
}

#[derive(Debug, Clone)]
struct Case {
    route: usize,
    method: String,
    param: String,
    content_type: Option<String>,
    body: Vec<u8>,
    base64: bool,
}

fn case(w: &World) -> impl Strategy<Value = Case> {
    let mut all = w.private_ids.clone();
    all.extend(w.room_ids.iter().map(|r| format!("private-{r}")));
    all.extend(["123.456".to_owned(), "hello".to_owned()]);
    let json_body = proptest::collection::btree_map(field_name(), value(all), 0..5)
        .prop_map(|fields| serde_json::to_vec(&fields).unwrap());
    let form_body = proptest::collection::vec((field_name(), text()), 0..5).prop_map(|pairs| {
        serde_urlencoded::to_string(pairs)
            .unwrap_or_default()
            .into_bytes()
    });
    // Bodies of the right shape with valid or invalid values.
    let private = prop_oneof![proptest::sample::select(w.private_ids.clone()), text()];
    let room_channel = prop_oneof![
        proptest::sample::select(w.room_ids.clone()).prop_map(|r| format!("private-{r}")),
        text(),
    ];
    let socket = prop_oneof![Just("123.456".to_owned()), text()];
    let shaped = prop_oneof![
        private
            .clone()
            .prop_map(|p| serde_json::to_vec(&json!({"privateId": p})).unwrap()),
        (private.clone(), text())
            .prop_map(|(p, m)| serde_json::to_vec(&json!({"privateId": p, "message": m})).unwrap()),
        (socket, room_channel, private).prop_map(|(s, c, p)| {
            serde_urlencoded::to_string([("socket_id", s), ("channel_name", c), ("privateId", p)])
                .unwrap_or_default()
                .into_bytes()
        }),
        Just(b"{}".to_vec()),
    ];
    let body = prop_oneof![
        4 => shaped,
        3 => json_body,
        2 => form_body,
        1 => proptest::collection::vec(any::<u8>(), 0..300),
        1 => Just(b"{\"privateId\": \"\xff\xfe\"}".to_vec()),
    ];
    let mut params = w.public_ids.clone();
    params.extend(w.room_ids.clone());
    let param = prop_oneof![2 => proptest::sample::select(params), 1 => text()];
    let content_type = proptest::option::of(prop_oneof![
        Just("application/json".to_owned()),
        Just("application/x-www-form-urlencoded".to_owned()),
        Just("text/plain; charset=utf-8".to_owned()),
        "[ -~]{0,40}",
    ]);
    let method = prop_oneof![8 => Just("POST".to_owned()), 1 => Just("GET".to_owned()), 1 => Just("DELETE".to_owned())];
    (0..7usize, method, param, content_type, body, any::<bool>()).prop_map(
        |(route, method, param, content_type, body, base64)| Case {
            route,
            method,
            param,
            content_type,
            body,
            base64,
        },
    )
}

/// Well-formed requests with valid values (and varied encodings), so that every route's
/// success path is fuzzed too, not just its parsers.
fn valid_case(w: &World) -> impl Strategy<Value = Case> {
    let public = proptest::sample::select(w.public_ids.clone());
    let private = proptest::sample::select(w.private_ids.clone());
    let room = proptest::sample::select(w.room_ids.clone());
    let message = "[a-zA-Z0-9 ]{0,40}[a-z]|.{1,30}[a-z]";
    let json_type = proptest::option::of(Just("application/json".to_owned()));
    (
        0..7usize,
        public,
        private,
        room,
        message,
        json_type,
        any::<bool>(),
    )
        .prop_map(
            |(route, public, private, room, message, content_type, base64)| {
                let (param, body, content_type) = match route {
                    // A plaintext client, or one registering a key (a private id's text
                    // is a well-formed one).
                    0 if base64 => (String::new(), b"{}".to_vec(), content_type),
                    0 => (
                        String::new(),
                        serde_json::to_vec(&json!({"publicKey": private})).unwrap(),
                        content_type,
                    ),
                    1 => (
                        public,
                        serde_json::to_vec(&json!({"privateId": private})).unwrap(),
                        content_type,
                    ),
                    2 => (
                        room,
                        serde_json::to_vec(&json!({"privateId": private, "message": message}))
                            .unwrap(),
                        content_type,
                    ),
                    4 => (
                        room,
                        serde_json::to_vec(&json!({"privateId": private, "limit": 10})).unwrap(),
                        content_type,
                    ),
                    5 | 6 => (
                        String::new(),
                        serde_json::to_vec(&json!({"privateId": private})).unwrap(),
                        content_type,
                    ),
                    _ => (
                        String::new(),
                        serde_urlencoded::to_string([
                            ("socket_id", "123.456".to_owned()),
                            ("channel_name", format!("private-{room}")),
                            ("privateId", private),
                        ])
                        .unwrap()
                        .into_bytes(),
                        Some("application/x-www-form-urlencoded".to_owned()),
                    ),
                };
                Case {
                    route,
                    method: "POST".into(),
                    param,
                    content_type,
                    body,
                    base64,
                }
            },
        )
}

fn event(route: Route, c: &Case) -> Value {
    use base64::Engine as _;
    // What API Gateway passes: the table's route key and the path parameter's name.
    let (route_key, name) = (route.key(), route.path_param());
    let mut event = common::api_event(route, "/fuzz", c.content_type.as_deref(), None);
    event["routeKey"] = json!(route_key);
    event["requestContext"]["http"]["method"] = json!(c.method);
    if let Some(name) = name {
        event["pathParameters"] = json!({ name: c.param });
    }
    match std::str::from_utf8(&c.body) {
        Ok(text) if !c.base64 => event["body"] = json!(text),
        _ => {
            event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(&c.body));
            event["isBase64Encoded"] = json!(true);
        }
    }
    event
}

#[test]
fn no_request_panics_or_answers_5xx() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let world = runtime.block_on(world());
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1024);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let seen = std::cell::RefCell::new([[0usize; 6]; 7]);
    runner
        .run(
            &prop_oneof![3 => valid_case(&world), 7 => case(&world)],
            |c| {
                let (route, endpoint) = &world.endpoints[c.route];
                let reply = runtime.block_on(invoke(endpoint, &event(*route, &c)));
                prop_assert!(
                    reply.status < 500,
                    "{c:?} -> {} {}",
                    reply.status,
                    reply.body
                );
                if reply.status >= 400 {
                    prop_assert!(
                        reply.body["error"]["code"].is_string(),
                        "{c:?} -> {}",
                        reply.body
                    );
                    prop_assert!(
                        reply.body["error"]["message"].is_string(),
                        "{c:?} -> {}",
                        reply.body
                    );
                }
                seen.borrow_mut()[c.route][(reply.status / 100) as usize] += 1;
                Ok(())
            },
        )
        .unwrap();
    // The fuzzer must get past the parsers, not only bounce off them.
    for (route, statuses) in seen.borrow().iter().enumerate() {
        assert!(
            statuses[2] > 0,
            "route {route} never succeeded: {statuses:?}"
        );
        assert!(statuses[4] > 0, "route {route} never refused: {statuses:?}");
    }
}
