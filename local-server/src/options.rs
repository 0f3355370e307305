//! Command-line options, with environment fallbacks; the defaults need nothing else.

use secret_rooms::config;
use secret_rooms::domain::addresses::CreateLimit;
use secret_rooms::domain::history::MessageTtl;
use secret_rooms::domain::messages::RateLimit;
use secret_rooms::domain::rooms::ConnectLimits;
use secret_rooms::realtime::pusher::PusherConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const USAGE: &str = "\
secret-rooms-local: the whole secret-rooms backend on one machine.

USAGE: cargo run -- [OPTIONS]
       cargo run -- verify [--data-dir DIR]   check the embedded store's invariants
       cargo run -- reproject --dynamodb TABLE   rebuild a DynamoDB table's room lists
                                             from its items (the local server does
                                             this for its file at each start)

OPTIONS:
  --addr ADDR          listen address [env SECRET_ROOMS_ADDR, default 127.0.0.1:8080]
  --data-dir DIR       where the embedded store keeps its file
                       [env SECRET_ROOMS_DATA_DIR, default .data]
  --memory             throw-away in-memory store [env SECRET_ROOMS_MEMORY=1]
  --dynamodb TABLE     use DynamoDB instead of the embedded store (AWS credentials,
                       region and AWS_ENDPOINT_URL_DYNAMODB from the environment)
  --create-table       with --dynamodb: create the table first (for moto or DynamoDB Local)
  --allow-origin ORIGIN  accept browser requests and realtime connections only from
                       this server's own origin and ORIGIN (repeatable)
                       [env SECRET_ROOMS_ALLOWED_ORIGINS, comma-separated; default any]
  --pusher             publish through Pusher (or soketi, sockudo) instead of the embedded
                       realtime server, configured by PUSHER_APP_ID, PUSHER_KEY,
                       PUSHER_SECRET and PUSHER_CLUSTER or PUSHER_HOST
  -h, --help           this text

ROOM_ID_KEY sets the room-id key; without it one is kept in the data directory.
MESSAGE_RATE_LIMIT and MESSAGE_RATE_WINDOW_SECS set the per-sender message rate limit,
CONNECT_RATE_LIMIT and CONNECT_RATE_WINDOW_SECS the connects per identity (default 30 an
hour), OFFER_TTL how long an offer stands (seconds; default 2592000, 30 days),
CREATE_RATE_LIMIT and CREATE_RATE_WINDOW_SECS the users created per client address
(default 30 an hour; 0 turns it off), MESSAGE_TTL how long rooms keep their messages
(seconds; default 604800, seven days).";

#[derive(Clone, Debug)]
pub enum StoreChoice {
    Memory,
    File(PathBuf),
    DynamoDb {
        table: String,
        create: bool,
        timeouts: secret_rooms::store::Timeouts,
    },
}

#[derive(Clone, Debug)]
pub enum RealtimeChoice {
    Embedded,
    /// Pusher or a self-hosted server; `page` tells the chat page how to reach it.
    External {
        config: PusherConfig,
        page: serde_json::Value,
    },
}

#[derive(Clone, Debug)]
pub struct Options {
    pub addr: SocketAddr,
    pub store: StoreChoice,
    pub realtime: RealtimeChoice,
    pub room_id_key: Option<String>,
    pub rate: RateLimit,
    /// Connects per identity and window, and how long offers stand.
    pub connect: ConnectLimits,
    /// How long rooms keep their messages.
    pub ttl: MessageTtl,
    /// Creates per source address (the TCP peer); `None`: unlimited.
    pub create_limit: Option<CreateLimit>,
    /// Browser origins allowed besides this server's own; empty: any.
    pub allowed_origins: Vec<String>,
}

/// What the command line asked for: run, check a data directory, or print help.
pub enum Parsed {
    Run(Box<Options>),
    Verify(PathBuf),
    /// Rebuild the room lists of a DynamoDB table.
    Reproject {
        table: String,
        timeouts: secret_rooms::store::Timeouts,
    },
    Help,
}

