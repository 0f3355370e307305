//! The message rate limit on DynamoDB. A user's count lives in their user item, in one
//! of [`RATE_SLOTS`] slots, `rl<window % RATE_SLOTS>`, valued `window << 20 | count`
//! (`store::rate`). Each count removes the user's slots but those of the window before,
//! this one and the next, so the slot of a new window is absent and one update both
//! starts and counts it; only after a pause of about a multiple of `RATE_SLOTS` windows
//! does it still hold an old count, which the condition catches and a second update
//! restarts. A fixed set of names keeps the item small: no name is ever left behind.
//!
//! The requests are built in `messages.rs`; what to do when a condition fails is
//! decided here, by [`after_refusal`], a pure function.

use crate::domain::ports::RateWindow;
use crate::store::rate;
use crate::store::schema::attr;

pub(super) const RATE_SLOTS: u64 = 64;

/// What counting updates wrote before exactly-once sends (v3): a token per request.
const LEGACY_TOKEN: &str = "rt";

/// The attribute holding `window`'s count.
pub(super) fn slot(window: RateWindow) -> String {
    format!("rl{}", window.window % RATE_SLOTS)
}

/// `SET <set>, lm = :sent REMOVE` the other slots but the neighbours': a message that
/// read the clock just before a window turned may land after one that read it just
/// after, and neither may erase the other's count. Also `rt`, the token a counting
/// update wrote before `lm` took its place, so that no item keeps its bytes.
pub(super) fn update_expression(window: RateWindow, set: &str) -> String {
    let w = window.window;
    let keep = [w.wrapping_sub(1), w, w.wrapping_add(1)].map(|w| w % RATE_SLOTS);
    let removed: Vec<String> = (0..RATE_SLOTS)
        .filter(|slot| !keep.contains(slot))
        .map(|slot| format!("rl{slot}"))
        .chain(std::iter::once(LEGACY_TOKEN.to_owned()))
        .collect();
    format!(
        "SET {set}, {} = :sent REMOVE {}",
        attr::LAST_MESSAGE,
        removed.join(", ")
    )
}

/// What a refused counting update found in the user item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Found {
    /// The room is one of the user's open rooms.
    pub joined: bool,
    /// The user's last message has this message's id: a retry, counted already.
    pub sent_before: bool,
    /// The value of the window's slot, if any.
    pub counter: Option<u64>,
}

/// What to do after a counting update was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Not an open room of the user's: none of theirs, or a closed one.
    NotMember,
    /// Counted already: a retry of the user's last message.
    SentBefore,
    /// A concurrent message counted in a later window: count there too.
    CountIn(RateWindow),
    Limited,
    /// The slot holds the count of a window `RATE_SLOTS` (or a multiple) ago: restart it.
    Restart,
}

pub(super) fn after_refusal(window: RateWindow, found: Found) -> Next {
    if !found.joined {
        Next::NotMember
    } else if found.sent_before {
        Next::SentBefore
    } else if let Some(later) = found.counter.and_then(|c| rate::later_of(window, c)) {
        Next::CountIn(later)
    } else if found.counter.is_some_and(|c| c >= rate::start(window)) {
        Next::Limited
    } else {
        Next::Restart
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: RateWindow = RateWindow {
        window: 1000,
        limit: 3,
    };

    fn found(counter: Option<u64>) -> Found {
        Found {
            joined: true,
            sent_before: false,
            counter,
        }
    }

    #[test]
    fn slots_cycle_and_updates_keep_only_the_neighbours() {
        assert_eq!(slot(W), "rl40");
        assert_eq!(slot(RateWindow { window: 1064, ..W }), "rl40");
        let expression = update_expression(W, "#slot = :x");
        assert!(expression.starts_with("SET #slot = :x, lm = :sent REMOVE "));
        let removed: Vec<&str> = expression
            .split("REMOVE ")
            .nth(1)
            .unwrap()
            .split(", ")
            .collect();
        assert_eq!(removed.len(), 62);
        assert_eq!(removed.last(), Some(&"rt"), "the token of before v3");
        for kept in ["rl39", "rl40", "rl41"] {
            assert!(!removed.contains(&kept), "{kept} is removed");
        }
        // Window 0's neighbours wrap around: 63 and 1.
        let first = update_expression(RateWindow { window: 0, ..W }, "x");
        assert!(!first.contains("rl63,") && !first.ends_with("rl63"));
        assert!(!first.contains("rl1,") && !first.contains("rl0,"));
    }

    #[test]
    fn a_refusal_is_read_in_order_membership_retry_later_window_limit_restart() {
        let start = rate::start(W);
        assert_eq!(
            after_refusal(
                W,
                Found {
                    joined: false,
                    sent_before: true,
                    counter: Some(start + 3)
                }
            ),
            Next::NotMember
        );
        assert_eq!(
            after_refusal(
                W,
                Found {
                    sent_before: true,
                    ..found(Some(start + 3))
                }
            ),
            Next::SentBefore
        );
        let next_window = rate::start(RateWindow { window: 1001, ..W }) + 1;
        assert_eq!(
            after_refusal(W, found(Some(next_window))),
            Next::CountIn(RateWindow { window: 1001, ..W })
        );
        assert_eq!(after_refusal(W, found(Some(start + 3))), Next::Limited);
        // A count from 64 windows ago, or one from before any window, is restarted.
        let stale = rate::start(RateWindow { window: 936, ..W }) + 2;
        assert_eq!(after_refusal(W, found(Some(stale))), Next::Restart);
        assert_eq!(after_refusal(W, found(None)), Next::Restart);
    }
}
