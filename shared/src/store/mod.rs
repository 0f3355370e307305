//! The storage adapters behind the domain's `Store` port: DynamoDB for the Lambda
//! functions, an embedded redb file for the local server. Both share the item schema
//! ([`schema`]: keys, attribute names, typed items) and the rate counter's encoding
//! ([`rate`]).

pub mod dynamodb;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod rate;
pub mod schema;

pub use crate::domain::ports::store::*;
pub use dynamodb::{DynamoStore, Timeouts};
#[cfg(feature = "embedded")]
pub use embedded::{EmbeddedStore, Swept};

/// A page of history from the items read in order (at most `limit` + 1, each with its
/// `ttl`): the first `limit`, less the expired ones, and where the next page starts when
/// there is one more.
fn history_page(mut read: Vec<(u64, KeptMessage)>, limit: usize, now_secs: u64) -> HistoryPage {
    let more = read.len() > limit;
    read.truncate(limit);
    let next = more
        .then(|| read.last().map(|(_, m)| m.cursor.clone()))
        .flatten();
    HistoryPage {
        messages: read
            .into_iter()
            .filter(|(ttl, _)| *ttl > now_secs)
            .map(|(_, m)| m)
            .collect(),
        next,
    }
}
