//! The storage contract on both stores: a real DynamoDB-compatible server (moto,
//! started by ./scripts/test.sh), each test on a fresh table, and the embedded store
//! (`on_both_stores!` runs a test on each), plus a check that the same writes leave
//! identical items in both. Users (both items or neither, uniqueness under 200
//! concurrent creates, collision retries and a clean `id_space_exhausted`, id blocks,
//! the per-address create limit), rooms (idempotent membership, rooms of unused ids,
//! who may join, the room cap, the connect limit, re-announcements, blocks for both,
//! an offered room blocked without joining), messages (the rate limit across rooms, its
//! slots, one write unit at the room cap, exactly-once sends and their faults), the
//! history (in order, paged both ways, expired left out, nothing from before a member
//! existed or before the rotation that gave the id), the round-trip budgets, the room
//! lists (one query of the lister's partition, offers newest first and expiring, a
//! flood that never hides a friend's offer, retired ids), the projection's write budget
//! and retries, and reprojection.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::{Items, ROOM_KEY, now, pusher_receiver::Receiver, round_trip_counter};
use secret_rooms::domain::SocketId;
use secret_rooms::domain::addresses::{AddressLimit, CreateLimit};
use secret_rooms::domain::channels::{AuthorizeError, authorize_channel};
use secret_rooms::domain::history::{
    Before, Cursor, HistoryError, MessageTtl, list_messages, list_messages_newest_first,
};
use secret_rooms::domain::inbox::{MAX_OFFERS, RoomList, list_rooms};
use secret_rooms::domain::messages::{Message, RateLimit, SendError, send_message};
use secret_rooms::domain::rooms::{
    BlockError, ConnectError, ConnectLimits, ROOM_EVENT, RoomKey, Side, block_room, connect,
    connect_and_announce, connect_limited,
};
use secret_rooms::domain::sent::MessageId;
use secret_rooms::domain::users::{
    CreateUserError, CreatedUser, IdPolicy, RotateIdError, UserIds, create_user, rotate_public_id,
};
use secret_rooms::domain::{PrivateId, PrivateIdHash, PublicId, PublicKey, RoomId};
use secret_rooms::realtime::pusher::{PusherClient, PusherConfig, PusherCredentials};
use secret_rooms::store::{
    Allowance, Announce, CreateQuota, HistoryPage, InsertUserError, JoinError, Joining, Keeping,
    KeptMessage, Member, RateWindow, Requester, RotateError, Store, UserRecord,
};
use secret_rooms::store::{ListStore, MessageStore, UserStore};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

fn room_key() -> RoomKey {
    RoomKey::parse(ROOM_KEY).unwrap()
}

/// The first six-digit id not in `taken`.
fn free_id(taken: &[PublicId]) -> PublicId {
    (0..PublicId::SHORT_SPACE)
        .map(|n| PublicId::from_number(n).unwrap())
        .find(|p| !taken.contains(p))
        .unwrap()
}

fn member_of(user: &CreatedUser) -> Member {
    Member {
        public_id: user.public_id,
        username: user.username.clone(),
    }
}

/// A connect's requester as the store reads them.
fn requester(member: &Member) -> Requester {
    Requester {
        member: member.clone(),
        since: "2026-11-24T00:00:00.000Z".into(),
        public_key: None,
        rooms: Default::default(),
        connects: None,
        announced: Default::default(),
    }
}

/// `RoomStore::join_room` with its fields as arguments, and no connect limit a test reaches.
#[async_trait::async_trait]
trait Join {
    #[allow(clippy::too_many_arguments)]
    async fn join(
        &self,
        room: &RoomId,
        side: Side,
        joiner: &PrivateIdHash,
        requester: &Requester,
        target: PublicId,
        max_rooms: usize,
        now: &str,
    ) -> Result<Announce, JoinError>;
}

#[async_trait::async_trait]
impl<T: Store + ?Sized> Join for T {
    async fn join(
        &self,
        room: &RoomId,
        side: Side,
        joiner: &PrivateIdHash,
        requester: &Requester,
        target: PublicId,
        max_rooms: usize,
        now: &str,
    ) -> Result<Announce, JoinError> {
        let (connects, _) = RateLimit::UNLIMITED.window_at(SystemTime::now());
        self.join_room(&Joining {
            room,
            side,
            joiner,
            requester,
            target,
            max_rooms,
            connects,
            offer_expires_at: 1_900_000_000,
            now,
        })
        .await
    }
}

/// How many rooms are offered to `to` (its partition's `ROOM#` items).
async fn offers_to(store: &impl Items, to: PublicId) -> usize {
    let prefix = format!("PUBLIC#{to} ROOM#");
    let items = store.items().await;
    items.keys().filter(|k| k.starts_with(&prefix)).count()
}

async fn new_user(store: &dyn Store) -> CreatedUser {
    create(store, IdPolicy::default()).await.unwrap()
}

/// A create by a fresh allocator (a new function instance): a block reservation, then
/// the user's transaction.
async fn create(store: &dyn Store, policy: IdPolicy) -> Result<CreatedUser, CreateUserError> {
    create_user(store, &UserIds::new(1), policy, None, None, now()).await
}

async fn create_writes_both_items_with_an_increasing_id<S: Store + Items + Clone + 'static>(
    store: S,
) {
    let mut last_id = 0;
    for _ in 0..3 {
        let user = new_user(&store).await;
        assert!(
            user.id > last_id,
            "ids must increase: {} after {last_id}",
            user.id
        );
        last_id = user.id;
        let hash = user.private_id.hash();
        let record = store.get_user(&hash).await.unwrap().expect("user item");
        assert_eq!(record.public_id, user.public_id);
        assert_eq!(record.username, user.username);
        assert_eq!(record.id, user.id);
        assert_eq!(record.created_at, record.updated_at);
        let marker = store
            .get_public(user.public_id)
            .await
            .unwrap()
            .expect("public marker");
        assert_eq!(marker.owner, hash);
        assert_eq!(marker.username, user.username);
    }
    assert_eq!(store.reserve_user_ids(1).await.unwrap(), last_id + 1);
}

async fn the_private_id_itself_is_never_stored<S: Store + Items + Clone + 'static>(store: S) {
    let user = new_user(&store).await;
    let dump = serde_json::to_string(&store.items().await).unwrap();
    assert!(dump.contains(&user.private_id.hash().to_hex()));
    assert!(
        !dump.contains(user.private_id.expose()),
        "private id found in the table"
    );
}

async fn ids_stay_unique_under_200_concurrent_creates<S: Store + Items + Clone + 'static>(
    store: S,
) {
    let store = Arc::new(store);
    // Spaces of 1000 make collisions between the 200 frequent, so the conditional
    // writes and retries are exercised, not just the random draw. The first 500 users of
    // a table get six-digit ids.
    let policy = IdPolicy {
        short_space: 1000,
        long_space: 1000,
        attempts: 40,
    };
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { create(store.as_ref(), policy).await })
        })
        .collect();
    let mut users = Vec::new();
    for task in tasks {
        users.push(task.await.unwrap().expect("create under concurrency"));
    }
    let public: HashSet<_> = users.iter().map(|u| u.public_id).collect();
    let numeric: HashSet<_> = users.iter().map(|u| u.id).collect();
    let private: HashSet<_> = users.iter().map(|u| u.private_id.hash()).collect();
    assert_eq!(public.len(), 200, "a public id was handed out twice");
    assert_eq!(numeric.len(), 200, "a numeric id was handed out twice");
    assert_eq!(private.len(), 200);
    for user in &users {
        let marker = store.get_public(user.public_id).await.unwrap().unwrap();
        assert_eq!(
            marker.owner,
            user.private_id.hash(),
            "marker of {} points elsewhere",
            user.public_id
        );
        let record = store
            .get_user(&user.private_id.hash())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.public_id, user.public_id);
    }
}

async fn collisions_are_retried_and_exhaustion_is_clean<S: Store + Items + Clone + 'static>(
    store: S,
) {
    let mut trips = round_trip_counter(&store);
    // One six-digit id (the first user's: the space is 2, and the second user is past
    // its half) and one nine-digit id (the second user's).
    let tiny = IdPolicy {
        short_space: 2,
        long_space: 1,
        attempts: 5,
    };
    let first = create(&store, tiny).await.unwrap();
    assert!(!first.public_id.is_long());
    assert_eq!(
        trips(),
        2,
        "a create without collision is 2 round trips on a fresh allocator"
    );
    let second = create(&store, tiny).await.unwrap();
    assert_eq!(second.public_id.to_string(), "000-000-000");
    trips();

    match create(&store, tiny).await {
        Err(CreateUserError::IdSpaceExhausted(5)) => {}
        other => panic!("expected id_space_exhausted, got {other:?}"),
    }
    assert_eq!(
        trips(),
        6,
        "1 counter + 1 per attempt, up to the bound of 5"
    );
    for user in [&first, &second] {
        let marker = store.get_public(user.public_id).await.unwrap().unwrap();
        assert_eq!(
            marker.owner,
            user.private_id.hash(),
            "the taken id kept its owner"
        );
    }

    // With one free id left, retries find it (each draw misses with probability 1/2).
    let two = IdPolicy {
        short_space: 2,
        long_space: 2,
        attempts: 64,
    };
    let third = create(&store, two).await.unwrap();
    assert_eq!(third.public_id.to_string(), "000-000-001");
    let trips = trips();
    assert!(
        (2..=65).contains(&trips),
        "1 counter + 1 per attempt (1 to 64): {trips}"
    );
}

fn address_limit(creates: u32) -> AddressLimit {
    AddressLimit {
        key: room_key().address_key(),
        limit: CreateLimit {
            creates,
            window_secs: 3600,
        },
    }
}

/// An allocator reserves its ids in blocks: one counter update per block, and ids that
/// increase.
async fn ids_come_in_blocks<S: Store + Items + Clone + 'static>(store: S) {
    let mut trips = round_trip_counter(&store);
    let ids = UserIds::new(50);
    let mut last = 0;
    for _ in 0..120 {
        let user = create_user(&store, &ids, IdPolicy::default(), None, None, now())
            .await
            .unwrap();
        assert!(user.id > last, "{} after {last}", user.id);
        last = user.id;
    }
    // 120 random six-digit ids collide about once in 140 runs (120^2 / 2 / 10^6): a
    // collision is one more transaction, so a few are allowed, and no more.
    let trips = trips();
    assert!(
        (123..=126).contains(&trips),
        "120 transactions and 3 blocks of 50 (+ collisions): {trips}"
    );
    // A second allocator (another instance) takes the next block.
    let other = create_user(
        &store,
        &UserIds::new(50),
        IdPolicy::default(),
        None,
        None,
        now(),
    )
    .await
    .unwrap();
    assert_eq!(other.id, 151);
}

/// At most `creates` users per source address and window; a refused create writes
/// nothing; the address is kept only as a keyed hash, until its window ends.
async fn creates_are_limited_per_source_address<S: Store + Items + Clone + 'static>(store: S) {
    let limit = address_limit(3);
    let ids = UserIds::default();
    let at = |secs| std::time::UNIX_EPOCH + Duration::from_secs(secs);
    let (a, b) = (
        "203.0.113.7".parse().unwrap(),
        "2001:db8::1".parse().unwrap(),
    );
    let create_from = |address, secs| {
        let quota = limit.quota(Some(address), at(secs));
        let ids = &ids;
        let store = &store;
        async move {
            create_user(
                store,
                ids,
                IdPolicy::default(),
                Some(&quota),
                None,
                at(secs),
            )
            .await
        }
    };
    let mut last = 0;
    for _ in 0..3 {
        last = create_from(a, 7_200).await.unwrap().id;
    }
    let before = store.items().await;
    match create_from(a, 7_300).await {
        Err(CreateUserError::RateLimited { retry_after }) => assert_eq!(retry_after, 3_500),
        other => panic!("expected rate_limited, got {other:?}"),
    }
    assert_eq!(
        store.items().await,
        before,
        "a refused create writes nothing"
    );
    // Nor takes a numeric id: the next create gets the one after the last created.
    let next = create_from(b, 7_300).await.unwrap();
    assert_eq!(next.id, last + 1, "a refused create takes no numeric id");
    // The next window starts afresh.
    create_from(a, 10_800).await.unwrap();

    let items = store.items().await;
    let text = serde_json::to_string(&items).unwrap();
    assert!(!text.contains("203.0.113.7") && !text.contains("2001:db8"));
    let hash = limit.key.hash(a);
    let counted = items
        .get(&format!("ADDR#{hash}#3"))
        .expect("the next window's count");
    assert_eq!(counted["count"], 1);
    assert_eq!(counted["ttl"], 14_400, "kept until its window ends");
    assert_eq!(counted["type"], "address");
}

async fn a_user_is_both_items_or_neither<S: Store + Items + Clone + 'static>(store: S) {
    let taken = new_user(&store).await;
    let fresh = PrivateId::generate().unwrap();
    let record = |public_id, hash| UserRecord {
        id: 99,
        public_id,
        private_id_hash: hash,
        username: "Test Yak".into(),
        created_at: "2026-01-01T00:00:00.000Z".into(),
        updated_at: "2026-01-01T00:00:00.000Z".into(),
        public_key: None,
    };
    // Public id taken: the new user item must not be written either.
    let clash = store
        .insert_user(&record(taken.public_id, fresh.hash()), None)
        .await;
    assert!(matches!(clash, Err(InsertUserError::Taken)), "{clash:?}");
    assert!(store.get_user(&fresh.hash()).await.unwrap().is_none());
    // Private-id hash taken: the new public marker must not be written either.
    let free = free_id(&[taken.public_id]);
    let clash = store
        .insert_user(&record(free, taken.private_id.hash()), None)
        .await;
    assert!(matches!(clash, Err(InsertUserError::Taken)), "{clash:?}");
    assert!(store.get_public(free).await.unwrap().is_none());
    assert_eq!(
        store
            .get_user(&taken.private_id.hash())
            .await
            .unwrap()
            .unwrap()
            .id,
        taken.id
    );

    // With the address's limit on (and not reached), a clash is only a clash and leaves
    // no count behind: the count and the create are one write. So with rotations: to a
    // taken id, and by an identity that no longer holds the id it names.
    let quota = CreateQuota {
        address: "a-hashed-address".into(),
        window: 1,
        limit: 5,
        expires_at: 4_000_000_000,
        retry_after: 60,
    };
    let other = new_user(&store).await;
    let before = store.items().await;
    let clash = store
        .insert_user(&record(taken.public_id, fresh.hash()), Some(&quota))
        .await;
    assert!(matches!(clash, Err(InsertUserError::Taken)), "{clash:?}");
    let holder = Member {
        public_id: taken.public_id,
        username: taken.username.clone(),
    };
    let (who, at) = (taken.private_id.hash(), "2026-01-01T00:00:00.000Z");
    let to_taken = store
        .rotate_public_id(&who, &holder, other.public_id, Some(&quota), at)
        .await;
    assert!(matches!(to_taken, Err(RotateError::Taken)), "{to_taken:?}");
    let stale = Member {
        public_id: free,
        ..holder
    };
    let elsewhere = free_id(&[taken.public_id, other.public_id, free]);
    let not_holder = store
        .rotate_public_id(&who, &stale, elsewhere, Some(&quota), at)
        .await;
    assert!(
        matches!(not_holder, Err(RotateError::NotHolder)),
        "{not_holder:?}"
    );
    assert_eq!(store.items().await, before, "a refusal left a count behind");
}

