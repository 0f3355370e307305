//! Group commit: every write of the store runs on one writer thread, which takes what is
//! queued and runs it in one redb transaction, commits that once (one sync for the whole
//! batch), and only then answers each request. Concurrent requests share one commit and
//! one fsync instead of paying one each; nothing acknowledged is lost, and a read never
//! sees a write before it is durable. The projection's writes go through the same
//! queue, so they ride in the same batches.
//!
//! Each request's work is still all or nothing: it writes only through [`Writes`]
//! (`outbox.rs`), which notes how to take back each write, and either commits
//! ([`Tx::commit`]) or has its writes taken back, newest first, before the next work
//! runs. So a refusal found after a write (an id found taken once the address was
//! counted, a damaged item) leaves nothing and costs the batch's other requests nothing.
//! Only a write that failed in redb itself, whose effect is unknown, spoils the batch: its
//! transaction is aborted and every request in it answered with an error, so nothing
//! partial is ever kept.

use super::StoreError;
use super::other;
use redb::{Database, WriteTransaction};
use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::mpsc;

/// What a request's work leaves to do once its batch is durable (or failed to be).
type Answer = Box<dyn FnOnce(Result<(), String>) + Send>;
type Job = Box<dyn FnOnce(&Batch) -> Answer + Send>;
/// How to take back one write.
type Undo = Box<dyn FnOnce(&WriteTransaction) -> Result<(), redb::Error>>;

/// At most this many requests share one commit, so a flood of writes cannot hold the
/// first one's answer without bound.
const MAX_BATCH: usize = 256;

/// The batch's transaction as one request's work sees it.
pub(in crate::store) struct Batch {
    txn: WriteTransaction,
    /// How to take back each of the current work's writes, oldest first.
    undo: RefCell<Vec<Undo>>,
    /// Whether the current work committed its writes.
    committed: Cell<bool>,
    /// A write of the current work failed in redb: what it left is unknown.
    broken: Cell<bool>,
}

/// One request's part of the batch's transaction.
pub(in crate::store) struct Tx<'b> {
    batch: &'b Batch,
}

impl Batch {
    /// The request's part of the batch's transaction: what it writes is kept if it
    /// commits, and taken back if it does not.
    pub(in crate::store) fn begin_write(&self) -> Result<Tx<'_>, redb::Error> {
        Ok(Tx { batch: self })
    }
}

impl<'b> Tx<'b> {
    /// The transaction, for [`super::Writes`], which notes every write.
    pub(super) fn transaction(&self) -> &'b WriteTransaction {
        &self.batch.txn
    }

    /// Called by [`super::Writes`] after each write, with how to take it back.
    pub(super) fn wrote(
        &self,
        undo: impl FnOnce(&WriteTransaction) -> Result<(), redb::Error> + 'static,
    ) {
        self.batch.undo.borrow_mut().push(Box::new(undo));
    }

    /// Called by [`super::Writes`] when a write failed in redb: the batch cannot be kept.
    pub(super) fn failed(&self, e: impl Into<anyhow::Error>) -> StoreError {
        self.batch.broken.set(true);
        other(e)
    }

    /// Keep what this request wrote: durable once its batch is.
    pub(in crate::store) fn commit(self) -> Result<(), redb::Error> {
        self.batch.committed.set(true);
        Ok(())
    }
}

