//! Every route through its function's Lambda handler, as API Gateway invokes it, each
//! test twice (`on_both_backends!`): on DynamoDB (moto) and on the embedded store, with
//! Pusher on a local receiver that verifies each signature. The whole
//! flow, rooms of unused ids, every error row (and that bad input changes nothing), the
//! room cap, 502 on a failing Pusher, 503 on an exhausted id space, the per-address,
//! message and connect limits, history newest first, exactly-once sends, the inbox
//! (announcements, offered and joined rooms, a rotation), and keys reaching the peer
//! only once both joined. On DynamoDB each room list first projects the table's
//! stream, read from moto, through the `project-changes` handler as Lambda would.

mod common;

use common::pusher_receiver::{self as receiver, Receiver};
use common::{Functions, api_event, fresh_store, invoke};
use secret_rooms::domain::ports::{FixedClock, SystemClock};
use secret_rooms::domain::rooms::MAX_ROOMS;
use secret_rooms::domain::users::IdPolicy;
use secret_rooms::http::routes;
use secret_rooms::http::{Endpoint, Route};
use secret_rooms::realtime::pusher::PusherCredentials;
use secret_rooms_test_kit::pusher_verify::verify_channel_auth;
use serde_json::{Value, json};
use std::sync::Arc;

fn error_code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

fn assert_error(reply: &common::Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(error_code(&reply.body), code, "{}", reply.body);
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(
        message.len() > 10,
        "the message must be a sentence: {message:?}"
    );
    assert_eq!(reply.headers["content-type"], "application/json");
}

fn credentials() -> PusherCredentials {
    PusherCredentials::new(receiver::KEY, receiver::SECRET)
}

async fn two_users_connect_chat_and_subscribe() {
    let pusher = Receiver::start().await;
    let f = Functions::start(&pusher.base_url).await;
    let (alice_pub, alice, _) = f.create().await;
    let (bob_pub, bob, bob_name) = f.create().await;
    assert_ne!(alice_pub, bob_pub);
    assert_ne!(alice, bob);

    // Both sides get the same room, whoever asks first.
    let a = f.connect(&alice, &bob_pub).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let b = f.connect(&bob, &alice_pub).await;
    assert_eq!(a.body, b.body);
    let room = a.body["roomId"].as_str().unwrap().to_owned();
    let channel = a.body["channel"].as_str().unwrap().to_owned();
    // JSON sent as `curl -d` (a form type) or a plain `fetch` (text/plain) is JSON too.
    let body = json!({"privateId": alice}).to_string();
    for content_type in [
        "application/x-www-form-urlencoded",
        "text/plain;charset=UTF-8",
    ] {
        let path = format!("/users/{bob_pub}/connect");
        let again = f
            .call(Route::Connect, &path, Some(content_type), Some(&body))
            .await;
        assert_eq!(again.body, a.body, "{content_type}");
    }
    assert_eq!(channel, format!("private-{room}"));
    assert_eq!(
        a.body.as_object().unwrap().len(),
        2,
        "roomId and channel only"
    );
    assert!(
        !a.body.to_string().contains(&bob),
        "the peer's private id must not leak"
    );

    // A message is published once, signed, on the room's channel, with the SPEC's payload.
    let sent = f.send(&bob, &room, "hello, Alice ✨").await;
    assert_eq!(sent.status, 204, "{}", sent.body);
    assert_eq!(sent.body, Value::Null);
    assert!(pusher.rejected().is_empty(), "{:?}", pusher.rejected());
    let published = pusher.messages();
    assert_eq!(published.len(), 1);
    let event = &published[0];
    assert_eq!(event.channel, channel);
    assert_eq!(event.event, "message");
    let data = &event.data;
    assert_eq!(data["roomId"], json!(room));
    assert_eq!(
        data["from"],
        json!({"publicId": bob_pub, "username": bob_name})
    );
    assert_eq!(data["message"], json!("hello, Alice ✨"));
    assert_eq!(data["id"].as_str().unwrap().len(), 32);
    assert!(data["sentAt"].as_str().unwrap().ends_with('Z'));
    let mut keys: Vec<_> = data.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["from", "id", "message", "roomId", "sentAt"]);
    assert!(
        !data.to_string().contains(&bob),
        "the sender's private id must not be published"
    );

    // Members may subscribe: form-encoded as pusher-js sends it, and as JSON.
    let auth = f.auth(&alice, "1234.5678", &channel).await;
    assert_eq!(auth.status, 200, "{}", auth.body);
    let signature = auth.body["auth"].as_str().unwrap();
    assert!(verify_channel_auth(
        &credentials(),
        "1234.5678",
        &channel,
        signature
    ));
    assert!(!verify_channel_auth(
        &credentials(),
        "1234.5679",
        &channel,
        signature
    ));
    let body = json!({"socket_id": "99.1", "channel_name": channel, "privateId": bob}).to_string();
    let json_auth = f
        .call(
            Route::ChannelAuth,
            "/pusher/auth",
            Some("application/json"),
            Some(&body),
        )
        .await;
    assert_eq!(json_auth.status, 200, "{}", json_auth.body);
    assert!(verify_channel_auth(
        &credentials(),
        "99.1",
        &channel,
        json_auth.body["auth"].as_str().unwrap()
    ));

    // A third user can neither listen nor post, and cannot tell the room exists.
    let (_, carol, _) = f.create().await;
    assert_error(
        &f.auth(&carol, "1234.5678", &channel).await,
        403,
        "not_a_member",
    );
    let carol_post = f.send(&carol, &room, "let me in").await;
    assert_error(&carol_post, 404, "room_not_found");
    let unknown_room = "A".repeat(43);
    let nowhere = f.send(&carol, &unknown_room, "anyone?").await;
    assert_eq!(
        (nowhere.status, &nowhere.body),
        (carol_post.status, &carol_post.body),
        "non-member and unknown room must be indistinguishable"
    );
    assert_eq!(pusher.messages().len(), 1, "refused posts publish nothing");
}

