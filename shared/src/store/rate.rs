//! How the stores keep a sender's message count: one number, `window << 20 | count`, so
//! that one conditional update both checks the window and counts.

use crate::domain::ports::RateWindow;

const SHIFT: u32 = 20;

/// The largest limit the encoding can count to.
pub const MAX_LIMIT: u32 = (1 << SHIFT) - 1;

/// The counter's value at the start of `window` (no message sent yet).
pub fn start(window: RateWindow) -> u64 {
    window.window << SHIFT
}

/// The first counter value that is over the limit in `window`.
pub fn full(window: RateWindow) -> u64 {
    start(window) + u64::from(window.limit.min(MAX_LIMIT))
}

/// The window a stored counter belongs to, when it is later than `window`: a concurrent
/// request read the clock after this one and already counted in the next window, where
/// this message then counts too. (The embedded store's one counter per user meets this;
/// DynamoDB keeps a slot per window, where a message that read the clock late counts in
/// its own window's slot.)
pub fn later_of(window: RateWindow, counter: u64) -> Option<RateWindow> {
    let later = counter >> SHIFT;
    (later > window.window).then_some(RateWindow {
        window: later,
        ..window
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_spans_its_limit_and_knows_later_counters() {
        let w = RateWindow {
            window: 3,
            limit: 5,
        };
        assert_eq!(start(w), 3 << 20);
        assert_eq!(full(w) - start(w), 5);
        assert_eq!(later_of(w, start(w) + 4), None);
        assert_eq!(
            later_of(w, (4 << 20) + 1),
            Some(RateWindow {
                window: 4,
                limit: 5
            })
        );
        let huge = RateWindow {
            window: 1,
            limit: u32::MAX,
        };
        assert_eq!(full(huge) - start(huge), u64::from(MAX_LIMIT));
    }
}
