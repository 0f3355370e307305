//! The room lists' projection ([`crate::domain::projection`]) fed by the table's
//! DynamoDB stream: on AWS, the `project-changes` function receives the stream's records
//! from Lambda; on a developer's machine (the local server on DynamoDB) and in the
//! tests, a [`StreamReader`] reads the same records through the DynamoDB Streams API.
//! Either way the records are DynamoDB JSON, and [`change_of`] reads them.
//!
//! The template's event filter passes only the records [`change_of`] reads (the user
//! items' rate counts, rewritten by every message, never reach the function).

use crate::aws_json::{AwsJsonClient, Service};
use crate::config::{self, ConfigError, Lookup};
use crate::domain::ports::{Store, StoreError};
use crate::domain::projection::{Change, project};
use crate::store::{DynamoStore, feed};
use anyhow::Context as _;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

mod stream_reader;

pub use stream_reader::{StreamReader, reader_for};

/// The change a stream record (DynamoDB JSON, as Lambda and `GetRecords` give it)
/// stands for, or `None` for a record the room lists do not depend on: the one change
/// feed's ([`crate::store::feed`]), which the embedded store's outbox reads too.
pub fn change_of(record: &Value) -> Option<Change> {
    feed::change_of(&feed::Written::from_stream(record)?)
}

/// What one batch of records came to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Records that stood for a change, all projected.
    pub changes: usize,
    /// Records the room lists do not depend on.
    pub skipped: usize,
    /// The sequence number of the record whose projection failed, when one did: it and
    /// every record after it are to be delivered again (Lambda's partial batch
    /// response); the projection is idempotent, so the earlier ones may be too.
    pub failed_at: Option<String>,
}

/// Project `records` in order, stopping at the first that fails.
pub async fn apply<S: Store + ?Sized>(store: &S, records: &[Value]) -> Applied {
    let mut applied = Applied::default();
    for record in records {
        let Some(change) = change_of(record) else {
            applied.skipped += 1;
            continue;
        };
        if let Err(e) = project(store, &change).await {
            // The error, never the record: its keys name users.
            tracing::warn!(error = %e, "a change could not be projected; delivered again");
            applied.failed_at = Some(
                record["dynamodb"]["SequenceNumber"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
            break;
        }
        applied.changes += 1;
    }
    applied
}

/// The `project-changes` function: a DynamoDB stream's batches in, the room lists'
/// projection applied.
#[derive(Clone)]
pub struct Projector {
    store: Arc<dyn Store>,
}

impl Projector {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// As deployed: the table and the DynamoDB settings (`TABLE_NAME`, the time-outs,
    /// the AWS settings), and nothing else.
    pub fn from_env(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let table = config::table_name(env)?;
        let timeouts = config::dynamodb_timeouts(env)?;
        Ok(Self::new(Arc::new(crate::wiring::dynamo_store(
            env, table, timeouts,
        )?)))
    }

    /// One invocation: Lambda's DynamoDB stream event in, its partial batch response
    /// out (`batchItemFailures`), with one log line.
    pub async fn handle(&self, event: &Value) -> Value {
        let started = Instant::now();
        let records = event["Records"].as_array().map_or(&[][..], Vec::as_slice);
        let applied = apply(self.store.as_ref(), records).await;
        tracing::info!(
            route = "project-changes",
            records = records.len(),
            changes = applied.changes,
            skipped = applied.skipped,
            failed = applied.failed_at.is_some(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "projected"
        );
        let failures: Vec<Value> = applied
            .failed_at
            .into_iter()
            .map(|sequence| json!({ "itemIdentifier": sequence }))
            .collect();
        json!({ "batchItemFailures": failures })
    }

    pub async fn warm_up(&self) {
        self.store.warm_up().await;
    }
}

/// Rebuild the room lists of `store`'s table from its items (`projection::reproject`):
/// for a table from before the projection, or one whose stream lost changes (a batch
/// the stream's function set aside). Idempotent, and safe beside live traffic; one
/// `Scan` per page, then a few requests per item found. How many items it went through.
pub async fn reproject_table(store: &DynamoStore) -> Result<usize, StoreError> {
    let found = store.found_items().await?;
    for item in &found {
        crate::domain::projection::reproject(store, item).await?;
    }
    Ok(found.len())
}
