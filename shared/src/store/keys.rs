//! The item keys both stores use (the SPEC's single-table layout).

use crate::domain::{PrivateIdHash, PublicId, RoomId};

pub(super) fn user_key(hash: &PrivateIdHash) -> String {
    format!("USER#{}", hash.to_hex())
}

pub(super) fn public_key(id: PublicId) -> String {
    format!("PUBLIC#{id}")
}

pub(super) fn room_key(room: &RoomId) -> String {
    format!("ROOM#{room}")
}