async fn room_membership_is_written_idempotently_from_both_sides<
    S: Store + Items + Clone + 'static,
>(
    store: S,
) {
    let (alice, bob) = (new_user(&store).await, new_user(&store).await);
    let key = room_key();
    let from_alice = connect(&store, &key, &alice.private_id, bob.public_id, now())
        .await
        .unwrap();
    let members_once = store.room_members(&from_alice).await.unwrap().unwrap();
    assert_eq!(
        members_once,
        vec![(alice.private_id.hash(), member_of(&alice))],
        "a connect records the requester only"
    );
    let room_pk = format!("ROOM#{from_alice}");
    let created_at = |items: std::collections::BTreeMap<String, serde_json::Value>| {
        items[&room_pk]["createdAt"].as_str().unwrap().to_owned()
    };
    let first_created = created_at(store.items().await);

    let from_bob = connect(&store, &key, &bob.private_id, alice.public_id, now())
        .await
        .unwrap();
    assert_eq!(from_alice, from_bob, "both sides must get the same room");
    assert_eq!(from_alice, key.room_of(alice.public_id, bob.public_id));
    let both = store.room_members(&from_alice).await.unwrap().unwrap();
    for (who, target) in [(&alice, &bob), (&bob, &alice)] {
        let again = connect(&store, &key, &who.private_id, target.public_id, now())
            .await
            .unwrap();
        assert_eq!(from_alice, again);
    }

    let members = store.room_members(&from_alice).await.unwrap().unwrap();
    assert_eq!(members, both, "reconnecting must not change the members");
    assert_eq!(members.len(), 2);
    let mut expected = vec![
        (
            alice.private_id.hash(),
            alice.public_id,
            alice.username.clone(),
        ),
        (bob.private_id.hash(), bob.public_id, bob.username.clone()),
    ];
    // The low side (by public-id text) first.
    expected.sort_by_key(|(_, public, _)| public.to_string());
    for ((hash, member), (h, p, u)) in members.iter().zip(&expected) {
        assert_eq!((hash, member.public_id, &member.username), (h, *p, u));
    }
    assert_eq!(
        created_at(store.items().await),
        first_created,
        "createdAt keeps its first value"
    );

    assert!(
        store
            .room_member(&from_alice, &alice.private_id.hash())
            .await
            .unwrap()
            .is_some()
    );
    let stranger = PrivateId::generate().unwrap();
    assert!(
        store
            .room_member(&from_alice, &stranger.hash())
            .await
            .unwrap()
            .is_none()
    );
}

/// A connect to an unused public id joins the room its future holder will share, with
/// the requester as its one member; the holder joins the same room by connecting back.
async fn an_unused_id_gets_the_room_its_holder_will_share<S: Store + Items + Clone + 'static>(
    store: S,
) {
    let alice = new_user(&store).await;
    let key = room_key();
    let unused = free_id(&[alice.public_id]);
    let room = connect(&store, &key, &alice.private_id, unused, now())
        .await
        .unwrap();
    assert_eq!(room, key.room_of(alice.public_id, unused));
    assert_eq!(
        room,
        connect(&store, &key, &alice.private_id, unused, now())
            .await
            .unwrap()
    );
    let members = store.room_members(&room).await.unwrap().unwrap();
    assert_eq!(members, vec![(alice.private_id.hash(), member_of(&alice))]);

    // The id gets a holder, who connects back: the same room, now with both.
    let holder = PrivateId::generate().unwrap();
    let record = UserRecord {
        id: store.reserve_user_ids(1).await.unwrap(),
        public_id: unused,
        private_id_hash: holder.hash(),
        username: "Late Heron".into(),
        created_at: "2026-11-25T00:00:00.000Z".into(),
        updated_at: "2026-11-25T00:00:00.000Z".into(),
        public_key: None,
    };
    store.insert_user(&record, None).await.unwrap();
    assert_eq!(
        connect(&store, &key, &holder, alice.public_id, now())
            .await
            .unwrap(),
        room
    );
    let members = store.room_members(&room).await.unwrap().unwrap();
    assert_eq!(members.len(), 2);
    assert!(
        store
            .room_member(&room, &holder.hash())
            .await
            .unwrap()
            .is_some()
    );
}

/// Nobody but the holders of a pair's two public ids can join its room: a third user's
/// connect to either id gives a room of their own.
async fn only_the_pairs_holders_join_its_room<S: Store + Items + Clone + 'static>(store: S) {
    let (alice, bob, carol) = (
        new_user(&store).await,
        new_user(&store).await,
        new_user(&store).await,
    );
    let key = room_key();
    let room = connect(&store, &key, &alice.private_id, bob.public_id, now())
        .await
        .unwrap();
    for target in [alice.public_id, bob.public_id] {
        let carols = connect(&store, &key, &carol.private_id, target, now())
            .await
            .unwrap();
        assert_ne!(carols, room);
    }
    assert!(
        store
            .room_member(&room, &carol.private_id.hash())
            .await
            .unwrap()
            .is_none()
    );
    let members = store.room_members(&room).await.unwrap().unwrap();
    assert_eq!(members, vec![(alice.private_id.hash(), member_of(&alice))]);
}

async fn connect_refuses_unknown_and_self<S: Store + Items + Clone + 'static>(store: S) {
    let alice = new_user(&store).await;
    let key = room_key();
    let stranger = PrivateId::generate().unwrap();
    assert!(matches!(
        connect(&store, &key, &stranger, alice.public_id, now()).await,
        Err(ConnectError::UnknownPrivateId)
    ));
    assert!(matches!(
        connect(&store, &key, &alice.private_id, alice.public_id, now()).await,
        Err(ConnectError::CannotConnectToSelf)
    ));
}

async fn round_trips_stay_within_the_spec_budget<S: Store + Items + Clone + 'static>(store: S) {
    let mut trips = round_trip_counter(&store);
    let receiver = Receiver::start().await;
    let pusher = pusher_to(&receiver);
    let key = room_key();

    let ids = UserIds::default();
    let quota = address_limit(30).quota(Some("203.0.113.7".parse().unwrap()), now());
    let alice = create_user(&store, &ids, IdPolicy::default(), Some(&quota), None, now())
        .await
        .unwrap();
    assert_eq!(trips(), 2, "an allocator's first create reserves a block");
    let bob = create_user(&store, &ids, IdPolicy::default(), Some(&quota), None, now())
        .await
        .unwrap();
    assert_eq!(
        trips(),
        1,
        "then a create is 1 round trip, its address's count included"
    );
    // Bob joins the room he will post to.
    connect(&store, &key, &bob.private_id, alice.public_id, now())
        .await
        .unwrap();
    trips();

    let room = connect(&store, &key, &alice.private_id, bob.public_id, now())
        .await
        .unwrap();
    assert_eq!(trips(), 2, "connect to an existing public id");
    connect(
        &store,
        &key,
        &alice.private_id,
        free_id(&[alice.public_id, bob.public_id]),
        now(),
    )
    .await
    .unwrap();
    assert_eq!(trips(), 2, "connect to a free public id costs the same");

    let message = Message::parse("hi".into()).unwrap();
    let rate = RateLimit {
        count: 100,
        window_secs: 3600,
    };
    let ttl = MessageTtl::default();
    send_message(
        &store,
        &pusher,
        rate,
        ttl,
        &room,
        &bob.private_id,
        &message,
        None,
        now(),
    )
    .await
    .unwrap();
    assert_eq!(
        trips(),
        2,
        "a sender's first message: the counted update, and the history write before the publish"
    );
    send_message(
        &store,
        &pusher,
        rate,
        ttl,
        &room,
        &bob.private_id,
        &message,
        None,
        now(),
    )
    .await
    .unwrap();
    assert_eq!(trips(), 2, "message");
    let page = list_messages(&store, &room, &alice.private_id, None, 10, now())
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 2);
    assert_eq!(
        trips(),
        2,
        "a page of history: the membership read and one query"
    );
    assert_eq!(receiver.published().len(), 2, "each message publishes once");

    let creds = PusherCredentials::new(
        common::pusher_receiver::KEY,
        common::pusher_receiver::SECRET,
    );
    let socket = SocketId::parse("1.2").unwrap();
    authorize_channel(&store, &creds, &socket, &room, &alice.private_id)
        .await
        .unwrap();
    assert_eq!(trips(), 1, "auth");
}

async fn messages_are_counted_per_sender_and_window<S: Store + Items + Clone + 'static>(store: S) {
    let (alice, bob) = (new_user(&store).await, new_user(&store).await);
    let key = room_key();
    let room = connect(&store, &key, &alice.private_id, bob.public_id, now())
        .await
        .unwrap();
    // Bob is a member, but may post only once he has joined (connected) himself.
    let w = RateWindow {
        window: 1000,
        limit: 3,
    };
    assert_eq!(
        store
            .count_message(&room, &bob.private_id.hash(), w, &common::sent())
            .await
            .unwrap(),
        Allowance::NotMember
    );
    connect(&store, &key, &bob.private_id, alice.public_id, now())
        .await
        .unwrap();
    let (a, b) = (alice.private_id.hash(), bob.private_id.hash());
    for n in 1..=3 {
        match store
            .count_message(&room, &a, w, &common::sent())
            .await
            .unwrap()
        {
            Allowance::Allowed(member) => assert_eq!(member.public_id, alice.public_id),
            other => panic!("message {n} of 3 must pass: {other:?}"),
        }
    }
    assert_eq!(
        store
            .count_message(&room, &a, w, &common::sent())
            .await
            .unwrap(),
        Allowance::Limited
    );
    // Each sender has their own count.
    assert!(matches!(
        store
            .count_message(&room, &b, w, &common::sent())
            .await
            .unwrap(),
        Allowance::Allowed(_)
    ));
    // Reconnecting does not reset it.
    connect(&store, &key, &alice.private_id, bob.public_id, now())
        .await
        .unwrap();
    assert_eq!(
        store
            .count_message(&room, &a, w, &common::sent())
            .await
            .unwrap(),
        Allowance::Limited
    );
    // The next window starts afresh.
    let next = RateWindow { window: 1001, ..w };
    assert!(matches!(
        store
            .count_message(&room, &a, next, &common::sent())
            .await
            .unwrap(),
        Allowance::Allowed(_)
    ));
    // Strangers and unknown rooms are told apart from neither.
    let stranger = PrivateId::generate().unwrap().hash();
    assert_eq!(
        store
            .count_message(&room, &stranger, w, &common::sent())
            .await
            .unwrap(),
        Allowance::NotMember
    );
    let nowhere = key.room_of(free_id(&[]), free_id(&[free_id(&[])]));
    assert_eq!(
        store
            .count_message(&nowhere, &a, w, &common::sent())
            .await
            .unwrap(),
        Allowance::NotMember
    );

    // Under concurrency the limit holds exactly.
    let store = Arc::new(store);
    let burst = RateWindow {
        window: 2000,
        limit: 5,
    };
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, room) = (store.clone(), room.clone());
            tokio::spawn(
                async move { store.count_message(&room, &b, burst, &common::sent()).await },
            )
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(Allowance::Allowed(_)) => allowed += 1,
            Ok(Allowance::Limited) => {}
            // DynamoDB may give up on a counter that keeps changing: a 503, never a pass.
            Err(secret_rooms::store::StoreError::Unavailable(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(allowed, 5, "exactly the limit passes in a burst");
}

#[tokio::test]
async fn dynamodb_warm_up_is_one_read_that_writes_nothing() {
    let store = common::fresh_store().await;
    let before = store.items().await;
    let mut trips = round_trip_counter(&store);
    store.warm_up().await;
    assert_eq!(trips(), 1);
    assert_eq!(store.items().await, before);
}

/// The message budget exactly, with explicit windows (the test above reads the clock):
/// one round trip per message, the first of each window included. On DynamoDB the one
/// exception is the first message or two after a pause of 63 or 64 windows (give or
/// take a multiple of 64), when a rate slot still holds an old count: 2. The embedded
/// store: always 1.
async fn message_counts_cost(store: &dyn Store, stale_slot: usize) {
    let (alice, bob) = (new_user(store).await, new_user(store).await);
    let room = connect(store, &room_key(), &alice.private_id, bob.public_id, now())
        .await
        .unwrap();
    let a = alice.private_id.hash();
    let mut trips = round_trip_counter(store);
    let mut send = async |window: u64| {
        let w = RateWindow { window, limit: 2 };
        let allowance = store
            .count_message(&room, &a, w, &common::sent())
            .await
            .unwrap();
        (allowance, trips())
    };
    for window in [10, 11, 13, 100] {
        let (first, cost) = send(window).await;
        assert!(matches!(first, Allowance::Allowed(_)), "window {window}");
        assert_eq!(cost, 1, "first message of window {window}");
        let (second, cost) = send(window).await;
        assert!(matches!(second, Allowance::Allowed(_)), "window {window}");
        assert_eq!(cost, 1, "second message of window {window}");
        assert_eq!(
            send(window).await,
            (Allowance::Limited, 1),
            "window {window}"
        );
    }
    // 164 uses the slot 100 filled: its count is old news, not this window's.
    let (first, cost) = send(164).await;
    assert!(matches!(first, Allowance::Allowed(_)));
    assert_eq!(cost, stale_slot);
    assert!(matches!(send(164).await.0, Allowance::Allowed(_)));
    assert_eq!(send(164).await, (Allowance::Limited, 1));
    // A late message of the full window 164, after 165 has started, neither passes on
    // a fresh count nor resets 165's: of it and two more in 165, one passes.
    assert!(matches!(send(165).await.0, Allowance::Allowed(_)));
    let mut passed = 0;
    for window in [164, 165, 165] {
        let (allowance, cost) = send(window).await;
        assert_eq!(cost, 1);
        passed += usize::from(matches!(allowance, Allowance::Allowed(_)));
    }
    assert_eq!(passed, 1);
    // After 164 and 165, a pause of 63 windows: 228 uses 164's slot and 229 uses 165's
    // (kept by 228's update as a neighbour), both stale; 230's is free again.
    for (window, cost) in [(228, stale_slot), (229, stale_slot), (230, 1)] {
        let (allowance, trips) = send(window).await;
        assert!(
            matches!(allowance, Allowance::Allowed(_)),
            "window {window}"
        );
        assert_eq!(trips, cost, "window {window}");
    }
}

#[tokio::test]
async fn dynamodb_message_budget() {
    message_counts_cost(&common::fresh_store().await, 2).await;
}

/// A user item holds at most three rate slots: each count removes all others.
#[tokio::test]
async fn dynamodb_rate_slots_do_not_pile_up() {
    let store = common::fresh_store().await;
    let (alice, bob) = (new_user(&store).await, new_user(&store).await);
    let room = connect(&store, &room_key(), &alice.private_id, bob.public_id, now())
        .await
        .unwrap();
    let a = alice.private_id.hash();
    let user_pk = format!("USER#{}", a.to_hex());
    let slots_after = async |window: u64| {
        let w = RateWindow { window, limit: 5 };
        assert!(matches!(
            store
                .count_message(&room, &a, w, &common::sent())
                .await
                .unwrap(),
            Allowance::Allowed(_)
        ));
        let items = store.items().await;
        let mut slots: Vec<String> = items[&user_pk]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with("rl"))
            .cloned()
            .collect();
        slots.sort();
        slots
    };
    assert_eq!(slots_after(10).await, ["rl10"]);
    assert_eq!(slots_after(11).await, ["rl10", "rl11"]);
    assert_eq!(slots_after(13).await, ["rl13"]);
    assert_eq!(slots_after(75).await, ["rl11"]);
    assert_eq!(slots_after(76).await, ["rl11", "rl12"]);
}

