//! The one change feed: which writes the room lists depend on, derived from the items
//! written. Both stores describe an item write the same way, as a [`Written`] (its
//! keys, and the item as it was and as it is), and [`change_of`] alone says what it
//! changed: the DynamoDB stream's records become `Written` ([`Written::from_stream`]) in
//! the `project-changes` function and the stream reader; the embedded store records a
//! `Written` for each item it writes under keys that [`feeds`], in the same transaction,
//! in its outbox. So the two stores cannot disagree on what the projection sees.

use super::schema::{attr, keys};
use crate::domain::ports::LastMessage;
use crate::domain::projection::Change;
use crate::domain::{PrivateIdHash, PublicId, RoomId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a write did to its item, as a stream record's `eventName` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Event {
    Insert,
    Modify,
    Remove,
}

/// One item write: its keys, and the item before and after (plain JSON, as the
/// embedded store keeps items), where there is one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Written {
    pub event: Event,
    pub pk: String,
    pub sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

impl Written {
    /// A stream record (DynamoDB JSON, as Lambda and `GetRecords` give it).
    pub fn from_stream(record: &Value) -> Option<Self> {
        let event = match record["eventName"].as_str()? {
            "INSERT" => Event::Insert,
            "MODIFY" => Event::Modify,
            "REMOVE" => Event::Remove,
            _ => return None,
        };
        let stream = &record["dynamodb"];
        let key = |name: &str| stream["Keys"][name]["S"].as_str().map(str::to_owned);
        let image = |name: &str| stream.get(name).map(|image| plain(image, true));
        Some(Self {
            event,
            pk: key(attr::PK)?,
            sk: key(attr::SK)?,
            old: image("OldImage"),
            new: image("NewImage"),
        })
    }

    /// A write of the embedded store, under its storage key ([`keys::storage_key`]),
    /// with the item's JSON before and after.
    pub fn from_item(key: &str, old: Option<&[u8]>, new: Option<&[u8]>) -> Option<Self> {
        let (pk, sk) = key.split_once(' ').unwrap_or((key, keys::ITEM));
        let event = match (old, new) {
            (None, None) => return None,
            (None, Some(_)) => Event::Insert,
            (Some(_), Some(_)) => Event::Modify,
            (Some(_), None) => Event::Remove,
        };
        // An image that is not JSON (a damaged file) is left out: no change reads it.
        let json = |bytes: Option<&[u8]>| bytes.and_then(|b| serde_json::from_slice(b).ok());
        Some(Self {
            event,
            pk: pk.to_owned(),
            sk: sk.to_owned(),
            old: json(old),
            new: json(new),
        })
    }

    fn text(&self, image: Image, name: &str) -> Option<&str> {
        let image = match image {
            Image::Old => self.old.as_ref(),
            Image::New => self.new.as_ref(),
        };
        image?.get(name)?.as_str()
    }
}

#[derive(Clone, Copy)]
enum Image {
    Old,
    New,
}

/// Whether a write under these keys can stand for a change (the keys of the stream
/// function's event filter in `template.yaml`): kept messages, offers and public-id
/// markers, rooms joined. A store needs to describe no other write.
pub fn feeds(pk: &str, sk: &str) -> bool {
    (pk.starts_with(keys::ROOM_PREFIX) && sk.starts_with(keys::MESSAGE_PREFIX))
        || pk.starts_with(keys::PUBLIC_PREFIX)
        || (pk.starts_with(keys::USER_PREFIX) && sk.starts_with(keys::ROOM_ENTRY_PREFIX))
}

