//! Configuration from environment variables, validated once at start-up. Every error
//! names the variable at fault.

use crate::domain::addresses::{AddressLimit, CreateLimit};
use crate::domain::history::MessageTtl;
use crate::domain::messages::RateLimit;
use crate::domain::rooms::{ConnectLimits, RoomKey};
use crate::realtime::pusher::{PusherConfig, PusherCredentials};
use crate::store::Timeouts;
use crate::store::dynamodb::AwsSettings;
use std::time::Duration;

pub const TABLE_NAME: &str = "TABLE_NAME";
pub const ROOM_ID_KEY: &str = "ROOM_ID_KEY";
pub const PUSHER_APP_ID: &str = "PUSHER_APP_ID";
pub const PUSHER_KEY: &str = "PUSHER_KEY";
pub const PUSHER_SECRET: &str = "PUSHER_SECRET";
pub const PUSHER_CLUSTER: &str = "PUSHER_CLUSTER";
pub const PUSHER_HOST: &str = "PUSHER_HOST";
pub const PUSHER_TIMEOUT_MS: &str = "PUSHER_TIMEOUT_MS";
pub const MESSAGE_RATE_LIMIT: &str = "MESSAGE_RATE_LIMIT";
pub const WARM_UP_CONNECTIONS: &str = "WARM_UP_CONNECTIONS";
pub const DYNAMODB_ATTEMPT_TIMEOUT_MS: &str = "DYNAMODB_ATTEMPT_TIMEOUT_MS";
pub const DYNAMODB_OPERATION_TIMEOUT_MS: &str = "DYNAMODB_OPERATION_TIMEOUT_MS";
pub const MESSAGE_RATE_WINDOW_SECS: &str = "MESSAGE_RATE_WINDOW_SECS";
pub const CONNECT_RATE_LIMIT: &str = "CONNECT_RATE_LIMIT";
pub const CONNECT_RATE_WINDOW_SECS: &str = "CONNECT_RATE_WINDOW_SECS";
pub const OFFER_TTL: &str = "OFFER_TTL";
pub const CREATE_RATE_LIMIT: &str = "CREATE_RATE_LIMIT";
pub const MESSAGE_TTL: &str = "MESSAGE_TTL";
pub const CREATE_RATE_WINDOW_SECS: &str = "CREATE_RATE_WINDOW_SECS";
// Set by Lambda for every function (and by the developer for a local run).
pub const AWS_REGION: &str = "AWS_REGION";
pub const AWS_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
pub const AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
pub const AWS_ENDPOINT_URL_DYNAMODB: &str = "AWS_ENDPOINT_URL_DYNAMODB";
pub const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
pub const AWS_ENDPOINT_URL_SECRETS_MANAGER: &str = "AWS_ENDPOINT_URL_SECRETS_MANAGER";
pub const ROOM_ID_KEY_SECRET_ARN: &str = "ROOM_ID_KEY_SECRET_ARN";
pub const PUSHER_SECRET_ARN: &str = "PUSHER_SECRET_ARN";

/// Secrets a deployed function reads from AWS Secrets Manager at start-up: each
/// variable, and the one naming its secret. When the ARN is set it is used, and the
/// plain variable (for local runs) is not.
pub const SECRETS: &[(&str, &str)] = &[
    (ROOM_ID_KEY, ROOM_ID_KEY_SECRET_ARN),
    (PUSHER_SECRET, PUSHER_SECRET_ARN),
];

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("missing environment variable {0}")]
    Missing(&'static str),
    #[error("invalid environment variable {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Where variables come from: the process environment, or a map in tests.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, with empty values counted as missing.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn required(env: Lookup, name: &'static str) -> Result<String, ConfigError> {
    env(name).ok_or(ConfigError::Missing(name))
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
}

/// `TABLE_NAME`: DynamoDB's own rules, 3 to 255 of `[A-Za-z0-9_.-]`.
pub fn table_name(env: Lookup) -> Result<String, ConfigError> {
    let name = required(env, TABLE_NAME)?;
    let ok = (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c));
    if ok {
        Ok(name)
    } else {
        Err(invalid(
            TABLE_NAME,
            "3 to 255 characters of A-Z a-z 0-9 _ . -",
        ))
    }
}