async fn one_identity_joins_at_most_max_rooms() {
    let pusher = Receiver::start().await;
    let f = Functions::start(&pusher.base_url).await;
    let (alice_pub, alice, _) = f.create().await;
    let free: Vec<String> = (0..)
        .map(|n| format!("{:03}-{:03}", n / 1000, n % 1000))
        .filter(|p| *p != alice_pub)
        .take(MAX_ROOMS + 1)
        .collect();
    for public_id in &free[..MAX_ROOMS] {
        assert_eq!(f.connect(&alice, public_id).await.status, 200);
    }
    let before = f.snapshot().await;
    let refused = f.connect(&alice, &free[MAX_ROOMS]).await;
    assert_error(&refused, 403, "too_many_rooms");
    assert!(
        refused.body["error"]["message"]
            .to_string()
            .contains(&MAX_ROOMS.to_string())
    );
    assert_eq!(f.snapshot().await, before, "nothing written");
    // A room already joined can be joined again.
    assert_eq!(f.connect(&alice, &free[0]).await.status, 200);
}

async fn a_connect_to_an_unused_id_joins_only_the_requester() {
    let pusher = Receiver::start().await;
    let f = Functions::start(&pusher.base_url).await;
    let (alice_pub, alice, _) = f.create().await;
    let (bob_pub, bob, _) = f.create().await;
    let real = f.connect(&alice, &bob_pub).await;

    let nobody = ["000-000", "000-001", "000-002"]
        .into_iter()
        .find(|p| ![&alice_pub, &bob_pub].contains(&&p.to_string()))
        .unwrap();
    let unused = f.connect(&alice, nobody).await;
    assert_eq!(unused.status, real.status);
    assert_eq!(unused.headers, real.headers);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&unused.body), keys(&real.body));
    let unused_room = unused.body["roomId"].as_str().unwrap();
    assert_eq!(
        unused_room.len(),
        real.body["roomId"].as_str().unwrap().len()
    );
    assert_eq!(
        unused.body["channel"],
        json!(format!("private-{unused_room}"))
    );
    assert_ne!(unused.body, real.body);
    assert_eq!(
        f.connect(&alice, nobody).await.body,
        unused.body,
        "the room of an unused id is the same on every retry"
    );
    assert_ne!(
        f.connect(&bob, nobody).await.body,
        unused.body,
        "each requester gets a room of their own with it"
    );

    // Posting to it is accepted and reaches its one member's channel only.
    assert_eq!(f.send(&alice, unused_room, "hello?").await.status, 204);
    let published = pusher.messages();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].channel, format!("private-{unused_room}"));
    // Nobody else may subscribe to it.
    assert_error(
        &f.auth(&bob, "1.1", &format!("private-{unused_room}")).await,
        403,
        "not_a_member",
    );
}

