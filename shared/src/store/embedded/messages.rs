//! Messages: counting one against the sender's limit (and remembering it for exactly-once sends), keeping it, and the history.

use super::*;

pub(super) async fn count_message(
    store: &EmbeddedStore,
    room: &RoomId,
    who: &PrivateIdHash,
    requested: RateWindow,
    sent: &LastSent,
) -> Result<Allowance, StoreError> {
    let (key, room_pk, tag) = (keys::user(who), keys::room(room), room.tag());
    let (who, sent) = (*who, *sent);
    store
        .write(move |db| {
            let txn = db.begin_write().map_err(other)?;
            let allowance = {
                let mut table = Writes::open(&txn)?;
                let mut user = match get_item::<UserItem>(&*table, key.as_str())? {
                    Some(item) => item,
                    None => return Ok(Allowance::NotMember),
                };
                if !user.rooms.contains(&tag) {
                    // Not an open room of theirs: a closed one, or none.
                    let closed = get_item::<RoomItem>(&*table, room_pk.as_str())?
                        .map(|item| item.membership(&who))
                        .transpose()?
                        .flatten()
                        .is_some_and(|m| m.closed);
                    return Ok(if closed {
                        Allowance::Closed
                    } else {
                        Allowance::NotMember
                    });
                }
                let member = user.member()?;
                let last = user.lm.as_deref().and_then(LastSent::decode);
                if let Some(first) = last.filter(|last| last.same_id(&sent)) {
                    return Ok(Allowance::SentBefore { member, first });
                }
                let counter = user.rl;
                let window = counter
                    .and_then(|c| rate::later_of(requested, c))
                    .unwrap_or(requested);
                let next = match counter {
                    Some(c) if c >= rate::full(window) => None,
                    Some(c) if c >= rate::start(window) => Some(c + 1),
                    _ if window.limit == 0 => None,
                    _ => Some(rate::start(window) + 1),
                };
                let Some(next) = next else {
                    return Ok(Allowance::Limited);
                };
                user.rl = Some(next);
                user.lm = Some(sent.encode());
                table.insert(key.as_str(), encode(&user)?.as_slice())?;
                Allowance::Allowed(member)
            };
            txn.commit().map_err(other)?;
            Ok(allowance)
        })
        .await
}

pub(super) async fn republish(
    store: &EmbeddedStore,
    who: &PrivateIdHash,
    last: &LastSent,
    next: &LastSent,
) -> Result<bool, StoreError> {
    let (key, last, next) = (keys::user(who), last.encode(), next.encode());
    store
        .write(move |db| {
            let txn = db.begin_write().map_err(other)?;
            {
                let mut table = Writes::open(&txn)?;
                let mut user = match get_item::<UserItem>(&*table, key.as_str())? {
                    Some(user) if user.lm.as_deref() == Some(last.as_str()) => user,
                    _ => return Ok(false),
                };
                user.lm = Some(next);
                table.insert(key.as_str(), encode(&user)?.as_slice())?;
            }
            txn.commit().map_err(other)?;
            Ok(true)
        })
        .await
}

pub(super) async fn keep_message(
    store: &EmbeddedStore,
    room: &RoomId,
    message: &KeptMessage,
    expires_at: u64,
    keeping: Keeping,
) -> Result<(), StoreError> {
    let key = keys::storage_key(&keys::room(room), &keys::message(&message.cursor));
    let item = encode(&MessageItem::new(message, expires_at))?;
    store
        .write(move |db| {
            let txn = db.begin_write().map_err(other)?;
            {
                let mut table = Writes::open(&txn)?;
                // Kept already, by the first attempt: it stays as it was.
                if keeping == Keeping::Again && table.get(key.as_str()).map_err(other)?.is_some() {
                    return Ok(());
                }
                table.insert(key.as_str(), item.as_slice())?;
            }
            txn.commit().map_err(other)
        })
        .await?;
    store.kick();
    Ok(())
}

