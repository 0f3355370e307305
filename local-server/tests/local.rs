//! The local server over real HTTP: restarts keep identities, the REST endpoint
//! refuses bad signatures, and the edges answer in JSON.

use local_server::options::Options;
use local_server::{LOCAL_APP_ID, LOCAL_APP_KEY, start};
use secret_rooms::realtime::pusher::PusherCredentials;
use secret_rooms::store::{RoomStore, UserStore};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "secret-rooms-test-{}",
            secret_rooms::http::new_request_id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    let response = client()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        },
    )
}

#[tokio::test]
async fn identities_and_rooms_survive_a_restart() {
    let dir = TempDir::new();
    let server = start(Options::in_dir(&dir.0)).await.unwrap();
    let base = format!("http://{}", server.addr);
    let (status, alice) = post(&base, "/users/create", json!({})).await;
    assert_eq!(status, 201);
    let (_, bob) = post(&base, "/users/create", json!({})).await;
    let (status, before) = post(
        &base,
        &format!("/users/{}/connect", bob["publicId"].as_str().unwrap()),
        json!({"privateId": alice["privateId"]}),
    )
    .await;
    assert_eq!(status, 200, "{before}");
    server.stop().await.unwrap();

    let server = start(Options::in_dir(&dir.0)).await.unwrap();
    let base = format!("http://{}", server.addr);
    // Bob, created before the restart, connects and posts after it.
    let (status, after) = post(
        &base,
        &format!("/users/{}/connect", alice["publicId"].as_str().unwrap()),
        json!({"privateId": bob["privateId"]}),
    )
    .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after, before, "the same room after a restart");
    let room = after["roomId"].as_str().unwrap();
    let (status, body) = post(
        &base,
        &format!("/rooms/{room}/message"),
        json!({"privateId": bob["privateId"], "message": "still here"}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    // Alice's public id still points to Alice after the restart.
    let (status, body) = post(
        &base,
        &format!("/users/{}/connect", alice["publicId"].as_str().unwrap()),
        json!({"privateId": alice["privateId"]}),
    )
    .await;
    assert_eq!(status, 400, "alice is still alice");
    assert_eq!(body["error"]["code"], "cannot_connect_to_self");
    server.stop().await.unwrap();

    // The store on disk keeps its invariants.
    let store = secret_rooms::store::EmbeddedStore::open(&dir.0.join("secret-rooms.redb")).unwrap();
    let report = local_server::invariants::check(&store).await.unwrap();
    assert!(report.problems.is_empty(), "{report}");
    assert_eq!(
        (
            report.users,
            report.public_ids,
            report.rooms,
            report.counter
        ),
        // The counter is past the one block of 100 ids the server reserved.
        (2, 2, 1, 100)
    );
}

#[tokio::test]
async fn rest_publishes_with_a_bad_signature_are_refused() {
    let server = start(Options::ephemeral()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let body = json!({"name": "message", "channels": ["private-x"], "data": "{}"}).to_string();
    let path = format!("/apps/{LOCAL_APP_ID}/events");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let client = client();
    // Signed with the wrong secret, and unsigned.
    let forged = PusherCredentials::new(LOCAL_APP_KEY, "not-the-secret").sign_request(
        "POST",
        &path,
        body.as_bytes(),
        now,
    );
    for query in [forged.as_str(), "auth_key=local-key"] {
        let response = client
            .post(format!("{base}{path}?{query}"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "{query}");
        let error: Value = response.json_body().await;
        assert!(error["error"].is_string());
    }
    // Unknown app.
    let response = client
        .post(format!("{base}/apps/other/events?{forged}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_and_cors_is_open() {
    let server = start(Options::ephemeral()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let client = client();
    let response = client.post(format!("{base}/nowhere")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let body: Value = response.json_body().await;
    assert_eq!(body["error"]["code"], "not_found");
    let response = client
        .get(format!("{base}/users/create"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let body: Value = response.json_body().await;
    assert_eq!(body["error"]["code"], "method_not_allowed");
    // Edge cases the router meets before the library: undecodable path segments and
    // oversize bodies answer JSON too.
    let response = client
        .post(format!("{base}/users/%ff%fe/connect"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json_body().await;
    assert_eq!(body["error"]["code"], "invalid_public_id");
    let response = client
        .post(format!("{base}/users/create"))
        .body(vec![b' '; 3 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let body: Value = response.json_body().await;
    assert_eq!(body["error"]["code"], "malformed_body");
    let preflight = client
        .request(reqwest::Method::OPTIONS, format!("{base}/users/create"))
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-methods"],
        "POST, OPTIONS"
    );
    server.stop().await.unwrap();
}

trait JsonBody {
    async fn json_body(self) -> Value;
}

impl JsonBody for reqwest::Response {
    async fn json_body(self) -> Value {
        serde_json::from_str(&self.text().await.unwrap()).unwrap()
    }
}

fn client() -> reqwest::Client {
    secret_rooms::tls::reqwest_builder()
        .unwrap()
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_invariants_check_finds_a_room_member_who_is_no_user() {
    use secret_rooms::domain::ports::{Member, Requester, UserRecord};
    use secret_rooms::domain::rooms::Side;
    use secret_rooms::domain::{PrivateIdHash, PublicId, RoomId};
    let store = secret_rooms::store::EmbeddedStore::in_memory().unwrap();
    let hash = |byte: &str| PrivateIdHash::from_hex(&byte.repeat(32)).unwrap();
    let alice = UserRecord {
        id: store.reserve_user_ids(1).await.unwrap(),
        public_id: PublicId::parse("000-001").unwrap(),
        private_id_hash: hash("0a"),
        username: "Alice".into(),
        created_at: "2026-11-25T00:00:00.000Z".into(),
        updated_at: "2026-11-25T00:00:00.000Z".into(),
        public_key: None,
    };
    store.insert_user(&alice, None).await.unwrap();
    let clean = local_server::invariants::check(&store).await.unwrap();
    assert!(clean.problems.is_empty(), "{clean}");
    // A room that lists Alice under a public id she does not hold.
    let member = |public_id: &str, username: &str| Requester {
        member: Member {
            public_id: PublicId::parse(public_id).unwrap(),
            username: username.into(),
        },
        since: "2026-11-25T00:00:00.000Z".into(),
        public_key: None,
        rooms: Default::default(),
        connects: None,
        announced: Default::default(),
    };
    let room = RoomId::parse(&"A".repeat(43)).unwrap();
    store
        .join_room(&secret_rooms::store::Joining {
            room: &room,
            side: Side::High,
            joiner: &alice.private_id_hash,
            requester: &member("000-002", "Ghost"),
            target: PublicId::parse("000-003").unwrap(),
            max_rooms: 10,
            connects: secret_rooms::store::RateWindow {
                window: 1,
                limit: 10,
            },
            offer_expires_at: 1_800_000_000,
            now: "2026-11-25T00:00:01.000Z",
        })
        .await
        .unwrap();
    let report = local_server::invariants::check(&store).await.unwrap();
    assert_eq!(report.problems.len(), 1, "{report}");
    assert!(report.problems[0].contains("no such user"), "{report}");
}

#[tokio::test]
async fn websocket_messages_over_the_limit_close_the_connection() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let server = start(Options::ephemeral()).await.unwrap();
    let url = format!("ws://{}/app/{LOCAL_APP_KEY}?protocol=7", server.addr);
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let established = socket.next().await.unwrap().unwrap().into_text().unwrap();
    assert!(
        established.contains("pusher:connection_established"),
        "{established}"
    );
    // Within the limit: a ping is answered.
    let ping = r#"{"event":"pusher:ping","data":{}}"#;
    socket.send(Message::text(ping)).await.unwrap();
    let pong = socket.next().await.unwrap().unwrap().into_text().unwrap();
    assert!(pong.contains("pusher:pong"), "{pong}");
    // Over it: the server ends the connection instead of reading it in.
    let padding = "x".repeat(local_server::pusher_server::MAX_CLIENT_MESSAGE_BYTES);
    let huge = format!(r#"{{"event":"pusher:ping","data":"{padding}"}}"#);
    let _ = socket.send(Message::text(huge)).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(Message::Text(text))) if text.contains("pusher:pong") => return false,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await
    .expect("the server answers or closes within 10 s");
    assert!(ended, "an oversize message was answered");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_page_is_served_with_a_content_security_policy_and_the_usual_headers() {
    let server = start(Options::ephemeral()).await.unwrap();
    for path in ["/", "/app.js", "/config.json"] {
        let response = client()
            .get(format!("http://{}{path}", server.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(
            csp.contains("connect-src 'self';"),
            "the embedded realtime server is this origin: {csp}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn creates_are_limited_per_peer_address() {
    let options = Options {
        create_limit: Some(secret_rooms::domain::addresses::CreateLimit {
            creates: 2,
            window_secs: 3600,
        }),
        ..Options::ephemeral()
    };
    let server = start(options).await.unwrap();
    let base = format!("http://{}", server.addr);
    for _ in 0..2 {
        let (status, body) = post(&base, "/users/create", json!({})).await;
        assert_eq!(status, 201, "{body}");
    }
    let response = client()
        .post(format!("{base}/users/create"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn browser_origins_outside_the_allow_list_are_refused() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let options = Options {
        allowed_origins: vec!["https://chat.example".into()],
        ..Options::ephemeral()
    };
    let server = start(options).await.unwrap();
    let base = format!("http://{}", server.addr);
    let create = |origin: Option<String>| {
        let mut request = client().post(format!("{base}/users/create"));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        async move { request.send().await.unwrap() }
    };
    let refused = create(Some("https://evil.example".into())).await;
    assert_eq!(refused.status(), 403);
    let body: Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "origin_not_allowed");
    let allowed = create(Some("https://chat.example".into())).await;
    assert_eq!(allowed.status(), 201);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://chat.example"
    );
    // The server's own page, and clients that send no Origin, always pass.
    assert_eq!(create(Some(base.clone())).await.status(), 201);
    assert_eq!(create(None).await.status(), 201);

    // Realtime connections too.
    let url = format!("ws://{}/app/{LOCAL_APP_KEY}?protocol=7", server.addr);
    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_err());
    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "https://chat.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_ok());
    server.stop().await.unwrap();
}

/// On DynamoDB (moto here), the server follows the table's stream as the
/// project-changes function does on AWS: a room opened with a public id, and its
/// messages, reach the holder's list.
#[tokio::test]
async fn on_dynamodb_the_room_list_follows_the_tables_stream() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_default();
    assert!(
        !endpoint.is_empty(),
        "AWS_ENDPOINT_URL_DYNAMODB is not set: run ./scripts/test.sh, which starts moto"
    );
    let options = Options {
        store: local_server::options::StoreChoice::DynamoDb {
            table: format!("local-{}", secret_rooms::http::new_request_id()),
            create: true,
            timeouts: secret_rooms::config::dynamodb_timeouts(&secret_rooms::config::process_env)
                .unwrap(),
        },
        ..Options::ephemeral()
    };
    let server = start(options).await.unwrap();
    let base = format!("http://{}", server.addr);
    let (_, alice) = post(&base, "/users/create", json!({})).await;
    let (_, bob) = post(&base, "/users/create", json!({})).await;
    let (status, room) = post(
        &base,
        &format!("/users/{}/connect", alice["publicId"].as_str().unwrap()),
        json!({"privateId": bob["privateId"]}),
    )
    .await;
    assert_eq!(status, 200, "{room}");
    let room_id = room["roomId"].as_str().unwrap();
    let (status, _) = post(
        &base,
        &format!("/rooms/{room_id}/message"),
        json!({"privateId": bob["privateId"], "message": "are you there?"}),
    )
    .await;
    assert_eq!(status, 204);
    // The stream is read every 200 ms: the offer, with the message noted, shows soon.
    let mut listed = Value::Null;
    for _ in 0..100 {
        let (status, list) = post(
            &base,
            "/users/rooms",
            json!({"privateId": alice["privateId"]}),
        )
        .await;
        assert_eq!(status, 200, "{list}");
        listed = list["rooms"][0].clone();
        if !listed["lastMessageAt"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed["roomId"], room["roomId"], "{listed}");
    assert_eq!(listed["joined"], false);
    assert_eq!(listed["peer"]["publicId"], bob["publicId"]);
    assert!(listed["lastMessageAt"].is_string(), "{listed}");
    server.stop().await.unwrap();
}