/// The change a write stands for, or `None` for a write the room lists do not
/// depend on.
pub fn change_of(w: &Written) -> Option<Change> {
    let (pk, sk) = (w.pk.as_str(), w.sk.as_str());
    if let Some(room) = pk.strip_prefix(keys::ROOM_PREFIX)
        && sk.starts_with(keys::MESSAGE_PREFIX)
        && w.event == Event::Insert
    {
        let ttl = w.new.as_ref()?.get(attr::TTL)?;
        return Some(Change::MessageKept {
            room: RoomId::parse(room)?,
            last: LastMessage {
                sent_at: w.text(Image::New, attr::SENT_AT)?.to_owned(),
                expires_at: ttl.as_u64()?,
            },
        });
    }
    if let Some(id) = pk.strip_prefix(keys::PUBLIC_PREFIX) {
        let to = PublicId::parse(id)?;
        if let Some(room) = sk.strip_prefix(keys::ROOM_ENTRY_PREFIX) {
            let room = RoomId::parse(room)?;
            // The copy is keyed by when the offer was made: the old item names the copy
            // that goes.
            let old = w.text(Image::Old, attr::OPENED_AT).map(str::to_owned);
            return Some(match w.event {
                Event::Remove => Change::OfferDeleted {
                    to,
                    room,
                    opened_at: old.unwrap_or_default(),
                },
                Event::Insert | Event::Modify => Change::Offered {
                    to,
                    room,
                    replaced: old
                        .filter(|old| Some(old.as_str()) != w.text(Image::New, attr::OPENED_AT)),
                },
            });
        }
        // The marker of a public id that a rotation just retired.
        if sk == keys::ITEM
            && w.event == Event::Modify
            && w.text(Image::New, attr::RETIRED_AT).is_some()
            && w.text(Image::Old, attr::RETIRED_AT).is_none()
        {
            let holder = PrivateIdHash::from_hex(w.text(Image::Old, attr::PRIVATE_ID_HASH)?)?;
            return Some(Change::Retired { id: to, holder });
        }
        return None;
    }
    if let Some(hash) = pk.strip_prefix(keys::USER_PREFIX)
        && let Some(room) = sk.strip_prefix(keys::ROOM_ENTRY_PREFIX)
        && w.event == Event::Insert
    {
        return Some(Change::Joined {
            who: PrivateIdHash::from_hex(hash)?,
            room: RoomId::parse(room)?,
        });
    }
    None
}

