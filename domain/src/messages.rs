//! Messages: validated text, published to the room's channel for its members.

use crate::history::{self, MessageTtl};
use crate::ids::{PrivateId, RoomId};
use crate::ports::store::{Allowance, Keeping, KeptMessage, MessageStore, RateWindow, StoreError};
use crate::ports::{Realtime, RealtimeError};
use crate::sent::{LastSent, MessageId};
use crate::time::rfc3339;
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};

/// A non-empty UTF-8 text of at most [`Message::MAX_BYTES`] bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("the message is empty")]
    Empty,
    #[error("the message is {0} bytes; the limit is {max}", max = Message::MAX_BYTES)]
    TooLong(usize),
    /// Within the byte limit, but too long once escaped for delivery (control characters
    /// take six bytes each in JSON): its event would pass Pusher's cap.
    #[error(
        "the message takes {0} bytes once escaped for delivery; the limit is {max} \
         (control characters take six bytes each)",
        max = Message::MAX_ESCAPED_BYTES
    )]
    TooLongEscaped(usize),
}

impl Message {
    /// The SPEC's limit on the text itself.
    pub const MAX_BYTES: usize = 4096;
    /// Pusher caps an event's data at 10 KB (10,240 bytes). The rest of a message event
    /// (id, room id, sender, time, keys) takes under 300 bytes; 512 are kept for it.
    pub const MAX_ESCAPED_BYTES: usize = 10_240 - 512;

    pub fn parse(text: String) -> Result<Self, MessageError> {
        // Only the empty text: which characters count as blank differs between Unicode,
        // JavaScript and JSON Schema engines, and the SPEC asks for non-empty.
        if text.is_empty() {
            Err(MessageError::Empty)
        } else if text.len() > Self::MAX_BYTES {
            Err(MessageError::TooLong(text.len()))
        } else {
            // Checked here, before the message is counted: a refused one costs nothing.
            let escaped = escaped_len(&text);
            if escaped > Self::MAX_ESCAPED_BYTES {
                Err(MessageError::TooLongEscaped(escaped))
            } else {
                Ok(Self(text))
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The length of `text` as a JSON string's contents (serde_json's escaping).
fn escaped_len(text: &str) -> usize {
    text.chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum()
}

/// The event name messages are published under.
pub const MESSAGE_EVENT: &str = "message";

/// The data of a `message` event, as subscribers receive it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageEvent<'a> {
    pub id: String,
    pub room_id: &'a str,
    pub from: Sender<'a>,
    pub message: &'a str,
    pub sent_at: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sender<'a> {
    pub public_id: String,
    pub username: &'a str,
}

/// How many times one identity may do a thing per fixed window: post messages (to all
/// their rooms together; [`Self::default`]), or connect ([`Self::CONNECTS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub window_secs: u64,
}

impl Default for RateLimit {
    /// Two messages a second on average, in bursts of up to 30: a brisk chat, not a
    /// script.
    fn default() -> Self {
        Self {
            count: 30,
            window_secs: 15,
        }
    }
}

impl RateLimit {
    /// Connects per identity (first connects and connects again alike): 30 an hour, more
    /// than a person opens rooms, few enough that one identity cannot flood inboxes, the
    /// room lists' projection or the Pusher quota.
    pub const CONNECTS: Self = Self {
        count: 30,
        window_secs: 3600,
    };

    /// No limit a caller can reach (the domain's plain `connect`, for tests and tools).
    pub const UNLIMITED: Self = Self {
        count: u32::MAX,
        window_secs: 86_400,
    };

