//! Exactly-once sends (SPEC v3): a message's id, which the sender may choose, and what
//! the sender's user item remembers of their last message, so that a retry of it is
//! answered without keeping or counting it twice. Kept apart from [`crate::messages`],
//! which reads the store, so that the store's port can name these without a circle.

use crate::ids::RoomId;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};

/// A message's id: the sender's own (22 to 64 URL-safe characters, so 128 bits or more
/// when random), or 32 random hex digits when the sender gave none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageId(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "a message id is {min} to {max} characters of A-Z, a-z, 0-9, '-' and '_'",
    min = MessageId::MIN_LEN,
    max = MessageId::MAX_LEN
)]
pub struct BadMessageId;

impl MessageId {
    /// 128 bits in base64url.
    pub const MIN_LEN: usize = 22;
    pub const MAX_LEN: usize = 64;

    pub fn parse(text: String) -> Result<Self, BadMessageId> {
        let ok = (Self::MIN_LEN..=Self::MAX_LEN).contains(&text.len())
            && text
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
        if ok {
            Ok(Self(text))
        } else {
            Err(BadMessageId)
        }
    }

    /// A fresh id for a message sent without one.
    pub fn random() -> anyhow::Result<Self> {
        crate::random::hex(16).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id's part of the message's cursor, which has a fixed width: the id itself
    /// when it is 32 lower-case hex digits (as the server's own are), else the first 32
    /// hex digits of its SHA-256.
    pub fn cursor_part(&self) -> String {
        let hex = self.0.len() == 32
            && self
                .0
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
        if hex {
            self.0.clone()
        } else {
            ::hex::encode(&Sha256::digest(self.0.as_bytes())[..16])
        }
    }
}

/// What a sender's user item remembers of their last message: a fingerprint of its id
/// (48 bits) and of its room and text (40 bits), when it was first sent (milliseconds, 48 bits)
/// and how often a retry published it again. 18 bytes, 24 base64url characters: the
/// item, rewritten by every message, stays under one write unit at the room cap.
///
/// A fingerprint tells apart the sender's own messages only, which they choose: a
/// collision makes one of their own messages look like a retry of the one before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastSent {
    id: [u8; 6],
    text: [u8; 5],
    millis: u64,
    republished: u8,
}

impl LastSent {
    /// Its text's length.
    pub const LEN: usize = 24;
    /// The length of the text's first part, the id's fingerprint alone.
    pub const ID_PART_LEN: usize = 8;
    /// How often retries of one message publish it again; later ones keep it (a write
    /// that changes nothing) and publish nothing, so that retries, which are not counted,
    /// cannot send a room's channel more than this.
    pub const MAX_REPUBLISHED: u8 = 8;

    /// Message `id` with `text` to `room`, sent at `sent`. The room is in the text's
    /// fingerprint: the same id and text to another room is another message.
    pub fn of(id: &MessageId, room: &RoomId, text: &str, sent: SystemTime) -> Self {
        let id = Sha256::digest(id.as_str().as_bytes());
        let text = Sha256::new()
            .chain_update(room.as_str().as_bytes())
            .chain_update([0])
            .chain_update(text.as_bytes())
            .finalize();
        let millis = sent
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            id: first(&id),
            text: first(&text),
            millis: millis.min((1 << 48) - 1),
            republished: 0,
        }
    }

    pub fn encode(&self) -> String {
        let mut bytes = [0u8; 18];
        bytes[..6].copy_from_slice(&self.id);
        bytes[6..11].copy_from_slice(&self.text);
        bytes[11..17].copy_from_slice(&self.millis.to_be_bytes()[2..]);
        bytes[17] = self.republished;
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let bytes: [u8; 18] = URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()?;
        let mut millis = [0u8; 8];
        millis[2..].copy_from_slice(&bytes[11..17]);
        Some(Self {
            id: first(&bytes[..6]),
            text: first(&bytes[6..11]),
            millis: u64::from_be_bytes(millis),
            republished: bytes[17],
        })
    }

    /// The first [`Self::ID_PART_LEN`] characters of [`Self::encode`]: the id alone.
    pub fn id_part(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.id)
    }

    pub fn same_id(&self, other: &Self) -> bool {
        self.id == other.id
    }

    pub fn same_text(&self, other: &Self) -> bool {
        self.text == other.text
    }

    /// When the message was first sent.
    pub fn sent_at(&self) -> SystemTime {
        UNIX_EPOCH + std::time::Duration::from_millis(self.millis)
    }

    /// How often retries published it again.
    pub fn republished(&self) -> u8 {
        self.republished
    }

    /// The same message, published once more by a retry.
    pub fn republishing(&self) -> Self {
        Self {
            republished: self.republished.saturating_add(1),
            ..*self
        }
    }
}

