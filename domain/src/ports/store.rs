//! The storage contract. Every method is one round trip to the backing database (but
//! `count_message`, documented there), so the SPEC's budget (create 1 amortized,
//! connect 2, message 1, auth 1) can be read off the domain functions and counted in
//! tests.

use crate::cursor::Cursor;
use crate::ids::{PrivateIdHash, PublicId, PublicKey, RoomId, Side};
use crate::sent::LastSent;
use async_trait::async_trait;

/// A user: the store keeps it under its private-id hash, with a marker for its public id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub id: u64,
    pub public_id: PublicId,
    pub private_id_hash: PrivateIdHash,
    pub username: String,
    pub created_at: String,
    pub updated_at: String,
    /// The X25519 key the user registered for end-to-end encryption, if any.
    pub public_key: Option<PublicKey>,
}

/// What a room keeps of each member, so that a message can name its sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub public_id: PublicId,
    pub username: String,
}

/// The requester of a connect: how a room names them, and since when they exist (a
/// member sees nothing of a room from before then).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requester {
    pub member: Member,
    /// When the identity got its current public id: its `createdAt`, or its last
    /// rotation.
    pub since: String,
    /// Their registered key: a room's offer carries it to the peer.
    pub public_key: Option<PublicKey>,
    /// The tags (`RoomId::tag`) of the open rooms they joined, as their user item lists
    /// them: whether a connect joins anew (and counts against the cap) or again.
    pub rooms: std::collections::BTreeSet<String>,
    /// Their connects counted so far, as the store encodes them (its window and count),
    /// if any: the store picks its counting update by it.
    pub connects: Option<u64>,
    /// The marks ([`crate::rooms::announce_mark`]) of the rooms announced in the window
    /// of `connects`: a reconnect announces a room at most once per window.
    pub announced: std::collections::BTreeSet<String>,
}

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

/// A room offered to a public id: its holder (present or future) may join it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub room: RoomId,
    /// Who connected to the public id.
    pub from: Member,
    /// Their registered key, if any.
    pub public_key: Option<PublicKey>,
    /// When they last did.
    pub opened_at: String,
    /// Until when the offer stands (seconds since the epoch; `OFFER_TTL` after
    /// `opened_at`); `None` for an offer made before offers expired.
    pub expires_at: Option<u64>,
}

/// A room an identity joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joined {
    pub room: RoomId,
    /// The public id the identity connected to.
    pub peer: PublicId,
    pub joined_at: String,
    /// Since when the identity held the public id it joined with: its history in the
    /// room starts there.
    pub since: Option<String>,
    /// Whether a member blocked the room.
    pub closed: bool,
    /// The room's newest message since `since`, as the projection last noted it.
    pub last_message: Option<LastMessage>,
}

/// A room offered to an identity's public id, as the projection copied it into the
/// identity's own partition (see [`crate::projection`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxOffer {
    pub offer: Offer,
    /// The public id the room was offered to: after a rotation, copies made for the old
    /// one may linger until the projection drops them, and are not shown.
    pub to: PublicId,
    /// The room's newest message since the holder took `to`.
    pub last_message: Option<LastMessage>,
}

/// When a room's newest message was sent, and until when it is kept (seconds since the
/// epoch): a list does not show a message that has expired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastMessage {
    pub sent_at: String,
    pub expires_at: u64,
}

/// Which of an identity's entries for a room: the room it joined, or the copy of the
/// room's offer to its public id (keyed by when the offer was made, so that a list reads
/// the newest offers first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListEntry<'a> {
    Joined,
    Offered { opened_at: &'a str },
}

/// Whose room list a room's messages show in: one entry per side of its pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audience {
    pub sides: Vec<Listed>,
}

/// Where one side of a room is listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listed {
    /// The member who joined the side: their joined entry.
    Member(PrivateIdHash),
    /// Nobody joined the side yet: the room is offered to its public id `to` (last at
    /// `opened_at`, when the room recorded it), and listed by whoever holds it (or by
    /// nobody: [`PrivateIdHash::unheld`]).
    Offered {
        to: PublicId,
        opened_at: Option<String>,
    },
}

/// An identity's rooms as its own partition holds them: one query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomsOf {
    /// The identity as rooms name it now, and since when it holds that public id.
    pub requester: Requester,
    pub joined: Vec<Joined>,
    pub offers: Vec<InboxOffer>,
}

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The new public id is taken. Nothing was written.
    #[error("public id already taken")]
    Taken,
    /// The source address used up its ids for this window. Nothing was written.
    #[error("too many ids taken from this address")]
    RateLimited,
    /// The identity no longer holds `old` (a concurrent rotation), or is no user.
    #[error("the identity does not hold that public id")]
    NotHolder,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who holds a public id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicEntry {
    pub owner: PrivateIdHash,
    pub username: String,
    /// When the holder took the id (their `createdAt`, or the rotation that gave it).
    pub since: String,
}

/// One create counted against its source address's limit: at most `limit` per `window`
/// for the (hashed) `address`. The count is kept until `expires_at` (seconds since the
/// epoch), when its window ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateQuota {
    /// The keyed hash of the source address (`addresses::AddressKey::hash`).
    pub address: String,
    pub window: u64,
    pub limit: u32,
    pub expires_at: u64,
    /// Seconds until the window ends, for a refused create's `Retry-After`.
    pub retry_after: u32,
}

