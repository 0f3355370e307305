//! The users aggregate: user items, public-id markers, the id counter and the
//! per-address create counts.

use super::{Member, StoreError};
use crate::ids::{PrivateIdHash, PublicId, PublicKey};
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

/// Identities: create, read, rotate.
#[async_trait]
pub trait UserStore: Send + Sync {
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

    /// The user stored under a private-id hash (tests and operations; not on a route).
    async fn get_user(&self, hash: &PrivateIdHash) -> Result<Option<UserRecord>, StoreError>;

    /// The holder of a public id (tests and operations; not on a route).
    async fn get_public(&self, public_id: PublicId) -> Result<Option<PublicEntry>, StoreError>;
}
