//! The one table's items, as both stores keep them and the local server's `invariants`
//! check reads them: the keys,
//! the attribute names and a typed item per kind. The embedded store keeps each item as
//! its JSON; the DynamoDB store converts the same JSON to attribute values
//! (`dynamodb::codec`), so both stores hold the very same attributes.

use crate::domain::RoomId;
use crate::domain::history::Cursor;
use crate::domain::ports::{
    Audience, InboxOffer, Joined, KeptMessage, LastMessage, Listed, Member, Membership, Offer,
    PublicEntry, Requester, StoreError, UserRecord,
};
use crate::domain::rooms::Side;
use crate::domain::{PrivateIdHash, PublicId, PublicKey};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Item keys: the partition key `pk` and the sort key `sk`.
pub mod keys {
    use crate::domain::history::Cursor;
    use crate::domain::projection::Found;
    use crate::domain::{PrivateIdHash, PublicId, RoomId};

    /// The sort key of an item that stands alone under its partition key (a user, a
    /// public id's marker, a room, a counter).
    pub const ITEM: &str = "_";
    /// The sort keys of a room's kept messages start so.
    pub const MESSAGE_PREFIX: &str = "MSG#";
    /// The sort keys of rooms in a user's partition (joined) and in a public id's
    /// (offered) start so.
    pub const ROOM_ENTRY_PREFIX: &str = "ROOM#";
    /// The sort keys of the copies of offers in a user's partition start so (they sort
    /// before the joined rooms, which sort before the user item).
    pub const OFFER_ENTRY_PREFIX: &str = "OFFER#";

    /// A room's entry in a user's or a public id's partition.
    pub fn room_entry(room: &RoomId) -> String {
        format!("{ROOM_ENTRY_PREFIX}{room}")
    }

    /// The copy of a room's offer, made at `opened_at`, in its holder's partition: by
    /// time, so that a list reads the newest first. (An empty `opened_at` names a copy
    /// from before copies were keyed by time, `OFFER#<roomId>`.)
    pub fn offer_entry(opened_at: &str, room: &RoomId) -> String {
        if opened_at.is_empty() {
            format!("{OFFER_ENTRY_PREFIX}{room}")
        } else {
            format!("{OFFER_ENTRY_PREFIX}{opened_at}#{room}")
        }
    }

    /// When a copy's offer was made, and its room, from the copy's sort key (see
    /// [`offer_entry`]).
    pub fn parse_offer_entry(sk: &str) -> Option<(String, RoomId)> {
        let rest = sk.strip_prefix(OFFER_ENTRY_PREFIX)?;
        match rest.rsplit_once('#') {
            Some((opened_at, room)) => Some((opened_at.to_owned(), RoomId::parse(room)?)),
            None => Some((String::new(), RoomId::parse(rest)?)),
        }
    }

    pub const USER_PREFIX: &str = "USER#";
    pub const PUBLIC_PREFIX: &str = "PUBLIC#";
    pub const ROOM_PREFIX: &str = "ROOM#";
    pub const ADDRESS_PREFIX: &str = "ADDR#";
    /// The atomic counter behind users' increasing numeric ids.
    pub const USER_COUNTER: &str = "COUNTER#users";
    /// Read at start-up to open the connection; no item is ever stored there.
    pub const WARM_UP: &str = "WARMUP";

    pub fn user(hash: &PrivateIdHash) -> String {
        format!("{USER_PREFIX}{}", hash.to_hex())
    }

    pub fn public(id: PublicId) -> String {
        format!("{PUBLIC_PREFIX}{id}")
    }

    pub fn room(room: &RoomId) -> String {
        format!("{ROOM_PREFIX}{room}")
    }

    /// A kept message's sort key, in its room's partition: ordered by time, then id.
    pub fn message(cursor: &Cursor) -> String {
        format!("{MESSAGE_PREFIX}{cursor}")
    }

