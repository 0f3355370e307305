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
