//! The storage contract on an embedded database (redb), for running the whole service
//! on one machine. Items mirror the DynamoDB table's, one JSON value per key. redb runs
//! one write transaction at a time, so the conditional writes are exactly as atomic as
//! DynamoDB's, under concurrency too.

use super::rate;
use super::schema::{
    AddressItem, CounterItem, InboxItem, JoinedItem, Kind, LastMessageEntry, MemberEntry,
    MessageItem, OfferItem, PublicItem, RoomItem, SideEntry, UserItem, keys,
};
use super::{
    Allowance, Announce, Audience, CreateQuota, HistoryPage, InsertUserError, JoinError, Joining,
    KeptMessage, LastMessage, ListEntry, Member, Membership, Offer, PublicEntry, RateWindow,
    Requester, RoomsOf, RotateError, Store, StoreError, UserRecord,
};
use crate::domain::history::Cursor;
use crate::domain::projection::{self, Change};
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

const ITEMS: TableDefinition<&str, &[u8]> = TableDefinition::new("items");
/// The room lists' changes that writes queued, by sequence number, until the projection
/// has applied them: the embedded counterpart of the DynamoDB stream.
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
    /// Transactions run, the embedded counterpart of DynamoDB round trips.
    transactions: Arc<AtomicUsize>,
    projection: Arc<Projection>,
}

/// The room lists' projection, applied off the request path: a write queues its changes
/// in the outbox within its own transaction, and one worker task applies them in the
/// order they were committed, as the stream's function does on AWS. So a request's
/// time never depends on what the projection finds (whether a public id has a holder,
/// say), a crash loses no change, and changes never race each other.
#[derive(Default)]
struct Projection {
    /// Wakes the worker when a write queued changes.
    wake: tokio::sync::Notify,
    /// One drain at a time: the worker's, or a caller's `settle`.
    draining: tokio::sync::Mutex<()>,
    started: std::sync::atomic::AtomicBool,
    /// Set by `close`: the worker ends, and writes no longer start one.
    closing: std::sync::atomic::AtomicBool,
    worker: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// How many times in a row the oldest queued change failed.
    failures: AtomicUsize,
}

/// A queued change, as the outbox keeps it.
#[derive(Serialize, Deserialize)]
#[serde(
    tag = "change",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
enum Queued {
    MessageKept {
        room: String,
        sent_at: String,
        expires_at: u64,
    },
    Offered {
        to: String,
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaced: Option<String>,
    },
    OfferDeleted {
        to: String,
        room: String,
        #[serde(default)]
        opened_at: String,
    },
    Joined {
        who: String,
        room: String,
    },
    Retired {
        id: String,
        holder: String,
    },
}

impl From<&Change> for Queued {
    fn from(change: &Change) -> Self {
        match change {
            Change::MessageKept { room, last } => Self::MessageKept {
                room: room.to_string(),
                sent_at: last.sent_at.clone(),
                expires_at: last.expires_at,
            },
            Change::Offered { to, room, replaced } => Self::Offered {
                to: to.to_string(),
                room: room.to_string(),
                replaced: replaced.clone(),
            },
            Change::OfferDeleted {
                to,
                room,
                opened_at,
            } => Self::OfferDeleted {
                to: to.to_string(),
                room: room.to_string(),
                opened_at: opened_at.clone(),
            },
            Change::Joined { who, room } => Self::Joined {
                who: who.to_hex(),
                room: room.to_string(),
            },
            Change::Retired { id, holder } => Self::Retired {
                id: id.to_string(),
                holder: holder.to_hex(),
            },
        }
    }
}

impl Queued {
    fn change(self) -> Option<Change> {
        let room = |s: &str| RoomId::parse(s);
        Some(match self {
            Self::MessageKept {
                room: r,
                sent_at,
                expires_at,
            } => Change::MessageKept {
                room: room(&r)?,
                last: LastMessage {
                    sent_at,
                    expires_at,
                },
            },
            Self::Offered {
                to,
                room: r,
                replaced,
            } => Change::Offered {
                to: PublicId::parse(&to)?,
                room: room(&r)?,
                replaced,
            },
            Self::OfferDeleted {
                to,
                room: r,
                opened_at,
            } => Change::OfferDeleted {
                to: PublicId::parse(&to)?,
                room: room(&r)?,
                opened_at,
            },
            Self::Joined { who, room: r } => Change::Joined {
                who: PrivateIdHash::from_hex(&who)?,
                room: room(&r)?,
            },
            Self::Retired { id, holder } => Change::Retired {
                id: PublicId::parse(&id)?,
                holder: PrivateIdHash::from_hex(&holder)?,
            },
        })
    }
}

/// Queue `changes` in the outbox of a write transaction, after those already there.
fn queue(txn: &redb::WriteTransaction, changes: &[Change]) -> Result<(), StoreError> {
    let mut outbox = txn.open_table(OUTBOX).map_err(other)?;
    let next = match outbox.last().map_err(other)? {
        Some((seq, _)) => seq.value() + 1,
        None => 0,
    };
    for (seq, change) in (next..).zip(changes) {
        let value = encode(&Queued::from(change))?;
        outbox.insert(seq, value.as_slice()).map_err(other)?;
    }
    Ok(())
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
        Ok(Self {
            db: Arc::new(db),
            transactions: Arc::new(AtomicUsize::new(0)),
            projection: Arc::default(),
        })
    }

    /// Run blocking database work off the async runtime's worker threads.
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
fn count_create(
    table: &mut redb::Table<&str, &[u8]>,
    quota: &CreateQuota,
) -> Result<bool, StoreError> {
    let pk = keys::address(&quota.address, quota.window);
    let count = get_item::<AddressItem>(&*table, pk.as_str())?.map_or(0, |item| item.count);
    if count >= quota.limit {
        return Ok(false);
    }
    let item = AddressItem {
        kind: Kind::Address,
        count: count + 1,
        ttl: quota.expires_at,
    };
    table
        .insert(pk.as_str(), encode(&item)?.as_slice())
        .map_err(other)?;
    // No TTL here: the address's count of the window before goes now.
    if let Some(previous) = quota.window.checked_sub(1) {
        let old = keys::address(&quota.address, previous);
        table.remove(old.as_str()).map_err(other)?;
    }
    Ok(true)
}