/// `ROOM_ID_KEY`: the HMAC key behind room ids, hex or base64 of at least 32 bytes.
pub fn room_key(env: Lookup) -> Result<RoomKey, ConfigError> {
    let key = required(env, ROOM_ID_KEY)?;
    RoomKey::parse(&key).map_err(|e| invalid(ROOM_ID_KEY, e.to_string()))
}

fn number_in<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    env: Lookup,
    name: &'static str,
    range: std::ops::RangeInclusive<T>,
) -> Result<Option<T>, ConfigError> {
    let Some(text) = env(name) else {
        return Ok(None);
    };
    match text.parse::<T>() {
        Ok(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(invalid(
            name,
            format!("a whole number from {} to {}", range.start(), range.end()),
        )),
    }
}

/// `MESSAGE_RATE_LIMIT` messages per sender (all their rooms together) in `MESSAGE_RATE_WINDOW_SECS`;
/// both optional (see [`RateLimit::default`]).
pub fn rate_limit(env: Lookup) -> Result<RateLimit, ConfigError> {
    let default = RateLimit::default();
    Ok(RateLimit {
        count: number_in(env, MESSAGE_RATE_LIMIT, 1..=crate::store::rate::MAX_LIMIT)?
            .unwrap_or(default.count),
        window_secs: number_in(env, MESSAGE_RATE_WINDOW_SECS, 1..=86_400)?
            .unwrap_or(default.window_secs),
    })
}

/// `CONNECT_RATE_LIMIT` connects per identity (first connects and again alike) in
/// `CONNECT_RATE_WINDOW_SECS`; both optional (see [`RateLimit::CONNECTS`]).
pub fn connect_rate_limit(env: Lookup) -> Result<RateLimit, ConfigError> {
    let default = RateLimit::CONNECTS;
    Ok(RateLimit {
        count: number_in(env, CONNECT_RATE_LIMIT, 1..=crate::store::rate::MAX_LIMIT)?
            .unwrap_or(default.count),
        window_secs: number_in(env, CONNECT_RATE_WINDOW_SECS, 1..=86_400)?
            .unwrap_or(default.window_secs),
    })
}

/// [`connect_rate_limit`], and `OFFER_TTL`: how long an offer stands after its latest
/// connect, in seconds (one hour to 365 days; default 30 days).
pub fn connect_limits(env: Lookup) -> Result<ConnectLimits, ConfigError> {
    let offer_ttl = number_in(env, OFFER_TTL, 3_600..=365 * 86_400)?
        .map_or(ConnectLimits::DEFAULT_OFFER_TTL, Duration::from_secs);
    Ok(ConnectLimits {
        rate: connect_rate_limit(env)?,
        offer_ttl,
    })
}

/// `MESSAGE_TTL`: how long messages are kept, in seconds (60 s to 365 days; default
/// seven days).
pub fn message_ttl(env: Lookup) -> Result<MessageTtl, ConfigError> {
    Ok(number_in(env, MESSAGE_TTL, 60..=365 * 86_400)?
        .map_or_else(MessageTtl::default, |secs: u64| {
            MessageTtl(Duration::from_secs(secs))
        }))
}

/// `CREATE_RATE_LIMIT` users per source address in `CREATE_RATE_WINDOW_SECS`, both
/// optional (see [`CreateLimit::default`]); `None` when a limit of 0 turns it off.
pub fn create_rate(env: Lookup) -> Result<Option<CreateLimit>, ConfigError> {
    let default = CreateLimit::default();
    let creates = number_in(env, CREATE_RATE_LIMIT, 0..=1_000_000)?.unwrap_or(default.creates);
    let window_secs =
        number_in(env, CREATE_RATE_WINDOW_SECS, 1..=86_400)?.unwrap_or(default.window_secs);
    Ok((creates > 0).then_some(CreateLimit {
        creates,
        window_secs,
    }))
}

/// [`create_rate`], with addresses hashed under a key derived from `ROOM_ID_KEY` (read
/// only when the limit is on).
pub fn create_limit(env: Lookup) -> Result<Option<AddressLimit>, ConfigError> {
    let Some(limit) = create_rate(env)? else {
        return Ok(None);
    };
    let key = room_key(env)?.address_key();
    Ok(Some(AddressLimit { key, limit }))
}

/// The rate window against DynamoDB's operation timeout: a message's update may land
/// up to that long after it read the clock, and must not land two windows later, where
/// it would take the current window's count for a stale one (see the DynamoDB store's
/// `RATE_SLOTS`).
pub fn check_rate_window(rate: RateLimit, timeouts: Timeouts) -> Result<(), ConfigError> {
    let shortest = timeouts.operation.as_secs_f64().ceil() as u64;
    if rate.window_secs < shortest {
        return Err(invalid(
            MESSAGE_RATE_WINDOW_SECS,
            format!(
                "at least the DynamoDB operation timeout, {shortest} s \
                 ({DYNAMODB_OPERATION_TIMEOUT_MS})"
            ),
        ));
    }
    Ok(())
}

/// `DYNAMODB_ATTEMPT_TIMEOUT_MS` and `DYNAMODB_OPERATION_TIMEOUT_MS`, both optional.
pub fn dynamodb_timeouts(env: Lookup) -> Result<Timeouts, ConfigError> {
    let default = Timeouts::default();
    let ms = |name| number_in::<u64>(env, name, 100..=60_000);
    let attempt = ms(DYNAMODB_ATTEMPT_TIMEOUT_MS)?.map_or(default.attempt, Duration::from_millis);
    let operation =
        ms(DYNAMODB_OPERATION_TIMEOUT_MS)?.map_or(default.operation, Duration::from_millis);
    if attempt > operation {
        return Err(invalid(
            DYNAMODB_ATTEMPT_TIMEOUT_MS,
            format!("longer than {DYNAMODB_OPERATION_TIMEOUT_MS}"),
        ));
    }
    Ok(Timeouts { attempt, operation })
}

/// What Lambda sets for every function: `AWS_REGION` (or `AWS_DEFAULT_REGION`),
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, the optional `AWS_SESSION_TOKEN`, and
/// the optional endpoint override `AWS_ENDPOINT_URL_DYNAMODB` (or `AWS_ENDPOINT_URL`).
pub fn aws(env: Lookup) -> Result<AwsSettings, ConfigError> {
    Ok(AwsSettings {
        region: env(AWS_REGION)
            .or_else(|| env(AWS_DEFAULT_REGION))
            .ok_or(ConfigError::Missing(AWS_REGION))?,
        access_key_id: required(env, AWS_ACCESS_KEY_ID)?,
        secret_access_key: required(env, AWS_SECRET_ACCESS_KEY)?,
        session_token: env(AWS_SESSION_TOKEN),
        endpoint: dynamodb_endpoint(env),
    })
}

/// The secrets whose ARN variable `env` sets, read from Secrets Manager once, as `(variable, value)`: layer them over `env` with [`with_secrets`]. A function
/// is given the ARNs of only the secrets it uses, and may read only those.
pub async fn fetch_secrets(env: Lookup<'_>) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let wanted: Vec<(&'static str, &'static str, String)> = SECRETS
        .iter()
        .filter_map(|(var, arn_var)| Some((*var, *arn_var, env(arn_var)?)))
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let endpoint = env(AWS_ENDPOINT_URL_SECRETS_MANAGER).or_else(|| env(AWS_ENDPOINT_URL));
    let client = crate::secrets::SecretsManager::new(aws(env)?, endpoint).map_err(|e| {
        invalid(
            AWS_ENDPOINT_URL_SECRETS_MANAGER,
            format!("cannot build an HTTPS client: {e:#}"),
        )
    })?;
    // All at once: each is a round trip to Secrets Manager.
    let client = std::sync::Arc::new(client);
    let mut reads = tokio::task::JoinSet::new();
    for (var, arn_var, arn) in wanted {
        let client = client.clone();
        reads.spawn(async move { (var, arn_var, client.get_secret_string(&arn).await) });
    }
    let mut secrets = Vec::new();
    for (var, arn_var, read) in reads.join_all().await {
        let value = read.map_err(|e| invalid(arn_var, format!("cannot read the secret: {e:#}")))?;
        secrets.push((var, value));
    }
    Ok(secrets)
}

/// Whether `env` names secrets for [`fetch_secrets`] to read.
pub fn reads_secrets(env: Lookup) -> bool {
    SECRETS.iter().any(|(_, arn_var)| env(arn_var).is_some())
}

/// Random stand-ins for the secrets whose ARN variable `env` sets: a handler built with
/// them can open its connections (the warm-up needs no secret) while the real ones are
/// read. Never used to sign or key anything that is kept or sent.
pub fn stand_in_secrets(env: Lookup) -> Result<Vec<(&'static str, String)>, ConfigError> {
    SECRETS
        .iter()
        .filter(|(_, arn_var)| env(arn_var).is_some())
        .map(|(var, _)| {
            crate::domain::random::hex(32)
                .map(|value| (*var, value))
                .map_err(|e| invalid(var, format!("no randomness for a stand-in: {e:#}")))
        })
        .collect()
}

/// `env` with `secrets` ([`fetch_secrets`]) over it.
pub fn with_secrets<'a>(
    env: Lookup<'a>,
    secrets: Vec<(&'static str, String)>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name: &str| {
        secrets
            .iter()
            .find(|(var, _)| *var == name)
            .map(|(_, value)| value.clone())
            .or_else(|| env(name))
    }
}

