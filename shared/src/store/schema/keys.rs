//! Item keys: the partition key `pk` and the sort key `sk`.

use crate::domain::history::Cursor;
use crate::domain::projection::Found;
use crate::domain::{PrivateIdHash, PublicId, RoomId};

/// The sort key of an item that stands alone under its partition key (a user, a
/// public id's marker, a room, a counter).
pub const ITEM: &str = "_";
/// The sort keys of a room's kept messages start so.
pub const MESSAGE_PREFIX: &str = "MSG#";
/// The sort keys of rooms in a user's partition (joined) and in a public id's
/// (offered) start so.
pub const ROOM_ENTRY_PREFIX: &str = "ROOM#";
/// The sort keys of the copies of offers in a user's partition start so (they sort
/// before the joined rooms, which sort before the user item).
pub const OFFER_ENTRY_PREFIX: &str = "OFFER#";

/// A room's entry in a user's or a public id's partition.
pub fn room_entry(room: &RoomId) -> String {
    format!("{ROOM_ENTRY_PREFIX}{room}")
}

/// The copy of a room's offer, made at `opened_at`, in its holder's partition: by
/// time, so that a list reads the newest first. (An empty `opened_at` names a copy
/// from before copies were keyed by time, `OFFER#<roomId>`.)
pub fn offer_entry(opened_at: &str, room: &RoomId) -> String {
    if opened_at.is_empty() {
        format!("{OFFER_ENTRY_PREFIX}{room}")
    } else {
        format!("{OFFER_ENTRY_PREFIX}{opened_at}#{room}")
    }
}

/// When a copy's offer was made, and its room, from the copy's sort key (see
/// [`offer_entry`]).
pub fn parse_offer_entry(sk: &str) -> Option<(String, RoomId)> {
    let rest = sk.strip_prefix(OFFER_ENTRY_PREFIX)?;
    match rest.rsplit_once('#') {
        Some((opened_at, room)) => Some((opened_at.to_owned(), RoomId::parse(room)?)),
        None => Some((String::new(), RoomId::parse(rest)?)),
    }
}

pub const USER_PREFIX: &str = "USER#";
pub const PUBLIC_PREFIX: &str = "PUBLIC#";
pub const ROOM_PREFIX: &str = "ROOM#";
pub const ADDRESS_PREFIX: &str = "ADDR#";
/// The atomic counter behind users' increasing numeric ids.
pub const USER_COUNTER: &str = "COUNTER#users";
/// Read at start-up to open the connection; no item is ever stored there.
pub const WARM_UP: &str = "WARMUP";

pub fn user(hash: &PrivateIdHash) -> String {
    format!("{USER_PREFIX}{}", hash.to_hex())
}

pub fn public(id: PublicId) -> String {
    format!("{PUBLIC_PREFIX}{id}")
}

pub fn room(room: &RoomId) -> String {
    format!("{ROOM_PREFIX}{room}")
}

/// A kept message's sort key, in its room's partition: ordered by time, then id.
pub fn message(cursor: &Cursor) -> String {
    format!("{MESSAGE_PREFIX}{cursor}")
}

/// What the room lists' projection derives from an item with keys `pk` and `sk`
/// (and, for a copy of an offer, its `to`), if anything.
pub fn found(pk: &str, sk: &str, to: Option<&str>) -> Option<Found> {
    let room = |prefix: &str| sk.strip_prefix(prefix).and_then(RoomId::parse);
    if let Some(id) = pk.strip_prefix(PUBLIC_PREFIX) {
        return Some(Found::Offer {
            to: PublicId::parse(id)?,
            room: room(ROOM_ENTRY_PREFIX)?,
        });
    }
    let who = PrivateIdHash::from_hex(pk.strip_prefix(USER_PREFIX)?)?;
    if let Some(room) = room(ROOM_ENTRY_PREFIX) {
        return Some(Found::Joined { who, room });
    }
    let (opened_at, room) = parse_offer_entry(sk)?;
    Some(Found::Copy {
        holder: who,
        to: PublicId::parse(to?)?,
        room,
        opened_at,
    })
}

/// One text for an item's two keys, as the embedded store keys its items and as item
/// dumps name them: `pk` alone for an [`ITEM`], else `pk` and `sk` around a space
/// (no key has one), so that a partition's items sort together, by `sk`.
pub fn storage_key(pk: &str, sk: &str) -> String {
    if sk == ITEM {
        pk.to_owned()
    } else {
        format!("{pk} {sk}")
    }
}

/// The creates from one (hashed) source address in one window.
pub fn address(hash: &str, window: u64) -> String {
    format!("{ADDRESS_PREFIX}{hash}#{window}")
}
