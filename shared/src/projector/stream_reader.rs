//! The table's stream read through the DynamoDB Streams API, where no Lambda delivers it
//! (the local server on DynamoDB, the tests).

use super::*;

const STREAMS: Service = Service {
    signing_name: "dynamodb",
    target_prefix: "DynamoDBStreams_20120810",
    content_type: "application/x-amz-json-1.0",
    label: "DynamoDB Streams",
};

/// Reads a table's DynamoDB stream from its start through the DynamoDB Streams API and
/// hands each batch to a [`Projector`] as Lambda does for the deployed function: for
/// the local server on DynamoDB, and the tests. A shard's records are delivered in
/// order; a record the projector reports failed is delivered again, with those after
/// it, at the next read; shards found later are read from their start.
pub struct StreamReader {
    client: AwsJsonClient,
    arn: String,
    state: tokio::sync::Mutex<BTreeMap<String, Shard>>,
}

#[derive(Default)]
struct Shard {
    /// Where the next read starts; `None` once a closed shard is read to its end.
    iterator: Option<String>,
    /// Read but not yet projected.
    pending: VecDeque<Value>,
    /// The last record projected, to read on from should the iterator expire.
    last: Option<String>,
    /// Whether the shard takes no more records (it split): read it to its end.
    closed: bool,
}

impl StreamReader {
    /// The stream `arn` at `endpoint` (DynamoDB's, or a compatible server's).
    pub fn new(client: AwsJsonClient, arn: impl Into<String>) -> Self {
        Self {
            client,
            arn: arn.into(),
            state: Default::default(),
        }
    }

    /// Deliver every record written since the last call to `projector`, shard by
    /// shard, until each is read to its current end; what was delivered.
    pub async fn settle(&self, projector: &Projector) -> anyhow::Result<Applied> {
        let mut shards = self.state.lock().await;
        let mut after: Option<String> = None;
        loop {
            let mut request = json!({ "StreamArn": self.arn });
            if let Some(id) = &after {
                request["ExclusiveStartShardId"] = json!(id);
            }
            let described = self.client.call("DescribeStream", request).await?;
            let stream = &described["StreamDescription"];
            for shard in stream["Shards"].as_array().map_or(&[][..], Vec::as_slice) {
                let Some(id) = shard["ShardId"].as_str() else {
                    continue;
                };
                let closed = shard["SequenceNumberRange"]["EndingSequenceNumber"].is_string();
                match shards.get_mut(id) {
                    Some(known) => known.closed = closed,
                    None => {
                        let iterator = self.iterator(id, None).await?;
                        shards.insert(
                            id.to_owned(),
                            Shard {
                                iterator,
                                closed,
                                ..Shard::default()
                            },
                        );
                    }
                }
            }
            after = stream["LastEvaluatedShardId"].as_str().map(str::to_owned);
            if after.is_none() {
                break;
            }
        }
        let mut total = Applied::default();
        for (id, shard) in shards.iter_mut() {
            loop {
                if shard.pending.is_empty() {
                    let Some(iterator) = shard.iterator.clone() else {
                        break;
                    };
                    let page = match self
                        .client
                        .call("GetRecords", json!({ "ShardIterator": iterator }))
                        .await
                    {
                        Ok(page) => page,
                        // After a long pause (15 minutes): on from the last record.
                        Err(e) if format!("{e:#}").contains("ExpiredIteratorException") => {
                            shard.iterator = self.iterator(id, shard.last.as_deref()).await?;
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    shard.iterator = page["NextShardIterator"].as_str().map(str::to_owned);
                    shard
                        .pending
                        .extend(page["Records"].as_array().cloned().unwrap_or_default());
                    // An open shard's empty page: read to its end for now. A closed one
                    // may answer empty pages before its last records: on to its end.
                    if shard.pending.is_empty() && !shard.closed {
                        break;
                    }
                    if shard.pending.is_empty() {
                        continue;
                    }
                }
                let batch: Vec<Value> = shard.pending.iter().cloned().collect();
                let answer = projector.handle(&json!({ "Records": batch })).await;
                let failed = answer["batchItemFailures"][0]["itemIdentifier"]
                    .as_str()
                    .map(str::to_owned);
                let sequence_of = |record: &Value| {
                    record["dynamodb"]["SequenceNumber"]
                        .as_str()
                        .map(str::to_owned)
                };
                // Projected: every record before the one that failed, if one did; a
                // failure that names no record of the batch leaves them all to read again.
                let projected = match &failed {
                    None => shard.pending.len(),
                    Some(at) => shard
                        .pending
                        .iter()
                        .position(|r| sequence_of(r).as_deref() == Some(at))
                        .unwrap_or(0),
                };
                for record in shard.pending.drain(..projected) {
                    let sequence = sequence_of(&record);
                    if change_of(&record).is_some() {
                        total.changes += 1;
                    } else {
                        total.skipped += 1;
                    }
                    shard.last = sequence;
                }
                if let Some(at) = failed {
                    anyhow::bail!("the projection failed at record {at}; it is read again next");
                }
            }
        }
        Ok(total)
    }

    /// An iterator of shard `id`: from its start, or just after record `after`.
    async fn iterator(&self, id: &str, after: Option<&str>) -> anyhow::Result<Option<String>> {
        let request = match after {
            Some(sequence) => json!({
                "StreamArn": self.arn, "ShardId": id,
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": sequence,
            }),
            None => json!({
                "StreamArn": self.arn, "ShardId": id, "ShardIteratorType": "TRIM_HORIZON",
            }),
        };
        let answer = self.client.call("GetShardIterator", request).await?;
        Ok(answer["ShardIterator"].as_str().map(str::to_owned))
    }

    /// Project the stream's records as they come, reading every `every`, until the
    /// task is stopped (the local server on DynamoDB). A failed read or projection is
    /// logged and tried again, less often while it keeps failing (up to every 30 s).
    pub async fn follow(self, store: Arc<dyn Store>, every: std::time::Duration) {
        let projector = Projector::new(store);
        let mut pause = every;
        loop {
            match self.settle(&projector).await {
                Ok(_) => pause = every,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "reading the table's stream");
                    pause = (pause * 2).min(std::time::Duration::from_secs(30));
                }
            }
            tokio::time::sleep(pause).await;
        }
    }
}

/// A reader of `store`'s table stream (its latest, as `DescribeTable` names it), signed
/// as `store`'s own requests are, at the endpoint its requests go to
/// (`AWS_ENDPOINT_URL_DYNAMODB`: moto and DynamoDB Local serve both APIs) or at the
/// region's DynamoDB Streams endpoint.
pub async fn reader_for(store: &DynamoStore) -> anyhow::Result<StreamReader> {
    let table = store
        .client()
        .describe_table()
        .table_name(store.table())
        .send()
        .await
        .with_context(|| format!("describing table {}", store.table()))?;
    let arn = table
        .table()
        .and_then(|t| t.latest_stream_arn())
        .with_context(|| {
            format!(
                "table {} has no stream: --create-table makes one, or enable its stream \
                 (new and old images)",
                store.table()
            )
        })?
        .to_owned();
    let region = store
        .client()
        .config()
        .region()
        .map(ToString::to_string)
        .context("no AWS region is configured")?;
    let provider = store
        .credentials_provider()
        .context("no AWS credentials are configured")?;
    let endpoint = config::dynamodb_endpoint(&config::process_env)
        .unwrap_or_else(|| format!("https://streams.dynamodb.{region}.amazonaws.com"));
    let client = AwsJsonClient::with_provider(STREAMS, region, provider, &endpoint)?;
    Ok(StreamReader::new(client, arn))
}