/// The queue to the writer thread; dropping the last handle ends the thread once it has
/// answered what was queued.
pub(in crate::store) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    pub(in crate::store) fn start(db: Arc<Database>) -> std::io::Result<Self> {
        Self::start_with(db, |txn| txn.commit().map_err(redb::Error::from))
    }

    /// [`Self::start`], committing batches with `commit` (the tests watch it).
    fn start_with(
        db: Arc<Database>,
        commit: impl Fn(WriteTransaction) -> Result<(), redb::Error> + Send + 'static,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("embedded-store-writer".into())
            .spawn(move || serve(&db, &queue, commit))?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Run `work` in the next batch; its result once the batch is durable.
    pub(in crate::store) async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Batch) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |batch| {
            let result = work(batch);
            Box::new(move |committed: Result<(), String>| {
                let answer = match committed {
                    Ok(()) => result,
                    // What it wrote, or what it read, is not kept: not acknowledged.
                    Err(e) if result.is_ok() => {
                        Err(other(anyhow::anyhow!("committing a batch of writes: {e}")))
                    }
                    Err(_) => result,
                };
                let _ = tx.send(answer);
            })
        });
        let stopped = || other(anyhow::anyhow!("the store's writer has stopped"));
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        jobs.send(job).map_err(|_| stopped())?;
        rx.await
            .map_err(|_| other(anyhow::anyhow!("a write ended without an answer")))?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // The thread ends when the queue is closed and drained; waiting for it releases
        // the database before the file can be opened again in this process.
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    db: &Database,
    queue: &mpsc::Receiver<Job>,
    commit: impl Fn(WriteTransaction) -> Result<(), redb::Error>,
) {
    while let Ok(first) = queue.recv() {
        let batch = match db.begin_write() {
            Ok(txn) => Batch {
                txn,
                undo: RefCell::new(Vec::new()),
                committed: Cell::new(false),
                broken: Cell::new(false),
            },
            Err(e) => {
                // Its sender dropped unanswered: "a write ended without an answer".
                tracing::warn!(error = %e, "a write transaction could not start");
                drop(first);
                continue;
            }
        };
        let mut answers = Vec::new();
        let mut spoiled = false;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            batch.committed.set(false);
            // Work that panics (a bug; only where panics unwind, as in tests) is dropped
            // unanswered, its sender with it.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&batch)));
            let undo = batch.undo.take();
            let kept = batch.committed.get() || undo.is_empty();
            let panicked = ran.is_err();
            if let Ok(answer) = ran {
                answers.push(answer);
            }
            // A write that failed in redb, or work that panicked half-way, left what it
            // left unknown: the batch cannot be kept.
            if batch.broken.get() || (!kept && (panicked || take_back(&batch.txn, undo).is_err())) {
                spoiled = true;
                break;
            }
            if answers.len() < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        let committed = if spoiled {
            drop(batch.txn);
            Err("a write in the same batch failed half-way; nothing of the batch was kept".into())
        } else {
            commit(batch.txn).map_err(|e| e.to_string())
        };
        if let Err(e) = &committed {
            tracing::warn!(error = %e, requests = answers.len(), "a batch of writes was not kept");
        }
        for answer in answers {
            answer(committed.clone());
        }
    }
}

