//! The storage contract on an embedded database (redb), for running the whole service
//! on one machine. Items mirror the DynamoDB table's, one JSON value per key. redb runs
//! one write transaction at a time, so the conditional writes are exactly as atomic as
//! DynamoDB's, under concurrency too; concurrent writes share one sync ([`writer`]).

use super::feed::{self, Written};
use super::rate;
use super::schema::{
    AddressItem, CounterItem, InboxItem, JoinedItem, Kind, LastMessageEntry, MemberEntry,
    MessageItem, OfferItem, PublicItem, RoomItem, SideEntry, UserItem, keys,
};
use super::{
    Allowance, Announce, Audience, CreateQuota, HistoryPage, InsertUserError, JoinError, Joining,
    Keeping, KeptMessage, LastMessage, ListEntry, Member, Membership, Offer, PublicEntry,
    RateWindow, Requester, RoomsOf, RotateError, Store, StoreError, UserRecord,
};
use crate::domain::history::Cursor;
use crate::domain::projection;
use crate::domain::rooms::Side;
use crate::domain::sent::LastSent;
use crate::domain::{PrivateIdHash, PublicId, RoomId};
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

mod lists;
mod messages;
mod outbox;
mod rooms;
mod upkeep;
mod users;
mod writer;

use outbox::{Projection, Writes};
use writer::{Batch, Tx, Writer};

const ITEMS: TableDefinition<&str, &[u8]> = TableDefinition::new("items");
/// The writes the room lists depend on ([`feed::Written`], as JSON), by sequence number,
/// until the projection has applied them: the embedded counterpart of the DynamoDB
/// stream.
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");

/// What [`EmbeddedStore::sweep`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub messages: usize,
    pub addresses: usize,
    /// Offers past their `OFFER_TTL`, and the projection's copies of them.
    pub offers: usize,
}

/// What a swept item was.
#[derive(Clone, Copy)]
enum Expires {
    Message,
    Address,
    Offer,
}

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    /// Where every write transaction runs, in batches that share one sync.
    writer: Arc<Writer>,
    /// Transactions run, the embedded counterpart of DynamoDB round trips.
    transactions: Arc<AtomicUsize>,
    projection: Arc<Projection>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmbeddedStore")
    }
}

fn other(e: impl Into<anyhow::Error>) -> StoreError {
    StoreError::Other(e.into())
}

impl EmbeddedStore {
    /// A database file at `path`, created when missing; survives restarts.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        Self::init(Database::create(path)?)
    }

    /// A throw-away database in memory.
    pub fn in_memory() -> anyhow::Result<Self> {
        Self::init(Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?)
    }

    fn init(db: Database) -> anyhow::Result<Self> {
        let txn = db.begin_write()?;
        txn.open_table(ITEMS)?;
        txn.open_table(OUTBOX)?;
        txn.commit()?;
        let db = Arc::new(db);
        Ok(Self {
            writer: Arc::new(Writer::start(db.clone())?),
            db,
            transactions: Arc::new(AtomicUsize::new(0)),
            projection: Arc::default(),
        })
    }

    /// Run blocking reads off the async runtime's worker threads.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        self.transactions.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(other)?
    }

    /// Run a write in the writer's next batch: its answer once the batch is durable.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Batch) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.writer.write(work).await
    }

    async fn get<T: for<'de> Deserialize<'de> + Send + 'static>(
        &self,
        key: String,
    ) -> Result<Option<T>, StoreError> {
        self.run(move |db| read(db, &key)).await
    }
}

fn read<T: for<'de> Deserialize<'de>>(db: &Database, key: &str) -> Result<Option<T>, StoreError> {
    let txn = db.begin_read().map_err(other)?;
    let table = txn.open_table(ITEMS).map_err(other)?;
    get_item(&table, key)
}

/// The item under `key` in an open table, as its schema type.
fn get_item<T: for<'de> Deserialize<'de>>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    table
        .get(key)
        .map_err(other)?
        .map(|v| serde_json::from_slice(v.value()))
        .transpose()
        .map_err(other)
}

/// The items of partition `pk` whose sort key starts with `prefix`, in sort-key order,
/// up to `limit`.
fn partition<T: for<'de> Deserialize<'de>>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    pk: &str,
    prefix: &str,
    limit: Option<usize>,
) -> Result<Vec<T>, StoreError> {
    let from = keys::storage_key(pk, prefix);
    let mut out = Vec::new();
    for entry in table.range(from.as_str()..).map_err(other)? {
        let (key, value) = entry.map_err(other)?;
        if !key.value().starts_with(from.as_str()) || limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        out.push(serde_json::from_slice(value.value()).map_err(other)?);
    }
    Ok(out)
}

/// Up to `limit` items of `pk`'s partition whose sort key starts with `prefix` (which
/// ends in `#`), with their keys, newest sort key first, as a DynamoDB query reading
/// backwards: only what it returns is read.
fn partition_newest<T: for<'de> Deserialize<'de>>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    pk: &str,
    prefix: &str,
    limit: usize,
) -> Result<Vec<(String, T)>, StoreError> {
    let from = keys::storage_key(pk, prefix);
    let Some(stem) = from.strip_suffix('#') else {
        return Err(other(anyhow::anyhow!("a prefix that does not end in #")));
    };
    // '$' follows '#': every key of the prefix sorts before this one.
    let to = format!("{stem}$");
    let mut out = Vec::new();
    for entry in table
        .range(from.as_str()..to.as_str())
        .map_err(other)?
        .rev()
    {
        if out.len() >= limit {
            break;
        }
        let (key, value) = entry.map_err(other)?;
        let item = serde_json::from_slice(value.value()).map_err(other)?;
        out.push((key.value().to_owned(), item));
    }
    Ok(out)
}

/// Count one more id taken from `quota`'s address in its window: `false`, and nothing
/// written, when the window's limit is reached.
fn count_create(table: &mut Writes<'_>, quota: &CreateQuota) -> Result<bool, StoreError> {
    let pk = keys::address(&quota.address, quota.window);
    let count = get_item::<AddressItem>(&**table, pk.as_str())?.map_or(0, |item| item.count);
    if count >= quota.limit {
        return Ok(false);
    }
    let item = AddressItem {
        kind: Kind::Address,
        count: count + 1,
        ttl: quota.expires_at,
    };
    table.insert(pk.as_str(), encode(&item)?.as_slice())?;
    // No TTL here: the address's count of the window before goes now.
    if let Some(previous) = quota.window.checked_sub(1) {
        let old = keys::address(&quota.address, previous);
        table.remove(old.as_str())?;
    }
    Ok(true)
}

fn encode<T: Serialize>(item: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(item).map_err(other)
}

super::store_by_aggregate!(EmbeddedStore, {
    fn round_trips(&self) -> usize {
        self.transactions.load(Ordering::Relaxed)
    }
});

#[cfg(test)]
mod tests;
