//! The room list's projection: what a room list shows, kept in the lister's own
//! partition, so that a list is one query.
//!
//! A message is seen by two writes only (the sender's counted update and the kept
//! message), and an offer is written under the public id it was made to, which connect
//! may not look up (its writes must not depend on who holds the target). So the room
//! list cannot be read from one partition unless something copies these facts there
//! after the fact: on AWS, a function fed by the table's DynamoDB stream; on the
//! embedded store, the store itself, right after each write. Both apply these
//! [`Change`]s with [`project`].
//!
//! Every step is idempotent and converges whatever the order of the changes: a noted
//! message only ever moves forward, and a change that finds an entry missing (a join or
//! an offer not projected yet) is made up for when that entry's own change comes, which
//! notes the room's newest message itself.

use crate::ids::{PrivateIdHash, PublicId, RoomId};
use crate::ports::store::{LastMessage, ListEntry, Store, StoreError};

/// A write the room lists depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A message was kept in `room`.
    MessageKept { room: RoomId, last: LastMessage },
    /// `room` was offered to `to` (first, or again: the offer was rewritten).
    Offered { to: PublicId, room: RoomId },
    /// The offer of `room` to `to` was deleted (a block).
    OfferDeleted { to: PublicId, room: RoomId },
    /// `who` joined `room`.
    Joined { who: PrivateIdHash, room: RoomId },
    /// The public id `id`, which `holder` held, was retired (a rotation).
    Retired { id: PublicId, holder: PrivateIdHash },
}

/// Bring the room lists that `change` concerns up to date.
pub async fn project<S: Store + ?Sized>(store: &S, change: &Change) -> Result<(), StoreError> {
    match change {
        Change::MessageKept { room, last } => {
            let Some(audience) = store.audience(room).await? else {
                return Ok(());
            };
            for member in &audience.members {
                store
                    .note_message(member, room, ListEntry::Joined, last)
                    .await?;
            }
            // The copies of the room's offers, joined or not: what a list shows does not
            // depend on which entry noted a message first.
            for to in &audience.pair {
                if let Some(holder) = store.get_public(*to).await? {
                    store
                        .note_message(&holder.owner, room, ListEntry::Offered, last)
                        .await?;
                }
            }
        }
        Change::Offered { to, room } => {
            let Some(holder) = store.get_public(*to).await? else {
                return Ok(()); // Nobody holds the id: nobody lists the offer.
            };
            let Some(offer) = store.offer(*to, room).await? else {
                return Ok(()); // Deleted since; its own change drops any copy.
            };
            // Made before the holder took the id: a list never shows it.
            if offer.opened_at < holder.since {
                return Ok(());
            }
            // Refused once the holder no longer holds the id: a rotation's change,
            // wherever it stands in the stream, then finds no copy left behind.
            store
                .copy_offer(&holder.owner, *to, &holder.since, &offer)
                .await?;
            note_newest(store, &holder.owner, room, ListEntry::Offered).await?;
        }
        Change::OfferDeleted { to, room } => {
            if let Some(holder) = store.get_public(*to).await? {
                store.drop_offer(&holder.owner, *to, room).await?;
            }
        }
        Change::Joined { who, room } => {
            note_newest(store, who, room, ListEntry::Joined).await?;
        }
        Change::Retired { id, holder } => store.drop_offers_to(holder, *id).await?,
    }
    Ok(())
}

/// Note the room's newest message on a new entry: messages kept before the entry was
/// there found nothing to note.
async fn note_newest<S: Store + ?Sized>(
    store: &S,
    who: &PrivateIdHash,
    room: &RoomId,
    entry: ListEntry,
) -> Result<(), StoreError> {
    match store.newest_message(room).await? {
        Some(last) => store.note_message(who, room, entry, &last).await,
        None => Ok(()),
    }
}

/// An item the room lists derive from, as a pass over a whole table finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// `room` offered to `to`.
    Offer { to: PublicId, room: RoomId },
    /// `who`'s entry of a room they joined.
    Joined { who: PrivateIdHash, room: RoomId },
    /// `holder`'s copy of `room` offered to `to`.
    Copy {
        holder: PrivateIdHash,
        to: PublicId,
        room: RoomId,
    },
}

/// Project `found` again, as if just written, and drop a copy whose offer is gone or
/// whose holder no longer holds its public id: a pass over every item rebuilds the room
/// lists of a table from before the projection, or after changes it lost.
pub async fn reproject<S: Store + ?Sized>(store: &S, found: &Found) -> Result<(), StoreError> {
    match found {
        Found::Offer { to, room } => {
            let change = Change::Offered {
                to: *to,
                room: room.clone(),
            };
            project(store, &change).await
        }
        Found::Joined { who, room } => {
            let change = Change::Joined {
                who: *who,
                room: room.clone(),
            };
            project(store, &change).await
        }
        Found::Copy { holder, to, room } => {
            // Kept only while `project` would make it: its holder holds the id, and the
            // offer is there and not older than the holder's id.
            let kept = match store.get_public(*to).await? {
                Some(h) if h.owner == *holder => store
                    .offer(*to, room)
                    .await?
                    .is_some_and(|offer| offer.opened_at >= h.since),
                _ => false,
            };
            if !kept {
                store.drop_offer(holder, *to, room).await?;
            }
            Ok(())
        }
    }
}
