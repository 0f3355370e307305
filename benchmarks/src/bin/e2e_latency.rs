//! What a person waits for on the Lambda path, next to its floor:
//!
//! - send-message: from handing the API Gateway event to a warm function process (under
//!   a local Lambda Runtime API) until a websocket subscriber on the room's channel
//!   receives the `message` event;
//! - connect: the same, until a subscriber on the target's inbox channel receives the
//!   `room` event (each connect a fresh requester's first join: always announced);
//! - the floor of each: the same DynamoDB calls and publish, made in this process with
//!   the clients the function builds from the same settings, timed from their start.
//!
//! Lambda and floor alternate round by round, so that drift weighs on both alike. The
//! calls of each are counted first, through a proxy in front of the DynamoDB server; the
//! measured rounds go to it directly.
//!
//! Usage: e2e_latency DYNAMODB_URL BIN_DIR [N=200]

use anyhow::{Context, anyhow, bail, ensure};
use benchmarks::runtime_api::RuntimeApi;
use benchmarks::{ROOM_KEY, percentile};
use futures_util::{SinkExt, StreamExt};
use secret_rooms::config::{self, Lookup};
use secret_rooms::domain::history::{self, MessageTtl};
use secret_rooms::domain::messages::{MESSAGE_EVENT, MessageEvent, RateLimit, Sender};
use secret_rooms::domain::ports::Realtime;
use secret_rooms::domain::ports::store::{
    Allowance, Announce, Joining, Keeping, KeptMessage, MessageStore, RoomStore, UserStore,
};
use secret_rooms::domain::rooms::{ConnectLimits, MAX_ROOMS, ROOM_EVENT, RoomKey, Side, connect};
use secret_rooms::domain::sent::{LastSent, MessageId};
use secret_rooms::domain::time::{millis_of, rfc3339};
use secret_rooms::domain::users::{CreatedUser, IdPolicy, UserIds, create_user};
use secret_rooms::domain::{PrivateId, PublicId, RoomId, SocketId};
use secret_rooms::http::Route;
use secret_rooms::realtime::pusher::{PusherClient, PusherCredentials};
use secret_rooms::store::{DynamoStore, Timeouts};
use secret_rooms::wiring;
use secret_rooms_test_kit::dynamodb_proxy::Proxy;
use secret_rooms_test_kit::events::api_event;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio_tungstenite::tungstenite::Message;

const APP_ID: &str = "e2e";
const APP_KEY: &str = "e2e-key";
const APP_SECRET: &str = "e2e-secret";
/// Rounds run and not kept, so that both ways have their connections open.
const WARM_UP: usize = 5;
/// Rounds on one table of connects ([`Joins`]).
const ROTATE: usize = 20;
/// How long an event, or a function's answer, may take before the run fails.
const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    SendMessage,
    Connect,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    Lambda,
    Floor,
}

