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

/// How far a REST call's `auth_timestamp` may be from the server's clock.
pub const TIMESTAMP_WINDOW_SECS: u64 = 600;

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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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

fn hmac_verify(secret: &str, message: &str, signature_hex: &str) -> bool {
    let Ok(signature) = hex::decode(signature_hex) else {
        return false;
    };
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    };
    mac.update(message.as_bytes());
    mac.verify_slice(&signature).is_ok()
}

pub fn body_md5(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// Why a REST call was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing query parameter {0}")]
    Missing(&'static str),
    #[error("unknown auth_key")]
    UnknownKey,
    #[error("auth_version must be 1.0")]
    Version,
    #[error("auth_timestamp is outside the allowed window")]
    Timestamp,
    #[error("body_md5 does not match the body")]
    BodyMd5,
    #[error("auth_signature does not match")]
    Signature,
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

    /// Check a subscription's `auth` value, as a Pusher server does.
    pub fn verify_channel_auth(&self, socket_id: &str, channel: &str, auth: &str) -> bool {
        let Some((key, signature)) = auth.split_once(':') else {
            return false;
        };
        key == self.key && hmac_verify(&self.secret, &format!("{socket_id}:{channel}"), signature)
    }

    /// The query string of a signed REST call, `auth_signature` last.
    pub fn sign_request(&self, method: &str, path: &str, body: &[u8], timestamp: u64) -> String {
        let unsigned = format!(
            "auth_key={}&auth_timestamp={timestamp}&auth_version=1.0&body_md5={}",
            self.key,
            body_md5(body)
        );
        let signature = hmac_hex(&self.secret, &format!("{method}\n{path}\n{unsigned}"));
        format!("{unsigned}&auth_signature={signature}")
    }

    /// Verify a signed REST call as Pusher does: key, version, timestamp window,
    /// `body_md5` and `auth_signature` over the other parameters sorted by name.
    pub fn verify_request(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: &[u8],
        now: u64,
    ) -> Result<(), VerifyError> {
        let get = |name: &'static str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .ok_or(VerifyError::Missing(name))
        };
        if get("auth_key")? != self.key {
            return Err(VerifyError::UnknownKey);
        }
        if get("auth_version")? != "1.0" {
            return Err(VerifyError::Version);
        }
        let timestamp: u64 = get("auth_timestamp")?
            .parse()
            .map_err(|_| VerifyError::Timestamp)?;
        if timestamp.abs_diff(now) > TIMESTAMP_WINDOW_SECS {
            return Err(VerifyError::Timestamp);
        }
        if !body.is_empty() && get("body_md5")? != body_md5(body) {
            return Err(VerifyError::BodyMd5);
        }
        let signature = get("auth_signature")?;
        let mut params: Vec<(String, &str)> = query
            .iter()
            .filter(|(k, _)| k != "auth_signature")
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
            .collect();
        params.sort();
        let canonical = params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        if hmac_verify(
            &self.secret,
            &format!("{method}\n{path}\n{canonical}"),
            signature,
        ) {
            Ok(())
        } else {
            Err(VerifyError::Signature)
        }
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
    channels: [&'a str; 1],
    data: &'a str,
}

impl PusherClient {
    pub fn new(config: &PusherConfig) -> anyhow::Result<Self> {
        let http = crate::tls::reqwest_builder()?
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(2)))
            .build()?;
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

    async fn publish(&self, channel: &str, event: &str, data: &str) -> Result<(), RealtimeError> {
        let body = serde_json::to_vec(&TriggerBody {
            name: event,
            channels: [channel],
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

    fn parse_query(q: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(q).unwrap()
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
    fn channel_auth_matches_pusher_reference() {
        let socket = SocketId::parse("1234.1234").unwrap();
        let auth = creds().authorize(&socket, "private-foobar");
        assert_eq!(auth.auth, format!("{KEY}:{CHANNEL_SIGNATURE}"));
        assert!(creds().verify_channel_auth("1234.1234", "private-foobar", &auth.auth));
        assert!(!creds().verify_channel_auth("1234.1235", "private-foobar", &auth.auth));
        assert!(!creds().verify_channel_auth("1234.1234", "private-foobaz", &auth.auth));
        assert!(!creds().verify_channel_auth("1234.1234", "private-foobar", CHANNEL_SIGNATURE));
    }

    #[test]
    fn verify_accepts_the_reference_and_rejects_each_tampering() {
        let query = parse_query(&creds().sign_request(
            "POST",
            "/apps/3/events",
            BODY.as_bytes(),
            TIMESTAMP,
        ));
        let verify = |q: &[(String, String)], body: &str, now| {
            creds().verify_request("POST", "/apps/3/events", q, body.as_bytes(), now)
        };
        assert_eq!(verify(&query, BODY, TIMESTAMP + 10), Ok(()));
        assert_eq!(
            verify(&query, BODY, TIMESTAMP + 601),
            Err(VerifyError::Timestamp)
        );
        assert_eq!(verify(&query, "{}", TIMESTAMP), Err(VerifyError::BodyMd5));
        let other_secret = PusherCredentials::new(KEY, "not-the-secret");
        assert_eq!(
            other_secret.verify_request(
                "POST",
                "/apps/3/events",
                &query,
                BODY.as_bytes(),
                TIMESTAMP
            ),
            Err(VerifyError::Signature)
        );
        assert_eq!(
            creds().verify_request("POST", "/apps/4/events", &query, BODY.as_bytes(), TIMESTAMP),
            Err(VerifyError::Signature)
        );
        let mut wrong_key = query.clone();
        wrong_key[0].1 = "other".into();
        assert_eq!(
            verify(&wrong_key, BODY, TIMESTAMP),
            Err(VerifyError::UnknownKey)
        );
        let unsigned: Vec<_> = query
            .iter()
            .filter(|(k, _)| k != "auth_signature")
            .cloned()
            .collect();
        assert_eq!(
            verify(&unsigned, BODY, TIMESTAMP),
            Err(VerifyError::Missing("auth_signature"))
        );
    }

    #[test]
    fn socket_ids_are_digits_dot_digits() {
        assert!(SocketId::parse("1234.1234").is_some());
        assert!(SocketId::parse("123456789.987654321").is_some());
        for bad in [
            "",
            "1234",
            "1234.",
            ".1234",
            "12a4.1234",
            "1.2.3",
            "-1.2",
            "1234.1234\n",
            " 1.2",
        ] {
            assert!(SocketId::parse(bad).is_none(), "{bad:?} must not parse");
        }
        assert!(SocketId::parse(&format!("{}.1", "9".repeat(21))).is_none());
    }
}
