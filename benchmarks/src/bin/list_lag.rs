//! How long a prober's own room list takes to show their message after N connects to a
//! target, for a held and for a retired target, on the local server (its embedded store
//! in a file, as `cargo run` keeps it; or, with `--dynamodb`, a fresh table at
//! `AWS_ENDPOINT_URL_DYNAMODB`, its lists kept by the stream's function): SPEC v3's "a
//! measurement that the deferred work takes the same time either way". The room lists'
//! projection runs after each write (on one worker, or as the stream delivers the
//! records); if its work for the connects depended on whether the target has a holder,
//! the prober would see it as the lag of their own list.
//!
//! Each trial: a prober and a peer share a room; a target is made (a user's id, or a
//! user's id they rotated away from); the prober connects to it N times (from 8 tasks at
//! once on the embedded store, one after another on DynamoDB), then posts in their own
//! room and asks for their own room list until it shows the message. Held and retired
//! trials alternate, so that drift falls on both. Reported: each kind's median, minimum
//! and maximum lag, and the difference of the medians against the spread within each
//! kind.
//!
//! Usage: list_lag [N=300] [TRIALS=7] [--dynamodb]   (./scripts/list-lag.sh runs it)

use local_server::options::{Options, StoreChoice};
use secret_rooms::domain::messages::RateLimit;
use secret_rooms::domain::rooms::ConnectLimits;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Held,
    Retired,
}

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        let reply = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await?;
        let status = reply.status().as_u16();
        let text = reply.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// A new identity: (public id, private id).
    async fn create(&self) -> anyhow::Result<(String, String)> {
        let (status, body) = self.post("/users/create", json!({})).await?;
        anyhow::ensure!(status == 201, "create answered {status}: {body}");
        let text = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
        Ok((text("publicId"), text("privateId")))
    }

    async fn connect(&self, private_id: &str, to: &str) -> anyhow::Result<String> {
        let path = format!("/users/{to}/connect");
        let (status, body) = self.post(&path, json!({"privateId": private_id})).await?;
        anyhow::ensure!(status == 200, "connect answered {status}: {body}");
        Ok(body["roomId"].as_str().unwrap_or_default().to_owned())
    }

    async fn send(&self, private_id: &str, room: &str, text: &str) -> anyhow::Result<()> {
        let path = format!("/rooms/{room}/message");
        let body = json!({"privateId": private_id, "message": text});
        let (status, body) = self.post(&path, body).await?;
        anyhow::ensure!(status == 204, "send answered {status}: {body}");
        Ok(())
    }

    /// The `lastMessageAt` that `private_id`'s own list shows for `room`.
    async fn last_message_at(&self, private_id: &str, room: &str) -> anyhow::Result<Value> {
        let (status, body) = self
            .post("/users/rooms", json!({"privateId": private_id}))
            .await?;
        anyhow::ensure!(status == 200, "list answered {status}: {body}");
        let rooms = body["rooms"].as_array().cloned().unwrap_or_default();
        Ok(rooms
            .iter()
            .find(|r| r["roomId"] == json!(room))
            .map(|r| r["lastMessageAt"].clone())
            .unwrap_or(Value::Null))
    }

    /// Post in `room` and wait for `private_id`'s list to show it: how long after the
    /// post's answer.
    async fn post_and_wait(&self, private_id: &str, room: &str) -> anyhow::Result<Duration> {
        let before = self.last_message_at(private_id, room).await?;
        // Messages a millisecond apart at least, so that the list's time moves on.
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.send(private_id, room, "are you there?").await?;
        let posted = Instant::now();
        loop {
            if self.last_message_at(private_id, room).await? != before {
                return Ok(posted.elapsed());
            }
            anyhow::ensure!(
                posted.elapsed() < Duration::from_secs(120),
                "the list never showed the message"
            );
        }
    }
}