#[tokio::test]
async fn embedded_message_budget() {
    message_counts_cost(&secret_rooms::store::EmbeddedStore::in_memory().unwrap(), 1).await;
}

/// The limit is per identity: a sender's messages to all their rooms, with used and
/// unused ids alike,
/// share one count, so joining more rooms buys no more messages.
async fn the_rate_limit_spans_a_senders_rooms<S: Store + Items + Clone + 'static>(store: S) {
    let (alice, bob) = (new_user(&store).await, new_user(&store).await);
    let key = room_key();
    let real = connect(&store, &key, &alice.private_id, bob.public_id, now())
        .await
        .unwrap();
    let free = free_id(&[alice.public_id, bob.public_id]);
    let unused = connect(&store, &key, &alice.private_id, free, now())
        .await
        .unwrap();
    let a = alice.private_id.hash();
    let w = RateWindow {
        window: 3000,
        limit: 3,
    };
    for room in [&real, &unused, &real] {
        assert!(matches!(
            store
                .count_message(room, &a, w, &common::sent())
                .await
                .unwrap(),
            Allowance::Allowed(_)
        ));
    }
    for room in [&real, &unused] {
        assert_eq!(
            store
                .count_message(room, &a, w, &common::sent())
                .await
                .unwrap(),
            Allowance::Limited
        );
    }
}

/// One identity joins at most `max_rooms` rooms, blocked ones included; a refused join
/// writes nothing, and joining an open room again is always allowed.
/// SPEC v3 "Bounded by the requester": at most `limit` connects per identity and window,
/// first connects and connects again alike, whatever the target (held or not); a refused
/// connect writes nothing, and the next window counts anew.
async fn connects_are_limited_per_identity<S: Store + Items + Clone + 'static>(store: S) {
    let key = room_key();
    let (alice, bob, carol) = (
        new_user(&store).await,
        new_user(&store).await,
        new_user(&store).await,
    );
    let unused = free_id(&[alice.public_id, bob.public_id, carol.public_id]);
    let limit = RateLimit {
        count: 3,
        window_secs: 3600,
    };
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    let connect_at = |who: &PrivateId, to: PublicId, at: SystemTime| {
        let (store, key, who) = (store.clone(), key.clone(), who.clone());
        let limits = ConnectLimits {
            rate: limit,
            ..ConnectLimits::default()
        };
        async move { connect_limited(&store, &key, &who, to, limits, at).await }
    };
    // A first connect, the same again, and a first connect to an unused id: three.
    for to in [bob.public_id, bob.public_id, unused] {
        connect_at(&alice.private_id, to, at).await.unwrap();
    }
    store.settle().await;
    let before = store.items().await;
    for to in [bob.public_id, carol.public_id, unused] {
        match connect_at(&alice.private_id, to, at).await {
            Err(ConnectError::RateLimited { retry_after }) => {
                assert_eq!(retry_after, 3600 - 1_795_000_000 % 3600);
            }
            other => panic!("the fourth connect (to {to}) was not refused: {other:?}"),
        }
    }
    assert_eq!(
        store.items().await,
        before,
        "a refused connect writes nothing"
    );
    // Others are counted on their own items.
    connect_at(&bob.private_id, alice.public_id, at)
        .await
        .unwrap();
    // The next window counts anew.
    let later = at + Duration::from_secs(3600);
    connect_at(&alice.private_id, carol.public_id, later)
        .await
        .unwrap();
}

async fn joining_rooms_is_capped_per_identity<S: Store + Items + Clone + 'static>(store: S) {
    let alice = new_user(&store).await;
    let a = alice.private_id.hash();
    let me = member_of(&alice);
    let key = room_key();
    let mut others: Vec<PublicId> = Vec::new();
    for _ in 0..3 {
        let taken: Vec<_> = others.iter().copied().chain([alice.public_id]).collect();
        others.push(free_id(&taken));
    }
    let rooms: Vec<RoomId> = others
        .iter()
        .map(|other| key.room_of(alice.public_id, *other))
        .collect();
    let side = |n: usize| Side::of(alice.public_id, others[n]);
    let now = "2026-11-24T00:00:00Z";
    store
        .join(&rooms[0], side(0), &a, &requester(&me), others[0], 2, now)
        .await
        .unwrap();
    store
        .join(&rooms[1], side(1), &a, &requester(&me), others[1], 2, now)
        .await
        .unwrap();
    let before = store.items().await;
    assert!(matches!(
        store
            .join(&rooms[2], side(2), &a, &requester(&me), others[2], 2, now)
            .await,
        Err(JoinError::TooManyRooms)
    ));
    assert_eq!(store.items().await, before, "a refused join writes nothing");
    store
        .join(&rooms[0], side(0), &a, &requester(&me), others[0], 2, now)
        .await
        .unwrap();
    let w = RateWindow {
        window: 1,
        limit: 5,
    };
    assert_eq!(
        store
            .count_message(&rooms[2], &a, w, &common::sent())
            .await
            .unwrap(),
        Allowance::NotMember
    );
    // A blocked room leaves the open rooms but still counts: blocking does not buy a
    // place for another room.
    store
        .close_room(&rooms[1], &a, &[alice.public_id], None, now)
        .await
        .unwrap();
    let before = store.items().await;
    assert!(matches!(
        store
            .join(&rooms[2], side(2), &a, &requester(&me), others[2], 2, now)
            .await,
        Err(JoinError::TooManyRooms)
    ));
    assert_eq!(store.items().await, before, "a refused join writes nothing");
    // Joining the open room again still works, as the domain asks it (knowing it is
    // joined) and as a bare join does.
    let joined = Requester {
        rooms: [rooms[0].tag()].into(),
        ..requester(&me)
    };
    for asked in [&joined, &requester(&me)] {
        store
            .join(&rooms[0], side(0), &a, asked, others[0], 2, now)
            .await
            .unwrap();
    }
}

async fn a_joiner_without_a_user_item_is_refused_and_nothing_is_written<
    S: Store + Items + Clone + 'static,
>(
    store: S,
) {
    let ghost = PrivateId::generate().unwrap().hash();
    let member = Member {
        public_id: PublicId::parse("000-001").unwrap(),
        username: "Ghost".into(),
    };
    let room = room_key().room_of(member.public_id, PublicId::parse("000-002").unwrap());
    let before = store.items().await;
    let joined = store
        .join(
            &room,
            Side::Low,
            &ghost,
            &requester(&member),
            PublicId::parse("000-002").unwrap(),
            10,
            "2026-11-25T00:00:00.000Z",
        )
        .await;
    assert!(matches!(joined, Err(JoinError::NoSuchJoiner)), "{joined:?}");
    assert_eq!(store.items().await, before, "a refused join writes nothing");
}

/// The same writes leave the same items on both stores: one schema, attribute for
/// attribute (but the key, which DynamoDB also keeps as `pk`, and each store's own rate
/// counter: slots `rl<n>` and `rt` on DynamoDB, `rl` on the embedded store).
#[tokio::test]
async fn both_stores_keep_the_same_items() {
    async fn scenario(store: &dyn Store) {
        let user = |n: u32, hash: &str| UserRecord {
            id: u64::from(n),
            public_id: PublicId::from_number(n).unwrap(),
            private_id_hash: secret_rooms::domain::PrivateIdHash::from_hex(&hash.repeat(32))
                .unwrap(),
            username: format!("User {n}"),
            created_at: "2026-11-25T00:00:00.000Z".into(),
            updated_at: "2026-11-25T00:00:00.000Z".into(),
            // One user with a key, one without.
            public_key: (n == 1)
                .then(|| PublicKey::parse("hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo").unwrap()),
        };
        let (a, b) = (user(1, "0a"), user(2, "0b"));
        for u in [&a, &b] {
            store.reserve_user_ids(1).await.unwrap();
            store.insert_user(u, None).await.unwrap();
        }
        let member = |u: &UserRecord| Member {
            public_id: u.public_id,
            username: u.username.clone(),
        };
        let room = room_key().room_of(a.public_id, b.public_id);
        for (joiner, side) in [(&a, Side::Low), (&b, Side::High)] {
            store
                .join(
                    &room,
                    side,
                    &joiner.private_id_hash,
                    &Requester {
                        member: member(joiner),
                        since: joiner.created_at.clone(),
                        public_key: joiner.public_key,
                        rooms: Default::default(),
                        connects: None,
                        announced: Default::default(),
                    },
                    if side == Side::Low {
                        b.public_id
                    } else {
                        a.public_id
                    },
                    10,
                    "2026-11-25T00:00:01.000Z",
                )
                .await
                .unwrap();
        }
        let w = RateWindow {
            window: 7,
            limit: 5,
        };
        // The message kept below, as its count remembers it: the same on both stores.
        let sent = secret_rooms::domain::sent::LastSent::of(
            &secret_rooms::domain::sent::MessageId::parse("0c".repeat(16)).unwrap(),
            &room,
            "hello \u{1} \"there\"",
            std::time::UNIX_EPOCH + Duration::from_millis(1_764_028_800_000),
        );
        let counted = store
            .count_message(&room, &a.private_id_hash, w, &sent)
            .await;
        assert_eq!(counted.unwrap(), Allowance::Allowed(member(&a)));
        let kept = KeptMessage {
            cursor: Cursor::new(1_764_028_800_000, &"0c".repeat(16)).unwrap(),
            id: "0c".repeat(16),
            from: member(&a),
            message: "hello \u{1} \"there\"".into(),
            sent_at: "2026-11-25T00:00:00.000Z".into(),
        };
        store
            .keep_message(&room, &kept, 1_764_633_600, Keeping::New)
            .await
            .unwrap();
        store
            .close_room(
                &room,
                &a.private_id_hash,
                &[a.public_id],
                Some(&b.private_id_hash),
                "2026-11-25T00:00:02.000Z",
            )
            .await
            .unwrap();
    }
    fn comparable(items: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
        items
            .into_iter()
            .map(|(key, mut item)| {
                if let Some(map) = item.as_object_mut() {
                    map.retain(|name, _| {
                        !["pk", "sk", "rt"].contains(&name.as_str()) && !name.starts_with("rl")
                    });
                }
                (key, item)
            })
            .collect()
    }
    let dynamo = common::fresh_store().await;
    // Projected after the scenario on both, as the test reads DynamoDB's stream: a copy
    // of an offer notes the room's newest message when it is made, and later messages
    // note the joined entry of a side its holder joined, not the copy (one entry a
    // side), so the copy's noted message depends on when it was made (the list shows
    // the joined entry's, which is never older).
    let embedded = secret_rooms::store::EmbeddedStore::in_memory()
        .unwrap()
        .without_worker();
    scenario(&dynamo).await;
    scenario(&embedded).await;
    // The projection: on DynamoDB, of the stream's records; on the embedded store, of
    // what its writes queued (its `items` waits for that).
    dynamo.settle().await;
    let (on_dynamo, on_embedded) = (dynamo.items().await, embedded.items().await);
    assert_eq!(
        on_dynamo.len(),
        11,
        "counter, 2 users, 2 markers, 1 room, 1 message, 2 joined, 1 offer (the \
         blocker's left) and its copy in its holder's partition: {on_dynamo:#?}"
    );
    // Both joined entries and the copy note the message.
    let noting: Vec<(&String, &Value)> = on_dynamo
        .iter()
        .filter(|(key, _)| {
            key.contains(" ROOM#") && key.starts_with("USER#") || key.contains(" OFFER#")
        })
        .collect();
    assert_eq!(
        noting.len(),
        3,
        "two joined entries and a copy: {noting:#?}"
    );
    for (key, item) in noting {
        assert_eq!(
            item["lastMessageAt"],
            json!("2026-11-25T00:00:00.000Z"),
            "{key}"
        );
        assert_eq!(item["lastMessageTtl"], json!(1_764_633_600), "{key}");
    }
    // The keyed user's key, on their user item and on their offer to the other.
    let key = json!("hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo");
    assert_eq!(
        on_dynamo[&format!("USER#{}", "0a".repeat(32))]["publicKey"],
        key
    );
    let room = room_key().room_of(
        PublicId::from_number(1).unwrap(),
        PublicId::from_number(2).unwrap(),
    );
    assert_eq!(
        on_dynamo[&format!("PUBLIC#000-002 ROOM#{room}")]["publicKey"],
        key
    );
    assert_eq!(comparable(on_dynamo), comparable(on_embedded));
}

