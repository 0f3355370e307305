//! The room lists' projection on the embedded store: the outbox of changes that writes
//! queue in their own transactions, the worker that applies them in order, and the
//! store's upkeep (settling, reprojecting, sweeping what expired, dumping for `verify`).

use super::*;

/// The room lists' projection, applied off the request path: a write queues its changes
/// in the outbox within its own transaction, and one worker task applies them in the
/// order they were committed, as the stream's function does on AWS. So a request's
/// time never depends on what the projection finds (whether a public id has a holder,
/// say), a crash loses no change, and changes never race each other.
#[derive(Default)]
pub(super) struct Projection {
    /// Wakes the worker when a write queued changes.
    pub(super) wake: tokio::sync::Notify,
    /// One drain at a time: the worker's, or a caller's `settle`.
    pub(super) draining: tokio::sync::Mutex<()>,
    pub(super) started: std::sync::atomic::AtomicBool,
    /// Set by `close`: the worker ends, and writes no longer start one.
    pub(super) closing: std::sync::atomic::AtomicBool,
    pub(super) worker: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// How many times in a row the oldest queued change failed.
    pub(super) failures: AtomicUsize,
}

/// A queued change, as the outbox keeps it.
#[derive(Serialize, Deserialize)]
#[serde(
    tag = "change",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub(super) enum Queued {
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
pub(super) fn queue(txn: &redb::WriteTransaction, changes: &[Change]) -> Result<(), StoreError> {
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
    pub(super) fn kick(&self) {
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
