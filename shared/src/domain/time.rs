//! Timestamps as RFC 3339 text, the form stored and published.

use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
use std::time::SystemTime;

/// Now, as RFC 3339 UTC with millisecond precision (`2026-11-24T05:20:55.123Z`).
pub fn now_rfc3339() -> String {
    let now = DateTime::from(SystemTime::now());
    let millis = now.subsec_nanos() / 1_000_000;
    let whole = DateTime::from_secs(now.secs());
    // Formatting a whole-second DateTime cannot fail for any time after 1970.
    let text = whole
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned());
    format!("{}.{millis:03}Z", text.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_rfc3339_with_millis() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), "2026-11-24T05:20:55.123Z".len(), "{t}");
        assert!(
            t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T",
            "{t}"
        );
    }
}
