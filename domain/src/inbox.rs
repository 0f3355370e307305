//! An identity's rooms: those it joined, and those others opened with its public id
//! (its inbox), newest activity first.

use crate::history::{Cursor, history_start};
use crate::ids::{PrivateId, PublicId, PublicKey, RoomId};
use crate::ports::store::{Store, StoreError};
use crate::rooms::RoomKey;
use crate::time::millis_of;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// How many offered rooms a list shows at most: a flood of connects to one public id
/// cannot grow the list (nor the query behind it) without bound.
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
    /// Where this identity's history in the room starts.
    from: Cursor,
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

/// Two queries (the identity's partition, its public id's offers), then one query per
/// listed room for its newest message. Offers from before the identity got its public
/// id are not shown: they were made to an id nobody held.
pub async fn list_rooms<S: Store + ?Sized>(
    store: &S,
    key: &RoomKey,
    caller: &PrivateId,
    now: SystemTime,
) -> Result<RoomList, ListRoomsError> {
    let mine = store
        .rooms_of(&caller.hash())
        .await?
        .ok_or(ListRoomsError::UnknownPrivateId)?;
    let me = mine.requester.member.public_id;
    let since = mine.requester.since.clone();
    let now_millis = millis_of(now);
    let offers = store.offers(me, MAX_OFFERS).await?;
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
                last_message_at: None,
                activity: joined.joined_at,
                // Joined with an earlier public id: the history from back then.
                from: history_start(joined.since.as_deref(), now_millis),
            },
        );
    }
    for offer in offers.into_iter().filter(|o| o.opened_at >= since) {
        match rooms.get_mut(offer.room.as_str()) {
            Some(entry) if entry.peer == offer.from.public_id => {
                entry.peer_username = Some(offer.from.username);
                entry.peer_key = offer.public_key;
                entry.activity = entry.activity.clone().max(offer.opened_at);
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
                        last_message_at: None,
                        activity: offer.opened_at,
                        from: history_start(Some(&since), now_millis),
                    },
                );
            }
        }
    }
    let now_secs = now_millis / 1000;
    let mut rooms: Vec<RoomEntry> = rooms.into_values().collect();
    let latest = futures_util::future::join_all(
        rooms
            .iter()
            .map(|entry| store.last_message_at(&entry.room, &entry.from, now_secs)),
    )
    .await;
    for (entry, latest) in rooms.iter_mut().zip(latest) {
        if let Some(at) = latest? {
            entry.activity = entry.activity.clone().max(at.clone());
            entry.last_message_at = Some(at);
        }
    }
    rooms.sort_by(|a, b| b.activity.cmp(&a.activity));
    Ok(RoomList {
        inbox_channel: key.inbox_channel(me),
        rooms,
    })
}
