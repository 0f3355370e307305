//! Channel authorization: only a member of a room may subscribe to its private channel.

use crate::ids::{PrivateId, RoomId, SocketId};
use crate::ports::ChannelSigner;
use crate::ports::store::{RoomStore, StoreError, UserStore};
use crate::rooms::RoomKey;

#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    #[error("the caller is not a member of this room")]
    NotAMember,
    /// A member blocked the room: no new subscriptions.
    #[error("the room is closed")]
    RoomClosed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One membership read, then the signer's `auth` value (signed locally).
pub async fn authorize_channel<S: UserStore + RoomStore + ?Sized, G: ChannelSigner + ?Sized>(
    store: &S,
    signer: &G,
    socket_id: &SocketId,
    room: &RoomId,
    caller: &PrivateId,
) -> Result<String, AuthorizeError> {
    let membership = store
        .room_member(room, &caller.hash())
        .await?
        .ok_or(AuthorizeError::NotAMember)?;
    if membership.closed {
        return Err(AuthorizeError::RoomClosed);
    }
    Ok(signer.sign(socket_id, &room.channel()))
}

/// One read of the caller's own user item, then the signer's `auth` value: only the
/// current holder of a public id may listen on its inbox channel (a retired id's
/// channel has no listener left).
pub async fn authorize_inbox<S: UserStore + ?Sized, G: ChannelSigner + ?Sized>(
    store: &S,
    signer: &G,
    key: &RoomKey,
    socket_id: &SocketId,
    channel: &str,
    caller: &PrivateId,
) -> Result<String, AuthorizeError> {
    let holder = store
        .member_for_connect(&caller.hash())
        .await?
        .ok_or(AuthorizeError::NotAMember)?;
    if key.inbox_channel(holder.member.public_id) != channel {
        return Err(AuthorizeError::NotAMember);
    }
    Ok(signer.sign(socket_id, channel))
}
