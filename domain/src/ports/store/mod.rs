//! The storage contract. Every method is one round trip to the backing database (but
//! `count_message`, documented there), so the SPEC's budget (create 1 amortized,
//! connect 2, message 1, auth 1) can be read off the domain functions and counted in
//! tests.

use crate::ids::PublicId;
use async_trait::async_trait;

mod lists;
mod messages;
mod rooms;
mod users;

pub use lists::*;
pub use messages::*;
pub use rooms::*;
pub use users::*;

/// What a room keeps of each member, so that a message can name its sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub public_id: PublicId,
    pub username: String,
}

/// One fixed window of the per-sender message rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateWindow {
    /// The window's number (seconds since the epoch divided by the window's length).
    pub window: u64,
    /// Messages allowed per sender per window.
    pub limit: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database did not answer in time, throttled us, or failed on its side:
    /// worth retrying later.
    #[error("storage unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    #[error("storage failed: {0:#}")]
    Other(anyhow::Error),
}

/// The whole store: one trait per aggregate ([`UserStore`], [`RoomStore`],
/// [`MessageStore`], [`ListStore`]; a domain function asks only for those it uses), and
/// what concerns the connection.
#[async_trait]
pub trait Store: UserStore + RoomStore + MessageStore + ListStore {
    /// Open the connection to the database ahead of the first request (one cheap read
    /// of an item that never exists), so that the first request does not pay for TCP
    /// and TLS set-up. Failures are ignored: the request path reports its own.
    async fn warm_up(&self) {}

    /// How many round trips to the database this store has made, retries included
    /// (tests and benchmarks check the SPEC's budget with it).
    fn round_trips(&self) -> usize;
}
