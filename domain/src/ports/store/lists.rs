//! The room lists: what [`crate::projection`] keeps in each identity's partition (its
//! joined entries, the copies of the offers to its public id), and the offers it copies.

use super::{Member, Requester, StoreError};
use crate::ids::{PrivateIdHash, PublicId, PublicKey, RoomId};
use async_trait::async_trait;

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

/// Room lists: read one, and the projection's reads and writes.
#[async_trait]
pub trait ListStore: Send + Sync {
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
}