async fn every_error_row_answers_its_status_and_changes_nothing() {
    let pusher = Receiver::start().await;
    let f = Functions::start(&pusher.base_url).await;
    let (alice_pub, alice, _) = f.create().await;
    let (bob_pub, _, _) = f.create().await;
    let room = f.room(&alice, &bob_pub).await;
    let channel = format!("private-{room}");
    let before = f.snapshot().await;
    let published_before = pusher.published().len();
    let stranger = "Zm9yLWV4YW1wbGUtb25seS1ub3QtYS1yZWFsLWlkLTA";
    let json_ct = Some("application/json");

    // POST /users/create: only an empty body or {}.
    for body in ["[]", "{\"username\":\"me\"}", "null", "{", "\"\""] {
        assert_error(
            &f.call(Route::CreateUser, "/users/create", json_ct, Some(body))
                .await,
            400,
            "malformed_body",
        );
    }
    assert_error(
        &f.call(
            Route::CreateUser,
            "/users/create",
            Some("text/plain"),
            Some("hi"),
        )
        .await,
        400,
        "malformed_body",
    );

    // POST /users/{publicId}/connect
    let ok_body = json!({"privateId": alice}).to_string();
    for bad in ["123456", "12-3456", "abc-def", "123-4567", "%20123-456"] {
        let r = f
            .call(
                Route::Connect,
                &format!("/users/{bad}/connect"),
                json_ct,
                Some(&ok_body),
            )
            .await;
        assert_error(&r, 400, "invalid_public_id");
    }
    let connect_path = format!("/users/{bob_pub}/connect");
    let connect = |body: &'static str| f.call(Route::Connect, &connect_path, json_ct, Some(body));
    for body in [
        "",
        "{",
        "[]",
        "{\"privateId\": 42}",
        "{\"privateid\": \"x\"}",
        "{}",
    ] {
        assert_error(&connect(body).await, 400, "malformed_body");
    }
    // Arrays are not objects, even where serde would fill the fields from them.
    let array = json!([alice]).to_string();
    assert_error(
        &f.call(
            Route::Connect,
            &format!("/users/{bob_pub}/connect"),
            json_ct,
            Some(&array),
        )
        .await,
        400,
        "malformed_body",
    );
    let array = json!([alice, "hi"]).to_string();
    assert_error(
        &f.call(
            Route::SendMessage,
            &format!("/rooms/{room}/message"),
            json_ct,
            Some(&array),
        )
        .await,
        400,
        "malformed_body",
    );
    let extra = json!({"privateId": alice, "admin": true}).to_string();
    assert_error(
        &f.call(
            Route::Connect,
            &format!("/users/{bob_pub}/connect"),
            json_ct,
            Some(&extra),
        )
        .await,
        400,
        "malformed_body",
    );
    assert_error(
        &connect("{\"privateId\": \"not-a-private-id\"}").await,
        400,
        "invalid_private_id",
    );
    assert_error(
        &f.connect(stranger, &bob_pub).await,
        401,
        "unknown_private_id",
    );
    assert_error(
        &f.connect(&alice, &alice_pub).await,
        400,
        "cannot_connect_to_self",
    );

    // POST /rooms/{roomId}/message
    assert_error(
        &f.send(&alice, "not-a-room", "hi").await,
        400,
        "invalid_room_id",
    );
    assert_error(&f.send(&alice, &room, "").await, 400, "empty_message");
    assert_error(
        &f.send(&alice, &room, &"x".repeat(4097)).await,
        413,
        "message_too_long",
    );
    // Within 4096 bytes, but 24,576 once escaped: refused before it is counted (the
    // snapshot below would show a count in the sender's user item).
    let control = f.send(&alice, &room, &"\u{1}".repeat(4096)).await;
    assert_error(&control, 413, "message_too_long");
    assert!(
        control.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("escaped")),
        "{}",
        control.body
    );
    assert_error(
        &f.send("short", &room, "hi").await,
        400,
        "invalid_private_id",
    );
    assert_error(&f.send(stranger, &room, "hi").await, 404, "room_not_found");
    let no_message = json!({"privateId": alice}).to_string();
    assert_error(
        &f.call(
            Route::SendMessage,
            &format!("/rooms/{room}/message"),
            json_ct,
            Some(&no_message),
        )
        .await,
        400,
        "malformed_body",
    );
    let number = json!({"privateId": alice, "message": 7}).to_string();
    assert_error(
        &f.call(
            Route::SendMessage,
            &format!("/rooms/{room}/message"),
            json_ct,
            Some(&number),
        )
        .await,
        400,
        "malformed_body",
    );

    // POST /pusher/auth
    for socket in ["", "abc", "1.2.3", "1234", "1.x"] {
        assert_error(
            &f.auth(&alice, socket, &channel).await,
            400,
            "invalid_socket_id",
        );
    }
    for bad_channel in [
        room.clone(),
        format!("presence-{room}"),
        "private-lobby".into(),
        format!("private-{room}x"),
    ] {
        assert_error(
            &f.auth(&alice, "1.2", &bad_channel).await,
            400,
            "invalid_channel_name",
        );
    }
    assert_error(
        &f.auth("short", "1.2", &channel).await,
        400,
        "invalid_private_id",
    );
    assert_error(
        &f.auth(stranger, "1.2", &channel).await,
        403,
        "not_a_member",
    );
    assert_error(
        &f.call(
            Route::ChannelAuth,
            "/pusher/auth",
            Some("application/x-www-form-urlencoded"),
            Some("socket_id=1.2"),
        )
        .await,
        400,
        "malformed_body",
    );
    assert_error(
        &f.call(
            Route::ChannelAuth,
            "/pusher/auth",
            Some("text/xml"),
            Some("<a/>"),
        )
        .await,
        400,
        "malformed_body",
    );

    assert_eq!(f.snapshot().await, before, "bad input must change nothing");
    assert_eq!(
        pusher.published().len(),
        published_before,
        "bad input must publish nothing"
    );
}

