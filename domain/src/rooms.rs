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

type HmacSha256 = Hmac<Sha256>;

// Domain separation: nothing else keyed with this key can produce a room id. (v1 rooms
// were MACs over private-id hashes under `secret-rooms/v1/room\0`.)
const ROOM_DOMAIN: &[u8] = b"secret-rooms/v2/room\0";
const INBOX_DOMAIN: &[u8] = b"secret-rooms/v2/inbox\0";

/// The event a connect publishes on its target's inbox channel.
pub const ROOM_EVENT: &str = "room";
/// Inbox channels start so; the rest is a MAC of the public id.
pub const INBOX_PREFIX: &str = "private-inbox-";

/// The server-side key behind room ids. Without it nobody can compute or invert one.
#[derive(Clone)]
pub struct RoomKey(Vec<u8>);

impl RoomKey {
    /// Bytes of key material at least.
    pub const MIN_LEN: usize = 32;

    /// `None` when shorter than [`Self::MIN_LEN`] bytes.
    pub fn new(key: impl Into<Vec<u8>>) -> Option<Self> {
        let key = key.into();
        (key.len() >= Self::MIN_LEN).then_some(Self(key))
    }

    /// The key as configured: hex (`openssl rand -hex 32`) or base64, standard or
    /// URL-safe (`openssl rand -base64 32`), of at least [`Self::MIN_LEN`] bytes. The
    /// text is decoded, so that the length counts bytes of key material, not characters;
    /// a key of few distinct bytes (a repeated character, say) is refused too.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let bytes = decode_hex(text)
            .or_else(|| decode_base64(text))
            .ok_or(KeyError::NotEncoded)?;
        if bytes.len() < Self::MIN_LEN {
            return Err(KeyError::TooShort(bytes.len()));
        }
        let distinct = bytes
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        if distinct < 16 {
            return Err(KeyError::NotRandom);
        }
        Ok(Self(bytes))
    }

    /// The key behind source-address hashes, derived from this one.
    pub fn address_key(&self) -> crate::addresses::AddressKey {
        crate::addresses::AddressKey::derive(&self.0)
    }

    /// The private channel where the holder of `public_id` hears of rooms opened with it
    /// (only its current holder may subscribe). A MAC, so that nobody can name the
    /// channel of an id without the key, nor tell the id from the channel.
    pub fn inbox_channel(&self, public_id: PublicId) -> String {
        let mut mac = match HmacSha256::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
        };
        mac.update(INBOX_DOMAIN);
        mac.update(public_id.to_string().as_bytes());
        let id = RoomId::from_mac(mac.finalize().into_bytes().into());
        format!("{INBOX_PREFIX}{id}")
    }

    /// The room of two public ids: the same whichever of them asks, and the same forever,
    /// since public ids are never reused. Whether either id has a holder plays no part.
    pub fn room_of(&self, a: PublicId, b: PublicId) -> RoomId {
        let (lo, hi) = Pair::sorted(a, b);
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match HmacSha256::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
        };
        // The ids' text is digits and dashes: the NUL between them keeps the input
        // unambiguous.
        mac.update(ROOM_DOMAIN);
        mac.update(lo.to_string().as_bytes());
        mac.update(b"\0");
        mac.update(hi.to_string().as_bytes());
        RoomId::from_mac(mac.finalize().into_bytes().into())
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("must be hex or base64 (for example `openssl rand -hex 32`)")]
    NotEncoded,
    #[error(
        "decodes to {0} bytes; at least {min} are needed (for example `openssl rand -hex 32`)",
        min = RoomKey::MIN_LEN
    )]
    TooShort(usize),
    #[error("has too few distinct bytes to be random (for example `openssl rand -hex 32`)")]
    NotRandom,
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    hex::decode(text).ok()
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

