//! Group commit: every write of the store runs on one writer thread, which takes what is
//! queued and runs it in one redb transaction, commits that once (one sync for the whole
//! batch), and only then answers each request. Concurrent requests share one commit and
//! one fsync instead of paying one each; nothing acknowledged is lost, and a read never
//! sees a write before it is durable. The projection's writes go through the same
//! queue, so they ride in the same batches.
//!
//! Each request's work is still all or nothing: it writes only through [`Writes`]
//! (`outbox.rs`), and either commits ([`Tx::commit`]) or refuses having written nothing
//! (the work checks, then writes). Work that wrote and then did not commit (an I/O error
//! half-way, or a bug) spoils the batch: its transaction is aborted and every request in
//! it answered with an error, so nothing partial is ever kept.

use super::StoreError;
use super::other;
use redb::{Database, WriteTransaction};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::mpsc;

/// What a request's work leaves to do once its batch is durable (or failed to be).
type Answer = Box<dyn FnOnce(Result<(), String>) + Send>;
type Job = Box<dyn FnOnce(&Batch) -> Answer + Send>;

/// At most this many requests share one commit, so a flood of writes cannot hold the
/// first one's answer without bound.
const MAX_BATCH: usize = 256;

/// The batch's transaction as one request's work sees it.
pub(in crate::store) struct Batch {
    txn: WriteTransaction,
    /// The current work's writes, and whether it committed them.
    wrote: Cell<bool>,
    committed: Cell<bool>,
}

/// One request's part of the batch's transaction.
pub(in crate::store) struct Tx<'b> {
    batch: &'b Batch,
}

impl Batch {
    /// The request's part of the batch's transaction: what it writes is kept if it
    /// commits, and it must write nothing if it does not.
    pub(in crate::store) fn begin_write(&self) -> Result<Tx<'_>, redb::Error> {
        Ok(Tx { batch: self })
    }
}

impl<'b> Tx<'b> {
    /// The transaction, for [`super::Writes`], which notes every write.
    pub(super) fn transaction(&self) -> &'b WriteTransaction {
        &self.batch.txn
    }

    /// Called by [`super::Writes`] before each write.
    pub(super) fn note_write(&self) {
        self.batch.wrote.set(true);
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
                wrote: Cell::new(false),
                committed: Cell::new(false),
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
            batch.wrote.set(false);
            batch.committed.set(false);
            // Work that panics (a bug) is dropped unanswered (its sender with it).
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&batch)));
            if let Ok(answer) = ran {
                answers.push(answer);
            }
            if batch.wrote.get() && !batch.committed.get() {
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

    fn insert(tx: &Tx<'_>, n: u64) -> Result<(), StoreError> {
        tx.note_write();
        tx.transaction()
            .open_table(T)
            .map_err(other)?
            .insert(n, n)
            .map_err(other)?;
        Ok(())
    }

    fn put(n: u64) -> impl FnOnce(&Batch) -> Result<(), StoreError> + Send + 'static {
        move |batch| {
            let tx = batch.begin_write().map_err(other)?;
            insert(&tx, n)?;
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

    #[tokio::test]
    async fn work_that_wrote_without_committing_spoils_its_whole_batch() {
        let setup = counted(std::time::Duration::ZERO);
        // The first work holds the writer until everything else is queued behind it,
        // so that they share its batch.
        let (release, gate) = mpsc::channel::<()>();
        let first = setup.writer.write(move |batch| {
            gate.recv().map_err(other)?;
            put(1)(batch)
        });
        let half_done = setup.writer.write(|batch| {
            let tx = batch.begin_write().map_err(other)?;
            insert(&tx, 3)?;
            Err::<(), _>(other(anyhow::anyhow!("failed half-way")))
        });
        let (first, second, half_done, after, ()) = tokio::join!(
            first,
            setup.writer.write(put(2)),
            half_done,
            setup.writer.write(put(4)),
            async { release.send(()).unwrap() }
        );
        // The batch ended at the spoiled work: none of it is acknowledged or kept.
        assert!(first.is_err() && second.is_err() && half_done.is_err());
        for n in [1, 2, 3] {
            assert!(!kept(&setup.db, n), "write {n} was kept");
        }
        // What was queued after it went in the next batch.
        after.unwrap();
        assert!(kept(&setup.db, 4));
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
