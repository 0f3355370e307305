//! A store that writes down every call made through it, with its arguments as text and
//! whether it succeeded: what the holder-independence test compares on the embedded
//! store, where no proxy sees the database's work. Ids are written in the forms the
//! tables keep them in (hashes in hex, public ids and room ids as text), so that one
//! renaming covers a recording and the items alike.

use async_trait::async_trait;
use secret_rooms::domain::history::Cursor;
use secret_rooms::domain::ports::{
    Allowance, Announce, Audience, CreateQuota, HistoryPage, InsertUserError, JoinError, Joining,
    Keeping, KeptMessage, LastMessage, ListEntry, ListStore, Member, Membership, MessageStore,
    Offer, PublicEntry, RateWindow, Requester, RoomStore, RoomsOf, RotateError, Store, StoreError,
    UserRecord, UserStore,
};
use secret_rooms::domain::sent::LastSent;
use secret_rooms::domain::{PrivateIdHash, PublicId, RoomId};
use std::sync::{Arc, Mutex};

mod lists;
mod messages;
mod rooms;
mod users;

/// `inner`, with a log of the calls made through it; it can also be told to fail a
/// room's audience read or a history write, for the faults no real store gives on
/// demand (of the projection, and of a message's history write).
#[derive(Clone)]
pub struct Recording<S> {
    pub inner: S,
    log: Arc<Mutex<Vec<String>>>,
    /// How many `audience` reads still fail (the projection's first step of a message).
    audience_faults: Arc<std::sync::atomic::AtomicUsize>,
    /// How many `keep_message` writes still fail.
    keep_faults: Arc<std::sync::atomic::AtomicUsize>,
}

impl<S> Recording<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            log: Arc::default(),
            audience_faults: Arc::default(),
            keep_faults: Arc::default(),
        }
    }

    /// Make the next `times` `audience` reads fail as an unavailable store would.
    pub fn fail_audience(&self, times: usize) {
        self.audience_faults
            .store(times, std::sync::atomic::Ordering::SeqCst);
    }

    /// Make the next `times` history writes fail as an unavailable store would, having
    /// written nothing.
    pub fn fail_keep(&self, times: usize) {
        self.keep_faults
            .store(times, std::sync::atomic::Ordering::SeqCst);
    }

    /// The calls recorded since the last take, oldest first.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn note<T, E>(&self, call: String, result: &Result<T, E>) {
        let outcome = if result.is_ok() { "ok" } else { "err" };
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("{call} -> {outcome}"));
    }
}

/// One of the faults still to inject, if any is left.
fn take_one(faults: &std::sync::atomic::AtomicUsize) -> bool {
    use std::sync::atomic::Ordering::SeqCst;
    faults
        .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

fn injected() -> StoreError {
    StoreError::Unavailable(anyhow::anyhow!("an injected fault"))
}

fn hash(h: &PrivateIdHash) -> String {
    h.to_hex()
}

fn member(m: &Member) -> String {
    format!("{}/{}", m.public_id, m.username)
}

fn requester(r: &Requester) -> String {
    let key = r.public_key.map(|k| k.to_string()).unwrap_or_default();
    let rooms: Vec<&str> = r.rooms.iter().map(String::as_str).collect();
    format!(
        "{} since {} key {key} rooms [{}] connects {:?} announced {}",
        member(&r.member),
        r.since,
        rooms.join(","),
        r.connects,
        r.announced.len()
    )
}

fn offer(o: &Offer) -> String {
    let key = o.public_key.map(|k| k.to_string()).unwrap_or_default();
    format!(
        "{} from {} key {key} at {} until {:?}",
        o.room,
        member(&o.from),
        o.opened_at,
        o.expires_at
    )
}

fn last(l: &LastMessage) -> String {
    format!("{} until {}", l.sent_at, l.expires_at)
}

fn kept(m: &KeptMessage) -> String {
    format!(
        "{} {} from {} {:?} at {}",
        m.cursor,
        m.id,
        member(&m.from),
        m.message,
        m.sent_at
    )
}

fn quota(q: Option<&CreateQuota>) -> String {
    q.map_or("-".into(), |q| {
        format!(
            "{} w{} l{} e{} r{}",
            q.address, q.window, q.limit, q.expires_at, q.retry_after
        )
    })
}

#[async_trait]
impl<S: Store> Store for Recording<S> {
    async fn warm_up(&self) {
        self.inner.warm_up().await;
        self.note::<(), ()>("warm_up".into(), &Ok(()));
    }

    fn round_trips(&self) -> usize {
        self.inner.round_trips()
    }
}