/// One fixed window of the per-sender message rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateWindow {
    /// The window's number (seconds since the epoch divided by the window's length).
    pub window: u64,
    /// Messages allowed per sender per window.
    pub limit: u32,
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

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database did not answer in time, throttled us, or failed on its side:
    /// worth retrying later.
    #[error("storage unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    #[error("storage failed: {0:#}")]
    Other(anyhow::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum InsertUserError {
    /// The public id (or, astronomically rarely, the private-id hash) is taken.
    /// Nothing was written.
    #[error("public or private id already taken")]
    Taken,
    /// The source address has used up its creates for this window. Nothing was written.
    #[error("too many users created from this address")]
    RateLimited,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One connect's join, as [`Store::join_room`] records it.
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

#[async_trait]
pub trait Store: Send + Sync {
    /// Reserve `count` numeric user ids from the atomic counter, for one allocator to
    /// hand out: returns the last, so the block is `last - count + 1 ..= last`.
    async fn reserve_user_ids(&self, count: u64) -> Result<u64, StoreError>;

    /// Write both user items, and count the create against `quota` when given, all or
    /// nothing: each user item is conditioned on not existing yet, the count on being
    /// under its limit.
    async fn insert_user(
        &self,
        user: &UserRecord,
        quota: Option<&CreateQuota>,
    ) -> Result<(), InsertUserError>;

    /// The requester of a connect as a room would name them (their current public id
    /// and username), read from their own user item only; `None` for an unknown
    /// private id.
    async fn member_for_connect(
        &self,
        requester: &PrivateIdHash,
    ) -> Result<Option<Requester>, StoreError>;

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

    /// The identity's current public id, the rooms it joined and up to `max_offers` of
    /// the rooms offered to it, as the projection copied them; `None` for an unknown
    /// private id. One query (its partition).
    async fn rooms_of(
        &self,
        who: &PrivateIdHash,
        max_offers: usize,
    ) -> Result<Option<RoomsOf>, StoreError>;

    /// The room offered to `to` as `room`, if it still is (the projection). One read.
    async fn offer(&self, to: PublicId, room: &RoomId) -> Result<Option<Offer>, StoreError>;

    /// Whom `room`'s messages concern; `None` for an unknown room (the projection).
    /// One read.
    async fn audience(&self, room: &RoomId) -> Result<Option<Audience>, StoreError>;

    /// The newest message kept in `room`, expired or not (the projection). One query.
    async fn newest_message(&self, room: &RoomId) -> Result<Option<LastMessage>, StoreError>;

    /// Note `last` on `who`'s `entry` for `room`, unless the entry is missing, already
    /// notes a message as new or newer, or starts after `last` was sent (the projection).
    /// One conditional update; idempotent, and order does not matter.
    async fn note_message(
        &self,
        who: &PrivateIdHash,
        room: &RoomId,
        entry: ListEntry<'_>,
        last: &LastMessage,
    ) -> Result<(), StoreError>;

    /// Copy `offer`, made to `to`, into the partition of `owner` (the holder of `to`, who
    /// took it at `since`, or [`PrivateIdHash::unheld`]), keyed by its `opened_at` and
    /// expiring with it, noting `last` when it is newer than what a copy already there
    /// notes (the projection). One conditional update, whatever `owner` is: a copy that
    /// outlives its holder's rotation is never listed (a list shows only copies made to
    /// its current public id).
    async fn copy_offer(
        &self,
        owner: &PrivateIdHash,
        to: PublicId,
        since: &str,
        offer: &Offer,
        last: Option<&LastMessage>,
    ) -> Result<(), StoreError>;

    /// Delete `holder`'s copy of `room` offered to `to` at `opened_at`, if it is there
    /// (the projection; an empty `opened_at` names a copy made before copies were keyed
    /// by time). One conditional delete.
    async fn drop_offer(
        &self,
        holder: &PrivateIdHash,
        to: PublicId,
        room: &RoomId,
        opened_at: &str,
    ) -> Result<(), StoreError>;

    /// Delete every copy in `holder`'s partition of a room offered to `to` (the
    /// projection, once `to` is retired). A query per page of copies, then one delete
    /// per copy made to `to`.
    async fn drop_offers_to(&self, holder: &PrivateIdHash, to: PublicId) -> Result<(), StoreError>;

    /// Give `who` (named `old` until now) the public id `new` in place of `old`'s, which
    /// is retired: its marker
    /// stays, so it is never given out again, but names nobody. Counted against `quota`
    /// when given. One transaction.
    async fn rotate_public_id(
        &self,
        who: &PrivateIdHash,
        old: &Member,
        new: PublicId,
        quota: Option<&CreateQuota>,
        now: &str,
    ) -> Result<(), RotateError>;

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
    /// again); `false`, writing nothing, when the last message is no longer `last`. One
    /// conditional update.
    async fn republish(
        &self,
        who: &PrivateIdHash,
        last: &LastSent,
        next: &LastSent,
    ) -> Result<bool, StoreError>;

    /// What `room` knows of `who`; `None` for an unknown room or a non-member.
    async fn room_member(
        &self,
        room: &RoomId,
        who: &PrivateIdHash,
    ) -> Result<Option<Membership>, StoreError>;

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

    /// Open the connection to the database ahead of the first request (one cheap read
    /// of an item that never exists), so that the first request does not pay for TCP
    /// and TLS set-up. Failures are ignored: the request path reports its own.
    async fn warm_up(&self) {}

    /// How many round trips to the database this store has made, retries included
    /// (tests and benchmarks check the SPEC's budget with it).
    fn round_trips(&self) -> usize;

    /// The user stored under a private-id hash (tests and operations; not on a route).
    async fn get_user(&self, hash: &PrivateIdHash) -> Result<Option<UserRecord>, StoreError>;

    /// The holder of a public id (tests and operations; not on a route).
    async fn get_public(&self, public_id: PublicId) -> Result<Option<PublicEntry>, StoreError>;

    /// All members of a room (tests and operations; not on a route).
    async fn room_members(
        &self,
        room: &RoomId,
    ) -> Result<Option<Vec<(PrivateIdHash, Member)>>, StoreError>;
}
