//! Rooms: joining one (the room, its sides, the joiner's entries), membership, blocking.

use super::*;

pub(super) async fn join_room(
    store: &DynamoStore,
    joining: &Joining<'_>,
) -> Result<Announce, JoinError> {
    let Joining {
        room,
        side,
        joiner,
        requester,
        target,
        max_rooms,
        connects,
        offer_expires_at: _,
        now,
    } = joining.clone();
    let entry = SideEntry::new(joiner, &requester.member, &requester.since, target, now);
    // The room in the joiner's own list, with the public id they connected to ...
    let joined_write = Update::builder()
        .table_name(&store.table)
        .key(attr::PK, s(keys::user(joiner)))
        .key(attr::SK, s(keys::room_entry(room)))
        .update_expression(
            "SET #type = :type, #room = :room, #peer = :peer, #since = :since, \
             #joined = if_not_exists(#joined, :now)",
        )
        .expression_attribute_names("#type", attr::TYPE)
        .expression_attribute_names("#room", attr::ROOM_ID)
        .expression_attribute_names("#peer", attr::PEER)
        .expression_attribute_names("#since", attr::SINCE)
        .expression_attribute_names("#joined", attr::JOINED_AT)
        .expression_attribute_values(":type", to_attribute(&Kind::Joined)?)
        .expression_attribute_values(":room", s(room.as_str()))
        .expression_attribute_values(":peer", s(target.to_string()))
        .expression_attribute_values(":since", s(&requester.since))
        .expression_attribute_values(":now", s(now))
        .build()
        .map_err(build_error)?;
    // ... and offered in the target's inbox (at the latest connect), with the joiner's
    // key when they registered one: written alike whoever holds the target.
    let mut offer_set =
        "SET #type = :type, #room = :room, #from = :from, #opened = :now, #ttl = :ttl".to_owned();
    let mut offer_write = Update::builder();
    if let Some(public_key) = requester.public_key {
        offer_set.push_str(", #key = :key");
        offer_write = offer_write
            .expression_attribute_names("#key", attr::PUBLIC_KEY)
            .expression_attribute_values(":key", s(public_key.to_string()));
    }
    let offer_write = offer_write
        .table_name(&store.table)
        .key(attr::PK, s(keys::public(target)))
        .key(attr::SK, s(keys::room_entry(room)))
        .update_expression(offer_set)
        .expression_attribute_names("#type", attr::TYPE)
        .expression_attribute_names("#room", attr::ROOM_ID)
        .expression_attribute_names("#from", attr::FROM)
        .expression_attribute_names("#opened", attr::OPENED_AT)
        .expression_attribute_names("#ttl", attr::TTL)
        .expression_attribute_values(":ttl", n(joining.offer_expires_at))
        .expression_attribute_values(":type", to_attribute(&Kind::Offer)?)
        .expression_attribute_values(":room", s(room.as_str()))
        .expression_attribute_values(":from", to_attribute(&MemberEntry::new(&requester.member))?)
        .expression_attribute_values(":now", s(now))
        .build()
        .map_err(build_error)?;
    let room_write = Update::builder()
        .table_name(&store.table)
        .set_key(Some(key(keys::room(room))))
        .update_expression(
            "SET #type = :type, #side = :member, \
             #created = if_not_exists(#created, :now), #updated = :now \
             REMOVE rl, rt",
        )
        // A blocked room never reopens.
        .condition_expression("attribute_not_exists(#closed)")
        .expression_attribute_names("#closed", attr::CLOSED_AT)
        .expression_attribute_names("#type", attr::TYPE)
        .expression_attribute_names("#side", side_attr(side))
        .expression_attribute_names("#created", attr::CREATED_AT)
        .expression_attribute_names("#updated", attr::UPDATED_AT)
        .expression_attribute_values(":type", to_attribute(&Kind::Room)?)
        .expression_attribute_values(":member", to_attribute(&entry)?)
        .expression_attribute_values(":now", s(now))
        .build()
        .map_err(build_error)?;
    // (`REMOVE`: the rate maps rooms held before counts moved to the user item.)
    // The joiner's own list of open rooms, which their messages are checked against,
    // and their connect counter. A first join adds the room's tag and counts against
    // the cap (blocked rooms too: `joins` never goes down), conditioned on the tag
    // being new and the count under the cap; a join again is conditioned on the tag
    // being still there. Either counts the connect: on from the counter the joiner's
    // read found in this window, or anew in a later one, conditioned on the counter
    // being as read (a concurrent connect's change is read from the refusal). A
    // joiner with no user item fails every condition.
    let joining_again = requester.rooms.contains(&room.tag());
    let mut counter = requester.connects;
    let mut announced = requester.announced.clone();
    let mut conflicts = 0;
    loop {
        let window = counter
            .and_then(|c| rate::later_of(connects, c))
            .unwrap_or(connects);
        let (start, full) = (rate::start(window), rate::full(window));
        let current = counter.is_some_and(|c| c >= start);
        if counter.is_some_and(|c| c >= full) {
            return Err(JoinError::RateLimited);
        }
        // The announcement, by the marks of this window (none in a new one).
        let none = BTreeSet::new();
        let marks = if current { &announced } else { &none };
        let (announce, mark) = crate::domain::rooms::announcing(marks, room, !joining_again);
        let mut sets = Vec::new();
        let mut adds = Vec::new();
        let count_condition = if current {
            sets.push("#cr = #cr + :one");
            "#cr >= :start AND #cr < :full"
        } else {
            sets.push("#cr = :first");
            "(attribute_not_exists(#cr) OR #cr < :start)"
        };
        match (&mark, current) {
            (Some(_), true) => adds.push("#ra :mark"),
            (Some(_), false) => sets.push("#ra = :mark"),
            (None, _) => {}
        }
        if !joining_again {
            adds.extend(["#rooms :rooms", "#joins :one"]);
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !adds.is_empty() {
            expression = format!("ADD {} {expression}", adds.join(", "));
        }
        let mut update = Update::builder()
            .table_name(&store.table)
            .set_key(Some(key(keys::user(joiner))))
            .update_expression(expression)
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#rooms", attr::ROOMS)
            .expression_attribute_names("#cr", attr::CONNECTS)
            .expression_attribute_values(":room", room_tag(room)?)
            .expression_attribute_values(":start", n(start))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(mark) = &mark {
            update = update
                .expression_attribute_names("#ra", attr::ANNOUNCED)
                .expression_attribute_values(
                    ":mark",
                    aws_sdk_dynamodb::types::AttributeValue::Ss(vec![mark.clone()]),
                );
        }
        if current || !joining_again {
            update = update.expression_attribute_values(":one", n(1));
        }
        update = if current {
            update.expression_attribute_values(":full", n(full))
        } else {
            update.expression_attribute_values(":first", n(start + 1))
        };
        update = if joining_again {
            update.condition_expression(format!(
                "attribute_exists(#pk) AND contains(#rooms, :room) AND {count_condition}"
            ))
        } else {
            update
                .condition_expression(format!(
                    "attribute_exists(#pk) AND NOT contains(#rooms, :room) \
                     AND (attribute_not_exists(#joins) OR #joins < :max) AND {count_condition}"
                ))
                .expression_attribute_names("#joins", attr::JOINS)
                .expression_attribute_values(":rooms", room_tags(room)?)
                .expression_attribute_values(":max", n(max_rooms))
        };
        let joiner_write = TransactWriteItem::builder()
            .update(update.build().map_err(build_error)?)
            .build();
        // Every write is idempotent, so a transaction cancelled because another one
        // held an item (the peer connecting at the same moment, the joiner posting)
        // is tried once more before answering 503.
        let result = store
            .client
            .transact_write_items()
            .client_request_token(crate::domain::random::hex(16).map_err(StoreError::Other)?)
            .transact_items(
                TransactWriteItem::builder()
                    .update(room_write.clone())
                    .build(),
            )
            .transact_items(joiner_write)
            .transact_items(
                TransactWriteItem::builder()
                    .update(joined_write.clone())
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .update(offer_write.clone())
                    .build(),
            )
            .send()
            .await;
        return match result {
            Ok(_) => Ok(announce),
            Err(e) if condition_failed_at(&e, 0) => Err(JoinError::Closed),
            // The joiner's condition: no user at all; a counter changed since it was
            // read (a concurrent connect: counted again from what the refusal shows);
            // joined at the same moment by another connect of theirs (which wrote
            // what this one would have); closed in between (the tag of a room joined
            // again is gone); or the cap.
            Err(e) if cancelled_for(&e, "ConditionalCheckFailed") => match failed_item(&e, 1) {
                None => Err(JoinError::NoSuchJoiner),
                Some(old) if connect_counter(&old) != counter => {
                    conflicts += 1;
                    if conflicts > 3 {
                        return Err(JoinError::Store(StoreError::Unavailable(anyhow::anyhow!(
                            "the connect counter kept changing"
                        ))));
                    }
                    counter = connect_counter(&old);
                    announced = announced_marks(&old);
                    continue;
                }
                // (That connect announced the room.)
                Some(old) if !joining_again && lists_room(&old, room) => Ok(Announce::Skip),
                Some(_) if joining_again => Err(JoinError::Closed),
                Some(_) => Err(JoinError::TooManyRooms),
            },
            Err(e) if cancelled_for(&e, "TransactionConflict") => {
                conflicts += 1;
                if conflicts < 2 {
                    continue;
                }
                Err(conflict(&e).into())
            }
            Err(e) => Err(classify("TransactWriteItems", e).into()),
        };
    }
}

pub(super) async fn room_member(
    store: &DynamoStore,
    room: &RoomId,
    who: &PrivateIdHash,
) -> Result<Option<Membership>, StoreError> {
    let Some(item) = store.get_item(keys::room(room), None).await? else {
        return Ok(None);
    };
    from_item::<RoomItem>(&item)?.membership(who)
}

pub(super) async fn close_room(
    store: &DynamoStore,
    room: &RoomId,
    blocker: &PrivateIdHash,
    inboxes: &[PublicId],
    peer: Option<&PrivateIdHash>,
    now: &str,
) -> Result<bool, StoreError> {
    let mut room_write = Update::builder()
        .table_name(&store.table)
        .set_key(Some(key(keys::room(room))))
        .update_expression("SET #closed = if_not_exists(#closed, :now)")
        .expression_attribute_names("#closed", attr::CLOSED_AT)
        .expression_attribute_values(":now", s(now));
    if peer.is_none() {
        // No peer when the caller read the room: still none, or they would be left
        // open (the caller reads again).
        room_write = room_write
            .condition_expression("attribute_not_exists(#low) OR attribute_not_exists(#high)")
            .expression_attribute_names("#low", attr::LOW)
            .expression_attribute_names("#high", attr::HIGH);
    }
    let room_write = room_write.build().map_err(build_error)?;
    let mut writes = vec![TransactWriteItem::builder().update(room_write).build()];
    for inbox in inboxes {
        let offer_delete = Delete::builder()
            .table_name(&store.table)
            .key(attr::PK, s(keys::public(*inbox)))
            .key(attr::SK, s(keys::room_entry(room)))
            .build()
            .map_err(build_error)?;
        writes.push(TransactWriteItem::builder().delete(offer_delete).build());
    }
    // The room leaves each member's open rooms, which their messages are checked
    // against, and their joined entry says it is closed; only a user who joined the
    // room is written.
    for who in [Some(blocker), peer].into_iter().flatten() {
        let user_write = Update::builder()
            .table_name(&store.table)
            .set_key(Some(key(keys::user(who))))
            .update_expression("DELETE #rooms :room")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#rooms", attr::ROOMS)
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_values(":room", room_tags(room)?)
            .build()
            .map_err(build_error)?;
        let joined_write = Update::builder()
            .table_name(&store.table)
            .key(attr::PK, s(keys::user(who)))
            .key(attr::SK, s(keys::room_entry(room)))
            .update_expression("SET #closed = if_not_exists(#closed, :now)")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#closed", attr::CLOSED_AT)
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_values(":now", s(now))
            .build()
            .map_err(build_error)?;
        writes.push(TransactWriteItem::builder().update(user_write).build());
        writes.push(TransactWriteItem::builder().update(joined_write).build());
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
            Ok(_) => Ok(true),
            Err(e) if condition_failed_at(&e, 0) => Ok(false),
            Err(e) if cancelled_for(&e, "TransactionConflict") && conflicts < 1 => {
                conflicts += 1;
                continue;
            }
            Err(e) if cancelled_for(&e, "TransactionConflict") => Err(conflict(&e)),
            Err(e) => Err(classify("TransactWriteItems", e)),
        };
    }
}

pub(super) async fn room_members(
    store: &DynamoStore,
    room: &RoomId,
) -> Result<Option<Vec<(PrivateIdHash, Member)>>, StoreError> {
    let Some(item) = store.get_item(keys::room(room), None).await? else {
        return Ok(None);
    };
    from_item::<RoomItem>(&item)?.members().map(Some)
}
