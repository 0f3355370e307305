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