/// DynamoDB JSON (`{"S": "x"}`, `{"N": "7"}`, `{"M": {..}}`, ...) as plain JSON; `map`
/// says `value` is an image, a map of attributes, rather than one attribute value.
fn plain(value: &Value, map: bool) -> Value {
    let Some(object) = value.as_object() else {
        return Value::Null;
    };
    if map {
        let attributes: Map<String, Value> = object
            .iter()
            .map(|(name, value)| (name.clone(), plain(value, false)))
            .collect();
        return Value::Object(attributes);
    }
    let Some((kind, inner)) = object.iter().next() else {
        return Value::Null;
    };
    match kind.as_str() {
        "N" => inner
            .as_str()
            .and_then(|n| serde_json::from_str::<serde_json::Number>(n).ok())
            .map_or(Value::Null, Value::Number),
        "M" => plain(inner, true),
        "L" => Value::Array(
            inner
                .as_array()
                .map(|items| items.iter().map(|v| plain(v, false)).collect())
                .unwrap_or_default(),
        ),
        "NULL" => Value::Null,
        // S, BOOL, SS, B (base64 text), BS: as they come.
        _ => inner.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn room() -> RoomId {
        RoomId::parse(&"A".repeat(RoomId::LEN)).unwrap()
    }

    fn record(event: &str, pk: &str, sk: &str, old: Value, new: Value) -> Value {
        let mut dynamodb = json!({"Keys": {"pk": {"S": pk}, "sk": {"S": sk}}});
        if !old.is_null() {
            dynamodb["OldImage"] = old;
        }
        if !new.is_null() {
            dynamodb["NewImage"] = new;
        }
        json!({"eventName": event, "dynamodb": dynamodb})
    }

    #[test]
    fn a_stream_record_and_an_embedded_write_of_one_item_are_one_change() {
        let key = keys::storage_key(&keys::room(&room()), "MSG#2026-12-03T08:00:00.000Z#x");
        let (pk, sk) = key.split_once(' ').unwrap();
        let item =
            json!({"sentAt": "2026-12-03T08:00:00.000Z", "ttl": 1_800_000_000u64, "message": "hi"});
        let stream = record(
            "INSERT",
            pk,
            sk,
            Value::Null,
            json!({"sentAt": {"S": "2026-12-03T08:00:00.000Z"}, "ttl": {"N": "1800000000"}, "message": {"S": "hi"}}),
        );
        let from_stream = Written::from_stream(&stream).unwrap();
        let bytes = serde_json::to_vec(&item).unwrap();
        let from_item = Written::from_item(&key, None, Some(&bytes)).unwrap();
        assert_eq!(from_stream, from_item);
        assert_eq!(
            change_of(&from_item),
            Some(Change::MessageKept {
                room: room(),
                last: LastMessage {
                    sent_at: "2026-12-03T08:00:00.000Z".into(),
                    expires_at: 1_800_000_000,
                },
            })
        );
    }

    #[test]
    fn offers_made_again_and_deleted_name_the_copy_that_goes() {
        let key = keys::storage_key(
            &keys::public(PublicId::parse("123-456").unwrap()),
            &keys::room_entry(&room()),
        );
        let at = |t: &str| serde_json::to_vec(&json!({"openedAt": t})).unwrap();
        let to = PublicId::parse("123-456").unwrap();
        let write = |old: Option<&[u8]>, new: Option<&[u8]>| {
            change_of(&Written::from_item(&key, old, new).unwrap())
        };
        assert_eq!(
            write(None, Some(&at("t1"))),
            Some(Change::Offered {
                to,
                room: room(),
                replaced: None
            })
        );
        assert_eq!(
            write(Some(&at("t1")), Some(&at("t2"))),
            Some(Change::Offered {
                to,
                room: room(),
                replaced: Some("t1".into())
            })
        );
        assert_eq!(
            write(Some(&at("t2")), Some(&at("t2"))),
            Some(Change::Offered {
                to,
                room: room(),
                replaced: None
            }),
            "made again in the same instant: the same copy"
        );
        assert_eq!(
            write(Some(&at("t2")), None),
            Some(Change::OfferDeleted {
                to,
                room: room(),
                opened_at: "t2".into()
            })
        );
    }

    #[test]
    fn a_retirement_a_join_and_nothing_else() {
        let hash = "ab".repeat(32);
        let marker = keys::public(PublicId::parse("123-456").unwrap());
        let held = serde_json::to_vec(&json!({"privateIdHash": hash})).unwrap();
        let retired =
            serde_json::to_vec(&json!({"privateIdHash": hash, "retiredAt": "t"})).unwrap();
        assert_eq!(
            change_of(&Written::from_item(&marker, Some(&held), Some(&retired)).unwrap()),
            Some(Change::Retired {
                id: PublicId::parse("123-456").unwrap(),
                holder: PrivateIdHash::from_hex(&hash).unwrap(),
            })
        );
        assert_eq!(
            change_of(&Written::from_item(&marker, None, Some(&held)).unwrap()),
            None,
            "a create"
        );
        assert_eq!(
            change_of(&Written::from_item(&marker, Some(&retired), Some(&retired)).unwrap()),
            None
        );
        let joined = keys::storage_key(&format!("USER#{hash}"), &keys::room_entry(&room()));
        let entry = serde_json::to_vec(&json!({"roomId": room().as_str()})).unwrap();
        assert!(matches!(
            change_of(&Written::from_item(&joined, None, Some(&entry)).unwrap()),
            Some(Change::Joined { .. })
        ));
        assert_eq!(
            change_of(&Written::from_item(&joined, Some(&entry), Some(&entry)).unwrap()),
            None,
            "joined again: the entry rewritten"
        );
        let user = format!("USER#{hash}");
        assert!(
            !feeds(&user, keys::ITEM),
            "a user item, rewritten by every message"
        );
        assert!(feeds(&user, &keys::room_entry(&room())));
    }
}
