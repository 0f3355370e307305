//! A kept message.

use super::*;

/// `ROOM#<roomId>` / `MSG#<cursor>`: a kept message, in its room's partition, until
/// `ttl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageItem {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub id: String,
    pub from: MemberEntry,
    pub message: String,
    pub sent_at: String,
    pub ttl: u64,
}

impl MessageItem {
    pub fn new(message: &KeptMessage, ttl: u64) -> Self {
        Self {
            kind: Kind::Message,
            id: message.id.clone(),
            from: MemberEntry::new(&message.from),
            message: message.message.clone(),
            sent_at: message.sent_at.clone(),
            ttl,
        }
    }

    /// The message as the history lists it; its sort key gives its place.
    pub fn kept(&self, sk: &str) -> Result<KeptMessage, StoreError> {
        let cursor = sk
            .strip_prefix(keys::MESSAGE_PREFIX)
            .and_then(Cursor::parse)
            .ok_or_else(|| corrupt(format!("bad message sort key {sk:?}")))?;
        Ok(KeptMessage {
            cursor,
            id: self.id.clone(),
            from: self.from.member()?,
            message: self.message.clone(),
            sent_at: self.sent_at.clone(),
        })
    }
}
