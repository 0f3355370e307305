//! The recorded RoomStore.

use super::*;

#[async_trait]
impl<S: Store> RoomStore for Recording<S> {
    async fn join_room(&self, j: &Joining<'_>) -> Result<Announce, JoinError> {
        let r = self.inner.join_room(j).await;
        let call = format!(
            "join_room {} {:?} {} {} {} {} w{} l{} e{} {} -> {:?}",
            j.room,
            j.side,
            hash(j.joiner),
            requester(j.requester),
            j.target,
            j.max_rooms,
            j.connects.window,
            j.connects.limit,
            j.offer_expires_at,
            j.now,
            r.as_ref().ok()
        );
        self.note(call, &r);
        r
    }

    async fn room_member(
        &self,
        room: &RoomId,
        who: &PrivateIdHash,
    ) -> Result<Option<Membership>, StoreError> {
        let r = self.inner.room_member(room, who).await;
        self.note(format!("room_member {room} {}", hash(who)), &r);
        r
    }

    async fn close_room(
        &self,
        room: &RoomId,
        blocker: &PrivateIdHash,
        inboxes: &[PublicId],
        peer: Option<&PrivateIdHash>,
        now: &str,
    ) -> Result<bool, StoreError> {
        let r = self
            .inner
            .close_room(room, blocker, inboxes, peer, now)
            .await;
        let inboxes: Vec<String> = inboxes.iter().map(ToString::to_string).collect();
        let call = format!(
            "close_room {room} {} [{}] {} {now}",
            hash(blocker),
            inboxes.join(","),
            peer.map(hash).unwrap_or_default()
        );
        self.note(call, &r);
        r
    }

    async fn room_members(
        &self,
        room: &RoomId,
    ) -> Result<Option<Vec<(PrivateIdHash, Member)>>, StoreError> {
        let r = self.inner.room_members(room).await;
        self.note(format!("room_members {room}"), &r);
        r
    }
}
