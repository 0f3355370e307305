//! The room list's projection: what a room list shows, kept in the lister's own
//! partition, so that a list is one query.
//!
//! A message is seen by two writes only (the sender's counted update and the kept
//! message), and an offer is written under the public id it was made to, which connect
//! may not look up (its writes must not depend on who holds the target). So the room
//! list cannot be read from one partition unless something copies these facts there
//! after the fact: on AWS, a function fed by the table's DynamoDB stream; on the
//! embedded store, a worker fed by an outbox the writes fill. Both apply these
//! [`Change`]s with [`project`].
//!
//! **Holder independence** (SPEC v3, ARCHITECTURE.md): what [`project`] does for a
//! change caused by one identity's request never depends on whether another public id
//! has a holder. Each change makes the same calls in the same order with arguments of
//! the same size whoever holds the public ids it concerns: where a holder's partition
//! would be written, an id nobody holds (never used, or retired) has its writes go to
//! [`PrivateIdHash::unheld`], a partition nobody reads. What differs is a key, never
//! the work, so neither the stream's lag nor the embedded worker's can tell a stranger
//! whether an id is held. Only a change of the holder's own (joining, rotating) does
//! work that depends on them.
//!
//! Every step is idempotent and converges whatever the order of the changes: a noted
//! message only ever moves forward, and a change that finds an entry missing (a join or
//! an offer not projected yet) is made up for when that entry's own change comes, which
//! notes the room's newest message itself.

use crate::ids::{PrivateIdHash, PublicId, RoomId};
use crate::ports::store::{
    LastMessage, ListEntry, ListStore, Listed, MessageStore, StoreError, UserStore,
};

/// What a room's start is for an id nobody holds: every message is after it, so that
/// an unheld id's copy notes what a holder's would.
pub const UNHELD_SINCE: &str = "1970-01-01T00:00:00.000Z";

/// A write the room lists depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A message was kept in `room`.
    MessageKept { room: RoomId, last: LastMessage },
    /// `room` was offered to `to` (first, or again: the offer was rewritten, and
    /// `replaced` is when it was made before, whose copy goes).
    Offered {
        to: PublicId,
        room: RoomId,
        replaced: Option<String>,
    },
    /// The offer of `room` to `to`, made at `opened_at`, was deleted (a block, or it
    /// expired).
    OfferDeleted {
        to: PublicId,
        room: RoomId,
        opened_at: String,
    },
    /// `who` joined `room`.
    Joined { who: PrivateIdHash, room: RoomId },
    /// The public id `id`, which `holder` held, was retired (a rotation).
    Retired { id: PublicId, holder: PrivateIdHash },
}

/// Whose partition lists what is offered to `to`, and since when: its holder's, or
/// the unheld partition of `to`. One read, whoever holds `to`.
async fn lister<S: UserStore + ?Sized>(
    store: &S,
    to: PublicId,
) -> Result<(PrivateIdHash, String), StoreError> {
    Ok(match store.get_public(to).await? {
        Some(holder) => (holder.owner, holder.since),
        None => (PrivateIdHash::unheld(to), UNHELD_SINCE.to_owned()),
    })
}

/// Bring the room lists that `change` concerns up to date.
pub async fn project<S: UserStore + MessageStore + ListStore + ?Sized>(
    store: &S,
    change: &Change,
) -> Result<(), StoreError> {
    match change {
        Change::MessageKept { room, last } => {
            let Some(audience) = store.audience(room).await? else {
                return Ok(());
            };
            // One entry per side: its member's, or the offer's in the partition of the
            // side's public id (at most two writes a message). Which of the two a side
            // gets changes only when somebody joins it: the holder's own request.
            for side in &audience.sides {
                match side {
                    Listed::Member(member) => {
                        store
                            .note_message(member, room, ListEntry::Joined, last)
                            .await?;
                    }
                    Listed::Offered { to, opened_at } => {
                        let (owner, _) = lister(store, *to).await?;
                        // (A room from before offers were keyed by time: its copy is
                        // made again by a reprojection, which notes the message.)
                        let Some(opened_at) = opened_at else { continue };
                        let entry = ListEntry::Offered { opened_at };
                        store.note_message(&owner, room, entry, last).await?;
                    }
                }
            }
        }
        Change::Offered { to, room, replaced } => {
            let (owner, since) = lister(store, *to).await?;
            // The copy of the offer as it was goes first, whatever comes next: its key
            // is its time, so the list reads the newest offers first.
            if let Some(replaced) = replaced {
                store.drop_offer(&owner, *to, room, replaced).await?;
            }
            let Some(offer) = store.offer(*to, room).await? else {
                return Ok(()); // Deleted since (the opener's block): its change follows.
            };
            // Copied even when made before the holder took the id (a list does not
            // show it): whether it is copied must not depend on the holder.
            let newest = store.newest_message(room).await?;
            let last = newest.filter(|last| last.sent_at >= since);
            store
                .copy_offer(&owner, *to, &since, &offer, last.as_ref())
                .await?;
        }
        Change::OfferDeleted {
            to,
            room,
            opened_at,
        } => {
            let (owner, _) = lister(store, *to).await?;
            store.drop_offer(&owner, *to, room, opened_at).await?;
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
async fn note_newest<S: MessageStore + ListStore + ?Sized>(
    store: &S,
    who: &PrivateIdHash,
    room: &RoomId,
    entry: ListEntry<'_>,
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
    /// `holder`'s copy of `room` offered to `to` at `opened_at` (empty for a copy from
    /// before copies were keyed by time).
    Copy {
        holder: PrivateIdHash,
        to: PublicId,
        room: RoomId,
        opened_at: String,
    },
}

/// Project `found` again, as if just written, and drop a copy whose offer is gone or
/// whose holder no longer holds its public id: a pass over every item rebuilds the room
/// lists of a table from before the projection, or after changes it lost.
pub async fn reproject<S: UserStore + MessageStore + ListStore + ?Sized>(
    store: &S,
    found: &Found,
) -> Result<(), StoreError> {
    match found {
        Found::Offer { to, room } => {
            // An operator's pass, not a request: it copies an offer only where a list
            // could show it.
            if let Some(holder) = store.get_public(*to).await?
                && let Some(offer) = store.offer(*to, room).await?
                && offer.opened_at >= holder.since
            {
                let newest = store.newest_message(room).await?;
                let last = newest.filter(|last| last.sent_at >= holder.since);
                store
                    .copy_offer(&holder.owner, *to, &holder.since, &offer, last.as_ref())
                    .await?;
            }
            Ok(())
        }
        Found::Joined { who, room } => {
            let change = Change::Joined {
                who: *who,
                room: room.clone(),
            };
            project(store, &change).await
        }
        Found::Copy {
            holder,
            to,
            room,
            opened_at,
        } => {
            // Kept only where a list could show it: its holder holds the id, and the
            // offer is there as copied and not older than the holder's id. (Copies in an
            // unheld id's partition are never read: they go too, and so do copies of an
            // offer made again since.)
            let kept = match store.get_public(*to).await? {
                Some(h) if h.owner == *holder => {
                    store.offer(*to, room).await?.is_some_and(|offer| {
                        offer.opened_at >= h.since && offer.opened_at == *opened_at
                    })
                }
                _ => false,
            };
            if !kept {
                store.drop_offer(holder, *to, room, opened_at).await?;
            }
            Ok(())
        }
    }
}
