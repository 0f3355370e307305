//! Connect latency to used and to unused public ids: does the time of a connect tell
//! whether its target has a holder? The connect function's handler runs here, in
//! process, as Lambda runs it (API Gateway event in, response out), against a
//! DynamoDB-compatible server.
//!
//! Requesters connect to `N` used ids (each held by a user created first) and `N` unused
//! ones, in one random interleaved order, so that drift over the run (the server's
//! caches, the machine's load) falls on both alike. Reported: each group's median, mean
//! and spread; the difference of the medians with a bootstrap 95% interval; and the same
//! difference between two random halves of the used group (an A/A split), which is the
//! noise a real difference would have to stand out from.
//!
//! Usage: connect_timing DYNAMODB_URL [N]   (./scripts/connect-timing.sh runs it)

use secret_rooms::domain::PublicId;
use secret_rooms::domain::ports::SystemClock;
use secret_rooms::domain::rooms::{MAX_ROOMS, RoomKey};
use secret_rooms::domain::users::{CreatedUser, IdPolicy, UserIds, create_user};
use secret_rooms::http::{Endpoint, Route, routes};
use secret_rooms::realtime::pusher::{PusherClient, PusherConfig, PusherCredentials};
use secret_rooms::store::{DynamoStore, Store};
use secret_rooms_test_kit::events::{api_event, invoke};
use secret_rooms_test_kit::pusher_receiver::{self as receiver_consts, Receiver};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use benchmarks::ROOM_KEY;
const WARM_UP: usize = 50;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Used,
    Unused,
}

fn random_below(n: usize) -> anyhow::Result<usize> {
    Ok((secret_rooms::domain::random::u64()? % n as u64) as usize)
}

