//! The room lists' projection on the embedded store: the outbox, where each write
//! describes the items it wrote that the projection depends on ([`Writes`], read by the
//! one change feed, [`feed`]), the worker that applies their changes in order, and
//! settling (applying what is queued now, for the tests and `verify`).

use super::*;

/// The room lists' projection, applied off the request path: a write describes itself
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

/// The items table of one write transaction, every write to it under keys that
/// [`feed::feeds`] described in the outbox in the same transaction (a [`Written`], as a
/// DynamoDB stream record describes it): the projection's worker derives the changes
/// from them with [`feed::change_of`], as the stream's function does. Reads go through
/// `Deref`; a write cannot bypass the outbox.
///
/// Every write is noted on the request's [`Tx`] with how to take it back, so that the
/// writer can take back the writes of work that did not commit ([`super::writer`]).
pub(super) struct Writes<'t> {
    items: redb::Table<'t, &'static str, &'static [u8]>,
    outbox: redb::Table<'t, u64, &'static [u8]>,
    next: Option<u64>,
    tx: &'t Tx<'t>,
}

impl<'t> Writes<'t> {
    pub(super) fn open(tx: &'t Tx<'t>) -> Result<Self, StoreError> {
        let txn = tx.transaction();
        Ok(Self {
            items: txn.open_table(ITEMS).map_err(other)?,
            outbox: txn.open_table(OUTBOX).map_err(other)?,
            next: None,
            tx,
        })
    }

    /// Put `value` under `key`.
    pub(super) fn insert(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let tx = self.tx;
        let old = self
            .items
            .insert(key, value)
            .map_err(|e| tx.failed(e))?
            .map(|old| old.value().to_vec());
        self.wrote(key, old.clone());
        if fed(key) {
            self.describe(key, old.as_deref(), Some(value))?;
        }
        Ok(())
    }

    /// Remove the item under `key`: whether there was one.
    pub(super) fn remove(&mut self, key: &str) -> Result<bool, StoreError> {
        let tx = self.tx;
        let Some(old) = self
            .items
            .remove(key)
            .map_err(|e| tx.failed(e))?
            .map(|old| old.value().to_vec())
        else {
            return Ok(false);
        };
        self.wrote(key, Some(old.clone()));
        if fed(key) {
            self.describe(key, Some(&old), None)?;
        }
        Ok(true)
    }

    /// Remove the queued change `seq`, applied by the projection.
    pub(super) fn applied(&mut self, seq: u64) -> Result<(), StoreError> {
        let tx = self.tx;
        let old = self
            .outbox
            .remove(seq)
            .map_err(|e| tx.failed(e))?
            .map(|old| old.value().to_vec());
        if let Some(old) = old {
            tx.wrote(move |txn| {
                txn.open_table(OUTBOX)?.insert(seq, old.as_slice())?;
                Ok(())
            });
        }
        Ok(())
    }

    /// Note how to take back a write under `key`, whose item was `old`.
    fn wrote(&self, key: &str, old: Option<Vec<u8>>) {
        let key = key.to_owned();
        self.tx.wrote(move |txn| {
            let mut items = txn.open_table(ITEMS)?;
            match old {
                Some(old) => items.insert(key.as_str(), old.as_slice()).map(drop)?,
                None => items.remove(key.as_str()).map(drop)?,
            }
            Ok(())
        });
    }

    fn describe(
        &mut self,
        key: &str,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let Some(written) = Written::from_item(key, old, new) else {
            return Ok(());
        };
        if feed::change_of(&written).is_none() {
            return Ok(());
        }
        let seq = match self.next {
            Some(seq) => seq,
            None => match self.outbox.last().map_err(other)? {
                Some((seq, _)) => seq.value() + 1,
                None => 0,
            },
        };
        let tx = self.tx;
        self.outbox
            .insert(seq, encode(&written)?.as_slice())
            .map_err(|e| tx.failed(e))?;
        tx.wrote(move |txn| {
            txn.open_table(OUTBOX)?.remove(seq)?;
            Ok(())
        });
        self.next = Some(seq + 1);
        Ok(())
    }
}

impl<'t> std::ops::Deref for Writes<'t> {
    type Target = redb::Table<'t, &'static str, &'static [u8]>;
    fn deref(&self) -> &Self::Target {
        &self.items
    }
}

/// Whether writes under a storage key can feed the projection.
fn fed(key: &str) -> bool {
    let (pk, sk) = key.split_once(' ').unwrap_or((key, keys::ITEM));
    feed::feeds(pk, sk)
}

impl EmbeddedStore {
    /// The same store, with a transaction count of its own: the projection's
    /// transactions are not a request's (on AWS they are not the function's either).
    pub(super) fn uncounted(&self) -> Self {
        Self {
            db: self.db.clone(),
            writer: self.writer.clone(),
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
                        // A write that does not parse (a damaged file, or a change queued
                        // by a version before the one feed) is dropped: the next start-up's
                        // `reproject` mends what it missed.
                        let change = serde_json::from_slice::<Written>(value.value())
                            .ok()
                            .and_then(|written| feed::change_of(&written));
                        batch.push((seq.value(), change));
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
                .write(move |db| {
                    let txn = db.begin_write().map_err(other)?;
                    {
                        let mut writes = Writes::open(&txn)?;
                        for seq in done {
                            writes.applied(seq)?;
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