    /// The window `now` falls in, and the seconds left until the next one.
    pub fn window_at(&self, now: SystemTime) -> (RateWindow, u32) {
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let length = self.window_secs.max(1);
        let window = RateWindow {
            window: secs / length,
            limit: self.count,
        };
        let left = length - secs % length;
        (window, u32::try_from(left).unwrap_or(u32::MAX))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// An unknown room and a room the sender is not in answer alike.
    #[error("room not found")]
    RoomNotFound,
    /// A member blocked the room; nothing was counted.
    #[error("the room is closed")]
    RoomClosed,
    /// Over the rate limit; nothing was published.
    #[error("too many messages; retry in {retry_after} s")]
    RateLimited { retry_after: u32 },
    /// The sender's last message has this id and another text.
    #[error("the message id is taken by another message")]
    IdConflict,
    #[error(transparent)]
    Realtime(#[from] RealtimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// One counted membership check (rarely two, see `MessageStore::count_message`), the
/// history write, and only then the publish: whoever hears a message live can read it
/// back from the history, so a client that subscribes and then fetches what it missed
/// (SPEC: after `pusher:subscription_succeeded`) misses nothing, even a message
/// published while it subscribed. A 204 means the message is kept; a new message is
/// also published (an error after the history write, a 502 say, leaves it kept but
/// maybe not delivered, which the sender's retry mends).
///
/// Exactly once (SPEC v3): the message is kept and published under `id` (a fresh one
/// when `None`). When the sender's last message had `id`, the same text and the same
/// room, this is a retry: nothing is counted, the message is kept at its first place
/// only if nothing is there yet (the write a failed first attempt missed; a message kept
/// stays as it was), and then published under the same id (again, unless the first
/// attempt's write failed), at most
/// [`LastSent::MAX_REPUBLISHED`] times (one more update each, made only once the message
/// is kept, so that retries whose history write failed use none up; later retries keep
/// it and publish nothing); the same `id` with another text, or to another room, is
/// [`SendError::IdConflict`].
#[allow(clippy::too_many_arguments)]
pub async fn send_message<S: MessageStore + ?Sized, R: Realtime + ?Sized>(
    store: &S,
    realtime: &R,
    rate: RateLimit,
    ttl: MessageTtl,
    room: &RoomId,
    sender: &PrivateId,
    message: &Message,
    id: Option<MessageId>,
    now: SystemTime,
) -> Result<(), SendError> {
    let (window, retry_after) = rate.window_at(now);
    let id = match id {
        Some(id) => id,
        None => MessageId::random()?,
    };
    let this = LastSent::of(&id, room, message.as_str(), now);
    let who = sender.hash();
    // `retry`: the sender's last message, of which this is a retry.
    let (member, sent, keeping, retry) =
        match store.count_message(room, &who, window, &this).await? {
            Allowance::Allowed(member) => (member, now, Keeping::New, None),
            // Another text, or the same one to another room.
            Allowance::SentBefore { first, .. } if !first.same_text(&this) => {
                return Err(SendError::IdConflict);
            }
            Allowance::SentBefore { member, first } => {
                (member, first.sent_at(), Keeping::Again, Some(first))
            }
            Allowance::Limited => return Err(SendError::RateLimited { retry_after }),
            Allowance::NotMember => return Err(SendError::RoomNotFound),
            Allowance::Closed => return Err(SendError::RoomClosed),
        };
    let sent_at = rfc3339(sent);
    let event = MessageEvent {
        id: id.as_str().to_owned(),
        room_id: room.as_str(),
        from: Sender {
            public_id: member.public_id.to_string(),
            username: &member.username,
        },
        message: message.as_str(),
        sent_at: sent_at.clone(),
    };
    let data = serde_json::to_string(&event).map_err(anyhow::Error::from)?;
    let kept = KeptMessage {
        cursor: history::kept(&id, sent)?,
        id: id.as_str().to_owned(),
        from: member,
        message: message.as_str().to_owned(),
        sent_at,
    };
    store
        .keep_message(room, &kept, ttl.expires_at(sent), keeping)
        .await?;
    let publish = match retry {
        None => true,
        // Tried as often as a message may be: kept, not published again.
        Some(first) if first.republished() >= LastSent::MAX_REPUBLISHED => false,
        // `false`: another retry of it took this turn (it publishes, or answers the
        // error that kept it from it, and its sender retries), or the update's answer
        // was lost; the message is kept either way.
        Some(first) => store.republish(&who, &first, &first.republishing()).await?,
    };
    if !publish {
        return Ok(());
    }
    realtime
        .publish(&[&room.channel()], MESSAGE_EVENT, &data)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_windows_are_fixed_and_say_when_the_next_starts() {
        let rate = RateLimit {
            count: 5,
            window_secs: 60,
        };
        let at = |s| UNIX_EPOCH + std::time::Duration::from_secs(s);
        assert_eq!(
            rate.window_at(at(120)),
            (
                RateWindow {
                    window: 2,
                    limit: 5
                },
                60
            )
        );
        assert_eq!(
            rate.window_at(at(179)),
            (
                RateWindow {
                    window: 2,
                    limit: 5
                },
                1
            )
        );
        assert_eq!(rate.window_at(at(180)).0.window, 3);
    }

    #[test]
    fn messages_are_bounded_in_bytes_not_chars() {
        assert_eq!(Message::parse(String::new()), Err(MessageError::Empty));
        assert!(
            Message::parse(" ".into()).is_ok(),
            "white space is a message"
        );
        assert!(Message::parse("a".repeat(4096)).is_ok());
        assert_eq!(
            Message::parse("a".repeat(4097)),
            Err(MessageError::TooLong(4097))
        );
        // 1366 three-byte characters are 4098 bytes.
        assert_eq!(
            Message::parse("€".repeat(1366)),
            Err(MessageError::TooLong(4098))
        );
        assert!(Message::parse("€".repeat(1365)).is_ok());
    }

    #[test]
    fn the_escaped_length_is_serde_jsons() {
        for text in [
            "plain",
            "quote\" back\\ nl\n tab\t",
            "\u{1}\u{1f}\u{7f}€😀",
            "\u{8}\u{c}\r",
        ] {
            let json = serde_json::to_string(text).unwrap();
            assert_eq!(escaped_len(text), json.len() - 2, "{text:?}");
        }
    }

    #[test]
    fn a_message_whose_event_would_pass_pushers_cap_is_refused() {
        // 4096 bytes of U+0001 are 24,576 once escaped: over the cap, though within 4096.
        assert_eq!(
            Message::parse("\u{1}".repeat(4096)),
            Err(MessageError::TooLongEscaped(6 * 4096))
        );
        assert!(
            Message::parse("\u{1}".repeat(1621)).is_ok(),
            "9726 bytes escaped"
        );
        assert_eq!(
            Message::parse("\u{1}".repeat(1622)),
            Err(MessageError::TooLongEscaped(9732))
        );
        // The largest accepted message in the largest event stays under 10 KB.
        let text = format!("{}{}", "\u{1}".repeat(1621), "a".repeat(2));
        let message = Message::parse(text).unwrap();
        let event = MessageEvent {
            id: "f".repeat(MessageId::MAX_LEN),
            room_id: &"R".repeat(43),
            from: Sender {
                public_id: "999-999-999".into(),
                username: &"W".repeat(40),
            },
            message: message.as_str(),
            sent_at: "2026-11-25T12:00:00.000Z".into(),
        };
        assert!(serde_json::to_string(&event).unwrap().len() <= 10_240);
    }
}
