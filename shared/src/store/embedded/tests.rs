use super::*;
use crate::domain::rooms::RoomKey;
use crate::store::{MessageStore, RoomStore, UserStore};

fn user(n: u32, hash: &str) -> UserRecord {
    UserRecord {
        id: u64::from(n),
        public_id: PublicId::from_number(n).unwrap(),
        private_id_hash: PrivateIdHash::from_hex(&hash.repeat(32)).unwrap(),
        username: format!("User {n}"),
        created_at: "2026-11-25T00:00:00.000Z".into(),
        updated_at: "2026-11-25T00:00:00.000Z".into(),
        public_key: None,
    }
}

/// The sweep deletes kept messages and address counts once their `ttl` has passed
/// (a fixed clock: seconds given, not read), and nothing else.
#[tokio::test]
async fn a_sweep_deletes_what_has_expired_and_nothing_else() {
    let store = EmbeddedStore::in_memory().unwrap();
    let (a, b) = (user(1, "0a"), user(2, "0b"));
    let quota = |address: &str, expires_at| CreateQuota {
        address: address.into(),
        window: 1,
        limit: 5,
        expires_at,
        retry_after: 1,
    };
    store
        .insert_user(&a, Some(&quota("early", 1_000)))
        .await
        .unwrap();
    store
        .insert_user(&b, Some(&quota("late", 2_000)))
        .await
        .unwrap();
    let key =
        RoomKey::parse("59830ebc3a4184110566bf1a290d08473dfdcbd492ce498b14cd1a5e2fa2e441").unwrap();
    let room = key.room_of(a.public_id, b.public_id);
    let member = Member {
        public_id: a.public_id,
        username: a.username.clone(),
    };
    for (n, ttl) in [(1u64, 900), (2, 1_000), (3, 1_001)] {
        let id = format!("{n:032x}");
        let message = KeptMessage {
            cursor: Cursor::new(n, &id).unwrap(),
            id,
            from: member.clone(),
            message: format!("m{n}"),
            sent_at: "2026-11-25T00:00:00.000Z".into(),
        };
        store
            .keep_message(&room, &message, ttl, Keeping::New)
            .await
            .unwrap();
    }
    let before = store.dump().await.unwrap();
    assert_eq!(
        store.sweep(899).await.unwrap(),
        Swept::default(),
        "nothing expired yet"
    );
    assert_eq!(store.dump().await.unwrap(), before);
    let swept = store.sweep(1_000).await.unwrap();
    assert_eq!(
        swept,
        Swept {
            messages: 2,
            addresses: 1,
            offers: 0
        }
    );
    let after: Vec<String> = store
        .dump()
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let gone: Vec<&String> = before
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !after.contains(k))
        .collect();
    assert_eq!(gone.len(), 3, "{gone:?}");
    assert!(
        gone.iter()
            .all(|k| k.contains(" MSG#") || k.starts_with("ADDR#early"))
    );
    // The message of ttl 1001 is still kept, and still listed.
    let page = store
        .list_messages(&room, &Cursor::before(0), 10, 1_000)
        .await
        .unwrap();
    let texts: Vec<&str> = page.messages.iter().map(|m| m.message.as_str()).collect();
    assert_eq!(texts, ["m3"]);
    assert!(after.iter().any(|k| k.starts_with("ADDR#late")));
    assert_eq!(store.sweep(1_000).await.unwrap(), Swept::default());

    // An offer past its OFFER_TTL goes, and so does its copy in the holder's list.
    let requester = Requester {
        member: member.clone(),
        since: a.created_at.clone(),
        public_key: None,
        rooms: Default::default(),
        connects: None,
        announced: Default::default(),
    };
    store
        .join_room(&Joining {
            room: &room,
            side: Side::of(a.public_id, b.public_id),
            joiner: &a.private_id_hash,
            requester: &requester,
            target: b.public_id,
            max_rooms: 10,
            connects: RateWindow {
                window: 1,
                limit: 10,
            },
            offer_expires_at: 2_000,
            now: "2026-11-25T00:00:01.000Z",
        })
        .await
        .unwrap();
    store.settle().await.unwrap();
    let offers = |items: Vec<(String, serde_json::Value)>| {
        items
            .into_iter()
            .filter(|(k, _)| {
                k.starts_with("PUBLIC#") && k.contains(" ROOM#") || k.contains(" OFFER#")
            })
            .count()
    };
    assert_eq!(
        offers(store.dump().await.unwrap()),
        2,
        "the offer and its copy"
    );
    assert_eq!(store.sweep(1_999).await.unwrap().offers, 0, "not yet");
    let swept = store.sweep(2_000).await.unwrap();
    assert_eq!(swept.offers, 2, "{swept:?}");
    assert_eq!(offers(store.dump().await.unwrap()), 0);
    // The room and the joined entry stay: only the offer expires.
    assert!(
        store
            .room_member(&room, &a.private_id_hash)
            .await
            .unwrap()
            .is_some()
    );
}

/// Reprojecting a file whose projection is missing (a file from before it) rebuilds
/// what the writes had projected, and drops a copy whose offer is gone.
const OPENED: &str = "2026-11-25T00:00:01.000Z";

/// How many changes the outbox holds.
async fn outbox_len(store: &EmbeddedStore) -> u64 {
    use redb::ReadableTableMetadata as _;
    store
        .run(|db| {
            let txn = db.begin_read().map_err(other)?;
            let outbox = txn.open_table(OUTBOX).map_err(other)?;
            outbox.len().map_err(other)
        })
        .await
        .unwrap()
}

