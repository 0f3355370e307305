//! The users' items: a user, its public id's marker, the per-address create counts and
//! the id counter.

use super::*;

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
