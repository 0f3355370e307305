//! A message's place in its room's history: the history's cursor, and the message's sort
//! key. Kept apart from [`crate::history`], which reads the store, so that the store's
//! port can name it without a circle.

use std::fmt;

/// Where a message stands in its room's history: the time it was sent (milliseconds
/// since the epoch), then its id. Its text, `0001764470000000-<32 hex>`, is the list's
/// cursor and, behind `MSG#`, the message's sort key: fixed-width, so text order is
/// history order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    millis: u64,
    id: String,
}

impl Cursor {
    /// Digits of the time part.
    const MILLIS_DIGITS: usize = 16;
    /// Hex digits of a message id.
    pub const ID_LEN: usize = 32;
    /// The cursor's text length.
    pub const LEN: usize = Self::MILLIS_DIGITS + 1 + Self::ID_LEN;

    /// The position of message `id` sent at `millis`; `None` for an id that is not 32
    /// lower-case hex digits.
    pub fn new(millis: u64, id: &str) -> Option<Self> {
        let ok = id.len() == Self::ID_LEN
            && id
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
            && millis < 10u64.pow(Self::MILLIS_DIGITS as u32);
        ok.then(|| Self {
            millis,
            id: id.to_owned(),
        })
    }

    /// Before every message sent at `millis` or later.
    pub fn before(millis: u64) -> Self {
        Self {
            millis,
            id: String::new(),
        }
    }

    /// A cursor as `next` gave it.
    pub fn parse(text: &str) -> Option<Self> {
        let (millis, id) = text.split_once('-')?;
        if millis.len() != Self::MILLIS_DIGITS || !millis.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        Self::new(millis.parse().ok()?, id)
    }

    pub fn millis(&self) -> u64 {
        self.millis
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016}-{}", self.millis, self.id)
    }
}
