//! The logs of a whole flow, errors and a 5xx included, hold no private id, no key, no
//! secret and no message text, at every level.

mod common;

use common::pusher_receiver::{self as receiver, Receiver};
use common::{Functions, ROOM_KEY};
use secret_rooms::telemetry::subscriber;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'w self) -> Buffer {
        self.clone()
    }
}

// One thread, so that every task the flow spawns logs into this test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn no_secret_reaches_a_log_line() {
    let logs = Buffer::default();
    let _guard =
        tracing::subscriber::set_default(subscriber(EnvFilter::new("trace"), logs.clone()));

    let pusher = Receiver::start().await;
    let f = Functions::start(&pusher.base_url).await;
    let (alice_pub, alice, _) = f.create().await;
    let (bob_pub, bob, _) = f.create().await;
    let (_, carol, _) = f.create().await;
    let room = f.room(&alice, &bob_pub).await;
    f.connect(&bob, &alice_pub).await;
    let channel = format!("private-{room}");
    let message = "the-message-text-must-not-be-logged";
    assert_eq!(f.send(&alice, &room, message).await.status, 204);
    assert_eq!(f.auth(&bob, "123.456", &channel).await.status, 200);
    assert_eq!(f.auth(&carol, "123.456", &channel).await.status, 403);
    assert_eq!(f.send(&carol, &room, message).await.status, 404);
    assert_eq!(f.connect(&alice, &alice_pub).await.status, 400);
    pusher.force_status(500);
    assert_eq!(f.send(&bob, &room, message).await.status, 502);

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let request_lines = text
        .lines()
        .filter(|l| l.contains("\"request_id\""))
        .count();
    assert!(
        request_lines >= 10,
        "the capture must see the request lines ({request_lines}):\n{text}"
    );
    assert!(
        text.contains("realtime_unavailable"),
        "the 5xx is logged with its code"
    );
    for (what, secret) in [
        ("alice's private id", alice.as_str()),
        ("bob's private id", bob.as_str()),
        ("carol's private id", carol.as_str()),
        ("the room-id key", ROOM_KEY),
        ("the Pusher secret", receiver::SECRET),
        ("a message text", message),
    ] {
        assert!(!text.contains(secret), "{what} reached the logs");
    }
}

/// The log lines docs/security.md documents, field by field: one per request (`request_id`,
/// `route`, `status`, `latency_ms`, and `error_code` for an error, with `error` for a 5xx),
/// the warning of a connect whose announcement failed, and the stream function's line per
/// batch (`route`, `records`, `changes`, `skipped`, `failed`, `latency_ms`).
#[tokio::test(flavor = "current_thread")]
async fn log_lines_carry_their_documented_fields() {
    use serde_json::{Value, json};
    let logs = Buffer::default();
    let _guard = tracing::subscriber::set_default(subscriber(EnvFilter::new("info"), logs.clone()));
    let lines = |logs: &Buffer| -> Vec<Value> {
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        logs.0.lock().unwrap().clear();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    };
    let pusher = Receiver::start().await;
    let f = Functions::start(&pusher.base_url).await;
    let (alice_pub, alice, _) = f.create().await;
    let (bob_pub, _, _) = f.create().await;
    lines(&logs);

    // A success, a client error, a 5xx: one line each.
    let room = f.room(&alice, &bob_pub).await;
    assert_eq!(f.connect(&alice, &alice_pub).await.status, 400);
    pusher.force_status(500);
    assert_eq!(f.send(&alice, &room, "hi").await.status, 502);
    // Each request line names its route by API Gateway's route key.
    let connect = "POST /users/{publicId}/connect";
    let send = "POST /rooms/{roomId}/message";
    let requests: Vec<Value> = lines(&logs)
        .into_iter()
        .filter(|l| l["message"] == "request")
        .collect();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    for line in &requests {
        assert!(line["request_id"].is_string(), "{line}");
        assert!(
            line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
            "{line}"
        );
    }
    let fields = |l: &Value| {
        (
            l["route"].clone(),
            l["status"].clone(),
            l["error_code"].clone(),
            l["level"].clone(),
        )
    };
    assert_eq!(
        requests.iter().map(fields).collect::<Vec<_>>(),
        [
            (json!(connect), json!(200), Value::Null, json!("INFO")),
            (
                json!(connect),
                json!(400),
                json!("cannot_connect_to_self"),
                json!("INFO")
            ),
            (
                json!(send),
                json!(502),
                json!("realtime_unavailable"),
                json!("ERROR")
            ),
        ]
    );
    assert!(requests[2]["error"].is_string(), "a 5xx logs its cause");

    // A connect whose announcement failed answers 200 and warns (Pusher still fails).
    let (carol_pub, _, _) = f.create().await;
    lines(&logs);
    assert_eq!(f.connect(&alice, &carol_pub).await.status, 200);
    let logged = lines(&logs);
    let warning = logged
        .iter()
        .find(|l| l["message"] == "inbox announcement failed")
        .unwrap_or_else(|| panic!("no warning: {logged:#?}"));
    assert_eq!(warning["level"], "WARN");
    assert!(warning["error"].is_string(), "{warning}");

    // The stream function: one line per batch.
    let sample =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/project-changes.json");
    let batch: Value = serde_json::from_str(&std::fs::read_to_string(sample).unwrap()).unwrap();
    f.project_changes().handle(&batch).await;
    let logged = lines(&logs);
    let projected: Vec<&Value> = logged
        .iter()
        .filter(|l| l["route"] == "project-changes")
        .collect();
    assert_eq!(projected.len(), 1, "{logged:#?}");
    let line = projected[0];
    assert_eq!(
        (
            &line["records"],
            &line["changes"],
            &line["skipped"],
            &line["failed"]
        ),
        (&json!(5), &json!(5), &json!(0), &json!(false)),
        "{line}"
    );
    assert!(line["latency_ms"].as_f64().is_some(), "{line}");
}
