//! An identity's rooms: those it joined, and those others opened with its public id
//! (its inbox), newest activity first.

use crate::ids::{PrivateId, PublicId, PublicKey, RoomId};
use crate::ports::store::{InboxOffer, LastMessage, ListStore, StoreError};
use crate::rooms::RoomKey;
use crate::time::millis_of;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// How many offered rooms a list shows at most, the newest (by their latest connect)
/// first: a flood of connects to one public id cannot grow the list (nor the query
/// behind it) without bound, nor hide a new offer behind old ones.
pub const MAX_OFFERS: usize = 100;

/// One room of the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomEntry {
    pub room: RoomId,
    /// The other public id of the room's pair.
    pub peer: PublicId,
    /// The peer's username, once they connected to this identity's public id.
    pub peer_username: Option<String>,
    /// The peer's registered key, once they connected to this identity's public id (the
    /// opener of an offered room; the peer of a joined room once they joined too).
    pub peer_key: Option<PublicKey>,
    /// Whether this identity joined (connected); an offered room it has not joined is
    /// `false`.
    pub joined: bool,
    pub closed: bool,
    pub last_message_at: Option<String>,
    /// When the room last saw something: its newest message, or its join or offer.
    activity: String,
}

/// The list, and the inbox channel that announces new offers live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomList {
    pub inbox_channel: String,
    pub rooms: Vec<RoomEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum ListRoomsError {
    #[error("no user has this private id")]
    UnknownPrivateId,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One query: the identity's partition, where the projection (see
/// [`crate::projection`]) keeps the rooms it joined, copies of the rooms offered to its
/// public id, and each room's newest message. Offers made before the identity got its
/// public id are not shown: they were made to an id nobody held; nor are offers past
/// their `OFFER_TTL` (the table's TTL deletes them some time after).
pub async fn list_rooms<S: ListStore + ?Sized>(
    store: &S,
    key: &RoomKey,
    caller: &PrivateId,
    now: SystemTime,
) -> Result<RoomList, ListRoomsError> {
    let mine = store
        .rooms_of(&caller.hash(), MAX_OFFERS)
        .await?
        .ok_or(ListRoomsError::UnknownPrivateId)?;
    let me = mine.requester.member.public_id;
    let since = mine.requester.since.clone();
    let now_secs = millis_of(now) / 1000;
    // A message that has expired is not shown; nor, then, is any older one.
    let shown =
        |last: Option<LastMessage>| last.filter(|l| l.expires_at > now_secs).map(|l| l.sent_at);
    let mut rooms: BTreeMap<String, RoomEntry> = BTreeMap::new();
    for joined in mine.joined {
        rooms.insert(
            joined.room.to_string(),
            RoomEntry {
                closed: joined.closed,
                room: joined.room,
                peer: joined.peer,
                peer_username: None,
                peer_key: None,
                joined: true,
                last_message_at: shown(joined.last_message),
                activity: joined.joined_at,
            },
        );
    }
    let offers = mine
        .offers
        .into_iter()
        .filter(|o| o.to == me && o.offer.opened_at >= since)
        .filter(|o| o.offer.expires_at.is_none_or(|at| at > now_secs));
    // Copies come newest first; a room copied twice (a copy a lost change left behind)
    // is shown as its newest copy says.
    let mut seen = std::collections::BTreeSet::new();
    for InboxOffer {
        offer,
        last_message,
        ..
    } in offers
    {
        if !seen.insert(offer.room.to_string()) {
            continue;
        }
        let last_message_at = shown(last_message);
        match rooms.get_mut(offer.room.as_str()) {
            Some(entry) if entry.peer == offer.from.public_id => {
                entry.peer_username = Some(offer.from.username);
                entry.peer_key = offer.public_key;
                entry.activity = entry.activity.clone().max(offer.opened_at);
                entry.last_message_at = entry.last_message_at.clone().max(last_message_at);
            }
            // A room joined with an earlier public id of the peer: not this offer's.
            Some(_) => {}
            None => {
                rooms.insert(
                    offer.room.to_string(),
                    RoomEntry {
                        room: offer.room,
                        peer: offer.from.public_id,
                        peer_username: Some(offer.from.username),
                        peer_key: offer.public_key,
                        joined: false,
                        closed: false,
                        last_message_at,
                        activity: offer.opened_at,
                    },
                );
            }
        }
    }
    let mut rooms: Vec<RoomEntry> = rooms
        .into_values()
        .map(|mut entry| {
            if let Some(at) = &entry.last_message_at {
                entry.activity = entry.activity.clone().max(at.clone());
            }
            entry
        })
        .collect();
    rooms.sort_by(|a, b| b.activity.cmp(&a.activity));
    Ok(RoomList {
        inbox_channel: key.inbox_channel(me),
        rooms,
    })
}
