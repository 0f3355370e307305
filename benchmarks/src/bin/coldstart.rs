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

use benchmarks::runtime_api::RuntimeApi;
use benchmarks::{ROOM_KEY, percentile};
use secret_rooms::domain::rooms::{RoomKey, connect};
use secret_rooms::domain::users::{IdPolicy, UserIds, create_user};
use secret_rooms::http::Route;
use secret_rooms::secrets::SecretsManager;
use secret_rooms::store::DynamoStore;
use secret_rooms_test_kit::dynamodb_proxy::Proxy;
use secret_rooms_test_kit::events::api_event;
use secret_rooms_test_kit::pusher_receiver::{self, Receiver};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

/// The harness's tables have no stream: nothing here measures the projection, and moto
/// keeps every stream record in memory and slows down as they pile up (two full runs
/// stopped on a 503 that way).
const STREAM: bool = false;

/// Whether a function opens its connections at start-up (`WARM_UP_CONNECTIONS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WarmUp {
    Off,
    On,
}

/// Where a function's secrets (the room-id key, the Pusher secret) come from: plain
/// variables (a local run), or Secrets Manager at start-up (the deployed stack).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Secrets {
    Variables,
    Manager,
}

/// What a cold start is for: init alone, or init and then `warm` + 1 invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Serve {
    InitOnly,
    Events { warm: usize },
}

/// What crosses the harness's stand-ins: DynamoDB requests through the proxy in front of
/// moto, and publishes the Pusher receiver accepted.
struct Counters {
    dynamodb: Proxy,
    pusher: Receiver,
}

impl Counters {
    fn now(&self) -> (usize, usize) {
        (self.dynamodb.forwarded(), self.pusher.published_count())
    }
}

struct Function {
    name: &'static str,
    event: Value,
    expected_status: u16,
    /// `None`: a fresh table for each cold start.
    table: Option<String>,
    /// In a fresh table, first a user of its own, whose private id replaces
    /// `{privateId}` in the event.
    own_user: bool,
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
    /// What replaces the secrets' variables in `env` for [`Secrets::Manager`].
    manager_env: HashMap<&'static str, String>,
    counters: Counters,
}

impl Setup {
    fn env(&self, secrets: Secrets) -> Vec<(&'static str, String)> {
        match secrets {
            Secrets::Variables => self.env.clone().into_iter().collect(),
            Secrets::Manager => self
                .env
                .iter()
                .filter(|(k, _)| {
                    !secret_rooms::config::SECRETS
                        .iter()
                        .any(|(var, _)| var == *k)
                })
                .map(|(k, v)| (*k, v.clone()))
                .chain(self.manager_env.clone())
                .collect(),
        }
    }
}