/// A Pusher client publishing to the test receiver.
fn pusher_to(receiver: &Receiver) -> PusherClient {
    PusherClient::new(&PusherConfig {
        app_id: common::pusher_receiver::APP_ID.into(),
        credentials: PusherCredentials::new(
            common::pusher_receiver::KEY,
            common::pusher_receiver::SECRET,
        ),
        base_url: receiver.base_url.clone(),
        timeout: Duration::from_secs(2),
    })
    .unwrap()
}

const ROOMY: RateLimit = RateLimit {
    count: 1000,
    window_secs: 3600,
};

async fn say(
    store: &dyn Store,
    pusher: &PusherClient,
    room: &RoomId,
    who: &PrivateId,
    text: &str,
    at: SystemTime,
) -> Result<(), SendError> {
    let message = Message::parse(text.into()).unwrap();
    let ttl = MessageTtl(Duration::from_secs(3600));
    send_message(store, pusher, ROOMY, ttl, room, who, &message, None, at).await
}

async fn texts(store: &dyn Store, room: &RoomId, who: &PrivateId, at: SystemTime) -> Vec<String> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = list_messages(store, room, who, after, 2, at).await.unwrap();
        out.extend(page.messages.iter().map(|m| m.message.clone()));
        match page.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

/// Two new users who both joined their room (each connected to the other).
async fn joined_pair(store: &dyn Store, key: &RoomKey) -> (CreatedUser, CreatedUser, RoomId) {
    let (alice, bob) = (new_user(store).await, new_user(store).await);
    let room = connect(store, key, &alice.private_id, bob.public_id, now())
        .await
        .unwrap();
    connect(store, key, &bob.private_id, alice.public_id, now())
        .await
        .unwrap();
    (alice, bob, room)
}

/// The `sentAt` of each `message` event `receiver` got under `id`, in order.
fn published_under(receiver: &Receiver, id: &MessageId) -> Vec<Value> {
    receiver
        .messages()
        .iter()
        .filter(|p| p.data["id"] == json!(id.as_str()))
        .map(|p| p.data["sentAt"].clone())
        .collect()
}

/// SPEC v3 exactly once: a message sent under an id is kept and published under it; a
/// retry with the same id and text (after a history write that failed, which published
/// nothing, or an answer lost on the way back) is accepted, kept once at its first time
/// and not counted again, and publishes again under the same id, at most
/// `MAX_REPUBLISHED` times; another text under the id is refused and changes nothing.
async fn a_message_sent_again_under_its_id_is_kept_and_counted_once<
    S: Store + Items + Clone + 'static,
>(
    store: S,
) {
    use secret_rooms::domain::sent::LastSent;
    use secret_rooms_test_kit::recording::Recording;
    let receiver = Receiver::start().await;
    let pusher = pusher_to(&receiver);
    let key = room_key();
    let (alice, bob, room) = joined_pair(&store, &key).await;
    let failing = Recording::new(store.clone());
    let rate = RateLimit {
        count: 3,
        window_secs: 3600,
    };
    let ttl = MessageTtl(Duration::from_secs(3600));
    // At the start of the next rate window, so that every send below falls in one window
    // whatever the clock (from now() a window could end mid-test and the count restart).
    let start = now();
    let (_, left) = rate.window_at(start);
    let t0 = start + Duration::from_secs(left.into());
    let at = |secs| t0 + Duration::from_secs(secs);
    let id = |c: &str| MessageId::parse(c.repeat(22)).unwrap();
    let send = |text: &str, id: Option<MessageId>, at: SystemTime| {
        let message = Message::parse(text.into()).unwrap();
        let (failing, pusher, room, alice) = (&failing, &pusher, &room, &alice);
        async move {
            send_message(
                failing,
                pusher,
                rate,
                ttl,
                room,
                &alice.private_id,
                &message,
                id,
                at,
            )
            .await
        }
    };
    let published = |id: &MessageId| published_under(&receiver, id);
    let first = json!(secret_rooms::domain::time::rfc3339(t0));

    // The history write fails: not accepted, nothing kept, and nothing published (the
    // publish comes only after the write, see `a_message_heard_live_is_already_kept`).
    failing.fail_keep(1);
    let lost = send("hello", Some(id("a")), t0).await;
    assert!(matches!(lost, Err(SendError::Store(_))), "{lost:?}");
    assert_eq!(published(&id("a")), Vec::<Value>::new());
    assert!(
        texts(&store, &room, &bob.private_id, at(9))
            .await
            .is_empty()
    );
    // The retry, seconds later: kept, at its first time and under its id.
    send("hello", Some(id("a")), at(5)).await.unwrap();
    // The answer to that was lost too: the same again.
    send("hello", Some(id("a")), at(6)).await.unwrap();
    let page = list_messages(&store, &room, &bob.private_id, None, 10, at(9))
        .await
        .unwrap();
    let kept: Vec<_> = page
        .messages
        .iter()
        .map(|m| (m.id.as_str(), m.message.as_str(), json!(m.sent_at)))
        .collect();
    assert_eq!(
        kept,
        [(id("a").as_str(), "hello", first.clone())],
        "kept once"
    );
    assert_eq!(
        published(&id("a")),
        [first.clone(), first.clone()],
        "published by the retry, and again under the same id and time"
    );

    // Another text under the id: refused, and nothing kept, published or counted.
    store.settle().await;
    let before = store.items().await;
    let conflict = send("hullo", Some(id("a")), at(7)).await;
    assert!(
        matches!(conflict, Err(SendError::IdConflict)),
        "{conflict:?}"
    );
    store.settle().await;
    assert_eq!(store.items().await, before, "a conflict writes nothing");
    assert_eq!(published(&id("a")).len(), 2);
    // The same id and text to another room of hers: another message, so a conflict too.
    let carol = new_user(&store).await;
    let elsewhere = connect(&store, &key, &alice.private_id, carol.public_id, at(7))
        .await
        .unwrap();
    let hello = Message::parse("hello".into()).unwrap();
    let moved = send_message(
        &store,
        &pusher,
        rate,
        ttl,
        &elsewhere,
        &alice.private_id,
        &hello,
        Some(id("a")),
        at(7),
    )
    .await;
    assert!(matches!(moved, Err(SendError::IdConflict)), "{moved:?}");
    assert!(
        texts(&store, &elsewhere, &alice.private_id, at(9))
            .await
            .is_empty()
    );

    // Retries publish again at most MAX_REPUBLISHED times, and are accepted after.
    for n in 0..12 {
        send("hello", Some(id("a")), at(8 + n)).await.unwrap();
    }
    let max = usize::from(LastSent::MAX_REPUBLISHED);
    assert_eq!(
        published(&id("a")).len(),
        max,
        "by {max} retries, the first attempt's history write having failed"
    );
    assert_eq!(
        texts(&store, &room, &bob.private_id, at(30)).await,
        ["hello"]
    );

    // Counted once: two more messages fill the limit of 3, a fourth is refused; a retry
    // of the last is still answered (it is not counted).
    send("two", Some(id("b")), at(30)).await.unwrap();
    send("three", Some(id("c")), at(31)).await.unwrap();
    let limited = send("four", Some(id("d")), at(32)).await;
    assert!(
        matches!(limited, Err(SendError::RateLimited { .. })),
        "{limited:?}"
    );
    send("three", Some(id("c")), at(33)).await.unwrap();
    assert_eq!(
        texts(&store, &room, &bob.private_id, at(40)).await,
        ["hello", "two", "three"]
    );
    // Messages without an id are each their own.
    let other = RateLimit {
        count: 10,
        window_secs: 3600,
    };
    for _ in 0..2 {
        let message = Message::parse("same".into()).unwrap();
        send_message(
            &store,
            &pusher,
            other,
            ttl,
            &room,
            &bob.private_id,
            &message,
            None,
            at(41),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        texts(&store, &room, &bob.private_id, at(50)).await,
        ["hello", "two", "three", "same", "same"]
    );
}

/// A 204 means kept: retries whose history write failed use up none of the
/// `MAX_REPUBLISHED` publishes (a republish is counted once the message is kept), and a
/// retry past them still keeps it; a publish that fails after the write leaves the
/// message kept once, which the retry then delivers.
async fn a_retry_keeps_what_failed_writes_missed<S: Store + Items + Clone + 'static>(store: S) {
    use secret_rooms::domain::sent::LastSent;
    use secret_rooms_test_kit::recording::Recording;
    let receiver = Receiver::start().await;
    let pusher = pusher_to(&receiver);
    let key = room_key();
    let (alice, bob, room) = joined_pair(&store, &key).await;
    let failing = Recording::new(store.clone());
    let ttl = MessageTtl(Duration::from_secs(3600));
    let t0 = now();
    let at = |secs| t0 + Duration::from_secs(secs);
    let id = |c: &str| MessageId::parse(c.repeat(22)).unwrap();
    let send = |text: &str, id: MessageId, at: SystemTime| {
        let message = Message::parse(text.into()).unwrap();
        let (failing, pusher, room, alice) = (&failing, &pusher, &room, &alice);
        async move {
            send_message(
                failing,
                pusher,
                ROOMY,
                ttl,
                room,
                &alice.private_id,
                &message,
                Some(id),
                at,
            )
            .await
        }
    };
    let published = |id: &MessageId| published_under(&receiver, id).len();

    // The first attempt and more retries than may publish: each history write fails.
    let max = u64::from(LastSent::MAX_REPUBLISHED);
    failing.fail_keep(usize::from(LastSent::MAX_REPUBLISHED) + 2);
    for n in 0..=max + 1 {
        let lost = send("hello", id("a"), at(n)).await;
        assert!(matches!(lost, Err(SendError::Store(_))), "{lost:?}");
    }
    assert_eq!(
        published(&id("a")),
        0,
        "nothing published of what was not kept"
    );
    assert!(
        texts(&store, &room, &bob.private_id, at(60))
            .await
            .is_empty()
    );
    // The next retry keeps it, and publishes it: none of the turns was used up, so
    // MAX_REPUBLISHED retries publish, and the ones after only keep it.
    send("hello", id("a"), at(max + 2)).await.unwrap();
    assert_eq!(
        texts(&store, &room, &bob.private_id, at(60)).await,
        ["hello"]
    );
    assert_eq!(published(&id("a")), 1);
    for n in 1..max + 2 {
        send("hello", id("a"), at(max + 2 + n)).await.unwrap();
    }
    assert_eq!(published(&id("a")), usize::from(LastSent::MAX_REPUBLISHED));
    assert_eq!(
        texts(&store, &room, &bob.private_id, at(60)).await,
        ["hello"]
    );

    // The history write succeeds, the publish fails: kept once, and the retry delivers.
    receiver.force_status(500);
    let undelivered = send("two", id("b"), at(20)).await;
    assert!(
        matches!(undelivered, Err(SendError::Realtime(_))),
        "{undelivered:?}"
    );
    assert_eq!(
        texts(&store, &room, &bob.private_id, at(60)).await,
        ["hello", "two"]
    );
    receiver.force_status(0);
    send("two", id("b"), at(21)).await.unwrap();
    assert_eq!(published(&id("b")), 1);
    assert_eq!(
        texts(&store, &room, &bob.private_id, at(60)).await,
        ["hello", "two"],
        "kept once"
    );
}

/// A realtime service that, at each publish of a message, notes whether the history
/// write through `calls` had finished when the publish began (read from its log before
/// anything else, so that a publish started beside the write is caught whichever ends
/// first), and whether the room's history read as `reader` then holds the message: what
/// a client that just subscribed and fetched what it missed would find.
struct Listening<S> {
    store: S,
    calls: secret_rooms_test_kit::recording::Recording<S>,
    room: RoomId,
    reader: PrivateId,
    heard: std::sync::Mutex<Vec<(String, bool, bool)>>,
}

#[async_trait::async_trait]
impl<S: Store + Send + Sync> secret_rooms::domain::ports::Realtime for Listening<S> {
    async fn publish(
        &self,
        _channels: &[&str],
        _event: &str,
        data: &str,
    ) -> Result<(), secret_rooms::domain::ports::RealtimeError> {
        let event: Value = serde_json::from_str(data).unwrap();
        let id = event["id"].as_str().unwrap().to_owned();
        let written = self.calls.take().iter().any(|call| {
            call.starts_with("keep_message ") && call.contains(&id) && call.ends_with("-> ok")
        });
        let page = list_messages(&self.store, &self.room, &self.reader, None, 100, now())
            .await
            .unwrap();
        let listed = page.messages.iter().any(|m| m.id == id);
        self.heard.lock().unwrap().push((id, written, listed));
        Ok(())
    }
}