    /// What the room lists' projection derives from an item with keys `pk` and `sk`
    /// (and, for a copy of an offer, its `to`), if anything.
    pub fn found(pk: &str, sk: &str, to: Option<&str>) -> Option<Found> {
        let room = |prefix: &str| sk.strip_prefix(prefix).and_then(RoomId::parse);
        if let Some(id) = pk.strip_prefix(PUBLIC_PREFIX) {
            return Some(Found::Offer {
                to: PublicId::parse(id)?,
                room: room(ROOM_ENTRY_PREFIX)?,
            });
        }
        let who = PrivateIdHash::from_hex(pk.strip_prefix(USER_PREFIX)?)?;
        if let Some(room) = room(ROOM_ENTRY_PREFIX) {
            return Some(Found::Joined { who, room });
        }
        let (opened_at, room) = parse_offer_entry(sk)?;
        Some(Found::Copy {
            holder: who,
            to: PublicId::parse(to?)?,
            room,
            opened_at,
        })
    }

    /// One text for an item's two keys, as the embedded store keys its items and as item
    /// dumps name them: `pk` alone for an [`ITEM`], else `pk` and `sk` around a space
    /// (no key has one), so that a partition's items sort together, by `sk`.
    pub fn storage_key(pk: &str, sk: &str) -> String {
        if sk == ITEM {
            pk.to_owned()
        } else {
            format!("{pk} {sk}")
        }
    }

    /// The creates from one (hashed) source address in one window.
    pub fn address(hash: &str, window: u64) -> String {
        format!("{ADDRESS_PREFIX}{hash}#{window}")
    }
}

/// Attribute names, for the DynamoDB store's expressions; the typed items below carry
/// the same names (a test checks each one).
pub mod attr {
    pub const PK: &str = "pk";
    pub const SK: &str = "sk";
    pub const TYPE: &str = "type";
    pub const ID: &str = "id";
    pub const PUBLIC_ID: &str = "publicId";
    pub const PRIVATE_ID_HASH: &str = "privateIdHash";
    pub const USERNAME: &str = "username";
    pub const CREATED_AT: &str = "createdAt";
    pub const UPDATED_AT: &str = "updatedAt";
    pub const ROOMS: &str = "rooms";
    /// How many rooms a user ever joined.
    pub const JOINS: &str = "joins";
    /// v1 rooms: private-id hash -> member. v2 rooms keep one attribute per side.
    pub const MEMBERS: &str = "members";
    /// The member holding the lower public id of a room's pair (by text).
    pub const LOW: &str = "low";
    /// The member holding the higher public id of a room's pair.
    pub const HIGH: &str = "high";
    pub const VALUE: &str = "value";
    /// Creates counted from one address in one window.
    pub const COUNT: &str = "count";
    /// When DynamoDB may delete the item (seconds since the epoch; the table's TTL
    /// attribute).
    pub const TTL: &str = "ttl";
    /// When a member blocked a room (on the room, and on its members' joined entries).
    pub const CLOSED_AT: &str = "closedAt";
    /// When a member's identity was created (a room keeps it per side).
    pub const SINCE: &str = "since";
    pub const MESSAGE: &str = "message";
    pub const FROM: &str = "from";
    pub const SENT_AT: &str = "sentAt";
    /// A user's registered X25519 key (and, on an offer, the opener's).
    pub const PUBLIC_KEY: &str = "publicKey";
    /// When a user got their current public id (absent: at `createdAt`).
    pub const PUBLIC_ID_SINCE: &str = "publicIdSince";
    /// When a public id was retired by a rotation.
    pub const RETIRED_AT: &str = "retiredAt";
    pub const ROOM_ID: &str = "roomId";
    pub const PEER: &str = "peer";
    pub const JOINED_AT: &str = "joinedAt";
    pub const OPENED_AT: &str = "openedAt";
    /// A user's connect counter (`store::rate`'s encoding).
    pub const CONNECTS: &str = "cr";
    /// The marks of the rooms a user's connects announced in the counter's window.
    pub const ANNOUNCED: &str = "ra";
    /// On a room's side: when the side's member last offered the room to their peer.
    pub const OFFERED_AT: &str = "offeredAt";
    /// The last counting request's token (DynamoDB: no message counted twice on retry).
    pub const LAST_MESSAGE: &str = "lm";
    /// On a room list's entry: when the room's newest message was sent, and its `ttl`.
    pub const LAST_MESSAGE_AT: &str = "lastMessageAt";
    pub const LAST_MESSAGE_TTL: &str = "lastMessageTtl";
    /// On a copy of an offer: the public id it was made to.
    pub const TO: &str = "to";
}

