//! A local Lambda Runtime API for one function process: it hands out events one at a
//! time, as Lambda does, and reports when the process asks for one and what it answered.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub struct RuntimeApi {
    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    events: mpsc::Sender<Value>,
    asked: mpsc::UnboundedReceiver<Instant>,
    answered: mpsc::UnboundedReceiver<(Instant, Value)>,
}

#[derive(Clone)]
struct Shared {
    events: Arc<tokio::sync::Mutex<mpsc::Receiver<Value>>>,
    asked: mpsc::UnboundedSender<Instant>,
    answered: mpsc::UnboundedSender<(Instant, Value)>,
}

impl RuntimeApi {
    pub async fn start() -> anyhow::Result<Self> {
        let (events, event_rx) = mpsc::channel(1);
        let (asked_tx, asked) = mpsc::unbounded_channel();
        let (answered_tx, answered) = mpsc::unbounded_channel();
        let shared = Shared {
            events: Arc::new(tokio::sync::Mutex::new(event_rx)),
            asked: asked_tx,
            answered: answered_tx,
        };
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(failed))
            .route("/2018-06-01/runtime/init/error", post(failed))
            .with_state(shared);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(Self {
            address,
            events,
            asked,
            answered,
        })
    }

    /// When the process next asks for an event (`None`: it never will).
    pub async fn asked(&mut self) -> Option<Instant> {
        self.asked.recv().await
    }

    /// Hand the waiting process `event`.
    pub async fn invoke(&self, event: Value) -> anyhow::Result<()> {
        Ok(self.events.send(event).await?)
    }

    /// When the process answered, and what (its response, or `runtimeError`).
    pub async fn answered(&mut self) -> Option<(Instant, Value)> {
        self.answered.recv().await
    }
}

async fn next(State(api): State<Shared>) -> Response {
    let _ = api.asked.send(Instant::now());
    let Some(event) = api.events.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() + 30_000);
    let mut headers = HeaderMap::new();
    let id = secret_rooms::http::new_request_id();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", id),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench".into(),
        ),
        ("content-type", "application/json".into()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    (headers, event.to_string()).into_response()
}

async fn response(State(api): State<Shared>, Path(_id): Path<String>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let _ = api.answered.send((Instant::now(), value));
    StatusCode::ACCEPTED
}

async fn failed(State(api): State<Shared>, body: Bytes) -> StatusCode {
    let _ = api.answered.send((
        Instant::now(),
        json!({"runtimeError": String::from_utf8_lossy(&body)}),
    ));
    StatusCode::ACCEPTED
}
