//! The server-side key behind room ids and inbox channels.

use super::*;

type HmacSha256 = Hmac<Sha256>;

// Domain separation: nothing else keyed with this key can produce a room id. (v1 rooms
// were MACs over private-id hashes under `secret-rooms/v1/room\0`.)
const ROOM_DOMAIN: &[u8] = b"secret-rooms/v2/room\0";
const INBOX_DOMAIN: &[u8] = b"secret-rooms/v2/inbox\0";

/// The event a connect publishes on its target's inbox channel.
pub const ROOM_EVENT: &str = "room";
/// Inbox channels start so; the rest is a MAC of the public id.
pub const INBOX_PREFIX: &str = "private-inbox-";

/// The server-side key behind room ids. Without it nobody can compute or invert one.
#[derive(Clone)]
pub struct RoomKey(Vec<u8>);

impl RoomKey {
    /// Bytes of key material at least.
    pub const MIN_LEN: usize = 32;

    /// `None` when shorter than [`Self::MIN_LEN`] bytes.
    pub fn new(key: impl Into<Vec<u8>>) -> Option<Self> {
        let key = key.into();
        (key.len() >= Self::MIN_LEN).then_some(Self(key))
    }

    /// The key as configured: hex (`openssl rand -hex 32`) or base64, standard or
    /// URL-safe (`openssl rand -base64 32`), of at least [`Self::MIN_LEN`] bytes. The
    /// text is decoded, so that the length counts bytes of key material, not characters;
    /// a key of few distinct bytes (a repeated character, say) is refused too.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let bytes = decode_hex(text)
            .or_else(|| decode_base64(text))
            .ok_or(KeyError::NotEncoded)?;
        if bytes.len() < Self::MIN_LEN {
            return Err(KeyError::TooShort(bytes.len()));
        }
        let distinct = bytes
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        if distinct < 16 {
            return Err(KeyError::NotRandom);
        }
        Ok(Self(bytes))
    }

    /// The key behind source-address hashes, derived from this one.
    pub fn address_key(&self) -> crate::addresses::AddressKey {
        crate::addresses::AddressKey::derive(&self.0)
    }

    /// The private channel where the holder of `public_id` hears of rooms opened with it
    /// (only its current holder may subscribe). A MAC, so that nobody can name the
    /// channel of an id without the key, nor tell the id from the channel.
    pub fn inbox_channel(&self, public_id: PublicId) -> String {
        let mut mac = match HmacSha256::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
        };
        mac.update(INBOX_DOMAIN);
        mac.update(public_id.to_string().as_bytes());
        let id = RoomId::from_mac(mac.finalize().into_bytes().into());
        format!("{INBOX_PREFIX}{id}")
    }

    /// The room of two public ids: the same whichever of them asks, and the same forever,
    /// since public ids are never reused. Whether either id has a holder plays no part.
    pub fn room_of(&self, a: PublicId, b: PublicId) -> RoomId {
        let (lo, hi) = Pair::sorted(a, b);
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match HmacSha256::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
        };
        // The ids' text is digits and dashes: the NUL between them keeps the input
        // unambiguous.
        mac.update(ROOM_DOMAIN);
        mac.update(lo.to_string().as_bytes());
        mac.update(b"\0");
        mac.update(hi.to_string().as_bytes());
        RoomId::from_mac(mac.finalize().into_bytes().into())
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("must be hex or base64 (for example `openssl rand -hex 32`)")]
    NotEncoded,
    #[error(
        "decodes to {0} bytes; at least {min} are needed (for example `openssl rand -hex 32`)",
        min = RoomKey::MIN_LEN
    )]
    TooShort(usize),
    #[error("has too few distinct bytes to be random (for example `openssl rand -hex 32`)")]
    NotRandom,
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    hex::decode(text).ok()
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

impl fmt::Debug for RoomKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RoomKey(<redacted>)")
    }
}
