//! A room's history: every accepted message is kept for a while, so that a message sent
//! while the peer is away is read when they come back.

pub use crate::cursor::Cursor;
use crate::ids::{PrivateId, RoomId};
use crate::ports::store::{HistoryPage, MessageStore, RoomStore, StoreError};
use crate::sent::MessageId;
use crate::time::{millis_of, parse_rfc3339_millis};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long messages are kept (`MESSAGE_TTL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageTtl(pub Duration);

impl Default for MessageTtl {
    /// Seven days.
    fn default() -> Self {
        Self(Duration::from_secs(7 * 24 * 3600))
    }
}

impl MessageTtl {
    /// When a message sent at `sent` expires, in seconds since the epoch (DynamoDB's
    /// TTL attribute).
    pub fn expires_at(&self, sent: SystemTime) -> u64 {
        (sent + self.0)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// How many messages one page holds: `limit` when given, within 1 to [`MAX_PAGE`].
pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// An unknown room and a room the caller is not in answer alike.
    #[error("room not found")]
    RoomNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One membership read, one query: the page of `room`'s history after `after` that
/// `caller` may read. A member never sees what was sent before their identity existed:
/// a public id's new holder does not read what was written to it while unused.
pub async fn list_messages<S: RoomStore + MessageStore + ?Sized>(
    store: &S,
    room: &RoomId,
    caller: &PrivateId,
    after: Option<Cursor>,
    limit: usize,
    now: SystemTime,
) -> Result<HistoryPage, HistoryError> {
    let membership = store
        .room_member(room, &caller.hash())
        .await?
        .ok_or(HistoryError::RoomNotFound)?;
    let now_millis = millis_of(now);
    let since = history_start(membership.since.as_deref(), now_millis);
    let from = match after {
        Some(after) if after > since => after,
        _ => since,
    };
    let now_secs = now_millis / 1000;
    let limit = limit.clamp(1, MAX_PAGE);
    Ok(store.list_messages(room, &from, limit, now_secs).await?)
}

/// Where a page of [`list_messages_newest_first`] starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Before {
    /// The room's newest message.
    Newest,
    /// Just before this cursor (a page's `next`).
    Cursor(Cursor),
}

/// One membership read, one query: the page of `room`'s history that `caller` may read,
/// newest first, from `before`: a client shows the latest page at once and loads older
/// ones on demand, never the whole room. Nothing from before the member's identity
/// existed, as [`list_messages`].
pub async fn list_messages_newest_first<S: RoomStore + MessageStore + ?Sized>(
    store: &S,
    room: &RoomId,
    caller: &PrivateId,
    before: Before,
    limit: usize,
    now: SystemTime,
) -> Result<HistoryPage, HistoryError> {
    let membership = store
        .room_member(room, &caller.hash())
        .await?
        .ok_or(HistoryError::RoomNotFound)?;
    let now_millis = millis_of(now);
    let floor = history_start(membership.since.as_deref(), now_millis);
    let before = match before {
        Before::Newest => None,
        // Nothing a member may read lies below their history's start.
        Before::Cursor(c) if c <= floor => {
            return Ok(HistoryPage {
                messages: Vec::new(),
                next: None,
            });
        }
        Before::Cursor(c) => Some(c),
    };
    let limit = limit.clamp(1, MAX_PAGE);
    Ok(store
        .list_messages_before(room, &floor, before.as_ref(), limit, now_millis / 1000)
        .await?)
}

/// Where a member's history starts: at `since` (their identity's, or their public id's,
/// creation); all of it for rooms joined before rooms recorded it (`None`); and nothing
/// before now for a value that does not parse (fail closed).
pub fn history_start(since: Option<&str>, now_millis: u64) -> Cursor {
    match since {
        None => Cursor::before(0),
        Some(text) => Cursor::before(parse_rfc3339_millis(text).unwrap_or(now_millis)),
    }
}

/// A kept message's place, from its id and the time it was first sent.
pub fn kept(id: &MessageId, sent: SystemTime) -> Result<Cursor, anyhow::Error> {
    Cursor::new(millis_of(sent), &id.cursor_part())
        .ok_or_else(|| anyhow::anyhow!("a cursor's id part is 32 hex"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_order_as_their_text() {
        let id = "0123456789abcdef0123456789abcdef";
        let a = Cursor::new(1_764_470_000_000, id).unwrap();
        assert_eq!(a.to_string(), format!("0001764470000000-{id}"));
        assert_eq!(Cursor::parse(&a.to_string()), Some(a.clone()));
        assert_eq!(a.to_string().len(), Cursor::LEN);
        let b = Cursor::new(1_764_470_000_001, &"0".repeat(32)).unwrap();
        assert!(a < b && a.to_string() < b.to_string());
        assert!(Cursor::before(1_764_470_000_000) < a);
        assert!(Cursor::before(1_764_470_000_000).to_string() < a.to_string());
        for bad in [
            "",
            "1-0123456789abcdef0123456789abcdef",
            "0001764470000000-0123456789ABCDEF0123456789abcdef",
            "0001764470000000-0123",
            "000176447000000x-0123456789abcdef0123456789abcdef",
            "0001764470000000_0123456789abcdef0123456789abcdef",
        ] {
            assert!(Cursor::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_history_starts_at_since_and_fails_closed() {
        let now = 1_764_470_000_000;
        assert_eq!(history_start(None, now), Cursor::before(0));
        assert_eq!(
            history_start(Some("2026-11-24T05:20:55.123Z"), now),
            Cursor::before(1_795_497_655_123)
        );
        assert_eq!(history_start(Some("garbage"), now), Cursor::before(now));
    }

    #[test]
    fn messages_expire_after_the_ttl() {
        let ttl = MessageTtl(Duration::from_secs(60));
        let sent = UNIX_EPOCH + Duration::from_millis(1_000_500);
        assert_eq!(ttl.expires_at(sent), 1060);
        assert_eq!(MessageTtl::default().0.as_secs(), 604_800);
    }
}