/// What kind of item a key holds (the `type` attribute).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    User,
    Public,
    Room,
    Address,
    Message,
    /// A room in the partition of the user who joined it.
    Joined,
    /// A room in the partition of the public id it was opened with.
    Offer,
    /// A copy of an offer in its holder's partition (the projection's).
    Inbox,
}

/// `USER#<privateIdHash>`: a user, and the rooms they joined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserItem {
    #[serde(rename = "type", default = "UserItem::kind")]
    pub kind: Kind,
    pub id: u64,
    pub public_id: String,
    pub username: String,
    pub created_at: String,
    pub updated_at: String,
    /// When the user got `public_id`, if by a rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_id_since: Option<String>,
    /// The X25519 key registered at create, for end-to-end encryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The open rooms this user joined, by tag (`RoomId::tag`; a binary set of 6-byte
    /// values on DynamoDB, `dynamodb::codec`), which their messages are checked against.
    /// Tags keep the item, rewritten by every message, under one write unit at the room
    /// cap. A blocked room leaves the set: its closing is on its joined entry.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub rooms: BTreeSet<String>,
    /// How many rooms this user ever joined (blocked ones too): what the room cap counts,
    /// since a blocked room leaves `rooms`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub joins: u32,
    /// The embedded store's message counter, `window << 20 | count` (`store::rate`);
    /// DynamoDB keeps per-window slots instead (`dynamodb::rate_slots`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rl: Option<u64>,
    /// The connect counter, `window << 20 | count` (`store::rate`), on both stores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cr: Option<u64>,
    /// The marks (`rooms::announce_mark`) of the rooms announced by connects counted in
    /// `cr`'s window, at most `rooms::MAX_ANNOUNCED` (a string set on DynamoDB).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub ra: BTreeSet<String>,
    /// What is remembered of the user's last message (`sent::LastSent`'s text), which
    /// tells a retry of it from a new message; on both stores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lm: Option<String>,
}

impl UserItem {
    fn kind() -> Kind {
        Kind::User
    }

    pub fn new(user: &UserRecord) -> Self {
        Self {
            kind: Kind::User,
            id: user.id,
            public_id: user.public_id.to_string(),
            username: user.username.clone(),
            created_at: user.created_at.clone(),
            updated_at: user.updated_at.clone(),
            public_id_since: None,
            public_key: user.public_key.map(|k| k.to_string()),
            rooms: BTreeSet::new(),
            joins: 0,
            rl: None,
            cr: None,
            ra: BTreeSet::new(),
            lm: None,
        }
    }

    /// The user as a connect's requester: as rooms name them, and since when.
    pub fn requester(&self) -> Result<Requester, StoreError> {
        Ok(Requester {
            member: self.member()?,
            since: self
                .public_id_since
                .clone()
                .unwrap_or_else(|| self.created_at.clone()),
            public_key: parse_public_key(self.public_key.as_deref())?,
            rooms: self.rooms.clone(),
            connects: self.cr,
            announced: self.ra.clone(),
        })
    }

    /// The user as a room names them.
    pub fn member(&self) -> Result<Member, StoreError> {
        Ok(Member {
            public_id: parse_public_id(&self.public_id)?,
            username: self.username.clone(),
        })
    }

    pub fn record(&self, hash: PrivateIdHash) -> Result<UserRecord, StoreError> {
        Ok(UserRecord {
            id: self.id,
            public_id: parse_public_id(&self.public_id)?,
            private_id_hash: hash,
            username: self.username.clone(),
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
            public_key: parse_public_key(self.public_key.as_deref())?,
        })
    }
}

/// `PUBLIC#<publicId>`: who holds a public id (the uniqueness marker).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicItem {
    #[serde(rename = "type", default = "PublicItem::kind")]
    pub kind: Kind,
    /// The holder; gone once the id is retired, which keeps the marker (so that the id
    /// is never given out again) but names nobody.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_id_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
}

impl PublicItem {
    fn kind() -> Kind {
        Kind::Public
    }

    pub fn new(user: &UserRecord) -> Self {
        Self::held(&user.private_id_hash, &user.username, &user.created_at)
    }

