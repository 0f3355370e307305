//! SPEC v2 Rooms: a connect's answer never changes when an unused public id gets a
//! holder. Everything a connect does is observed (the answer, every DynamoDB request and
//! its answer through a recording proxy, the Pusher publishes, the items written) for
//! many unused ids, on a small id space; users are created until many of those ids are
//! taken; the connects are made again, and must match, call for call and byte for byte.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::dynamodb_proxy::{Exchange, Proxy};
use common::pusher_receiver::Receiver;
use common::{ENDPOINT_VAR, Items, ROOM_KEY, api_event, fresh_store, invoke, test_timeouts};
use secret_rooms::domain::ports::FixedClock;
use secret_rooms::domain::rooms::RoomKey;
use secret_rooms::domain::users::IdPolicy;
use secret_rooms::domain::{PublicId, RoomId};
use secret_rooms::http::{Endpoint, Route, routes};
use secret_rooms::realtime::pusher::{PusherClient, PusherConfig, PusherCredentials};
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
    /// Every publish: channel, event, data.
    // (trigger call, channel, event, data)
    published: Vec<(usize, String, String, Value)>,
    /// The room's item afterwards, and the room's entry in the target's inbox.
    room_item: Value,
    inbox_item: Value,
}

/// Without the per-request idempotency token, and without the requester's own connect
/// count in their user item's read (it grows with every connect, whatever the target).
fn without_tokens(mut calls: Vec<Exchange>) -> Vec<Exchange> {
    for call in &mut calls {
        if let Some(request) = call.request.as_object_mut() {
            request.remove("ClientRequestToken");
        }
        if let Some(item) = call
            .response
            .pointer_mut("/Item")
            .and_then(Value::as_object_mut)
        {
            item.remove("cr");
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
        let realtime = PusherClient::new(&PusherConfig {
            app_id: common::pusher_receiver::APP_ID.into(),
            credentials: PusherCredentials::new(
                common::pusher_receiver::KEY,
                common::pusher_receiver::SECRET,
            ),
            base_url: pusher.base_url.clone(),
            timeout: Duration::from_secs(2),
        })
        .unwrap();
        let connect = Endpoint::from(routes::Connect {
            limits: secret_rooms::domain::rooms::ConnectLimits::UNLIMITED,
            store: Arc::new(proxied) as Arc<dyn Store>,
            realtime: Arc::new(realtime),
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

    /// A user with a key of their own: a target's key must not show in a connect either.
    async fn create(&self) -> (PublicId, String) {
        let key = secret_rooms::domain::PrivateId::generate().unwrap();
        let body = json!({"publicKey": key.expose()}).to_string();
        let reply = invoke(
            &self.create,
            &api_event(
                Route::CreateUser,
                "/users/create",
                Some("application/json"),
                Some(&body),
            ),
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
        let (room_item, inbox_item) = match reply.body["roomId"].as_str().and_then(RoomId::parse) {
            Some(room) => {
                let items = self.table.items().await;
                (
                    items[&format!("ROOM#{room}")].clone(),
                    items[&format!("PUBLIC#{target} ROOM#{room}")].clone(),
                )
            }
            None => (Value::Null, Value::Null),
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
            published: {
                let new = &self.pusher.published()[published..];
                // Calls counted from this connect's first.
                let base = new.first().map_or(0, |p| p.call);
                new.iter()
                    .map(|p| {
                        (
                            p.call - base,
                            p.channel.clone(),
                            p.event.clone(),
                            p.data.clone(),
                        )
                    })
                    .collect()
            },
            room_item,
            inbox_item,
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

    // A first connect to each target, then another: a connect joins a room anew the
    // first time (counted against the cap) and again after, so each kind is compared
    // with its own kind.
    let mut first_joins = Vec::new();
    for target in &targets {
        let seen = s.connect(&alice, *target).await;
        assert_eq!(seen.status, 200, "{}", seen.body);
        first_joins.push(seen);
    }
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

    // Across targets, used or not, the calls differ only in the room id, the target's id
    // and its inbox channel, and the side (which follows the ids' text order, not whether
    // anybody holds them).
    let key = RoomKey::parse(ROOM_KEY).unwrap();
    let shape = |(target, seen): (&PublicId, &Observed)| {
        let room = seen.body["roomId"].as_str().unwrap();
        let calls: Vec<Value> = seen
            .calls
            .iter()
            .map(|c| {
                // The requester's own open rooms, which grow with each first join (and
                // are absent before the first).
                let mut response = c.response.clone();
                if let Some(item) = response.pointer_mut("/Item").and_then(Value::as_object_mut) {
                    item.insert("rooms".into(), json!("<the requester's rooms>"));
                    // And the marks of the rooms their connects announced.
                    if item.contains_key("ra") {
                        item.insert("ra".into(), json!("<the requester's marks>"));
                    }
                }
                json!([c.operation, c.request, c.status, response])
            })
            .collect();
        let published: Vec<Value> = seen
            .published
            .iter()
            .map(|(call, channel, event, data)| json!([call, channel, event, data]))
            .collect();
        // The room's tag, as DynamoDB's JSON carries bytes (standard base64).
        let tag = RoomId::parse(room).unwrap().tag();
        let tag = STANDARD.encode(URL_SAFE_NO_PAD.decode(tag).unwrap());
        let mark = secret_rooms::domain::rooms::announce_mark(&RoomId::parse(room).unwrap());
        let text = json!([calls, published])
            .to_string()
            .replace(&format!("[\"{mark}\"]"), "[\"<room mark>\"]")
            .replace(room, "<room>")
            .replace(&tag, "<room tag>")
            .replace(&key.inbox_channel(*target), "<inbox>")
            .replace(&target.to_string(), "<target>")
            .replace("\"high\"", "\"<side>\"")
            .replace("\"low\"", "\"<side>\"");
        (seen.status, seen.headers.clone(), text)
    };
    // (The requester's very first connect starts their connect count, which every later
    // one adds to: that one is compared with none. The first joins record their rooms'
    // announcements until the record is full, then record none: each kind is compared
    // with its own. No connect again is announced: all are alike.)
    let full = secret_rooms::domain::rooms::MAX_ANNOUNCED;
    let observed = targets.iter().zip(&first_joins);
    let (recording, past_full): (Vec<_>, Vec<_>) =
        observed.enumerate().skip(1).partition(|(n, _)| *n < full);
    let again: Vec<_> = targets.iter().zip(&before).enumerate().skip(1).collect();
    assert!(
        recording.len() > 1 && past_full.len() > 1,
        "both kinds are compared"
    );
    for kind in [recording, past_full, again] {
        let first = shape(kind[0].1);
        for (_, seen) in kind {
            assert_eq!(shape(seen), first);
        }
    }
    // A first join's one publish, to the target's inbox and the room's channel (a
    // connect again in the same window publishes nothing).
    assert!(before.iter().all(|seen| seen.published.is_empty()));
    let published = &first_joins[0].published;
    let channels: Vec<&str> = published.iter().map(|p| p.1.as_str()).collect();
    let room_channel = format!(
        "private-{}",
        first_joins[0].body["roomId"].as_str().unwrap()
    );
    assert_eq!(channels, [&key.inbox_channel(targets[0]), &room_channel]);
    assert!(
        published
            .iter()
            .all(|p| p.0 == published[0].0 && p.2 == "room")
    );
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
