//! Shared by the benchmark binaries and benches: a local Lambda Runtime API, the room-id
//! key they configure and a percentile. Events, the Pusher receiver and the DynamoDB proxy
//! come from the test kit.

pub mod runtime_api;

use std::time::Duration;

/// The room-id key every harness configures its functions with (a test value).
pub const ROOM_KEY: &str = "cb1d2fdcc86ce72aae3a8d6c513a08b3a12069dba7e0d5b9987b0cdf456aa621";

/// The `p` quantile of `values` (nearest rank), zero for none.
pub fn percentile(values: &[Duration], p: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let index = (sorted.len().saturating_sub(1) as f64 * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}
