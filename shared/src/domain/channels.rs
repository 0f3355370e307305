//! Channel authorization: only a member of a room may subscribe to its private channel.

use super::ids::{PrivateId, RoomId};
use crate::realtime::pusher::{ChannelAuth, PusherCredentials, SocketId};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    #[error("the caller is not a member of this room")]
    NotAMember,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One membership read; the signature itself is local.
pub async fn authorize_channel<S: Store + ?Sized>(
    store: &S,
    credentials: &PusherCredentials,
    socket_id: &SocketId,
    room: &RoomId,
    caller: &PrivateId,
) -> Result<ChannelAuth, AuthorizeError> {
    store
        .room_member(room, &caller.hash())
        .await?
        .ok_or(AuthorizeError::NotAMember)?;
    Ok(credentials.authorize(socket_id, &room.channel()))
}
