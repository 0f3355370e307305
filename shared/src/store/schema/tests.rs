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
