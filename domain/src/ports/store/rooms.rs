//! The rooms aggregate: a room's members, its closing, and a connect's join.

use super::{Member, RateWindow, Requester, StoreError};
use crate::ids::{PrivateIdHash, PublicId, RoomId, Side};
use async_trait::async_trait;

/// What a room knows of one of its members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub member: Member,
    /// The member identity's `createdAt`, when the room recorded it (rooms joined before
    /// history existed did not).
    pub since: Option<String>,
    /// Whether a member blocked the room: closed for good, for both.
    pub closed: bool,
    /// The other member, when they joined.
    pub peer: Option<PrivateIdHash>,
    /// The pair's other public id, which this member connected to (when the room
    /// recorded it: rooms joined before it did not).
    pub peer_id: Option<PublicId>,
}

/// One connect's join, as [`RoomStore::join_room`] records it.
#[derive(Clone, Debug)]
pub struct Joining<'a> {
    pub room: &'a RoomId,
    pub side: Side,
    pub joiner: &'a PrivateIdHash,
    pub requester: &'a Requester,
    pub target: PublicId,
    pub max_rooms: usize,
    /// The window the connect counts in, and the joiner's limit there.
    pub connects: RateWindow,
    /// Until when the offer to `target` stands (seconds since the epoch).
    pub offer_expires_at: u64,
    pub now: &'a str,
}

/// Whether a connect announces its room on the target's inbox channel: always a first
/// join; a join again at most once per room per window of connects (decided by the
/// joiner's own user item, so alike whoever holds the target).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announce {
    Now,
    /// Announced in this window already (or the window's record is full).
    Skip,
}

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The joiner connected as often as the window allows. Nothing was written.
    #[error("too many connects in this window")]
    RateLimited,
    /// The joiner is in as many rooms as one identity may be. Nothing was written.
    #[error("already in the maximum number of rooms")]
    TooManyRooms,
    /// The joiner has no user item (connect read it just before; users are never
    /// deleted, so only a broken table gets here). Nothing was written.
    #[error("the joiner is no user")]
    NoSuchJoiner,
    /// A member blocked the room; it never reopens. Nothing was written.
    #[error("the room is closed")]
    Closed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Rooms: join, membership, block.
#[async_trait]
pub trait RoomStore: Send + Sync {
    /// Record the joiner as the member holding `side` of `room`, the room among the rooms
    /// they may post to and among those they joined (with `target`, the public id they
    /// connected to), and the room as offered to `target`, all or nothing, and count the
    /// connect in the joiner's `connects` window. Only the joiner's items and `target`'s
    /// offers are written, so the write is the same whoever holds `target`, or whether
    /// anybody does. Idempotent: first times are kept. A joiner already in `max_rooms`
    /// other rooms is refused, and nothing is written, and so is a joiner of a closed
    /// room, and one who connected `connects.limit` times in the window already. Records
    /// the announcement when [`crate::rooms::announcing`] says one is due, and answers
    /// whether it is.
    async fn join_room(&self, joining: &Joining<'_>) -> Result<Announce, JoinError>;

    /// What `room` knows of `who`; `None` for an unknown room or a non-member.
    async fn room_member(
        &self,
        room: &RoomId,
        who: &PrivateIdHash,
    ) -> Result<Option<Membership>, StoreError>;

    /// Close `room` for good: marked closed, and closed for its members `blocker` and
    /// `peer` (when joined), so that neither may post again; the room leaves the inboxes
    /// of the public ids `inboxes`. One transaction; idempotent. `false` when `peer` is
    /// `None` but the room has two members by now (the peer joined since the caller
    /// read it): nothing was written, read the room again.
    async fn close_room(
        &self,
        room: &RoomId,
        blocker: &PrivateIdHash,
        inboxes: &[PublicId],
        peer: Option<&PrivateIdHash>,
        now: &str,
    ) -> Result<bool, StoreError>;

    /// All members of a room (tests and operations; not on a route).
    async fn room_members(
        &self,
        room: &RoomId,
    ) -> Result<Option<Vec<(PrivateIdHash, Member)>>, StoreError>;
}