    /// The marker of an id `holder` takes at `at`.
    pub fn held(holder: &PrivateIdHash, username: &str, at: &str) -> Self {
        Self {
            kind: Kind::Public,
            private_id_hash: Some(holder.to_hex()),
            username: Some(username.to_owned()),
            created_at: at.to_owned(),
            retired_at: None,
        }
    }

    /// The holder; `None` for a retired id.
    pub fn entry(&self) -> Result<Option<PublicEntry>, StoreError> {
        let (Some(hash), Some(username)) = (&self.private_id_hash, &self.username) else {
            return Ok(None);
        };
        Ok(Some(PublicEntry {
            owner: parse_hash(hash)?,
            username: username.clone(),
            since: self.created_at.clone(),
        }))
    }
}

/// A room's entry for one member (keyed by their private-id hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberEntry {
    pub public_id: String,
    pub username: String,
}

impl MemberEntry {
    pub fn new(member: &Member) -> Self {
        Self {
            public_id: member.public_id.to_string(),
            username: member.username.clone(),
        }
    }

    pub fn member(&self) -> Result<Member, StoreError> {
        Ok(Member {
            public_id: parse_public_id(&self.public_id)?,
            username: self.username.clone(),
        })
    }
}

/// A room's member on one side of its pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SideEntry {
    pub private_id_hash: String,
    pub public_id: String,
    pub username: String,
    /// The member identity's `createdAt`: the history they may read starts there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The public id the member connected to: the pair's other one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// When the member last offered the room to `peer` (their latest connect): the key
    /// of the offer's copy, which the room's messages are noted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_at: Option<String>,
}

impl SideEntry {
    pub fn new(
        hash: &PrivateIdHash,
        member: &Member,
        since: &str,
        peer: PublicId,
        offered_at: &str,
    ) -> Self {
        Self {
            private_id_hash: hash.to_hex(),
            public_id: member.public_id.to_string(),
            username: member.username.clone(),
            since: Some(since.to_owned()),
            peer: Some(peer.to_string()),
            offered_at: Some(offered_at.to_owned()),
        }
    }

    fn parse(&self) -> Result<(PrivateIdHash, Member), StoreError> {
        Ok((
            parse_hash(&self.private_id_hash)?,
            Member {
                public_id: parse_public_id(&self.public_id)?,
                username: self.username.clone(),
            },
        ))
    }
}

/// The attribute that holds a side.
pub fn side_attr(side: Side) -> &'static str {
    match side {
        Side::Low => attr::LOW,
        Side::High => attr::HIGH,
    }
}

/// `ROOM#<roomId>`: a room and its members, at most one per side of its pair. Each
/// member writes only their own side, so joining never depends on the other side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomItem {
    #[serde(rename = "type", default = "RoomItem::kind")]
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<SideEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<SideEntry>,
    /// A v1 room's members (rooms from private-id hashes), still honoured.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub members: BTreeMap<String, MemberEntry>,
    pub created_at: String,
    pub updated_at: String,
    /// When a member blocked the room, which closed it for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
}

impl RoomItem {
    fn kind() -> Kind {
        Kind::Room
    }

    /// Every member: the low side, the high side, then any v1 members by hash.
    pub fn members(&self) -> Result<Vec<(PrivateIdHash, Member)>, StoreError> {
        let sides = [&self.low, &self.high]
            .into_iter()
            .flatten()
            .map(SideEntry::parse);
        let v1 = self
            .members
            .iter()
            .map(|(hash, entry)| Ok((parse_hash(hash)?, entry.member()?)));
        sides.chain(v1).collect()
    }

    /// Whose room lists the room's messages show in: each side's member, or, for a side
    /// nobody joined yet, its public id (the joined side's `peer`); and any v1 members.
    pub fn audience(&self) -> Result<Audience, StoreError> {
        let mut sides = Vec::new();
        for (side, other) in [(&self.low, &self.high), (&self.high, &self.low)] {
            match (side, other) {
                (Some(side), _) => sides.push(Listed::Member(parse_hash(&side.private_id_hash)?)),
                (None, Some(other)) => {
                    if let Some(peer) = &other.peer {
                        sides.push(Listed::Offered {
                            to: parse_public_id(peer)?,
                            opened_at: other.offered_at.clone(),
                        });
                    }
                }
                (None, None) => {}
            }
        }
        for hash in self.members.keys() {
            sides.push(Listed::Member(parse_hash(hash)?));
        }
        Ok(Audience { sides })
    }

