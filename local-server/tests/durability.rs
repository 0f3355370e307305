//! Group commit loses nothing acknowledged: the real server binary, on a file, is killed
//! (SIGKILL, no chance to flush) while many sends are in flight; the file, opened again,
//! keeps every message that was answered 204, once. A kill leaves the operating
//! system's page cache to reach the disk, so this catches an answer given before its
//! batch committed (seen failing so), not a commit that skipped its fsync: that one
//! only a power cut shows, and redb's `Durability::Immediate`, its default, is what
//! guards it.

use secret_rooms::store::EmbeddedStore;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Concurrent senders, and how many answers to wait for before the kill.
const SENDERS: usize = 32;
const KILL_AFTER: usize = 600;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn client() -> reqwest::Client {
    secret_rooms::tls::reqwest_builder()
        .unwrap()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> Result<(u16, Value), String> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| e.to_string())?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_message_survives_a_kill_mid_load() {
    let dir = std::env::temp_dir().join(format!(
        "secret-rooms-durability-{}",
        secret_rooms::http::new_request_id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_secret-rooms-local"))
            .args(["--data-dir", dir.to_str().unwrap()])
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .env("MESSAGE_RATE_LIMIT", "1048575")
            .env("MESSAGE_RATE_WINDOW_SECS", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = client();
    let mut up = false;
    for _ in 0..200 {
        if post(&http, format!("{base}/users/create"), json!({}))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the server did not start");
    let (_, alice) = post(&http, format!("{base}/users/create"), json!({}))
        .await
        .unwrap();
    let (_, bob) = post(&http, format!("{base}/users/create"), json!({}))
        .await
        .unwrap();
    let (status, room) = post(
        &http,
        format!(
            "{base}/users/{}/connect",
            alice["publicId"].as_str().unwrap()
        ),
        json!({"privateId": bob["privateId"]}),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{room}");
    let room = room["roomId"].as_str().unwrap().to_owned();

    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let answered = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let (enough, mut enough_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut senders = Vec::new();
    for sender in 0..SENDERS {
        let (http, url) = (http.clone(), format!("{base}/rooms/{room}/message"));
        let private_id = bob["privateId"].clone();
        let (acknowledged, answered, started, enough) = (
            acknowledged.clone(),
            answered.clone(),
            started.clone(),
            enough.clone(),
        );
        senders.push(tokio::spawn(async move {
            for n in 0.. {
                let text = format!("durable {sender}-{n}");
                started.fetch_add(1, Ordering::SeqCst);
                match post(
                    &http,
                    url.clone(),
                    json!({"privateId": private_id, "message": text}),
                )
                .await
                {
                    Ok((204, _)) => {
                        acknowledged.lock().unwrap().push(text);
                        if answered.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
                            let _ = enough.try_send(());
                        }
                    }
                    Ok((status, body)) => panic!("a send answered {status}: {body}"),
                    // The server is gone.
                    Err(_) => return,
                }
            }
        }));
    }
    drop(enough);
    enough_rx.recv().await.unwrap();
    // SIGKILL: what the server had not synced is lost, as in a crash.
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    for sender in senders {
        sender.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let in_flight = started.load(Ordering::SeqCst) - acknowledged.len();
    assert!(acknowledged.len() >= KILL_AFTER);
    // Sends were cut off mid-way: the kill landed under load, not after it.
    assert!(in_flight > 0, "no send was in flight at the kill");

    let store = EmbeddedStore::open(&PathBuf::from(&dir).join("secret-rooms.redb")).unwrap();
    let kept: Vec<String> = store
        .dump()
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, item)| item["type"] == "message")
        .filter_map(|(_, item)| item["message"].as_str().map(str::to_owned))
        .collect();
    let mut missing = Vec::new();
    for text in &acknowledged {
        match kept.iter().filter(|k| *k == text).count() {
            1 => {}
            0 => missing.push(text.clone()),
            n => panic!("{text:?} kept {n} times"),
        }
    }
    eprintln!(
        "{} acknowledged, {} kept, {} in flight at the kill",
        acknowledged.len(),
        kept.len(),
        in_flight
    );
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged messages lost, for example {:?}",
        missing.len(),
        acknowledged.len(),
        &missing[..missing.len().min(5)]
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
