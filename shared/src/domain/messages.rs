//! Messages: validated text, published to the room's channel for its members.

use super::ids::{PrivateId, RoomId};
use super::time::now_rfc3339;
use crate::realtime::{Realtime, RealtimeError};
use crate::store::{Store, StoreError};
use serde::Serialize;

/// A non-empty UTF-8 text of at most [`Message::MAX_BYTES`] bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("the message is empty")]
    Empty,
    #[error("the message is {0} bytes; the limit is {max}", max = Message::MAX_BYTES)]
    TooLong(usize),
}

impl Message {
    /// Pusher caps an event at 10 KB; this leaves room for the envelope and JSON escaping.
    pub const MAX_BYTES: usize = 4096;

    pub fn parse(text: String) -> Result<Self, MessageError> {
        if text.trim().is_empty() {
            Err(MessageError::Empty)
        } else if text.len() > Self::MAX_BYTES {
            Err(MessageError::TooLong(text.len()))
        } else {
            Ok(Self(text))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The event name messages are published under.
pub const MESSAGE_EVENT: &str = "message";

/// The data of a `message` event, as subscribers receive it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageEvent<'a> {
    pub id: String,
    pub room_id: &'a str,
    pub from: Sender<'a>,
    pub message: &'a str,
    pub sent_at: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sender<'a> {
    pub public_id: String,
    pub username: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// An unknown room and a room the sender is not in answer alike.
    #[error("room not found")]
    RoomNotFound,
    #[error(transparent)]
    Realtime(#[from] RealtimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// One membership read, one publish.
pub async fn send_message(
    store: &dyn Store,
    realtime: &dyn Realtime,
    room: &RoomId,
    sender: &PrivateId,
    message: &Message,
) -> Result<(), SendError> {
    let member = store
        .room_member(room, &sender.hash())
        .await?
        .ok_or(SendError::RoomNotFound)?;
    let event = MessageEvent {
        id: crate::random::hex(16)?,
        room_id: room.as_str(),
        from: Sender {
            public_id: member.public_id.to_string(),
            username: &member.username,
        },
        message: message.as_str(),
        sent_at: now_rfc3339(),
    };
    let data = serde_json::to_string(&event).map_err(anyhow::Error::from)?;
    realtime
        .publish(&room.channel(), MESSAGE_EVENT, &data)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_bounded_in_bytes_not_chars() {
        assert_eq!(Message::parse(String::new()), Err(MessageError::Empty));
        assert_eq!(Message::parse(" \n\t".into()), Err(MessageError::Empty));
        assert!(Message::parse("a".repeat(4096)).is_ok());
        assert_eq!(
            Message::parse("a".repeat(4097)),
            Err(MessageError::TooLong(4097))
        );
        // 1366 three-byte characters are 4098 bytes.
        assert_eq!(
            Message::parse("€".repeat(1366)),
            Err(MessageError::TooLong(4098))
        );
        assert!(Message::parse("€".repeat(1365)).is_ok());
    }
}
