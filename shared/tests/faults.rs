//! Faults injected into storage and realtime: every route, and the stream's function,
//! answers a clear 5xx (or reports the records it could not project), never a hang, a
//! panic or a half-written user. How long a fault takes to answer is bounded by the
//! configured timeouts (DynamoDB: 5 s in all; Pusher: PUSHER_TIMEOUT_MS); the tests do not
//! time it (a busy machine would make that flaky): [`ends`] only keeps a hang from
//! stalling the suite, and the calls the fake saw show the SDK's retries ended.

mod common;

use common::dynamodb_proxy::{FakeDynamo, Fault};
use common::pusher_receiver::Receiver;
use common::{Functions, Reply, api_event, invoke, now};
use secret_rooms::domain::ports::SystemClock;
use secret_rooms::domain::rooms::RoomKey;
use secret_rooms::domain::users::IdPolicy;
use secret_rooms::http::routes;
use secret_rooms::http::{Endpoint, Handler as _, Route, Wiring};
use secret_rooms::store::DynamoStore;
use std::sync::Arc;
use std::time::Duration;

/// `future`'s output, or a panic naming `what` if it has not ended after a minute: far
/// past every configured timeout, so a test fails on a hang, never on a slow machine.
async fn ends<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(60), future).await {
        Ok(output) => output,
        Err(_) => panic!("{what} hung: no answer after a minute"),
    }
}

async fn store_at(endpoint: &str) -> Arc<DynamoStore> {
    Arc::new(DynamoStore::with_endpoint("faults", endpoint).await)
}

async fn all_routes(store: Arc<DynamoStore>) -> Vec<(Route, Endpoint, serde_json::Value)> {
    let receiver = Receiver::start().await;
    let pusher = secret_rooms::realtime::pusher::PusherClient::new(
        &secret_rooms::realtime::pusher::PusherConfig {
            app_id: common::pusher_receiver::APP_ID.into(),
            credentials: secret_rooms::realtime::pusher::PusherCredentials::new(
                common::pusher_receiver::KEY,
                common::pusher_receiver::SECRET,
            ),
            base_url: receiver.base_url.clone(),
            timeout: Duration::from_millis(1500),
        },
    )
    .unwrap();
    let endpoints = Endpoint::all(Wiring {
        store,
        realtime: Arc::new(pusher),
        credentials: secret_rooms::realtime::pusher::PusherCredentials::new("k", "s"),
        room_key: RoomKey::parse(common::ROOM_KEY).unwrap(),
        clock: Arc::new(SystemClock),
        rate: Default::default(),
        ttl: Default::default(),
        connect: secret_rooms::domain::rooms::ConnectLimits::UNLIMITED,
        create_limit: None,
        ids: IdPolicy::default(),
    });
    // Each route's sample event (`events/<function>.json`, for `sam local invoke`): a
    // valid request, so that it reaches the store.
    endpoints
        .into_iter()
        .map(|endpoint| {
            let route = endpoint.route();
            let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../events/{}.json", route.function()));
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let event: serde_json::Value = serde_json::from_str(&text).unwrap();
            (route, endpoint, event)
        })
        .collect()
}

fn assert_storage_unavailable(route: Route, reply: &Reply) {
    assert_eq!(reply.status, 503, "{route:?}: {}", reply.body);
    assert_eq!(
        reply.body["error"]["code"], "storage_unavailable",
        "{route:?}"
    );
    assert!(
        reply.body["error"]["requestId"].is_string(),
        "{route:?}: a 5xx names its log line"
    );
    assert_eq!(reply.headers["retry-after"], "1", "{route:?}");
}

async fn every_route_answers_503(endpoint: &str) {
    let routes = all_routes(store_at(endpoint).await).await;
    assert_eq!(routes.len(), Route::ALL.len(), "every route");
    for (route, handler, event) in routes {
        let reply = ends(&format!("{route:?}"), invoke(&handler, &event)).await;
        assert_storage_unavailable(route, &reply);
    }
    // And the stream's function: a batch it cannot project is reported, record by
    // record, for Lambda to deliver again.
    let projector = secret_rooms::projector::Projector::new(store_at(endpoint).await);
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/project-changes.json"),
    )
    .unwrap();
    let batch: serde_json::Value = serde_json::from_str(&text).unwrap();
    let answer = ends("project-changes", projector.handle(&batch)).await;
    let failed = answer["batchItemFailures"].as_array().unwrap();
    let first = batch["Records"][0]["dynamodb"]["SequenceNumber"].clone();
    assert_eq!(
        failed.first().map(|f| &f["itemIdentifier"]),
        Some(&first),
        "the batch is delivered again from its first record: {answer}"
    );
}

#[tokio::test]
async fn dynamodb_unreachable() {
    let refused = secret_rooms_test_kit::refused::RefusedPort::new();
    every_route_answers_503(&refused.url).await;
}

#[tokio::test]
async fn dynamodb_hanging_past_the_timeout() {
    let fake = FakeDynamo::start(Fault::Hang).await;
    every_route_answers_503(&fake.endpoint).await;
}

