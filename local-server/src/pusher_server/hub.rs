//! Who listens on which channel, and each socket's queue of events.

use super::*;

/// Where the hub puts a socket's events. A socket that cannot keep up is closed with
/// Pusher's "over capacity" (its client reconnects) instead of losing events silently.
#[derive(Clone)]
pub(super) struct Outbox {
    pub(super) tx: mpsc::Sender<String>,
    pub(super) overflowed: Arc<Notify>,
}

impl Outbox {
    pub(super) fn deliver(&self, frame: String) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflowed.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// How many channels one socket may listen on: a person's rooms (at most 100 per
/// identity) with room to spare. Past it a subscription is refused, so one socket cannot
/// grow the hub without bound.
pub const MAX_SUBSCRIPTIONS_PER_SOCKET: usize = 256;

/// Who listens on which channel, and the other way round, so that a socket's
/// disconnect touches only its own channels.
#[derive(Default)]
pub struct Hub {
    pub(super) inner: Mutex<Listeners>,
}

#[derive(Default)]
pub(super) struct Listeners {
    pub(super) channels: HashMap<String, HashMap<String, Outbox>>,
    pub(super) sockets: HashMap<String, HashSet<String>>,
}

impl Hub {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Listeners> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `false` when the socket already listens on as many channels as it may.
    pub(super) fn subscribe(&self, channel: &str, socket_id: &str, outbox: Outbox) -> bool {
        let mut listeners = self.lock();
        let mine = listeners.sockets.entry(socket_id.to_owned()).or_default();
        if !mine.contains(channel) && mine.len() >= MAX_SUBSCRIPTIONS_PER_SOCKET {
            return false;
        }
        mine.insert(channel.to_owned());
        listeners
            .channels
            .entry(channel.to_owned())
            .or_default()
            .insert(socket_id.to_owned(), outbox);
        true
    }

    /// Whether `socket_id` listens on `channel`.
    pub(super) fn listens(&self, socket_id: &str, channel: &str) -> bool {
        self.lock()
            .sockets
            .get(socket_id)
            .is_some_and(|mine| mine.contains(channel))
    }

    pub(super) fn unsubscribe(&self, channel: &str, socket_id: &str) {
        let mut listeners = self.lock();
        if let Some(mine) = listeners.sockets.get_mut(socket_id) {
            mine.remove(channel);
        }
        listeners.leave(channel, socket_id);
    }

    pub(super) fn disconnect(&self, socket_id: &str) {
        let mut listeners = self.lock();
        for channel in listeners.sockets.remove(socket_id).unwrap_or_default() {
            listeners.leave(&channel, socket_id);
        }
    }

    #[cfg(test)]
    pub(super) fn counts(&self) -> (usize, usize) {
        let listeners = self.lock();
        (listeners.channels.len(), listeners.sockets.len())
    }

    /// Deliver to every subscriber but `except` (the publisher's own socket, as Pusher
    /// does when a trigger names `socket_id`). Returns how many received it.
    pub(super) fn publish(
        &self,
        channel: &str,
        event: &str,
        data: &str,
        except: Option<&str>,
    ) -> usize {
        let frame = json!({"event": event, "channel": channel, "data": data}).to_string();
        let listeners = self.lock();
        let Some(sockets) = listeners.channels.get(channel) else {
            return 0;
        };
        sockets
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != except)
            .filter(|(_, outbox)| outbox.deliver(frame.clone()))
            .count()
    }
}

impl Listeners {
    pub(super) fn leave(&mut self, channel: &str, socket_id: &str) {
        if let Some(sockets) = self.channels.get_mut(channel) {
            sockets.remove(socket_id);
            if sockets.is_empty() {
                self.channels.remove(channel);
            }
        }
    }
}
