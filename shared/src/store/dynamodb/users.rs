//! Users: ids, creating one, the requester of a connect, rotating a public id, and reading one back.

use super::*;

pub(super) async fn reserve_user_ids(store: &DynamoStore, count: u64) -> Result<u64, StoreError> {
    let out = store
        .client
        .update_item()
        .table_name(&store.table)
        .set_key(Some(key(keys::USER_COUNTER)))
        .update_expression("ADD #value :count")
        .expression_attribute_names("#value", attr::VALUE)
        .expression_attribute_values(":count", n(count))
        .return_values(ReturnValue::UpdatedNew)
        .send()
        .await
        .map_err(|e| classify("UpdateItem", e))?;
    let counter: CounterItem = from_item(out.attributes().unwrap_or(&Item::new()))?;
    Ok(counter.value)
}

pub(super) async fn insert_user(
    store: &DynamoStore,
    user: &UserRecord,
    quota: Option<&CreateQuota>,
) -> Result<(), InsertUserError> {
    let mut writes = Vec::new();
    for item in [
        to_item(
            &keys::user(&user.private_id_hash),
            keys::ITEM,
            &UserItem::new(user),
        )?,
        to_item(
            &keys::public(user.public_id),
            keys::ITEM,
            &PublicItem::new(user),
        )?,
    ] {
        let put = Put::builder()
            .table_name(&store.table)
            .set_item(Some(item))
            .condition_expression(format!("attribute_not_exists({})", attr::PK))
            .build()
            .map_err(build_error)?;
        writes.push(TransactWriteItem::builder().put(put).build());
    }
    // The third item, when limited: the source address's count for the window.
    const QUOTA_INDEX: usize = 2;
    if let Some(quota) = quota {
        writes.push(
            TransactWriteItem::builder()
                .update(store.quota_update(quota)?)
                .build(),
        );
    }
    // A transaction cancelled because another held one of its items (two creates
    // from one address at once) wrote nothing: tried again, twice at most.
    let mut conflicts = 0;
    loop {
        // The SDK retries a transaction whose answer was lost; the token makes such
        // a retry a no-op instead of a "condition failed" on our own first write,
        // which would leave that user behind and create another.
        let token = crate::domain::random::hex(16).map_err(StoreError::Other)?;
        let result = store
            .client
            .transact_write_items()
            .client_request_token(token)
            .set_transact_items(Some(writes.clone()))
            .send()
            .await;
        return match result {
            Ok(_) => Ok(()),
            // The address's count first: drawing other ids would not help.
            Err(e) if condition_failed_at(&e, QUOTA_INDEX) => Err(InsertUserError::RateLimited),
            // A failed condition on a user item: an id is taken.
            Err(e) if cancelled_for(&e, "ConditionalCheckFailed") => Err(InsertUserError::Taken),
            Err(e) if cancelled_for(&e, "TransactionConflict") => {
                conflicts += 1;
                if conflicts < 3 {
                    continue;
                }
                Err(conflict(&e).into())
            }
            Err(e) => Err(classify("TransactWriteItems", e).into()),
        };
    }
}

pub(super) async fn member_for_connect(
    store: &DynamoStore,
    requester: &PrivateIdHash,
) -> Result<Option<Requester>, StoreError> {
    // The user item but its rate slots and token: what a room names its member by,
    // since when, their key, and the open rooms they joined (whether this connect
    // joins anew).
    let item = store
        .get_item(
            keys::user(requester),
            Some((
                "#id, #public, #name, #created, #updated, #since, #key, #rooms, #cr, #ra",
                &[
                    ("#cr", attr::CONNECTS),
                    ("#ra", attr::ANNOUNCED),
                    ("#id", attr::ID),
                    ("#updated", attr::UPDATED_AT),
                    ("#public", attr::PUBLIC_ID),
                    ("#name", attr::USERNAME),
                    ("#created", attr::CREATED_AT),
                    ("#since", attr::PUBLIC_ID_SINCE),
                    ("#key", attr::PUBLIC_KEY),
                    ("#rooms", attr::ROOMS),
                ],
            )),
        )
        .await?;
    let Some(item) = item else {
        return Ok(None);
    };
    // The projection holds what the user item's `requester` needs; the rest of the
    // item (rate slots, token) is left on the server.
    from_item::<UserItem>(&item)?.requester().map(Some)
}