async fn realtime_failures_answer_502_with_a_request_id() {
    let pusher = Receiver::start().await;
    let f = Functions::start(&pusher.base_url).await;
    let (_, alice, _) = f.create().await;
    let (bob_pub, _, _) = f.create().await;
    let room = f.room(&alice, &bob_pub).await;

    for status in [500, 503, 401, 413] {
        pusher.force_status(status);
        let r = f.send(&alice, &room, "hi").await;
        assert_error(&r, 502, "realtime_unavailable");
        assert!(
            r.body["error"]["requestId"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "{}",
            r.body
        );
    }

    // A port that refuses connections: the publish cannot connect.
    let refused = secret_rooms_test_kit::refused::RefusedPort::new();
    let unreachable = Functions::start(&refused.url).await;
    let (_, carol, _) = unreachable.create().await;
    let (dave_pub, _, _) = unreachable.create().await;
    let room = unreachable.room(&carol, &dave_pub).await;
    assert_error(
        &unreachable.send(&carol, &room, "hi").await,
        502,
        "realtime_unavailable",
    );
}

#[tokio::test]
async fn an_exhausted_id_space_answers_503() {
    let store = Arc::new(fresh_store().await);
    // Two six-digit ids, so the second user already gets a nine-digit one, of which there
    // is one.
    let tiny = Endpoint::from(routes::CreateUser {
        ids: IdPolicy {
            short_space: 2,
            long_space: 1,
            attempts: 3,
        },
        ..routes::CreateUser::new(store, Arc::new(SystemClock))
    });
    let event = api_event(
        Route::CreateUser,
        "/users/create",
        Some("application/json"),
        Some("{}"),
    );
    let first = invoke(&tiny, &event).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(
        ["000-000", "000-001"].contains(&first.body["publicId"].as_str().unwrap()),
        "{}",
        first.body
    );
    let second = invoke(&tiny, &event).await;
    assert_eq!(second.status, 201, "{}", second.body);
    assert_eq!(second.body["publicId"], json!("000-000-000"));
    let third = invoke(&tiny, &event).await;
    assert_error(&third, 503, "id_space_exhausted");
    assert!(third.headers.contains_key("retry-after"));
    assert!(third.body["error"]["requestId"].is_string());
}

async fn creates_past_the_per_address_limit_get_429_and_write_nothing() {
    let pusher = Receiver::start().await;
    let limited = [
        ("CREATE_RATE_LIMIT", "2"),
        ("CREATE_RATE_WINDOW_SECS", "3600"),
    ];
    // 100 s into an hour, so that the window cannot end mid-test and start the count again.
    let hour_start = std::time::UNIX_EPOCH + std::time::Duration::from_secs(480_000 * 3600);
    let clock = Arc::new(FixedClock(hour_start + std::time::Duration::from_secs(100)));
    let f = Functions::start_with(&pusher.base_url, clock, &limited).await;
    let from = |address: &str| {
        let mut event = api_event(Route::CreateUser, "/users/create", None, None);
        event["requestContext"]["http"]["sourceIp"] = json!(address);
        event
    };
    for _ in 0..2 {
        let created = invoke(f.endpoint(Route::CreateUser), &from("198.51.100.7")).await;
        assert_eq!(created.status, 201, "{}", created.body);
    }
    let before = f.snapshot().await;
    let refused = invoke(f.endpoint(Route::CreateUser), &from("198.51.100.7")).await;
    assert_error(&refused, 429, "rate_limited");
    let retry_after: u32 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry_after, 3500, "the seconds left in the window");
    assert_eq!(
        f.snapshot().await,
        before,
        "a refused create writes nothing"
    );
    // Another address is its own; IPv6 addresses count by their /64: two in one /64
    // take its two creates, a third anywhere in it is refused, another /64 is its own.
    for address in ["198.51.100.8", "2001:db8:1:2::1", "2001:db8:1:2::2"] {
        let created = invoke(f.endpoint(Route::CreateUser), &from(address)).await;
        assert_eq!(created.status, 201, "{address}: {}", created.body);
    }
    let same_64 = invoke(
        f.endpoint(Route::CreateUser),
        &from("2001:db8:1:2:ffff:ffff:ffff:3"),
    )
    .await;
    assert_error(&same_64, 429, "rate_limited");
    let other_64 = invoke(f.endpoint(Route::CreateUser), &from("2001:db8:1:3::1")).await;
    assert_eq!(other_64.status, 201, "{}", other_64.body);
    let items = serde_json::to_string(&f.snapshot().await).unwrap();
    assert!(!items.contains("198.51.100") && !items.contains("2001:db8"));
}

