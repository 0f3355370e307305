//! Rooms: ids derived from the pair of public ids, and joining one.

use crate::ids::{PrivateId, PublicId, RoomId};
use crate::messages::RateLimit;
use crate::ports::store::{
    Announce, JoinError, Joining, ListStore, Requester, RoomStore, StoreError, UserStore,
};
use crate::ports::{Realtime, RealtimeError};
use crate::time::rfc3339;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, SystemTime};

mod block;
mod key;

pub use block::*;
pub use key::*;

pub use crate::ids::Side;

struct Pair;

impl Pair {
    fn sorted(a: PublicId, b: PublicId) -> (PublicId, PublicId) {
        if Side::of(a, b) == Side::Low {
            (a, b)
        } else {
            (b, a)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("a user cannot connect to their own public id")]
    CannotConnectToSelf,
    #[error("no user has this private id")]
    UnknownPrivateId,
    /// The requester is in [`MAX_ROOMS`] rooms already.
    #[error("already in {MAX_ROOMS} rooms")]
    TooManyRooms,
    /// A member blocked the room: it never reopens.
    #[error("the room is closed")]
    RoomClosed,
    /// The requester connected as often as the window allows; nothing was written.
    #[error("too many connects; retry in {retry_after} s")]
    RateLimited { retry_after: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many rooms one identity may join. It bounds the user item, which lists them and
/// which every message of the user rewrites, and how many people one identity can reach
/// by trying public ids; a new identity is one request away.
pub const MAX_ROOMS: usize = 100;

/// How often, and for how long, one identity's connects count: its rate limit, and how
/// long an offer it makes stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectLimits {
    /// Connects per identity per window (`CONNECT_RATE_LIMIT`, `CONNECT_RATE_WINDOW_SECS`).
    pub rate: RateLimit,
    /// How long an offer stands after its latest connect (`OFFER_TTL`).
    pub offer_ttl: Duration,
}

impl ConnectLimits {
    /// An offer stands 30 days after its latest connect by default: long enough for a
    /// friend to come back to it, short enough that junk goes by itself.
    pub const DEFAULT_OFFER_TTL: Duration = Duration::from_secs(30 * 86_400);

    /// No limit on connects (operations and tests), offers standing the default time.
    pub const UNLIMITED: Self = Self {
        rate: RateLimit::UNLIMITED,
        offer_ttl: Self::DEFAULT_OFFER_TTL,
    };
}

impl Default for ConnectLimits {
    fn default() -> Self {
        Self {
            rate: RateLimit::CONNECTS,
            offer_ttl: Self::DEFAULT_OFFER_TTL,
        }
    }
}

/// How many rooms' announcements one window's record on the user item holds. The item is
/// rewritten by every message and must stay under one write unit at the room cap: 16
/// marks of 3 characters do. Past them, a join again is not announced in that window.
pub const MAX_ANNOUNCED: usize = 16;

/// A room's mark in its joiner's record of announcements: the first 3 characters (18
/// bits) of its tag. Two rooms sharing a mark in one window (about 1 in 16,000 with the
/// record full) cost the second a live announcement, never a join or an offer.
pub fn announce_mark(room: &RoomId) -> String {
    room.tag()[..3].to_owned()
}

/// Whether a connect announces `room`, given the marks `announced` recorded in the
/// window it counts in (none when it starts a window) and whether it is the joiner's
/// `first` join of the room; and the mark to record, if any. A first join is always
/// announced; a join again only when the room is not marked yet and the record has room.
/// Everything here is the joiner's own state: alike whoever holds the target.
pub fn announcing(
    announced: &BTreeSet<String>,
    room: &RoomId,
    first: bool,
) -> (Announce, Option<String>) {
    let mark = announce_mark(room);
    let marked = announced.contains(&mark);
    let room_left = announced.len() < MAX_ANNOUNCED;
    let record = (!marked && room_left).then_some(mark);
    let announce = if first || record.is_some() {
        Announce::Now
    } else {
        Announce::Skip
    };
    (announce, record)
}

/// Join the holder of `requester` to the room of their public id and `target`.
///
/// Two round trips, the same whoever holds `target` or whether anybody does: one read of
/// the requester's own user item, one transaction recording the requester (and only
/// them) as a member, adding the room to their lists, and offering it in `target`'s
/// inbox. Nothing about `target` is read, so neither the answer nor its cost can change
/// when `target` gets a holder; the holder joins the same room by connecting back.
pub async fn connect<S: UserStore + RoomStore + ?Sized>(
    store: &S,
    key: &RoomKey,
    requester: &PrivateId,
    target: PublicId,
    now: SystemTime,
) -> Result<RoomId, ConnectError> {
    connect_limited(store, key, requester, target, ConnectLimits::UNLIMITED, now).await
}

/// [`connect`], counted against the requester's `limits` of connects per window (on
/// their own user item, so the limit is the same whatever the target).
pub async fn connect_limited<S: UserStore + RoomStore + ?Sized>(
    store: &S,
    key: &RoomKey,
    requester: &PrivateId,
    target: PublicId,
    limits: ConnectLimits,
    now: SystemTime,
) -> Result<RoomId, ConnectError> {
    Ok(join(store, key, requester, target, limits, now).await?.room)
}

/// What a connect answers, and whether the live announcement reached the inbox channel
/// (the room is recorded in the inbox either way).
#[derive(Debug)]
pub struct Connected {
    pub room: RoomId,
    /// Whether the room was announced (see [`announcing`]).
    pub announced: bool,
    pub announce_failed: Option<RealtimeError>,
}

/// [`connect`], then, when [`announcing`] says so, one publish of event [`ROOM_EVENT`]
/// on `target`'s inbox channel and the room's channel,
/// `{"roomId","channel","from":{"publicId","username","publicKey"?}}` (the key when the
/// requester registered one), for used and unused ids alike. The target (present or
/// future holder) learns the opener's key from the inbox; a peer who joined before
/// learns it on the room's channel: a member's key reaches the other only once they have
/// joined, and nothing of it depends on who holds `target`.
pub async fn connect_and_announce<S: UserStore + RoomStore + ?Sized, R: Realtime + ?Sized>(
    store: &S,
    realtime: &R,
    key: &RoomKey,
    requester: &PrivateId,
    target: PublicId,
    limits: ConnectLimits,
    now: SystemTime,
) -> Result<Connected, ConnectError> {
    let Join {
        room,
        joiner,
        announce,
    } = join(store, key, requester, target, limits, now).await?;
    if announce == Announce::Skip {
        return Ok(Connected {
            room,
            announced: false,
            announce_failed: None,
        });
    }
    let mut from = serde_json::json!({
        "publicId": joiner.member.public_id.to_string(),
        "username": joiner.member.username,
    });
    if let Some(public_key) = joiner.public_key {
        from["publicKey"] = public_key.to_string().into();
    }
    let data = serde_json::json!({
        "roomId": room.as_str(),
        "channel": room.channel(),
        "from": from,
    })
    .to_string();
    let channels = [key.inbox_channel(target), room.channel()];
    let announce_failed = realtime
        .publish(&channels.each_ref().map(String::as_str), ROOM_EVENT, &data)
        .await
        .err();
    Ok(Connected {
        room,
        announced: true,
        announce_failed,
    })
}

struct Join {
    room: RoomId,
    joiner: Requester,
    announce: Announce,
}

async fn join<S: UserStore + RoomStore + ?Sized>(
    store: &S,
    key: &RoomKey,
    requester: &PrivateId,
    target: PublicId,
    limits: ConnectLimits,
    now: SystemTime,
) -> Result<Join, ConnectError> {
    let (window, retry_after) = limits.rate.window_at(now);
    let me = requester.hash();
    let joiner = store
        .member_for_connect(&me)
        .await?
        .ok_or(ConnectError::UnknownPrivateId)?;
    let mine = joiner.member.public_id;
    if mine == target {
        return Err(ConnectError::CannotConnectToSelf);
    }
    let room = key.room_of(mine, target);
    let side = Side::of(mine, target);
    let now_secs = crate::time::millis_of(now) / 1000;
    let joining = Joining {
        room: &room,
        side,
        joiner: &me,
        requester: &joiner,
        target,
        max_rooms: MAX_ROOMS,
        connects: window,
        offer_expires_at: now_secs.saturating_add(limits.offer_ttl.as_secs()),
        now: &rfc3339(now),
    };
    match store.join_room(&joining).await {
        Ok(announce) => Ok(Join {
            room,
            joiner,
            announce,
        }),
        Err(JoinError::RateLimited) => Err(ConnectError::RateLimited { retry_after }),
        Err(JoinError::TooManyRooms) => Err(ConnectError::TooManyRooms),
        Err(JoinError::Closed) => Err(ConnectError::RoomClosed),
        // Connect read the user item just before, and users are never deleted: a broken
        // table, answered 500 with the detail in the log.
        Err(JoinError::NoSuchJoiner) => Err(ConnectError::Store(StoreError::Other(
            anyhow::anyhow!("the requester's user item vanished between its read and the join"),
        ))),
        Err(JoinError::Store(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests;
