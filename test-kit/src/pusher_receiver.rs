//! A Pusher-protocol REST endpoint for tests and benchmarks: verifies `auth_key`,
//! timestamp, `body_md5` and `auth_signature` with the local server's verifier (itself
//! checked against Pusher's published values), and records what was published. It can also be told
//! to fail, for the faults no real server gives on demand.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::post;
use local_server::pusher_server::verify::verify_request;
use secret_rooms::realtime::pusher::PusherCredentials;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub const APP_ID: &str = "4242";
pub const KEY: &str = "test-key-7c1d";
pub const SECRET: &str = "test-secret-9f3a2b71";

#[derive(Clone, Debug)]
pub struct Published {
    /// Which accepted trigger call published it (from 0): one call may name several
    /// channels, and is recorded once for each.
    pub call: usize,
    pub channel: String,
    pub event: String,
    /// The event's `data`, parsed from its JSON text.
    pub data: Value,
}

#[derive(Default)]
struct Shared {
    published: Mutex<Vec<Published>>,
    rejected: Mutex<Vec<String>>,
    /// 0: verify and accept; otherwise answer every call with this status.
    forced_status: AtomicU16,
    /// Answer nothing for a minute: a server that hangs.
    hang: AtomicBool,
}

#[derive(Clone)]
pub struct Receiver {
    pub base_url: String,
    shared: Arc<Shared>,
}

impl Receiver {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/apps/{app_id}/events", post(trigger))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base_url: format!("http://{addr}"),
            shared,
        }
    }

    pub fn published(&self) -> Vec<Published> {
        self.shared.published.lock().unwrap().clone()
    }

    /// How many events were published, without copying them.
    /// The `message` events only (a connect also announces rooms on inbox channels).
    pub fn messages(&self) -> Vec<Published> {
        self.published()
            .into_iter()
            .filter(|p| p.event == "message")
            .collect()
    }

    pub fn published_count(&self) -> usize {
        self.shared.published.lock().unwrap().len()
    }

    pub fn rejected(&self) -> Vec<String> {
        self.shared.rejected.lock().unwrap().clone()
    }

    pub fn force_status(&self, status: u16) {
        self.shared.forced_status.store(status, Ordering::SeqCst);
    }

    pub fn hang(&self) {
        self.shared.hang.store(true, Ordering::SeqCst);
    }
}

async fn trigger(
    State(shared): State<Arc<Shared>>,
    Path(app_id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> (StatusCode, String) {
    if shared.hang.load(Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
    let forced = shared.forced_status.load(Ordering::SeqCst);
    if forced != 0 {
        return (
            StatusCode::from_u16(forced).unwrap(),
            "forced failure".into(),
        );
    }
    let reject = |why: String| {
        shared.rejected.lock().unwrap().push(why.clone());
        (StatusCode::UNAUTHORIZED, why)
    };
    if app_id != APP_ID {
        return reject(format!("unknown app {app_id}"));
    }
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let path = format!("/apps/{app_id}/events");
    if let Err(e) = verify_request(
        &PusherCredentials::new(KEY, SECRET),
        "POST",
        &path,
        &query,
        &body,
        now,
    ) {
        return reject(e.to_string());
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return reject("body is not JSON".into());
    };
    let (Some(name), Some(channels), Some(data)) = (
        event["name"].as_str(),
        event["channels"].as_array(),
        event["data"].as_str(),
    ) else {
        return reject(format!("body lacks name/channels/data: {event}"));
    };
    let Ok(data) = serde_json::from_str::<Value>(data) else {
        return reject("data is not a JSON text".into());
    };
    let mut published = shared.published.lock().unwrap();
    let call = published.last().map_or(0, |p| p.call + 1);
    for channel in channels {
        published.push(Published {
            call,
            channel: channel.as_str().unwrap_or_default().to_owned(),
            event: name.to_owned(),
            data: data.clone(),
        });
    }
    (StatusCode::OK, "{}".into())
}
