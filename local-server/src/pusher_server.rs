//! A Pusher-protocol server (protocol 7) for local development: the WebSocket endpoint
//! `/app/{key}` that pusher-js connects to, and the signed REST endpoint
//! `POST /apps/{app_id}/events` that the service's own Pusher client publishes to.

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
mod hub;
mod rest;
pub mod verify;

pub use hub::*;
use rest::trigger;

use secret_rooms::realtime::pusher::PusherCredentials;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, mpsc};
use verify::{verify_channel_auth, verify_request};

/// Seconds of silence after which a client should ping (sent to the client).
const ACTIVITY_TIMEOUT_SECS: u64 = 120;
/// Pusher's limit on one event's data.
const MAX_EVENT_BYTES: usize = 10 * 1024;
/// The largest WebSocket message (and frame) a client may send: a subscription with its
/// signature is under 1 KB, and the library's default (64 MiB) would let one client
/// hold that much of the server's memory.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 16 * 1024;
/// Events queued for one slow socket before it is disconnected (never silently dropped).
const SOCKET_QUEUE: usize = 1024;

// Pusher's WebSocket error codes.
const APP_KEY_UNKNOWN: u16 = 4001;
/// "Generic reconnect immediately": the server could not serve this connection.
const RECONNECT: u16 = 4200;
const UNSUPPORTED_PROTOCOL: u16 = 4007;
const UNAUTHORIZED: u16 = 4009;
const OVER_CAPACITY: u16 = 4100;
/// "Client event rejected due to rate limit".
const CLIENT_EVENT_RATE: u16 = 4301;

/// Client events one connection may send per second, as Pusher allows.
pub const CLIENT_EVENTS_PER_SECOND: u32 = 10;

/// The app this server hosts.
#[derive(Clone, Debug)]
pub struct App {
    pub id: String,
    pub credentials: PusherCredentials,
}

#[derive(Clone)]
struct Server {
    app: Arc<App>,
    hub: Arc<Hub>,
}

/// The realtime routes, to merge into the server's router.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/app/{key}", any(websocket))
        .route("/apps/{app_id}/events", post(trigger))
        .with_state(Server {
            app: Arc::new(app),
            hub: Arc::new(Hub::default()),
        })
}

/// A fresh socket id, `digits.digits`; `None` when the OS random source fails. Channel
/// signatures are bound to socket ids, so two sockets may never share one (a constant
/// fallback such as `0.0` would let one replay the other's signatures).
fn new_socket_id() -> Option<String> {
    let digits = || {
        secret_rooms::domain::random::u64()
            .ok()
            .map(|n| n % 10_000_000_000)
    };
    Some(format!("{}.{}", digits()?, digits()?))
}

fn error_frame(code: Option<u16>, message: &str) -> String {
    json!({"event": "pusher:error", "data": {"code": code, "message": message}}).to_string()
}

async fn websocket(
    State(rt): State<Server>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    upgrade: WebSocketUpgrade,
) -> Response {
    let protocol =
        serde_urlencoded::from_str::<Vec<(String, String)>>(query.as_deref().unwrap_or(""))
            .unwrap_or_default()
            .into_iter()
            .find(|(k, _)| k == "protocol")
            .and_then(|(_, v)| v.parse::<u32>().ok())
            .unwrap_or(7);
    let upgrade = upgrade
        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .max_frame_size(MAX_CLIENT_MESSAGE_BYTES);
    upgrade.on_upgrade(move |socket| async move {
        if key != rt.app.credentials.key {
            let message = format!(
                "App key {key} not in this cluster. Did you forget to specify the cluster?"
            );
            close_with(socket, APP_KEY_UNKNOWN, &message).await;
        } else if !(5..=7).contains(&protocol) {
            close_with(socket, UNSUPPORTED_PROTOCOL, "Unsupported protocol version").await;
        } else {
            serve_socket(rt, socket).await;
        }
    })
}

async fn close_with(mut socket: WebSocket, code: u16, message: &str) {
    let _ = socket
        .send(Message::Text(error_frame(Some(code), message).into()))
        .await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: message.chars().take(100).collect::<String>().into(),
        })))
        .await;
}

#[derive(Deserialize)]
struct ClientFrame {
    event: String,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    channel: Option<String>,
}

/// A connection's client events in the current second, for Pusher's limit.
#[derive(Default)]
pub struct ClientEventBudget {
    second: u64,
    sent: u32,
}

impl ClientEventBudget {
    /// Count one event at `now` (seconds); `false` when the second's budget is spent.
    fn take(&mut self, now: u64) -> bool {
        if now != self.second {
            self.second = now;
            self.sent = 0;
        }
        self.sent += 1;
        self.sent <= CLIENT_EVENTS_PER_SECOND
    }
}

