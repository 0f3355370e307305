//! Creating a user: a fresh public id, private id and username, written so that
//! neither id can ever be taken twice.

use crate::ids::{PrivateId, PublicId, PublicKey};
use crate::ports::store::{
    CreateQuota, InsertUserError, RotateError, StoreError, UserRecord, UserStore,
};
use crate::time::rfc3339;
use std::ops::RangeInclusive;
use std::sync::Mutex;
use std::time::SystemTime;

/// How public ids are drawn: uniformly from the six-digit space while fewer than half
/// of it are taken, then from the nine-digit one, at most `attempts` times. Ids are
/// never freed, so "taken" is read off the user counter: every create before this one
/// took at most one id (a failed one took none), so the switch comes at half or sooner.
#[derive(Clone, Copy, Debug)]
pub struct IdPolicy {
    /// How much of the six-digit space is used (all of it but in tests).
    pub short_space: u32,
    /// How much of the nine-digit space is used (all of it but in tests).
    pub long_space: u32,
    pub attempts: u32,
}

impl Default for IdPolicy {
    fn default() -> Self {
        // With a space half full, ten draws all collide with probability 0.5^10 = 0.1%;
        // the nine-digit space takes over there, and is 0.05% full when the six-digit
        // one would have been full. A full space answers 503, never loops.
        Self {
            short_space: PublicId::SHORT_SPACE,
            long_space: PublicId::LONG_SPACE,
            attempts: 10,
        }
    }
}

impl IdPolicy {
    /// Whether the user numbered `id` (1, 2, 3, ...) gets a nine-digit id.
    pub fn long_for(&self, id: u64) -> bool {
        id.saturating_sub(1) >= u64::from(self.short_space / 2)
    }
}

/// Hands out numeric user ids from blocks reserved with one counter update each, so a
/// create costs the counter a round trip only once per block. Ids increase per
/// allocator (one per function instance); a block an instance does not use up leaves a
/// gap, and the counter stays above every id handed out, so the switch to nine-digit
/// public ids still comes at half of the six-digit space or sooner.
#[derive(Debug)]
pub struct UserIds {
    block: u64,
    free: Mutex<RangeInclusive<u64>>,
}

impl UserIds {
    /// Blocks of 100: 1.01 round trips per create, and an instance that dies leaves at
    /// most 99 numbers unused.
    pub const DEFAULT_BLOCK: u64 = 100;

    pub fn new(block: u64) -> Self {
        // An empty range: the first id reserves the first block.
        #[allow(clippy::reversed_empty_ranges)]
        let free = Mutex::new(1..=0);
        Self {
            block: block.max(1),
            free,
        }
    }

    /// The next id: from the current block, or from a new one (one round trip).
    pub async fn next<S: UserStore + ?Sized>(&self, store: &S) -> Result<u64, StoreError> {
        if let Some(id) = self.take() {
            return Ok(id);
        }
        let last = store.reserve_user_ids(self.block).await?;
        let first = last.saturating_sub(self.block - 1).max(1);
        // Concurrent requests of one allocator (the local server; a Lambda instance
        // serves one at a time) may both reserve: each uses its own block's first id,
        // and the newer block replaces the older one's rest, never the reverse.
        let mut free = self.lock();
        if free.is_empty() || last > *free.end() {
            *free = first + 1..=last;
        }
        Ok(first)
    }

    fn take(&self) -> Option<u64> {
        self.lock().next()
    }