/// SPEC v2: a client that subscribes fetches what it missed after
/// `pusher:subscription_succeeded`. That leaves no gap only if a message is kept before
/// it is published: a message heard live is already in the history (published beside
/// the history write, one published while the peer subscribed could miss both).
async fn a_message_heard_live_is_already_kept<S: Store + Items + Clone + 'static>(store: S) {
    use secret_rooms_test_kit::recording::Recording;
    let key = room_key();
    let (alice, bob, room) = joined_pair(&store, &key).await;
    let calls = Recording::new(store.clone());
    let listening = Listening {
        store: store.clone(),
        calls: calls.clone(),
        room: room.clone(),
        reader: bob.private_id.clone(),
        heard: Default::default(),
    };
    let ttl = MessageTtl(Duration::from_secs(3600));
    for n in 0..5 {
        let message = Message::parse(format!("m{n}")).unwrap();
        let who = if n % 2 == 0 { &alice } else { &bob };
        send_message(
            &calls,
            &listening,
            ROOMY,
            ttl,
            &room,
            &who.private_id,
            &message,
            None,
            now(),
        )
        .await
        .unwrap();
    }
    let heard = listening.heard.into_inner().unwrap();
    assert_eq!(heard.len(), 5, "each message published once");
    for (id, written, listed) in heard {
        assert!(
            written,
            "message {id}: published before its history write ended"
        );
        assert!(listed, "message {id}: heard live, not in the history");
    }
}

/// Every accepted message is kept and listed oldest first, a page at a time, to members
/// only; expired messages are left out; the event and the kept message agree.
async fn history_is_kept_in_order_and_paged<S: Store + Items + Clone + 'static>(store: S) {
    let receiver = Receiver::start().await;
    let pusher = pusher_to(&receiver);
    let key = room_key();
    let (alice, bob, room) = joined_pair(&store, &key).await;
    let t0 = now();
    // Sent two hours ago with a one-hour TTL: expired, never listed.
    say(
        &store,
        &pusher,
        &room,
        &bob.private_id,
        "old",
        t0 - Duration::from_secs(7200),
    )
    .await
    .unwrap();
    for (i, text) in ["one", "two", "three", "four", "five"].iter().enumerate() {
        let from = if i % 2 == 0 { &bob } else { &alice };
        let at = t0 + Duration::from_millis(i as u64);
        say(&store, &pusher, &room, &from.private_id, text, at)
            .await
            .unwrap();
    }
    let expected = ["one", "two", "three", "four", "five"];
    assert_eq!(texts(&store, &room, &alice.private_id, t0).await, expected);
    assert_eq!(texts(&store, &room, &bob.private_id, t0).await, expected);
    // The kept messages are what was published: same ids, senders and times.
    let page = list_messages(&store, &room, &alice.private_id, None, 100, t0)
        .await
        .unwrap();
    assert_eq!(page.next, None);
    let published = receiver.published();
    for kept in &page.messages {
        let event = published
            .iter()
            .map(|p| &p.data)
            .find(|data| data["id"] == kept.id.as_str())
            .expect("each kept message was published");
        assert_eq!(event["message"], kept.message.as_str());
        assert_eq!(event["sentAt"], kept.sent_at.as_str());
        assert_eq!(event["from"]["publicId"], kept.from.public_id.to_string());
    }
    // A stranger reads nothing, and cannot tell the room exists.
    let stranger = new_user(&store).await;
    assert!(matches!(
        list_messages(&store, &room, &stranger.private_id, None, 10, t0).await,
        Err(HistoryError::RoomNotFound)
    ));
}

/// SPEC v3 "History both ways": `before` lists newest first, from the newest message (or
/// from just before a cursor), page by page down to the member's history start, expired
/// messages left out without ending it; a stranger reads nothing.
async fn history_pages_newest_first<S: Store + Items + Clone + 'static>(store: S) {
    let receiver = Receiver::start().await;
    let pusher = pusher_to(&receiver);
    let key = room_key();
    let (alice, bob, room) = joined_pair(&store, &key).await;
    let t0 = now();
    let texts = ["one", "two", "three", "four", "five", "six", "seven"];
    for (i, text) in texts.iter().enumerate() {
        let from = if i % 2 == 0 { &bob } else { &alice };
        let at = t0 + Duration::from_millis(i as u64);
        say(&store, &pusher, &room, &from.private_id, text, at)
            .await
            .unwrap();
    }
    let page = |before: Before| {
        let (store, room, who) = (store.clone(), room.clone(), alice.private_id.clone());
        async move {
            list_messages_newest_first(&store, &room, &who, before, 3, t0)
                .await
                .unwrap()
        }
    };
    let words = |p: &HistoryPage| {
        p.messages
            .iter()
            .map(|m| m.message.clone())
            .collect::<Vec<_>>()
    };
    let first = page(Before::Newest).await;
    assert_eq!(words(&first), ["seven", "six", "five"]);
    let second = page(Before::Cursor(first.next.clone().unwrap())).await;
    assert_eq!(words(&second), ["four", "three", "two"]);
    let last = page(Before::Cursor(second.next.clone().unwrap())).await;
    assert_eq!(words(&last), ["one"]);
    assert_eq!(last.next, None, "the end of the history");
    // Oldest first and newest first read the same messages.
    let mut all = [words(&first), words(&second), words(&last)].concat();
    all.reverse();
    assert_eq!(all, texts);
    // Nothing from before the member's history start: a cursor below it reads nothing.
    let below = Cursor::before(0);
    assert_eq!(
        words(&page(Before::Cursor(below)).await),
        Vec::<String>::new()
    );
    let stranger = new_user(&store).await;
    assert!(matches!(
        list_messages_newest_first(&store, &room, &stranger.private_id, Before::Newest, 3, t0)
            .await,
        Err(HistoryError::RoomNotFound)
    ));
    // An hour later every message has expired: none shows, and none ends a page early.
    let later = t0 + Duration::from_secs(7200);
    let expired =
        list_messages_newest_first(&store, &room, &alice.private_id, Before::Newest, 3, later)
            .await
            .unwrap();
    assert!(expired.messages.is_empty());
    assert!(
        expired.next.is_some(),
        "expired messages do not end the history"
    );
}

/// Expired messages still in the table (DynamoDB deletes them some time after their
/// `ttl`) are left out without ending the history: a page of them still says where the
/// next one starts; and a page that ends at the last message says there is no next.
async fn expired_messages_neither_show_nor_end_the_history<S: Store + Items + Clone + 'static>(
    store: S,
) {
    let receiver = Receiver::start().await;
    let pusher = pusher_to(&receiver);
    let key = room_key();
    let t0 = now();
    // Both exist since three hours ago, so that the history starts before the messages.
    let earlier = t0 - Duration::from_secs(3 * 3600);
    let ids = UserIds::new(1);
    let create = || create_user(&store, &ids, IdPolicy::default(), None, None, earlier);
    let (alice, bob) = (create().await.unwrap(), create().await.unwrap());
    let room = connect(&store, &key, &alice.private_id, bob.public_id, earlier)
        .await
        .unwrap();
    // Five sent two hours ago with a one-hour TTL, then two live ones.
    for n in 0..5u64 {
        let at = t0 - Duration::from_secs(7200) + Duration::from_millis(n);
        say(&store, &pusher, &room, &alice.private_id, "expired", at)
            .await
            .unwrap();
    }
    for (n, text) in ["six", "seven"].iter().enumerate() {
        let at = t0 + Duration::from_millis(n as u64);
        say(&store, &pusher, &room, &alice.private_id, text, at)
            .await
            .unwrap();
    }
    let first = list_messages(&store, &room, &alice.private_id, None, 2, t0)
        .await
        .unwrap();
    assert!(first.messages.is_empty(), "{first:?}");
    assert!(first.next.is_some(), "a page of expired messages goes on");
    assert_eq!(
        texts(&store, &room, &alice.private_id, t0).await,
        ["six", "seven"]
    );
    // Seven items, a page of seven: nothing follows.
    let all = list_messages(&store, &room, &alice.private_id, None, 7, t0)
        .await
        .unwrap();
    assert_eq!(all.next, None);
    assert_eq!(all.messages.len(), 2);
    // Six of seven: the seventh follows, from just after the sixth item read.
    let six = list_messages(&store, &room, &alice.private_id, None, 6, t0)
        .await
        .unwrap();
    assert_eq!(six.messages.len(), 1);
    let rest = list_messages(&store, &room, &alice.private_id, six.next, 6, t0)
        .await
        .unwrap();
    assert_eq!(rest.messages.len(), 1);
    assert_eq!(rest.messages[0].message, "seven");
    assert_eq!(rest.next, None);
}

/// A public id's holder does not read what was written to the room while the id was
/// unused: their history starts when their identity was created.
async fn a_member_never_sees_what_was_sent_before_they_existed<
    S: Store + Items + Clone + 'static,
>(
    store: S,
) {
    let receiver = Receiver::start().await;
    let pusher = pusher_to(&receiver);
    let key = room_key();
    let bob = new_user(&store).await;
    let later = free_id(&[bob.public_id]);
    let t0 = now();
    let room = connect(&store, &key, &bob.private_id, later, t0)
        .await
        .unwrap();
    say(&store, &pusher, &room, &bob.private_id, "to nobody yet", t0)
        .await
        .unwrap();
    // The id gets a holder a second later.
    let holder = PrivateId::generate().unwrap();
    let created = secret_rooms::domain::time::rfc3339(t0 + Duration::from_secs(1));
    store
        .insert_user(
            &UserRecord {
                id: store.reserve_user_ids(1).await.unwrap(),
                public_id: later,
                private_id_hash: holder.hash(),
                username: "Late Owl".into(),
                created_at: created.clone(),
                updated_at: created,
                public_key: None,
            },
            None,
        )
        .await
        .unwrap();
    let t1 = t0 + Duration::from_secs(2);
    let joined = connect(&store, &key, &holder, bob.public_id, t1)
        .await
        .unwrap();
    assert_eq!(joined, room);
    say(&store, &pusher, &room, &bob.private_id, "hello, holder", t1)
        .await
        .unwrap();
    assert_eq!(
        texts(&store, &room, &holder, t1).await,
        ["hello, holder"],
        "nothing from before the holder existed"
    );
    assert_eq!(
        texts(&store, &room, &bob.private_id, t1).await,
        ["to nobody yet", "hello, holder"]
    );
}

/// A block closes the room for good, for both: no posts, no subscriptions, no rejoin;
/// blocking again changes nothing, and a stranger's block is refused without a trace.
/// SPEC v3: the holder blocks a room only offered to them, without joining it: it leaves
/// their list, takes no place under their room cap, and is closed for its opener as any
/// block (posts 410, the opener's list says closed, a reconnect is refused).
async fn an_offered_room_is_blocked_without_joining<S: Store + Items + Clone + 'static>(store: S) {
    let receiver = Receiver::start().await;
    let pusher = pusher_to(&receiver);
    let key = room_key();
    let (alice, bob) = (new_user(&store).await, new_user(&store).await);
    let room = connect(&store, &key, &bob.private_id, alice.public_id, now())
        .await
        .unwrap();
    store.settle().await;
    let listed = |who: PrivateId| {
        let (store, key) = (store.clone(), key.clone());
        async move {
            store.settle().await;
            list_rooms(&store, &key, &who, now()).await.unwrap()
        }
    };
    assert!(
        listed(alice.private_id.clone())
            .await
            .rooms
            .iter()
            .any(|r| r.room == room)
    );
    block_room(&store, &room, &alice.private_id, now())
        .await
        .unwrap();
    let alices = listed(alice.private_id.clone()).await;
    assert!(
        alices.rooms.iter().all(|r| r.room != room),
        "the offer left the blocker's list: {alices:?}"
    );
    let alice_user =
        store.items().await[&format!("USER#{}", alice.private_id.hash().to_hex())].clone();
    assert_eq!(
        alice_user.get("joins"),
        None,
        "no place taken under the cap"
    );
    assert!(
        store
            .room_member(&room, &alice.private_id.hash())
            .await
            .unwrap()
            .is_none(),
        "not joined"
    );
    let bobs = listed(bob.private_id.clone()).await;
    assert!(
        bobs.rooms.iter().any(|r| r.room == room && r.closed),
        "the opener's list says closed: {bobs:?}"
    );
    assert!(matches!(
        say(&store, &pusher, &room, &bob.private_id, "hello?", now()).await,
        Err(SendError::RoomClosed)
    ));
    assert!(matches!(
        connect(&store, &key, &bob.private_id, alice.public_id, now()).await,
        Err(ConnectError::RoomClosed)
    ));
    // Alice cannot reopen it by connecting back either; a stranger's block finds nothing.
    assert!(matches!(
        connect(&store, &key, &alice.private_id, bob.public_id, now()).await,
        Err(ConnectError::RoomClosed)
    ));
    let stranger = new_user(&store).await;
    assert!(matches!(
        block_room(&store, &room, &stranger.private_id, now()).await,
        Err(BlockError::RoomNotFound)
    ));
}

async fn a_blocked_room_is_closed_for_both<S: Store + Items + Clone + 'static>(store: S) {
    let receiver = Receiver::start().await;
    let pusher = pusher_to(&receiver);
    let key = room_key();
    let (alice, bob, room) = joined_pair(&store, &key).await;
    say(&store, &pusher, &room, &alice.private_id, "hi", now())
        .await
        .unwrap();
    let stranger = new_user(&store).await;
    let before = store.items().await;
    assert!(matches!(
        block_room(&store, &room, &stranger.private_id, now()).await,
        Err(BlockError::RoomNotFound)
    ));
    assert_eq!(
        store.items().await,
        before,
        "a refused block writes nothing"
    );

    block_room(&store, &room, &bob.private_id, now())
        .await
        .unwrap();
    let closed = store.items().await;
    block_room(&store, &room, &alice.private_id, now())
        .await
        .unwrap();
    assert_eq!(
        store.items().await,
        closed,
        "blocking again changes nothing"
    );
    // The store's own close is idempotent too (the domain stops before it above).
    store
        .close_room(
            &room,
            &bob.private_id.hash(),
            &[bob.public_id],
            Some(&alice.private_id.hash()),
            "2099-01-01T00:00:00.000Z",
        )
        .await
        .unwrap();
    assert_eq!(store.items().await, closed, "closing again changes nothing");
    for who in [&alice, &bob] {
        let sent = say(
            &store,
            &pusher,
            &room,
            &who.private_id,
            "still there?",
            now(),
        )
        .await;
        assert!(matches!(sent, Err(SendError::RoomClosed)), "{sent:?}");
        let creds = PusherCredentials::new(
            common::pusher_receiver::KEY,
            common::pusher_receiver::SECRET,
        );
        let socket = SocketId::parse("1.2").unwrap();
        let auth = authorize_channel(&store, &creds, &socket, &room, &who.private_id).await;
        assert!(matches!(auth, Err(AuthorizeError::RoomClosed)), "{auth:?}");
    }
    for (who, peer) in [(&alice, &bob), (&bob, &alice)] {
        let again = connect(&store, &key, &who.private_id, peer.public_id, now()).await;
        assert!(matches!(again, Err(ConnectError::RoomClosed)), "{again:?}");
    }
    assert_eq!(
        store.items().await,
        closed,
        "refused posts and joins write nothing"
    );
    assert_eq!(
        receiver.published().len(),
        1,
        "only the message before the block"
    );
    // What was said stays readable to the members.
    assert_eq!(texts(&store, &room, &alice.private_id, now()).await, ["hi"]);
}

