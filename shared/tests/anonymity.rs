//! SPEC v2 Rooms: a connect's answer never changes when an unused public id gets a
//! holder. Everything a connect does is observed (the answer, every DynamoDB request and
//! its answer through a recording proxy, the Pusher publishes, the items written) for
//! many unused ids, on a small id space; users are created until many of those ids are
//! taken; the connects are made again, and must match, call for call and byte for byte.

mod common;

use common::dynamodb_proxy::{Exchange, Proxy};
use common::pusher_receiver::Receiver;
use common::{ENDPOINT_VAR, Items, ROOM_KEY, api_event, fresh_store, invoke, test_timeouts};
use secret_rooms::domain::ports::FixedClock;
use secret_rooms::domain::rooms::RoomKey;
use secret_rooms::domain::users::IdPolicy;
use secret_rooms::domain::{PublicId, RoomId};
use secret_rooms::http::{Endpoint, Route, routes};
use secret_rooms::store::{DynamoStore, Store};
use secret_rooms_test_kit::tables::reopen;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Six-digit ids until half of these are taken, then nine-digit ones from this many.
const SHORT_SPACE: u32 = 24;
const LONG_SPACE: u32 = 16;

/// All a connect showed: to the caller, to DynamoDB, to Pusher, in the table.
#[derive(Debug, PartialEq)]
struct Observed {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Value,
    /// Every DynamoDB request and answer, without the per-request idempotency token.
    calls: Vec<Exchange>,
    published: usize,
    /// The room's item afterwards.
    room_item: Value,
}

fn without_tokens(mut calls: Vec<Exchange>) -> Vec<Exchange> {
    for call in &mut calls {
        if let Some(request) = call.request.as_object_mut() {
            request.remove("ClientRequestToken");
        }
    }
    calls
}

struct Setup {
    create: Endpoint,
    connect: Endpoint,
    proxy: Proxy,
    pusher: Receiver,
    table: DynamoStore,
}

impl Setup {
    async fn start() -> Self {
        let pusher = Receiver::start().await;
        let table = fresh_store().await;
        let upstream = std::env::var(ENDPOINT_VAR).unwrap();
        let proxy = Proxy::start(&upstream, None).await;
        let proxied = DynamoStore::with_endpoint_and_timeouts(
            table.table(),
            &proxy.endpoint,
            test_timeouts(),
        )
        .await;
        // One instant for every write, so that two connects can be compared byte for byte.
        let clock = Arc::new(FixedClock(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000),
        ));
        let create = Endpoint::from(routes::CreateUser {
            ids: IdPolicy {
                short_space: SHORT_SPACE,
                long_space: LONG_SPACE,
                attempts: 200,
            },
            ..routes::CreateUser::new(Arc::new(reopen(table.table()).await), clock.clone())
        });
        let connect = Endpoint::from(routes::Connect {
            store: Arc::new(proxied) as Arc<dyn Store>,
            room_key: RoomKey::parse(ROOM_KEY).unwrap(),
            clock,
        });
        Self {
            create,
            connect,
            proxy,
            pusher,
            table,
        }
    }

    async fn create(&self) -> (PublicId, String) {
        let reply = invoke(
            &self.create,
            &api_event(Route::CreateUser, "/users/create", None, None),
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        let public = PublicId::parse(reply.body["publicId"].as_str().unwrap()).unwrap();
        (public, reply.body["privateId"].as_str().unwrap().to_owned())
    }

    async fn connect(&self, private_id: &str, target: PublicId) -> Observed {
        self.proxy.take_exchanges();
        let published = self.pusher.published_count();
        let body = json!({"privateId": private_id}).to_string();
        let reply = invoke(
            &self.connect,
            &api_event(
                Route::Connect,
                &format!("/users/{target}/connect"),
                Some("application/json"),
                Some(&body),
            ),
        )
        .await;
        let calls = without_tokens(self.proxy.take_exchanges());
        let room_item = match reply.body["roomId"].as_str().and_then(RoomId::parse) {
            Some(room) => self.table.items().await[&format!("ROOM#{room}")].clone(),
            None => Value::Null,
        };
        Observed {
            status: reply.status,
            headers: reply
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
                .collect(),
            body: reply.body,
            calls,
            published: self.pusher.published_count() - published,
            room_item,
        }
    }
}

#[tokio::test]
async fn no_connect_answer_changes_when_an_unused_id_gets_a_holder() {
    let s = Setup::start().await;
    let (alice_id, alice) = s.create().await;
    let targets: Vec<PublicId> = (0..SHORT_SPACE)
        .map(|n| PublicId::from_number(n).unwrap())
        .chain((0..LONG_SPACE).map(|n| PublicId::long_from_number(n).unwrap()))
        .filter(|id| *id != alice_id)
        .collect();

    let mut before = Vec::new();
    for target in &targets {
        let seen = s.connect(&alice, *target).await;
        assert_eq!(seen.status, 200, "{}", seen.body);
        before.push(seen);
    }

    // Create users until at least a quarter of the targets of each form have a holder.
    let mut holders: BTreeMap<String, String> = BTreeMap::new();
    let taken = |holders: &BTreeMap<String, String>, long: bool| {
        targets
            .iter()
            .filter(|t| t.is_long() == long && holders.contains_key(&t.to_string()))
            .count()
    };
    while taken(&holders, false) < SHORT_SPACE as usize / 4
        || taken(&holders, true) < LONG_SPACE as usize / 4
    {
        let (id, private_id) = s.create().await;
        holders.insert(id.to_string(), private_id);
    }
    let still_unused = targets
        .iter()
        .filter(|t| !holders.contains_key(&t.to_string()))
        .count();
    assert!(
        still_unused > 0,
        "some targets stay unused, to compare with"
    );

    for (target, first) in targets.iter().zip(&before) {
        let again = s.connect(&alice, *target).await;
        assert_eq!(
            &again,
            first,
            "the connect to {target} changed after it got a holder ({})",
            holders.contains_key(&target.to_string())
        );
    }

    // Across targets, used or not, the calls differ only in the room id and the side
    // (which follows the ids' text order, not whether anybody holds them).
    let shape = |seen: &Observed| {
        let room = seen.body["roomId"].as_str().unwrap();
        let calls: Vec<Value> = seen
            .calls
            .iter()
            .map(|c| json!([c.operation, c.request, c.status, c.response]))
            .collect();
        let text = Value::from(calls)
            .to_string()
            .replace(room, "<room>")
            .replace("\"high\"", "\"<side>\"")
            .replace("\"low\"", "\"<side>\"");
        (seen.status, seen.headers.clone(), seen.published, text)
    };
    let first = shape(&before[0]);
    for seen in &before {
        assert_eq!(shape(seen), first);
    }
    assert_eq!(first.2, 0, "connect publishes nothing (yet)");
    let operations: Vec<_> = before[0].calls.iter().map(|c| &c.operation).collect();
    assert_eq!(operations, ["GetItem", "TransactWriteItems"]);

    // And a holder who connects back gets the room the connect to their unused id gave.
    for (target, first) in targets.iter().zip(&before) {
        if let Some(holder) = holders.get(&target.to_string()) {
            let back = s.connect(holder, alice_id).await;
            assert_eq!(back.body, first.body, "{target}");
        }
    }
}