    /// Hand back `id`, which a create took but did not use (refused by its address's
    /// limit): the next create gets it, so a refused create takes no numeric id. Only
    /// the latest id taken can go back (another create may have taken the next one).
    pub fn give_back(&self, id: u64) {
        let mut free = self.lock();
        if free.start().checked_sub(1) == Some(id) {
            *free = id..=*free.end();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RangeInclusive<u64>> {
        // A panic while holding the lock cannot leave the range half-updated.
        self.free
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for UserIds {
    fn default() -> Self {
        Self::new(Self::DEFAULT_BLOCK)
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
    /// The source address used up its creates for the window; nothing was written.
    #[error("too many users created from this address; retry in {retry_after} s")]
    RateLimited { retry_after: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// One transaction per attempt (writing both user items and counting the create against
/// `quota`), plus one counter update per block of ids: 1 round trip amortized, +1 per
/// collision.
pub async fn create_user<S: UserStore + ?Sized>(
    store: &S,
    ids: &UserIds,
    policy: IdPolicy,
    quota: Option<&CreateQuota>,
    public_key: Option<PublicKey>,
    now: SystemTime,
) -> Result<CreatedUser, CreateUserError> {
    let id = ids.next(store).await?;
    let username = random_username()?;
    let now = rfc3339(now);
    for _ in 0..policy.attempts {
        // Both ids are fresh on every attempt: nothing has been handed out yet, and a
        // private-id hash collision (2^-256) is then retried like a public one.
        let private_id = PrivateId::generate()?;
        let record = UserRecord {
            id,
            public_id: random_public_id(policy, id)?,
            private_id_hash: private_id.hash(),
            username: username.clone(),
            created_at: now.clone(),
            updated_at: now.clone(),
            public_key,
        };
        match store.insert_user(&record, quota).await {
            Ok(()) => {
                return Ok(CreatedUser {
                    id,
                    public_id: record.public_id,
                    private_id,
                    username,
                });
            }
            Err(InsertUserError::Taken) => continue,
            Err(InsertUserError::RateLimited) => {
                ids.give_back(id);
                return Err(CreateUserError::RateLimited {
                    retry_after: quota.map_or(1, |q| q.retry_after),
                });
            }
            Err(InsertUserError::Store(e)) => return Err(e.into()),
        }
    }
    Err(CreateUserError::IdSpaceExhausted(policy.attempts))
}

#[derive(Debug, thiserror::Error)]
pub enum RotateIdError {
    #[error("no user has this private id")]
    UnknownPrivateId,
    #[error("no free public id was found within {0} attempts")]
    IdSpaceExhausted(u32),
    #[error("too many ids taken from this address; retry in {retry_after} s")]
    RateLimited { retry_after: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Give the caller a fresh public id; the old one is retired for good (never given out
/// again, and answering like an unused one), and the rooms already joined stay. New
/// ids come from the nine-digit space, which never runs short, and are counted against
/// the source address like a create (`quota`). One read, then one transaction per
/// attempt.
pub async fn rotate_public_id<S: UserStore + ?Sized>(
    store: &S,
    policy: IdPolicy,
    caller: &PrivateId,
    quota: Option<&CreateQuota>,
    now: SystemTime,
) -> Result<PublicId, RotateIdError> {
    let me = caller.hash();
    let old = store
        .member_for_connect(&me)
        .await?
        .ok_or(RotateIdError::UnknownPrivateId)?
        .member;
    let now = rfc3339(now);
    for _ in 0..policy.attempts {
        let new = random_public_id(policy, u64::MAX)?;
        if new == old.public_id {
            continue;
        }
        match store.rotate_public_id(&me, &old, new, quota, &now).await {
            Ok(()) => return Ok(new),
            Err(RotateError::Taken) => continue,
            Err(RotateError::RateLimited) => {
                return Err(RotateIdError::RateLimited {
                    retry_after: quota.map_or(1, |q| q.retry_after),
                });
            }
            // A rotation of the same identity at the same moment won the race (or this
            // one's own answer was lost and it is retried): the id it holds now.
            Err(RotateError::NotHolder) => {
                return match store.member_for_connect(&me).await? {
                    Some(now) => Ok(now.member.public_id),
                    None => Err(RotateIdError::UnknownPrivateId),
                };
            }
            Err(RotateError::Store(e)) => return Err(e.into()),
        }
    }
    Err(RotateIdError::IdSpaceExhausted(policy.attempts))
}

/// Uniform over the form's space (modulo bias below 2^-34 for any space up to 10^9).
fn random_public_id(policy: IdPolicy, id: u64) -> anyhow::Result<PublicId> {
    let r = crate::random::u64()?;
    let found = if policy.long_for(id) {
        let space = policy.long_space.clamp(1, PublicId::LONG_SPACE);
        PublicId::long_from_number((r % u64::from(space)) as u32)
    } else {
        let space = policy.short_space.clamp(1, PublicId::SHORT_SPACE);
        PublicId::from_number((r % u64::from(space)) as u32)
    };
    found.ok_or_else(|| anyhow::anyhow!("public id out of range"))
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
    fn public_ids_stay_inside_the_space_and_grow_past_half() {
        let policy = IdPolicy {
            short_space: 6,
            long_space: 2,
            attempts: 1,
        };
        for _ in 0..1000 {
            for id in 1..=3 {
                let short = random_public_id(policy, id).unwrap().to_string();
                assert!(
                    [
                        "000-000", "000-001", "000-002", "000-003", "000-004", "000-005"
                    ]
                    .contains(&short.as_str()),
                    "{short}"
                );
            }
            for id in [4, 5, 1000] {
                let long = random_public_id(policy, id).unwrap().to_string();
                assert!(
                    ["000-000-000", "000-000-001"].contains(&long.as_str()),
                    "{long}"
                );
            }
        }
    }

    #[test]
    fn the_full_space_switches_at_half() {
        let policy = IdPolicy::default();
        assert!(!policy.long_for(1));
        assert!(!policy.long_for(500_000));
        assert!(policy.long_for(500_001));
        assert!(policy.long_for(u64::MAX));
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