async fn serve_socket(rt: Server, mut socket: WebSocket) {
    let Some(socket_id) = new_socket_id() else {
        tracing::error!("the OS random source failed: refusing a WebSocket connection");
        close_with(
            socket,
            RECONNECT,
            "Server error: no socket id could be made",
        )
        .await;
        return;
    };
    let established = json!({
        "event": "pusher:connection_established",
        "data": json!({"socket_id": socket_id, "activity_timeout": ACTIVITY_TIMEOUT_SECS}).to_string(),
    });
    if socket
        .send(Message::Text(established.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let (tx, mut inbox) = mpsc::channel::<String>(SOCKET_QUEUE);
    let overflowed = Arc::new(Notify::new());
    let outbox = Outbox {
        tx,
        overflowed: overflowed.clone(),
    };
    let mut over_capacity = false;
    let mut budget = ClientEventBudget::default();
    // A client silent for twice the activity timeout (no ping) is gone.
    let idle_limit = Duration::from_secs(ACTIVITY_TIMEOUT_SECS * 2);
    loop {
        // Biased: a socket over capacity is closed at once; otherwise events first: whatever was published to this socket before a frame
        // arrived is sent before that frame's replies, as one ordered stream (a client
        // can use a ping as a barrier).
        tokio::select! {
            biased;
            () = overflowed.notified() => {
                over_capacity = true;
                break;
            }
            Some(frame) = inbox.recv() => {
                if socket.send(Message::Text(frame.into())).await.is_err() {
                    break;
                }
            }
            incoming = tokio::time::timeout(idle_limit, socket.recv()) => {
                let text = match incoming {
                    Ok(Some(Ok(Message::Text(text)))) => text,
                    Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => break,
                    Ok(Some(Ok(_))) => continue,
                };
                let mut sent = true;
                for reply in handle_frame(&rt, &socket_id, &outbox, &mut budget, text.as_str()) {
                    sent = sent && socket.send(Message::Text(reply.into())).await.is_ok();
                }
                if !sent {
                    break;
                }
            }
        }
    }
    rt.hub.disconnect(&socket_id);
    if over_capacity {
        close_with(socket, OVER_CAPACITY, "Over capacity").await;
    }
}

/// One client frame in, the frames to send back.
fn handle_frame(
    rt: &Server,
    socket_id: &str,
    outbox: &Outbox,
    budget: &mut ClientEventBudget,
    text: &str,
) -> Vec<String> {
    let Ok(frame) = serde_json::from_str::<ClientFrame>(text) else {
        return vec![error_frame(None, "Invalid JSON frame")];
    };
    if frame.event.starts_with("client-") {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        return client_event(rt, socket_id, budget, now, &frame);
    }
    // pusher-js sends `data` as an object; some clients send it as a JSON string.
    let data = match &frame.data {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        other => other.clone(),
    };
    match frame.event.as_str() {
        "pusher:ping" => vec![json!({"event": "pusher:pong", "data": "{}"}).to_string()],
        "pusher:pong" => vec![],
        "pusher:subscribe" => {
            let channel = data["channel"].as_str().unwrap_or_default();
            let auth = data["auth"].as_str().unwrap_or_default();
            subscribe(rt, socket_id, outbox, channel, auth)
        }
        "pusher:unsubscribe" => {
            if let Some(channel) = data["channel"].as_str() {
                rt.hub.unsubscribe(channel, socket_id);
            }
            vec![]
        }
        _ => vec![],
    }
}

/// A client event (typing, presence): relayed to the channel's other subscribers as
/// Pusher does, on private channels only, from a socket subscribed to the channel, at
/// most [`CLIENT_EVENTS_PER_SECOND`] a second per connection, never back to its sender.
fn client_event(
    rt: &Server,
    socket_id: &str,
    budget: &mut ClientEventBudget,
    now: u64,
    frame: &ClientFrame,
) -> Vec<String> {
    let channel = frame.channel.as_deref().unwrap_or_default();
    if !channel.starts_with("private-") {
        return vec![error_frame(
            None,
            "Client events are only allowed on private and presence channels",
        )];
    }
    if !rt.hub.listens(socket_id, channel) {
        return vec![error_frame(
            None,
            "Client events need a subscription to the channel",
        )];
    }
    // pusher-js sends `data` as an object; subscribers receive it as JSON text, as the
    // events the service publishes.
    let data = match &frame.data {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    if data.len() > MAX_EVENT_BYTES {
        return vec![error_frame(None, "Client event data is over 10KB")];
    }
    if !budget.take(now) {
        return vec![error_frame(
            Some(CLIENT_EVENT_RATE),
            "Client event rejected due to rate limit",
        )];
    }
    rt.hub
        .publish(channel, &frame.event, &data, Some(socket_id));
    vec![]
}

fn subscribe(
    rt: &Server,
    socket_id: &str,
    outbox: &Outbox,
    channel: &str,
    auth: &str,
) -> Vec<String> {
    let refuse = |message: String| {
        vec![
            error_frame(Some(UNAUTHORIZED), &message),
            // pusher-js reports this on the channel as a failed subscription.
            json!({
                "event": "pusher:subscription_error",
                "channel": channel,
                "data": {"type": "AuthError", "error": message, "status": 401},
            })
            .to_string(),
        ]
    };
    if channel.is_empty() || channel.len() > 164 {
        return refuse("Invalid channel name".into());
    }
    if channel.starts_with("presence-") {
        return refuse("Presence channels are not supported by this server".into());
    }
    if channel.starts_with("private-")
        && !verify_channel_auth(&rt.app.credentials, socket_id, channel, auth)
    {
        return refuse(format!(
            "Invalid signature: expected HMAC SHA256 hex digest of {socket_id}:{channel}"
        ));
    }
    if !rt.hub.subscribe(channel, socket_id, outbox.clone()) {
        return refuse(format!(
            "A connection may listen on at most {MAX_SUBSCRIPTIONS_PER_SOCKET} channels"
        ));
    }
    vec![json!({"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"}).to_string()]
}

#[cfg(test)]
mod tests;