fn encode<T: Serialize>(item: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(item).map_err(other)
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn reserve_user_ids(&self, count: u64) -> Result<u64, StoreError> {
        self.run(move |db| {
            let txn = db.begin_write().map_err(other)?;
            let last = {
                let mut table = txn.open_table(ITEMS).map_err(other)?;
                let current: u64 = get_item::<CounterItem>(&table, keys::USER_COUNTER)?
                    .map_or(0, |item| item.value);
                let last = current + count;
                table
                    .insert(
                        keys::USER_COUNTER,
                        encode(&CounterItem { value: last })?.as_slice(),
                    )
                    .map_err(other)?;
                last
            };
            txn.commit().map_err(other)?;
            Ok(last)
        })
        .await
    }

    async fn insert_user(
        &self,
        user: &UserRecord,
        quota: Option<&CreateQuota>,
    ) -> Result<(), InsertUserError> {
        let user_pk = keys::user(&user.private_id_hash);
        let public_pk = keys::public(user.public_id);
        let user_item = encode(&UserItem::new(user))?;
        let public_item = encode(&PublicItem::new(user))?;
        let quota = quota.cloned();
        self.run(move |db| {
            let txn = db.begin_write().map_err(other)?;
            {
                let mut table = txn.open_table(ITEMS).map_err(other)?;
                // Dropping the transaction uncommitted writes nothing: a refused create
                // leaves no count behind.
                if let Some(quota) = &quota
                    && !count_create(&mut table, quota)?
                {
                    return Ok(Err(InsertUserError::RateLimited));
                }
                if table.get(user_pk.as_str()).map_err(other)?.is_some()
                    || table.get(public_pk.as_str()).map_err(other)?.is_some()
                {
                    return Ok(Err(InsertUserError::Taken));
                }
                table
                    .insert(user_pk.as_str(), user_item.as_slice())
                    .map_err(other)?;
                table
                    .insert(public_pk.as_str(), public_item.as_slice())
                    .map_err(other)?;
            }
            txn.commit().map_err(other)?;
            Ok(Ok(()))
        })
        .await?
    }

    async fn member_for_connect(
        &self,
        requester: &PrivateIdHash,
    ) -> Result<Option<Requester>, StoreError> {
        let Some(user) = self.get::<UserItem>(keys::user(requester)).await? else {
            return Ok(None);
        };
        user.requester().map(Some)
    }

    async fn join_room(&self, joining: &Joining<'_>) -> Result<Announce, JoinError> {
        let Joining {
            room,
            side,
            joiner,
            requester,
            target,
            max_rooms,
            connects,
            offer_expires_at,
            now,
        } = joining.clone();
        let (room_pk, joiner_pk) = (keys::room(room), keys::user(joiner));
        let joined_key = keys::storage_key(&joiner_pk, &keys::room_entry(room));
        let offer_key = keys::storage_key(&keys::public(target), &keys::room_entry(room));
        let (room_id, tag) = (room.to_string(), room.tag());
        let entry = SideEntry::new(joiner, &requester.member, &requester.since, target, now);
        let from = MemberEntry::new(&requester.member);
        let public_key = requester.public_key.map(|k| k.to_string());
        let since = requester.since.clone();
        let now = now.to_owned();
        let (room, joiner) = (room.clone(), *joiner);
        let announce = self
            .run(move |db| {
                let mut changes = vec![Change::Offered {
                    to: target,
                    room: room.clone(),
                    replaced: None,
                }];
                let txn = db.begin_write().map_err(other)?;
                let announce;
                {
                    let mut table = txn.open_table(ITEMS).map_err(other)?;
                    // In DynamoDB's order: a closed room first, then the joiner's item.
                    let mut item = match get_item::<RoomItem>(&table, room_pk.as_str())? {
                        Some(item) => item,
                        None => RoomItem {
                            kind: Kind::Room,
                            low: None,
                            high: None,
                            members: BTreeMap::new(),
                            created_at: now.clone(),
                            updated_at: now.clone(),
                            closed_at: None,
                        },
                    };
                    if item.closed_at.is_some() {
                        return Ok(Err(JoinError::Closed));
                    }
                    let mut user = match get_item::<UserItem>(&table, joiner_pk.as_str())? {
                        Some(item) => item,
                        None => return Ok(Err(JoinError::NoSuchJoiner)),
                    };
                    // Every connect counts in its window, as DynamoDB's conditional update.
                    // (A counter already in a later window, of a request that read the clock
                    // after this one: counted there.)
                    let connects = user
                        .cr
                        .and_then(|c| rate::later_of(connects, c))
                        .unwrap_or(connects);
                    let (counted, current) = match user.cr {
                        Some(c) if c >= rate::full(connects) => {
                            return Ok(Err(JoinError::RateLimited));
                        }
                        Some(c) if c >= rate::start(connects) => (c + 1, true),
                        _ => (rate::start(connects) + 1, false),
                    };
                    // A first join counts against the cap, blocked rooms too.
                    let first = !user.rooms.contains(&tag);
                    if first && user.joins as usize >= max_rooms {
                        return Ok(Err(JoinError::TooManyRooms));
                    }
                    user.cr = Some(counted);
                    if !current {
                        user.ra.clear();
                    }
                    let mark;
                    (announce, mark) = crate::domain::rooms::announcing(&user.ra, &room, first);
                    user.ra.extend(mark);
                    match side {
                        Side::Low => item.low = Some(entry),
                        Side::High => item.high = Some(entry),
                    }
                    item.updated_at = now.clone();
                    table
                        .insert(room_pk.as_str(), encode(&item)?.as_slice())
                        .map_err(other)?;
                    if first {
                        user.joins += 1;
                        user.rooms.insert(tag);
                    }
                    table
                        .insert(joiner_pk.as_str(), encode(&user)?.as_slice())
                        .map_err(other)?;
                    // The joined entry keeps its first time (and the message the projection
                    // noted); the offer says when it was last made.
                    // As DynamoDB's stream, which has a join's change when the entry is
                    // inserted, not when a join again rewrites it.
                    let (joined_at, last_message) =
                        match get_item::<JoinedItem>(&table, joined_key.as_str())? {
                            Some(item) => (item.joined_at, item.last_message),
                            None => {
                                changes.push(Change::Joined {
                                    who: joiner,
                                    room: room.clone(),
                                });
                                (now.clone(), LastMessageEntry::default())
                            }
                        };
                    let joined = JoinedItem {
                        kind: Kind::Joined,
                        room_id: room_id.clone(),
                        peer: target.to_string(),
                        joined_at,
                        since: Some(since),
                        closed_at: None,
                        last_message,
                    };
                    table
                        .insert(joined_key.as_str(), encode(&joined)?.as_slice())
                        .map_err(other)?;
                    let offer = OfferItem {
                        kind: Kind::Offer,
                        room_id,
                        from,
                        public_key,
                        opened_at: now.clone(),
                        ttl: Some(offer_expires_at),
                    };
                    let replaced = table
                        .insert(offer_key.as_str(), encode(&offer)?.as_slice())
                        .map_err(other)?
                        .map(|old| serde_json::from_slice::<OfferItem>(old.value()))
                        .transpose()
                        .map_err(other)?
                        .map(|old| old.opened_at)
                        .filter(|old| *old != now);
                    changes[0] = Change::Offered {
                        to: target,
                        room: room.clone(),
                        replaced,
                    };
                }
                queue(&txn, &changes)?;
                txn.commit().map_err(other)?;
                Ok(Ok(announce))
            })
            .await??;
        self.kick();
        Ok(announce)
    }

    async fn count_message(
        &self,
        room: &RoomId,
        who: &PrivateIdHash,
        requested: RateWindow,
        sent: &LastSent,
    ) -> Result<Allowance, StoreError> {
        let (key, room_pk, tag) = (keys::user(who), keys::room(room), room.tag());
        let (who, sent) = (*who, *sent);
        self.run(move |db| {
            let txn = db.begin_write().map_err(other)?;
            let allowance = {
                let mut table = txn.open_table(ITEMS).map_err(other)?;
                let mut user = match get_item::<UserItem>(&table, key.as_str())? {
                    Some(item) => item,
                    None => return Ok(Allowance::NotMember),
                };
                if !user.rooms.contains(&tag) {
                    // Not an open room of theirs: a closed one, or none.
                    let closed = get_item::<RoomItem>(&table, room_pk.as_str())?
                        .map(|item| item.membership(&who))
                        .transpose()?
                        .flatten()
                        .is_some_and(|m| m.closed);
                    return Ok(if closed {
                        Allowance::Closed
                    } else {
                        Allowance::NotMember
                    });
                }
                let member = user.member()?;
                let last = user.lm.as_deref().and_then(LastSent::decode);
                if let Some(first) = last.filter(|last| last.same_id(&sent)) {
                    return Ok(Allowance::SentBefore { member, first });
                }
                let counter = user.rl;
                let window = counter
                    .and_then(|c| rate::later_of(requested, c))
                    .unwrap_or(requested);
                let next = match counter {
                    Some(c) if c >= rate::full(window) => None,
                    Some(c) if c >= rate::start(window) => Some(c + 1),
                    _ if window.limit == 0 => None,
                    _ => Some(rate::start(window) + 1),
                };
                let Some(next) = next else {
                    return Ok(Allowance::Limited);
                };
                user.rl = Some(next);
                user.lm = Some(sent.encode());
                table
                    .insert(key.as_str(), encode(&user)?.as_slice())
                    .map_err(other)?;
                Allowance::Allowed(member)
            };
            txn.commit().map_err(other)?;
            Ok(allowance)
        })
        .await
    }

    async fn republish(
        &self,
        who: &PrivateIdHash,
        last: &LastSent,
        next: &LastSent,
    ) -> Result<bool, StoreError> {
        let (key, last, next) = (keys::user(who), last.encode(), next.encode());
        self.run(move |db| {
            let txn = db.begin_write().map_err(other)?;
            {
                let mut table = txn.open_table(ITEMS).map_err(other)?;
                let mut user = match get_item::<UserItem>(&table, key.as_str())? {
                    Some(user) if user.lm.as_deref() == Some(last.as_str()) => user,
                    _ => return Ok(false),
                };
                user.lm = Some(next);
                table
                    .insert(key.as_str(), encode(&user)?.as_slice())
                    .map_err(other)?;
            }
            txn.commit().map_err(other)?;
            Ok(true)
        })
        .await
    }

    async fn room_member(
        &self,
        room: &RoomId,
        who: &PrivateIdHash,
    ) -> Result<Option<Membership>, StoreError> {
        let Some(item) = self.get::<RoomItem>(keys::room(room)).await? else {
            return Ok(None);
        };
        item.membership(who)
    }

    async fn keep_message(
        &self,
        room: &RoomId,
        message: &KeptMessage,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        let key = keys::storage_key(&keys::room(room), &keys::message(&message.cursor));
        let item = encode(&MessageItem::new(message, expires_at))?;
        let kept = Change::MessageKept {
            room: room.clone(),
            last: LastMessage {
                sent_at: message.sent_at.clone(),
                expires_at,
            },
        };
        self.run(move |db| {
            let txn = db.begin_write().map_err(other)?;
            {
                let mut table = txn.open_table(ITEMS).map_err(other)?;
                table.insert(key.as_str(), item.as_slice()).map_err(other)?;
            }
            queue(&txn, &[kept])?;
            txn.commit().map_err(other)
        })
        .await?;
        self.kick();
        Ok(())
    }

    async fn list_messages(
        &self,
        room: &RoomId,
        after: &Cursor,
        limit: usize,
        now_secs: u64,
    ) -> Result<HistoryPage, StoreError> {
        let pk = keys::room(room);
        // As the DynamoDB query: from just past `after` (message keys all have one
        // length), one item more than the page.
        let from = format!("{} ", keys::storage_key(&pk, &keys::message(after)));
        let end = keys::storage_key(&pk, &format!("{}~", keys::MESSAGE_PREFIX));
        let prefix = format!("{pk} ");
        self.run(move |db| {
            let txn = db.begin_read().map_err(other)?;
            let table = txn.open_table(ITEMS).map_err(other)?;
            let mut read = Vec::new();
            for entry in table
                .range(from.as_str()..end.as_str())
                .map_err(other)?
                .take(limit + 1)
            {
                let (key, value) = entry.map_err(other)?;
                let key = key.value();
                let sk = key.strip_prefix(prefix.as_str()).unwrap_or(key);
                let item: MessageItem = serde_json::from_slice(value.value()).map_err(other)?;
                read.push((item.ttl, item.kept(sk)?));
            }
            Ok(super::dynamodb::history_page(read, limit, now_secs))
        })
        .await
    }

    async fn list_messages_before(
        &self,
        room: &RoomId,
        floor: &Cursor,
        before: Option<&Cursor>,
        limit: usize,
        now_secs: u64,
    ) -> Result<HistoryPage, StoreError> {
        let pk = keys::room(room);
        // As the DynamoDB query: newest first, from `before` (left out) down to just
        // past `floor`.
        let low = format!("{} ", keys::storage_key(&pk, &keys::message(floor)));
        let high = before.map_or(
            keys::storage_key(&pk, &format!("{}~", keys::MESSAGE_PREFIX)),
            |c| keys::storage_key(&pk, &keys::message(c)),
        );
        let before = before.cloned();
        let prefix = format!("{pk} ");
        self.run(move |db| {
            let txn = db.begin_read().map_err(other)?;
            let table = txn.open_table(ITEMS).map_err(other)?;
            let mut read = Vec::new();
            if low > high {
                return Ok(super::dynamodb::history_page(read, limit, now_secs));
            }
            for entry in table
                .range(low.as_str()..=high.as_str())
                .map_err(other)?
                .rev()
            {
                let (key, value) = entry.map_err(other)?;
                let key = key.value();
                let sk = key.strip_prefix(prefix.as_str()).unwrap_or(key);
                let item: MessageItem = serde_json::from_slice(value.value()).map_err(other)?;
                let kept = item.kept(sk)?;
                if Some(&kept.cursor) == before.as_ref() {
                    continue;
                }
                read.push((item.ttl, kept));
                if read.len() > limit {
                    break;
                }
            }
            Ok(super::dynamodb::history_page(read, limit, now_secs))
        })
        .await
    }

    async fn close_room(
        &self,
        room: &RoomId,
        blocker: &PrivateIdHash,
        inboxes: &[PublicId],
        peer: Option<&PrivateIdHash>,
        now: &str,
    ) -> Result<bool, StoreError> {
        let room_pk = keys::room(room);
        let peer_known = peer.is_some();
        let offer_keys: Vec<String> = inboxes
            .iter()
            .map(|inbox| keys::storage_key(&keys::public(*inbox), &keys::room_entry(room)))
            .collect();
        let users: Vec<String> = [Some(blocker), peer]
            .into_iter()
            .flatten()
            .map(keys::user)
            .collect();
        let (tag, entry, now) = (room.tag(), keys::room_entry(room), now.to_owned());
        let (room, inboxes) = (room.clone(), inboxes.to_vec());
        let closed = self
            .run(move |db| {
                let mut deleted = Vec::new();
                let txn = db.begin_write().map_err(other)?;
                {
                    let mut table = txn.open_table(ITEMS).map_err(other)?;
                    let mut item = match get_item::<RoomItem>(&table, room_pk.as_str())? {
                        Some(item) => item,
                        None => return Err(other(anyhow::anyhow!("closing a room that is not"))),
                    };
                    // A peer joined since the caller read the room: they would be left open.
                    if !peer_known && item.low.is_some() && item.high.is_some() {
                        return Ok(false);
                    }
                    item.closed_at.get_or_insert_with(|| now.clone());
                    // As DynamoDB's stream: a change for each offer there was.
                    for (offer_key, to) in offer_keys.iter().zip(&inboxes) {
                        let removed = table.remove(offer_key.as_str()).map_err(other)?;
                        if let Some(old) = removed {
                            let old: OfferItem =
                                serde_json::from_slice(old.value()).map_err(other)?;
                            deleted.push(Change::OfferDeleted {
                                to: *to,
                                room: room.clone(),
                                opened_at: old.opened_at,
                            });
                        }
                    }
                    table
                        .insert(room_pk.as_str(), encode(&item)?.as_slice())
                        .map_err(other)?;
                    // Each member's room leaves their open rooms, and their joined entry
                    // says it is closed.
                    // A member's user item exists (DynamoDB's condition refuses the close
                    // otherwise, and so does this). Their joined entry too, but in a file
                    // from before v2, whose rooms had none: the room is closed all the same.
                    for pk in users {
                        let Some(mut user) = get_item::<UserItem>(&table, pk.as_str())? else {
                            return Err(other(anyhow::anyhow!("a member who is no user")));
                        };
                        user.rooms.remove(&tag);
                        table
                            .insert(pk.as_str(), encode(&user)?.as_slice())
                            .map_err(other)?;
                        let joined_key = keys::storage_key(&pk, &entry);
                        if let Some(mut joined) =
                            get_item::<JoinedItem>(&table, joined_key.as_str())?
                        {
                            joined.closed_at.get_or_insert_with(|| now.clone());
                            table
                                .insert(joined_key.as_str(), encode(&joined)?.as_slice())
                                .map_err(other)?;
                        }
                    }
                }
                queue(&txn, &deleted)?;
                txn.commit().map_err(other)?;
                Ok(true)
            })
            .await?;
        if closed {
            self.kick();
        }
        Ok(closed)
    }

    async fn rooms_of(
        &self,
        who: &PrivateIdHash,
        max_offers: usize,
    ) -> Result<Option<RoomsOf>, StoreError> {
        let pk = keys::user(who);
        self.run(move |db| {
            let txn = db.begin_read().map_err(other)?;
            let table = txn.open_table(ITEMS).map_err(other)?;
            let Some(user) = get_item::<UserItem>(&table, pk.as_str())? else {
                return Ok(None);
            };
            let joined: Vec<_> =
                partition::<JoinedItem>(&table, &pk, keys::ROOM_ENTRY_PREFIX, None)?
                    .iter()
                    .map(JoinedItem::joined)
                    .collect::<Result<_, _>>()?;
            // As the DynamoDB query reads them: newest sort key first.
            let offers =
                partition_newest::<InboxItem>(&table, &pk, keys::OFFER_ENTRY_PREFIX, max_offers)?
                    .iter()
                    .map(|(_, copy)| copy.inbox_offer())
                    .collect::<Result<_, _>>()?;
            Ok(Some(RoomsOf {
                requester: user.requester()?,
                joined,
                offers,
            }))
        })
        .await
    }

    async fn offer(&self, to: PublicId, room: &RoomId) -> Result<Option<Offer>, StoreError> {
        let key = keys::storage_key(&keys::public(to), &keys::room_entry(room));
        self.get::<OfferItem>(key)
            .await?
            .map(|item| item.offer())
            .transpose()
    }

    async fn audience(&self, room: &RoomId) -> Result<Option<Audience>, StoreError> {
        self.get::<RoomItem>(keys::room(room))
            .await?
            .map(|item| item.audience())
            .transpose()
    }

    async fn newest_message(&self, room: &RoomId) -> Result<Option<LastMessage>, StoreError> {
        let pk = keys::room(room);
        let from = keys::storage_key(&pk, keys::MESSAGE_PREFIX);
        let end = keys::storage_key(&pk, &format!("{}~", keys::MESSAGE_PREFIX));
        self.run(move |db| {
            let txn = db.begin_read().map_err(other)?;
            let table = txn.open_table(ITEMS).map_err(other)?;
            let newest = table
                .range(from.as_str()..end.as_str())
                .map_err(other)?
                .next_back()
                .transpose()
                .map_err(other)?;
            let Some((_, value)) = newest else {
                return Ok(None);
            };
            let message: MessageItem = serde_json::from_slice(value.value()).map_err(other)?;
            Ok(Some(LastMessage {
                sent_at: message.sent_at,
                expires_at: message.ttl,
            }))
        })
        .await
    }

    async fn note_message(
        &self,
        who: &PrivateIdHash,
        room: &RoomId,
        entry: ListEntry<'_>,
        last: &LastMessage,
    ) -> Result<(), StoreError> {
        let pk = keys::user(who);
        let (key, joined) = match entry {
            ListEntry::Joined => (keys::storage_key(&pk, &keys::room_entry(room)), true),
            ListEntry::Offered { opened_at } => (
                keys::storage_key(&pk, &keys::offer_entry(opened_at, room)),
                false,
            ),
        };
        let last = last.clone();
        self.run(move |db| {
            let txn = db.begin_write().map_err(other)?;
            {
                let mut table = txn.open_table(ITEMS).map_err(other)?;
                let noted = match joined {
                    true => get_item::<JoinedItem>(&table, &key)?
                        .filter(|item| item.last_message.takes(item.since.as_deref(), &last))
                        .map(|mut item| {
                            item.last_message.set(&last);
                            encode(&item)
                        }),
                    false => get_item::<InboxItem>(&table, &key)?
                        .filter(|item| item.last_message.takes(Some(&item.since), &last))
                        .map(|mut item| {
                            item.last_message.set(&last);
                            encode(&item)
                        }),
                };
                if let Some(value) = noted.transpose()? {
                    table
                        .insert(key.as_str(), value.as_slice())
                        .map_err(other)?;
                }
            }
            txn.commit().map_err(other)
        })
        .await
    }

    async fn copy_offer(
        &self,
        owner: &PrivateIdHash,
        to: PublicId,
        since: &str,
        offer: &Offer,
        last: Option<&LastMessage>,
    ) -> Result<(), StoreError> {
        let key = keys::storage_key(
            &keys::user(owner),
            &keys::offer_entry(&offer.opened_at, &offer.room),
        );
        let mut copy = InboxItem::new(to, since, offer);
        let last = last.cloned();
        self.run(move |db| {
            let txn = db.begin_write().map_err(other)?;
            {
                let mut table = txn.open_table(ITEMS).map_err(other)?;
                // As DynamoDB's conditional update: a noted message moves forward only.
                let old = get_item::<InboxItem>(&table, &key)?.map(|old| old.last_message);
                copy.last_message = old.unwrap_or_default();
                if let Some(last) = last
                    && copy
                        .last_message
                        .last_message_at
                        .as_deref()
                        .is_none_or(|at| at <= last.sent_at.as_str())
                {
                    copy.last_message.set(&last);
                }
                table
                    .insert(key.as_str(), encode(&copy)?.as_slice())
                    .map_err(other)?;
            }
            txn.commit().map_err(other)
        })
        .await
    }

    async fn drop_offer(
        &self,
        holder: &PrivateIdHash,
        to: PublicId,
        room: &RoomId,
        opened_at: &str,
    ) -> Result<(), StoreError> {
        let key = keys::storage_key(&keys::user(holder), &keys::offer_entry(opened_at, room));
        self.run(move |db| {
            let txn = db.begin_write().map_err(other)?;
            {
                let mut table = txn.open_table(ITEMS).map_err(other)?;
                let made_to_it = get_item::<InboxItem>(&table, &key)?
                    .is_some_and(|item| item.to == to.to_string());
                if made_to_it {
                    table.remove(key.as_str()).map_err(other)?;
                }
            }
            txn.commit().map_err(other)
        })
        .await
    }

    async fn drop_offers_to(&self, holder: &PrivateIdHash, to: PublicId) -> Result<(), StoreError> {
        let pk = keys::user(holder);
        self.run(move |db| {
            let txn = db.begin_write().map_err(other)?;
            {
                let mut table = txn.open_table(ITEMS).map_err(other)?;
                let to = to.to_string();
                let stale: Vec<String> = partition_newest::<InboxItem>(
                    &table,
                    &pk,
                    keys::OFFER_ENTRY_PREFIX,
                    usize::MAX,
                )?
                .into_iter()
                .filter(|(_, item)| item.to == to)
                .map(|(key, _)| key)
                .collect();
                for key in stale {
                    table.remove(key.as_str()).map_err(other)?;
                }
            }
            txn.commit().map_err(other)
        })
        .await
    }

    async fn rotate_public_id(
        &self,
        who: &PrivateIdHash,
        holder: &Member,
        new: PublicId,
        quota: Option<&CreateQuota>,
        now: &str,
    ) -> Result<(), RotateError> {
        let (user_pk, old_pk, new_pk) = (
            keys::user(who),
            keys::public(holder.public_id),
            keys::public(new),
        );
        let old = holder.public_id.to_string();
        let marker = encode(&PublicItem::held(who, &holder.username, now))?;
        let (quota, now) = (quota.cloned(), now.to_owned());
        let retired_change = Change::Retired {
            id: holder.public_id,
            holder: *who,
        };
        self.run(move |db| {
            let txn = db.begin_write().map_err(other)?;
            {
                let mut table = txn.open_table(ITEMS).map_err(other)?;
                if let Some(quota) = &quota
                    && !count_create(&mut table, quota)?
                {
                    return Ok(Err(RotateError::RateLimited));
                }
                if table.get(new_pk.as_str()).map_err(other)?.is_some() {
                    return Ok(Err(RotateError::Taken));
                }
                let mut user = match get_item::<UserItem>(&table, user_pk.as_str())? {
                    Some(item) => item,
                    None => return Ok(Err(RotateError::NotHolder)),
                };
                if user.public_id != old {
                    return Ok(Err(RotateError::NotHolder));
                }
                user.public_id = new.to_string();
                user.public_id_since = Some(now.clone());
                user.updated_at = now.clone();
                table
                    .insert(user_pk.as_str(), encode(&user)?.as_slice())
                    .map_err(other)?;
                table
                    .insert(new_pk.as_str(), marker.as_slice())
                    .map_err(other)?;
                let retired = match get_item::<PublicItem>(&table, old_pk.as_str())? {
                    Some(item) => item,
                    None => return Err(other(anyhow::anyhow!("a held id without its marker"))),
                };
                let retired = PublicItem {
                    private_id_hash: None,
                    username: None,
                    retired_at: Some(now),
                    ..retired
                };
                table
                    .insert(old_pk.as_str(), encode(&retired)?.as_slice())
                    .map_err(other)?;
            }
            queue(&txn, &[retired_change])?;
            txn.commit().map_err(other)?;
            Ok(Ok(()))
        })
        .await??;
        self.kick();
        Ok(())
    }

    fn round_trips(&self) -> usize {
        self.transactions.load(Ordering::Relaxed)
    }

    async fn get_user(&self, hash: &PrivateIdHash) -> Result<Option<UserRecord>, StoreError> {
        let Some(user) = self.get::<UserItem>(keys::user(hash)).await? else {
            return Ok(None);
        };
        user.record(*hash).map(Some)
    }

    async fn get_public(&self, public_id: PublicId) -> Result<Option<PublicEntry>, StoreError> {
        let Some(public) = self.get::<PublicItem>(keys::public(public_id)).await? else {
            return Ok(None);
        };
        public.entry()
    }

    async fn room_members(
        &self,
        room: &RoomId,
    ) -> Result<Option<Vec<(PrivateIdHash, Member)>>, StoreError> {
        let Some(item) = self.get::<RoomItem>(keys::room(room)).await? else {
            return Ok(None);
        };
        item.members().map(Some)
    }
}