/// Take back what work that did not commit wrote, newest first.
fn take_back(txn: &WriteTransaction, undo: Vec<Undo>) -> Result<(), redb::Error> {
    undo.into_iter()
        .rev()
        .try_for_each(|undo| undo(txn))
        .inspect_err(|e| tracing::warn!(error = %e, "taking back an uncommitted write"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableDatabase, TableDefinition};
    use std::sync::atomic::{AtomicUsize, Ordering};

    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    struct Setup {
        writer: Arc<Writer>,
        db: Arc<Database>,
        commits: Arc<AtomicUsize>,
        _path: TempPath,
    }

    /// A writer on a file whose commits are counted (and slow, as a disk's can be).
    fn counted(slow: std::time::Duration) -> Setup {
        let path = TempPath::new();
        let db = Arc::new(Database::create(&path.0).unwrap());
        let commits = Arc::new(AtomicUsize::new(0));
        let counter = commits.clone();
        let writer = Writer::start_with(db.clone(), move |txn| {
            std::thread::sleep(slow);
            txn.commit()?;
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
        Setup {
            writer: Arc::new(writer),
            db,
            commits,
            _path: path,
        }
    }

    /// Put `value` under `n`, as [`super::super::Writes`] writes: noting how to take it
    /// back.
    fn insert(tx: &Tx<'_>, n: u64, value: u64) -> Result<(), StoreError> {
        let old = tx
            .transaction()
            .open_table(T)
            .map_err(other)?
            .insert(n, value)
            .map_err(|e| tx.failed(e))?
            .map(|old| old.value());
        tx.wrote(move |txn| {
            let mut table = txn.open_table(T)?;
            match old {
                Some(old) => table.insert(n, old).map(drop)?,
                None => table.remove(n).map(drop)?,
            }
            Ok(())
        });
        Ok(())
    }

    fn put(n: u64) -> impl FnOnce(&Batch) -> Result<(), StoreError> + Send + 'static {
        move |batch| {
            let tx = batch.begin_write().map_err(other)?;
            insert(&tx, n, n)?;
            tx.commit().map_err(other)
        }
    }

    fn kept(db: &Database, n: u64) -> bool {
        let txn = db.begin_read().unwrap();
        match txn.open_table(T) {
            Ok(table) => table.get(n).unwrap().is_some(),
            Err(_) => false,
        }
    }

    #[tokio::test]
    async fn a_write_is_answered_only_once_its_batch_is_committed() {
        let setup = counted(std::time::Duration::from_millis(5));
        let mut writes = tokio::task::JoinSet::new();
        for n in 0..32 {
            let (commits, writer, work) = (setup.commits.clone(), setup.writer.clone(), put(n));
            writes.spawn(async move {
                let seen = commits.clone();
                let ran_after = writer
                    .write(move |batch| {
                        work(batch)?;
                        Ok(seen.load(Ordering::SeqCst))
                    })
                    .await
                    .unwrap();
                assert!(
                    commits.load(Ordering::SeqCst) > ran_after,
                    "answered before its batch was committed"
                );
            });
        }
        writes.join_all().await;
        assert!((0..32).all(|n| kept(&setup.db, n)));
    }

    #[tokio::test]
    async fn concurrent_writes_share_commits() {
        let setup = counted(std::time::Duration::from_millis(20));
        let mut writes = tokio::task::JoinSet::new();
        for n in 0..64 {
            let writer = setup.writer.clone();
            writes.spawn(async move { writer.write(put(n)).await.unwrap() });
        }
        writes.join_all().await;
        let commits = setup.commits.load(Ordering::SeqCst);
        // The first write may go alone; the rest queue behind its commit.
        assert!(commits <= 4, "64 concurrent writes took {commits} commits");
    }

    #[tokio::test]
    async fn a_refusal_that_wrote_nothing_leaves_its_batch_whole() {
        let setup = counted(std::time::Duration::ZERO);
        let refused = setup.writer.write(|batch| {
            let _tx = batch.begin_write().map_err(other)?;
            // Checked, refused: returned without writing or committing.
            Ok::<_, StoreError>("refused")
        });
        let (a, b) = tokio::join!(refused, setup.writer.write(put(2)));
        assert_eq!(a.unwrap(), "refused");
        b.unwrap();
        assert!(kept(&setup.db, 2));
    }

    /// Runs `middle` in one batch after two writes (1 and 2), with write 4 queued after
    /// it: the answers of 1, 2 and `middle`. Write 4 must be kept either way.
    async fn in_one_batch<T: Send + 'static>(
        setup: &Setup,
        middle: impl FnOnce(&Batch) -> Result<T, StoreError> + Send + 'static,
    ) -> [Result<(), StoreError>; 3] {
        // The first work holds the writer until everything else is queued behind it,
        // so that they share its batch.
        let (release, gate) = mpsc::channel::<()>();
        let first = setup.writer.write(move |batch| {
            gate.recv().map_err(other)?;
            put(1)(batch)
        });
        let (first, second, middle, after, ()) = tokio::join!(
            first,
            setup.writer.write(put(2)),
            setup.writer.write(middle),
            setup.writer.write(put(4)),
            async { release.send(()).unwrap() }
        );
        // What was queued after `middle` is kept whatever `middle` did: in the same batch
        // when its writes were taken back, in the next one when it spoiled its own.
        after.unwrap();
        assert!(kept(&setup.db, 4));
        [first, second, middle.map(drop)]
    }

    #[tokio::test]
    async fn work_that_did_not_commit_has_its_writes_taken_back() {
        let setup = counted(std::time::Duration::ZERO);
        setup.writer.write(put(5)).await.unwrap();
        let [first, second, refused] = in_one_batch(&setup, |batch| {
            let tx = batch.begin_write().map_err(other)?;
            // Written (one new item, one overwritten twice), then refused.
            insert(&tx, 3, 3)?;
            insert(&tx, 5, 50)?;
            insert(&tx, 5, 500)?;
            Err::<(), _>(other(anyhow::anyhow!("refused half-way")))
        })
        .await;
        // The batch's other work stands; the refusal left nothing, not even its overwrite.
        first.unwrap();
        second.unwrap();
        assert!(refused.is_err());
        assert!(kept(&setup.db, 1) && kept(&setup.db, 2));
        assert!(!kept(&setup.db, 3), "a refused write was kept");
        let txn = setup.db.begin_read().unwrap();
        let five = txn
            .open_table(T)
            .unwrap()
            .get(5u64)
            .unwrap()
            .map(|v| v.value());
        assert_eq!(five, Some(5), "an overwritten item was not restored");
    }

    #[tokio::test]
    async fn a_write_that_failed_in_redb_spoils_its_whole_batch() {
        let setup = counted(std::time::Duration::ZERO);
        let [first, second, failed] = in_one_batch(&setup, |batch| {
            let tx = batch.begin_write().map_err(other)?;
            insert(&tx, 3, 3)?;
            Err::<(), _>(tx.failed(anyhow::anyhow!("an I/O error half-way")))
        })
        .await;
        // The batch ended at the failed write: none of it is acknowledged or kept.
        assert!(first.is_err() && second.is_err() && failed.is_err());
        for n in [1, 2, 3] {
            assert!(!kept(&setup.db, n), "write {n} was kept");
        }
    }

    /// A file path under the temporary directory, removed on drop.
    struct TempPath(std::path::PathBuf);

    impl TempPath {
        fn new() -> Self {
            Self(std::env::temp_dir().join(format!(
                "secret-rooms-writer-{}.redb",
                crate::http::new_request_id()
            )))
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}