async fn senders_over_the_rate_limit_get_429() {
    // The test configuration's rate window is a UTC day; the clock stands 100 s into one.
    let day_start = std::time::UNIX_EPOCH + std::time::Duration::from_secs(20_000 * 86_400);
    let clock = Arc::new(FixedClock(day_start + std::time::Duration::from_secs(100)));
    let pusher = Receiver::start().await;
    let f = Functions::start_with_clock(&pusher.base_url, clock).await;
    let (alice_pub, alice, _) = f.create().await;
    let (bob_pub, bob, _) = f.create().await;
    let room = f.room(&alice, &bob_pub).await;
    f.connect(&bob, &alice_pub).await;
    for n in 0..common::RATE_LIMIT {
        assert_eq!(f.send(&alice, &room, &format!("{n}")).await.status, 204);
    }
    let limited = f.send(&alice, &room, "one too many").await;
    assert_error(&limited, 429, "rate_limited");
    let retry_after: u32 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry_after, 86_300, "the seconds left in the window");
    assert_eq!(
        pusher.messages().len(),
        common::RATE_LIMIT as usize,
        "a refused message is not published"
    );
    // Time comes from the handler's clock: the events carry its instant.
    assert!(
        pusher
            .messages()
            .iter()
            .all(|p| p.data["sentAt"] == json!("2024-10-04T00:01:40.000Z"))
    );
    // The peer's own allowance is untouched.
    assert_eq!(f.send(&bob, &room, "my turn").await.status, 204);
}

/// SPEC v3 exactly once, through the route: `id` is optional, checked, kept and
/// published; a retry under it is a 204 that keeps nothing twice, another text 409.
async fn a_message_sent_again_under_its_id_answers_204_and_is_kept_once() {
    let pusher = Receiver::start().await;
    let f = Functions::start(&pusher.base_url).await;
    let (alice_pub, alice, _) = f.create().await;
    let (bob_pub, bob, _) = f.create().await;
    let room = f.room(&alice, &bob_pub).await;
    f.connect(&bob, &alice_pub).await;
    let send = |body: Value| {
        let (f, room) = (&f, &room);
        async move {
            let body = body.to_string();
            let path = format!("/rooms/{room}/message");
            f.call(
                Route::SendMessage,
                &path,
                Some("application/json"),
                Some(&body),
            )
            .await
        }
    };
    let id = "m-1_".repeat(6);
    let hello = json!({"privateId": alice, "message": "hello", "id": id});
    assert_eq!(send(hello.clone()).await.status, 204);
    let again = send(hello).await;
    assert_eq!(again.status, 204, "{}", again.body);
    let conflict = send(json!({"privateId": alice, "message": "hullo", "id": id})).await;
    assert_error(&conflict, 409, "id_conflict");
    let snapshot = f.snapshot().await;
    for bad in [
        json!("short"),
        json!("x".repeat(65)),
        json!("a/".repeat(11)),
        json!(7),
    ] {
        let refused = send(json!({"privateId": alice, "message": "hi", "id": bad})).await;
        let code = if bad.is_string() {
            "invalid_message_id"
        } else {
            "malformed_body"
        };
        assert_error(&refused, 400, code);
    }
    assert_eq!(f.snapshot().await, snapshot, "refused ids write nothing");
    let history = f.history(&bob, &room, json!({})).await;
    let kept = history.body["messages"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "{}", history.body);
    assert_eq!(kept[0]["id"], json!(id));
    let published: Vec<Value> = pusher
        .messages()
        .iter()
        .map(|p| p.data["id"].clone())
        .collect();
    assert_eq!(
        published,
        [json!(id), json!(id)],
        "published again under its id"
    );
}

async fn connects_over_the_rate_limit_get_429_whatever_the_target() {
    let day_start = std::time::UNIX_EPOCH + std::time::Duration::from_secs(20_000 * 86_400);
    let clock = Arc::new(FixedClock(day_start + std::time::Duration::from_secs(100)));
    let pusher = Receiver::start().await;
    let limited = [
        ("CONNECT_RATE_LIMIT", "2"),
        ("CONNECT_RATE_WINDOW_SECS", "86400"),
    ];
    let f = Functions::start_with(&pusher.base_url, clock, &limited).await;
    let (alice_pub, alice, _) = f.create().await;
    let (bob_pub, bob, _) = f.create().await;
    f.room(&alice, &bob_pub).await;
    f.room(&alice, &bob_pub).await;
    let published = pusher.published().len();
    let unused = if alice_pub == "000-000" || bob_pub == "000-000" {
        "000-001"
    } else {
        "000-000"
    };
    let before = f.snapshot().await;
    // Held and unused targets alike: refused, and nothing written or published.
    for target in [bob_pub.as_str(), unused] {
        let refused = f.connect(&alice, target).await;
        assert_error(&refused, 429, "rate_limited");
        let retry_after: u32 = refused.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(retry_after, 86_300, "the seconds left in the window");
    }
    assert_eq!(
        f.snapshot().await,
        before,
        "a refused connect writes nothing"
    );
    assert_eq!(pusher.published().len(), published, "nor publishes");
    // Bob's connects are his own.
    assert_eq!(f.connect(&bob, &alice_pub).await.status, 200);
}

