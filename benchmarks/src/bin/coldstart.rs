//! Cold starts and invocations of the function binaries, measured against a local
//! Lambda Runtime API, next to the bare `floor` binary:
//!
//! - init: process spawn until the binary first asks the Runtime API for an event;
//! - first invocation: event handed out until its response arrives (a cold process);
//! - warm invocations: the same, for the following ones (p50, p99);
//! - DynamoDB round trips and Pusher calls per invocation, counted by a proxy in front
//!   of the DynamoDB-compatible server and by the Pusher-protocol endpoint here.
//!
//! Usage: coldstart DYNAMODB_URL BIN_DIR [RUNS] [WARM]   (./scripts/bench.sh runs it)

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use benchmarks::api_event;
use secret_rooms::domain::rooms::{RoomKey, connect};
use secret_rooms::domain::users::{IdPolicy, create_user};
use secret_rooms::store::DynamoStore;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const ROOM_KEY: &str = "benchmark-room-key-0123456789abcdef-0123";
const PUSHER_KEY: &str = "bench-key";
const PUSHER_SECRET: &str = "bench-secret";
const PUSHER_APP: &str = "1";

async fn serve(router: Router) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(addr.to_string())
}

/// Counts what crosses it: DynamoDB requests (forwarded) and Pusher calls (answered).
#[derive(Default)]
struct Counters {
    dynamodb: AtomicUsize,
    pusher: AtomicUsize,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    client: reqwest::Client,
    counters: Arc<Counters>,
}

async fn forward(
    State(proxy): State<Proxy>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    proxy.counters.dynamodb.fetch_add(1, Ordering::SeqCst);
    let mut request = proxy
        .client
        .request(method, format!("{}{}", proxy.upstream, uri.path()));
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let Ok(answer) = request.body(body).send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    let mut response_headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" && name != "connection" {
            response_headers.insert(name, value.clone());
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    (status, response_headers, body).into_response()
}

async fn pusher(State(counters): State<Arc<Counters>>) -> &'static str {
    counters.pusher.fetch_add(1, Ordering::SeqCst);
    "{}"
}

/// One process's Runtime API: hands out queued events, reports arrivals and responses.
#[derive(Clone)]
struct RuntimeApi {
    events: Arc<tokio::sync::Mutex<mpsc::Receiver<Value>>>,
    asked: mpsc::UnboundedSender<Instant>,
    answered: mpsc::UnboundedSender<(Instant, Value)>,
}