pub(super) async fn list_messages(
    store: &EmbeddedStore,
    room: &RoomId,
    after: &Cursor,
    limit: usize,
    now_secs: u64,
) -> Result<HistoryPage, StoreError> {
    let pk = keys::room(room);
    // As the DynamoDB query: from just past `after` (message keys all have one
    // length), one item more than the page.
    let from = format!("{} ", keys::storage_key(&pk, &keys::message(after)));
    let end = keys::storage_key(&pk, &format!("{}~", keys::MESSAGE_PREFIX));
    let prefix = format!("{pk} ");
    store
        .run(move |db| {
            let txn = db.begin_read().map_err(other)?;
            let table = txn.open_table(ITEMS).map_err(other)?;
            let mut read = Vec::new();
            for entry in table
                .range(from.as_str()..end.as_str())
                .map_err(other)?
                .take(limit + 1)
            {
                let (key, value) = entry.map_err(other)?;
                let key = key.value();
                let sk = key.strip_prefix(prefix.as_str()).unwrap_or(key);
                let item: MessageItem = serde_json::from_slice(value.value()).map_err(other)?;
                read.push((item.ttl, item.kept(sk)?));
            }
            Ok(crate::store::history_page(read, limit, now_secs))
        })
        .await
}

pub(super) async fn list_messages_before(
    store: &EmbeddedStore,
    room: &RoomId,
    floor: &Cursor,
    before: Option<&Cursor>,
    limit: usize,
    now_secs: u64,
) -> Result<HistoryPage, StoreError> {
    let pk = keys::room(room);
    // As the DynamoDB query: newest first, from `before` (left out) down to just
    // past `floor`.
    let low = format!("{} ", keys::storage_key(&pk, &keys::message(floor)));
    let high = before.map_or(
        keys::storage_key(&pk, &format!("{}~", keys::MESSAGE_PREFIX)),
        |c| keys::storage_key(&pk, &keys::message(c)),
    );
    let before = before.cloned();
    let prefix = format!("{pk} ");
    store
        .run(move |db| {
            let txn = db.begin_read().map_err(other)?;
            let table = txn.open_table(ITEMS).map_err(other)?;
            let mut read = Vec::new();
            if low > high {
                return Ok(crate::store::history_page(read, limit, now_secs));
            }
            for entry in table
                .range(low.as_str()..=high.as_str())
                .map_err(other)?
                .rev()
            {
                let (key, value) = entry.map_err(other)?;
                let key = key.value();
                let sk = key.strip_prefix(prefix.as_str()).unwrap_or(key);
                let item: MessageItem = serde_json::from_slice(value.value()).map_err(other)?;
                let kept = item.kept(sk)?;
                if Some(&kept.cursor) == before.as_ref() {
                    continue;
                }
                read.push((item.ttl, kept));
                if read.len() > limit {
                    break;
                }
            }
            Ok(crate::store::history_page(read, limit, now_secs))
        })
        .await
}

pub(super) async fn newest_message(
    store: &EmbeddedStore,
    room: &RoomId,
) -> Result<Option<LastMessage>, StoreError> {
    let pk = keys::room(room);
    let from = keys::storage_key(&pk, keys::MESSAGE_PREFIX);
    let end = keys::storage_key(&pk, &format!("{}~", keys::MESSAGE_PREFIX));
    store
        .run(move |db| {
            let txn = db.begin_read().map_err(other)?;
            let table = txn.open_table(ITEMS).map_err(other)?;
            let newest = table
                .range(from.as_str()..end.as_str())
                .map_err(other)?
                .next_back()
                .transpose()
                .map_err(other)?;
            let Some((_, value)) = newest else {
                return Ok(None);
            };
            let message: MessageItem = serde_json::from_slice(value.value()).map_err(other)?;
            Ok(Some(LastMessage {
                sent_at: message.sent_at,
                expires_at: message.ttl,
            }))
        })
        .await
}
