//! The whole service on one machine: the eight routes at API Gateway's paths, served by
//! the same library code the Lambda functions run, an embedded store, and a
//! Pusher-protocol realtime server on the same port.

pub mod api;
pub mod invariants;
pub mod options;
pub mod pusher_server;
pub mod web;

use anyhow::Context as _;
use options::{Options, RealtimeChoice, StoreChoice};
use secret_rooms::domain::addresses::AddressLimit;
use secret_rooms::domain::ports::{Clock, SystemClock};
use secret_rooms::domain::rooms::RoomKey;
use secret_rooms::http::{Endpoint, Wiring};
use secret_rooms::realtime::pusher::{PusherClient, PusherConfig, PusherCredentials};
use secret_rooms::store::{DynamoStore, EmbeddedStore, Store};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The embedded realtime server's app id and key: public values, printed at start-up.
pub const LOCAL_APP_ID: &str = "local";
pub const LOCAL_APP_KEY: &str = "local-key";

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    /// The Pusher app key clients use, and where they connect.
    pub pusher_key: String,
    pub store_description: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The room lists' projection: the embedded store's worker, closed on stop; or,
    /// on DynamoDB, the task that follows the table's stream, stopped on stop.
    projection: Projection,
    /// The embedded store's sweep of what expired (DynamoDB's TTL on AWS), stopped on
    /// stop.
    sweeper: Option<tokio::task::JoinHandle<()>>,
}

/// How often the local server sweeps its embedded store of what has expired.
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// Sweep `store` now and every [`SWEEP_EVERY`], by the system clock.
fn sweep_forever(store: EmbeddedStore) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let now_secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            match store.sweep(now_secs).await {
                Ok(swept) if swept != Default::default() => {
                    tracing::info!(
                        messages = swept.messages,
                        address_counts = swept.addresses,
                        "swept what expired"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sweeping what expired"),
            }
            tokio::time::sleep(SWEEP_EVERY).await;
        }
    })
}

enum Projection {
    Embedded(EmbeddedStore),
    Stream(tokio::task::JoinHandle<()>),
}

impl Running {
    /// Stop accepting, finish what is in flight, and release the store.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let served = (&mut self.task).await;
        if let Some(sweeper) = self.sweeper.take() {
            sweeper.abort();
            let _ = sweeper.await;
        }
        // Whatever the server's end: the projection's worker holds the file open.
        match &self.projection {
            Projection::Embedded(store) => {
                if let Err(e) = store.close().await {
                    tracing::warn!(error = %e, "projecting the room lists at stop");
                }
            }
            Projection::Stream(follow) => follow.abort(),
        }
        served??;
        Ok(())
    }

    /// Serve until the server task ends (Ctrl-C in `main`).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await??;
        Ok(())
    }
}

fn random_secret() -> anyhow::Result<String> {
    secret_rooms::domain::random::hex(32)
}

/// The room-id key: `ROOM_ID_KEY`, else one kept in the data directory so that room
/// ids survive restarts, else (in memory) a fresh one.
fn room_key(options: &Options) -> anyhow::Result<RoomKey> {
    if let Some(key) = &options.room_id_key {
        return RoomKey::parse(key).context("ROOM_ID_KEY");
    }
    let Some(dir) = options.data_dir() else {
        return RoomKey::parse(&random_secret()?).context("random key");
    };
    let path = dir.join("room-id-key");
    let key = match std::fs::read_to_string(&path) {
        Ok(key) => key.trim().to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)?;
            let key = random_secret()?;
            write_private(&path, &key)?;
            key
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    RoomKey::parse(&key).with_context(|| format!("{}", path.display()))
}

/// The per-address create limit: as `options.create_limit` says, with addresses hashed
/// under a key derived from the room-id key.
fn create_limit(options: &Options, room_key: &RoomKey) -> Option<AddressLimit> {
    options.create_limit.map(|limit| AddressLimit {
        key: room_key.address_key(),
        limit,
    })
}

fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    open.open(path)?.write_all(text.as_bytes())?;
    Ok(())
}

