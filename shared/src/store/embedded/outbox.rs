//! The room lists' projection on the embedded store: the outbox of changes that writes
//! queue in their own transactions, the worker that applies them in order, and settling
//! (applying what is queued now, for the tests and `verify`).

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
    pub(super) fn uncounted(&self) -> Self {
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
}
