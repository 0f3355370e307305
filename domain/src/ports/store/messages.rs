//! The messages aggregate: a room's kept history and each sender's message count.

use super::{LastMessage, Member, RateWindow, StoreError};
use crate::cursor::Cursor;
use crate::ids::{PrivateIdHash, RoomId};
use crate::sent::LastSent;
use async_trait::async_trait;

/// A message as the room's history keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptMessage {
    /// Where it stands in the room's history (time, then id): also the list's cursor.
    pub cursor: Cursor,
    pub id: String,
    pub from: Member,
    pub message: String,
    pub sent_at: String,
}

/// How a message is kept: a new one is written; a retry's only where nothing is at its
/// place (its first attempt's write failed), so that a message kept stays as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keeping {
    New,
    Again,
}

/// One page of a room's history, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryPage {
    pub messages: Vec<KeptMessage>,
    /// Where the next page starts when more messages follow: the last item read, which
    /// may be an expired message left out of `messages` (so that a page of expired
    /// messages does not end the history early).
    pub next: Option<Cursor>,
}

/// Whether a sender may post to a room now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowance {
    /// Counted; here is the sender as the room knows them.
    Allowed(Member),
    /// Over the limit for this window; nothing was counted.
    Limited,
    /// No such room, or one the sender did not join: the two are not told apart.
    NotMember,
    /// A member blocked the room: closed for good. Nothing was counted.
    Closed,
    /// The sender's last message had this message's id: counted already (by a retry's
    /// first attempt, or the SDK's retry of an update whose answer was lost). Nothing
    /// was counted or written now; `first` is what was remembered of it.
    SentBefore { member: Member, first: LastSent },
}

/// Messages: count, keep, list.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Count message `sent` of `who` to `room` against `who`'s rate limit of `window`,
    /// which spans all their rooms, and remember it as `who`'s last message; only a
    /// room `who` joined is allowed. When the last message has `sent`'s id, nothing is
    /// counted: [`Allowance::SentBefore`]. One conditional update; on DynamoDB a second
    /// one restarts a count left from about 64 windows ago (see the DynamoDB store's
    /// rate slots).
    async fn count_message(
        &self,
        room: &RoomId,
        who: &PrivateIdHash,
        window: RateWindow,
        sent: &LastSent,
    ) -> Result<Allowance, StoreError>;

    /// Remember `next` in place of `who`'s last message `last` (a retry published it
    /// again); `false` when the last message is no longer `last` (another retry took
    /// the turn, or on DynamoDB this update applied and its answer was lost and retried).
    /// One conditional update.
    async fn republish(
        &self,
        who: &PrivateIdHash,
        last: &LastSent,
        next: &LastSent,
    ) -> Result<bool, StoreError>;

    /// Keep a message in its room's history until `expires_at` (seconds since the
    /// epoch; DynamoDB's TTL deletes it some time after); [`Keeping::Again`] writes
    /// nothing where a message is already kept at its place. One write.
    async fn keep_message(
        &self,
        room: &RoomId,
        message: &KeptMessage,
        expires_at: u64,
        keeping: Keeping,
    ) -> Result<(), StoreError>;

    /// `room`'s kept messages after `after` (exclusive), oldest first: `limit` items
    /// read, less those that expired by `now_secs`. One query.
    async fn list_messages(
        &self,
        room: &RoomId,
        after: &Cursor,
        limit: usize,
        now_secs: u64,
    ) -> Result<HistoryPage, StoreError>;

    /// `room`'s kept messages newest first, from just before `before` (exclusive; the
    /// newest when `None`) down to just after `floor` (exclusive): `limit` items read,
    /// less those that expired by `now_secs`. `next` is then the oldest item read, to
    /// pass as `before` for the page after. One query.
    async fn list_messages_before(
        &self,
        room: &RoomId,
        floor: &Cursor,
        before: Option<&Cursor>,
        limit: usize,
        now_secs: u64,
    ) -> Result<HistoryPage, StoreError>;

    /// The newest message kept in `room`, expired or not (the projection). One query.
    async fn newest_message(&self, room: &RoomId) -> Result<Option<LastMessage>, StoreError>;
}
