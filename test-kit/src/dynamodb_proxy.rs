//! In front of DynamoDB: [`FakeDynamo`], a stand-in that fails on demand, for the faults
//! no real server gives when asked (hanging, throttling, internal errors, transaction
//! conflicts), answering with the status codes and error bodies DynamoDB documents; and
//! [`Proxy`], which forwards to a real DynamoDB-compatible server, counting requests
//! and losing an answer on demand.

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub enum Fault {
    Hang,
    Throttle,
    InternalError,
    /// TransactWriteItems is cancelled for a conflict; other calls succeed as if on an
    /// empty table (UpdateItem returns counter 1).
    TransactionConflict,
}

#[derive(Clone)]
pub struct FakeDynamo {
    pub endpoint: String,
    calls: Arc<Mutex<Vec<String>>>,
}

impl FakeDynamo {
    pub async fn start(fault: Fault) -> Self {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let recorded = calls.clone();
        let app = Router::new().route(
            "/",
            post(move |headers: HeaderMap| {
                let recorded = recorded.clone();
                async move { answer(fault, &recorded, &headers).await }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { endpoint, calls }
    }

    /// The operations received, in order (retries included).
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = serde_json::json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": message});
    (
        status,
        [("content-type", "application/x-amz-json-1.0")],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.0")],
        body.to_string(),
    )
        .into_response()
}

async fn answer(fault: Fault, calls: &Mutex<Vec<String>>, headers: &HeaderMap) -> Response {
    let operation = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.split('.').nth(1))
        .unwrap_or("?")
        .to_owned();
    calls.lock().unwrap().push(operation.clone());
    match fault {
        Fault::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            ok(serde_json::json!({}))
        }
        Fault::Throttle => error(
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate of requests exceeds the allowed throughput.",
        ),
        Fault::InternalError => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "Internal server error",
        ),
        Fault::TransactionConflict => match operation.as_str() {
            "TransactWriteItems" => {
                let body = serde_json::json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                    "message": "Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict]",
                    "CancellationReasons": [
                        {"Code": "None"},
                        {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
                    ]
                });
                (
                    StatusCode::BAD_REQUEST,
                    [("content-type", "application/x-amz-json-1.0")],
                    body.to_string(),
                )
                    .into_response()
            }
            "UpdateItem" => ok(serde_json::json!({"Attributes": {"value": {"N": "1"}}})),
            _ => ok(serde_json::json!({})),
        },
    }
}

/// One request the proxy forwarded, and its answer, as JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct Exchange {
    /// The operation (`GetItem`, `TransactWriteItems`, ...).
    pub operation: String,
    pub request: serde_json::Value,
    pub status: u16,
    pub response: serde_json::Value,
}

/// A proxy in front of a real DynamoDB-compatible server: forwards every request,
/// counts and records them, and can lose the answer of the first request of one operation (the
/// request is carried out, and its answer comes only after the SDK's attempt timeout,
/// so the SDK retries it).
#[derive(Clone)]
pub struct Proxy {
    pub endpoint: String,
    forwarded: Arc<AtomicUsize>,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
}

impl Proxy {
    pub async fn start(upstream: &str, lose_first_answer_of: Option<&'static str>) -> Self {
        let upstream = upstream.trim_end_matches('/').to_owned();
        let client = secret_rooms::tls::reqwest_builder()
            .unwrap()
            .build()
            .unwrap();
        let lost = Arc::new(AtomicBool::new(false));
        let forwarded = Arc::new(AtomicUsize::new(0));
        let count = forwarded.clone();
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let record = exchanges.clone();
        let app = Router::new().route(
            "/",
            post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (client, upstream) = (client.clone(), upstream.clone());
                let (lost, count, record) = (lost.clone(), count.clone(), record.clone());
                async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    let asked = body.clone();
                    let mut request = client.post(format!("{upstream}/"));
                    for (name, value) in &headers {
                        if name != "host" && name != "content-length" {
                            request = request.header(name, value);
                        }
                    }
                    let Ok(answer) = request.body(body).send().await else {
                        return StatusCode::BAD_GATEWAY.into_response();
                    };
                    let status = answer.status().as_u16();
                    let content_type = answer.headers().get("content-type").cloned();
                    let body = answer.bytes().await.unwrap_or_default();
                    let target = headers
                        .get("x-amz-target")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let json = |b: &[u8]| serde_json::from_slice(b).unwrap_or_default();
                    record.lock().unwrap().push(Exchange {
                        operation: target.rsplit('.').next().unwrap_or("").to_owned(),
                        request: json(&asked),
                        status,
                        response: json(&body),
                    });
                    if lose_first_answer_of.is_some_and(|op| target.ends_with(op))
                        && !lost.swap(true, Ordering::SeqCst)
                    {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                    }
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                    let mut response = (status, body).into_response();
                    if let Some(ct) = content_type {
                        response.headers_mut().insert("content-type", ct);
                    }
                    response
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            endpoint,
            forwarded,
            exchanges,
        }
    }

    /// Requests forwarded so far.
    pub fn forwarded(&self) -> usize {
        self.forwarded.load(Ordering::SeqCst)
    }

    /// The exchanges recorded since the last call, oldest first.
    pub fn take_exchanges(&self) -> Vec<Exchange> {
        std::mem::take(&mut *self.exchanges.lock().unwrap())
    }
}