/// No request waits for the projection: while its worker cannot drain the outbox
/// (here: the drain is held), writes still commit and answer, their changes queued;
/// once it can, they are applied.
#[tokio::test]
async fn requests_never_wait_for_the_projection_and_the_worker_applies_by_itself() {
    let store = EmbeddedStore::in_memory().unwrap();
    let (a, b) = (user(1, "0a"), user(2, "0b"));
    let held = store.projection.draining.lock().await;
    let key =
        RoomKey::parse("59830ebc3a4184110566bf1a290d08473dfdcbd492ce498b14cd1a5e2fa2e441").unwrap();
    let room = key.room_of(a.public_id, b.public_id);
    let writes = async {
        for u in [&a, &b] {
            store.insert_user(u, None).await.unwrap();
        }
        let member = Member {
            public_id: a.public_id,
            username: a.username.clone(),
        };
        for n in 1..=3u64 {
            let id = format!("{n:032x}");
            let message = KeptMessage {
                cursor: Cursor::new(n, &id).unwrap(),
                id,
                from: member.clone(),
                message: format!("m{n}"),
                sent_at: OPENED.into(),
            };
            store
                .keep_message(&room, &message, 9_999_999_999, Keeping::New)
                .await
                .unwrap();
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), writes)
        .await
        .expect("the writes answered while the projection was held");
    let queued = outbox_len(&store).await;
    assert_eq!(queued, 3, "each kept message queued its change");
    drop(held);
    // The worker, woken by the writes, applies them by itself once it may (no `settle`
    // here: this is the worker's own loop at work).
    let drained = async {
        while outbox_len(&store).await > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), drained)
        .await
        .expect("the worker applied the queued changes by itself");
}

#[tokio::test]
async fn reprojecting_a_file_rebuilds_its_room_lists() {
    let store = EmbeddedStore::in_memory().unwrap();
    let (a, b) = (user(1, "0a"), user(2, "0b"));
    for u in [&a, &b] {
        store.insert_user(u, None).await.unwrap();
    }
    let key =
        RoomKey::parse("59830ebc3a4184110566bf1a290d08473dfdcbd492ce498b14cd1a5e2fa2e441").unwrap();
    let room = key.room_of(a.public_id, b.public_id);
    let requester = Requester {
        member: Member {
            public_id: a.public_id,
            username: a.username.clone(),
        },
        since: a.created_at.clone(),
        public_key: None,
        rooms: Default::default(),
        connects: None,
        announced: Default::default(),
    };
    let side = if a.public_id.to_string() < b.public_id.to_string() {
        Side::Low
    } else {
        Side::High
    };
    store
        .join_room(&Joining {
            room: &room,
            side,
            joiner: &a.private_id_hash,
            requester: &requester,
            target: b.public_id,
            max_rooms: 10,
            connects: RateWindow {
                window: 1,
                limit: 10,
            },
            offer_expires_at: 1_766_620_801,
            now: "2026-11-25T00:00:01.000Z",
        })
        .await
        .unwrap();
    let message = KeptMessage {
        cursor: Cursor::new(1_764_028_802_000, &"0c".repeat(16)).unwrap(),
        id: "0c".repeat(16),
        from: requester.member.clone(),
        message: "hello".into(),
        sent_at: "2026-11-25T00:00:02.000Z".into(),
    };
    store
        .keep_message(&room, &message, 1_764_633_600, Keeping::New)
        .await
        .unwrap();
    store.settle().await.unwrap();
    let projected = store.dump().await.unwrap();
    let copy = keys::storage_key(
        &keys::user(&b.private_id_hash),
        &keys::offer_entry(OPENED, &room),
    );
    assert!(projected.iter().any(|(k, _)| *k == copy), "{projected:#?}");

    // The file as an earlier version left it: no copies, no noted messages; and a
    // copy of an offer that is gone.
    let stale_room = key.room_of(a.public_id, PublicId::from_number(3).unwrap());
    let stale = keys::storage_key(
        &keys::user(&b.private_id_hash),
        &keys::offer_entry(OPENED, &stale_room),
    );
    let db = store.db.clone();
    let (copy_key, stale_key) = (copy.clone(), stale.clone());
    let offer = InboxItem::new(
        b.public_id,
        &b.created_at,
        &Offer {
            room: stale_room,
            from: requester.member.clone(),
            public_key: None,
            opened_at: OPENED.into(),
            expires_at: Some(1_766_620_801),
        },
    );
    tokio::task::spawn_blocking(move || {
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(ITEMS).unwrap();
            table.remove(copy_key.as_str()).unwrap();
            let joined =
                keys::storage_key(&keys::user(&a.private_id_hash), &keys::room_entry(&room));
            let mut item: JoinedItem = get_item(&table, &joined).unwrap().unwrap();
            item.last_message = LastMessageEntry::default();
            table
                .insert(joined.as_str(), encode(&item).unwrap().as_slice())
                .unwrap();
            table
                .insert(stale_key.as_str(), encode(&offer).unwrap().as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    })
    .await
    .unwrap();
    assert_ne!(store.dump().await.unwrap(), projected);

    store.reproject().await.unwrap();
    assert_eq!(store.dump().await.unwrap(), projected);
}
