//! The recorded ListStore.

use super::*;

#[async_trait]
impl<S: Store> ListStore for Recording<S> {
    async fn rooms_of(
        &self,
        who: &PrivateIdHash,
        max_offers: usize,
    ) -> Result<Option<RoomsOf>, StoreError> {
        let r = self.inner.rooms_of(who, max_offers).await;
        self.note(format!("rooms_of {} {max_offers}", hash(who)), &r);
        r
    }

    async fn offer(&self, to: PublicId, room: &RoomId) -> Result<Option<Offer>, StoreError> {
        let r = self.inner.offer(to, room).await;
        self.note(format!("offer {to} {room}"), &r);
        r
    }

    async fn audience(&self, room: &RoomId) -> Result<Option<Audience>, StoreError> {
        let r = if take_one(&self.audience_faults) {
            Err(injected())
        } else {
            self.inner.audience(room).await
        };
        self.note(format!("audience {room}"), &r);
        r
    }

    async fn note_message(
        &self,
        who: &PrivateIdHash,
        room: &RoomId,
        entry: ListEntry<'_>,
        l: &LastMessage,
    ) -> Result<(), StoreError> {
        let r = self.inner.note_message(who, room, entry, l).await;
        let call = format!("note_message {} {room} {entry:?} {}", hash(who), last(l));
        self.note(call, &r);
        r
    }

    async fn copy_offer(
        &self,
        owner: &PrivateIdHash,
        to: PublicId,
        since: &str,
        o: &Offer,
        l: Option<&LastMessage>,
    ) -> Result<(), StoreError> {
        let r = self.inner.copy_offer(owner, to, since, o, l).await;
        let call = format!(
            "copy_offer {} {to} {since} {} {}",
            hash(owner),
            offer(o),
            l.map(last).unwrap_or_default()
        );
        self.note(call, &r);
        r
    }

    async fn drop_offer(
        &self,
        owner: &PrivateIdHash,
        to: PublicId,
        room: &RoomId,
        opened_at: &str,
    ) -> Result<(), StoreError> {
        let r = self.inner.drop_offer(owner, to, room, opened_at).await;
        let call = format!("drop_offer {} {to} {room} {opened_at}", hash(owner));
        self.note(call, &r);
        r
    }

    async fn drop_offers_to(&self, owner: &PrivateIdHash, to: PublicId) -> Result<(), StoreError> {
        let r = self.inner.drop_offers_to(owner, to).await;
        self.note(format!("drop_offers_to {} {to}", hash(owner)), &r);
        r
    }
}