    /// The member entry of `who`, `None` for a non-member.
    pub fn member(&self, who: &PrivateIdHash) -> Result<Option<Member>, StoreError> {
        Ok(self.membership(who)?.map(|m| m.member))
    }

    /// What the room knows of `who`, `None` for a non-member.
    pub fn membership(&self, who: &PrivateIdHash) -> Result<Option<Membership>, StoreError> {
        let members = self.members()?;
        let Some((_, member)) = members.iter().find(|(hash, _)| hash == who) else {
            return Ok(None);
        };
        let side = [&self.low, &self.high]
            .into_iter()
            .flatten()
            .find(|side| side.private_id_hash == who.to_hex());
        let peer_id = side
            .and_then(|side| side.peer.as_deref())
            .map(parse_public_id)
            .transpose()?;
        Ok(Some(Membership {
            member: member.clone(),
            since: side.and_then(|side| side.since.clone()),
            peer_id,
            closed: self.closed_at.is_some(),
            peer: members
                .iter()
                .map(|(hash, _)| *hash)
                .find(|hash| hash != who),
        }))
    }
}

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

fn is_zero(n: &u32) -> bool {
    *n == 0
}

pub(crate) fn parse_public_key(s: Option<&str>) -> Result<Option<PublicKey>, StoreError> {
    s.map(|s| PublicKey::parse(s).ok_or_else(|| corrupt(format!("bad publicKey {s:?}"))))
        .transpose()
}

fn parse_room(s: &str) -> Result<RoomId, StoreError> {
    RoomId::parse(s).ok_or_else(|| corrupt(format!("bad roomId {s:?}")))
}

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

/// `ADDR#<hash>#<window>`: how many users were created from one source address (a
/// keyed hash of it) in one window; deleted once the window is over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressItem {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub count: u32,
    pub ttl: u64,
}

/// `COUNTER#users`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterItem {
    pub value: u64,
}

/// An item that does not have the shape this schema gives it.
pub fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Other(anyhow::anyhow!("unexpected item shape: {what}"))
}

fn parse_public_id(s: &str) -> Result<PublicId, StoreError> {
    PublicId::parse(s).ok_or_else(|| corrupt(format!("bad publicId {s:?}")))
}

