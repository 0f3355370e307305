//! The recorded UserStore.

use super::*;

#[async_trait]
impl<S: Store> UserStore for Recording<S> {
    async fn reserve_user_ids(&self, count: u64) -> Result<u64, StoreError> {
        let r = self.inner.reserve_user_ids(count).await;
        self.note(format!("reserve_user_ids {count}"), &r);
        r
    }

    async fn insert_user(
        &self,
        user: &UserRecord,
        q: Option<&CreateQuota>,
    ) -> Result<(), InsertUserError> {
        let r = self.inner.insert_user(user, q).await;
        let call = format!(
            "insert_user {} {} {} {}",
            hash(&user.private_id_hash),
            user.public_id,
            user.username,
            quota(q)
        );
        self.note(call, &r);
        r
    }

    async fn member_for_connect(
        &self,
        who: &PrivateIdHash,
    ) -> Result<Option<Requester>, StoreError> {
        let r = self.inner.member_for_connect(who).await;
        self.note(format!("member_for_connect {}", hash(who)), &r);
        r
    }

    async fn rotate_public_id(
        &self,
        who: &PrivateIdHash,
        old: &Member,
        new: PublicId,
        q: Option<&CreateQuota>,
        now: &str,
    ) -> Result<(), RotateError> {
        let r = self.inner.rotate_public_id(who, old, new, q, now).await;
        let call = format!(
            "rotate_public_id {} {} {new} {} {now}",
            hash(who),
            member(old),
            quota(q)
        );
        self.note(call, &r);
        r
    }

    async fn get_user(&self, who: &PrivateIdHash) -> Result<Option<UserRecord>, StoreError> {
        let r = self.inner.get_user(who).await;
        self.note(format!("get_user {}", hash(who)), &r);
        r
    }

    async fn get_public(&self, id: PublicId) -> Result<Option<PublicEntry>, StoreError> {
        let r = self.inner.get_public(id).await;
        self.note(format!("get_public {id}"), &r);
        r
    }
}
