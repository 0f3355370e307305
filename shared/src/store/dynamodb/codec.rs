//! Items as DynamoDB attribute values: each typed item of the schema through its JSON,
//! so that the DynamoDB table holds exactly what the embedded store holds. Strings are
//! `S`, numbers `N`, objects `M`, and arrays of strings string sets (`SS`), but a user's
//! room tags: their JSON is base64url text, their attribute a binary set (`BS`) of the
//! bytes, 6 a tag instead of 8 (the item is rewritten by every message: it must stay
//! under one write unit).

use crate::domain::RoomId;
use crate::store::StoreError;
use crate::store::schema::{attr, corrupt};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::HashMap;

pub type Item = HashMap<String, AttributeValue>;

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A typed item under the keys `pk` and `sk`.
pub(super) fn to_item<T: Serialize>(pk: &str, sk: &str, item: &T) -> Result<Item, StoreError> {
    let AttributeValue::M(mut map) = to_attribute(item)? else {
        return Err(corrupt("an item that is not a map"));
    };
    if let Some(AttributeValue::Ss(tags)) = map.remove(attr::ROOMS) {
        let bytes = tags
            .iter()
            .map(|tag| tag_bytes(tag))
            .collect::<Result<_, _>>()?;
        map.insert(attr::ROOMS.to_owned(), AttributeValue::Bs(bytes));
    }
    map.insert(attr::PK.to_owned(), s(pk));
    map.insert(attr::SK.to_owned(), s(sk));
    Ok(map)
}

fn tag_bytes(tag: &str) -> Result<Blob, StoreError> {
    URL_SAFE_NO_PAD
        .decode(tag)
        .map(Blob::new)
        .map_err(|_| corrupt(format!("bad room tag {tag:?}")))
}

/// A room's tag as a user item's `rooms` holds it (conditions test it with `contains`).
pub(super) fn room_tag(room: &RoomId) -> Result<AttributeValue, StoreError> {
    tag_bytes(&room.tag()).map(AttributeValue::B)
}

/// A set of one room's tag, to `ADD` to or `DELETE` from a user item's `rooms`.
pub(super) fn room_tags(room: &RoomId) -> Result<AttributeValue, StoreError> {
    Ok(AttributeValue::Bs(vec![tag_bytes(&room.tag())?]))
}

/// Whether a user item's `rooms` holds `room`'s tag.
pub(super) fn lists_room(item: &Item, room: &RoomId) -> bool {
    let Ok(tag) = tag_bytes(&room.tag()) else {
        return false;
    };
    item.get(attr::ROOMS)
        .and_then(|v| v.as_bs().ok())
        .is_some_and(|tags| tags.contains(&tag))
}

/// A user item's connect counter (`store::rate`'s encoding), if it has one.
pub(super) fn connect_counter(item: &Item) -> Option<u64> {
    item.get(attr::CONNECTS)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

/// A user item's marks of the rooms announced in its connect counter's window.
pub(super) fn announced_marks(item: &Item) -> std::collections::BTreeSet<String> {
    item.get(attr::ANNOUNCED)
        .and_then(|v| v.as_ss().ok())
        .map(|marks| marks.iter().cloned().collect())
        .unwrap_or_default()
}

/// The key of the item that stands alone under `pk`.
pub(super) fn key(pk: impl Into<String>) -> Item {
    Item::from([
        (attr::PK.to_owned(), s(pk)),
        (attr::SK.to_owned(), s(crate::store::schema::keys::ITEM)),
    ])
}

/// The key of the item under `pk` and `sk`.
pub(super) fn key_at(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    Item::from([(attr::PK.to_owned(), s(pk)), (attr::SK.to_owned(), s(sk))])
}

/// Any serializable value (an item, a member entry) as one attribute value.
pub(super) fn to_attribute<T: Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    let json = serde_json::to_value(value).map_err(corrupt)?;
    from_json(json)
}

fn from_json(json: Value) -> Result<AttributeValue, StoreError> {
    Ok(match json {
        Value::String(text) => AttributeValue::S(text),
        Value::Number(number) => AttributeValue::N(number.to_string()),
        Value::Bool(b) => AttributeValue::Bool(b),
        Value::Null => AttributeValue::Null(true),
        Value::Array(values) if values.iter().all(Value::is_string) && !values.is_empty() => {
            AttributeValue::Ss(
                values
                    .into_iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            )
        }
        Value::Array(values) => AttributeValue::L(
            values
                .into_iter()
                .map(from_json)
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => AttributeValue::M(
            map.into_iter()
                .map(|(k, v)| Ok((k, from_json(v)?)))
                .collect::<Result<_, StoreError>>()?,
        ),
    })
}

/// A typed item from its attributes (other attributes, such as `pk` or the rate slots,
/// are ignored).
pub(super) fn from_item<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    serde_json::from_value(item_json(item)).map_err(corrupt)
}