/// A DynamoDB item's size as DynamoDB bills it: each attribute's name and value, in
/// bytes (`https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html`).
fn billed_size(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            // About one byte per two significant digits, plus one.
            AttributeValue::N(n) => n.trim_start_matches(['-', '0']).len().div_ceil(2) + 1,
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
            AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
            AttributeValue::M(map) => {
                3 + map
                    .iter()
                    .map(|(k, v)| 1 + k.len() + value(v))
                    .sum::<usize>()
            }
            AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value(v)).sum::<usize>(),
            _ => 1,
        }
    }
    item.iter().map(|(name, v)| name.len() + value(v)).sum()
}

/// The SPEC's budget: each message's counted update rewrites the sender's user item,
/// which must stay within one write unit (1 KB) at any number of rooms: here the
/// largest user item there can be, with a full list of rooms, a rotated nine-digit id,
/// the longest username, a registered key and both rate slots a count keeps.
#[tokio::test]
async fn dynamodb_a_counted_update_costs_one_write_unit_at_the_room_cap() {
    let store = common::fresh_store().await;
    let max_rooms = secret_rooms::domain::rooms::MAX_ROOMS;
    let private = PrivateId::generate().unwrap();
    let hash = private.hash();
    let old = PublicId::parse("999-999-998").unwrap();
    let record = UserRecord {
        id: 9_999_999_999_999,
        public_id: old,
        private_id_hash: hash,
        username: "Fearless Narwhal".into(),
        created_at: "2026-11-30T10:00:00.000Z".into(),
        updated_at: "2026-11-30T10:00:00.000Z".into(),
        public_key: PublicKey::parse("hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"),
    };
    store.insert_user(&record, None).await.unwrap();
    let me = Member {
        public_id: old,
        username: record.username.clone(),
    };
    let id = PublicId::parse("999-999-999").unwrap();
    store
        .rotate_public_id(&hash, &me, id, None, "2026-11-30T11:00:00.000Z")
        .await
        .unwrap();
    let me = Member {
        public_id: id,
        ..me
    };
    let key = room_key();
    let mut rooms = Vec::new();
    for n in 0..max_rooms as u32 {
        let other = PublicId::from_number(n).unwrap();
        let room = key.room_of(id, other);
        store
            .join(
                &room,
                Side::of(id, other),
                &hash,
                &requester(&me),
                other,
                max_rooms,
                "2026-11-30T12:00:00.000Z",
            )
            .await
            .unwrap();
        rooms.push(room);
    }
    // Two counts in neighbouring windows leave two slots (a count keeps its neighbours').
    let window = u64::MAX >> 21;
    for (room, window) in [(&rooms[0], window - 1), (&rooms[99], window)] {
        let counted = store
            .count_message(
                room,
                &hash,
                RateWindow {
                    window,
                    limit: 1000,
                },
                &common::sent(),
            )
            .await
            .unwrap();
        assert!(matches!(counted, Allowance::Allowed(_)), "{counted:?}");
    }
    let item = store
        .client()
        .get_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(format!("USER#{}", hash.to_hex())))
        .key("sk", AttributeValue::S("_".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let marks = item["ra"].as_ss().map(Vec::len);
    assert_eq!(
        marks,
        Ok(secret_rooms::domain::rooms::MAX_ANNOUNCED),
        "a full record of announcements"
    );
    let slots = item.keys().filter(|k| k.starts_with("rl")).count();
    assert_eq!(slots, 2, "{:?}", item.keys());
    assert!(item.contains_key("publicIdSince"));
    let size = billed_size(&item);
    assert!(size <= 1024, "a user item at the room cap is {size} bytes");
    println!("a user item at the room cap: {size} bytes");
}

/// A room blocked before the peer joined leaves the peer's inbox too (joining it could
/// only be refused); once both joined, the peer keeps the blocker's offer, which names
/// the blocker in their list, beside the room marked closed.
async fn a_block_takes_the_room_out_of_a_peer_who_never_joined<
    S: Store + Items + Clone + 'static,
>(
    store: S,
) {
    let key = room_key();
    let (alice, bob) = (new_user(&store).await, new_user(&store).await);
    let room = connect(&store, &key, &alice.private_id, bob.public_id, now())
        .await
        .unwrap();
    store.settle().await;
    assert_eq!(offers_to(&store, bob.public_id).await, 1);
    assert_eq!(copies_in(&store, &bob).await, 1, "the projection's copy");
    assert!(lists(&store, &key, &bob, &room).await, "offered to Bob");
    block_room(&store, &room, &alice.private_id, now())
        .await
        .unwrap();
    store.settle().await;
    assert_eq!(offers_to(&store, bob.public_id).await, 0);
    assert_eq!(
        copies_in(&store, &bob).await,
        0,
        "the copy went with the offer"
    );
    assert!(!lists(&store, &key, &bob, &room).await, "out of Bob's list");
    let again = connect(&store, &key, &bob.private_id, alice.public_id, now()).await;
    assert!(matches!(again, Err(ConnectError::RoomClosed)), "{again:?}");

    let (carol, dave, room) = joined_pair(&store, &key).await;
    store.settle().await;
    assert_eq!(copies_in(&store, &dave).await, 1, "Carol's offer, copied");
    block_room(&store, &room, &dave.private_id, now())
        .await
        .unwrap();
    store.settle().await;
    assert_eq!(offers_to(&store, dave.public_id).await, 0);
    assert_eq!(
        copies_in(&store, &dave).await,
        0,
        "out of the blocker's inbox"
    );
    assert_eq!(
        offers_to(&store, carol.public_id).await,
        1,
        "the peer who joined keeps the blocker's offer"
    );
    let carols = store
        .rooms_of(&carol.private_id.hash(), 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(carols.joined.len(), 1, "{carols:?}");
    assert!(carols.joined[0].closed, "{carols:?}");
    // Both lists show the room, closed (it is still a room each of them joined).
    for who in [&carol, &dave] {
        let list = list_rooms(&store, &key, &who.private_id, now())
            .await
            .unwrap();
        let entry = list.rooms.iter().find(|r| r.room == room);
        assert!(entry.is_some_and(|r| r.joined && r.closed), "{list:?}");
    }
}

/// How many copies of offers `who`'s partition holds (what their room list reads).
async fn copies_in(store: &impl Items, who: &CreatedUser) -> usize {
    let prefix = format!("USER#{} OFFER#", who.private_id.hash().to_hex());
    let items = store.items().await;
    items.keys().filter(|k| k.starts_with(&prefix)).count()
}

/// Whether `who`'s room list shows `room`.
async fn lists(store: &dyn Store, key: &RoomKey, who: &CreatedUser, room: &RoomId) -> bool {
    let list = list_rooms(store, key, &who.private_id, now())
        .await
        .unwrap();
    list.rooms.iter().any(|r| &r.room == room)
}

/// Membership is checked against the whole room id: an id made up from a member's room
/// by changing its end (or everything but its start) is no room of theirs, and nothing
/// is counted or written.
async fn a_room_id_is_checked_whole_not_by_its_start<S: Store + Items + Clone + 'static>(store: S) {
    let (alice, _, room) = joined_pair(&store, &room_key()).await;
    let real = room.as_str();
    let last = if real.ends_with('A') { "E" } else { "A" };
    let forged = [
        format!("{}{last}", &real[..42]),
        format!("{}{}", &real[..8], "A".repeat(35)),
        format!("{}{}", &real[..20], "g".repeat(22) + "A"),
    ];
    let w = RateWindow {
        window: 5,
        limit: 10,
    };
    let before = store.items().await;
    for forged in &forged {
        let forged = RoomId::parse(forged).unwrap();
        assert_ne!(forged, room);
        assert_eq!(
            store
                .count_message(&forged, &alice.private_id.hash(), w, &common::sent())
                .await
                .unwrap(),
            Allowance::NotMember,
            "{forged}"
        );
    }
    assert_eq!(store.items().await, before, "nothing counted");
    assert!(matches!(
        store
            .count_message(&room, &alice.private_id.hash(), w, &common::sent())
            .await
            .unwrap(),
        Allowance::Allowed(_)
    ));
}

/// A block that read the room before the peer joined does not leave the peer open: the
/// store refuses the close (writing nothing), and the domain reads again and closes the
/// room for both.
async fn a_block_racing_the_peers_join_closes_it_for_both<S: Store + Items + Clone + 'static>(
    store: S,
) {
    let key = room_key();
    let (alice, bob) = (new_user(&store).await, new_user(&store).await);
    let room = connect(&store, &key, &alice.private_id, bob.public_id, now())
        .await
        .unwrap();
    let a = alice.private_id.hash();
    let read = store.room_member(&room, &a).await.unwrap().unwrap();
    assert_eq!(read.peer, None);
    connect(&store, &key, &bob.private_id, alice.public_id, now())
        .await
        .unwrap();
    let before = store.items().await;
    let closed = store
        .close_room(
            &room,
            &a,
            &[alice.public_id, bob.public_id],
            None,
            "2026-11-30T00:00:00.000Z",
        )
        .await
        .unwrap();
    assert!(!closed, "a close that would leave the peer open is refused");
    assert_eq!(store.items().await, before, "and writes nothing");
    block_room(&store, &room, &alice.private_id, now())
        .await
        .unwrap();
    let w = RateWindow {
        window: 9,
        limit: 5,
    };
    for who in [&alice, &bob] {
        assert_eq!(
            store
                .count_message(&room, &who.private_id.hash(), w, &common::sent())
                .await
                .unwrap(),
            Allowance::Closed
        );
    }
}

/// A room list is one query of the lister's own partition, where the projection keeps
/// the rooms offered to their public id and each room's newest message: offered rooms
/// with their messages, an expired message left out, the peer's answer noted on both
/// sides, and a rotation's old offers gone.
async fn a_room_list_is_one_query_of_the_listers_partition<S: Store + Items + Clone + 'static>(
    store: S,
) {
    let receiver = Receiver::start().await;
    let pusher = pusher_to(&receiver);
    let key = room_key();
    let (alice, bob, carol) = (
        new_user(&store).await,
        new_user(&store).await,
        new_user(&store).await,
    );
    // Bob opens a room with Alice and writes three messages while she is away; Carol
    // opens another and writes one that is kept for a second only.
    let room = connect(&store, &key, &bob.private_id, alice.public_id, now())
        .await
        .unwrap();
    for text in ["one", "two", "three"] {
        say(&store, &pusher, &room, &bob.private_id, text, now())
            .await
            .unwrap();
    }
    let brief = connect(&store, &key, &carol.private_id, alice.public_id, now())
        .await
        .unwrap();
    let gone = Message::parse("soon gone".into()).unwrap();
    let second = MessageTtl(Duration::from_secs(1));
    send_message(
        &store,
        &pusher,
        ROOMY,
        second,
        &brief,
        &carol.private_id,
        &gone,
        None,
        now(),
    )
    .await
    .unwrap();
    store.settle().await;
    let newest = |page: HistoryPage| page.messages.last().map(|m| m.sent_at.clone());
    let third = newest(
        store
            .list_messages(&room, &Cursor::before(0), 10, 0)
            .await
            .unwrap(),
    );
    let find = |list: &RoomList, room: &RoomId| {
        list.rooms
            .iter()
            .find(|r| &r.room == room)
            .cloned()
            .unwrap_or_else(|| panic!("{room} is not listed: {list:?}"))
    };

    let mut trips = round_trip_counter(&store);
    let later = now() + Duration::from_secs(5);
    let alices = list_rooms(&store, &key, &alice.private_id, later)
        .await
        .unwrap();
    assert_eq!(trips(), 1, "a list is one query");
    let offered = find(&alices, &room);
    assert!(!offered.joined);
    assert_eq!(offered.peer, bob.public_id);
    assert_eq!(
        offered.peer_username.as_deref(),
        Some(bob.username.as_str())
    );
    assert_eq!(offered.last_message_at, third, "the newest of Bob's three");
    assert_eq!(
        find(&alices, &brief).last_message_at,
        None,
        "an expired message is not shown"
    );

    // Alice joins and answers: both lists note her message.
    connect(&store, &key, &alice.private_id, bob.public_id, now())
        .await
        .unwrap();
    say(&store, &pusher, &room, &alice.private_id, "four", now())
        .await
        .unwrap();
    store.settle().await;
    let four = newest(
        store
            .list_messages(&room, &Cursor::before(0), 10, 0)
            .await
            .unwrap(),
    );
    assert_ne!(four, third);
    trips();
    for who in [&alice, &bob] {
        let list = list_rooms(&store, &key, &who.private_id, now())
            .await
            .unwrap();
        assert_eq!(trips(), 1, "a list is one query");
        let entry = find(&list, &room);
        assert!(entry.joined);
        assert_eq!(entry.last_message_at, four);
    }

    // A rotation: what was offered to the old id leaves the list, and its copies the
    // partition; the room Alice joined stays.
    rotate_public_id(&store, IdPolicy::default(), &alice.private_id, None, now())
        .await
        .unwrap();
    store.settle().await;
    let alices = list_rooms(&store, &key, &alice.private_id, now())
        .await
        .unwrap();
    assert!(alices.rooms.iter().all(|r| r.room != brief), "{alices:?}");
    assert!(find(&alices, &room).joined);
    let copies = format!("USER#{} OFFER#", alice.private_id.hash().to_hex());
    let items = store.items().await;
    assert_eq!(
        items.keys().filter(|k| k.starts_with(&copies)).count(),
        0,
        "{items:#?}"
    );
}

