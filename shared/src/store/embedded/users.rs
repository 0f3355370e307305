//! Users: ids, creating one, the requester of a connect, rotating a public id, and reading one back.

use super::*;

pub(super) async fn reserve_user_ids(store: &EmbeddedStore, count: u64) -> Result<u64, StoreError> {
    store
        .write(move |db| {
            let txn = db.begin_write().map_err(other)?;
            let last = {
                let mut table = Writes::open(&txn)?;
                let current: u64 = get_item::<CounterItem>(&*table, keys::USER_COUNTER)?
                    .map_or(0, |item| item.value);
                let last = current + count;
                table.insert(
                    keys::USER_COUNTER,
                    encode(&CounterItem { value: last })?.as_slice(),
                )?;
                last
            };
            txn.commit().map_err(other)?;
            Ok(last)
        })
        .await
}

pub(super) async fn insert_user(
    store: &EmbeddedStore,
    user: &UserRecord,
    quota: Option<&CreateQuota>,
) -> Result<(), InsertUserError> {
    let user_pk = keys::user(&user.private_id_hash);
    let public_pk = keys::public(user.public_id);
    let user_item = encode(&UserItem::new(user))?;
    let public_item = encode(&PublicItem::new(user))?;
    let quota = quota.cloned();
    store
        .write(move |db| {
            let txn = db.begin_write().map_err(other)?;
            {
                let mut table = Writes::open(&txn)?;
                // Work that does not commit has its writes taken back: a refused create
                // leaves no count behind (as the one transaction on DynamoDB).
                if let Some(quota) = &quota
                    && !count_create(&mut table, quota)?
                {
                    return Ok(Err(InsertUserError::RateLimited));
                }
                if table.get(user_pk.as_str()).map_err(other)?.is_some()
                    || table.get(public_pk.as_str()).map_err(other)?.is_some()
                {
                    return Ok(Err(InsertUserError::Taken));
                }
                table.insert(user_pk.as_str(), user_item.as_slice())?;
                table.insert(public_pk.as_str(), public_item.as_slice())?;
            }
            txn.commit().map_err(other)?;
            Ok(Ok(()))
        })
        .await?
}

pub(super) async fn member_for_connect(
    store: &EmbeddedStore,
    requester: &PrivateIdHash,
) -> Result<Option<Requester>, StoreError> {
    let Some(user) = store.get::<UserItem>(keys::user(requester)).await? else {
        return Ok(None);
    };
    user.requester().map(Some)
}

pub(super) async fn rotate_public_id(
    store: &EmbeddedStore,
    who: &PrivateIdHash,
    holder: &Member,
    new: PublicId,
    quota: Option<&CreateQuota>,
    now: &str,
) -> Result<(), RotateError> {
    let (user_pk, old_pk, new_pk) = (
        keys::user(who),
        keys::public(holder.public_id),
        keys::public(new),
    );
    let old = holder.public_id.to_string();
    let marker = encode(&PublicItem::held(who, &holder.username, now))?;
    let (quota, now) = (quota.cloned(), now.to_owned());
    store
        .write(move |db| {
            let txn = db.begin_write().map_err(other)?;
            {
                let mut table = Writes::open(&txn)?;
                if let Some(quota) = &quota
                    && !count_create(&mut table, quota)?
                {
                    return Ok(Err(RotateError::RateLimited));
                }
                if table.get(new_pk.as_str()).map_err(other)?.is_some() {
                    return Ok(Err(RotateError::Taken));
                }
                let mut user = match get_item::<UserItem>(&*table, user_pk.as_str())? {
                    Some(item) => item,
                    None => return Ok(Err(RotateError::NotHolder)),
                };
                if user.public_id != old {
                    return Ok(Err(RotateError::NotHolder));
                }
                user.public_id = new.to_string();
                user.public_id_since = Some(now.clone());
                user.updated_at = now.clone();
                table.insert(user_pk.as_str(), encode(&user)?.as_slice())?;
                table.insert(new_pk.as_str(), marker.as_slice())?;
                let retired = match get_item::<PublicItem>(&*table, old_pk.as_str())? {
                    Some(item) => item,
                    None => return Err(other(anyhow::anyhow!("a held id without its marker"))),
                };
                let retired = PublicItem {
                    private_id_hash: None,
                    username: None,
                    retired_at: Some(now),
                    ..retired
                };
                table.insert(old_pk.as_str(), encode(&retired)?.as_slice())?;
            }
            txn.commit().map_err(other)?;
            Ok(Ok(()))
        })
        .await??;
    store.kick();
    Ok(())
}

pub(super) async fn get_user(
    store: &EmbeddedStore,
    hash: &PrivateIdHash,
) -> Result<Option<UserRecord>, StoreError> {
    let Some(user) = store.get::<UserItem>(keys::user(hash)).await? else {
        return Ok(None);
    };
    user.record(*hash).map(Some)
}

pub(super) async fn get_public(
    store: &EmbeddedStore,
    public_id: PublicId,
) -> Result<Option<PublicEntry>, StoreError> {
    let Some(public) = store.get::<PublicItem>(keys::public(public_id)).await? else {
        return Ok(None);
    };
    public.entry()
}