impl EmbeddedStore {
    /// The same store, with a transaction count of its own: the projection's
    /// transactions are not a request's (on AWS they are not the function's either).
    fn uncounted(&self) -> Self {
        Self {
            db: self.db.clone(),
            transactions: Arc::new(AtomicUsize::new(0)),
            projection: self.projection.clone(),
        }
    }

    /// The same store, whose queued changes wait for [`Self::settle`] instead of a
    /// worker (tests that look at the projection's every call).
    pub fn without_worker(self) -> Self {
        self.projection.started.store(true, Ordering::SeqCst);
        self
    }

    /// A write queued changes: wake the worker, starting it on the first write.
    fn kick(&self) {
        let projection = &self.projection;
        if projection.closing.load(Ordering::SeqCst) {
            return;
        }
        if !projection.started.swap(true, Ordering::SeqCst) {
            let worker = self.uncounted();
            let handle = tokio::spawn(async move {
                let closing = || worker.projection.closing.load(Ordering::SeqCst);
                loop {
                    worker.projection.wake.notified().await;
                    while !closing() {
                        match worker.settle().await {
                            Ok(_) => break,
                            Err(e) => {
                                tracing::warn!(error = %e, "projecting the room lists; trying again");
                                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                            }
                        }
                    }
                    if closing() {
                        return;
                    }
                }
            });
            if let Ok(mut worker) = projection.worker.lock() {
                *worker = Some(handle);
            }
        }
        projection.wake.notify_one();
    }

