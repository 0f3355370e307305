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

/// `inner`, with a log of the calls made through it; it can also be told to fail a
/// room's audience read or a history write, for the faults no real store gives on
/// demand (of the projection, and of a message's write after its publish).
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
impl<S: Store> UserStore for Recording<S> {
    async fn reserve_user_ids(&self, count: u64) -> Result<u64, StoreError> {
        let r = self.inner.reserve_user_ids(count).await;
        self.note(format!("reserve_user_ids {count}"), &r);
        r
    }

    async fn insert_user(
        &self,
        user: &UserRecord,
        q: Option<&CreateQuota>,
    ) -> Result<(), InsertUserError> {
        let r = self.inner.insert_user(user, q).await;
        let call = format!(
            "insert_user {} {} {} {}",
            hash(&user.private_id_hash),
            user.public_id,
            user.username,
            quota(q)
        );
        self.note(call, &r);
        r
    }

    async fn member_for_connect(
        &self,
        who: &PrivateIdHash,
    ) -> Result<Option<Requester>, StoreError> {
        let r = self.inner.member_for_connect(who).await;
        self.note(format!("member_for_connect {}", hash(who)), &r);
        r
    }

    async fn rotate_public_id(
        &self,
        who: &PrivateIdHash,
        old: &Member,
        new: PublicId,
        q: Option<&CreateQuota>,
        now: &str,
    ) -> Result<(), RotateError> {
        let r = self.inner.rotate_public_id(who, old, new, q, now).await;
        let call = format!(
            "rotate_public_id {} {} {new} {} {now}",
            hash(who),
            member(old),
            quota(q)
        );
        self.note(call, &r);
        r
    }

    async fn get_user(&self, who: &PrivateIdHash) -> Result<Option<UserRecord>, StoreError> {
        let r = self.inner.get_user(who).await;
        self.note(format!("get_user {}", hash(who)), &r);
        r
    }

    async fn get_public(&self, id: PublicId) -> Result<Option<PublicEntry>, StoreError> {
        let r = self.inner.get_public(id).await;
        self.note(format!("get_public {id}"), &r);
        r
    }
}

#[async_trait]
impl<S: Store> RoomStore for Recording<S> {
    async fn join_room(&self, j: &Joining<'_>) -> Result<Announce, JoinError> {
        let r = self.inner.join_room(j).await;
        let call = format!(
            "join_room {} {:?} {} {} {} {} w{} l{} e{} {} -> {:?}",
            j.room,
            j.side,
            hash(j.joiner),
            requester(j.requester),
            j.target,
            j.max_rooms,
            j.connects.window,
            j.connects.limit,
            j.offer_expires_at,
            j.now,
            r.as_ref().ok()
        );
        self.note(call, &r);
        r
    }

    async fn room_member(
        &self,
        room: &RoomId,
        who: &PrivateIdHash,
    ) -> Result<Option<Membership>, StoreError> {
        let r = self.inner.room_member(room, who).await;
        self.note(format!("room_member {room} {}", hash(who)), &r);
        r
    }

    async fn close_room(
        &self,
        room: &RoomId,
        blocker: &PrivateIdHash,
        inboxes: &[PublicId],
        peer: Option<&PrivateIdHash>,
        now: &str,
    ) -> Result<bool, StoreError> {
        let r = self
            .inner
            .close_room(room, blocker, inboxes, peer, now)
            .await;
        let inboxes: Vec<String> = inboxes.iter().map(ToString::to_string).collect();
        let call = format!(
            "close_room {room} {} [{}] {} {now}",
            hash(blocker),
            inboxes.join(","),
            peer.map(hash).unwrap_or_default()
        );
        self.note(call, &r);
        r
    }

    async fn room_members(
        &self,
        room: &RoomId,
    ) -> Result<Option<Vec<(PrivateIdHash, Member)>>, StoreError> {
        let r = self.inner.room_members(room).await;
        self.note(format!("room_members {room}"), &r);
        r
    }
}

#[async_trait]
impl<S: Store> MessageStore for Recording<S> {
    async fn count_message(
        &self,
        room: &RoomId,
        who: &PrivateIdHash,
        window: RateWindow,
        sent: &LastSent,
    ) -> Result<Allowance, StoreError> {
        // The message's fingerprint is random (a fresh id each run): not noted.
        let r = self.inner.count_message(room, who, window, sent).await;
        let call = format!(
            "count_message {room} {} w{} l{}",
            hash(who),
            window.window,
            window.limit
        );
        self.note(call, &r);
        r
    }