fn shuffle<T>(items: &mut [T]) -> anyhow::Result<()> {
    for i in (1..items.len()).rev() {
        items.swap(i, random_below(i + 1)?);
    }
    Ok(())
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// 95% bootstrap interval of median(a) - median(b).
fn bootstrap(a: &[f64], b: &[f64], rounds: usize) -> anyhow::Result<(f64, f64)> {
    let mut diffs = Vec::with_capacity(rounds);
    let resample = |v: &[f64]| -> anyhow::Result<Vec<f64>> {
        (0..v.len())
            .map(|_| Ok(v[random_below(v.len())?]))
            .collect()
    };
    for _ in 0..rounds {
        diffs.push(median(&sorted(&resample(a)?)) - median(&sorted(&resample(b)?)));
    }
    let diffs = sorted(&diffs);
    Ok((percentile(&diffs, 0.025), percentile(&diffs, 0.975)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(dynamodb) = args.get(1) else {
        anyhow::bail!("usage: connect_timing DYNAMODB_URL [N]");
    };
    let n: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1000);

    let table = format!("timing-{}", secret_rooms::http::new_request_id());
    // The test command's timeouts (DYNAMODB_*_TIMEOUT_MS, set for moto by
    // scripts/lib.sh): moto serves one request at a time and pauses now and then.
    let timeouts = secret_rooms::config::dynamodb_timeouts(&secret_rooms::config::process_env)?;
    let store = Arc::new(DynamoStore::with_endpoint_and_timeouts(table, dynamodb, timeouts).await);
    store.create_table().await?;
    let ids = UserIds::default();
    let create = || {
        create_user(
            &*store,
            &ids,
            IdPolicy::default(),
            None,
            None,
            SystemTime::now(),
        )
    };

    // Each requester joins at most MAX_ROOMS rooms: enough requesters for every connect
    // (the warm-up's too), each with as many used as unused targets.
    let per_requester = MAX_ROOMS / 2;
    let requesters_needed = (n + WARM_UP).div_ceil(per_requester);
    let mut requesters: Vec<CreatedUser> = Vec::new();
    for _ in 0..requesters_needed {
        requesters.push(create().await?);
    }
    let mut used: Vec<PublicId> = Vec::new();
    for _ in 0..n + WARM_UP {
        used.push(create().await?.public_id);
    }
    let taken: HashSet<PublicId> = requesters
        .iter()
        .map(|u| u.public_id)
        .chain(used.iter().copied())
        .collect();
    let mut unused: Vec<PublicId> = Vec::new();
    while unused.len() < n + WARM_UP {
        let id = PublicId::from_number(random_below(PublicId::SHORT_SPACE as usize)? as u32)
            .ok_or_else(|| anyhow::anyhow!("id out of range"))?;
        if !taken.contains(&id) && !unused.contains(&id) {
            unused.push(id);
        }
    }

    // (requester, target, kind), interleaved at random; the first WARM_UP are not counted.
    let mut plan: Vec<(usize, PublicId, Target)> = Vec::new();
    for (i, (u, f)) in used.iter().zip(&unused).enumerate() {
        let requester = i / per_requester;
        plan.push((requester, *u, Target::Used));
        plan.push((requester, *f, Target::Unused));
    }
    shuffle(&mut plan)?;

    // The inbox announcement goes to a local Pusher-protocol receiver, as every connect's
    // does: one publish per connect, used or unused target alike.
    let receiver = Receiver::start().await;
    let pusher = PusherClient::new(&PusherConfig {
        app_id: receiver_consts::APP_ID.into(),
        credentials: PusherCredentials::new(receiver_consts::KEY, receiver_consts::SECRET),
        base_url: receiver.base_url.clone(),
        timeout: std::time::Duration::from_secs(3),
    })?;
    let connect = Endpoint::from(routes::Connect {
        limits: secret_rooms::domain::rooms::ConnectLimits::UNLIMITED,
        store: store.clone() as Arc<dyn Store>,
        realtime: Arc::new(pusher),
        room_key: RoomKey::parse(ROOM_KEY)?,
        clock: Arc::new(SystemClock),
    });
    let (mut used_ms, mut unused_ms) = (Vec::new(), Vec::new());
    for (i, (requester, target, kind)) in plan.iter().enumerate() {
        let body = json!({"privateId": requesters[*requester].private_id.expose()}).to_string();
        let event = api_event(
            Route::Connect,
            &format!("/users/{target}/connect"),
            Some("application/json"),
            Some(&body),
        );
        let started = Instant::now();
        let reply = invoke(&connect, &event).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(reply.status == 200, "connect answered {}", reply.status);
        if i < 2 * WARM_UP {
            continue;
        }
        match kind {
            Target::Used => used_ms.push(ms),
            Target::Unused => unused_ms.push(ms),
        }
    }

    // A/A: the used group split at random in two halves.
    let mut halves = used_ms.clone();
    shuffle(&mut halves)?;
    let (half_a, half_b) = halves.split_at(halves.len() / 2);

    println!(
        "Connect latency, in-process handler against {dynamodb} ({} connects measured, {} warm-up)",
        used_ms.len() + unused_ms.len(),
        2 * WARM_UP
    );
    println!();
    println!("| targets | n | median | mean | p10 | p90 |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, values) in [("used ids", &used_ms), ("unused ids", &unused_ms)] {
        let s = sorted(values);
        println!(
            "| {name} | {} | {:.3} ms | {:.3} ms | {:.3} ms | {:.3} ms |",
            s.len(),
            median(&s),
            mean(values),
            percentile(&s, 0.1),
            percentile(&s, 0.9)
        );
    }
    println!();
    let diff = median(&sorted(&used_ms)) - median(&sorted(&unused_ms));
    let (lo, hi) = bootstrap(&used_ms, &unused_ms, 2000)?;
    let aa = median(&sorted(half_a)) - median(&sorted(half_b));
    let (aa_lo, aa_hi) = bootstrap(half_a, half_b, 2000)?;
    println!("| difference | of medians | 95% bootstrap interval |");
    println!("| --- | --- | --- |");
    println!("| used - unused | {diff:+.3} ms | {lo:+.3} to {hi:+.3} ms |");
    println!("| used half A - used half B (noise) | {aa:+.3} ms | {aa_lo:+.3} to {aa_hi:+.3} ms |");
    println!(
        "| mean used - mean unused | {:+.3} ms | |",
        mean(&used_ms) - mean(&unused_ms)
    );
    Ok(())
}