/// A copy of an offer made late, after its public id was retired (a projector that read
/// the holder before a rotation and writes after the rotation's own change was applied)
/// is never listed: a list shows only copies made to its current public id. (The copy
/// is written, as it would be for any holder: refusing it would take a condition on the
/// holder, which would make the projection's work depend on them.)
async fn a_late_copy_for_a_retired_id_is_never_listed<S: Store + Items + Clone + 'static>(
    store: S,
) {
    let key = room_key();
    let (alice, bob) = (new_user(&store).await, new_user(&store).await);
    let room = connect(&store, &key, &bob.private_id, alice.public_id, now())
        .await
        .unwrap();
    let offer = store.offer(alice.public_id, &room).await.unwrap().unwrap();
    let holder = store.get_public(alice.public_id).await.unwrap().unwrap();
    let copies = format!("USER#{} OFFER#", alice.private_id.hash().to_hex());
    let count =
        |items: BTreeMap<String, Value>| items.keys().filter(|k| k.starts_with(&copies)).count();
    store.settle().await;
    assert_eq!(count(store.items().await), 1, "the offer's copy");
    rotate_public_id(&store, IdPolicy::default(), &alice.private_id, None, now())
        .await
        .unwrap();
    store.settle().await;
    assert_eq!(
        count(store.items().await),
        0,
        "the rotation dropped the copy"
    );

    store
        .copy_offer(&holder.owner, alice.public_id, &holder.since, &offer, None)
        .await
        .unwrap();
    assert_eq!(count(store.items().await), 1, "the late copy is written");
    let listed = list_rooms(&store, &key, &alice.private_id, now())
        .await
        .unwrap();
    assert!(
        listed.rooms.iter().all(|r| r.room != room),
        "a copy made to a retired id is not listed: {listed:?}"
    );
}

/// SPEC v3, an inbox nobody can flood: a list shows the newest offers (by their latest
/// connect), at most [`MAX_OFFERS`], so 150 strangers' offers never hide a friend's new
/// one; a reconnect moves its offer up, and the lister's partition keeps one copy of it.
async fn a_flood_of_offers_never_hides_a_friends_new_one<S: Store + Items + Clone + 'static>(
    store: S,
) {
    let key = room_key();
    let victim = new_user(&store).await;
    let start = now() + Duration::from_secs(1);
    let mut strangers = Vec::new();
    for n in 0..150 {
        let stranger = new_user(&store).await;
        let at = start + Duration::from_millis(n);
        connect(&store, &key, &stranger.private_id, victim.public_id, at)
            .await
            .unwrap();
        strangers.push(stranger);
    }
    let friend = new_user(&store).await;
    let at = start + Duration::from_secs(1);
    let friends = connect(&store, &key, &friend.private_id, victim.public_id, at)
        .await
        .unwrap();
    // The first stranger comes back: their offer moves up, its old copy goes.
    let at = start + Duration::from_secs(2);
    let back = connect(&store, &key, &strangers[0].private_id, victim.public_id, at)
        .await
        .unwrap();
    store.settle().await;
    let list = list_rooms(&store, &key, &victim.private_id, at)
        .await
        .unwrap();
    let peers: Vec<PublicId> = list.rooms.iter().map(|r| r.peer).collect();
    let mut newest = vec![strangers[0].public_id, friend.public_id];
    newest.extend(strangers[1..].iter().rev().map(|s| s.public_id));
    newest.truncate(MAX_OFFERS);
    assert_eq!(
        peers, newest,
        "the {MAX_OFFERS} newest offers, newest first"
    );
    assert_eq!(
        (&list.rooms[0].room, &list.rooms[1].room),
        (&back, &friends)
    );
    let copies = format!("USER#{} OFFER#", victim.private_id.hash().to_hex());
    let items = store.items().await;
    let copies: Vec<&String> = items.keys().filter(|k| k.starts_with(&copies)).collect();
    assert_eq!(copies.len(), 151, "one copy per offer");
    assert_eq!(
        copies.iter().filter(|k| k.ends_with(back.as_str())).count(),
        1
    );
}

/// SPEC v3: an offer older than `OFFER_TTL` is gone from its target's list, and a
/// connect again makes it stand anew; the offer and its copy carry the table's TTL.
async fn an_offer_stands_for_its_offer_ttl<S: Store + Items + Clone + 'static>(store: S) {
    let key = room_key();
    let (alice, bob) = (new_user(&store).await, new_user(&store).await);
    let hour = ConnectLimits {
        rate: RateLimit::UNLIMITED,
        offer_ttl: Duration::from_secs(3600),
    };
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    let connect_at = |at| connect_limited(&store, &key, &bob.private_id, alice.public_id, hour, at);
    let room = connect_at(at).await.unwrap();
    store.settle().await;
    let shown = |at: SystemTime| {
        let (store, key, room) = (store.clone(), key.clone(), room.clone());
        let alice = alice.private_id.clone();
        async move {
            let list = list_rooms(&store, &key, &alice, at).await.unwrap();
            list.rooms.iter().any(|r| r.room == room)
        }
    };
    assert!(shown(at + Duration::from_secs(3599)).await);
    assert!(!shown(at + Duration::from_secs(3600)).await, "expired");
    let items = store.items().await;
    let offer = &items[&format!("PUBLIC#{} ROOM#{room}", alice.public_id)];
    assert_eq!(offer["ttl"], 1_900_003_600);
    let copies = format!("USER#{} OFFER#", alice.private_id.hash().to_hex());
    let copy = items
        .iter()
        .find(|(k, _)| k.starts_with(&copies))
        .unwrap()
        .1;
    assert_eq!(copy["ttl"], 1_900_003_600);

    connect_at(at + Duration::from_secs(3601)).await.unwrap();
    store.settle().await;
    assert!(shown(at + Duration::from_secs(7200)).await, "made again");
    assert!(!shown(at + Duration::from_secs(7201)).await);
}

/// SPEC v3: a reconnect re-announces its room on the target's inbox channel at most once
/// per window of connects, by the requester's own record, so alike for a held and an
/// unused target; a first join is always announced.
async fn a_room_is_announced_again_at_most_once_a_window<S: Store + Items + Clone + 'static>(
    store: S,
) {
    let receiver = Receiver::start().await;
    let pusher = pusher_to(&receiver);
    let key = room_key();
    let (alice, bob) = (new_user(&store).await, new_user(&store).await);
    let unused = free_id(&[alice.public_id, bob.public_id]);
    let limits = ConnectLimits {
        rate: RateLimit {
            count: 100,
            window_secs: 3600,
        },
        ..ConnectLimits::default()
    };
    // 10 s into a window.
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000 / 3600 * 3600 + 10);
    let mut announced = Vec::new();
    for secs in [0, 1, 2, 3600, 3601] {
        for target in [bob.public_id, unused] {
            let at = start + Duration::from_secs(secs);
            let connected =
                connect_and_announce(&store, &pusher, &key, &alice.private_id, target, limits, at)
                    .await
                    .unwrap();
            announced.push(connected.announced);
        }
    }
    let (yes, no) = (true, false);
    assert_eq!(announced, [yes, yes, no, no, no, no, yes, yes, no, no]);
    let calls: HashSet<usize> = receiver
        .published()
        .iter()
        .filter(|p| p.event == ROOM_EVENT)
        .map(|p| p.call)
        .collect();
    assert_eq!(calls.len(), 4, "one publish per announcement");
}

/// SPEC v2: a holder's list shows only rooms opened after their identity existed: an
/// offer made to an id before anybody held it stays hidden (it was made to nobody) until
/// its opener connects again.
async fn offers_made_before_the_holder_took_the_id_are_hidden<
    S: Store + Items + Clone + 'static,
>(
    store: S,
) {
    let key = room_key();
    let alice = new_user(&store).await;
    let unused = free_id(&[alice.public_id]);
    let t0 = now() + Duration::from_secs(1);
    let room = connect(&store, &key, &alice.private_id, unused, t0)
        .await
        .unwrap();
    let holder = PrivateId::generate().unwrap();
    let since = secret_rooms::domain::time::rfc3339(t0 + Duration::from_secs(1));
    let record = UserRecord {
        id: store.reserve_user_ids(1).await.unwrap(),
        public_id: unused,
        private_id_hash: holder.hash(),
        username: "Late Heron".into(),
        created_at: since.clone(),
        updated_at: since,
        public_key: None,
    };
    store.insert_user(&record, None).await.unwrap();
    store.settle().await;
    let shows = |at: SystemTime| {
        let (store, key, holder, room) = (store.clone(), key.clone(), holder.clone(), room.clone());
        async move {
            let list = list_rooms(&store, &key, &holder, at).await.unwrap();
            list.rooms.iter().any(|r| r.room == room)
        }
    };
    assert!(!shows(t0 + Duration::from_secs(2)).await, "made to nobody");
    connect(
        &store,
        &key,
        &alice.private_id,
        unused,
        t0 + Duration::from_secs(3),
    )
    .await
    .unwrap();
    store.settle().await;
    assert!(
        shows(t0 + Duration::from_secs(4)).await,
        "made again, to the holder"
    );
}

/// A rotation retires the old id for good: neither a rotation nor a create hands it out
/// again; a rotation refused (no free id, or the address's limit) writes nothing; the
/// username and the rooms joined survive it.
async fn a_retired_id_is_never_given_out_again<S: Store + Items + Clone + 'static>(store: S) {
    let key = room_key();
    let (alice, bob) = (new_user(&store).await, new_user(&store).await);
    let room = connect(&store, &key, &alice.private_id, bob.public_id, now())
        .await
        .unwrap();
    // A nine-digit space of two ids: the first rotation takes one, the second the other.
    let two = IdPolicy {
        long_space: 2,
        attempts: 64,
        ..IdPolicy::default()
    };
    let first = rotate_public_id(&store, two, &alice.private_id, None, now())
        .await
        .unwrap();
    let second = rotate_public_id(&store, two, &alice.private_id, None, now())
        .await
        .unwrap();
    assert_ne!(first, second);
    let before = store.items().await;
    let third = rotate_public_id(&store, two, &alice.private_id, None, now()).await;
    assert!(
        matches!(third, Err(RotateIdError::IdSpaceExhausted(_))),
        "{third:?}: the retired id is not handed out again"
    );
    assert_eq!(
        store.items().await,
        before,
        "a refused rotation writes nothing"
    );
    let long_only = IdPolicy {
        short_space: 0,
        long_space: 2,
        attempts: 64,
    };
    let created = create(&store, long_only).await;
    assert!(
        matches!(created, Err(CreateUserError::IdSpaceExhausted(_))),
        "{created:?}: nor by a create"
    );
    let retired = store.get_public(first).await.unwrap();
    assert_eq!(retired, None, "the retired id names nobody");
    // The address's limit refuses a rotation, and nothing is written.
    let quota = CreateQuota {
        address: "a-hashed-address".into(),
        window: 1,
        limit: 1,
        expires_at: 4_000_000_000,
        retry_after: 60,
    };
    rotate_public_id(
        &store,
        IdPolicy::default(),
        &bob.private_id,
        Some(&quota),
        now(),
    )
    .await
    .unwrap();
    let before = store.items().await;
    let refused = rotate_public_id(
        &store,
        IdPolicy::default(),
        &bob.private_id,
        Some(&quota),
        now(),
    )
    .await;
    assert!(
        matches!(refused, Err(RotateIdError::RateLimited { retry_after: 60 })),
        "{refused:?}"
    );
    assert_eq!(
        store.items().await,
        before,
        "a refused rotation writes nothing"
    );
    // What survives: the username, the rooms joined.
    let user = store
        .get_user(&alice.private_id.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((user.public_id, &user.username), (second, &alice.username));
    assert!(
        store
            .room_member(&room, &alice.private_id.hash())
            .await
            .unwrap()
            .is_some()
    );
}

/// SPEC v2: a member's history starts when they got the public id they joined with: a
/// message sent to a room of an id before the member rotated into it is not theirs.
async fn history_starts_at_the_rotation_that_gave_the_id<S: Store + Items + Clone + 'static>(
    store: S,
) {
    let receiver = Receiver::start().await;
    let pusher = pusher_to(&receiver);
    let key = room_key();
    let (alice, carol) = (new_user(&store).await, new_user(&store).await);
    // The nine-digit space of one id: Alice's rotation can only take it.
    let one = IdPolicy {
        long_space: 1,
        attempts: 64,
        ..IdPolicy::default()
    };
    let only = PublicId::long_from_number(0).unwrap();
    let t0 = now() + Duration::from_secs(1);
    let room = connect(&store, &key, &carol.private_id, only, t0)
        .await
        .unwrap();
    say(&store, &pusher, &room, &carol.private_id, "early", t0)
        .await
        .unwrap();
    let rotated = rotate_public_id(
        &store,
        one,
        &alice.private_id,
        None,
        t0 + Duration::from_secs(1),
    )
    .await
    .unwrap();
    assert_eq!(rotated, only);
    let t2 = t0 + Duration::from_secs(2);
    say(&store, &pusher, &room, &carol.private_id, "late", t2)
        .await
        .unwrap();
    assert_eq!(
        connect(&store, &key, &alice.private_id, carol.public_id, t2)
            .await
            .unwrap(),
        room
    );
    let t3 = t0 + Duration::from_secs(3);
    assert_eq!(texts(&store, &room, &alice.private_id, t3).await, ["late"]);
    assert_eq!(
        texts(&store, &room, &carol.private_id, t3).await,
        ["early", "late"]
    );
}