    async fn republish(
        &self,
        who: &PrivateIdHash,
        last: &LastSent,
        next: &LastSent,
    ) -> Result<bool, StoreError> {
        let r = self.inner.republish(who, last, next).await;
        let call = format!("republish {} r{}", hash(who), next.republished());
        self.note(call, &r);
        r
    }

    async fn keep_message(
        &self,
        room: &RoomId,
        message: &KeptMessage,
        expires_at: u64,
        keeping: Keeping,
    ) -> Result<(), StoreError> {
        let r = if take_one(&self.keep_faults) {
            Err(injected())
        } else {
            self.inner
                .keep_message(room, message, expires_at, keeping)
                .await
        };
        let call = format!(
            "keep_message {room} {} {expires_at} {keeping:?}",
            kept(message)
        );
        self.note(call, &r);
        r
    }

    async fn list_messages(
        &self,
        room: &RoomId,
        after: &Cursor,
        limit: usize,
        now_secs: u64,
    ) -> Result<HistoryPage, StoreError> {
        let r = self.inner.list_messages(room, after, limit, now_secs).await;
        let call = format!("list_messages {room} {after} {limit} {now_secs}");
        self.note(call, &r);
        r
    }

    async fn list_messages_before(
        &self,
        room: &RoomId,
        floor: &Cursor,
        before: Option<&Cursor>,
        limit: usize,
        now_secs: u64,
    ) -> Result<HistoryPage, StoreError> {
        let r = self
            .inner
            .list_messages_before(room, floor, before, limit, now_secs)
            .await;
        let before = before.map(ToString::to_string).unwrap_or_default();
        let call = format!("list_messages_before {room} {floor} {before} {limit} {now_secs}");
        self.note(call, &r);
        r
    }

    async fn newest_message(&self, room: &RoomId) -> Result<Option<LastMessage>, StoreError> {
        let r = self.inner.newest_message(room).await;
        self.note(format!("newest_message {room}"), &r);
        r
    }
}

#[async_trait]
impl<S: Store> ListStore for Recording<S> {
    async fn rooms_of(
        &self,
        who: &PrivateIdHash,
        max_offers: usize,
    ) -> Result<Option<RoomsOf>, StoreError> {
        let r = self.inner.rooms_of(who, max_offers).await;
        self.note(format!("rooms_of {} {max_offers}", hash(who)), &r);
        r
    }

    async fn offer(&self, to: PublicId, room: &RoomId) -> Result<Option<Offer>, StoreError> {
        let r = self.inner.offer(to, room).await;
        self.note(format!("offer {to} {room}"), &r);
        r
    }

    async fn audience(&self, room: &RoomId) -> Result<Option<Audience>, StoreError> {
        let r = if take_one(&self.audience_faults) {
            Err(injected())
        } else {
            self.inner.audience(room).await
        };
        self.note(format!("audience {room}"), &r);
        r
    }

    async fn note_message(
        &self,
        who: &PrivateIdHash,
        room: &RoomId,
        entry: ListEntry<'_>,
        l: &LastMessage,
    ) -> Result<(), StoreError> {
        let r = self.inner.note_message(who, room, entry, l).await;
        let call = format!("note_message {} {room} {entry:?} {}", hash(who), last(l));
        self.note(call, &r);
        r
    }

    async fn copy_offer(
        &self,
        owner: &PrivateIdHash,
        to: PublicId,
        since: &str,
        o: &Offer,
        l: Option<&LastMessage>,
    ) -> Result<(), StoreError> {
        let r = self.inner.copy_offer(owner, to, since, o, l).await;
        let call = format!(
            "copy_offer {} {to} {since} {} {}",
            hash(owner),
            offer(o),
            l.map(last).unwrap_or_default()
        );
        self.note(call, &r);
        r
    }

    async fn drop_offer(
        &self,
        owner: &PrivateIdHash,
        to: PublicId,
        room: &RoomId,
        opened_at: &str,
    ) -> Result<(), StoreError> {
        let r = self.inner.drop_offer(owner, to, room, opened_at).await;
        let call = format!("drop_offer {} {to} {room} {opened_at}", hash(owner));
        self.note(call, &r);
        r
    }

    async fn drop_offers_to(&self, owner: &PrivateIdHash, to: PublicId) -> Result<(), StoreError> {
        let r = self.inner.drop_offers_to(owner, to).await;
        self.note(format!("drop_offers_to {} {to}", hash(owner)), &r);
        r
    }
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