#[tokio::test]
async fn dynamodb_throttling_is_retried_then_answered_503() {
    let fake = FakeDynamo::start(Fault::Throttle).await;
    every_route_answers_503(&fake.endpoint).await;
    let calls = fake.calls();
    // The SDK's standard mode retries a throttled read or write: 3 attempts for each
    // route's first call, in `Route::ALL`'s order (the counter, the requester's read, the
    // message count, the membership, the room's read for history and for a block, the
    // lister's query, the rotator's read), then for the stream function's first (the
    // holder's marker). (A route this list does not name yet: 3 attempts of one call.)
    let first_call = |route: Route| match route {
        Route::CreateUser | Route::SendMessage => Some("UpdateItem"),
        Route::Connect
        | Route::ChannelAuth
        | Route::ListMessages
        | Route::BlockRoom
        | Route::RotateId => Some("GetItem"),
        Route::ListRooms => Some("Query"),
        #[allow(unreachable_patterns)]
        _ => None,
    };
    assert_eq!(calls.len(), 3 * (Route::ALL.len() + 1), "{calls:?}");
    let tries: Vec<&[String]> = calls.chunks(3).collect();
    for (route, tried) in Route::ALL.iter().zip(&tries) {
        assert!(
            tried.iter().all(|op| *op == tried[0]),
            "{route:?}: {tried:?}"
        );
        if let Some(op) = first_call(*route) {
            assert_eq!(tried[0], op, "{route:?}");
        }
    }
    assert_eq!(
        tries.last(),
        Some(
            &&[
                "GetItem".to_owned(),
                "GetItem".to_owned(),
                "GetItem".to_owned()
            ][..]
        )
    );
}

#[tokio::test]
async fn dynamodb_internal_errors_answer_503() {
    let fake = FakeDynamo::start(Fault::InternalError).await;
    every_route_answers_503(&fake.endpoint).await;
}

#[tokio::test]
async fn a_transaction_conflict_is_tried_three_times_then_answers_503() {
    let fake = FakeDynamo::start(Fault::TransactionConflict).await;
    let store = store_at(&fake.endpoint).await;
    let create = Endpoint::from(routes::CreateUser::new(store, Arc::new(SystemClock)));
    let event = api_event(Route::CreateUser, "/users/create", None, None);
    let reply = ends("create", invoke(&create, &event)).await;
    assert_storage_unavailable(Route::CreateUser, &reply);
    // The user's two items only ever travel together, in one transaction: there is no
    // separate write that could leave half a user behind. A cancelled transaction wrote
    // nothing, so it is tried three times in all.
    let calls = fake.calls();
    assert_eq!(
        calls,
        [
            "UpdateItem",
            "TransactWriteItems",
            "TransactWriteItems",
            "TransactWriteItems"
        ],
        "{calls:?}"
    );
}

#[tokio::test]
async fn pusher_hanging_answers_502_after_its_timeout() {
    let pusher = Receiver::start().await;
    let f = Functions::start(&pusher.base_url).await;
    let (_, alice, _) = f.create().await;
    let (bob_pub, _, _) = f.create().await;
    let room = f.room(&alice, &bob_pub).await;
    pusher.hang();
    // PUSHER_TIMEOUT_MS is 1500 in the test configuration: the publish gives up, where
    // the receiver would answer only after a minute.
    let reply = ends("the send", f.send(&alice, &room, "hello?")).await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], "realtime_unavailable");
}

#[tokio::test]
async fn a_message_count_whose_answer_was_lost_is_counted_once() {
    use secret_rooms::domain::rooms::connect;
    use secret_rooms::domain::users::{UserIds, create_user};
    use secret_rooms::store::{Allowance, MessageStore, RateWindow};
    let moto = common::fresh_store().await;
    let key = RoomKey::parse(common::ROOM_KEY).unwrap();
    let alice = create_user(
        &moto,
        &UserIds::default(),
        IdPolicy::default(),
        None,
        None,
        now(),
    )
    .await
    .unwrap();
    let bob = create_user(
        &moto,
        &UserIds::default(),
        IdPolicy::default(),
        None,
        None,
        now(),
    )
    .await
    .unwrap();
    let room = connect(&moto, &key, &alice.private_id, bob.public_id, now())
        .await
        .unwrap();
    let a = alice.private_id.hash();
    let w = RateWindow {
        window: 7,
        limit: 2,
    };
    // Start the window directly, then count through a proxy that loses the answer of
    // the first update: the SDK retries it after its 2 s attempt timeout.
    assert!(matches!(
        moto.count_message(&room, &a, w, &common::sent())
            .await
            .unwrap(),
        Allowance::Allowed(_)
    ));
    let proxy = common::dynamodb_proxy::Proxy::start(
        &std::env::var(common::ENDPOINT_VAR).unwrap(),
        Some("UpdateItem"),
    )
    .await;
    // Production's 2 s attempt timeout, so that the proxy's 3 s delay makes the SDK retry;
    // room in all for moto, which serves one request at a time.
    let timeouts = secret_rooms::store::Timeouts {
        attempt: Duration::from_secs(2),
        operation: Duration::from_secs(30),
    };
    let through_proxy =
        DynamoStore::with_endpoint_and_timeouts(moto.table(), &proxy.endpoint, timeouts).await;
    let mut trips = common::round_trip_counter(&through_proxy);
    // The retry finds the message remembered as the sender's last: counted already.
    let sent = common::sent();
    let counted = through_proxy
        .count_message(&room, &a, w, &sent)
        .await
        .unwrap();
    assert!(
        matches!(counted, Allowance::SentBefore { first, .. } if first == sent),
        "{counted:?}"
    );
    assert!(trips() >= 2, "the lost answer was retried");
    // Two messages counted, not three: the limit of two is reached exactly now.
    assert_eq!(
        moto.count_message(&room, &a, w, &common::sent())
            .await
            .unwrap(),
        Allowance::Limited
    );
}
