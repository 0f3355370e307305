//! The recorded MessageStore.

use super::*;

#[async_trait]
impl<S: Store> MessageStore for Recording<S> {
    async fn count_message(
        &self,
        room: &RoomId,
        who: &PrivateIdHash,
        window: RateWindow,
        sent: &LastSent,
    ) -> Result<Allowance, StoreError> {
        // The message's fingerprint is random (a fresh id each run): not noted.
        let r = self.inner.count_message(room, who, window, sent).await;
        let call = format!(
            "count_message {room} {} w{} l{}",
            hash(who),
            window.window,
            window.limit
        );
        self.note(call, &r);
        r
    }

    async fn republish(
        &self,
        who: &PrivateIdHash,
        last: &LastSent,
        next: &LastSent,
    ) -> Result<bool, StoreError> {
        let r = self.inner.republish(who, last, next).await;
        let call = format!("republish {} r{}", hash(who), next.republished());
        self.note(call, &r);
        r
    }

    async fn keep_message(
        &self,
        room: &RoomId,
        message: &KeptMessage,
        expires_at: u64,
        keeping: Keeping,
    ) -> Result<(), StoreError> {
        let r = if take_one(&self.keep_faults) {
            Err(injected())
        } else {
            self.inner
                .keep_message(room, message, expires_at, keeping)
                .await
        };
        let call = format!(
            "keep_message {room} {} {expires_at} {keeping:?}",
            kept(message)
        );
        self.note(call, &r);
        r
    }

    async fn list_messages(
        &self,
        room: &RoomId,
        after: &Cursor,
        limit: usize,
        now_secs: u64,
    ) -> Result<HistoryPage, StoreError> {
        let r = self.inner.list_messages(room, after, limit, now_secs).await;
        let call = format!("list_messages {room} {after} {limit} {now_secs}");
        self.note(call, &r);
        r
    }

    async fn list_messages_before(
        &self,
        room: &RoomId,
        floor: &Cursor,
        before: Option<&Cursor>,
        limit: usize,
        now_secs: u64,
    ) -> Result<HistoryPage, StoreError> {
        let r = self
            .inner
            .list_messages_before(room, floor, before, limit, now_secs)
            .await;
        let before = before.map(ToString::to_string).unwrap_or_default();
        let call = format!("list_messages_before {room} {floor} {before} {limit} {now_secs}");
        self.note(call, &r);
        r
    }

    async fn newest_message(&self, room: &RoomId) -> Result<Option<LastMessage>, StoreError> {
        let r = self.inner.newest_message(room).await;
        self.note(format!("newest_message {room}"), &r);
        r
    }
}
