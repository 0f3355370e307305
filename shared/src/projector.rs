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
use crate::domain::ports::{LastMessage, Store};
use crate::domain::projection::{Change, project};
use crate::domain::{PrivateIdHash, PublicId, RoomId};
use crate::store::DynamoStore;
use crate::store::dynamodb::AwsSettings;
use crate::store::schema::{attr, keys};
use anyhow::Context as _;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// The change a stream record (DynamoDB JSON, as Lambda and `GetRecords` give it)
/// stands for, or `None` for a record the room lists do not depend on.
pub fn change_of(record: &Value) -> Option<Change> {
    let event = record["eventName"].as_str()?;
    let stream = &record["dynamodb"];
    let text = |image: &str, name: &str| stream[image][name]["S"].as_str();
    let pk = text("Keys", attr::PK)?;
    let sk = text("Keys", attr::SK)?;
    if let Some(room) = pk.strip_prefix(keys::ROOM_PREFIX)
        && sk.starts_with(keys::MESSAGE_PREFIX)
        && event == "INSERT"
    {
        return Some(Change::MessageKept {
            room: RoomId::parse(room)?,
            last: LastMessage {
                sent_at: text("NewImage", attr::SENT_AT)?.to_owned(),
                expires_at: stream["NewImage"][attr::TTL]["N"].as_str()?.parse().ok()?,
            },
        });
    }
    if let Some(id) = pk.strip_prefix(keys::PUBLIC_PREFIX) {
        let to = PublicId::parse(id)?;
        if let Some(room) = sk.strip_prefix(keys::ROOM_ENTRY_PREFIX) {
            let room = RoomId::parse(room)?;
            return Some(match event {
                "REMOVE" => Change::OfferDeleted { to, room },
                _ => Change::Offered { to, room },
            });
        }
        // The marker of a public id that a rotation just retired.
        if sk == keys::ITEM
            && event == "MODIFY"
            && text("NewImage", attr::RETIRED_AT).is_some()
            && text("OldImage", attr::RETIRED_AT).is_none()
        {
            let holder = PrivateIdHash::from_hex(text("OldImage", attr::PRIVATE_ID_HASH)?)?;
            return Some(Change::Retired { id: to, holder });
        }
        return None;
    }
    if let Some(hash) = pk.strip_prefix(keys::USER_PREFIX)
        && let Some(room) = sk.strip_prefix(keys::ROOM_ENTRY_PREFIX)
        && event == "INSERT"
    {
        return Some(Change::Joined {
            who: PrivateIdHash::from_hex(hash)?,
            room: RoomId::parse(room)?,
        });
    }
    None
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
        Ok(Self::new(Arc::new(config::dynamo_store(
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

/// The whole `main` of the `project-changes` function: logs, configuration, warm-up,
/// then serve Lambda's stream batches.
pub async fn lambda_main() -> Result<(), lambda_http::Error> {
    use lambda_http::lambda_runtime::{LambdaEvent, run, service_fn};
    crate::telemetry::init();
    let env: Lookup<'static> = &config::process_env;
    let projector =
        match config::warm_up(env).and_then(|warm| Ok((Projector::from_env(env)?, warm))) {
            Ok((projector, warm)) => {
                if warm {
                    projector.warm_up().await;
                }
                projector
            }
            Err(e) => {
                tracing::error!(error = %e, "invalid configuration");
                return Err(e.into());
            }
        };
    let projector = &projector;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, std::convert::Infallible>(projector.handle(&event.payload).await)
    }))
    .await
}

const STREAMS: Service = Service {
    signing_name: "dynamodb",
    target_prefix: "DynamoDBStreams_20120810",
    content_type: "application/x-amz-json-1.0",
    label: "DynamoDB Streams",
};

/// Reads a table's DynamoDB stream from its start through the DynamoDB Streams API, as
/// Lambda does for the deployed function: for the local server on DynamoDB, and the
/// tests. Each shard is read in order; shards found later are read from their start.
pub struct StreamReader {
    client: AwsJsonClient,
    table: String,
    state: tokio::sync::Mutex<ReadState>,
}

#[derive(Default)]
struct ReadState {
    /// The stream's ARN, once found.
    arn: Option<String>,
    /// Each shard's next iterator (`None` once a closed shard is read to its end).
    shards: BTreeMap<String, Option<String>>,
}

impl StreamReader {
    /// The stream of `table` at `endpoint` (DynamoDB's, or a compatible server's).
    pub fn new(aws: AwsSettings, endpoint: &str, table: impl Into<String>) -> anyhow::Result<Self> {
        Ok(Self {
            client: AwsJsonClient::new(STREAMS, aws, endpoint)?,
            table: table.into(),
            state: Default::default(),
        })
    }

    /// The records written since the last read, oldest first per shard.
    pub async fn read(&self) -> anyhow::Result<Vec<Value>> {
        let mut state = self.state.lock().await;
        let ReadState { arn, shards } = &mut *state;
        if arn.is_none() {
            let listed = self
                .client
                .call("ListStreams", json!({ "TableName": self.table }))
                .await?;
            *arn = listed["Streams"][0]["StreamArn"]
                .as_str()
                .map(str::to_owned);
        }
        let arn = arn
            .clone()
            .with_context(|| format!("table {} has no stream", self.table))?;
        let described = self
            .client
            .call("DescribeStream", json!({ "StreamArn": arn }))
            .await?;
        let found = described["StreamDescription"]["Shards"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for shard in found {
            let Some(id) = shard["ShardId"].as_str() else {
                continue;
            };
            if !shards.contains_key(id) {
                let iterator = self
                    .client
                    .call(
                        "GetShardIterator",
                        json!({ "StreamArn": arn, "ShardId": id, "ShardIteratorType": "TRIM_HORIZON" }),
                    )
                    .await?;
                shards.insert(
                    id.to_owned(),
                    iterator["ShardIterator"].as_str().map(str::to_owned),
                );
            }
        }
        let mut records = Vec::new();
        for iterator in shards.values_mut() {
            let Some(current) = iterator.clone() else {
                continue;
            };
            let page = self
                .client
                .call("GetRecords", json!({ "ShardIterator": current }))
                .await?;
            records.extend(page["Records"].as_array().cloned().unwrap_or_default());
            *iterator = page["NextShardIterator"].as_str().map(str::to_owned);
        }
        Ok(records)
    }

    /// Read and project until a read finds nothing new: the tests' way to let the
    /// projection catch up before they list rooms.
    pub async fn settle<S: Store + ?Sized>(&self, store: &S) -> anyhow::Result<Applied> {
        let mut total = Applied::default();
        loop {
            let records = self.read().await?;
            if records.is_empty() {
                return Ok(total);
            }
            let applied = apply(store, &records).await;
            if let Some(at) = applied.failed_at {
                anyhow::bail!("the projection failed at record {at}");
            }
            total.changes += applied.changes;
            total.skipped += applied.skipped;
        }
    }

    /// Project the stream's records as they come, every `every`, until the process
    /// ends (the local server on DynamoDB). A failed read or projection is logged and
    /// tried again at the next turn.
    pub async fn follow(self, store: Arc<dyn Store>, every: std::time::Duration) {
        loop {
            if let Err(e) = self.settle(store.as_ref()).await {
                tracing::warn!(error = %format!("{e:#}"), "reading the table's stream");
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// A reader of `store`'s table stream, with the settings the store was built from.
pub fn reader_for(store: &DynamoStore, aws: AwsSettings) -> anyhow::Result<StreamReader> {
    let endpoint = aws
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("https://streams.dynamodb.{}.amazonaws.com", aws.region));
    StreamReader::new(aws, &endpoint, store.table())
}