async fn history_reads_newest_first_with_before() {
    let pusher = Receiver::start().await;
    let f = Functions::start(&pusher.base_url).await;
    let (alice_pub, alice, _) = f.create().await;
    let (bob_pub, bob, _) = f.create().await;
    let room = f.room(&alice, &bob_pub).await;
    f.connect(&bob, &alice_pub).await;
    for text in ["one", "two", "three"] {
        assert_eq!(f.send(&alice, &room, text).await.status, 204);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let texts = |reply: &common::Reply| -> Vec<String> {
        reply.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["message"].as_str().unwrap().to_owned())
            .collect()
    };
    let newest = f
        .history(&bob, &room, json!({"before": "", "limit": 2}))
        .await;
    assert_eq!(newest.status, 200, "{}", newest.body);
    assert_eq!(texts(&newest), ["three", "two"]);
    let older = f
        .history(
            &bob,
            &room,
            json!({"before": newest.body["next"], "limit": 2}),
        )
        .await;
    assert_eq!(texts(&older), ["one"]);
    assert_eq!(older.body["next"], Value::Null);
    let both = f
        .history(
            &bob,
            &room,
            json!({"before": "", "after": newest.body["next"]}),
        )
        .await;
    assert_error(&both, 400, "invalid_cursor");
    let bad = f.history(&bob, &room, json!({"before": "yesterday"})).await;
    assert_error(&bad, 400, "invalid_cursor");
}

async fn other_methods_are_refused() {
    let pusher = Receiver::start().await;
    let f = Functions::start(&pusher.base_url).await;
    let mut event = api_event(Route::CreateUser, "/users/create", None, None);
    event["requestContext"]["http"]["method"] = json!("GET");
    let r = invoke(f.endpoint(Route::CreateUser), &event).await;
    assert_error(&r, 405, "method_not_allowed");
}

