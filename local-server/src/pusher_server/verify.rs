//! What a Pusher server checks, as Pusher documents it: the signature of a REST call
//! (key, version, timestamp window, `body_md5`, `auth_signature` over the other
//! parameters sorted by name) and a subscription's `auth` value. The server side only:
//! the Lambda functions sign, and never verify.

use secret_rooms::domain::SocketId;
use secret_rooms::realtime::pusher::{PusherCredentials, body_md5};

/// How far a REST call's `auth_timestamp` may be from the server's clock.
pub const TIMESTAMP_WINDOW_SECS: u64 = 600;

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

/// Equal in time independent of where they differ (signatures are secrets' fingerprints).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0, |d, (x, y)| d | (x ^ y)) == 0
}

/// Check a subscription's `auth` value (`key:signature`).
pub fn verify_channel_auth(
    credentials: &PusherCredentials,
    socket_id: &str,
    channel: &str,
    auth: &str,
) -> bool {
    let Some(socket_id) = SocketId::parse(socket_id) else {
        return false;
    };
    same(&credentials.authorize(&socket_id, channel).auth, auth)
}

/// Verify a signed REST call. `query` is every query parameter, as received.
pub fn verify_request(
    credentials: &PusherCredentials,
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
    if get("auth_key")? != credentials.key {
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
    if same(
        &credentials.request_signature(&format!("{method}\n{path}\n{canonical}")),
        signature,
    ) {
        Ok(())
    } else {
        Err(VerifyError::Signature)
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
    fn the_reference_request_verifies() {
        let query = parse_query(&format!(
            "auth_key={KEY}&auth_timestamp={TIMESTAMP}&auth_version=1.0\
             &body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature={SIGNATURE}"
        ));
        let verified = verify_request(
            &creds(),
            "POST",
            "/apps/3/events",
            &query,
            BODY.as_bytes(),
            TIMESTAMP,
        );
        assert_eq!(verified, Ok(()));
    }

    #[test]
    fn channel_auth_accepts_the_reference_and_nothing_else() {
        let auth = format!("{KEY}:{CHANNEL_SIGNATURE}");
        let check =
            |socket, channel, auth: &str| verify_channel_auth(&creds(), socket, channel, auth);
        assert!(check("1234.1234", "private-foobar", &auth));
        assert!(!check("1234.1235", "private-foobar", &auth));
        assert!(!check("1234.1234", "private-foobaz", &auth));
        assert!(!check("1234.1234", "private-foobar", CHANNEL_SIGNATURE));
        assert!(!check(
            "1234.1234",
            "private-foobar",
            &format!("other:{CHANNEL_SIGNATURE}")
        ));
        assert!(!check("not-a-socket", "private-foobar", &auth));
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
            verify_request(&creds(), "POST", "/apps/3/events", q, body.as_bytes(), now)
        };
        assert_eq!(verify(&query, BODY, TIMESTAMP + 10), Ok(()));
        assert_eq!(
            verify(&query, BODY, TIMESTAMP + 601),
            Err(VerifyError::Timestamp)
        );
        assert_eq!(verify(&query, "{}", TIMESTAMP), Err(VerifyError::BodyMd5));
        let other_secret = PusherCredentials::new(KEY, "not-the-secret");
        assert_eq!(
            verify_request(
                &other_secret,
                "POST",
                "/apps/3/events",
                &query,
                BODY.as_bytes(),
                TIMESTAMP
            ),
            Err(VerifyError::Signature)
        );
        assert_eq!(
            verify_request(
                &creds(),
                "POST",
                "/apps/4/events",
                &query,
                BODY.as_bytes(),
                TIMESTAMP
            ),
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
}
