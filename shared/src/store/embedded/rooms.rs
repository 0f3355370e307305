//! Rooms: joining one (the room, its sides, the joiner's entries), membership, blocking.

use super::*;

pub(super) async fn join_room(
    store: &EmbeddedStore,
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
        offer_expires_at,
        now,
    } = joining.clone();
    let (room_pk, joiner_pk) = (keys::room(room), keys::user(joiner));
    let joined_key = keys::storage_key(&joiner_pk, &keys::room_entry(room));
    let offer_key = keys::storage_key(&keys::public(target), &keys::room_entry(room));
    let (room_id, tag) = (room.to_string(), room.tag());
    let entry = SideEntry::new(joiner, &requester.member, &requester.since, target, now);
    let from = MemberEntry::new(&requester.member);
    let public_key = requester.public_key.map(|k| k.to_string());
    let since = requester.since.clone();
    let now = now.to_owned();
    let room = room.clone();
    let announce = store
        .write(move |db| {
            let txn = db.begin_write().map_err(other)?;
            let announce;
            {
                let mut table = Writes::open(&txn)?;
                // In DynamoDB's order: a closed room first, then the joiner's item.
                let mut item = match get_item::<RoomItem>(&*table, room_pk.as_str())? {
                    Some(item) => item,
                    None => RoomItem {
                        kind: Kind::Room,
                        low: None,
                        high: None,
                        members: BTreeMap::new(),
                        created_at: now.clone(),
                        updated_at: now.clone(),
                        closed_at: None,
                    },
                };
                if item.closed_at.is_some() {
                    return Ok(Err(JoinError::Closed));
                }
                let mut user = match get_item::<UserItem>(&*table, joiner_pk.as_str())? {
                    Some(item) => item,
                    None => return Ok(Err(JoinError::NoSuchJoiner)),
                };
                // Every connect counts in its window, as DynamoDB's conditional update.
                // (A counter already in a later window, of a request that read the clock
                // after this one: counted there.)
                let connects = user
                    .cr
                    .and_then(|c| rate::later_of(connects, c))
                    .unwrap_or(connects);
                let (counted, current) = match user.cr {
                    Some(c) if c >= rate::full(connects) => {
                        return Ok(Err(JoinError::RateLimited));
                    }
                    Some(c) if c >= rate::start(connects) => (c + 1, true),
                    _ => (rate::start(connects) + 1, false),
                };
                // A first join counts against the cap, blocked rooms too.
                let first = !user.rooms.contains(&tag);
                if first && user.joins as usize >= max_rooms {
                    return Ok(Err(JoinError::TooManyRooms));
                }
                user.cr = Some(counted);
                if !current {
                    user.ra.clear();
                }
                let mark;
                (announce, mark) = crate::domain::rooms::announcing(&user.ra, &room, first);
                user.ra.extend(mark);
                match side {
                    Side::Low => item.low = Some(entry),
                    Side::High => item.high = Some(entry),
                }
                item.updated_at = now.clone();
                table.insert(room_pk.as_str(), encode(&item)?.as_slice())?;
                if first {
                    user.joins += 1;
                    user.rooms.insert(tag);
                }
                table.insert(joiner_pk.as_str(), encode(&user)?.as_slice())?;
                // The joined entry keeps its first time (and the message the projection
                // noted); the offer says when it was last made.
                let (joined_at, last_message) =
                    match get_item::<JoinedItem>(&*table, joined_key.as_str())? {
                        Some(item) => (item.joined_at, item.last_message),
                        None => (now.clone(), LastMessageEntry::default()),
                    };
                let joined = JoinedItem {
                    kind: Kind::Joined,
                    room_id: room_id.clone(),
                    peer: target.to_string(),
                    joined_at,
                    since: Some(since),
                    closed_at: None,
                    last_message,
                };
                table.insert(joined_key.as_str(), encode(&joined)?.as_slice())?;
                let offer = OfferItem {
                    kind: Kind::Offer,
                    room_id,
                    from,
                    public_key,
                    opened_at: now.clone(),
                    ttl: Some(offer_expires_at),
                };
                table.insert(offer_key.as_str(), encode(&offer)?.as_slice())?;
            }
            txn.commit().map_err(other)?;
            Ok(Ok(announce))
        })
        .await??;
    store.kick();
    Ok(announce)
}

pub(super) async fn room_member(
    store: &EmbeddedStore,
    room: &RoomId,
    who: &PrivateIdHash,
) -> Result<Option<Membership>, StoreError> {
    let Some(item) = store.get::<RoomItem>(keys::room(room)).await? else {
        return Ok(None);
    };
    item.membership(who)
}

pub(super) async fn close_room(
    store: &EmbeddedStore,
    room: &RoomId,
    blocker: &PrivateIdHash,
    inboxes: &[PublicId],
    peer: Option<&PrivateIdHash>,
    now: &str,
) -> Result<bool, StoreError> {
    let room_pk = keys::room(room);
    let peer_known = peer.is_some();
    let offer_keys: Vec<String> = inboxes
        .iter()
        .map(|inbox| keys::storage_key(&keys::public(*inbox), &keys::room_entry(room)))
        .collect();
    let users: Vec<String> = [Some(blocker), peer]
        .into_iter()
        .flatten()
        .map(keys::user)
        .collect();
    let (tag, entry, now) = (room.tag(), keys::room_entry(room), now.to_owned());
    let closed = store
        .write(move |db| {
            let txn = db.begin_write().map_err(other)?;
            {
                let mut table = Writes::open(&txn)?;
                let mut item = match get_item::<RoomItem>(&*table, room_pk.as_str())? {
                    Some(item) => item,
                    None => return Err(other(anyhow::anyhow!("closing a room that is not"))),
                };
                // A peer joined since the caller read the room: they would be left open.
                if !peer_known && item.low.is_some() && item.high.is_some() {
                    return Ok(false);
                }
                item.closed_at.get_or_insert_with(|| now.clone());
                // Each offer there was goes (the feed describes its deletion).
                for offer_key in &offer_keys {
                    table.remove(offer_key.as_str())?;
                }
                table.insert(room_pk.as_str(), encode(&item)?.as_slice())?;
                // Each member's room leaves their open rooms, and their joined entry
                // says it is closed.
                // A member's user item exists (DynamoDB's condition refuses the close
                // otherwise, and so does this). Their joined entry too, but in a file
                // from before v2, whose rooms had none: the room is closed all the same.
                for pk in users {
                    let Some(mut user) = get_item::<UserItem>(&*table, pk.as_str())? else {
                        return Err(other(anyhow::anyhow!("a member who is no user")));
                    };
                    user.rooms.remove(&tag);
                    table.insert(pk.as_str(), encode(&user)?.as_slice())?;
                    let joined_key = keys::storage_key(&pk, &entry);
                    if let Some(mut joined) = get_item::<JoinedItem>(&*table, joined_key.as_str())?
                    {
                        joined.closed_at.get_or_insert_with(|| now.clone());
                        table.insert(joined_key.as_str(), encode(&joined)?.as_slice())?;
                    }
                }
            }
            txn.commit().map_err(other)?;
            Ok(true)
        })
        .await?;
    if closed {
        store.kick();
    }
    Ok(closed)
}

pub(super) async fn room_members(
    store: &EmbeddedStore,
    room: &RoomId,
) -> Result<Option<Vec<(PrivateIdHash, Member)>>, StoreError> {
    let Some(item) = store.get::<RoomItem>(keys::room(room)).await? else {
        return Ok(None);
    };
    item.members().map(Some)
}