/// SPEC v2 Inbox: a connect offers the room in the target's inbox and announces it on
/// the target's inbox channel; the list shows joined and offered rooms with their peer;
/// a block of an offered room takes it out of the blocker's inbox and closes it for its
/// opener; a rotation retires the old id.
async fn the_inbox_lists_offered_and_joined_rooms_and_rotation_retires_the_old_id() {
    let pusher = Receiver::start().await;
    let f = Functions::start(&pusher.base_url).await;
    let (alice_pub, alice, alice_name) = f.create().await;
    let (bob_pub, bob, bob_name) = f.create().await;
    let inbox = |reply: &common::Reply| reply.body["inboxChannel"].as_str().unwrap().to_owned();
    let alice_inbox = inbox(&f.rooms(&alice).await);
    assert!(alice_inbox.starts_with("private-inbox-"));
    assert_eq!(f.rooms(&alice).await.body["rooms"], json!([]));

    // Bob opens a room with Alice's id: it is announced and offered to her.
    let room = f.room(&bob, &alice_pub).await;
    let announced: Vec<_> = pusher
        .published()
        .into_iter()
        .filter(|p| p.channel == alice_inbox)
        .collect();
    assert_eq!(announced.len(), 1);
    assert_eq!(announced[0].event, "room");
    assert_eq!(
        announced[0].data,
        json!({"roomId": room, "channel": format!("private-{room}"),
               "from": {"publicId": bob_pub, "username": bob_name}})
    );
    let listed = f.rooms(&alice).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(
        listed.body["rooms"],
        json!([{"roomId": room, "channel": format!("private-{room}"),
                "peer": {"publicId": bob_pub, "username": bob_name},
                "joined": false, "closed": false, "lastMessageAt": null}])
    );
    // Bob's own list has it joined; Alice's name is not known to him until she connects.
    let bobs = f.rooms(&bob).await;
    assert_eq!(bobs.body["rooms"][0]["joined"], json!(true));
    assert_eq!(
        bobs.body["rooms"][0]["peer"],
        json!({"publicId": alice_pub, "username": null})
    );
    // Only the holder may listen on an inbox channel.
    assert_eq!(f.auth(&alice, "1.1", &alice_inbox).await.status, 200);
    assert_error(
        &f.auth(&bob, "1.1", &alice_inbox).await,
        403,
        "not_a_member",
    );

    // Bob writes while Alice is away; she joins by connecting back and reads it.
    assert_eq!(f.send(&bob, &room, "are you there?").await.status, 204);
    assert_eq!(f.room(&alice, &bob_pub).await, room);
    let listed = f.rooms(&alice).await.body["rooms"][0].clone();
    assert_eq!(listed["joined"], json!(true));
    assert!(listed["lastMessageAt"].is_string(), "{listed}");
    assert_eq!(f.history_texts(&alice, &room).await, ["are you there?"]);
    let bobs = f.rooms(&bob).await;
    assert_eq!(
        bobs.body["rooms"][0]["peer"],
        json!({"publicId": alice_pub, "username": alice_name})
    );

    // Dave opens a room with Alice; she blocks it without joining: it leaves her list,
    // and Dave's shows it closed.
    let (_, dave, _) = f.create().await;
    let daves = f.room(&dave, &alice_pub).await;
    let shows = |list: &Value, room: &str| {
        list["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["roomId"] == json!(room))
            .cloned()
    };
    assert!(
        shows(&f.rooms(&alice).await.body, &daves).is_some(),
        "offered"
    );
    assert_eq!(f.block(&alice, &daves).await.status, 204);
    assert_eq!(
        shows(&f.rooms(&alice).await.body, &daves),
        None,
        "out of her inbox"
    );
    assert_eq!(
        shows(&f.rooms(&alice).await.body, &room).map(|r| r["closed"].clone()),
        Some(json!(false)),
        "her other room stays open"
    );
    let closed = shows(&f.rooms(&dave).await.body, &daves).unwrap();
    assert_eq!(
        (&closed["joined"], &closed["closed"]),
        (&json!(true), &json!(true))
    );

    // Alice rotates: a fresh id, her rooms stay, the old id names nobody.
    let rotated = f.rotate(&alice).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_pub = rotated.body["publicId"].as_str().unwrap().to_owned();
    assert_ne!(new_pub, alice_pub);
    assert_eq!(
        new_pub.len(),
        11,
        "rotated ids come from the nine-digit space"
    );
    let after = f.rooms(&alice).await;
    assert_ne!(inbox(&after), alice_inbox, "a new inbox channel");
    assert_eq!(after.body["rooms"].as_array().unwrap().len(), 1);
    assert_eq!(after.body["rooms"][0]["roomId"], json!(room));
    assert_eq!(f.send(&alice, &room, "still here").await.status, 204);
    assert_error(
        &f.auth(&alice, "1.1", &alice_inbox).await,
        403,
        "not_a_member",
    );
    // A connect to the retired id: a room Alice can never join, offered to nobody.
    let (_, carol, _) = f.create().await;
    let carols = f.room(&carol, &alice_pub).await;
    assert!(
        f.rooms(&alice).await.body["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["roomId"] != json!(carols)),
        "the retired id's offers reach nobody"
    );
}

/// 32 random bytes as unpadded base64url: an X25519 public key's text.
fn a_public_key() -> String {
    secret_rooms::domain::PrivateId::generate()
        .unwrap()
        .expose()
        .to_owned()
}

/// A create takes an optional X25519 key, validated; a malformed one is refused and
/// nothing is written.
async fn create_takes_an_optional_public_key_and_refuses_a_malformed_one() {
    let pusher = Receiver::start().await;
    let f = Functions::start(&pusher.base_url).await;
    let key = a_public_key();
    let (public_id, _, _) = f.create_with(Some(&json!({"publicKey": key}))).await;
    let (plain, _, _) = f.create_with(Some(&json!({}))).await;
    assert_ne!(public_id, plain);
    let before = f.snapshot().await;
    let f = &f;
    let create = |body: String| async move {
        f.call(
            Route::CreateUser,
            "/users/create",
            Some("application/json"),
            Some(&body),
        )
        .await
    };
    for bad in [
        json!({"publicKey": ""}),
        json!({"publicKey": &key[..42]}),
        json!({"publicKey": format!("{key}=")}),
        json!({"publicKey": format!("+{}", &key[1..])}),
        json!({"publicKey": 42}),
        json!({"publicKey": null}),
        json!({"publicKey": [key]}),
    ] {
        assert_error(&create(bad.to_string()).await, 400, "invalid_public_key");
    }
    assert_error(
        &create(json!({"publicKey": key, "name": "x"}).to_string()).await,
        400,
        "malformed_body",
    );
    assert_eq!(f.snapshot().await, before, "refused creates write nothing");
}

/// A member's key reaches the other member only once both joined: the opener's key in
/// the target's inbox (live and listed) and on the room's channel; the target's key in
/// the opener's list and on the room's channel once the target connects back. Connect's
/// answer never carries a key; a client without one stays keyless.
async fn keys_reach_the_peer_only_once_both_joined() {
    let pusher = Receiver::start().await;
    let f = Functions::start(&pusher.base_url).await;
    let (alice_key, bob_key) = (a_public_key(), a_public_key());
    let (alice_pub, alice, alice_name) =
        f.create_with(Some(&json!({"publicKey": alice_key}))).await;
    let (bob_pub, bob, bob_name) = f.create_with(Some(&json!({"publicKey": bob_key}))).await;
    let alice_inbox = f.rooms(&alice).await.body["inboxChannel"].clone();

    let opened = f.connect(&bob, &alice_pub).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    let room = opened.body["roomId"].as_str().unwrap().to_owned();
    let channel = format!("private-{room}");
    assert_eq!(
        opened.body,
        json!({"roomId": room, "channel": channel}),
        "no key in a connect's answer"
    );
    let announced = pusher.published();
    assert_eq!(announced.len(), 2, "{announced:?}");
    assert_eq!(announced[0].call, announced[1].call, "one publish");
    assert_eq!(json!(announced[0].channel), alice_inbox);
    assert_eq!(announced[1].channel, channel);
    let from_bob = json!({"roomId": room, "channel": channel,
        "from": {"publicId": bob_pub, "username": bob_name, "publicKey": bob_key}});
    assert!(
        announced
            .iter()
            .all(|p| p.event == "room" && p.data == from_bob)
    );
    // Alice sees Bob's key with his offer; Bob sees nothing of Alice's yet.
    let alices = f.rooms(&alice).await.body["rooms"][0].clone();
    assert_eq!(alices["joined"], json!(false));
    assert_eq!(
        alices["peer"],
        json!({"publicId": bob_pub, "username": bob_name, "publicKey": bob_key})
    );
    let bobs = f.rooms(&bob).await.body["rooms"][0].clone();
    assert_eq!(
        bobs["peer"],
        json!({"publicId": alice_pub, "username": null})
    );

    // Alice joins: her key goes to the room's channel (where Bob listens) and his list.
    assert_eq!(f.room(&alice, &bob_pub).await, room);
    let joined = &pusher.published()[2..];
    assert_eq!(joined.len(), 2);
    assert_eq!(joined[1].channel, channel);
    assert_eq!(
        joined[1].data["from"],
        json!({"publicId": alice_pub, "username": alice_name, "publicKey": alice_key})
    );
    let bobs = f.rooms(&bob).await.body["rooms"][0].clone();
    assert_eq!(
        bobs["peer"],
        json!({"publicId": alice_pub, "username": alice_name, "publicKey": alice_key})
    );
    let alices = f.rooms(&alice).await.body["rooms"][0].clone();
    assert_eq!(alices["joined"], json!(true));
    assert_eq!(alices["peer"]["publicKey"], json!(bob_key));

    // Without a key: none in the events, none in the lists.
    let (carol_pub, carol, _) = f.create().await;
    let before = pusher.published_count();
    f.room(&carol, &alice_pub).await;
    f.room(&alice, &carol_pub).await;
    let from_carol: Vec<_> = pusher.published()[before..]
        .iter()
        .filter(|p| p.data["from"]["publicId"] == json!(carol_pub))
        .cloned()
        .collect();
    assert_eq!(
        from_carol.len(),
        2,
        "her connect's publish, on two channels"
    );
    for p in &from_carol {
        assert!(p.data["from"].get("publicKey").is_none(), "{:?}", p.data);
    }
    let listed = f.rooms(&alice).await.body["rooms"].clone();
    let with_carol = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["peer"]["publicId"] == json!(carol_pub))
        .unwrap()
        .clone();
    assert!(
        with_carol["peer"].get("publicKey").is_none(),
        "{with_carol}"
    );
    let carols = f.rooms(&carol).await.body["rooms"][0].clone();
    assert_eq!(carols["peer"]["publicKey"], json!(alice_key));
}

// Each test above on moto and on the embedded store alike.
on_both_backends!(
    two_users_connect_chat_and_subscribe,
    one_identity_joins_at_most_max_rooms,
    a_connect_to_an_unused_id_joins_only_the_requester,
    every_error_row_answers_its_status_and_changes_nothing,
    realtime_failures_answer_502_with_a_request_id,
    creates_past_the_per_address_limit_get_429_and_write_nothing,
    senders_over_the_rate_limit_get_429,
    a_message_sent_again_under_its_id_answers_204_and_is_kept_once,
    connects_over_the_rate_limit_get_429_whatever_the_target,
    history_reads_newest_first_with_before,
    other_methods_are_refused,
    the_inbox_lists_offered_and_joined_rooms_and_rotation_retires_the_old_id,
    create_takes_an_optional_public_key_and_refuses_a_malformed_one,
    keys_reach_the_peer_only_once_both_joined,
);
