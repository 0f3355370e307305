//! Realtime delivery: publishing events to channels, and signing subscriptions.

use crate::ids::SocketId;
use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum RealtimeError {
    #[error("realtime server refused the publish with HTTP {status}")]
    Rejected { status: u16 },
    #[error("realtime server unreachable: {0:#}")]
    Unreachable(anyhow::Error),
}

#[async_trait]
pub trait Realtime: Send + Sync {
    /// Publish `data` (a JSON text) as `event` on `channels` (1 to 100), in one call.
    async fn publish(
        &self,
        channels: &[&str],
        event: &str,
        data: &str,
    ) -> Result<(), RealtimeError>;

    /// Open the connection ahead of the first publish (TCP and TLS set-up). Failures are
    /// ignored: the publish reports its own.
    async fn warm_up(&self) {}
}

/// Signs a socket's subscription to a private channel (local: no round trip).
pub trait ChannelSigner: Send + Sync {
    /// The `auth` value the client presents to subscribe (`key:signature` for Pusher).
    fn sign(&self, socket_id: &SocketId, channel: &str) -> String;
}
