//! What the room lists are made of: a joined room, an offer, and the projection's copy
//! of an offer in its holder's partition.

use super::*;

/// `USER#<privateIdHash>` / `ROOM#<roomId>`: a room the user joined, with the public id
/// they connected to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinedItem {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub room_id: String,
    pub peer: String,
    pub joined_at: String,
    /// Since when the user held the public id they joined with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// When a member blocked the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
    #[serde(flatten)]
    pub last_message: LastMessageEntry,
}

impl JoinedItem {
    pub fn joined(&self) -> Result<Joined, StoreError> {
        Ok(Joined {
            room: parse_room(&self.room_id)?,
            peer: parse_public_id(&self.peer)?,
            joined_at: self.joined_at.clone(),
            since: self.since.clone(),
            closed: self.closed_at.is_some(),
            last_message: self.last_message.get(),
        })
    }
}

/// The room's newest message as the projection noted it on a list entry (joined, or
/// a copy of an offer).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastMessageEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message_ttl: Option<u64>,
}

impl LastMessageEntry {
    pub fn get(&self) -> Option<LastMessage> {
        Some(LastMessage {
            sent_at: self.last_message_at.clone()?,
            expires_at: self.last_message_ttl?,
        })
    }

    /// Whether `last` is to be noted here: the entry starts no later than it was sent
    /// (`since`), and notes nothing as new.
    pub fn takes(&self, since: Option<&str>, last: &LastMessage) -> bool {
        since.is_none_or(|since| since <= last.sent_at.as_str())
            && self
                .last_message_at
                .as_deref()
                .is_none_or(|at| at < last.sent_at.as_str())
    }

    pub fn set(&mut self, last: &LastMessage) {
        self.last_message_at = Some(last.sent_at.clone());
        self.last_message_ttl = Some(last.expires_at);
    }
}

/// `USER#<privateIdHash>` / `OFFER#<roomId>`: a room offered to the user's public id,
/// copied there by the projection, so that their room list is one query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxItem {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub room_id: String,
    /// The public id the room was offered to.
    pub to: String,
    /// When the user took `to`: messages from before are not theirs to see.
    pub since: String,
    pub from: MemberEntry,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    pub opened_at: String,
    /// The offer's expiry (the table's TTL attribute): the copy goes with the offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    #[serde(flatten)]
    pub last_message: LastMessageEntry,
}

impl InboxItem {
    pub fn new(to: PublicId, since: &str, offer: &Offer) -> Self {
        Self {
            kind: Kind::Inbox,
            room_id: offer.room.to_string(),
            to: to.to_string(),
            since: since.to_owned(),
            from: MemberEntry::new(&offer.from),
            public_key: offer.public_key.as_ref().map(ToString::to_string),
            opened_at: offer.opened_at.clone(),
            ttl: offer.expires_at,
            last_message: LastMessageEntry::default(),
        }
    }

    pub fn inbox_offer(&self) -> Result<InboxOffer, StoreError> {
        Ok(InboxOffer {
            offer: Offer {
                room: parse_room(&self.room_id)?,
                from: self.from.member()?,
                public_key: parse_public_key(self.public_key.as_deref())?,
                opened_at: self.opened_at.clone(),
                expires_at: self.ttl,
            },
            to: parse_public_id(&self.to)?,
            last_message: self.last_message.get(),
        })
    }
}

/// `PUBLIC#<publicId>` / `ROOM#<roomId>`: a room someone opened with the public id,
/// whether or not anybody holds it, as of their latest connect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferItem {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub room_id: String,
    pub from: MemberEntry,
    /// The opener's registered key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    pub opened_at: String,
    /// `OFFER_TTL` after `opened_at` (the table's TTL attribute); absent on offers made
    /// before offers expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
}

impl OfferItem {
    pub fn offer(&self) -> Result<Offer, StoreError> {
        Ok(Offer {
            room: parse_room(&self.room_id)?,
            from: self.from.member()?,
            public_key: parse_public_key(self.public_key.as_deref())?,
            opened_at: self.opened_at.clone(),
            expires_at: self.ttl,
        })
    }
}
