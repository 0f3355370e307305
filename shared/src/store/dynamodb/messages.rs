//! Messages: counting one against the sender's limit (and remembering it for exactly-once sends), keeping it, and the history.

use super::*;

pub(super) async fn count_message(
    store: &DynamoStore,
    room: &RoomId,
    who: &PrivateIdHash,
    requested: RateWindow,
    sent: &LastSent,
) -> Result<Allowance, StoreError> {
    if requested.limit == 0 {
        return Ok(Allowance::Limited);
    }
    let mut window = requested;
    // A retry of the sender's last message (theirs, or the SDK's of an update whose
    // answer was lost) finds it remembered, and is not counted again.
    let count = Count { who, room, sent };
    // Usually one update; a stale slot takes a restart, and a restart that loses a
    // race (or an update that meets the user's connect transaction) one more turn.
    for _ in 0..3 {
        let (start, full) = (rate::start(window), rate::full(window));
        // Every message but the first after a pause of a multiple of RATE_SLOTS
        // windows: the slot is this window's count, or absent.
        let counted = store
            .count_update(
                &count,
                window,
                "#slot = if_not_exists(#slot, :start) + :one",
                "attribute_not_exists(#slot) OR (#slot >= :start AND #slot < :full)",
                &[(":start", start), (":full", full), (":one", 1)],
            )
            .await?;
        let old = match counted {
            Ok(item) => return allowed(&item),
            Err(Some(old)) => old,
            Err(None) => continue,
        };
        match rate_slots::after_refusal(window, found(&old, room, window, sent)) {
            // Not an open room of theirs: a closed one (one more read, on this
            // refusal only), or none.
            Next::NotMember => {
                let membership = store.room_member(room, who).await?;
                return Ok(if membership.is_some_and(|m| m.closed) {
                    Allowance::Closed
                } else {
                    Allowance::NotMember
                });
            }
            Next::SentBefore => return sent_before(&old),
            Next::Limited => return Ok(Allowance::Limited),
            Next::CountIn(later) => {
                window = later;
                continue;
            }
            Next::Restart => {}
        }
        let restarted = store
            .count_update(
                &count,
                window,
                "#slot = :first",
                "attribute_not_exists(#slot) OR #slot < :start",
                &[(":first", start + 1), (":start", start)],
            )
            .await?;
        match restarted {
            Ok(item) => return allowed(&item),
            // A retry (ours of a lost answer, or the sender's): counted already.
            Err(Some(old)) if found(&old, room, window, sent).sent_before => {
                return sent_before(&old);
            }
            // Another message restarted the slot first (or the connect transaction
            // held the item): count again.
            Err(_) => continue,
        }
    }
    Err(StoreError::Unavailable(anyhow::anyhow!(
        "the message counter kept changing under concurrent updates"
    )))
}

pub(super) async fn republish(
    store: &DynamoStore,
    who: &PrivateIdHash,
    last: &LastSent,
    next: &LastSent,
) -> Result<bool, StoreError> {
    let updated = store
        .client
        .update_item()
        .table_name(&store.table)
        .set_key(Some(key(keys::user(who))))
        .update_expression("SET #lm = :next")
        .condition_expression("#lm = :last")
        .expression_attribute_names("#lm", attr::LAST_MESSAGE)
        .expression_attribute_values(":last", s(last.encode()))
        .expression_attribute_values(":next", s(next.encode()))
        .send()
        .await;
    match updated {
        Ok(_) => Ok(true),
        Err(e) => match e.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(false),
            // The user's connect transaction held the item: not answered 204 unpublished,
            // the client tries again.
            Some(UpdateItemError::TransactionConflictException(_)) => Err(StoreError::Unavailable(
                anyhow::anyhow!("the sender's item was held by a transaction"),
            )),
            _ => Err(classify("UpdateItem", e)),
        },
    }
}

pub(super) async fn keep_message(
    store: &DynamoStore,
    room: &RoomId,
    message: &KeptMessage,
    expires_at: u64,
    keeping: Keeping,
) -> Result<(), StoreError> {
    let item = to_item(
        &keys::room(room),
        &keys::message(&message.cursor),
        &MessageItem::new(message, expires_at),
    )?;
    let mut put = store
        .client
        .put_item()
        .table_name(&store.table)
        .set_item(Some(item));
    if keeping == Keeping::Again {
        put = put
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", attr::PK);
    }
    match put.send().await {
        Ok(_) => Ok(()),
        // Kept already, by the first attempt: it stays as it was.
        Err(e) if keeping == Keeping::Again
            && matches!(
                e.as_service_error(),
                Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(_))
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(classify("PutItem", e)),
    }
}

pub(super) async fn list_messages(
    store: &DynamoStore,
    room: &RoomId,
    after: &Cursor,
    limit: usize,
    now_secs: u64,
) -> Result<HistoryPage, StoreError> {
    // Message sort keys all have one length, so `MSG#<after> ` sorts after the item
    // at `after` and before every later one: BETWEEN then excludes exactly `after`.
    // One item more than the page says whether another page follows.
    let out = store
        .client
        .query()
        .table_name(&store.table)
        .consistent_read(true)
        .key_condition_expression("#pk = :pk AND #sk BETWEEN :after AND :end")
        .expression_attribute_names("#pk", attr::PK)
        .expression_attribute_names("#sk", attr::SK)
        .expression_attribute_values(":pk", s(keys::room(room)))
        .expression_attribute_values(":after", s(format!("{} ", keys::message(after))))
        .expression_attribute_values(":end", s(format!("{}~", keys::MESSAGE_PREFIX)))
        .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
        .send()
        .await
        .map_err(|e| classify("Query", e))?;
    let mut read = Vec::new();
    for item in out.items().iter().take(limit + 1) {
        let sk = text_of(item, attr::SK)?;
        let message: MessageItem = from_item(item)?;
        read.push((message.ttl, message.kept(&sk)?));
    }
    Ok(crate::store::history_page(read, limit, now_secs))
}