async fn next(State(api): State<RuntimeApi>) -> Response {
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

async fn response(
    State(api): State<RuntimeApi>,
    Path(_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let _ = api.answered.send((Instant::now(), value));
    StatusCode::ACCEPTED
}

async fn failed(State(api): State<RuntimeApi>, body: Bytes) -> StatusCode {
    let _ = api.answered.send((
        Instant::now(),
        json!({"runtimeError": String::from_utf8_lossy(&body)}),
    ));
    StatusCode::ACCEPTED
}

struct Function {
    name: &'static str,
    event: Value,
    expected_status: u16,
    /// `None`: a fresh table for each cold start.
    table: Option<String>,
}

#[derive(Default)]
struct Figures {
    init: Vec<Duration>,
    first: Vec<Duration>,
    warm: Vec<Duration>,
    dynamodb_first: Vec<usize>,
    dynamodb_warm: Vec<usize>,
    pusher_warm: Vec<usize>,
}

impl Figures {
    fn extend(&mut self, more: Figures) {
        self.init.extend(more.init);
        self.first.extend(more.first);
        self.warm.extend(more.warm);
        self.dynamodb_first.extend(more.dynamodb_first);
        self.dynamodb_warm.extend(more.dynamodb_warm);
        self.pusher_warm.extend(more.pusher_warm);
    }
}

fn percentile(values: &[Duration], p: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Setup {
    bin_dir: String,
    /// moto itself, for the tables made between cold starts.
    dynamodb: String,
    /// The table of the shared users and room, for cold starts that serve no event.
    table: String,
    env: HashMap<&'static str, String>,
    counters: Arc<Counters>,
}

async fn measure(
    setup: &Setup,
    f: &Function,
    runs: usize,
    warm: usize,
    warm_up: bool,
    invoke: bool,
) -> anyhow::Result<Figures> {
    let mut figures = Figures::default();
    for _ in 0..runs {
        let table = match &f.table {
            Some(table) => table.clone(),
            None if !invoke => setup.table.clone(),
            None => {
                let table = format!("bench-{}", secret_rooms::http::new_request_id());
                DynamoStore::with_endpoint(table.clone(), &setup.dynamodb)
                    .await
                    .create_table()
                    .await?;
                table
            }
        };
        let (event_tx, event_rx) = mpsc::channel(1);
        let (asked_tx, mut asked) = mpsc::unbounded_channel();
        let (answered_tx, mut answered) = mpsc::unbounded_channel();
        let api = RuntimeApi {
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
            .with_state(api);
        let runtime_api = serve(router).await?;

        let mut command = tokio::process::Command::new(format!("{}/{}", setup.bin_dir, f.name));
        command
            .env_clear()
            .envs(setup.env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", f.name)
            .env("TABLE_NAME", &table)
            .env(
                "WARM_UP_CONNECTIONS",
                if warm_up { "true" } else { "false" },
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let spawned = Instant::now();
        let mut child = command.spawn()?;
        let Some(asked_at) = asked.recv().await else {
            anyhow::bail!("{} never asked for an event", f.name);
        };
        figures.init.push(asked_at - spawned);
        if !invoke {
            let _ = child.kill().await;
            continue;
        }

        for n in 0..=warm {
            setup.counters.dynamodb.store(0, Ordering::SeqCst);
            setup.counters.pusher.store(0, Ordering::SeqCst);
            let sent = Instant::now();
            event_tx.send(f.event.clone()).await?;
            let Some((at, body)) = answered.recv().await else {
                anyhow::bail!("{} never answered", f.name);
            };
            let status = body["statusCode"].as_u64().unwrap_or(0) as u16;
            if f.expected_status != 0 && status != f.expected_status {
                anyhow::bail!("{} answered {body}", f.name);
            }
            let took = at - sent;
            let dynamodb = setup.counters.dynamodb.load(Ordering::SeqCst);
            if n == 0 {
                figures.first.push(took);
                figures.dynamodb_first.push(dynamodb);
            } else {
                figures.warm.push(took);
                figures.dynamodb_warm.push(dynamodb);
                figures
                    .pusher_warm
                    .push(setup.counters.pusher.load(Ordering::SeqCst));
            }
            // The next GET /next is already waiting: the process is warm.
            let _ = asked.recv().await;
        }
        let _ = child.kill().await;
    }
    Ok(figures)
}

fn mode(values: &[usize]) -> String {
    let (min, max) = (values.iter().min(), values.iter().max());
    match (min, max) {
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) => format!("{a}–{b}"),
        _ => "-".into(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dynamodb), Some(bin_dir)) = (args.get(1), args.get(2)) else {
        anyhow::bail!("usage: coldstart DYNAMODB_URL BIN_DIR [RUNS] [WARM] [INIT_RUNS]");
    };
    let runs: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(10);
    let warm: usize = args.get(4).and_then(|n| n.parse().ok()).unwrap_or(50);
    let init_runs: usize = args.get(5).and_then(|n| n.parse().ok()).unwrap_or(100);

    let counters = Arc::new(Counters::default());
    let proxy = Proxy {
        upstream: dynamodb.trim_end_matches('/').to_owned(),
        client: secret_rooms::tls::reqwest_builder()?.build()?,
        counters: counters.clone(),
    };
    let proxy_addr = serve(Router::new().fallback(any(forward)).with_state(proxy)).await?;
    let pusher_addr = serve(
        Router::new()
            .route("/apps/{app}/events", post(pusher))
            .fallback(any(|| async { "{}" }))
            .with_state(counters.clone()),
    )
    .await?;

    // Two users and their room, made through the library against the same server.
    let table = format!("bench-{}", secret_rooms::http::new_request_id());
    let store = DynamoStore::with_endpoint(table.clone(), dynamodb).await;
    store.create_table().await?;
    let alice = create_user(&store, IdPolicy::default(), SystemTime::now()).await?;
    let bob = create_user(&store, IdPolicy::default(), SystemTime::now()).await?;
    let key = RoomKey::new(ROOM_KEY).ok_or_else(|| anyhow::anyhow!("short key"))?;
    let room = connect(
        &store,
        &key,
        &alice.private_id,
        bob.public_id,
        SystemTime::now(),
    )
    .await?;
    let private = alice.private_id.expose();

    let env: HashMap<&'static str, String> = HashMap::from([
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_ACCESS_KEY_ID", "bench".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_ENDPOINT_URL_DYNAMODB", format!("http://{proxy_addr}")),
        ("ROOM_ID_KEY", ROOM_KEY.into()),
        ("PUSHER_APP_ID", PUSHER_APP.into()),
        ("PUSHER_KEY", PUSHER_KEY.into()),
        ("PUSHER_SECRET", PUSHER_SECRET.into()),
        ("PUSHER_HOST", format!("http://{pusher_addr}")),
        ("MESSAGE_RATE_LIMIT", "1048575".into()),
        ("MESSAGE_RATE_WINDOW_SECS", "60".into()),
        ("RUST_LOG", "info".into()),
    ]);
    let setup = Setup {
        bin_dir: bin_dir.clone(),
        dynamodb: dynamodb.clone(),
        table: table.clone(),
        env,
        counters,
    };
    let functions = [
        Function {
            name: "floor",
            event: json!({}),
            expected_status: 0,
            table: Some(table.clone()),
        },
        Function {
            name: "create-user",
            event: api_event("POST /users/create", "/users/create", None, "{}", false),
            expected_status: 201,
            // A fresh table for each cold start: moto copies a whole table for every
            // transaction, and a thousand users would slow it down ever more.
            table: None,
        },
        Function {
            name: "connect",
            event: api_event(
                "POST /users/{publicId}/connect",
                &format!("/users/{}/connect", bob.public_id),
                Some(json!({"publicId": bob.public_id.to_string()})),
                &json!({"privateId": private}).to_string(),
                false,
            ),
            expected_status: 200,
            table: Some(table.clone()),
        },
        Function {
            name: "send-message",
            event: api_event(
                "POST /rooms/{roomId}/message",
                &format!("/rooms/{room}/message"),
                Some(json!({"roomId": room.as_str()})),
                &json!({"privateId": private, "message": "hello"}).to_string(),
                false,
            ),
            expected_status: 204,
            table: Some(table.clone()),
        },
        Function {
            name: "channel-auth",
            event: api_event(
                "POST /pusher/auth",
                "/pusher/auth",
                None,
                &format!(
                    "socket_id=123.456&channel_name={}&privateId={private}",
                    room.channel()
                ),
                true,
            ),
            expected_status: 200,
            table: Some(table.clone()),
        },
    ];

    println!(
        "{runs} cold starts per function with {warm} warm invocations after each, and \
         {init_runs} more that serve no event (init only); times in ms."
    );
    println!();
    println!(
        "| function | warm-up | init p50 | init / floor | first invocation p50 | warm p50 | warm p99 | first / warm p50 | DynamoDB calls (first, warm) | Pusher calls |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut floor_init = None;
    // Rounds of one cold start each, floor and functions in turn, so that whatever
    // drifts on the machine (caches, clock speed, moto's table) weighs on all alike.
    let cases: Vec<(&Function, bool)> = functions
        .iter()
        .flat_map(|f| [(f, false), (f, true)])
        .filter(|(f, warm_up)| !(f.name == "floor" && *warm_up))
        .collect();
    let mut all: Vec<Figures> = cases.iter().map(|_| Figures::default()).collect();
    for _ in 0..runs {
        for ((f, warm_up), figures) in cases.iter().zip(&mut all) {
            figures.extend(measure(&setup, f, 1, warm, *warm_up, true).await?);
        }
    }
    // Init varies by a few tenths of a millisecond from start to start: more rounds of
    // cold starts that serve no event steady its median.
    for _ in 0..init_runs {
        for ((f, warm_up), figures) in cases.iter().zip(&mut all) {
            figures.extend(measure(&setup, f, 1, 0, *warm_up, false).await?);
        }
    }
    for ((f, warm_up), figures) in cases.iter().zip(&all) {
        let warm_up = *warm_up;
        {
            let init = percentile(&figures.init, 0.5);
            let floor = *floor_init.get_or_insert(init);
            let first = percentile(&figures.first, 0.5);
            let warm50 = percentile(&figures.warm, 0.5);
            println!(
                "| {} | {} | {:.1} | {:.2}x | {:.2} | {:.2} | {:.2} | {:.2}x | {}, {} | {} |",
                f.name,
                if f.name == "floor" {
                    "-"
                } else if warm_up {
                    "on"
                } else {
                    "off"
                },
                ms(init),
                ms(init) / ms(floor),
                ms(first),
                ms(warm50),
                ms(percentile(&figures.warm, 0.99)),
                ms(first) / ms(warm50),
                mode(&figures.dynamodb_first),
                mode(&figures.dynamodb_warm),
                mode(&figures.pusher_warm),
            );
        }
    }
    Ok(())
}
