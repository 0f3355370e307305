//! Channel authorization: only a member of a room may subscribe to its private channel.

use crate::ids::{PrivateId, RoomId, SocketId};
use crate::ports::ChannelSigner;
use crate::ports::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    #[error("the caller is not a member of this room")]
    NotAMember,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One membership read, then the signer's `auth` value (signed locally).
pub async fn authorize_channel<S: Store + ?Sized, G: ChannelSigner + ?Sized>(
    store: &S,
    signer: &G,
    socket_id: &SocketId,
    room: &RoomId,
    caller: &PrivateId,
) -> Result<String, AuthorizeError> {
    store
        .room_member(room, &caller.hash())
        .await?
        .ok_or(AuthorizeError::NotAMember)?;
    Ok(signer.sign(socket_id, &room.channel()))
}