/// A room copied twice into a list's partition (a copy a lost change left behind) shows
/// once, as its newest copy says.
async fn a_room_copied_twice_shows_as_its_newest_copy<S: Store + Items + Clone + 'static>(
    store: S,
) {
    let key = room_key();
    let (alice, bob) = (new_user(&store).await, new_user(&store).await);
    let t1 = now() + Duration::from_secs(2);
    let room = connect(&store, &key, &bob.private_id, alice.public_id, t1)
        .await
        .unwrap();
    store.settle().await;
    let holder = store.get_public(alice.public_id).await.unwrap().unwrap();
    let mut older = store.offer(alice.public_id, &room).await.unwrap().unwrap();
    older.opened_at = secret_rooms::domain::time::rfc3339(t1 - Duration::from_secs(1));
    older.from.username = "Old Name".into();
    store
        .copy_offer(&holder.owner, alice.public_id, &holder.since, &older, None)
        .await
        .unwrap();
    let list = list_rooms(&store, &key, &alice.private_id, t1)
        .await
        .unwrap();
    let shown: Vec<_> = list.rooms.iter().filter(|r| r.room == room).collect();
    assert_eq!(shown.len(), 1, "{list:?}");
    assert_eq!(
        shown[0].peer_username.as_deref(),
        Some(bob.username.as_str())
    );
}

/// Each test body above runs on both implementations of the storage contract.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod dynamodb {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::common::fresh_store().await).await
            })*
        }
        mod embedded {
            $(#[tokio::test]
            async fn $name() {
                super::$name(secret_rooms::store::EmbeddedStore::in_memory().unwrap()).await
            })*
        }
    };
}

on_both_stores!(
    a_room_copied_twice_shows_as_its_newest_copy,
    offers_made_before_the_holder_took_the_id_are_hidden,
    a_retired_id_is_never_given_out_again,
    history_starts_at_the_rotation_that_gave_the_id,
    a_flood_of_offers_never_hides_a_friends_new_one,
    an_offer_stands_for_its_offer_ttl,
    a_room_is_announced_again_at_most_once_a_window,
    a_late_copy_for_a_retired_id_is_never_listed,
    connects_are_limited_per_identity,
    a_room_list_is_one_query_of_the_listers_partition,
    a_block_racing_the_peers_join_closes_it_for_both,
    a_block_takes_the_room_out_of_a_peer_who_never_joined,
    a_room_id_is_checked_whole_not_by_its_start,
    create_writes_both_items_with_an_increasing_id,
    the_private_id_itself_is_never_stored,
    ids_stay_unique_under_200_concurrent_creates,
    collisions_are_retried_and_exhaustion_is_clean,
    a_user_is_both_items_or_neither,
    ids_come_in_blocks,
    creates_are_limited_per_source_address,
    room_membership_is_written_idempotently_from_both_sides,
    an_unused_id_gets_the_room_its_holder_will_share,
    only_the_pairs_holders_join_its_room,
    connect_refuses_unknown_and_self,
    round_trips_stay_within_the_spec_budget,
    messages_are_counted_per_sender_and_window,
    the_rate_limit_spans_a_senders_rooms,
    joining_rooms_is_capped_per_identity,
    a_joiner_without_a_user_item_is_refused_and_nothing_is_written,
    history_is_kept_in_order_and_paged,
    a_message_sent_again_under_its_id_is_kept_and_counted_once,
    a_message_heard_live_is_already_kept,
    a_retry_keeps_what_failed_writes_missed,
    history_pages_newest_first,
    expired_messages_neither_show_nor_end_the_history,
    a_member_never_sees_what_was_sent_before_they_existed,
    a_blocked_room_is_closed_for_both,
    an_offered_room_is_blocked_without_joining,
);

/// `reproject --dynamodb TABLE`: a table whose stream nobody read (one from before the
/// projection, or whose stream lost changes) gets its room lists from its items: the
/// offers with their newest messages, and no copy left for a retired id.
#[tokio::test]
async fn dynamodb_reprojecting_rebuilds_the_room_lists_without_the_stream() {
    let store = common::fresh_store().await;
    let receiver = Receiver::start().await;
    let pusher = pusher_to(&receiver);
    let key = room_key();
    let (alice, bob, carol) = (
        new_user(&store).await,
        new_user(&store).await,
        new_user(&store).await,
    );
    let room = connect(&store, &key, &bob.private_id, alice.public_id, now())
        .await
        .unwrap();
    say(
        &store,
        &pusher,
        &room,
        &bob.private_id,
        "are you there?",
        now(),
    )
    .await
    .unwrap();
    // Carol's offer was copied for Alice's first id (a projector ran once), then Alice
    // rotated, and that change was lost.
    let old = alice.public_id;
    let carols = connect(&store, &key, &carol.private_id, old, now())
        .await
        .unwrap();
    let offer = store.offer(old, &carols).await.unwrap().unwrap();
    let holder = store.get_public(old).await.unwrap().unwrap();
    store
        .copy_offer(&holder.owner, old, &holder.since, &offer, None)
        .await
        .unwrap();
    let listed = list_rooms(&store, &key, &alice.private_id, now())
        .await
        .unwrap();
    assert_eq!(listed.rooms.len(), 1, "only the copy made: {listed:?}");
    rotate_public_id(&store, IdPolicy::default(), &alice.private_id, None, now())
        .await
        .unwrap();
    // Bob opens a room with Alice's new id, and nothing is projected.
    let alice_now = store
        .get_user(&alice.private_id.hash())
        .await
        .unwrap()
        .unwrap()
        .public_id;
    let fresh = connect(&store, &key, &bob.private_id, alice_now, now())
        .await
        .unwrap();
    // And a copy of it under its v2 key, `OFFER#<roomId>` (a table from before v3).
    let v2_key = format!("OFFER#{fresh}");
    let alice_pk = format!("USER#{}", alice.private_id.hash().to_hex());
    let v2_copy = [
        ("pk", AttributeValue::S(alice_pk.clone())),
        ("sk", AttributeValue::S(v2_key.clone())),
        ("type", AttributeValue::S("inbox".into())),
        ("roomId", AttributeValue::S(fresh.to_string())),
        ("to", AttributeValue::S(alice_now.to_string())),
        (
            "since",
            AttributeValue::S("2026-01-01T00:00:00.000Z".into()),
        ),
        (
            "openedAt",
            AttributeValue::S("2026-01-01T00:00:00.000Z".into()),
        ),
        (
            "from",
            AttributeValue::M(
                [
                    (
                        "publicId".to_owned(),
                        AttributeValue::S(bob.public_id.to_string()),
                    ),
                    (
                        "username".to_owned(),
                        AttributeValue::S(bob.username.clone()),
                    ),
                ]
                .into(),
            ),
        ),
    ];
    store
        .client()
        .put_item()
        .table_name(store.table())
        .set_item(Some(
            v2_copy
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        ))
        .send()
        .await
        .unwrap();

    let items = secret_rooms::projector::reproject_table(&store)
        .await
        .unwrap();
    assert!(items >= 4, "{items}");
    let after = store.items().await;
    assert!(
        !after.contains_key(&format!("{alice_pk} {v2_key}")),
        "the v2 copy is dropped"
    );
    let v3_copies = after
        .keys()
        .filter(|k| k.starts_with(&format!("{alice_pk} OFFER#")) && k.ends_with(fresh.as_str()))
        .count();
    assert_eq!(v3_copies, 1, "and the offer copied under its v3 key");
    let copies = format!("USER#{} OFFER#", alice.private_id.hash().to_hex());
    let kept: Vec<String> = store
        .items()
        .await
        .into_iter()
        .filter(|(k, item)| k.starts_with(&copies) && item["to"] == json!(old.to_string()))
        .map(|(k, _)| k)
        .collect();
    assert!(kept.is_empty(), "no copy for the retired id: {kept:?}");
    let alices = list_rooms(&store, &key, &alice.private_id, now())
        .await
        .unwrap();
    let offered: Vec<&RoomId> = alices.rooms.iter().map(|r| &r.room).collect();
    assert_eq!(
        offered,
        vec![&fresh],
        "the new id's offer, not the old id's"
    );
    let bobs = list_rooms(&store, &key, &bob.private_id, now())
        .await
        .unwrap();
    let entry = bobs.rooms.iter().find(|r| r.room == room).unwrap();
    assert!(entry.joined);
    assert!(entry.last_message_at.is_some(), "{entry:?}");
}

/// The embedded store's projection worker: a change that fails is tried again, and
/// applied once the fault clears; one that fails five times running is dropped (with a
/// warning: the next start-up's reprojection mends it), so that it cannot hold up the
/// changes after it.
#[tokio::test]
async fn embedded_projection_retries_a_failing_change_then_drops_it() {
    use secret_rooms_test_kit::recording::Recording;
    let store = secret_rooms::store::EmbeddedStore::in_memory()
        .unwrap()
        .without_worker();
    let receiver = Receiver::start().await;
    let pusher = pusher_to(&receiver);
    let key = room_key();
    let (alice, _, room) = joined_pair(&store, &key).await;
    store.settle().await.unwrap();
    let t0 = now() + Duration::from_secs(1);
    let noted = |at: SystemTime| {
        let (store, key, alice) = (store.clone(), key.clone(), alice.private_id.clone());
        async move {
            let list = list_rooms(&store, &key, &alice, at).await.unwrap();
            list.rooms[0].last_message_at.clone()
        }
    };
    let later = t0 + Duration::from_secs(10);
    let failing = Recording::new(store.clone());

    say(&store, &pusher, &room, &alice.private_id, "one", t0)
        .await
        .unwrap();
    failing.fail_audience(2);
    for _ in 0..2 {
        assert!(store.settle_through(&failing).await.is_err(), "it failed");
    }
    assert_eq!(noted(later).await, None, "not noted while it fails");
    assert_eq!(
        store.settle_through(&failing).await.unwrap(),
        1,
        "tried again"
    );
    let one = Some(secret_rooms::domain::time::rfc3339(t0));
    assert_eq!(noted(later).await, one);

    let t1 = t0 + Duration::from_secs(1);
    say(&store, &pusher, &room, &alice.private_id, "two", t1)
        .await
        .unwrap();
    failing.fail_audience(usize::MAX);
    for _ in 0..4 {
        assert!(store.settle_through(&failing).await.is_err());
    }
    assert_eq!(
        store.settle_through(&failing).await.unwrap(),
        1,
        "the fifth failure drops it"
    );
    assert_eq!(noted(later).await, one, "dropped, not noted");
    failing.fail_audience(0);
    let t2 = t0 + Duration::from_secs(2);
    say(&store, &pusher, &room, &alice.private_id, "three", t2)
        .await
        .unwrap();
    assert_eq!(store.settle_through(&failing).await.unwrap(), 1);
    assert_eq!(
        noted(later).await,
        Some(secret_rooms::domain::time::rfc3339(t2)),
        "the changes after it are applied"
    );
}

/// SPEC v3 budget: the projection writes at most 2 items for a connect (a connect again
/// moves its copy: one delete, one write) and at most 2 for a message (one entry per
/// side), counted on the calls it makes.
#[tokio::test]
async fn the_projection_writes_at_most_two_items_a_connect_and_a_message() {
    use secret_rooms_test_kit::recording::Recording;
    let store = secret_rooms::store::EmbeddedStore::in_memory()
        .unwrap()
        .without_worker();
    let recording = Recording::new(store.clone());
    let settle = async || {
        store.settle_through(&recording).await.unwrap();
    };
    projection_writes_per_change(&store, &recording, settle).await;
}

/// The same on DynamoDB: the stream's records of the same writes, read from moto's
/// stream and projected as the `project-changes` function does, through a recording.
#[tokio::test]
async fn dynamodb_the_stream_function_writes_at_most_two_items_a_connect_and_a_message() {
    use secret_rooms_test_kit::recording::Recording;
    let store = common::fresh_store().await;
    let reader = secret_rooms::projector::reader_for(&store).await.unwrap();
    let recording = Arc::new(Recording::new(store.clone()));
    let projector = secret_rooms::projector::Projector::new(recording.clone());
    let settle = async || {
        let applied = reader.settle(&projector).await.unwrap();
        assert_eq!(applied.failed_at, None, "every record projected");
    };
    projection_writes_per_change(&store, &recording, settle).await;
}

/// A first connect, a connect again, a message and a connect again after it: the
/// projection's writes for each (what `settle` applies, seen by `recording`) are at
/// most two, as the SPEC's budget says.
async fn projection_writes_per_change<S: Store + Clone + 'static>(
    store: &S,
    recording: &secret_rooms_test_kit::recording::Recording<S>,
    settle: impl AsyncFn(),
) {
    let receiver = Receiver::start().await;
    let pusher = pusher_to(&receiver);
    let key = room_key();
    let (alice, bob) = (new_user(store).await, new_user(store).await);
    let writes = |calls: &[String]| {
        calls
            .iter()
            .filter(|c| {
                ["copy_offer", "drop_offer", "note_message", "drop_offers_to"]
                    .iter()
                    .any(|w| c.starts_with(w))
            })
            .count()
    };
    // The projection's writes since the last look, with the calls for a failure's message.
    let projected = async || {
        settle().await;
        let calls = recording.take();
        (writes(&calls), calls)
    };
    projected().await; // the users' own records
    let t0 = now() + Duration::from_secs(1);
    let at = |secs| t0 + Duration::from_secs(secs);
    let room = connect(store, &key, &alice.private_id, bob.public_id, at(0))
        .await
        .unwrap();
    let (n, calls) = projected().await;
    assert!((1..=2).contains(&n), "a first connect: {calls:#?}");
    connect(store, &key, &alice.private_id, bob.public_id, at(1))
        .await
        .unwrap();
    let (n, calls) = projected().await;
    assert_eq!(n, 2, "a connect again moves the copy: {calls:#?}");
    say(store, &pusher, &room, &alice.private_id, "hi", at(2))
        .await
        .unwrap();
    let (n, calls) = projected().await;
    assert_eq!(n, 2, "a message notes both sides: {calls:#?}");
    connect(store, &key, &alice.private_id, bob.public_id, at(3))
        .await
        .unwrap();
    let (n, calls) = projected().await;
    assert_eq!(n, 2, "a connect again after a message: {calls:#?}");
}
