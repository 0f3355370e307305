//! Rooms: derived ids, decoys for unknown public ids, and connecting two users.

use crate::ids::{PrivateId, PrivateIdHash, PublicId, RoomId};
use crate::ports::store::{JoinError, Member, Store, StoreError};
use crate::time::rfc3339;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::time::SystemTime;

type HmacSha256 = Hmac<Sha256>;

// Domain separation: a room id and a decoy id can never be the same MAC input.
const ROOM_DOMAIN: &[u8] = b"secret-rooms/v1/room\0";
const DECOY_DOMAIN: &[u8] = b"secret-rooms/v1/decoy\0";

/// The server-side key behind room ids. Without it nobody can compute or invert one.
#[derive(Clone)]
pub struct RoomKey(Vec<u8>);

impl RoomKey {
    pub const MIN_LEN: usize = 32;

    /// `None` when shorter than [`Self::MIN_LEN`] bytes.
    pub fn new(key: impl Into<Vec<u8>>) -> Option<Self> {
        let key = key.into();
        (key.len() >= Self::MIN_LEN).then_some(Self(key))
    }

    fn mac(&self, parts: &[&[u8]]) -> RoomId {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match HmacSha256::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
        };
        for part in parts {
            mac.update(part);
        }
        RoomId::from_mac(mac.finalize().into_bytes().into())
    }

    /// The room of two users: the same whichever of them asks.
    pub fn room_for(&self, a: &PrivateIdHash, b: &PrivateIdHash) -> RoomId {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        self.mac(&[ROOM_DOMAIN, lo.as_bytes(), hi.as_bytes()])
    }

    /// The decoy room a requester gets for a public id that nobody holds: the same on
    /// every retry, and indistinguishable from a real room id.
    pub fn decoy_for(&self, requester: &PrivateIdHash, target: PublicId) -> RoomId {
        self.mac(&[
            DECOY_DOMAIN,
            requester.as_bytes(),
            target.to_string().as_bytes(),
        ])
    }
}

impl fmt::Debug for RoomKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RoomKey(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("a user cannot connect to their own public id")]
    CannotConnectToSelf,
    #[error("no user has this private id")]
    UnknownPrivateId,
    /// The requester is in [`MAX_ROOMS`] rooms already.
    #[error("already in {MAX_ROOMS} rooms")]
    TooManyRooms,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many rooms (decoys included) one identity may join. It bounds the user item,
/// which lists them and which every message of the user rewrites, and how many people
/// one identity can reach by trying public ids; a new identity is one request away.
pub const MAX_ROOMS: usize = 100;

/// Connect the holder of `requester` to the owner of `target`.
///
/// Two round trips whether or not `target` exists (one read of both items, one
/// transaction writing the room and adding it to the requester's rooms), so that
/// neither the answer nor its cost tells whether the id is taken.
pub async fn connect<S: Store + ?Sized>(
    store: &S,
    key: &RoomKey,
    requester: &PrivateId,
    target: PublicId,
    now: SystemTime,
) -> Result<RoomId, ConnectError> {
    let me = requester.hash();
    let found = store.lookup_for_connect(&me, target).await?;
    let my_member = found.requester.ok_or(ConnectError::UnknownPrivateId)?;
    let (room, members) = match found.target {
        Some(peer) if peer.owner == me => return Err(ConnectError::CannotConnectToSelf),
        Some(peer) => {
            let peer_member = Member {
                public_id: target,
                username: peer.username,
            };
            let room = key.room_for(&me, &peer.owner);
            (room, vec![(me, my_member), (peer.owner, peer_member)])
        }
        None => (key.decoy_for(&me, target), vec![(me, my_member)]),
    };
    match store
        .join_room(&room, &members, &me, MAX_ROOMS, &rfc3339(now))
        .await
    {
        Ok(()) => Ok(room),
        Err(JoinError::TooManyRooms) => Err(ConnectError::TooManyRooms),
        // Connect read the user item just before, and users are never deleted: a broken
        // table, answered 500 with the detail in the log.
        Err(JoinError::NoSuchJoiner) => Err(ConnectError::Store(StoreError::Other(
            anyhow::anyhow!("the requester's user item vanished between its read and the join"),
        ))),
        Err(JoinError::Store(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RoomKey {
        RoomKey::new(*b"0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(RoomKey::new(vec![0u8; 31]).is_none());
        assert!(RoomKey::new(vec![0u8; 32]).is_some());
    }

    #[test]
    fn room_id_is_symmetric_keyed_and_channel_safe() {
        let a = PrivateId::generate().unwrap().hash();
        let b = PrivateId::generate().unwrap().hash();
        let room = key().room_for(&a, &b);
        assert_eq!(room, key().room_for(&b, &a));
        assert_ne!(room, key().room_for(&a, &a));
        let other_key = RoomKey::new(vec![9u8; 32]).unwrap();
        assert_ne!(room, other_key.room_for(&a, &b));
        assert_eq!(RoomId::parse(room.as_str()), Some(room.clone()));
        assert!(
            room.channel().len() <= 164,
            "Pusher caps channel names at 164 chars"
        );
    }

    #[test]
    fn room_id_matches_an_independent_hmac() {
        // Computed with Python: hmac.new(key, b"secret-rooms/v1/room\0" + lo + hi, sha256),
        // base64url without padding, where lo/hi are the sorted 32-byte hashes 0x01.. and 0x02...
        let lo = PrivateIdHash::from_hex(&"01".repeat(32)).unwrap();
        let hi = PrivateIdHash::from_hex(&"02".repeat(32)).unwrap();
        assert_eq!(key().room_for(&hi, &lo).as_str(), ROOM_VECTOR);
    }

    const ROOM_VECTOR: &str = "1746FlyerVQcd3bDv0_Sm7NNLG5DCnX-sdnHjlbRowQ";

    #[test]
    fn decoys_are_deterministic_and_differ_from_rooms() {
        let a = PrivateId::generate().unwrap().hash();
        let t = PublicId::parse("123-456").unwrap();
        let d = key().decoy_for(&a, t);
        assert_eq!(d, key().decoy_for(&a, t));
        assert_ne!(d, key().decoy_for(&a, PublicId::parse("123-457").unwrap()));
        assert_ne!(d, key().room_for(&a, &a));
    }
}
