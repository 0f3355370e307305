//! A fresh DynamoDB table per test on the test command's DynamoDB-compatible server,
//! and every store's items as JSON, for comparing before and after.

use async_trait::async_trait;
use secret_rooms::store::dynamodb::item_json;
use secret_rooms::store::schema::keys;
use secret_rooms::store::{DynamoStore, EmbeddedStore, Store, Timeouts};
use serde_json::Value;
use std::collections::BTreeMap;

pub const ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL_DYNAMODB";

/// A DynamoDB store on a table of its own. Fails loudly, naming the variable, when
/// no DynamoDB-compatible server was started (run `./scripts/test.sh`).
pub async fn fresh_store() -> DynamoStore {
    let endpoint = std::env::var(ENDPOINT_VAR).unwrap_or_default();
    assert!(
        !endpoint.is_empty(),
        "{ENDPOINT_VAR} is not set: these tests need a DynamoDB-compatible server. \
         Run ./scripts/test.sh, which installs and starts moto's server."
    );
    let store =
        DynamoStore::from_default_chain(fresh_table_name(), test_timeouts(), Some(&endpoint)).await;
    store
        .create_table()
        .await
        .unwrap_or_else(|e| panic!("cannot create a table on {endpoint}: {e}"));
    store
}

/// The same table through a new client (a second function instance, say).
pub async fn reopen(table: &str) -> DynamoStore {
    let endpoint = std::env::var(ENDPOINT_VAR).ok();
    DynamoStore::from_default_chain(table.to_owned(), test_timeouts(), endpoint.as_deref()).await
}

/// What ./scripts/test.sh sets for moto (slow under the concurrency tests); the fault
/// tests use the production timeouts instead.
pub fn test_timeouts() -> Timeouts {
    secret_rooms::config::dynamodb_timeouts(&secret_rooms::config::process_env)
        .expect("valid DYNAMODB_*_TIMEOUT_MS")
}

pub fn fresh_table_name() -> String {
    format!("test-{}", secret_rooms::http::new_request_id())
}

/// Round trips since the last call: each call of the returned closure answers how many
/// the store made since the previous one.
pub fn round_trip_counter(store: &dyn Store) -> impl FnMut() -> usize + '_ {
    let mut last = store.round_trips();
    move || {
        let now = store.round_trips();
        let since = now - last;
        last = now;
        since
    }
}

/// Every item of a store, by key (`keys::storage_key`), as JSON (DynamoDB's attribute values made plain).
#[async_trait]
pub trait Items {
    async fn items(&self) -> BTreeMap<String, Value>;

    /// Let the room lists' projection catch up with every write so far: on DynamoDB,
    /// read the table's stream from its start and project it (as the `project-changes`
    /// function does; replaying a change is harmless), through a client of its own, so
    /// that the store's round trips stay the requests'; on the embedded store, apply
    /// what its writes queued.
    async fn settle(&self);
}

/// Project `table`'s whole stream (see [`Items::settle`]); how many records stood for a
/// change.
pub async fn settle_table(table: &str) -> usize {
    let store = reopen(table).await;
    let reader = secret_rooms::projector::reader_for(&store)
        .await
        .expect("a stream reader");
    let projector = secret_rooms::projector::Projector::new(std::sync::Arc::new(store));
    reader
        .settle(&projector)
        .await
        .unwrap_or_else(|e| panic!("projecting the stream of {table}: {e:#}"))
        .changes
}

#[async_trait]
impl Items for DynamoStore {
    async fn items(&self) -> BTreeMap<String, Value> {
        let out = self
            .client()
            .scan()
            .table_name(self.table())
            .send()
            .await
            .expect("scan the test table");
        assert!(
            out.last_evaluated_key().is_none(),
            "test tables fit one scan page"
        );
        out.items()
            .iter()
            .map(|item| {
                let pk = item["pk"].as_s().expect("every item has a pk");
                let sk = item["sk"].as_s().expect("every item has an sk");
                (keys::storage_key(pk, sk), item_json(item))
            })
            .collect()
    }

    async fn settle(&self) {
        settle_table(self.table()).await;
    }
}

#[async_trait]
impl Items for EmbeddedStore {
    /// Once the projection has applied what the writes so far queued: its worker runs
    /// beside the test, and a comparison must not catch it half-way.
    async fn items(&self) -> BTreeMap<String, Value> {
        Items::settle(self).await;
        self.dump()
            .await
            .expect("dump the embedded store")
            .into_iter()
            .collect()
    }

    async fn settle(&self) {
        EmbeddedStore::settle(self)
            .await
            .expect("project the embedded store's queued changes");
    }
}
