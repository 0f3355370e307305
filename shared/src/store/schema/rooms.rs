//! A room's item and its members' entries.

use super::*;

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
