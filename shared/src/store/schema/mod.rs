//! The one table's items, as both stores keep them and the local server's `invariants`
//! check reads them: the keys,
//! the attribute names and a typed item per kind. The embedded store keeps each item as
//! its JSON; the DynamoDB store converts the same JSON to attribute values
//! (`dynamodb::codec`), so both stores hold the very same attributes.

use crate::domain::RoomId;
use crate::domain::history::Cursor;
use crate::domain::ports::{
    Audience, InboxOffer, Joined, KeptMessage, LastMessage, Listed, Member, Membership, Offer,
    PublicEntry, Requester, StoreError, UserRecord,
};
use crate::domain::rooms::Side;
use crate::domain::{PrivateIdHash, PublicId, PublicKey};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub mod attr;
pub mod keys;
mod lists;
mod messages;
mod rooms;
#[cfg(test)]
mod tests;
mod users;

pub use lists::*;
pub use messages::*;
pub use rooms::*;
pub use users::*;

/// What kind of item a key holds (the `type` attribute).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    User,
    Public,
    Room,
    Address,
    Message,
    /// A room in the partition of the user who joined it.
    Joined,
    /// A room in the partition of the public id it was opened with.
    Offer,
    /// A copy of an offer in its holder's partition (the projection's).
    Inbox,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

pub(crate) fn parse_public_key(s: Option<&str>) -> Result<Option<PublicKey>, StoreError> {
    s.map(|s| PublicKey::parse(s).ok_or_else(|| corrupt(format!("bad publicKey {s:?}"))))
        .transpose()
}

fn parse_room(s: &str) -> Result<RoomId, StoreError> {
    RoomId::parse(s).ok_or_else(|| corrupt(format!("bad roomId {s:?}")))
}

/// An item that does not have the shape this schema gives it.
pub fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Other(anyhow::anyhow!("unexpected item shape: {what}"))
}

fn parse_public_id(s: &str) -> Result<PublicId, StoreError> {
    PublicId::parse(s).ok_or_else(|| corrupt(format!("bad publicId {s:?}")))
}

fn parse_hash(s: &str) -> Result<PrivateIdHash, StoreError> {
    PrivateIdHash::from_hex(s).ok_or_else(|| corrupt("bad private-id hash"))
}
