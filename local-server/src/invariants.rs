//! `secret-rooms-local verify`: check an embedded store's invariants, for operators
//! and for the load script: every user has its public marker and the other way round,
//! no public or numeric id is held twice, every room member is a user; and how many
//! messages the rooms keep.

use secret_rooms::domain::RoomId;
use secret_rooms::store::EmbeddedStore;
use secret_rooms::store::schema::{CounterItem, PublicItem, RoomItem, UserItem, keys};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, Default)]
pub struct Report {
    pub users: usize,
    pub public_ids: usize,
    pub rooms: usize,
    /// Messages kept in rooms' histories.
    pub messages: usize,
    pub counter: u64,
    pub problems: Vec<String>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "users {}, public ids {}, rooms {}, kept messages {}, user counter {}",
            self.users, self.public_ids, self.rooms, self.messages, self.counter
        )?;
        if self.problems.is_empty() {
            write!(f, "no problems found")
        } else {
            for problem in &self.problems {
                writeln!(f, "problem: {problem}")?;
            }
            write!(f, "{} problems found", self.problems.len())
        }
    }
}

/// An item of the dump, read as its schema type.
fn typed<T: serde::de::DeserializeOwned>(
    key: &str,
    item: &Value,
    problems: &mut Vec<String>,
) -> Option<T> {
    match serde_json::from_value(item.clone()) {
        Ok(typed) => Some(typed),
        Err(e) => {
            problems.push(format!("{key:.16}… is malformed: {e}"));
            None
        }
    }
}

pub async fn check(store: &EmbeddedStore) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut users: HashMap<String, UserItem> = HashMap::new();
    let mut public_owner: HashMap<String, String> = HashMap::new();
    let mut rooms: BTreeMap<String, RoomItem> = BTreeMap::new();
    let problems = &mut report.problems;
    for (key, item) in store.dump().await? {
        // Items beside a partition's own (kept messages, joined and offered rooms) are
        // counted, not checked.
        if let Some((_, sk)) = key.split_once(' ') {
            if sk.starts_with(keys::MESSAGE_PREFIX) {
                report.messages += 1;
            }
            continue;
        }
        if let Some(hash) = key.strip_prefix(keys::USER_PREFIX) {
            if let Some(user) = typed::<UserItem>(&key, &item, problems) {
                users.insert(hash.to_owned(), user);
            }
        } else if let Some(public) = key.strip_prefix(keys::PUBLIC_PREFIX) {
            // A retired id's marker names nobody.
            if let Some(marker) = typed::<PublicItem>(&key, &item, problems)
                && let Some(owner) = marker.private_id_hash
            {
                public_owner.insert(public.to_owned(), owner);
            }
        } else if let Some(room) = key.strip_prefix(keys::ROOM_PREFIX) {
            if let Some(item) = typed::<RoomItem>(&key, &item, problems) {
                rooms.insert(room.to_owned(), item);
            }
        } else if key == keys::USER_COUNTER
            && let Some(counter) = typed::<CounterItem>(&key, &item, problems)
        {
            report.counter = counter.value;
        }
    }
    report.users = users.len();
    report.public_ids = public_owner.len();
    report.rooms = rooms.len();
    let problems = &mut report.problems;
    let mut numeric = HashSet::new();
    let mut held = HashMap::new();
    for (hash, user) in &users {
        if !numeric.insert(user.id) {
            problems.push(format!("numeric id {} is held twice", user.id));
        }
        let public = user.public_id.as_str();
        if let Some(other) = held.insert(public, hash) {
            problems.push(format!(
                "public id {public} is held by {other:.8}… and {hash:.8}…"
            ));
        }
        if public_owner.get(public) != Some(hash) {
            problems.push(format!(
                "user {hash:.8}… has no marker for public id {public}"
            ));
        }
        if user.id == 0 || user.id > report.counter {
            problems.push(format!(
                "user {hash:.8}… has id {} outside 1..={}",
                user.id, report.counter
            ));
        }
    }
    for (public, owner) in &public_owner {
        if users.get(owner).map(|u| u.public_id.as_str()) != Some(public.as_str()) {
            problems.push(format!("marker {public} points to no user holding it"));
        }
    }
    let mut members: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for (room, item) in &rooms {
        let Ok(list) = item.members() else {
            problems.push(format!("room {room:.8}… has a malformed member"));
            continue;
        };
        for (hash, member) in list {
            let (hash, public) = (hash.to_hex(), member.public_id.to_string());
            // A member who rotated since joining is named by the id they joined with.
            let named = users
                .get(&hash)
                .is_some_and(|u| u.public_id == public || u.public_id_since.is_some());
            if !named {
                problems.push(format!(
                    "room {room:.8}… lists a member that is no such user"
                ));
            }
            members.entry(room).or_default().push((hash, public));
        }
        if let (Some(low), Some(high)) = (&item.low, &item.high)
            && low.public_id >= high.public_id
        {
            problems.push(format!("room {room:.8}… has its sides out of order"));
        }
    }
    // A user may post to the open rooms they joined (listed by tag): each must exist and
    // list them.
    let tags: BTreeMap<String, &str> = members
        .keys()
        .filter_map(|room| Some((RoomId::parse(room)?.tag(), *room)))
        .collect();
    for (hash, user) in &users {
        // Every open room counts among the rooms ever joined, which the cap bounds.
        if user.rooms.len() > user.joins as usize
            || user.joins as usize > secret_rooms::domain::rooms::MAX_ROOMS
        {
            problems.push(format!(
                "user {hash:.8}… has {} open rooms and {} joins (at most {})",
                user.rooms.len(),
                user.joins,
                secret_rooms::domain::rooms::MAX_ROOMS
            ));
        }
        for tag in &user.rooms {
            let member = tags
                .get(tag)
                .is_some_and(|room| members[room].iter().any(|(h, _)| h == hash));
            if !member {
                problems.push(format!(
                    "user {hash:.8}… joined room {tag}…, which does not list them"
                ));
            }
        }
    }
    Ok(report)
}
