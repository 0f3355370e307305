//! Creating a user: a fresh public id, private id and username, written so that
//! neither id can ever be taken twice.

use crate::ids::{PrivateId, PublicId};
use crate::ports::store::{InsertUserError, Store, StoreError, UserRecord};
use crate::time::rfc3339;
use std::time::SystemTime;

/// How public ids are drawn: uniformly from `0..space`, at most `attempts` times.
#[derive(Clone, Copy, Debug)]
pub struct IdPolicy {
    pub space: u32,
    pub attempts: u32,
}

impl Default for IdPolicy {
    fn default() -> Self {
        // With the space 90% full, ten draws all collide with probability 0.9^10 = 35%;
        // with it 50% full, 0.1%. Past that the service answers 503, never loops.
        Self {
            space: PublicId::SPACE,
            attempts: 10,
        }
    }
}

/// What the caller gets, once: the private id is never readable again.
#[derive(Debug)]
pub struct CreatedUser {
    pub id: u64,
    pub public_id: PublicId,
    pub private_id: PrivateId,
    pub username: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("no free public id was found within {0} attempts")]
    IdSpaceExhausted(u32),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// One counter update, then one transaction per attempt: 2 round trips, +1 per collision.
pub async fn create_user<S: Store + ?Sized>(
    store: &S,
    policy: IdPolicy,
    now: SystemTime,
) -> Result<CreatedUser, CreateUserError> {
    let id = store.next_user_id().await?;
    let username = random_username()?;
    let now = rfc3339(now);
    for _ in 0..policy.attempts {
        // Both ids are fresh on every attempt: nothing has been handed out yet, and a
        // private-id hash collision (2^-256) is then retried like a public one.
        let private_id = PrivateId::generate()?;
        let record = UserRecord {
            id,
            public_id: random_public_id(policy.space)?,
            private_id_hash: private_id.hash(),
            username: username.clone(),
            created_at: now.clone(),
            updated_at: now.clone(),
        };
        match store.insert_user(&record).await {
            Ok(()) => {
                return Ok(CreatedUser {
                    id,
                    public_id: record.public_id,
                    private_id,
                    username,
                });
            }
            Err(InsertUserError::Taken) => continue,
            Err(InsertUserError::Store(e)) => return Err(e.into()),
        }
    }
    Err(CreateUserError::IdSpaceExhausted(policy.attempts))
}

/// Uniform over `0..space` (modulo bias below 2^-44 for any space up to 10^6).
fn random_public_id(space: u32) -> anyhow::Result<PublicId> {
    let space = space.clamp(1, PublicId::SPACE);
    let n = (crate::random::u64()? % u64::from(space)) as u32;
    PublicId::from_number(n).ok_or_else(|| anyhow::anyhow!("public id {n} out of range"))
}

const ADJECTIVES: &[&str] = &[
    "Brave", "Calm", "Clever", "Cosmic", "Curious", "Daring", "Eager", "Fearless", "Gentle",
    "Golden", "Happy", "Humble", "Jolly", "Kind", "Lively", "Lucky", "Mellow", "Mighty", "Misty",
    "Nimble", "Noble", "Polite", "Proud", "Quiet", "Quick", "Rapid", "Silent", "Silver", "Sleepy",
    "Smooth", "Sunny", "Swift", "Tidy", "Velvet", "Witty", "Zesty",
];

const ANIMALS: &[&str] = &[
    "Badger", "Beaver", "Bison", "Crane", "Dolphin", "Falcon", "Ferret", "Fox", "Gecko", "Heron",
    "Ibis", "Jaguar", "Koala", "Lemur", "Lynx", "Marten", "Moose", "Narwhal", "Ocelot", "Otter",
    "Owl", "Panda", "Puffin", "Quokka", "Raven", "Seal", "Sparrow", "Tapir", "Tiger", "Toucan",
    "Walrus", "Wombat", "Yak", "Zebra",
];

fn random_username() -> anyhow::Result<String> {
    let r = crate::random::u64()?;
    let adjective = ADJECTIVES[(r % ADJECTIVES.len() as u64) as usize];
    let animal = ANIMALS[((r >> 32) % ANIMALS.len() as u64) as usize];
    Ok(format!("{adjective} {animal}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_ids_stay_inside_the_space() {
        for _ in 0..1000 {
            let id = random_public_id(3).unwrap().to_string();
            assert!(
                ["000-000", "000-001", "000-002"].contains(&id.as_str()),
                "{id}"
            );
        }
    }

    #[test]
    fn usernames_are_two_capitalised_words() {
        let name = random_username().unwrap();
        let words: Vec<_> = name.split(' ').collect();
        assert_eq!(words.len(), 2, "{name}");
        assert!(
            words
                .iter()
                .all(|w| w.starts_with(|c: char| c.is_ascii_uppercase()))
        );
    }
}