async fn trial(
    api: &std::sync::Arc<Api>,
    kind: Target,
    n: usize,
    parts: usize,
) -> anyhow::Result<Duration> {
    let (prober_id, prober) = api.create().await?;
    let (peer_id, peer) = api.create().await?;
    let room = api.connect(&prober, &peer_id).await?;
    api.connect(&peer, &prober_id).await?;
    let (target, holder) = api.create().await?;
    if kind == Target::Retired {
        let (status, body) = api
            .post("/users/rotate", json!({"privateId": holder}))
            .await?;
        anyhow::ensure!(status == 200, "rotate answered {status}: {body}");
    }
    // Everything so far projected: the prober's list shows a first message.
    api.post_and_wait(&prober, &room).await?;
    let mut tasks = Vec::new();
    for part in 0..parts {
        let (api, prober, target) = (api.clone(), prober.clone(), target.clone());
        let count = n / parts + usize::from(part < n % parts);
        tasks.push(tokio::spawn(async move {
            for _ in 0..count {
                api.connect(&prober, &target).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    api.post_and_wait(&prober, &room).await
}

fn millis(d: &Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().collect();
    // `--dynamodb`: the local server on DynamoDB (AWS_ENDPOINT_URL_DYNAMODB, a fresh
    // table), its room lists kept by the stream's function as the stream reader
    // delivers the records: the deferred work of AWS, timed.
    let dynamodb = args.iter().any(|a| a == "--dynamodb");
    if std::env::var_os("RUST_LOG").is_some() {
        secret_rooms::telemetry::init();
    }
    args.retain(|a| a != "--dynamodb");
    let n: usize = args.get(1).map_or(Ok(300), |a| a.parse())?;
    let trials: usize = args.get(2).map_or(Ok(7), |a| a.parse())?;
    let dir = std::env::temp_dir().join(format!(
        "secret-rooms-list-lag-{}",
        secret_rooms::domain::random::hex(8)?
    ));
    let options = Options {
        // The prober connects N times: more than an identity may in an hour.
        connect: ConnectLimits {
            rate: RateLimit {
                count: 1_000_000,
                window_secs: 86_400,
            },
            ..ConnectLimits::default()
        },
        ..Options::in_dir(&dir)
    };
    let options = if dynamodb {
        // Never a real account's DynamoDB: the table is made and left behind.
        anyhow::ensure!(
            std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some(),
            "--dynamodb needs AWS_ENDPOINT_URL_DYNAMODB (moto's: ./scripts/list-lag.sh starts it)"
        );
        Options {
            store: StoreChoice::DynamoDb {
                table: format!("list-lag-{}", secret_rooms::domain::random::hex(6)?),
                create: true,
                // moto's, when the script set them (it slows under load).
                timeouts: secret_rooms::config::dynamodb_timeouts(
                    &secret_rooms::config::process_env,
                )?,
            },
            ..options
        }
    } else {
        options
    };
    let server = local_server::start(options).await?;
    let api = std::sync::Arc::new(Api {
        base: format!("http://{}", server.addr),
        client: secret_rooms::tls::reqwest_builder()?.build()?,
    });
    let mut lags: Vec<(Target, f64)> = Vec::new();
    for t in 0..trials {
        let order = if t % 2 == 0 {
            [Target::Held, Target::Retired]
        } else {
            [Target::Retired, Target::Held]
        };
        for kind in order {
            // On DynamoDB one identity's connects at once contend for its connect
            // counter (a conditional update each): there they go one after another.
            let parts = if dynamodb { 1 } else { 8 };
            let lag = trial(&api, kind, n, parts).await?;
            eprintln!("trial {t}: {kind:?} {:.1} ms", millis(&lag));
            lags.push((kind, millis(&lag)));
        }
    }
    server.stop().await?;
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "List lag after {n} connects to the target, {trials} trials each, {} (ms, from the post's answer until the prober's own list shows it):",
        if dynamodb {
            "on DynamoDB (the stream, read every 200 ms, projected by the stream's function)"
        } else {
            "on the embedded store"
        }
    );
    println!();
    println!("| target | median | min | max |");
    println!("| --- | --- | --- | --- |");
    let mut medians = Vec::new();
    for kind in [Target::Held, Target::Retired] {
        let mut v: Vec<f64> = lags
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, l)| *l)
            .collect();
        v.sort_by(f64::total_cmp);
        let m = median(&v);
        medians.push((m, v[v.len() - 1] - v[0]));
        println!(
            "| {kind:?} | {m:.1} | {:.1} | {:.1} |",
            v[0],
            v[v.len() - 1]
        );
    }
    println!(
        "| held - retired | {:+.1} | (spread within held {:.1}, within retired {:.1}) | |",
        medians[0].0 - medians[1].0,
        medians[0].1,
        medians[1].1
    );
    Ok(())
}
