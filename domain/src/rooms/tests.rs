use super::*;

fn key() -> RoomKey {
    RoomKey::new(*b"0123456789abcdef0123456789abcdef").unwrap()
}

#[test]
fn configured_keys_count_bytes_of_key_material() {
    let hex = "421996cdfc711f4c28b6fa7b6af60fde1723301e983980791d14e64dd1fee65b";
    assert!(RoomKey::parse(hex).is_ok());
    // `openssl rand -base64 32` style, and its URL-safe form.
    let b64 = "q0l3Y8mV3pZb5l4h6F9d2x7KcR1tN0aWgE8uJ5yHsQo=";
    assert!(RoomKey::parse(b64).is_ok());
    assert!(RoomKey::parse(b64.trim_end_matches('=')).is_ok());
    // 32 characters are not 32 bytes of key material.
    let err = |text: &str| RoomKey::parse(text).err();
    assert_eq!(
        err(&"0123456789abcdef".repeat(2)),
        Some(KeyError::TooShort(16))
    );
    assert_eq!(
        err("not a key, just words and spaces!!"),
        Some(KeyError::NotEncoded)
    );
    assert_eq!(err(&"ab".repeat(40)), Some(KeyError::NotRandom));
    // Hex and base64 of the same bytes give the same key.
    let bytes: Vec<u8> = (0u8..32).collect();
    let as_hex = hex::encode(&bytes);
    use base64::Engine as _;
    let as_b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let a = RoomKey::parse(&as_hex).unwrap();
    let b = RoomKey::parse(&as_b64).unwrap();
    let (x, y) = (id("123-456"), id("654-321"));
    assert_eq!(a.room_of(x, y), b.room_of(x, y));
}

#[test]
fn short_keys_are_refused() {
    assert!(RoomKey::new(vec![0u8; 31]).is_none());
    assert!(RoomKey::new(vec![0u8; 32]).is_some());
}

fn id(s: &str) -> PublicId {
    PublicId::parse(s).unwrap()
}

#[test]
fn room_id_is_symmetric_keyed_and_channel_safe() {
    let (a, b) = (id("123-456"), id("654-321"));
    let room = key().room_of(a, b);
    assert_eq!(room, key().room_of(b, a));
    assert_ne!(room, key().room_of(a, id("654-322")));
    assert_ne!(room, key().room_of(a, id("000-654-321")));
    let other_key = RoomKey::new(vec![9u8; 32]).unwrap();
    assert_ne!(room, other_key.room_of(a, b));
    assert_eq!(RoomId::parse(room.as_str()), Some(room.clone()));
    assert!(
        room.channel().len() <= 164,
        "Pusher caps channel names at 164 chars"
    );
}

#[test]
fn room_id_matches_an_independent_hmac() {
    // Computed with Python: hmac.new(key, b"secret-rooms/v2/room\0" + b"000-000-042"
    // + b"\0" + b"123-456", sha256), base64url without padding.
    assert_eq!(
        key().room_of(id("123-456"), id("000-000-042")).as_str(),
        ROOM_VECTOR
    );
}

const ROOM_VECTOR: &str = "Adtcmr4yLOwccuZ1BwrtHui730ZnWToYzz9twf00xtI";

#[test]
fn inbox_channel_matches_an_independent_hmac() {
    // Computed with Python: "private-inbox-" + base64url without padding of
    // hmac.new(key, b"secret-rooms/v2/inbox\0" + b"123-456", sha256).
    assert_eq!(
        key().inbox_channel(id("123-456")),
        "private-inbox-pMlwQ552H2S1uy7FN-t__lJMvz7V_xtEvq6Kh0VT8BY"
    );
    assert_ne!(
        key().inbox_channel(id("123-457")),
        key().inbox_channel(id("123-456"))
    );
}

#[test]
fn a_room_is_announced_again_once_a_window_while_the_record_has_room() {
    let room = key().room_of(id("123-456"), id("654-321"));
    let none = BTreeSet::new();
    assert_eq!(
        announcing(&none, &room, true),
        (Announce::Now, Some(announce_mark(&room)))
    );
    assert_eq!(
        announcing(&none, &room, false),
        (Announce::Now, Some(announce_mark(&room)))
    );
    let marked = BTreeSet::from([announce_mark(&room)]);
    assert_eq!(announcing(&marked, &room, false), (Announce::Skip, None));
    // A first join is announced whatever the record says.
    assert_eq!(announcing(&marked, &room, true), (Announce::Now, None));
    let full: BTreeSet<String> = (0..MAX_ANNOUNCED).map(|n| format!("{n:03}")).collect();
    assert_eq!(announcing(&full, &room, false), (Announce::Skip, None));
    assert_eq!(announcing(&full, &room, true), (Announce::Now, None));
    assert_eq!(announce_mark(&room).len(), 3);
}

#[test]
fn sides_follow_the_text_order() {
    assert_eq!(Side::of(id("123-456"), id("123-457")), Side::Low);
    assert_eq!(Side::of(id("123-457"), id("123-456")), Side::High);
    // "000-000-042" < "123-456" as text, whatever the numbers say.
    assert_eq!(Side::of(id("123-456"), id("000-000-042")), Side::High);
    assert_eq!(Side::of(id("999-999-999"), id("999-999")), Side::High);
}
