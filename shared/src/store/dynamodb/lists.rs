//! The room lists: reading one, and the projection's writes that keep them (offers' copies, newest messages).

use super::*;

pub(super) async fn rooms_of(
    store: &DynamoStore,
    who: &PrivateIdHash,
    max_offers: usize,
) -> Result<Option<RoomsOf>, StoreError> {
    // One query of the partition, newest sort key first: the user item ("_"), the
    // rooms they joined ("ROOM#", at most MAX_ROOMS), then the copies of offers
    // ("OFFER#"), so that a flood of offers cannot crowd out the rest.
    let out = store
        .client
        .query()
        .table_name(&store.table)
        .consistent_read(true)
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", attr::PK)
        .expression_attribute_values(":pk", s(keys::user(who)))
        .scan_index_forward(false)
        .limit(i32::try_from(1 + MAX_ROOMS + max_offers).unwrap_or(i32::MAX))
        .send()
        .await
        .map_err(|e| classify("Query", e))?;
    let mut user = None;
    let (mut joined, mut offers) = (Vec::new(), Vec::new());
    for item in out.items() {
        let sk = text_of(item, attr::SK)?;
        if sk == keys::ITEM {
            user = Some(from_item::<UserItem>(item)?);
        } else if sk.starts_with(keys::ROOM_ENTRY_PREFIX) {
            joined.push(from_item::<JoinedItem>(item)?.joined()?);
        } else if sk.starts_with(keys::OFFER_ENTRY_PREFIX) && offers.len() < max_offers {
            offers.push(from_item::<InboxItem>(item)?.inbox_offer()?);
        }
    }
    let Some(user) = user else {
        return Ok(None);
    };
    Ok(Some(RoomsOf {
        requester: user.requester()?,
        joined,
        offers,
    }))
}

pub(super) async fn offer(
    store: &DynamoStore,
    to: PublicId,
    room: &RoomId,
) -> Result<Option<Offer>, StoreError> {
    let key = key_at(keys::public(to), keys::room_entry(room));
    store
        .get_at(key, None)
        .await?
        .map(|item| from_item::<OfferItem>(&item)?.offer())
        .transpose()
}

pub(super) async fn audience(
    store: &DynamoStore,
    room: &RoomId,
) -> Result<Option<Audience>, StoreError> {
    store
        .get_item(keys::room(room), None)
        .await?
        .map(|item| from_item::<RoomItem>(&item)?.audience())
        .transpose()
}

pub(super) async fn note_message(
    store: &DynamoStore,
    who: &PrivateIdHash,
    room: &RoomId,
    entry: ListEntry<'_>,
    last: &LastMessage,
) -> Result<(), StoreError> {
    let sk = match entry {
        ListEntry::Joined => keys::room_entry(room),
        ListEntry::Offered { opened_at } => keys::offer_entry(opened_at, room),
    };
    // As `LastMessageEntry::takes`: an entry that is there, starts no later than the
    // message, and notes nothing as new.
    let result = store
        .client
        .update_item()
        .table_name(&store.table)
        .set_key(Some(key_at(keys::user(who), sk)))
        .update_expression("SET #at = :at, #ttl = :ttl")
        .condition_expression(
            "attribute_exists(#pk) AND (attribute_not_exists(#since) OR #since <= :at) \
             AND (attribute_not_exists(#at) OR #at < :at)",
        )
        .expression_attribute_names("#pk", attr::PK)
        .expression_attribute_names("#since", attr::SINCE)
        .expression_attribute_names("#at", attr::LAST_MESSAGE_AT)
        .expression_attribute_names("#ttl", attr::LAST_MESSAGE_TTL)
        .expression_attribute_values(":at", s(&last.sent_at))
        .expression_attribute_values(":ttl", n(last.expires_at))
        .send()
        .await;
    unless_condition_failed("UpdateItem", result)
}

pub(super) async fn copy_offer(
    store: &DynamoStore,
    owner: &PrivateIdHash,
    to: PublicId,
    since: &str,
    offer: &Offer,
    last: Option<&LastMessage>,
) -> Result<(), StoreError> {
    let mut copy = InboxItem::new(to, since, offer);
    if let Some(last) = last {
        copy.last_message.set(last);
    }
    let copy_key = key_at(
        keys::user(owner),
        keys::offer_entry(&offer.opened_at, &offer.room),
    );
    let update = |copy: &InboxItem| -> Result<_, StoreError> {
        // Every attribute of the copy; a key the offer no longer carries goes. A
        // noted message moves forward only (the condition; see below).
        let mut update = store
            .client
            .update_item()
            .table_name(&store.table)
            .set_key(Some(copy_key.clone()))
            .expression_attribute_names("#publicKey", attr::PUBLIC_KEY);
        let mut set = Vec::new();
        // In name order: the same copy asks the same request, byte for byte.
        let attributes: std::collections::BTreeMap<_, _> =
            to_item(&keys::user(owner), keys::ITEM, copy)?
                .into_iter()
                .collect();
        for (name, value) in attributes {
            if name == attr::PK || name == attr::SK {
                continue;
            }
            set.push(format!("#{name} = :{name}"));
            update = update
                .expression_attribute_names(format!("#{name}"), &name)
                .expression_attribute_values(format!(":{name}"), value);
        }
        let mut expression = format!("SET {}", set.join(", "));
        if copy.public_key.is_none() {
            expression.push_str(" REMOVE #publicKey");
        }
        if copy.last_message.last_message_at.is_some() {
            update = update.condition_expression(format!(
                "attribute_not_exists(#{at}) OR #{at} <= :{at}",
                at = attr::LAST_MESSAGE_AT
            ));
        }
        Ok(update.update_expression(expression))
    };
    match update(&copy)?.send().await {
        Ok(_) => Ok(()),
        // The copy notes a newer message already (one noted since the newest was
        // read): the copy without it.
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
            copy.last_message = Default::default();
            unless_condition_failed("UpdateItem", update(&copy)?.send().await)
        }
        Err(e) => Err(classify("UpdateItem", e)),
    }
}

pub(super) async fn drop_offer(
    store: &DynamoStore,
    holder: &PrivateIdHash,
    to: PublicId,
    room: &RoomId,
    opened_at: &str,
) -> Result<(), StoreError> {
    store
        .delete_copy(holder, &to.to_string(), keys::offer_entry(opened_at, room))
        .await
}

pub(super) async fn drop_offers_to(
    store: &DynamoStore,
    holder: &PrivateIdHash,
    to: PublicId,
) -> Result<(), StoreError> {
    let to = to.to_string();
    let mut start = None;
    loop {
        let out = store
            .client
            .query()
            .table_name(&store.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .projection_expression("#sk, #to")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .expression_attribute_names("#to", attr::TO)
            .expression_attribute_values(":pk", s(keys::user(holder)))
            .expression_attribute_values(":prefix", s(keys::OFFER_ENTRY_PREFIX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        for item in out.items() {
            if item.get(attr::TO).and_then(|v| v.as_s().ok()) == Some(&to) {
                store
                    .delete_copy(holder, &to, text_of(item, attr::SK)?)
                    .await?;
            }
        }
        match out.last_evaluated_key {
            Some(key) => start = Some(key),
            None => return Ok(()),
        }
    }
}