fn first<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_22_to_64_url_safe_characters() {
        for good in ["a".repeat(22), "Z9-_".repeat(16), "0".repeat(32)] {
            assert!(MessageId::parse(good.clone()).is_ok(), "{good}");
        }
        for bad in [
            "a".repeat(21),
            "a".repeat(65),
            format!("{}=", "a".repeat(22)),
            format!("{}/", "a".repeat(22)),
            format!("{}é", "a".repeat(22)),
            String::new(),
        ] {
            assert_eq!(MessageId::parse(bad.clone()), Err(BadMessageId), "{bad}");
        }
    }

    #[test]
    fn a_cursor_part_is_32_hex_digits_the_id_itself_when_it_is_one() {
        let hex = "0123456789abcdef0123456789abcdef";
        assert_eq!(MessageId::parse(hex.into()).unwrap().cursor_part(), hex);
        let upper = MessageId::parse(hex.to_uppercase()).unwrap().cursor_part();
        let other = MessageId::parse("x".repeat(22)).unwrap().cursor_part();
        for part in [&upper, &other] {
            assert_eq!(part.len(), 32);
            assert!(
                part.bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
        }
        assert_ne!(upper, hex);
        assert_ne!(upper, other);
        assert!(MessageId::random().unwrap().cursor_part().len() == 32);
    }

    #[test]
    fn the_last_message_round_trips_in_24_characters_the_id_first() {
        let at = UNIX_EPOCH + std::time::Duration::from_millis(1_764_470_000_123);
        let id = MessageId::parse("k".repeat(22)).unwrap();
        let room = RoomId::parse(&"A".repeat(43)).unwrap();
        let sent = LastSent::of(&id, &room, "hello", at);
        let text = sent.encode();
        assert_eq!(text.len(), LastSent::LEN);
        assert!(text.starts_with(&sent.id_part()));
        assert_eq!(sent.id_part().len(), LastSent::ID_PART_LEN);
        assert_eq!(LastSent::decode(&text), Some(sent));
        assert_eq!(sent.sent_at(), at);
        let again = sent.republishing();
        assert_eq!(again.republished(), 1);
        assert_eq!(LastSent::decode(&again.encode()), Some(again));
        assert!(again.encode().starts_with(&sent.id_part()));

        let later = at + std::time::Duration::from_secs(5);
        let retry = LastSent::of(&id, &room, "hello", later);
        assert!(retry.same_id(&sent) && retry.same_text(&sent));
        let conflict = LastSent::of(&id, &room, "hullo", at);
        assert!(conflict.same_id(&sent) && !conflict.same_text(&sent));
        let elsewhere = LastSent::of(
            &id,
            &RoomId::parse(&format!("{}A", "Q".repeat(42))).unwrap(),
            "hello",
            at,
        );
        assert!(
            elsewhere.same_id(&sent) && !elsewhere.same_text(&sent),
            "another room"
        );
        let other = LastSent::of(
            &MessageId::parse("j".repeat(22)).unwrap(),
            &room,
            "hello",
            at,
        );
        assert!(!other.same_id(&sent) && other.id_part() != sent.id_part());
        for bad in ["", "AAAA", &"!".repeat(24), &"A".repeat(25)] {
            assert_eq!(LastSent::decode(bad), None, "{bad}");
        }
    }
}