fn parse_hash(s: &str) -> Result<PrivateIdHash, StoreError> {
    PrivateIdHash::from_hex(s).ok_or_else(|| corrupt("bad private-id hash"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn names(item: &impl Serialize) -> BTreeSet<String> {
        match serde_json::to_value(item).unwrap() {
            Value::Object(map) => map.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn typed_items_carry_the_attribute_names_the_expressions_use() {
        let user = UserRecord {
            id: 7,
            public_id: PublicId::parse("123-456").unwrap(),
            private_id_hash: PrivateIdHash::from_hex(&"ab".repeat(32)).unwrap(),
            username: "Brave Otter".into(),
            created_at: "2026-11-25T10:00:00.000Z".into(),
            updated_at: "2026-11-25T10:00:00.000Z".into(),
            public_key: PublicKey::parse("hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"),
        };
        let mut item = UserItem::new(&user);
        item.rooms.insert("r".into());
        item.ra.insert("abc".into());
        assert_eq!(
            names(&item),
            set(&[
                attr::TYPE,
                attr::ID,
                attr::PUBLIC_ID,
                attr::USERNAME,
                attr::CREATED_AT,
                attr::UPDATED_AT,
                attr::PUBLIC_KEY,
                attr::ROOMS,
                attr::ANNOUNCED
            ])
        );
        assert_eq!(
            names(&PublicItem::new(&user)),
            set(&[
                attr::TYPE,
                attr::PRIVATE_ID_HASH,
                attr::USERNAME,
                attr::CREATED_AT
            ])
        );
        let member = Member {
            public_id: user.public_id,
            username: user.username.clone(),
        };
        let side = SideEntry::new(
            &user.private_id_hash,
            &member,
            &user.created_at,
            PublicId::parse("000-001").unwrap(),
            &user.created_at,
        );
        let room = RoomItem {
            kind: Kind::Room,
            low: Some(side.clone()),
            high: Some(side.clone()),
            members: BTreeMap::from([("x".into(), MemberEntry::new(&member))]),
            created_at: String::new(),
            updated_at: String::new(),
            closed_at: Some(String::new()),
        };
        assert_eq!(
            names(&room),
            set(&[
                attr::TYPE,
                attr::LOW,
                attr::HIGH,
                attr::MEMBERS,
                attr::CREATED_AT,
                attr::UPDATED_AT,
                attr::CLOSED_AT
            ])
        );
        assert_eq!(
            names(&side),
            set(&[
                attr::PRIVATE_ID_HASH,
                attr::PUBLIC_ID,
                attr::USERNAME,
                attr::SINCE,
                attr::PEER,
                attr::OFFERED_AT
            ])
        );
        let kept = KeptMessage {
            cursor: Cursor::new(1, &"ab".repeat(16)).unwrap(),
            id: "ab".repeat(16),
            from: member.clone(),
            message: "m".into(),
            sent_at: "t".into(),
        };
        let message = MessageItem::new(&kept, 9);
        assert_eq!(
            names(&message),
            set(&[
                attr::TYPE,
                attr::ID,
                attr::FROM,
                attr::MESSAGE,
                attr::SENT_AT,
                attr::TTL
            ])
        );
        assert_eq!(message.kept(&keys::message(&kept.cursor)).unwrap(), kept);
        assert_eq!(names(&CounterItem { value: 1 }), set(&[attr::VALUE]));
        let address = AddressItem {
            kind: Kind::Address,
            count: 1,
            ttl: 2,
        };
        assert_eq!(names(&address), set(&[attr::TYPE, attr::COUNT, attr::TTL]));
        assert_eq!(serde_json::to_value(Kind::User).unwrap(), json!("user"));
        // Round trip, and the record comes back whole.
        let back: UserItem = serde_json::from_value(serde_json::to_value(&item).unwrap()).unwrap();
        assert_eq!(back.record(user.private_id_hash).unwrap(), user);
    }

    #[test]
    fn items_written_before_the_type_attribute_still_read() {
        let old = json!({"id": 1, "publicId": "000-001", "username": "A B",
                         "createdAt": "t", "updatedAt": "t"});
        let item: UserItem = serde_json::from_value(old).unwrap();
        assert_eq!(item.kind, Kind::User);
        assert!(item.rooms.is_empty());
    }

    #[test]
    fn v1_rooms_still_name_their_members() {
        let hash = "ab".repeat(32);
        let old = json!({"type": "room", "members": {hash.clone(): {"publicId": "000-001",
                         "username": "A B"}}, "createdAt": "t", "updatedAt": "t"});
        let item: RoomItem = serde_json::from_value(old).unwrap();
        let who = PrivateIdHash::from_hex(&hash).unwrap();
        let member = item.member(&who).unwrap().unwrap();
        assert_eq!(member.public_id.to_string(), "000-001");
        let other = PrivateIdHash::from_hex(&"cd".repeat(32)).unwrap();
        assert!(item.member(&other).unwrap().is_none());
    }

    #[test]
    fn keys_have_the_spec_prefixes() {
        let hash = PrivateIdHash::from_hex(&"01".repeat(32)).unwrap();
        assert_eq!(keys::user(&hash), format!("USER#{}", "01".repeat(32)));
        assert_eq!(
            keys::public(PublicId::parse("000-042").unwrap()),
            "PUBLIC#000-042"
        );
        let room = RoomId::parse(&"A".repeat(43)).unwrap();
        assert_eq!(keys::room(&room), format!("ROOM#{}", "A".repeat(43)));
    }

    #[test]
    fn malformed_items_are_errors_not_panics() {
        let mut entry = MemberEntry {
            public_id: "12-3456".into(),
            username: "x".into(),
        };
        assert!(entry.member().is_err());
        entry.public_id = "123-456".into();
        assert!(entry.member().is_ok());
        let public = PublicItem {
            kind: Kind::Public,
            private_id_hash: Some("zz".into()),
            username: Some(String::new()),
            created_at: String::new(),
            retired_at: None,
        };
        assert!(public.entry().is_err());
    }
}