pub(super) async fn rotate_public_id(
    store: &DynamoStore,
    who: &PrivateIdHash,
    holder: &Member,
    new: PublicId,
    quota: Option<&CreateQuota>,
    now: &str,
) -> Result<(), RotateError> {
    let old = holder.public_id;
    let marker = Put::builder()
        .table_name(&store.table)
        .set_item(Some(to_item(
            &keys::public(new),
            keys::ITEM,
            &PublicItem::held(who, &holder.username, now),
        )?))
        .condition_expression(format!("attribute_not_exists({})", attr::PK))
        .build()
        .map_err(build_error)?;
    let user_write = Update::builder()
        .table_name(&store.table)
        .set_key(Some(key(keys::user(who))))
        .update_expression("SET #public = :new, #since = :now, #updated = :now")
        .condition_expression("#public = :old")
        .expression_attribute_names("#public", attr::PUBLIC_ID)
        .expression_attribute_names("#since", attr::PUBLIC_ID_SINCE)
        .expression_attribute_names("#updated", attr::UPDATED_AT)
        .expression_attribute_values(":new", s(new.to_string()))
        .expression_attribute_values(":old", s(old.to_string()))
        .expression_attribute_values(":now", s(now))
        .build()
        .map_err(build_error)?;
    // The old marker stays, so the id is never given out again, but names nobody.
    let retire = Update::builder()
        .table_name(&store.table)
        .set_key(Some(key(keys::public(old))))
        .update_expression("SET #retired = :now REMOVE #hash, #name")
        .condition_expression("attribute_exists(#pk)")
        .expression_attribute_names("#pk", attr::PK)
        .expression_attribute_names("#retired", attr::RETIRED_AT)
        .expression_attribute_names("#hash", attr::PRIVATE_ID_HASH)
        .expression_attribute_names("#name", attr::USERNAME)
        .expression_attribute_values(":now", s(now))
        .build()
        .map_err(build_error)?;
    let mut writes = vec![
        TransactWriteItem::builder().put(marker).build(),
        TransactWriteItem::builder().update(user_write).build(),
        TransactWriteItem::builder().update(retire).build(),
    ];
    const QUOTA_INDEX: usize = 3;
    if let Some(quota) = quota {
        writes.push(
            TransactWriteItem::builder()
                .update(store.quota_update(quota)?)
                .build(),
        );
    }
    let mut conflicts = 0;
    loop {
        let result = store
            .client
            .transact_write_items()
            .client_request_token(crate::domain::random::hex(16).map_err(StoreError::Other)?)
            .set_transact_items(Some(writes.clone()))
            .send()
            .await;
        return match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed_at(&e, QUOTA_INDEX) => Err(RotateError::RateLimited),
            Err(e) if condition_failed_at(&e, 0) => Err(RotateError::Taken),
            Err(e) if condition_failed_at(&e, 1) => Err(RotateError::NotHolder),
            // The projection checking the old id's marker at that moment: once more
            // (nothing was written).
            Err(e) if cancelled_for(&e, "TransactionConflict") && conflicts < 1 => {
                conflicts += 1;
                continue;
            }
            Err(e) if cancelled_for(&e, "TransactionConflict") => Err(conflict(&e).into()),
            Err(e) => Err(classify("TransactWriteItems", e).into()),
        };
    }
}

pub(super) async fn get_user(
    store: &DynamoStore,
    hash: &PrivateIdHash,
) -> Result<Option<UserRecord>, StoreError> {
    let Some(item) = store.get_item(keys::user(hash), None).await? else {
        return Ok(None);
    };
    from_item::<UserItem>(&item)?.record(*hash).map(Some)
}

pub(super) async fn get_public(
    store: &DynamoStore,
    public_id: PublicId,
) -> Result<Option<PublicEntry>, StoreError> {
    let Some(item) = store.get_item(keys::public(public_id), None).await? else {
        return Ok(None);
    };
    from_item::<PublicItem>(&item)?.entry()
}
