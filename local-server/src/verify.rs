//! `secret-rooms-local verify`: check an embedded store's invariants, for operators
//! and for the load script: every user has its public marker and the other way round,
//! no public or numeric id is held twice, every room member is a user.

use secret_rooms::store::EmbeddedStore;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, Default)]
pub struct Report {
    pub users: usize,
    pub public_ids: usize,
    pub rooms: usize,
    pub counter: u64,
    pub problems: Vec<String>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "users {}, public ids {}, rooms {}, user counter {}",
            self.users, self.public_ids, self.rooms, self.counter
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

pub async fn verify(store: &EmbeddedStore) -> anyhow::Result<Report> {
    let items: BTreeMap<String, Value> = store.dump().await?.into_iter().collect();
    let mut report = Report::default();
    let mut users: HashMap<&str, &Value> = HashMap::new();
    let mut numeric = HashSet::new();
    let mut public_owner: HashMap<&str, &str> = HashMap::new();
    for (key, item) in &items {
        if let Some(hash) = key.strip_prefix("USER#") {
            users.insert(hash, item);
            let id = item["id"].as_u64().unwrap_or_default();
            if !numeric.insert(id) {
                report
                    .problems
                    .push(format!("numeric id {id} is held twice"));
            }
        } else if let Some(public) = key.strip_prefix("PUBLIC#") {
            public_owner.insert(public, item["privateIdHash"].as_str().unwrap_or_default());
        } else if key.starts_with("ROOM#") {
            report.rooms += 1;
        } else if key == "COUNTER#users" {
            report.counter = item["value"].as_u64().unwrap_or_default();
        }
    }
    report.users = users.len();
    report.public_ids = public_owner.len();
    let mut held = HashMap::new();
    for (hash, user) in &users {
        let public = user["publicId"].as_str().unwrap_or_default();
        if let Some(other) = held.insert(public, *hash) {
            report.problems.push(format!(
                "public id {public} is held by {other:.8}… and {hash:.8}…"
            ));
        }
        if public_owner.get(public) != Some(hash) {
            report.problems.push(format!(
                "user {hash:.8}… has no marker for public id {public}"
            ));
        }
        let id = user["id"].as_u64().unwrap_or_default();
        if id == 0 || id > report.counter {
            report.problems.push(format!(
                "user {hash:.8}… has id {id} outside 1..={}",
                report.counter
            ));
        }
    }
    for (public, owner) in &public_owner {
        if users.get(owner).and_then(|u| u["publicId"].as_str()) != Some(public) {
            report
                .problems
                .push(format!("marker {public} points to no user holding it"));
        }
    }
    for (key, item) in items.iter().filter(|(k, _)| k.starts_with("ROOM#")) {
        for (hash, member) in item["members"].as_object().into_iter().flatten() {
            let known = users
                .get(hash.as_str())
                .and_then(|u| u["publicId"].as_str());
            if known != member["publicId"].as_str() {
                report
                    .problems
                    .push(format!("{key:.16}… lists a member that is no such user"));
            }
        }
    }
    // A user may post to the rooms they joined: each must exist and list them.
    for (hash, user) in &users {
        for room in user["rooms"].as_array().into_iter().flatten() {
            let room = room.as_str().unwrap_or_default();
            let member = items
                .get(&format!("ROOM#{room}"))
                .is_some_and(|item| item["members"].get(*hash).is_some());
            if !member {
                report.problems.push(format!(
                    "user {hash:.8}… joined room {room:.8}…, which does not list them"
                ));
            }
        }
    }
    Ok(report)
}
