//! Identifiers, parsed at the edge: a value of these types is valid by construction.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::fmt;

/// A shareable public id: `###-###` (six digits) until half of that space is taken,
/// then `###-###-###` (nine digits). The two forms are different ids: `000-012-345` is
/// not `012-345`. Ordered by their text, which is what a room's pair is sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PublicId {
    n: u32,
    long: bool,
}

impl PublicId {
    /// How many six-digit ids there are.
    pub const SHORT_SPACE: u32 = 1_000_000;
    /// How many nine-digit ids there are.
    pub const LONG_SPACE: u32 = 1_000_000_000;
    /// The longest text form.
    pub const MAX_LEN: usize = 11;

    /// The six-digit id `n`; `None` when `n` is outside the six-digit space.
    pub fn from_number(n: u32) -> Option<Self> {
        (n < Self::SHORT_SPACE).then_some(Self { n, long: false })
    }

    /// The nine-digit id `n`; `None` when `n` is outside the nine-digit space.
    pub fn long_from_number(n: u32) -> Option<Self> {
        (n < Self::LONG_SPACE).then_some(Self { n, long: true })
    }

    pub fn is_long(self) -> bool {
        self.long
    }

    /// `###-###` or `###-###-###`: ASCII digits in groups of three, nothing else.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let long = match b.len() {
            7 => false,
            11 => true,
            _ => return None,
        };
        let mut n = 0u32;
        for (i, c) in b.iter().enumerate() {
            if i % 4 == 3 {
                if *c != b'-' {
                    return None;
                }
                continue;
            }
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u32::from(c - b'0');
        }
        Some(Self { n, long })
    }
}

impl fmt::Display for PublicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.n;
        if self.long {
            write!(
                f,
                "{:03}-{:03}-{:03}",
                n / 1_000_000,
                n / 1000 % 1000,
                n % 1000
            )
        } else {
            write!(f, "{:03}-{:03}", n / 1000, n % 1000)
        }
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

    /// Where the room lists' projection writes what concerns `id` while nobody holds it
    /// (never used, or retired): a partition shaped like a user's, which no private id
    /// hashes to and nobody reads. So the projection does the same writes whether `id`
    /// has a holder or not, only to another key (see [`crate::projection`]).
    pub fn unheld(id: PublicId) -> Self {
        let digest = Sha256::new()
            .chain_update(b"secret-rooms/v3/unheld\0")
            .chain_update(id.to_string().as_bytes())
            .finalize();
        Self(digest.into())
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

    /// The room's tag: the first 6 bytes (48 bits) of a domain-separated SHA-256 of the
    /// whole id, as base64url ([`Self::TAG_LEN`] characters). A user item lists its rooms
    /// by tag, so that it stays under one DynamoDB write unit with a full list of rooms,
    /// and a message is counted when its room's tag is among its sender's. Every
    /// character of the id weighs on the tag, so a room id made up by changing some of
    /// a real one's has another tag; to post to a room not theirs, a member would have to
    /// find an id whose tag is one of their at most 100, among 2^48 (and a real room of
    /// others, whose id they cannot choose, by joining rooms 100 per identity).
    pub fn tag(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"secret-rooms/v2/room-tag\0")
            .chain_update(self.0.as_bytes())
            .finalize();
        URL_SAFE_NO_PAD.encode(&digest[..6])
    }

    /// Characters in a [`Self::tag`]: 8 base64url characters are exactly 6 bytes.
    pub const TAG_LEN: usize = 8;
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An X25519 public key a client registers at create for end-to-end encryption: 32
/// bytes as unpadded base64url (43 characters, the canonical encoding only). The service
/// only stores and hands it on; it never uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub const LEN: usize = 43;

    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != Self::LEN {
            return None;
        }
        let mut bytes = [0u8; 32];
        // The default engine refuses padding and non-canonical trailing bits, so one key
        // has one text.
        match URL_SAFE_NO_PAD.decode_slice(s, &mut bytes) {
            Ok(32) => Some(Self(bytes)),
            _ => None,
        }
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
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

/// Which of a room's two public ids a member holds: the lower or the higher by text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Low,
    High,
}

impl Side {
    /// The side of `me` in the room of `me` and `peer` (two different ids).
    pub fn of(me: PublicId, peer: PublicId) -> Self {
        if me.to_string() <= peer.to_string() {
            Side::Low
        } else {
            Side::High
        }
    }
}

#[cfg(test)]
mod tests;