/// Bind, build every part, and start serving in the background.
pub async fn start(options: Options) -> anyhow::Result<Running> {
    let listener = TcpListener::bind(options.addr)
        .await
        .with_context(|| format!("cannot listen on {}", options.addr))?;
    let addr = listener.local_addr()?;

    let (store, store_description, projection): (Arc<dyn Store>, String, Projection) =
        match &options.store {
            StoreChoice::Memory => {
                let store = EmbeddedStore::in_memory()?;
                (
                    Arc::new(store.clone()),
                    "embedded, in memory (lost on exit)".into(),
                    Projection::Embedded(store),
                )
            }
            StoreChoice::File(path) => {
                let store = EmbeddedStore::open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                // A file from before the room lists' projection, or whose last projection a
                // crash cut short, lists every room again.
                if let Err(e) = store.reproject().await {
                    tracing::warn!(error = %e, "rebuilding the room lists of {}", path.display());
                }
                (
                    Arc::new(store.clone()),
                    format!("embedded, {}", path.display()),
                    Projection::Embedded(store),
                )
            }
            StoreChoice::DynamoDb {
                table,
                create,
                timeouts,
            } => {
                let endpoint =
                    secret_rooms::config::dynamodb_endpoint(&secret_rooms::config::process_env);
                let store =
                    DynamoStore::from_default_chain(table.clone(), *timeouts, endpoint.as_deref())
                        .await;
                if *create {
                    store
                        .create_table()
                        .await
                        .context("creating the DynamoDB table")?;
                }
                // The room lists' projection, as the project-changes function keeps it on
                // AWS: here the server reads the table's stream itself.
                let reader = secret_rooms::projector::reader_for(&store)
                    .await
                    .context("the table's stream")?;
                let store: Arc<dyn Store> = Arc::new(store);
                let follow = tokio::spawn(reader.follow(store.clone(), Duration::from_millis(200)));
                (
                    store,
                    format!("DynamoDB table {table}, its stream projected"),
                    Projection::Stream(follow),
                )
            }
        };

    // The service publishes over HTTP either way, so the production path runs locally.
    let (pusher, extra_routes, page_realtime) = match &options.realtime {
        RealtimeChoice::Embedded => {
            let credentials = PusherCredentials::new(LOCAL_APP_KEY, random_secret()?);
            let app = pusher_server::App {
                id: LOCAL_APP_ID.into(),
                credentials: credentials.clone(),
            };
            let self_host = if addr.ip().is_unspecified() {
                SocketAddr::from(([127, 0, 0, 1], addr.port()))
            } else {
                addr
            };
            let config = PusherConfig {
                app_id: LOCAL_APP_ID.into(),
                credentials,
                base_url: format!("http://{self_host}"),
                timeout: Duration::from_secs(3),
            };
            // The page reaches the embedded server where it reached the page.
            let page = serde_json::json!({"key": LOCAL_APP_KEY, "sameOrigin": true});
            (config, Some(pusher_server::router(app)), page)
        }
        RealtimeChoice::External { config, page } => (config.clone(), None, page.clone()),
    };

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let room_key = room_key(&options)?;
    let realtime = Arc::new(PusherClient::new(&pusher)?);
    let create_limit = create_limit(&options, &room_key);
    let endpoints = Endpoint::all(Wiring {
        store,
        realtime,
        credentials: pusher.credentials.clone(),
        room_key,
        clock,
        rate: options.rate,
        ttl: options.ttl,
        connect: options.connect,
        create_limit,
        ids: Default::default(),
    });
    let page_config = serde_json::json!({"apiBase": "", "pusher": page_realtime});
    let mut router = api::router(endpoints).merge(web::router(page_config));
    if let Some(routes) = extra_routes {
        router = router.merge(routes);
    }
    let router = router
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            options.origins(),
            api::cors,
        ));

    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        })
        .await
    });
    let sweeper = match &projection {
        Projection::Embedded(store) => Some(sweep_forever(store.clone())),
        Projection::Stream(_) => None,
    };
    Ok(Running {
        addr,
        pusher_key: pusher.credentials.key.clone(),
        store_description,
        shutdown: Some(shutdown),
        task,
        projection,
        sweeper,
    })
}
