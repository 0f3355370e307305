//! Blocking a room: closed for good, for both.

use super::*;

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// An unknown room and a room the caller is not in answer alike.
    #[error("room not found")]
    RoomNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Close `room` for good, for both members: one membership read (which also names the
/// peer), one transaction. Blocking a closed room again changes nothing. A room only
/// offered to the caller is blocked without joining it ([`block_offered`]).
pub async fn block_room<S: UserStore + RoomStore + ListStore + ?Sized>(
    store: &S,
    room: &RoomId,
    caller: &PrivateId,
    now: SystemTime,
) -> Result<(), BlockError> {
    let me = caller.hash();
    // Read again when the peer joined between the read and the close (once is plenty:
    // a room has two members at most).
    for _ in 0..2 {
        let Some(membership) = store.room_member(room, &me).await? else {
            return block_offered(store, room, &me, now).await;
        };
        if membership.closed {
            return Ok(());
        }
        // The room leaves the blocker's inbox, and the peer's too when the peer never
        // joined: an offer there could only be refused.
        let mut inboxes = vec![membership.member.public_id];
        if membership.peer.is_none() {
            inboxes.extend(membership.peer_id);
        }
        let closed = store
            .close_room(room, &me, &inboxes, membership.peer.as_ref(), &rfc3339(now))
            .await?;
        if closed {
            return Ok(());
        }
    }
    Err(BlockError::Store(StoreError::Unavailable(anyhow::anyhow!(
        "the room's members kept changing while it was being closed"
    ))))
}

/// SPEC v3: the holder of a public id blocks a room only offered to it, without joining
/// it: closed for good for its opener (as any block), the offer gone from the holder's
/// list, and nothing counted against the holder's room cap. The caller's own user item
/// and the offer to their public id are read (their own request: what they hold may
/// shape it), then the room and its member, then one close. A room neither joined nor
/// offered answers as an unknown one.
async fn block_offered<S: UserStore + RoomStore + ListStore + ?Sized>(
    store: &S,
    room: &RoomId,
    me: &crate::ids::PrivateIdHash,
    now: SystemTime,
) -> Result<(), BlockError> {
    let mine = store
        .member_for_connect(me)
        .await?
        .ok_or(BlockError::RoomNotFound)?
        .member
        .public_id;
    let offer = store
        .offer(mine, room)
        .await?
        .ok_or(BlockError::RoomNotFound)?;
    for _ in 0..2 {
        let members = store
            .room_members(room)
            .await?
            .ok_or(BlockError::RoomNotFound)?;
        let Some((opener, _)) = members
            .iter()
            .find(|(_, m)| m.public_id == offer.from.public_id)
        else {
            return Err(BlockError::RoomNotFound);
        };
        // The opener's entries close, as a member's do in any block; the offer leaves the
        // caller's inbox. Refused (and read again) if somebody joined the other side since.
        let closed = store
            .close_room(room, opener, &[mine], None, &rfc3339(now))
            .await?;
        if closed {
            return Ok(());
        }
    }
    Err(BlockError::Store(StoreError::Unavailable(anyhow::anyhow!(
        "the room's members kept changing while it was being closed"
    ))))
}
