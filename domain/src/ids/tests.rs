use super::*;

#[test]
fn public_keys_are_32_bytes_of_canonical_unpadded_base64url() {
    let text = "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo";
    let key = PublicKey::parse(text).unwrap();
    assert_eq!(key.to_string(), text, "one key, one text");
    for bad in [
        "",
        &text[..42],
        &format!("{text}A"),
        &format!("{text}="),
        "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo", // standard alphabet
        "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmp", // trailing bits set
        "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066Spjqqb m",
        "éSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTm",
    ] {
        assert_eq!(PublicKey::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn public_id_round_trips_and_rejects_malformed() {
    let id = PublicId::parse("012-345").unwrap();
    assert_eq!(id.to_string(), "012-345");
    assert!(!id.is_long());
    assert_eq!(PublicId::from_number(7).unwrap().to_string(), "000-007");
    assert_eq!(
        PublicId::from_number(999_999).unwrap().to_string(),
        "999-999"
    );
    assert!(PublicId::from_number(1_000_000).is_none());
    for bad in [
        "",
        "123456",
        "123-45",
        "1234-567",
        "12a-456",
        "123_456",
        "+12-456",
        "١٢٣-٤٥٦",
        "123-456-78",
        "123-456-7890",
        "123-4567-89",
        "123-456_789",
        "123456789",
        "123-456-",
        "-123-456",
        "123-456-78a",
    ] {
        assert!(PublicId::parse(bad).is_none(), "{bad:?} must not parse");
    }
}

#[test]
fn long_public_ids_are_distinct_from_short_ones() {
    let long = PublicId::parse("000-012-345").unwrap();
    assert!(long.is_long());
    assert_eq!(long.to_string(), "000-012-345");
    assert_ne!(long, PublicId::parse("012-345").unwrap());
    assert_eq!(PublicId::long_from_number(12_345), Some(long));
    assert_eq!(
        PublicId::long_from_number(999_999_999).unwrap().to_string(),
        "999-999-999"
    );
    assert!(PublicId::long_from_number(1_000_000_000).is_none());
    assert_eq!(
        PublicId::parse("987-654-321").unwrap().to_string(),
        "987-654-321"
    );
}

#[test]
fn private_ids_are_256_bit_url_safe_and_distinct() {
    let a = PrivateId::generate().unwrap();
    let b = PrivateId::generate().unwrap();
    assert_ne!(a, b);
    assert_eq!(a.expose().len(), PrivateId::LEN);
    assert!(
        a.expose()
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    );
    assert_eq!(PrivateId::parse(a.expose()), Some(a.clone()));
    assert!(PrivateId::parse("short").is_none());
    assert!(PrivateId::parse(&"!".repeat(43)).is_none());
    assert!(!format!("{a:?}").contains(a.expose()));
}

#[test]
fn private_id_hash_is_sha256_of_the_text() {
    let id = PrivateId::parse(&"A".repeat(43)).unwrap();
    // sha256 of 43 'A's, computed independently with `printf %43s | tr ' ' A | sha256sum`.
    assert_eq!(
        id.hash().to_hex(),
        "0f007385b6f9d4b7eeb2748605afe1a984a0a3bfa3f014d09e2a784ce9e5cd1a"
    );
    assert_eq!(
        PrivateIdHash::from_hex(&id.hash().to_hex()),
        Some(id.hash())
    );
}

#[test]
fn room_ids_parse_only_channel_safe_text() {
    let room = RoomId::from_mac([7; 32]);
    assert_eq!(RoomId::parse(room.as_str()), Some(room.clone()));
    assert_eq!(RoomId::from_channel(&room.channel()), Some(room.clone()));
    assert!(RoomId::from_channel(room.as_str()).is_none());
    assert!(RoomId::from_channel(&format!("presence-{room}")).is_none());
    assert!(RoomId::parse("../etc/passwd").is_none());
}

#[test]
fn socket_ids_are_digits_dot_digits() {
    assert!(SocketId::parse("1234.1234").is_some());
    assert!(SocketId::parse("123456789.987654321").is_some());
    for bad in [
        "",
        "1234",
        "1234.",
        ".1234",
        "12a4.1234",
        "1.2.3",
        "-1.2",
        "1234.1234\n",
        " 1.2",
    ] {
        assert!(SocketId::parse(bad).is_none(), "{bad:?} must not parse");
    }
    assert!(SocketId::parse(&format!("{}.1", "9".repeat(21))).is_none());
}