/// Each path by each way, Lambda first: a round runs them all.
const CASES: [(Path, Way); 4] = [
    (Path::SendMessage, Way::Lambda),
    (Path::SendMessage, Way::Floor),
    (Path::Connect, Way::Lambda),
    (Path::Connect, Way::Floor),
];

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Work = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// An event frame's `data`, which the protocol sends as JSON text.
fn data(frame: &Value) -> Value {
    serde_json::from_str(frame["data"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

/// A websocket client of the Pusher-protocol server, subscribed to private channels.
struct Subscriber {
    socket: Socket,
    id: SocketId,
    app: PusherCredentials,
}

impl Subscriber {
    async fn start(url: &str, app: &PusherCredentials) -> anyhow::Result<Self> {
        let (mut socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .with_context(|| format!("websocket to {url}"))?;
        let established = "pusher:connection_established";
        let (_, frame) = wait_for(&mut socket, established, |f| f["event"] == established).await?;
        let id = data(&frame)["socket_id"].as_str().and_then(SocketId::parse);
        let id = id.with_context(|| format!("no socket id in {frame}"))?;
        let app = app.clone();
        Ok(Self { socket, id, app })
    }

    /// Subscribed to `channel`, once the server says so.
    async fn subscribe(&mut self, channel: &str) -> anyhow::Result<()> {
        let auth = self.app.authorize(&self.id, channel).auth;
        self.send(
            "pusher:subscribe",
            json!({"channel": channel, "auth": auth}),
        )
        .await?;
        let what = format!("the subscription to {channel}");
        let succeeded = |f: &Value| {
            f["event"] == "pusher_internal:subscription_succeeded" && f["channel"] == channel
        };
        self.wait_for(&what, succeeded).await.map(drop)
    }

    async fn send(&mut self, event: &str, data: Value) -> anyhow::Result<()> {
        let frame = Message::text(json!({"event": event, "data": data}).to_string());
        self.socket.send(frame).await.context("websocket send")
    }

    /// Caught up: the server sends what was published to the socket before it answers a
    /// ping, so nothing older is left to read when timing starts.
    async fn barrier(&mut self) -> anyhow::Result<()> {
        self.send("pusher:ping", json!({})).await?;
        let pong = |f: &Value| f["event"] == "pusher:pong";
        self.wait_for("pusher:pong", pong).await.map(drop)
    }

    async fn wait_for(
        &mut self,
        what: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<(Instant, Value)> {
        wait_for(&mut self.socket, what, wanted).await
    }
}

/// The first frame `wanted` takes, and when it was read; an error naming `what` if none
/// comes within [`WAIT`].
async fn wait_for(
    socket: &mut Socket,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> anyhow::Result<(Instant, Value)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .map_err(|_| anyhow!("{what} did not arrive within {WAIT:?}"))?
            .with_context(|| format!("the websocket closed before {what}"))?
            .with_context(|| format!("the websocket failed before {what}"))?;
        let at = Instant::now();
        let Message::Text(text) = frame else { continue };
        let frame: Value = serde_json::from_str(&text).unwrap_or_default();
        if frame["event"] == "pusher:error" || frame["event"] == "pusher:subscription_error" {
            bail!("waiting for {what}, the Pusher server sent {frame}");
        }
        if wanted(&frame) {
            return Ok((at, frame));
        }
    }
}

/// A function binary serving events from a local Lambda Runtime API.
struct Lambda {
    name: &'static str,
    api: RuntimeApi,
    _process: tokio::process::Child,
}

impl Lambda {
    async fn start(
        dir: &str,
        name: &'static str,
        env: &HashMap<String, String>,
    ) -> anyhow::Result<Self> {
        let mut api = RuntimeApi::start().await?;
        let process = tokio::process::Command::new(format!("{dir}/{name}"))
            .env_clear()
            .envs(env)
            .env("AWS_LAMBDA_RUNTIME_API", &api.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {dir}/{name}"))?;
        let asked = tokio::time::timeout(WAIT, api.asked()).await.ok().flatten();
        ensure!(asked.is_some(), "{name} never asked for an event");
        Ok(Self {
            name,
            api,
            _process: process,
        })
    }

    /// Its answer to the event handed out, which must be `status`; then its next ask.
    async fn answered(&mut self, status: u64) -> anyhow::Result<()> {
        let name = self.name;
        let answer = tokio::time::timeout(WAIT, self.api.answered()).await;
        let Ok(Some((_, body))) = answer else {
            bail!("{name} never answered")
        };
        ensure!(body["statusCode"] == status, "{name} answered {body}");
        let asked = tokio::time::timeout(WAIT, self.api.asked())
            .await
            .ok()
            .flatten();
        ensure!(asked.is_some(), "{name} never asked for the next event");
        Ok(())
    }
}

/// The floor: the I/O of both routes, on clients built as the functions build theirs
/// (`routes::SendMessage::from_env`, `routes::Connect::from_env`) from the same variables.
struct Floor {
    messages: DynamoStore,
    connects: DynamoStore,
    pusher: PusherClient,
    rate: RateLimit,
    ttl: MessageTtl,
    limits: ConnectLimits,
    key: RoomKey,
}

fn store_of(env: Lookup) -> anyhow::Result<DynamoStore> {
    let (table, timeouts) = (config::table_name(env)?, config::dynamodb_timeouts(env)?);
    Ok(wiring::dynamo_store(env, table, timeouts)?)
}

impl Floor {
    fn from_env(send: Lookup, connect: Lookup) -> anyhow::Result<Self> {
        Ok(Self {
            messages: store_of(send)?,
            connects: store_of(connect)?,
            pusher: wiring::pusher_client(&config::pusher(send)?)?,
            rate: config::rate_limit(send)?,
            ttl: config::message_ttl(send)?,
            limits: config::connect_limits(connect)?,
            key: config::room_key(connect)?,
        })
    }

    /// One new message, as `domain::messages::send_message` does it: the counted update
    /// on the sender's user item, the history write, then the publish.
    async fn send(
        self: Arc<Self>,
        room: RoomId,
        sender: PrivateId,
        text: String,
    ) -> anyhow::Result<()> {
        let now = SystemTime::now();
        let (window, _) = self.rate.window_at(now);
        let id = MessageId::random()?;
        let this = LastSent::of(&id, &room, &text, now);
        let who = sender.hash();
        let counted = self.messages.count_message(&room, &who, window, &this);
        let Allowance::Allowed(member) = counted.await? else {
            bail!("the count refused")
        };
        let sent_at = rfc3339(now);
        let from = Sender {
            public_id: member.public_id.to_string(),
            username: &member.username,
        };
        let cursor = history::kept(&id, now)?;
        let (id, room_id) = (id.as_str().to_owned(), room.as_str());
        let event = MessageEvent {
            id: id.clone(),
            room_id,
            from,
            message: &text,
            sent_at: sent_at.clone(),
        };
        let data = serde_json::to_string(&event)?;
        let kept = KeptMessage {
            cursor,
            id,
            from: member,
            message: text,
            sent_at,
        };
        self.messages
            .keep_message(&room, &kept, self.ttl.expires_at(now), Keeping::New)
            .await?;
        let channel = room.channel();
        Ok(self
            .pusher
            .publish(&[channel.as_str()], MESSAGE_EVENT, &data)
            .await?)
    }

    /// One connect that announces, as `domain::rooms::connect_and_announce` does it: the
    /// read of the requester's user item, the join's transaction, one publish on the
    /// target's inbox channel and the room's.
    async fn connect(
        self: Arc<Self>,
        requester: PrivateId,
        target: PublicId,
    ) -> anyhow::Result<()> {
        let now = SystemTime::now();
        let (window, _) = self.limits.rate.window_at(now);
        let me = requester.hash();
        let joiner = self
            .connects
            .member_for_connect(&me)
            .await?
            .context("no such requester")?;
        let mine = joiner.member.public_id;
        let room = self.key.room_of(mine, target);
        let joining = Joining {
            room: &room,
            side: Side::of(mine, target),
            joiner: &me,
            requester: &joiner,
            target,
            max_rooms: MAX_ROOMS,
            connects: window,
            offer_expires_at: millis_of(now) / 1000 + self.limits.offer_ttl.as_secs(),
            now: &rfc3339(now),
        };
        let announce = self.connects.join_room(&joining).await?;
        ensure!(announce == Announce::Now, "the join is not announced");
        let mut from = json!({"publicId": mine.to_string(), "username": joiner.member.username});
        if let Some(public_key) = &joiner.public_key {
            from["publicKey"] = public_key.to_string().into();
        }
        let data = json!({"roomId": room.as_str(), "channel": room.channel(), "from": from});
        let channels = [self.key.inbox_channel(target), room.channel()];
        let channels = channels.each_ref().map(String::as_str);
        Ok(self
            .pusher
            .publish(&channels, ROOM_EVENT, &data.to_string())
            .await?)
    }
}

/// A table for connects, with a target user whose inbox the subscriber listens on. Each
/// serves [`ROTATE`] rounds: moto deep-copies a table for every item of a transaction,
/// and the joins would slow down (past the SDK's time-outs) as the rooms pile up.
struct Joins {
    table: String,
    /// Where the fresh requesters are made (straight to moto: not counted), with ids
    /// drawn from this table's own blocks.
    store: DynamoStore,
    ids: UserIds,
    target: PublicId,
    inbox: String,
}

/// Both functions and the floor, on one DynamoDB endpoint (moto, or the proxy).
struct Rig {
    endpoint: String,
    send: Lambda,
    connect: Lambda,
    floor: Arc<Floor>,
    joins: Joins,
}

/// What the rounds share: the functions' variables, the messages' table, its room.
struct World {
    bin_dir: String,
    env: HashMap<String, String>,
    messages: String,
    key: RoomKey,
    writer: PrivateId,
    room: RoomId,
}

impl World {
    /// The functions' variables for `table` on `endpoint`.
    fn env(&self, table: &str, endpoint: &str) -> HashMap<String, String> {
        let mut env = self.env.clone();
        env.insert(config::TABLE_NAME.into(), table.into());
        env.insert(config::AWS_ENDPOINT_URL_DYNAMODB.into(), endpoint.into());
        env
    }

    /// A fresh [`Joins`], its inbox subscribed to.
    async fn joins(&self, sub: &mut Subscriber) -> anyhow::Result<Joins> {
        let table = format!("e2e-{}", secret_rooms::http::new_request_id());
        let store = fresh_table(&|k: &str| self.env.get(k).cloned(), &table).await?;
        let ids = UserIds::default();
        let target = user(&store, &ids).await?.public_id;
        let inbox = self.key.inbox_channel(target);
        sub.subscribe(&inbox).await?;
        Ok(Joins {
            table,
            store,
            ids,
            target,
            inbox,
        })
    }

    /// The connect function and the floor on `joins`.
    async fn connect_side(&self, endpoint: &str, joins: &Joins) -> anyhow::Result<(Lambda, Floor)> {
        let (send_env, connect_env) = (
            self.env(&self.messages, endpoint),
            self.env(&joins.table, endpoint),
        );
        let (send, connect) = (
            |k: &str| send_env.get(k).cloned(),
            |k: &str| connect_env.get(k).cloned(),
        );
        let lambda = Lambda::start(&self.bin_dir, "connect", &connect_env).await?;
        Ok((lambda, Floor::from_env(&send, &connect)?))
    }

    async fn rig(&self, endpoint: &str, sub: &mut Subscriber) -> anyhow::Result<Rig> {
        let joins = self.joins(sub).await?;
        let send_env = self.env(&self.messages, endpoint);
        let send = Lambda::start(&self.bin_dir, "send-message", &send_env).await?;
        let (connect, floor) = self.connect_side(endpoint, &joins).await?;
        let (endpoint, floor) = (endpoint.to_owned(), Arc::new(floor));
        Ok(Rig {
            endpoint,
            send,
            connect,
            floor,
            joins,
        })
    }

    /// Connects move on to a fresh [`Joins`], with a new connect process and floor
    /// (warmed up by one round of every case, not kept).
    async fn rotate(
        &self,
        rig: &mut Rig,
        sub: &mut Subscriber,
        round: usize,
    ) -> anyhow::Result<()> {
        let joins = self.joins(sub).await?;
        let (connect, floor) = self.connect_side(&rig.endpoint, &joins).await?;
        (rig.connect, rig.floor, rig.joins) = (connect, Arc::new(floor), joins);
        for (i, case) in CASES.into_iter().enumerate() {
            let tag = format!("warm-up {round} {i}");
            self.measure(rig, sub, case, &tag).await?;
        }
        Ok(())
    }

    /// One measurement of `path` by `way`; `tag` makes its event unlike any other.
    async fn measure(
        &self,
        rig: &mut Rig,
        sub: &mut Subscriber,
        (path, way): (Path, Way),
        tag: &str,
    ) -> anyhow::Result<Duration> {
        let floor = rig.floor.clone();
        // The function, its event and answer, the floor's work, and what the subscriber
        // awaits: `name` on `channel`, its data holding `value` at `field`.
        let (lambda, event, status, work, (name, channel, field, value)) = match path {
            Path::SendMessage => {
                let text = format!("e2e {tag}");
                let body = json!({"privateId": self.writer.expose(), "message": text});
                let event = api_event_of(Route::SendMessage, self.room.as_str(), body);
                let work = floor.send(self.room.clone(), self.writer.clone(), text.clone());
                let awaited = (MESSAGE_EVENT, self.room.channel(), "/message", text);
                (&mut rig.send, event, 204, Box::pin(work) as Work, awaited)
            }
            Path::Connect => {
                // A fresh requester: a first join, which is always announced.
                let joins = &rig.joins;
                let requester = user(&joins.store, &joins.ids).await?;
                let body = json!({"privateId": requester.private_id.expose()});
                let event = api_event_of(Route::Connect, &joins.target.to_string(), body);
                let work = floor.connect(requester.private_id, joins.target);
                let from = requester.public_id.to_string();
                let awaited = (ROOM_EVENT, joins.inbox.clone(), "/from/publicId", from);
                (
                    &mut rig.connect,
                    event,
                    200,
                    Box::pin(work) as Work,
                    awaited,
                )
            }
        };
        let what = format!("`{name}` with {field} {value:?} on {channel}");
        let wanted = |f: &Value| {
            let data = data(f);
            f["event"] == name
                && f["channel"] == *channel
                && data.pointer(field) == Some(&json!(value))
        };
        sub.barrier().await?;
        let started = Instant::now();
        let floor = match way {
            Way::Lambda => {
                lambda.api.invoke(event).await?;
                None
            }
            // A task of its own, as the function's handler is a process of its own.
            Way::Floor => Some(tokio::spawn(work)),
        };
        let arrived = sub.wait_for(&what, wanted).await;
        // How the work ended before whether the event came: a failure says more.
        match floor {
            Some(task) => task.await?.context("the floor's calls")?,
            None => lambda.answered(status).await?,
        }
        Ok(arrived?.0 - started)
    }
}

/// An API Gateway event for `route` with its path parameter `param` and a JSON body.
fn api_event_of(route: Route, param: &str, body: Value) -> Value {
    let (path, body) = (route.path_with(param), body.to_string());
    api_event(route, &path, Some("application/json"), Some(&body))
}

async fn user(store: &DynamoStore, ids: &UserIds) -> anyhow::Result<CreatedUser> {
    let now = SystemTime::now();
    Ok(create_user(store, ids, IdPolicy::default(), None, None, now).await?)
}

/// A fresh table, through a store on the functions' settings (moto's endpoint in `env`).
async fn fresh_table(env: Lookup<'_>, name: &str) -> anyhow::Result<DynamoStore> {
    let store = DynamoStore::from_settings(config::aws(env)?, name, Timeouts::default())?;
    // No stream: nothing here measures the projection, and moto slows down as a
    // stream's records pile up.
    store.create_table_with(false).await?;
    Ok(store)
}

fn mean(values: &[Duration]) -> f64 {
    values.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0 / values.len().max(1) as f64
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dynamodb), Some(bin_dir)) = (args.get(1), args.get(2)) else {
        bail!("usage: e2e_latency DYNAMODB_URL BIN_DIR [N=200]");
    };
    let n: usize = args.get(3).map_or(Ok(200), |a| a.parse()).context("N")?;

    // The Pusher-protocol server, counting the publishes it is sent.
    let app = PusherCredentials::new(APP_KEY, APP_SECRET);
    let publishes = Arc::new(AtomicUsize::new(0));
    let counter = publishes.clone();
    let server = local_server::pusher_server::App {
        id: APP_ID.into(),
        credentials: app.clone(),
    };
    let count = move |request: axum::extract::Request, next: axum::middleware::Next| {
        if request.uri().path().starts_with("/apps/") {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        next.run(request)
    };
    let router =
        local_server::pusher_server::router(server).layer(axum::middleware::from_fn(count));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let pusher = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });

    let env: HashMap<String, String> = [
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.as_str()),
        ("ROOM_ID_KEY", ROOM_KEY),
        ("PUSHER_APP_ID", APP_ID),
        ("PUSHER_KEY", APP_KEY),
        ("PUSHER_SECRET", APP_SECRET),
        ("PUSHER_HOST", &format!("http://{pusher}")),
        ("MESSAGE_RATE_LIMIT", "1048575"),
        ("MESSAGE_RATE_WINDOW_SECS", "60"),
        // Each connect is another requester's; the limit stays out of the way anyway.
        ("CONNECT_RATE_LIMIT", "1048575"),
        ("WARM_UP_CONNECTIONS", "true"),
        ("RUST_LOG", "info"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .into();

    // The messages' table, apart from the connects': moto copies a whole table for each
    // transaction, and the history would slow the joins down as it grows.
    let messages = format!("e2e-{}", secret_rooms::http::new_request_id());
    let store = fresh_table(&|k: &str| env.get(k).cloned(), &messages).await?;
    let (ids, key) = (UserIds::default(), RoomKey::parse(ROOM_KEY)?);
    let (writer, reader) = (user(&store, &ids).await?, user(&store, &ids).await?);
    let now = SystemTime::now();
    let room = connect(&store, &key, &writer.private_id, reader.public_id, now).await?;
    let (bin_dir, writer) = (bin_dir.clone(), writer.private_id);
    let world = World {
        bin_dir,
        env,
        messages,
        key,
        writer,
        room,
    };
    let mut sub =
        Subscriber::start(&format!("ws://{pusher}/app/{APP_KEY}?protocol=7"), &app).await?;
    sub.subscribe(&world.room.channel()).await?;

    // The calls of one warm invocation each way (the first pass warms up), counted
    // through a proxy, on processes of their own.
    let proxy = Proxy::start(dynamodb, None).await;
    let mut counted = world.rig(&proxy.endpoint, &mut sub).await?;
    let mut calls = Vec::new();
    for (i, case) in CASES.into_iter().chain(CASES).enumerate() {
        let _ = proxy.take_exchanges();
        let before = publishes.load(Ordering::SeqCst);
        world
            .measure(&mut counted, &mut sub, case, &format!("census {i}"))
            .await?;
        let ops: Vec<_> = proxy
            .take_exchanges()
            .into_iter()
            .map(|e| e.operation)
            .collect();
        let published = publishes.load(Ordering::SeqCst) - before;
        calls.push(format!("{} + {published} publish", ops.join(", ")));
    }
    drop(counted);

    let mut rig = world.rig(dynamodb, &mut sub).await?;
    let mut samples = vec![Vec::new(); CASES.len()];
    for round in 0..WARM_UP + n {
        if round > 0 && round % ROTATE == 0 {
            world.rotate(&mut rig, &mut sub, round).await?;
        }
        for i in 0..CASES.len() {
            // Lambda before the floor in even rounds, after it in odd ones.
            let i = if round % 2 == 0 { i } else { i ^ 1 };
            let tag = format!("round {round} {i}");
            let took = world.measure(&mut rig, &mut sub, CASES[i], &tag).await;
            let took = took.with_context(|| format!("round {round}: {:?}", CASES[i]))?;
            if round >= WARM_UP {
                samples[i].push(took);
            }
        }
    }

    println!("| path | Lambda p50 | floor p50 | ratio p50 | Lambda p99 | floor p99 | n |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let (mut means, mut census) = (Vec::new(), Vec::new());
    let names = [
        "send-message → `message` on the room's channel",
        "connect → `room` on the target's inbox",
    ];
    for (i, name) in names.into_iter().enumerate() {
        let (lambda, floor) = (&samples[2 * i], &samples[2 * i + 1]);
        let [l50, f50, l99, f99] = [(lambda, 0.5), (floor, 0.5), (lambda, 0.99), (floor, 0.99)]
            .map(|(v, p)| percentile(v, p).as_secs_f64() * 1000.0);
        let (kept, ratio) = (lambda.len(), l50 / f50);
        println!("| {name} | {l50:.2} | {f50:.2} | {ratio:.2}x | {l99:.2} | {f99:.2} | {kept} |");
        let name = name.split(' ').next().unwrap_or(name);
        means.push(format!(
            "{name} Lambda {:.2}, floor {:.2}",
            mean(lambda),
            mean(floor)
        ));
        let (l, f) = (&calls[CASES.len() + 2 * i], &calls[CASES.len() + 2 * i + 1]);
        let same = if l == f { "the same" } else { "DIFFERENT" };
        census.push(format!("{name}: Lambda {l}; floor {f} ({same})"));
    }
    println!();
    println!(
        "Times in ms, from the event handed out (or the floor's start) until the subscriber has it."
    );
    println!("Means: {}.", means.join("; "));
    println!(
        "DynamoDB calls per warm invocation, through a counting proxy: {}.",
        census.join("; ")
    );
    println!(
        "Reproduce: `cargo build --release --locked -p send-message -p connect -p benchmarks --bins`, \
         start moto (`.venv/bin/python scripts/moto_dynamodb.py 127.0.0.1 PORT`), then \
         `target/release/e2e_latency http://127.0.0.1:PORT target/release {n}`."
    );
    Ok(())
}
