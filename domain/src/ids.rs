//! Identifiers, parsed at the edge: a value of these types is valid by construction.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::fmt;

/// A shareable `###-###` id. Stored as its number (0..=999_999).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PublicId(u32);

impl PublicId {
    pub const SPACE: u32 = 1_000_000;

    /// `None` when `n` is outside the six-digit space.
    pub fn from_number(n: u32) -> Option<Self> {
        (n < Self::SPACE).then_some(Self(n))
    }

    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 7 || b[3] != b'-' {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in b.iter().enumerate() {
            if i == 3 {
                continue;
            }
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u32::from(c - b'0');
        }
        Some(Self(n))
    }
}

impl fmt::Display for PublicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03}-{:03}", self.0 / 1000, self.0 % 1000)
    }
}

/// The bearer secret of a user: 256 bits from the OS CSPRNG as unpadded base64url.
///
/// `Debug` is redacted so that the value cannot reach a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateId(String);

impl PrivateId {
    pub const BYTES: usize = 32;
    /// Length of the base64url text of [`Self::BYTES`] bytes.
    pub const LEN: usize = 43;

    pub fn generate() -> anyhow::Result<Self> {
        let mut bytes = [0u8; Self::BYTES];
        crate::random::fill(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == Self::LEN
            && URL_SAFE_NO_PAD
                .decode(s)
                .is_ok_and(|b| b.len() == Self::BYTES);
        ok.then(|| Self(s.to_owned()))
    }

    /// The text to hand to its owner, once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> PrivateIdHash {
        PrivateIdHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for PrivateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateId(<redacted>)")
    }
}

/// SHA-256 of a private id: what storage keeps instead of the secret itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrivateIdHash([u8; 32]);

impl PrivateIdHash {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Self(out))
    }
}

impl fmt::Debug for PrivateIdHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A hash is not a credential, but short is enough to tell two apart.
        write!(f, "PrivateIdHash({}…)", &self.to_hex()[..8])
    }
}

/// A room id: 32 bytes of HMAC output as unpadded base64url (43 characters from
/// `[A-Za-z0-9_-]`, all allowed in a Pusher channel name).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RoomId(String);

impl RoomId {
    pub const LEN: usize = 43;
    /// Pusher private channels start with this prefix.
    pub const CHANNEL_PREFIX: &'static str = "private-";

    pub(crate) fn from_mac(mac: [u8; 32]) -> Self {
        Self(URL_SAFE_NO_PAD.encode(mac))
    }

    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == Self::LEN && URL_SAFE_NO_PAD.decode(s).is_ok_and(|b| b.len() == 32);
        ok.then(|| Self(s.to_owned()))
    }

    /// The room of a `private-<roomId>` channel name.
    pub fn from_channel(channel: &str) -> Option<Self> {
        channel
            .strip_prefix(Self::CHANNEL_PREFIX)
            .and_then(Self::parse)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn channel(&self) -> String {
        format!("{}{}", Self::CHANNEL_PREFIX, self.0)
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A realtime connection's socket id, as a Pusher-protocol server assigns it: `digits.digits`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketId(String);

impl SocketId {
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('.')?;
        let digits = |p: &str| (1..=20).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_digit());
        (digits(a) && digits(b)).then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_id_round_trips_and_rejects_malformed() {
        let id = PublicId::parse("012-345").unwrap();
        assert_eq!(id.to_string(), "012-345");
        assert_eq!(PublicId::from_number(7).unwrap().to_string(), "000-007");
        assert_eq!(
            PublicId::from_number(999_999).unwrap().to_string(),
            "999-999"
        );
        assert!(PublicId::from_number(1_000_000).is_none());
        for bad in [
            "",
            "123456",
            "123-45",
            "1234-567",
            "12a-456",
            "123_456",
            "+12-456",
            "١٢٣-٤٥٦",
        ] {
            assert!(PublicId::parse(bad).is_none(), "{bad:?} must not parse");
        }
    }

    #[test]
    fn private_ids_are_256_bit_url_safe_and_distinct() {
        let a = PrivateId::generate().unwrap();
        let b = PrivateId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), PrivateId::LEN);
        assert!(
            a.expose()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(PrivateId::parse(a.expose()), Some(a.clone()));
        assert!(PrivateId::parse("short").is_none());
        assert!(PrivateId::parse(&"!".repeat(43)).is_none());
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn private_id_hash_is_sha256_of_the_text() {
        let id = PrivateId::parse(&"A".repeat(43)).unwrap();
        // sha256 of 43 'A's, computed independently with `printf %43s | tr ' ' A | sha256sum`.
        assert_eq!(
            id.hash().to_hex(),
            "0f007385b6f9d4b7eeb2748605afe1a984a0a3bfa3f014d09e2a784ce9e5cd1a"
        );
        assert_eq!(
            PrivateIdHash::from_hex(&id.hash().to_hex()),
            Some(id.hash())
        );
    }

    #[test]
    fn room_ids_parse_only_channel_safe_text() {
        let room = RoomId::from_mac([7; 32]);
        assert_eq!(RoomId::parse(room.as_str()), Some(room.clone()));
        assert_eq!(RoomId::from_channel(&room.channel()), Some(room.clone()));
        assert!(RoomId::from_channel(room.as_str()).is_none());
        assert!(RoomId::from_channel(&format!("presence-{room}")).is_none());
        assert!(RoomId::parse("../etc/passwd").is_none());
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