impl Options {
    /// In memory on a free loopback port, embedded realtime: for tests.
    pub fn ephemeral() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            store: StoreChoice::Memory,
            realtime: RealtimeChoice::Embedded,
            room_id_key: None,
            rate: RateLimit::default(),
            connect: ConnectLimits::default(),
            ttl: MessageTtl::default(),
            create_limit: None,
            allowed_origins: Vec::new(),
        }
    }

    /// On a free loopback port, keeping its data in `dir`: for tests.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            store: StoreChoice::File(dir.join("secret-rooms.redb")),
            ..Self::ephemeral()
        }
    }

    /// The folder of the embedded store's file, if there is one.
    pub fn data_dir(&self) -> Option<&Path> {
        match &self.store {
            StoreChoice::File(path) => path.parent(),
            _ => None,
        }
    }

    pub fn parse(args: &[String], env: config::Lookup) -> Result<Parsed, String> {
        let mut addr = env("SECRET_ROOMS_ADDR").unwrap_or_else(|| "127.0.0.1:8080".into());
        let mut data_dir = env("SECRET_ROOMS_DATA_DIR").unwrap_or_else(|| ".data".into());
        let mut memory = env("SECRET_ROOMS_MEMORY").is_some_and(|v| v == "1" || v == "true");
        let (mut table, mut create, mut pusher) = (None, false, false);
        let mut origins: Vec<String> = env("SECRET_ROOMS_ALLOWED_ORIGINS")
            .map(|list| list.split(',').map(|o| o.trim().to_owned()).collect())
            .unwrap_or_default();
        let verify = args.first().is_some_and(|a| a == "verify");
        let reproject = args.first().is_some_and(|a| a == "reproject");
        let mut args = args.iter().skip(usize::from(verify || reproject));
        while let Some(arg) = args.next() {
            let mut value =
                |name: &str| args.next().cloned().ok_or(format!("{name} needs a value"));
            match arg.as_str() {
                "-h" | "--help" => return Ok(Parsed::Help),
                "--addr" => addr = value("--addr")?,
                "--data-dir" => data_dir = value("--data-dir")?,
                "--memory" => memory = true,
                "--dynamodb" => table = Some(value("--dynamodb")?),
                "--create-table" => create = true,
                "--pusher" => pusher = true,
                "--allow-origin" => origins.push(value("--allow-origin")?),
                other => return Err(format!("unknown option {other}; see --help")),
            }
        }
        if verify {
            return Ok(Parsed::Verify(
                PathBuf::from(data_dir).join("secret-rooms.redb"),
            ));
        }
        if reproject {
            return Ok(Parsed::Reproject {
                table: table.ok_or("reproject needs --dynamodb TABLE")?,
                timeouts: config::dynamodb_timeouts(env).map_err(|e| e.to_string())?,
            });
        }
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| format!("--addr / SECRET_ROOMS_ADDR: {addr:?} is not host:port"))?;
        let store = match (table, memory) {
            (Some(_), true) => return Err("--dynamodb and --memory exclude each other".into()),
            (Some(table), false) => StoreChoice::DynamoDb {
                table,
                create,
                timeouts: config::dynamodb_timeouts(env).map_err(|e| e.to_string())?,
            },
            (None, true) => StoreChoice::Memory,
            (None, false) => StoreChoice::File(PathBuf::from(data_dir).join("secret-rooms.redb")),
        };
        if create && !matches!(store, StoreChoice::DynamoDb { .. }) {
            return Err("--create-table goes with --dynamodb".into());
        }
        let realtime = if pusher {
            let config = config::pusher(env).map_err(|e| e.to_string())?;
            let page = page_realtime(&config, env(config::PUSHER_CLUSTER));
            RealtimeChoice::External { config, page }
        } else {
            RealtimeChoice::Embedded
        };
        let rate = config::rate_limit(env).map_err(|e| e.to_string())?;
        if let StoreChoice::DynamoDb { timeouts, .. } = &store {
            config::check_rate_window(rate, *timeouts).map_err(|e| e.to_string())?;
        }
        Ok(Parsed::Run(Box::new(Self {
            addr,
            store,
            realtime,
            room_id_key: env(config::ROOM_ID_KEY),
            rate,
            connect: config::connect_limits(env).map_err(|e| e.to_string())?,
            ttl: config::message_ttl(env).map_err(|e| e.to_string())?,
            create_limit: config::create_rate(env).map_err(|e| e.to_string())?,
            allowed_origins: origins
                .into_iter()
                .filter(|o| !o.is_empty())
                .map(|o| parse_origin(&o))
                .collect::<Result<_, _>>()?,
        })))
    }
}

/// `scheme://host[:port]`, as browsers send it in `Origin` (a trailing slash dropped).
fn parse_origin(text: &str) -> Result<String, String> {
    let origin = text.trim_end_matches('/');
    let ok = origin.split_once("://").is_some_and(|(scheme, rest)| {
        matches!(scheme, "http" | "https")
            && !rest.is_empty()
            && !rest.contains(['/', '?', '#', ' '])
    });
    if ok {
        Ok(origin.to_owned())
    } else {
        Err(format!(
            "--allow-origin / SECRET_ROOMS_ALLOWED_ORIGINS: {text:?} is not an origin such as https://chat.example"
        ))
    }
}

impl Options {
    /// The allow-list as the server applies it.
    pub fn origins(&self) -> crate::api::Origins {
        if self.allowed_origins.is_empty() {
            crate::api::Origins::Any
        } else {
            crate::api::Origins::Only(self.allowed_origins.clone().into())
        }
    }
}

/// Where a browser connects: Pusher's `ws-<cluster>` host, or the host override (a
/// self-hosted server serves WebSockets where it serves REST).
fn page_realtime(config: &PusherConfig, cluster: Option<String>) -> serde_json::Value {
    let mut page = serde_json::json!({"key": config.credentials.key, "cluster": cluster});
    if !config.base_url.ends_with(".pusher.com") {
        let (scheme, rest) = config
            .base_url
            .split_once("://")
            .unwrap_or(("https", &config.base_url));
        let tls = scheme == "https";
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => {
                (host, port.parse().unwrap_or(443))
            }
            _ => (rest, if tls { 443 } else { 80 }),
        };
        page["wsHost"] = host.into();
        page["wsPort"] = port.into();
        page["forceTLS"] = tls.into();
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Options, String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        match Options::parse(&args, &lookup)? {
            Parsed::Run(options) => Ok(*options),
            _ => Err("not a run".into()),
        }
    }

    #[test]
    fn allowed_origins_come_from_flags_and_the_environment() {
        let options = parse(
            &["--memory", "--allow-origin", "https://a.example/"],
            &[(
                "SECRET_ROOMS_ALLOWED_ORIGINS",
                "http://b.example:8080, https://c.example",
            )],
        )
        .unwrap();
        assert_eq!(
            options.allowed_origins,
            [
                "http://b.example:8080",
                "https://c.example",
                "https://a.example"
            ]
        );
        assert!(
            parse(&["--memory"], &[])
                .unwrap()
                .allowed_origins
                .is_empty()
        );
        for bad in [
            "a.example",
            "ftp://a.example",
            "https://a.example/path",
            "https://",
        ] {
            let err = parse(&["--memory", "--allow-origin", bad], &[]).unwrap_err();
            assert!(err.contains("--allow-origin"), "{bad}: {err}");
        }
    }
}
