//! Pusher Channels: the signed REST trigger and private-channel authorization, as
//! Pusher documents them (HMAC-SHA256, `auth_version=1.0`, `body_md5`).

use crate::domain::SocketId;
use crate::domain::ports::{ChannelSigner, Realtime, RealtimeError};
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde::Serialize;
use sha2::Sha256;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

/// An app's key (public) and secret (never logged).
#[derive(Clone)]
pub struct PusherCredentials {
    pub key: String,
    secret: String,
}

impl fmt::Debug for PusherCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PusherCredentials")
            .field("key", &self.key)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The `auth` value a client presents to subscribe: `key:signature`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelAuth {
    pub auth: String,
}

fn hmac_hex(secret: &str, message: &str) -> String {
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    };
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub fn body_md5(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

impl PusherCredentials {
    pub fn new(key: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            secret: secret.into(),
        }
    }

    /// Authorize `socket_id` to subscribe to a private `channel`.
    pub fn authorize(&self, socket_id: &SocketId, channel: &str) -> ChannelAuth {
        let signature = hmac_hex(&self.secret, &format!("{}:{channel}", socket_id.as_str()));
        ChannelAuth {
            auth: format!("{}:{signature}", self.key),
        }
    }

    /// The query string of a signed REST call, `auth_signature` last.
    pub fn sign_request(&self, method: &str, path: &str, body: &[u8], timestamp: u64) -> String {
        let unsigned = format!(
            "auth_key={}&auth_timestamp={timestamp}&auth_version=1.0&body_md5={}",
            self.key,
            body_md5(body)
        );
        let signature = self.request_signature(&format!("{method}\n{path}\n{unsigned}"));
        format!("{unsigned}&auth_signature={signature}")
    }

    /// The signature of a request's canonical text (`METHOD\npath\nsorted query`):
    /// HMAC-SHA256 under the app secret, as hex. [`Self::sign_request`] signs with it,
    /// and a Pusher server recomputes it to check a request (`local-server`'s
    /// `pusher_server::verify`).
    pub fn request_signature(&self, canonical: &str) -> String {
        hmac_hex(&self.secret, canonical)
    }
}

/// Where and how to reach the Pusher REST API.
#[derive(Clone, Debug)]
pub struct PusherConfig {
    pub app_id: String,
    pub credentials: PusherCredentials,
    /// Scheme, host and optional port, without a trailing slash.
    pub base_url: String,
    pub timeout: Duration,
}

/// A publisher built once per process; its connection pool is reused across warm
/// invocations.
#[derive(Clone, Debug)]
pub struct PusherClient {
    http: reqwest::Client,
    url: String,
    path: String,
    credentials: PusherCredentials,
}

#[derive(Serialize)]
struct TriggerBody<'a> {
    name: &'a str,
    channels: &'a [&'a str],
    data: &'a str,
}

impl PusherClient {
    /// Once [`crate::wiring::share_clients`] was called (a function's start-up), every
    /// client of the process shares one connection pool (built with the first one's
    /// time-outs: a process reads one configuration).
    pub fn new(config: &PusherConfig) -> anyhow::Result<Self> {
        static SHARED: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
        let build = || -> anyhow::Result<reqwest::Client> {
            Ok(crate::tls::reqwest_builder()?
                .timeout(config.timeout)
                .connect_timeout(config.timeout.min(Duration::from_secs(2)))
                .build()?)
        };
        let http = match (crate::wiring::sharing_clients(), SHARED.get()) {
            (false, _) => build()?,
            (true, Some(shared)) => shared.clone(),
            (true, None) => {
                let http = build()?;
                SHARED.get_or_init(|| http).clone()
            }
        };
        let path = format!("/apps/{}/events", config.app_id);
        Ok(Self {
            http,
            url: format!("{}{path}", config.base_url),
            path,
            credentials: config.credentials.clone(),
        })
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl ChannelSigner for PusherCredentials {
    fn sign(&self, socket_id: &SocketId, channel: &str) -> String {
        self.authorize(socket_id, channel).auth
    }
}

#[async_trait]
impl Realtime for PusherClient {
    async fn warm_up(&self) {
        // Any answer will do: the point is the pooled connection it leaves behind.
        if let Err(e) = self.http.head(&self.url).send().await {
            tracing::warn!(error = %e.without_url(), "Pusher warm-up failed");
        }
    }

    async fn publish(
        &self,
        channels: &[&str],
        event: &str,
        data: &str,
    ) -> Result<(), RealtimeError> {
        let body = serde_json::to_vec(&TriggerBody {
            name: event,
            channels,
            data,
        })
        .map_err(|e| RealtimeError::Unreachable(e.into()))?;
        let query = self
            .credentials
            .sign_request("POST", &self.path, &body, unix_now());
        let response = self
            .http
            .post(format!("{}?{query}", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            // Without the URL: it carries the signature, and the error is logged.
            .map_err(|e| RealtimeError::Unreachable(e.without_url().into()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(RealtimeError::Rejected {
                status: status.as_u16(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pusher's published reference values (REST API and channel authorization docs).
    const KEY: &str = "278d425bdf160c739803";
    const SECRET: &str = "7ad3773142a6692b25b8";
    const BODY: &str = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
    const TIMESTAMP: u64 = 1353088179;
    const BODY_MD5: &str = "ec365a775a4cd0599faeb73354201b6f";
    const SIGNATURE: &str = "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";
    const CHANNEL_SIGNATURE: &str =
        "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";

    fn creds() -> PusherCredentials {
        PusherCredentials::new(KEY, SECRET)
    }

    #[test]
    fn rest_signature_matches_pusher_reference() {
        assert_eq!(body_md5(BODY.as_bytes()), BODY_MD5);
        let query = creds().sign_request("POST", "/apps/3/events", BODY.as_bytes(), TIMESTAMP);
        assert_eq!(
            query,
            format!(
                "auth_key={KEY}&auth_timestamp={TIMESTAMP}&auth_version=1.0\
                 &body_md5={BODY_MD5}&auth_signature={SIGNATURE}"
            )
        );
    }

    #[test]
    fn the_request_signature_is_what_a_server_recomputes() {
        let signed = format!(
            "POST\n/apps/3/events\nauth_key={KEY}&auth_timestamp={TIMESTAMP}\
             &auth_version=1.0&body_md5={BODY_MD5}"
        );
        assert_eq!(creds().request_signature(&signed), SIGNATURE);
    }

    #[test]
    fn channel_auth_matches_pusher_reference() {
        let socket = SocketId::parse("1234.1234").unwrap();
        let auth = creds().authorize(&socket, "private-foobar");
        assert_eq!(auth.auth, format!("{KEY}:{CHANNEL_SIGNATURE}"));
    }
}
