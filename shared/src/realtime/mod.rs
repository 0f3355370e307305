//! Realtime delivery through a Pusher-protocol server: the adapter behind the domain's
//! `Realtime` and `ChannelSigner` ports.

pub mod pusher;

pub use crate::domain::ports::{ChannelSigner, Realtime, RealtimeError};