impl fmt::Debug for RoomKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RoomKey(<redacted>)")
    }
}

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

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// An unknown room and a room the caller is not in answer alike.
    #[error("room not found")]
    RoomNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Close `room` for good, for both members: one membership read (which also names the
/// peer), one transaction. Blocking a closed room again changes nothing. A room only
/// offered to the caller is blocked without joining it ([`block_offered`]).
pub async fn block_room<S: UserStore + RoomStore + ListStore + ?Sized>(
    store: &S,
    room: &RoomId,
    caller: &PrivateId,
    now: SystemTime,
) -> Result<(), BlockError> {
    let me = caller.hash();
    // Read again when the peer joined between the read and the close (once is plenty:
    // a room has two members at most).
    for _ in 0..2 {
        let Some(membership) = store.room_member(room, &me).await? else {
            return block_offered(store, room, &me, now).await;
        };
        if membership.closed {
            return Ok(());
        }
        // The room leaves the blocker's inbox, and the peer's too when the peer never
        // joined: an offer there could only be refused.
        let mut inboxes = vec![membership.member.public_id];
        if membership.peer.is_none() {
            inboxes.extend(membership.peer_id);
        }
        let closed = store
            .close_room(room, &me, &inboxes, membership.peer.as_ref(), &rfc3339(now))
            .await?;
        if closed {
            return Ok(());
        }
    }
    Err(BlockError::Store(StoreError::Unavailable(anyhow::anyhow!(
        "the room's members kept changing while it was being closed"
    ))))
}

/// SPEC v3: the holder of a public id blocks a room only offered to it, without joining
/// it: closed for good for its opener (as any block), the offer gone from the holder's
/// list, and nothing counted against the holder's room cap. The caller's own user item
/// and the offer to their public id are read (their own request: what they hold may
/// shape it), then the room and its member, then one close. A room neither joined nor
/// offered answers as an unknown one.
async fn block_offered<S: UserStore + RoomStore + ListStore + ?Sized>(
    store: &S,
    room: &RoomId,
    me: &crate::ids::PrivateIdHash,
    now: SystemTime,
) -> Result<(), BlockError> {
    let mine = store
        .member_for_connect(me)
        .await?
        .ok_or(BlockError::RoomNotFound)?
        .member
        .public_id;
    let offer = store
        .offer(mine, room)
        .await?
        .ok_or(BlockError::RoomNotFound)?;
    for _ in 0..2 {
        let members = store
            .room_members(room)
            .await?
            .ok_or(BlockError::RoomNotFound)?;
        let Some((opener, _)) = members
            .iter()
            .find(|(_, m)| m.public_id == offer.from.public_id)
        else {
            return Err(BlockError::RoomNotFound);
        };
        // The opener's entries close, as a member's do in any block; the offer leaves the
        // caller's inbox. Refused (and read again) if somebody joined the other side since.
        let closed = store
            .close_room(room, opener, &[mine], None, &rfc3339(now))
            .await?;
        if closed {
            return Ok(());
        }
    }
    Err(BlockError::Store(StoreError::Unavailable(anyhow::anyhow!(
        "the room's members kept changing while it was being closed"
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RoomKey {
        RoomKey::new(*b"0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn configured_keys_count_bytes_of_key_material() {
        let hex = "421996cdfc711f4c28b6fa7b6af60fde1723301e983980791d14e64dd1fee65b";
        assert!(RoomKey::parse(hex).is_ok());
        // `openssl rand -base64 32` style, and its URL-safe form.
        let b64 = "q0l3Y8mV3pZb5l4h6F9d2x7KcR1tN0aWgE8uJ5yHsQo=";
        assert!(RoomKey::parse(b64).is_ok());
        assert!(RoomKey::parse(b64.trim_end_matches('=')).is_ok());
        // 32 characters are not 32 bytes of key material.
        let err = |text: &str| RoomKey::parse(text).err();
        assert_eq!(
            err(&"0123456789abcdef".repeat(2)),
            Some(KeyError::TooShort(16))
        );
        assert_eq!(
            err("not a key, just words and spaces!!"),
            Some(KeyError::NotEncoded)
        );
        assert_eq!(err(&"ab".repeat(40)), Some(KeyError::NotRandom));
        // Hex and base64 of the same bytes give the same key.
        let bytes: Vec<u8> = (0u8..32).collect();
        let as_hex = hex::encode(&bytes);
        use base64::Engine as _;
        let as_b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let a = RoomKey::parse(&as_hex).unwrap();
        let b = RoomKey::parse(&as_b64).unwrap();
        let (x, y) = (id("123-456"), id("654-321"));
        assert_eq!(a.room_of(x, y), b.room_of(x, y));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(RoomKey::new(vec![0u8; 31]).is_none());
        assert!(RoomKey::new(vec![0u8; 32]).is_some());
    }

    fn id(s: &str) -> PublicId {
        PublicId::parse(s).unwrap()
    }

    #[test]
    fn room_id_is_symmetric_keyed_and_channel_safe() {
        let (a, b) = (id("123-456"), id("654-321"));
        let room = key().room_of(a, b);
        assert_eq!(room, key().room_of(b, a));
        assert_ne!(room, key().room_of(a, id("654-322")));
        assert_ne!(room, key().room_of(a, id("000-654-321")));
        let other_key = RoomKey::new(vec![9u8; 32]).unwrap();
        assert_ne!(room, other_key.room_of(a, b));
        assert_eq!(RoomId::parse(room.as_str()), Some(room.clone()));
        assert!(
            room.channel().len() <= 164,
            "Pusher caps channel names at 164 chars"
        );
    }

    #[test]
    fn room_id_matches_an_independent_hmac() {
        // Computed with Python: hmac.new(key, b"secret-rooms/v2/room\0" + b"000-000-042"
        // + b"\0" + b"123-456", sha256), base64url without padding.
        assert_eq!(
            key().room_of(id("123-456"), id("000-000-042")).as_str(),
            ROOM_VECTOR
        );
    }

    const ROOM_VECTOR: &str = "Adtcmr4yLOwccuZ1BwrtHui730ZnWToYzz9twf00xtI";

    #[test]
    fn inbox_channel_matches_an_independent_hmac() {
        // Computed with Python: "private-inbox-" + base64url without padding of
        // hmac.new(key, b"secret-rooms/v2/inbox\0" + b"123-456", sha256).
        assert_eq!(
            key().inbox_channel(id("123-456")),
            "private-inbox-pMlwQ552H2S1uy7FN-t__lJMvz7V_xtEvq6Kh0VT8BY"
        );
        assert_ne!(
            key().inbox_channel(id("123-457")),
            key().inbox_channel(id("123-456"))
        );
    }

    #[test]
    fn a_room_is_announced_again_once_a_window_while_the_record_has_room() {
        let room = key().room_of(id("123-456"), id("654-321"));
        let none = BTreeSet::new();
        assert_eq!(
            announcing(&none, &room, true),
            (Announce::Now, Some(announce_mark(&room)))
        );
        assert_eq!(
            announcing(&none, &room, false),
            (Announce::Now, Some(announce_mark(&room)))
        );
        let marked = BTreeSet::from([announce_mark(&room)]);
        assert_eq!(announcing(&marked, &room, false), (Announce::Skip, None));
        // A first join is announced whatever the record says.
        assert_eq!(announcing(&marked, &room, true), (Announce::Now, None));
        let full: BTreeSet<String> = (0..MAX_ANNOUNCED).map(|n| format!("{n:03}")).collect();
        assert_eq!(announcing(&full, &room, false), (Announce::Skip, None));
        assert_eq!(announcing(&full, &room, true), (Announce::Now, None));
        assert_eq!(announce_mark(&room).len(), 3);
    }

    #[test]
    fn sides_follow_the_text_order() {
        assert_eq!(Side::of(id("123-456"), id("123-457")), Side::Low);
        assert_eq!(Side::of(id("123-457"), id("123-456")), Side::High);
        // "000-000-042" < "123-456" as text, whatever the numbers say.
        assert_eq!(Side::of(id("123-456"), id("000-000-042")), Side::High);
        assert_eq!(Side::of(id("999-999-999"), id("999-999")), Side::High);
    }
}