    /// Apply what is queued and end the projection's worker, which holds the database
    /// open: before the file is opened again in the same process (the local server's
    /// stop). Changes queued after this are applied by the next `settle`.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.projection.closing.store(true, Ordering::SeqCst);
        self.projection.wake.notify_one();
        let worker = self
            .projection
            .worker
            .lock()
            .ok()
            .and_then(|mut worker| worker.take());
        if let Some(worker) = worker {
            let _ = worker.await;
        }
        self.settle().await.map(|_| ())
    }

    /// Apply every queued change, oldest first, each removed once applied; how many.
    /// The worker does this after each write; tests and start-up call it to wait for
    /// the room lists to catch up.
    pub async fn settle(&self) -> Result<usize, StoreError> {
        self.settle_through(&self.uncounted()).await
    }

    /// [`Self::settle`], projecting through `through`, a view of this store (the
    /// holder-independence test records the projection's calls so).
    pub async fn settle_through<S: Store + ?Sized>(
        &self,
        through: &S,
    ) -> Result<usize, StoreError> {
        let quiet = self.uncounted();
        let _one = self.projection.draining.lock().await;
        let mut applied = 0;
        loop {
            let batch = quiet
                .run(|db| {
                    let txn = db.begin_read().map_err(other)?;
                    let outbox = txn.open_table(OUTBOX).map_err(other)?;
                    let mut batch = Vec::new();
                    for entry in outbox.iter().map_err(other)?.take(64) {
                        let (seq, value) = entry.map_err(other)?;
                        let queued: Queued =
                            serde_json::from_slice(value.value()).map_err(other)?;
                        batch.push((seq.value(), queued.change()));
                    }
                    Ok(batch)
                })
                .await?;
            if batch.is_empty() {
                return Ok(applied);
            }
            let mut done = Vec::new();
            let mut failed = None;
            for (seq, change) in batch {
                // A change that no longer parses (a file's ids damaged) is dropped.
                let result = match &change {
                    Some(change) => projection::project(through, change).await,
                    None => Ok(()),
                };
                match result {
                    Ok(()) => done.push(seq),
                    // Tried over and over, it would hold up every change after it: it
                    // is dropped (the next start-up's `reproject` mends what it missed).
                    Err(e) if quiet.projection.failures.fetch_add(1, Ordering::SeqCst) >= 4 => {
                        tracing::warn!(error = %e, "a room-list change dropped after 5 tries");
                        done.push(seq);
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
                if failed.is_none() {
                    quiet.projection.failures.store(0, Ordering::SeqCst);
                }
            }
            applied += done.len();
            quiet
                .run(move |db| {
                    let txn = db.begin_write().map_err(other)?;
                    {
                        let mut outbox = txn.open_table(OUTBOX).map_err(other)?;
                        for seq in done {
                            outbox.remove(seq).map_err(other)?;
                        }
                    }
                    txn.commit().map_err(other)
                })
                .await?;
            if let Some(e) = failed {
                return Err(e);
            }
        }
    }

    /// Project the whole file again, as if every offer and every joined room had just
    /// been written, and drop the copies of offers that are gone or were made to an id
    /// the partition's user no longer holds (`projection::reproject`): for a file from
    /// before the projection. Idempotent; the local server runs it at start-up. How many
    /// items it went through.
    pub async fn reproject(&self) -> Result<usize, StoreError> {
        let quiet = self.uncounted();
        quiet.settle().await?;
        let found = quiet
            .run(|db| {
                let txn = db.begin_read().map_err(other)?;
                let table = txn.open_table(ITEMS).map_err(other)?;
                let mut found = Vec::new();
                for entry in table.iter().map_err(other)? {
                    let (key, value) = entry.map_err(other)?;
                    let Some((pk, sk)) = key.value().split_once(' ') else {
                        continue;
                    };
                    let to = if sk.starts_with(keys::OFFER_ENTRY_PREFIX) {
                        let copy: InboxItem =
                            serde_json::from_slice(value.value()).map_err(other)?;
                        Some(copy.to)
                    } else {
                        None
                    };
                    found.extend(keys::found(pk, sk, to.as_deref()));
                }
                Ok(found)
            })
            .await?;
        for item in &found {
            projection::reproject(&quiet, item).await?;
        }
        Ok(found.len())
    }

    /// Delete what has expired by `now_secs` (seconds since the epoch): kept messages
    /// past their `ttl`, per-address create counts past their window, and offers (with
    /// the projection's copies, in every partition alike) past their `OFFER_TTL`. On AWS,
    /// DynamoDB's TTL does this; here the local server sweeps at start-up and every few
    /// minutes, so that the file does not grow with time alone. Read first, then deleted
    /// in transactions of at most [`Self::SWEEP_BATCH`] items, so that the writer is
    /// never held long. What it removed.
    pub async fn sweep(&self, now_secs: u64) -> Result<Swept, StoreError> {
        #[derive(Deserialize)]
        struct Expiring {
            ttl: Option<u64>,
        }
        let quiet = self.uncounted();
        let expired = quiet
            .run(move |db| {
                let txn = db.begin_read().map_err(other)?;
                let table = txn.open_table(ITEMS).map_err(other)?;
                let mut expired = Vec::new();
                for entry in table.iter().map_err(other)? {
                    let (key, value) = entry.map_err(other)?;
                    let key = key.value();
                    let kind = match key.split_once(' ') {
                        Some((_, sk)) if sk.starts_with(keys::MESSAGE_PREFIX) => Expires::Message,
                        Some((pk, sk))
                            if pk.starts_with(keys::PUBLIC_PREFIX)
                                && sk.starts_with(keys::ROOM_ENTRY_PREFIX) =>
                        {
                            Expires::Offer
                        }
                        Some((_, sk)) if sk.starts_with(keys::OFFER_ENTRY_PREFIX) => Expires::Offer,
                        None if key.starts_with(keys::ADDRESS_PREFIX) => Expires::Address,
                        _ => continue,
                    };
                    let item: Expiring = serde_json::from_slice(value.value()).map_err(other)?;
                    if item.ttl.is_some_and(|ttl| ttl <= now_secs) {
                        expired.push((key.to_owned(), kind));
                    }
                }
                Ok(expired)
            })
            .await?;
        let mut swept = Swept::default();
        for batch in expired.chunks(Self::SWEEP_BATCH) {
            let batch = batch.to_vec();
            let removed = quiet
                .run(move |db| {
                    let txn = db.begin_write().map_err(other)?;
                    let mut removed = Swept::default();
                    {
                        let mut table = txn.open_table(ITEMS).map_err(other)?;
                        for (key, kind) in &batch {
                            // Only what is still there and still expired (an offer made
                            // again since has a later ttl).
                            let still = get_item::<Expiring>(&table, key)?
                                .is_some_and(|item| item.ttl.is_some_and(|t| t <= now_secs));
                            if still {
                                table.remove(key.as_str()).map_err(other)?;
                                match kind {
                                    Expires::Message => removed.messages += 1,
                                    Expires::Address => removed.addresses += 1,
                                    Expires::Offer => removed.offers += 1,
                                }
                            }
                        }
                    }
                    txn.commit().map_err(other)?;
                    Ok(removed)
                })
                .await?;
            swept.messages += removed.messages;
            swept.addresses += removed.addresses;
            swept.offers += removed.offers;
        }
        Ok(swept)
    }

    /// Items a sweep deletes per transaction.
    pub const SWEEP_BATCH: usize = 1000;

    /// Every item as `(key, JSON)`, in key order (tests and operations; not on a route).
    pub async fn dump(&self) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        self.run(|db| {
            let txn = db.begin_read().map_err(other)?;
            let table = txn.open_table(ITEMS).map_err(other)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(other)? {
                let (key, value) = entry.map_err(other)?;
                let value = serde_json::from_slice(value.value()).map_err(other)?;
                out.push((key.value().to_owned(), value));
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rooms::RoomKey;

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
            RoomKey::parse("59830ebc3a4184110566bf1a290d08473dfdcbd492ce498b14cd1a5e2fa2e441")
                .unwrap();
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
            store.keep_message(&room, &message, ttl).await.unwrap();
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
    async fn requests_never_wait_for_the_projection() {
        let store = EmbeddedStore::in_memory().unwrap();
        let (a, b) = (user(1, "0a"), user(2, "0b"));
        let held = store.projection.draining.lock().await;
        let key =
            RoomKey::parse("59830ebc3a4184110566bf1a290d08473dfdcbd492ce498b14cd1a5e2fa2e441")
                .unwrap();
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
                    .keep_message(&room, &message, 9_999_999_999)
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
        store.settle().await.unwrap();
        let left = outbox_len(&store).await;
        assert_eq!(left, 0, "applied once it could drain");
    }

    #[tokio::test]
    async fn reprojecting_a_file_rebuilds_its_room_lists() {
        let store = EmbeddedStore::in_memory().unwrap();
        let (a, b) = (user(1, "0a"), user(2, "0b"));
        for u in [&a, &b] {
            store.insert_user(u, None).await.unwrap();
        }
        let key =
            RoomKey::parse("59830ebc3a4184110566bf1a290d08473dfdcbd492ce498b14cd1a5e2fa2e441")
                .unwrap();
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
            .keep_message(&room, &message, 1_764_633_600)
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
}
