//! Attribute names, for the DynamoDB store's expressions; the typed items (in the
//! sibling modules) carry the same names (a test checks each one).

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
