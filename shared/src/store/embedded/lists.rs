//! The room lists: reading one, and the projection's writes that keep them (offers' copies, newest messages).

use super::*;

pub(super) async fn rooms_of(
    store: &EmbeddedStore,
    who: &PrivateIdHash,
    max_offers: usize,
) -> Result<Option<RoomsOf>, StoreError> {
    let pk = keys::user(who);
    store
        .run(move |db| {
            let txn = db.begin_read().map_err(other)?;
            let table = txn.open_table(ITEMS).map_err(other)?;
            let Some(user) = get_item::<UserItem>(&table, pk.as_str())? else {
                return Ok(None);
            };
            let joined: Vec<_> =
                partition::<JoinedItem>(&table, &pk, keys::ROOM_ENTRY_PREFIX, None)?
                    .iter()
                    .map(JoinedItem::joined)
                    .collect::<Result<_, _>>()?;
            // As the DynamoDB query reads them: newest sort key first.
            let offers =
                partition_newest::<InboxItem>(&table, &pk, keys::OFFER_ENTRY_PREFIX, max_offers)?
                    .iter()
                    .map(|(_, copy)| copy.inbox_offer())
                    .collect::<Result<_, _>>()?;
            Ok(Some(RoomsOf {
                requester: user.requester()?,
                joined,
                offers,
            }))
        })
        .await
}

pub(super) async fn offer(
    store: &EmbeddedStore,
    to: PublicId,
    room: &RoomId,
) -> Result<Option<Offer>, StoreError> {
    let key = keys::storage_key(&keys::public(to), &keys::room_entry(room));
    store
        .get::<OfferItem>(key)
        .await?
        .map(|item| item.offer())
        .transpose()
}

pub(super) async fn audience(
    store: &EmbeddedStore,
    room: &RoomId,
) -> Result<Option<Audience>, StoreError> {
    store
        .get::<RoomItem>(keys::room(room))
        .await?
        .map(|item| item.audience())
        .transpose()
}

pub(super) async fn note_message(
    store: &EmbeddedStore,
    who: &PrivateIdHash,
    room: &RoomId,
    entry: ListEntry<'_>,
    last: &LastMessage,
) -> Result<(), StoreError> {
    let pk = keys::user(who);
    let (key, joined) = match entry {
        ListEntry::Joined => (keys::storage_key(&pk, &keys::room_entry(room)), true),
        ListEntry::Offered { opened_at } => (
            keys::storage_key(&pk, &keys::offer_entry(opened_at, room)),
            false,
        ),
    };
    let last = last.clone();
    store
        .write(move |db| {
            let txn = db.begin_write().map_err(other)?;
            {
                let mut table = Writes::open(&txn)?;
                let noted = match joined {
                    true => get_item::<JoinedItem>(&*table, &key)?
                        .filter(|item| item.last_message.takes(item.since.as_deref(), &last))
                        .map(|mut item| {
                            item.last_message.set(&last);
                            encode(&item)
                        }),
                    false => get_item::<InboxItem>(&*table, &key)?
                        .filter(|item| item.last_message.takes(Some(&item.since), &last))
                        .map(|mut item| {
                            item.last_message.set(&last);
                            encode(&item)
                        }),
                };
                if let Some(value) = noted.transpose()? {
                    table.insert(key.as_str(), value.as_slice())?;
                }
            }
            txn.commit().map_err(other)
        })
        .await
}

pub(super) async fn copy_offer(
    store: &EmbeddedStore,
    owner: &PrivateIdHash,
    to: PublicId,
    since: &str,
    offer: &Offer,
    last: Option<&LastMessage>,
) -> Result<(), StoreError> {
    let key = keys::storage_key(
        &keys::user(owner),
        &keys::offer_entry(&offer.opened_at, &offer.room),
    );
    let mut copy = InboxItem::new(to, since, offer);
    let last = last.cloned();
    store
        .write(move |db| {
            let txn = db.begin_write().map_err(other)?;
            {
                let mut table = Writes::open(&txn)?;
                // As DynamoDB's conditional update: a noted message moves forward only.
                let old = get_item::<InboxItem>(&*table, &key)?.map(|old| old.last_message);
                copy.last_message = old.unwrap_or_default();
                if let Some(last) = last
                    && copy
                        .last_message
                        .last_message_at
                        .as_deref()
                        .is_none_or(|at| at <= last.sent_at.as_str())
                {
                    copy.last_message.set(&last);
                }
                table.insert(key.as_str(), encode(&copy)?.as_slice())?;
            }
            txn.commit().map_err(other)
        })
        .await
}

pub(super) async fn drop_offer(
    store: &EmbeddedStore,
    holder: &PrivateIdHash,
    to: PublicId,
    room: &RoomId,
    opened_at: &str,
) -> Result<(), StoreError> {
    let key = keys::storage_key(&keys::user(holder), &keys::offer_entry(opened_at, room));
    store
        .write(move |db| {
            let txn = db.begin_write().map_err(other)?;
            {
                let mut table = Writes::open(&txn)?;
                let made_to_it = get_item::<InboxItem>(&*table, &key)?
                    .is_some_and(|item| item.to == to.to_string());
                if made_to_it {
                    table.remove(key.as_str())?;
                }
            }
            txn.commit().map_err(other)
        })
        .await
}

pub(super) async fn drop_offers_to(
    store: &EmbeddedStore,
    holder: &PrivateIdHash,
    to: PublicId,
) -> Result<(), StoreError> {
    let pk = keys::user(holder);
    store
        .write(move |db| {
            let txn = db.begin_write().map_err(other)?;
            {
                let mut table = Writes::open(&txn)?;
                let to = to.to_string();
                let stale: Vec<String> = partition_newest::<InboxItem>(
                    &*table,
                    &pk,
                    keys::OFFER_ENTRY_PREFIX,
                    usize::MAX,
                )?
                .into_iter()
                .filter(|(_, item)| item.to == to)
                .map(|(key, _)| key)
                .collect();
                for key in stale {
                    table.remove(key.as_str())?;
                }
            }
            txn.commit().map_err(other)
        })
        .await
}