/// The DynamoDB endpoint override, `AWS_ENDPOINT_URL_DYNAMODB` or `AWS_ENDPOINT_URL`,
/// as the AWS SDK reads it.
pub fn dynamodb_endpoint(env: Lookup) -> Option<String> {
    env(AWS_ENDPOINT_URL_DYNAMODB).or_else(|| env(AWS_ENDPOINT_URL))
}

/// `WARM_UP_CONNECTIONS`: open the DynamoDB and Pusher connections at start-up
/// (`true` by default; `false` to measure or to save the two requests).
pub fn warm_up(env: Lookup) -> Result<bool, ConfigError> {
    match env(WARM_UP_CONNECTIONS).as_deref() {
        None | Some("1" | "true") => Ok(true),
        Some("0" | "false") => Ok(false),
        Some(_) => Err(invalid(WARM_UP_CONNECTIONS, "true or false")),
    }
}

/// `PUSHER_*`: app id, key, secret, and either a cluster or a host override.
pub fn pusher(env: Lookup) -> Result<PusherConfig, ConfigError> {
    let app_id = required(env, PUSHER_APP_ID)?;
    if !app_id
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-')
    {
        return Err(invalid(PUSHER_APP_ID, "letters, digits and '-' only"));
    }
    let key = required(env, PUSHER_KEY)?;
    if !key
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    {
        return Err(invalid(PUSHER_KEY, "letters, digits, '-' and '_' only"));
    }
    let secret = required(env, PUSHER_SECRET)?;
    let base_url = match env(PUSHER_HOST) {
        Some(host) => base_url_from_host(&host)?,
        None => {
            let cluster = env(PUSHER_CLUSTER).ok_or(ConfigError::Missing(PUSHER_CLUSTER))?;
            if !cluster
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
            {
                return Err(invalid(PUSHER_CLUSTER, "a cluster name such as eu or us2"));
            }
            format!("https://api-{cluster}.pusher.com")
        }
    };
    let timeout = number_in(env, PUSHER_TIMEOUT_MS, 100..=10_000)?
        .map_or(Duration::from_secs(3), Duration::from_millis);
    Ok(PusherConfig {
        app_id,
        credentials: PusherCredentials::new(key, secret),
        base_url,
        timeout,
    })
}

/// `host`, `host:port` or `http(s)://host[:port]`; https when no scheme is given.
fn base_url_from_host(host: &str) -> Result<String, ConfigError> {
    let with_scheme = if host.contains("://") {
        host.to_owned()
    } else {
        format!("https://{host}")
    };
    let url = reqwest::Url::parse(&with_scheme)
        .map_err(|e| invalid(PUSHER_HOST, format!("not a host or URL: {e}")))?;
    let ok = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.path() == "/"
        && url.query().is_none()
        && url.username().is_empty();
    if !ok {
        return Err(invalid(
            PUSHER_HOST,
            "expected host[:port] or http(s)://host[:port], without a path",
        ));
    }
    Ok(with_scheme.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests;
