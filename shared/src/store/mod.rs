//! The storage adapters behind the domain's `Store` port: DynamoDB for the Lambda
//! functions, an embedded redb file for the local server. Both share the item schema
//! ([`schema`]: keys, attribute names, typed items) and the rate counter's encoding
//! ([`rate`]).

/// The port's aggregate traits for `$store` (`UserStore`, `RoomStore`, `MessageStore`,
/// `ListStore`), each operation delegated to the function of the same name in the
/// store's module of that aggregate (`users`, `rooms`, `messages`, `lists`: the same file
/// names in both stores), then `Store` with the store's own `$extra` items (`warm_up`,
/// `round_trips`). One list of operations for both stores.
macro_rules! store_by_aggregate {
    ($store:ty, { $($extra:tt)* }) => {
        #[async_trait]
        impl $crate::store::UserStore for $store {
            async fn reserve_user_ids(&self, count: u64) -> Result<u64, StoreError> {
                users::reserve_user_ids(self, count).await
            }

            async fn insert_user(
                &self,
                user: &UserRecord,
                quota: Option<&CreateQuota>,
            ) -> Result<(), InsertUserError> {
                users::insert_user(self, user, quota).await
            }

            async fn member_for_connect(
                &self,
                requester: &PrivateIdHash,
            ) -> Result<Option<Requester>, StoreError> {
                users::member_for_connect(self, requester).await
            }

            async fn rotate_public_id(
                &self,
                who: &PrivateIdHash,
                holder: &Member,
                new: PublicId,
                quota: Option<&CreateQuota>,
                now: &str,
            ) -> Result<(), RotateError> {
                users::rotate_public_id(self, who, holder, new, quota, now).await
            }

            async fn get_user(&self, hash: &PrivateIdHash) -> Result<Option<UserRecord>, StoreError> {
                users::get_user(self, hash).await
            }

            async fn get_public(&self, public_id: PublicId) -> Result<Option<PublicEntry>, StoreError> {
                users::get_public(self, public_id).await
            }

        }

        #[async_trait]
        impl $crate::store::RoomStore for $store {
            async fn join_room(&self, joining: &Joining<'_>) -> Result<Announce, JoinError> {
                rooms::join_room(self, joining).await
            }

            async fn room_member(
                &self,
                room: &RoomId,
                who: &PrivateIdHash,
            ) -> Result<Option<Membership>, StoreError> {
                rooms::room_member(self, room, who).await
            }

            async fn close_room(
                &self,
                room: &RoomId,
                blocker: &PrivateIdHash,
                inboxes: &[PublicId],
                peer: Option<&PrivateIdHash>,
                now: &str,
            ) -> Result<bool, StoreError> {
                rooms::close_room(self, room, blocker, inboxes, peer, now).await
            }

            async fn room_members(
                &self,
                room: &RoomId,
            ) -> Result<Option<Vec<(PrivateIdHash, Member)>>, StoreError> {
                rooms::room_members(self, room).await
            }

        }

        #[async_trait]
        impl $crate::store::MessageStore for $store {
            async fn count_message(
                &self,
                room: &RoomId,
                who: &PrivateIdHash,
                requested: RateWindow,
                sent: &LastSent,
            ) -> Result<Allowance, StoreError> {
                messages::count_message(self, room, who, requested, sent).await
            }

            async fn republish(
                &self,
                who: &PrivateIdHash,
                last: &LastSent,
                next: &LastSent,
            ) -> Result<bool, StoreError> {
                messages::republish(self, who, last, next).await
            }

            async fn keep_message(
                &self,
                room: &RoomId,
                message: &KeptMessage,
                expires_at: u64,
                keeping: Keeping,
            ) -> Result<(), StoreError> {
                messages::keep_message(self, room, message, expires_at, keeping).await
            }

            async fn list_messages(
                &self,
                room: &RoomId,
                after: &Cursor,
                limit: usize,
                now_secs: u64,
            ) -> Result<HistoryPage, StoreError> {
                messages::list_messages(self, room, after, limit, now_secs).await
            }

            async fn list_messages_before(
                &self,
                room: &RoomId,
                floor: &Cursor,
                before: Option<&Cursor>,
                limit: usize,
                now_secs: u64,
            ) -> Result<HistoryPage, StoreError> {
                messages::list_messages_before(self, room, floor, before, limit, now_secs).await
            }

            async fn newest_message(&self, room: &RoomId) -> Result<Option<LastMessage>, StoreError> {
                messages::newest_message(self, room).await
            }

        }

        #[async_trait]
        impl $crate::store::ListStore for $store {
            async fn rooms_of(
                &self,
                who: &PrivateIdHash,
                max_offers: usize,
            ) -> Result<Option<RoomsOf>, StoreError> {
                lists::rooms_of(self, who, max_offers).await
            }

            async fn offer(&self, to: PublicId, room: &RoomId) -> Result<Option<Offer>, StoreError> {
                lists::offer(self, to, room).await
            }

            async fn audience(&self, room: &RoomId) -> Result<Option<Audience>, StoreError> {
                lists::audience(self, room).await
            }

            async fn note_message(
                &self,
                who: &PrivateIdHash,
                room: &RoomId,
                entry: ListEntry<'_>,
                last: &LastMessage,
            ) -> Result<(), StoreError> {
                lists::note_message(self, who, room, entry, last).await
            }

            async fn copy_offer(
                &self,
                owner: &PrivateIdHash,
                to: PublicId,
                since: &str,
                offer: &Offer,
                last: Option<&LastMessage>,
            ) -> Result<(), StoreError> {
                lists::copy_offer(self, owner, to, since, offer, last).await
            }

            async fn drop_offer(
                &self,
                holder: &PrivateIdHash,
                to: PublicId,
                room: &RoomId,
                opened_at: &str,
            ) -> Result<(), StoreError> {
                lists::drop_offer(self, holder, to, room, opened_at).await
            }

            async fn drop_offers_to(&self, holder: &PrivateIdHash, to: PublicId) -> Result<(), StoreError> {
                lists::drop_offers_to(self, holder, to).await
            }

        }

        #[async_trait]
        impl $crate::store::Store for $store {
            $($extra)*
        }
    };
}
pub(crate) use store_by_aggregate;

pub mod dynamodb;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod feed;
pub mod rate;
pub mod schema;

pub use crate::domain::ports::store::*;
pub use dynamodb::{DynamoStore, Timeouts};
#[cfg(feature = "embedded")]
pub use embedded::{EmbeddedStore, Swept};

/// A page of history from the items read in order (at most `limit` + 1, each with its
/// `ttl`): the first `limit`, less the expired ones, and where the next page starts when
/// there is one more.
fn history_page(mut read: Vec<(u64, KeptMessage)>, limit: usize, now_secs: u64) -> HistoryPage {
    let more = read.len() > limit;
    read.truncate(limit);
    let next = more
        .then(|| read.last().map(|(_, m)| m.cursor.clone()))
        .flatten();
    HistoryPage {
        messages: read
            .into_iter()
            .filter(|(ttl, _)| *ttl > now_secs)
            .map(|(_, m)| m)
            .collect(),
        next,
    }
}