pub(super) async fn list_messages_before(
    store: &DynamoStore,
    room: &RoomId,
    floor: &Cursor,
    before: Option<&Cursor>,
    limit: usize,
    now_secs: u64,
) -> Result<HistoryPage, StoreError> {
    // Newest first, from `before` (read too, as BETWEEN is inclusive, and left out:
    // one item more read for it) down to just past `floor`.
    let high = before.map_or(format!("{}~", keys::MESSAGE_PREFIX), keys::message);
    let out = store
        .client
        .query()
        .table_name(&store.table)
        .consistent_read(true)
        .key_condition_expression("#pk = :pk AND #sk BETWEEN :floor AND :before")
        .expression_attribute_names("#pk", attr::PK)
        .expression_attribute_names("#sk", attr::SK)
        .expression_attribute_values(":pk", s(keys::room(room)))
        .expression_attribute_values(":floor", s(format!("{} ", keys::message(floor))))
        .expression_attribute_values(":before", s(high))
        .scan_index_forward(false)
        .limit(i32::try_from(limit + 2).unwrap_or(i32::MAX))
        .send()
        .await
        .map_err(|e| classify("Query", e))?;
    let mut read = Vec::new();
    for item in out.items() {
        let sk = text_of(item, attr::SK)?;
        let message: MessageItem = from_item(item)?;
        let kept = message.kept(&sk)?;
        if Some(&kept.cursor) != before && read.len() <= limit {
            read.push((message.ttl, kept));
        }
    }
    Ok(crate::store::history_page(read, limit, now_secs))
}

pub(super) async fn newest_message(
    store: &DynamoStore,
    room: &RoomId,
) -> Result<Option<LastMessage>, StoreError> {
    let out = store
        .client
        .query()
        .table_name(&store.table)
        .consistent_read(true)
        .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
        .expression_attribute_names("#pk", attr::PK)
        .expression_attribute_names("#sk", attr::SK)
        .expression_attribute_values(":pk", s(keys::room(room)))
        .expression_attribute_values(":prefix", s(keys::MESSAGE_PREFIX))
        .scan_index_forward(false)
        .limit(1)
        .send()
        .await
        .map_err(|e| classify("Query", e))?;
    out.items()
        .first()
        .map(|item| {
            let message: MessageItem = from_item(item)?;
            Ok(LastMessage {
                sent_at: message.sent_at,
                expires_at: message.ttl,
            })
        })
        .transpose()
}

impl DynamoStore {
    /// One counting update of `who`'s slot for `window`, conditioned on membership of
    /// `room`, on the slot (`condition`) and on not having counted already (`token`).
    /// `Ok` carries the updated item; `Err(Some(old))` a refusal and what the item held.
    async fn count_update(
        &self,
        count: &Count<'_>,
        window: RateWindow,
        set: &str,
        condition: &str,
        values: &[(&str, u64)],
    ) -> Result<Result<Item, Option<Item>>, StoreError> {
        let Count { who, room, sent } = *count;
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::user(who))))
            .update_expression(rate_slots::update_expression(window, set))
            .condition_expression(format!(
                "contains({rooms}, :room) AND ({condition}) \
                 AND (attribute_not_exists({lm}) OR NOT begins_with({lm}, :sent_id))",
                rooms = attr::ROOMS,
                lm = attr::LAST_MESSAGE,
            ))
            .expression_attribute_names("#slot", rate_slots::slot(window))
            .expression_attribute_values(":room", room_tag(room)?)
            .expression_attribute_values(":sent", s(sent.encode()))
            .expression_attribute_values(":sent_id", s(sent.id_part()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (name, value) in values {
            request = request.expression_attribute_values(*name, n(value));
        }
        match request.send().await {
            Ok(out) => Ok(Ok(out.attributes.unwrap_or_default())),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(Err(Some(failed.item().cloned().unwrap_or_default())))
                }
                // The user's connect transaction held the item: nothing was written.
                Some(UpdateItemError::TransactionConflictException(_)) => Ok(Err(None)),
                _ => Err(classify("UpdateItem", e)),
            },
        }
    }
}

/// One message being counted: its sender, room and request token.
#[derive(Clone, Copy)]
struct Count<'a> {
    who: &'a PrivateIdHash,
    room: &'a RoomId,
    sent: &'a LastSent,
}

/// The sender as a room names them, from their user item after a count.
fn allowed(item: &Item) -> Result<Allowance, StoreError> {
    member_of(item).map(Allowance::Allowed)
}

fn sent_before(item: &Item) -> Result<Allowance, StoreError> {
    let first = last_sent(item).ok_or_else(|| corrupt("a retry found no last message"))?;
    Ok(Allowance::SentBefore {
        member: member_of(item)?,
        first,
    })
}

/// What `who`'s user item remembers of their last message.
fn last_sent(item: &Item) -> Option<LastSent> {
    let text = item.get(attr::LAST_MESSAGE)?.as_s().ok()?;
    LastSent::decode(text)
}

/// What a refused count found in the user item (which may be missing: then empty).
fn found(old: &Item, room: &RoomId, window: RateWindow, sent: &LastSent) -> Found {
    Found {
        joined: lists_room(old, room),
        sent_before: last_sent(old).is_some_and(|last| last.same_id(sent)),
        counter: old
            .get(&rate_slots::slot(window))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok()),
    }
}