/// One cold start of `f`, and what it serves.
async fn measure(
    setup: &Setup,
    f: &Function,
    (warm_up, secrets): (WarmUp, Secrets),
    serve: Serve,
) -> anyhow::Result<Figures> {
    let mut figures = Figures::default();
    let mut event = f.event.clone();
    let table = match &f.table {
        Some(table) => table.clone(),
        None if serve == Serve::InitOnly => setup.table.clone(),
        None => {
            let table = format!("bench-{}", secret_rooms::http::new_request_id());
            let store = DynamoStore::with_endpoint(table.clone(), &setup.dynamodb).await;
            store.create_table_with(STREAM).await?;
            if f.own_user {
                let ids = UserIds::default();
                let user = create_user(
                    &store,
                    &ids,
                    IdPolicy::default(),
                    None,
                    None,
                    SystemTime::now(),
                )
                .await?;
                let text = event
                    .to_string()
                    .replace("{privateId}", user.private_id.expose());
                event = serde_json::from_str(&text)?;
            }
            table
        }
    };
    let mut api = RuntimeApi::start().await?;

    let mut command = tokio::process::Command::new(format!("{}/{}", setup.bin_dir, f.name));
    command
        .env_clear()
        .envs(setup.env(secrets))
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", f.name)
        .env("TABLE_NAME", &table)
        .env(
            "WARM_UP_CONNECTIONS",
            if warm_up == WarmUp::On {
                "true"
            } else {
                "false"
            },
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let spawned = Instant::now();
    let mut child = command.spawn()?;
    let Some(asked_at) = api.asked().await else {
        anyhow::bail!("{} never asked for an event", f.name);
    };
    figures.init.push(asked_at - spawned);
    let Serve::Events { warm } = serve else {
        let _ = child.kill().await;
        return Ok(figures);
    };

    for n in 0..=warm {
        let (dynamodb_before, pusher_before) = setup.counters.now();
        let sent = Instant::now();
        api.invoke(event.clone()).await?;
        let Some((at, body)) = api.answered().await else {
            anyhow::bail!("{} never answered", f.name);
        };
        let status = body["statusCode"].as_u64().unwrap_or(0) as u16;
        if f.expected_status != 0 && status != f.expected_status {
            anyhow::bail!("{} answered {body}", f.name);
        }
        let took = at - sent;
        let (dynamodb_after, pusher_after) = setup.counters.now();
        let dynamodb = dynamodb_after - dynamodb_before;
        if n == 0 {
            figures.first.push(took);
            figures.dynamodb_first.push(dynamodb);
        } else {
            figures.warm.push(took);
            figures.dynamodb_warm.push(dynamodb);
            figures.pusher_warm.push(pusher_after - pusher_before);
        }
        // The next GET /next is already waiting: the process is warm.
        let _ = api.asked().await;
    }
    let _ = child.kill().await;
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
        anyhow::bail!(
            "usage: coldstart DYNAMODB_URL BIN_DIR [RUNS] [WARM] [INIT_RUNS] [SECRETS_MANAGER_URL]"
        );
    };
    // Secrets Manager on a server of its own when given, as on AWS, where it is another
    // service than DynamoDB: moto serves one request at a time, so on the same server
    // the secret reads would wait for the DynamoDB warm-up however they are made.
    let secrets_endpoint = args.get(6).unwrap_or(dynamodb).clone();
    let runs: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(10);
    let warm: usize = args.get(4).and_then(|n| n.parse().ok()).unwrap_or(50);
    let init_runs: usize = args.get(5).and_then(|n| n.parse().ok()).unwrap_or(100);

    let counters = Counters {
        dynamodb: Proxy::start(dynamodb, None).await,
        pusher: Receiver::start().await,
    };
    let (proxy_url, pusher_url) = (
        counters.dynamodb.endpoint.clone(),
        counters.pusher.base_url.clone(),
    );

    // Two users and their room, made through the library against the same server.
    let table = format!("bench-{}", secret_rooms::http::new_request_id());
    let store = DynamoStore::with_endpoint(table.clone(), dynamodb).await;
    store.create_table_with(STREAM).await?;
    let ids = UserIds::default();
    let create = || {
        create_user(
            &store,
            &ids,
            IdPolicy::default(),
            None,
            None,
            SystemTime::now(),
        )
    };
    let alice = create().await?;
    let bob = create().await?;
    let key = RoomKey::parse(ROOM_KEY)?;
    let room = connect(
        &store,
        &key,
        &alice.private_id,
        bob.public_id,
        SystemTime::now(),
    )
    .await?;
    let private = alice.private_id.expose();
    // Messages pile up in the history: sent and listed on a table of their own, with a
    // pair and a room of their own, so that the other functions' transactions do not
    // slow down as it grows (moto copies a whole table for each transaction).
    let history_table = format!("bench-{}", secret_rooms::http::new_request_id());
    let history_store = DynamoStore::with_endpoint(history_table.clone(), dynamodb).await;
    history_store.create_table_with(STREAM).await?;
    let history_create = || {
        create_user(
            &history_store,
            &ids,
            IdPolicy::default(),
            None,
            None,
            SystemTime::now(),
        )
    };
    let (writer, reader) = (history_create().await?, history_create().await?);
    let history_room = connect(
        &history_store,
        &key,
        &writer.private_id,
        reader.public_id,
        SystemTime::now(),
    )
    .await?;
    // Blocks change what they touch: they have users of their own. The first block
    // closes the room, and the blocks after it are the read that finds it closed.
    // (Rotations have a fresh table and user for each cold start, below.)
    let (blocker, peer) = (create().await?, create().await?);
    let blocked = connect(
        &store,
        &key,
        &blocker.private_id,
        peer.public_id,
        SystemTime::now(),
    )
    .await?;
    let only = |who: &secret_rooms::domain::users::CreatedUser| {
        json!({"privateId": who.private_id.expose()}).to_string()
    };

    let env: HashMap<&'static str, String> = HashMap::from([
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_ACCESS_KEY_ID", "bench".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_ENDPOINT_URL_DYNAMODB", proxy_url),
        ("ROOM_ID_KEY", ROOM_KEY.into()),
        ("PUSHER_APP_ID", pusher_receiver::APP_ID.into()),
        ("PUSHER_KEY", pusher_receiver::KEY.into()),
        ("PUSHER_SECRET", pusher_receiver::SECRET.into()),
        ("PUSHER_HOST", pusher_url),
        ("MESSAGE_RATE_LIMIT", "1048575".into()),
        ("MESSAGE_RATE_WINDOW_SECS", "60".into()),
        // The per-address create limit stays on (its count is part of each create),
        // high enough never to refuse the runs.
        ("CREATE_RATE_LIMIT", "1000000".into()),
        // So does the per-identity connect limit: connect's runs reuse one identity.
        ("CONNECT_RATE_LIMIT", "1048575".into()),
        ("RUST_LOG", "info".into()),
    ]);
    // The secrets in Secrets Manager, as the deployed stack keeps them (moto serves it
    // beside DynamoDB; not through the counting proxy).
    let aws_env = |name: &str| env.get(name).cloned();
    let manager = SecretsManager::new(
        secret_rooms::config::aws(&aws_env)?,
        Some(secrets_endpoint.clone()),
    )?;
    let manager_env = HashMap::from([
        (
            secret_rooms::config::ROOM_ID_KEY_SECRET_ARN,
            manager
                .create_secret(&format!("{table}-room-id-key"), ROOM_KEY)
                .await?,
        ),
        (
            secret_rooms::config::PUSHER_SECRET_ARN,
            manager
                .create_secret(&format!("{table}-pusher-secret"), pusher_receiver::SECRET)
                .await?,
        ),
        (
            secret_rooms::config::AWS_ENDPOINT_URL_SECRETS_MANAGER,
            secrets_endpoint.clone(),
        ),
    ]);
    let setup = Setup {
        bin_dir: bin_dir.clone(),
        dynamodb: dynamodb.clone(),
        table: table.clone(),
        env,
        manager_env,
        counters,
    };
    let functions = [
        Function {
            name: "floor",
            event: json!({}),
            expected_status: 0,
            table: Some(table.clone()),
            own_user: false,
        },
        Function {
            name: "create-user",
            event: api_event(Route::CreateUser, "/users/create", None, Some("{}")),
            expected_status: 201,
            // A fresh table for each cold start: moto copies a whole table for every
            // transaction, and a thousand users would slow it down ever more.
            table: None,
            own_user: false,
        },
        Function {
            name: "connect",
            event: api_event(
                Route::Connect,
                &Route::Connect.path_with(&bob.public_id.to_string()),
                Some("application/json"),
                Some(&json!({"privateId": private}).to_string()),
            ),
            expected_status: 200,
            table: Some(table.clone()),
            own_user: false,
        },
        Function {
            name: "send-message",
            event: api_event(
                Route::SendMessage,
                &Route::SendMessage.path_with(history_room.as_str()),
                Some("application/json"),
                Some(
                    &json!({"privateId": writer.private_id.expose(), "message": "hello"})
                        .to_string(),
                ),
            ),
            expected_status: 204,
            table: Some(history_table.clone()),
            own_user: false,
        },
        Function {
            name: "channel-auth",
            event: api_event(
                Route::ChannelAuth,
                Route::ChannelAuth.path(),
                Some("application/x-www-form-urlencoded"),
                Some(&format!(
                    "socket_id=123.456&channel_name={}&privateId={private}",
                    room.channel()
                )),
            ),
            expected_status: 200,
            table: Some(table.clone()),
            own_user: false,
        },
        Function {
            name: "list-messages",
            event: api_event(
                Route::ListMessages,
                &Route::ListMessages.path_with(history_room.as_str()),
                Some("application/json"),
                Some(&only(&writer)),
            ),
            expected_status: 200,
            table: Some(history_table.clone()),
            own_user: false,
        },
        Function {
            name: "list-rooms",
            event: api_event(
                Route::ListRooms,
                Route::ListRooms.path(),
                Some("application/json"),
                Some(&only(&alice)),
            ),
            expected_status: 200,
            table: Some(table.clone()),
            own_user: false,
        },
        Function {
            name: "block-room",
            event: api_event(
                Route::BlockRoom,
                &Route::BlockRoom.path_with(blocked.as_str()),
                Some("application/json"),
                Some(&only(&blocker)),
            ),
            expected_status: 204,
            table: Some(table.clone()),
            own_user: false,
        },
        Function {
            name: "rotate-id",
            event: api_event(
                Route::RotateId,
                Route::RotateId.path(),
                Some("application/json"),
                Some(r#"{"privateId":"{privateId}"}"#),
            ),
            expected_status: 200,
            // Each rotation adds a public id's marker: on the shared table, moto (which
            // copies a whole table for each transaction) would slow every function down,
            // and rotations past its time-outs.
            table: None,
            own_user: true,
        },
    ];

    println!(
        "{runs} cold starts per function with {warm} warm invocations after each, and \
         {init_runs} more that serve no event (init only); times in ms."
    );
    println!();
    println!(
        "| function | warm-up | secrets | init p50 | init / floor | first invocation p50 | warm p50 | warm p99 | first / warm p50 | DynamoDB calls (first, warm) | Pusher calls |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut floor_init = None;
    // Rounds of one cold start each, floor and functions in turn, so that whatever
    // drifts on the machine (caches, clock speed, moto's table) weighs on all alike.
    // Each function with its connections opened at start-up or not, its secrets in
    // variables; and, as deployed, in Secrets Manager with the warm-up on.
    let cases: Vec<(&Function, (WarmUp, Secrets))> = functions
        .iter()
        .flat_map(|f| {
            [
                (f, (WarmUp::Off, Secrets::Variables)),
                (f, (WarmUp::On, Secrets::Variables)),
                (f, (WarmUp::On, Secrets::Manager)),
            ]
        })
        .filter(|(f, (warm_up, secrets))| {
            f.name != "floor" || (*warm_up == WarmUp::Off && *secrets == Secrets::Variables)
        })
        .collect();
    let mut all: Vec<Figures> = cases.iter().map(|_| Figures::default()).collect();
    for _ in 0..runs {
        for ((f, case), figures) in cases.iter().zip(&mut all) {
            figures.extend(measure(&setup, f, *case, Serve::Events { warm }).await?);
        }
    }
    // Init varies by a few tenths of a millisecond from start to start: more rounds of
    // cold starts that serve no event steady its median.
    for _ in 0..init_runs {
        for ((f, case), figures) in cases.iter().zip(&mut all) {
            figures.extend(measure(&setup, f, *case, Serve::InitOnly).await?);
        }
    }
    for ((f, (warm_up, secrets)), figures) in cases.iter().zip(&all) {
        let warm_up = *warm_up;
        {
            let init = percentile(&figures.init, 0.5);
            let floor = *floor_init.get_or_insert(init);
            let first = percentile(&figures.first, 0.5);
            let warm50 = percentile(&figures.warm, 0.5);
            println!(
                "| {} | {} | {} | {:.1} | {:.2}x | {:.2} | {:.2} | {:.2} | {:.2}x | {}, {} | {} |",
                f.name,
                match (f.name, warm_up) {
                    ("floor", _) => "-",
                    (_, WarmUp::On) => "on",
                    (_, WarmUp::Off) => "off",
                },
                match (f.name, secrets) {
                    ("floor", _) => "-",
                    (_, Secrets::Variables) => "variables",
                    (_, Secrets::Manager) => "Secrets Manager",
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
