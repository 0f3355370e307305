//! Test helpers: a fresh DynamoDB table per test on the test command's moto server,
//! a Pusher-protocol receiver that verifies every signature, and request builders.
#![allow(dead_code)]

pub mod receiver;

use async_trait::async_trait;
use secret_rooms::domain::{PrivateIdHash, PublicId, RoomId};
use secret_rooms::store::{
    ConnectLookup, DynamoStore, InsertUserError, Member, PublicEntry, Store, StoreError,
    UserRecord,
};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL_DYNAMODB";
pub const ROOM_KEY: &str = "test-room-key-0123456789abcdef-0123456789";

/// A DynamoDB store on a table of its own. Fails loudly, naming the variable, when
/// no DynamoDB-compatible server was started (run `./scripts/test.sh`).
pub async fn fresh_store() -> DynamoStore {
    let endpoint = std::env::var(ENDPOINT_VAR).unwrap_or_default();
    assert!(
        !endpoint.is_empty(),
        "{ENDPOINT_VAR} is not set: these tests need a DynamoDB-compatible server. \
         Run ./scripts/test.sh, which installs and starts moto's server."
    );
    let store = DynamoStore::from_env(fresh_table_name()).await;
    store
        .create_table()
        .await
        .unwrap_or_else(|e| panic!("cannot create a table on {endpoint}: {e}"));
    store
}

pub fn fresh_table_name() -> String {
    format!("test-{}", secret_rooms::http::new_request_id())
}

/// Environment for `Endpoint::from_env`: a fresh table, the test room key, and Pusher
/// pointed at `pusher_base` (the receiver).
pub fn env_map(table: &str, pusher_base: &str) -> HashMap<String, String> {
    HashMap::from([
        ("TABLE_NAME".into(), table.into()),
        ("ROOM_ID_KEY".into(), ROOM_KEY.into()),
        ("PUSHER_APP_ID".into(), receiver::APP_ID.into()),
        ("PUSHER_KEY".into(), receiver::KEY.into()),
        ("PUSHER_SECRET".into(), receiver::SECRET.into()),
        ("PUSHER_HOST".into(), pusher_base.into()),
        ("PUSHER_TIMEOUT_MS".into(), "1500".into()),
    ])
}

/// Counts calls per storage method: each is one database round trip by contract.
pub struct CountingStore<S> {
    pub inner: S,
    counts: Mutex<HashMap<&'static str, usize>>,
    total: AtomicUsize,
}

impl<S> CountingStore<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            counts: Mutex::new(HashMap::new()),
            total: AtomicUsize::new(0),
        }
    }

    fn hit(&self, name: &'static str) {
        self.total.fetch_add(1, Ordering::SeqCst);
        *self.counts.lock().unwrap().entry(name).or_default() += 1;
    }

    /// Round trips since the last call, and resets the count.
    pub fn take(&self) -> usize {
        self.counts.lock().unwrap().clear();
        self.total.swap(0, Ordering::SeqCst)
    }

    pub fn count(&self, name: &str) -> usize {
        self.counts.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

#[async_trait]
impl<S: Store> Store for CountingStore<S> {
    async fn next_user_id(&self) -> Result<u64, StoreError> {
        self.hit("next_user_id");
        self.inner.next_user_id().await
    }
    async fn insert_user(&self, user: &UserRecord) -> Result<(), InsertUserError> {
        self.hit("insert_user");
        self.inner.insert_user(user).await
    }
    async fn lookup_for_connect(
        &self,
        requester: &PrivateIdHash,
        target: PublicId,
    ) -> Result<ConnectLookup, StoreError> {
        self.hit("lookup_for_connect");
        self.inner.lookup_for_connect(requester, target).await
    }
    async fn put_room(
        &self,
        room: &RoomId,
        members: &[(PrivateIdHash, Member)],
        now: &str,
    ) -> Result<(), StoreError> {
        self.hit("put_room");
        self.inner.put_room(room, members, now).await
    }
    async fn room_member(
        &self,
        room: &RoomId,
        who: &PrivateIdHash,
    ) -> Result<Option<Member>, StoreError> {
        self.hit("room_member");
        self.inner.room_member(room, who).await
    }
    async fn get_user(&self, hash: &PrivateIdHash) -> Result<Option<UserRecord>, StoreError> {
        self.inner.get_user(hash).await
    }
    async fn get_public(&self, id: PublicId) -> Result<Option<PublicEntry>, StoreError> {
        self.inner.get_public(id).await
    }
    async fn room_members(
        &self,
        room: &RoomId,
    ) -> Result<Option<Vec<(PrivateIdHash, Member)>>, StoreError> {
        self.inner.room_members(room).await
    }
}