/// A whole item as JSON, as the embedded store would keep it (tests compare the two).
pub fn item_json(item: &Item) -> Value {
    Value::Object(
        item.iter()
            .map(|(k, v)| (k.clone(), to_json(v)))
            .collect::<Map<_, _>>(),
    )
}

fn to_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(text) => Value::String(text.clone()),
        AttributeValue::N(number) => serde_json::from_str(number).unwrap_or(Value::Null),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Ss(set) => {
            // A set: DynamoDB returns it in any order.
            let mut sorted = set.clone();
            sorted.sort();
            Value::Array(sorted.into_iter().map(Value::String).collect())
        }
        AttributeValue::Bs(set) => {
            // Room tags, as text (base64url), as the embedded store keeps them.
            let mut sorted: Vec<String> = set
                .iter()
                .map(|b| URL_SAFE_NO_PAD.encode(b.as_ref()))
                .collect();
            sorted.sort();
            Value::Array(sorted.into_iter().map(Value::String).collect())
        }
        AttributeValue::L(values) => Value::Array(values.iter().map(to_json).collect()),
        AttributeValue::M(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::{Kind, MemberEntry, RoomItem, SideEntry, UserItem};
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn typed_items_become_the_attributes_dynamodb_expressions_use() {
        let user = UserItem {
            kind: Kind::User,
            id: 42,
            public_id: "123-456".into(),
            username: "Brave Otter".into(),
            created_at: "c".into(),
            updated_at: "u".into(),
            public_id_since: None,
            public_key: None,
            rooms: BTreeSet::from(["AAECAwQF".to_owned(), "AQIDBAUG".to_owned()]),
            joins: 2,
            rl: None,
            cr: None,
            ra: BTreeSet::from(["AAE".to_owned()]),
            lm: None,
        };
        let item = to_item("USER#x", "_", &user).unwrap();
        assert_eq!(item[attr::SK], s("_"));
        assert_eq!(item[attr::PK], s("USER#x"));
        assert_eq!(item[attr::TYPE], s("user"));
        assert_eq!(item[attr::ID], AttributeValue::N("42".into()));
        assert_eq!(item[attr::PUBLIC_ID], s("123-456"));
        // Room tags: 6 bytes each, not their 8 characters.
        let AttributeValue::Bs(tags) = &item[attr::ROOMS] else {
            panic!("rooms is no binary set: {:?}", item[attr::ROOMS]);
        };
        let mut tags: Vec<&[u8]> = tags.iter().map(|b| b.as_ref()).collect();
        tags.sort();
        assert_eq!(tags, [&[0, 1, 2, 3, 4, 5][..], &[1, 2, 3, 4, 5, 6]]);
        assert!(!item.contains_key("rl"), "absent fields stay absent");
        // Announcement marks: a string set, which `ADD` extends.
        assert_eq!(
            item[attr::ANNOUNCED],
            AttributeValue::Ss(vec!["AAE".into()])
        );
        assert_eq!(from_item::<UserItem>(&item).unwrap(), user);

        let room = RoomItem {
            kind: Kind::Room,
            low: Some(SideEntry {
                private_id_hash: "cd".into(),
                public_id: "000-000-001".into(),
                username: "B".into(),
                since: None,
                peer: None,
                offered_at: None,
            }),
            high: None,
            members: BTreeMap::from([(
                "ab".to_owned(),
                MemberEntry {
                    public_id: "000-001".into(),
                    username: "A".into(),
                },
            )]),
            created_at: "c".into(),
            updated_at: "u".into(),
            closed_at: None,
        };
        let item = to_item("ROOM#r", "_", &room).unwrap();
        let AttributeValue::M(members) = &item[attr::MEMBERS] else {
            panic!("members is not a map")
        };
        let AttributeValue::M(entry) = &members["ab"] else {
            panic!("a member entry is not a map")
        };
        assert_eq!(entry[attr::PUBLIC_ID], s("000-001"));
        let AttributeValue::M(low) = &item[attr::LOW] else {
            panic!("a side is not a map")
        };
        assert_eq!(low[attr::PRIVATE_ID_HASH], s("cd"));
        assert!(!item.contains_key(attr::HIGH), "an empty side stays absent");
        assert_eq!(from_item::<RoomItem>(&item).unwrap(), room);
    }

    #[test]
    fn a_malformed_item_is_an_error() {
        let item = Item::from([(attr::ID.to_owned(), s("not a number"))]);
        assert!(from_item::<UserItem>(&item).is_err());
    }
}
