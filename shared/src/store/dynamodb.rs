//! The storage contract on one DynamoDB table with a string partition key `pk`.
//!
//! Items: `USER#<privateIdHash>`, `PUBLIC#<publicId>`, `COUNTER#users`, `ROOM#<roomId>`.

use super::keys::{public_key, room_key, user_key};
use super::rate;
use super::{
    Allowance, ConnectLookup, InsertUserError, JoinError, Member, PublicEntry, RateWindow, Store,
    StoreError, UserRecord,
};
use crate::config::{ConfigError, Lookup};
use crate::domain::{PrivateIdHash, PublicId, RoomId};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, HttpClient, Region};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents, SharedInterceptor};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, KeysAndAttributes,
    Put, ReturnValue, ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TransactWriteItem,
    Update,
};
use aws_smithy_http_client::{Builder as HttpClientBuilder, HttpClientError, tls};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpConnectorSettings, SharedHttpConnector};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

const PK: &str = "pk";
const COUNTER_KEY: &str = "COUNTER#users";
/// The key read at start-up to open the connection; no item is ever stored there.
pub const WARM_UP_KEY: &str = "WARMUP";

/// Error codes after which a retry later may succeed.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
];

/// How long a DynamoDB call may take: 1 s to connect, then `attempt` for each attempt
/// and `operation` in all (the SDK's standard retries included), well inside the
/// functions' 10 s. Defaults 2 s and 5 s; a slow DynamoDB-compatible emulator may need
/// more (`DYNAMODB_ATTEMPT_TIMEOUT_MS`, `DYNAMODB_OPERATION_TIMEOUT_MS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub attempt: Duration,
    pub operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            attempt: Duration::from_secs(2),
            operation: Duration::from_secs(5),
        }
    }
}

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    round_trips: Arc<AtomicUsize>,
}

/// Counts every HTTP attempt the SDK transmits.
#[derive(Debug)]
struct CountRoundTrips(Arc<AtomicUsize>);

impl Intercept for CountRoundTrips {
    fn name(&self) -> &'static str {
        "CountRoundTrips"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The roots DynamoDB's public endpoints chain to (Amazon Trust Services).
const AMAZON_ROOTS: &[u8] = include_bytes!("../../certs/amazon-roots.pem");

/// An HTTPS client that trusts only [`AMAZON_ROOTS`]. The SDK's default client reads
/// and parses every certificate of the system store at start-up (about 4 ms of each
/// cold start, measured by ./scripts/bench.sh); DynamoDB needs five of them.
fn amazon_roots_client() -> Result<SharedHttpClient, HttpClientError> {
    let trust = tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_ROOTS);
    let context = tls::TlsContext::builder().with_trust_store(trust).build()?;
    let client = HttpClientBuilder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https();
    Ok(SharedHttpClient::new(ConnectorOnFirstUse(client)))
}

/// The SDK's HTTPS client, minus the check it runs when a DynamoDB client is created:
/// that check builds the whole TLS connector (parsing the roots, setting up rustls) and
/// throws it away, and the first request builds it again. With the bundled roots,
/// which a test parses, it cannot fail: skipping it took a third off the work of each
/// function's init (BENCHMARKS.md).
#[derive(Debug)]
struct ConnectorOnFirstUse(SharedHttpClient);

impl HttpClient for ConnectorOnFirstUse {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// A DynamoDB endpoint override over HTTPS (a self-hosted DynamoDB-compatible server)
/// may use any CA: it keeps the system's roots. Plain-HTTP overrides need none.
fn custom_https_endpoint() -> bool {
    ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .any(|url| is_https(&url))
}

fn is_https(url: &str) -> bool {
    url.trim().to_ascii_lowercase().starts_with("https:")
}

/// 1 s to connect, then the configured bounds per attempt and in all.
fn timeout_config(timeouts: Timeouts) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(timeouts.attempt)
        .operation_timeout(timeouts.operation)
        .build()
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| corrupt(format!("attribute {name} missing or not a string")))
}

fn corrupt(what: String) -> StoreError {
    StoreError::Other(anyhow::anyhow!("unexpected item shape: {what}"))
}

fn classify<E>(operation: &str, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            service.raw().status().is_server_error()
                || err.code().is_some_and(|c| TRANSIENT_CODES.contains(&c))
        }
        _ => false,
    };
    let error = anyhow::anyhow!("DynamoDB {operation}: {}", DisplayErrorContext(&err));
    if transient {
        StoreError::Unavailable(error)
    } else {
        StoreError::Other(error)
    }
}

/// The sender as a room names them, from their user item returned by a successful count.
fn allowed(item: Option<&Item>) -> Result<Allowance, StoreError> {
    let item = item.ok_or_else(|| corrupt("a count returned no user item".into()))?;
    member_of(item).map(Allowance::Allowed)
}

/// Whether a user item lists `room` among the rooms its user joined.
fn has_joined(item: &Item, room: &RoomId) -> bool {
    item.get("rooms")
        .and_then(|r| r.as_ss().ok())
        .is_some_and(|rooms| rooms.iter().any(|r| r == room.as_str()))
}

fn member_from(value: &AttributeValue) -> Result<Member, StoreError> {
    let map = value
        .as_m()
        .map_err(|_| corrupt("member is not a map".into()))?;
    member_of(map)
}

/// The `publicId` and `username` of a room's member entry or of a user item alike.
fn member_of(map: &Item) -> Result<Member, StoreError> {
    let public_id = get_s(map, "publicId")?;
    Ok(Member {
        public_id: PublicId::parse(public_id)
            .ok_or_else(|| corrupt(format!("bad publicId {public_id:?}")))?,
        username: get_s(map, "username")?.to_owned(),
    })
}

/// A user's message count lives in their user item, in one of `RATE_SLOTS` slots,
/// `rl<window % RATE_SLOTS>`, valued `window << 20 | count` (see [`RateWindow`]). Each
/// count removes the user's slots but those of the window before, this one and the
/// next, so the slot of a new window is absent and one update both starts and counts
/// it; only after a pause of about a multiple of `RATE_SLOTS` windows does it still
/// hold an old count, which the condition catches and a second update restarts. A
/// fixed set of names keeps the item small: no name is ever left behind.
const RATE_SLOTS: u64 = 64;

fn rate_slot(window: RateWindow) -> String {
    format!("rl{}", window.window % RATE_SLOTS)
}

/// `SET <set>, rt = :token REMOVE` the other slots but the neighbours': a message that
/// read the clock just before a window turned may land after one that read it just
/// after, and neither may erase the other's count.
fn rate_update(window: RateWindow, set: &str) -> String {
    let w = window.window;
    let keep = [w.wrapping_sub(1), w, w.wrapping_add(1)].map(|w| w % RATE_SLOTS);
    let removed: Vec<String> = (0..RATE_SLOTS)
        .filter(|slot| !keep.contains(slot))
        .map(|slot| format!("rl{slot}"))
        .collect();
    format!("SET {set}, rt = :token REMOVE {}", removed.join(", "))
}

impl DynamoStore {
    /// Count round trips, then create the client: once, as each creation sets up and
    /// checks the whole SDK runtime (about a third of a function's init).
    fn build(mut config: aws_sdk_dynamodb::config::Builder, table: impl Into<String>) -> Self {
        let round_trips = Arc::new(AtomicUsize::new(0));
        config.push_interceptor(SharedInterceptor::new(CountRoundTrips(round_trips.clone())));
        Self {
            client: Client::from_conf(config.build()),
            table: table.into(),
            round_trips,
        }
    }

    /// A client configured from the variables Lambda sets for every function:
    /// `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
    /// and the optional endpoint override `AWS_ENDPOINT_URL_DYNAMODB` (or
    /// `AWS_ENDPOINT_URL`). It leaves out the SDK's default configuration chain
    /// (profile files, SSO, web identity, container and instance credentials), which
    /// a function never needs and whose code was a third of each binary (see
    /// BENCHMARKS.md). Missing credentials fail at start-up, naming the variable.
    pub fn from_lambda_env(
        env: Lookup,
        table: impl Into<String>,
        timeouts: Timeouts,
    ) -> Result<Self, ConfigError> {
        let required = |name: &'static str| env(name).ok_or(ConfigError::Missing(name));
        let region = env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .ok_or(ConfigError::Missing("AWS_REGION"))?;
        let credentials = Credentials::new(
            required("AWS_ACCESS_KEY_ID")?,
            required("AWS_SECRET_ACCESS_KEY")?,
            env("AWS_SESSION_TOKEN"),
            None,
            "Lambda environment",
        );
        let endpoint = env("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| env("AWS_ENDPOINT_URL"));
        let mut config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(credentials)
            .retry_config(RetryConfig::standard())
            .timeout_config(timeout_config(timeouts));
        if !endpoint.as_deref().is_some_and(is_https) {
            let client = amazon_roots_client().map_err(|e| ConfigError::Invalid {
                name: "AWS_ENDPOINT_URL_DYNAMODB",
                reason: format!("cannot build an HTTPS client: {e}"),
            })?;
            config.set_http_client(Some(client));
        }
        config.set_endpoint_url(endpoint);
        Ok(Self::build(config, table))
    }

    /// A client from the SDK's default configuration chain (credentials from the
    /// environment, profiles, SSO and the rest; region; `AWS_ENDPOINT_URL_DYNAMODB`),
    /// for the local server run against real DynamoDB from a developer's machine.
    pub async fn from_default_chain(table: impl Into<String>, timeouts: Timeouts) -> Self {
        let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        Self::from_loader(loader, table, timeouts).await
    }

    /// As [`Self::from_default_chain`], but at `endpoint` and with the production timeouts (the
    /// fault tests check the bound they give).
    pub async fn with_endpoint(table: impl Into<String>, endpoint: &str) -> Self {
        Self::with_endpoint_and_timeouts(table, endpoint, Timeouts::default()).await
    }

    pub async fn with_endpoint_and_timeouts(
        table: impl Into<String>,
        endpoint: &str,
        timeouts: Timeouts,
    ) -> Self {
        let loader =
            aws_config::defaults(aws_config::BehaviorVersion::latest()).endpoint_url(endpoint);
        Self::from_loader(loader, table, timeouts).await
    }

    async fn from_loader(
        loader: aws_config::ConfigLoader,
        table: impl Into<String>,
        timeouts: Timeouts,
    ) -> Self {
        let mut loader = loader.timeout_config(timeout_config(timeouts));
        if !custom_https_endpoint() {
            match amazon_roots_client() {
                Ok(client) => loader = loader.http_client(client),
                Err(e) => tracing::warn!(error = %e, "bundled roots unusable; using the system's"),
            }
        }
        let config = loader.load().await;
        Self::build((&config).into(), table)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Create the table (on-demand, key `pk`) as the SAM template does; for local
    /// development and tests.
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let attribute = AttributeDefinition::builder()
            .attribute_name(PK)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| StoreError::Other(e.into()))?;
        let key = KeySchemaElement::builder()
            .attribute_name(PK)
            .key_type(KeyType::Hash)
            .build()
            .map_err(|e| StoreError::Other(e.into()))?;
        self.client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(attribute)
            .key_schema(key)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .map_err(|e| classify("CreateTable", e))?;
        Ok(())
    }

    async fn get_item(
        &self,
        pk: String,
        projection: Option<(&str, &[(&str, &str)])>,
    ) -> Result<Option<Item>, StoreError> {
        let mut request = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .consistent_read(true);
        if let Some((expression, names)) = projection {
            request = request.projection_expression(expression);
            for (placeholder, name) in names {
                request = request.expression_attribute_names(*placeholder, *name);
            }
        }
        let out = request.send().await.map_err(|e| classify("GetItem", e))?;
        Ok(out.item)
    }
}

/// Whether a cancelled transaction failed on `reason` (the write as a whole did not happen).
fn cancelled_for(err: &SdkError<TransactWriteItemsError, HttpResponse>, reason: &str) -> bool {
    let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
        err.as_service_error()
    else {
        return false;
    };
    cancel
        .cancellation_reasons()
        .iter()
        .any(|r| r.code() == Some(reason))
}

#[async_trait]
impl Store for DynamoStore {
    async fn next_user_id(&self) -> Result<u64, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(COUNTER_KEY))
            .update_expression("ADD #value :one")
            .expression_attribute_names("#value", "value")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| classify("UpdateItem", e))?;
        out.attributes()
            .and_then(|a| a.get("value"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| corrupt("counter value missing".into()))
    }

    async fn insert_user(&self, user: &UserRecord) -> Result<(), InsertUserError> {
        let hash = user.private_id_hash.to_hex();
        let user_item: Item = HashMap::from([
            (PK.to_owned(), s(user_key(&user.private_id_hash))),
            ("type".to_owned(), s("user")),
            ("id".to_owned(), AttributeValue::N(user.id.to_string())),
            ("publicId".to_owned(), s(user.public_id.to_string())),
            ("username".to_owned(), s(&user.username)),
            ("createdAt".to_owned(), s(&user.created_at)),
            ("updatedAt".to_owned(), s(&user.updated_at)),
        ]);
        let public_item: Item = HashMap::from([
            (PK.to_owned(), s(public_key(user.public_id))),
            ("type".to_owned(), s("public")),
            ("privateIdHash".to_owned(), s(hash)),
            ("username".to_owned(), s(&user.username)),
            ("createdAt".to_owned(), s(&user.created_at)),
        ]);
        // The SDK retries a transaction whose answer was lost; the token makes such a
        // retry a no-op instead of a "condition failed" on our own first write, which
        // would leave that user behind and create another.
        let mut request = self
            .client
            .transact_write_items()
            .client_request_token(crate::domain::random::hex(16).map_err(StoreError::Other)?);
        for item in [user_item, public_item] {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| StoreError::Other(e.into()))?;
            request = request.transact_items(TransactWriteItem::builder().put(put).build());
        }
        match request.send().await {
            Ok(_) => Ok(()),
            // A failed condition: an id is taken.
            Err(e) if cancelled_for(&e, "ConditionalCheckFailed") => Err(InsertUserError::Taken),
            // Another transaction held an item: nothing was written, try again later.
            Err(e) if cancelled_for(&e, "TransactionConflict") => Err(StoreError::Unavailable(
                anyhow::anyhow!("DynamoDB TransactWriteItems: {}", DisplayErrorContext(&e)),
            )
            .into()),
            Err(e) => Err(classify("TransactWriteItems", e).into()),
        }
    }

    async fn lookup_for_connect(
        &self,
        requester: &PrivateIdHash,
        target: PublicId,
    ) -> Result<ConnectLookup, StoreError> {
        let (user_pk, public_pk) = (user_key(requester), public_key(target));
        let keys = KeysAndAttributes::builder()
            .keys(HashMap::from([(PK.to_owned(), s(&user_pk))]))
            .keys(HashMap::from([(PK.to_owned(), s(&public_pk))]))
            .consistent_read(true)
            .build()
            .map_err(|e| StoreError::Other(e.into()))?;
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, keys)
            .send()
            .await
            .map_err(|e| classify("BatchGetItem", e))?;
        if out
            .unprocessed_keys()
            .is_some_and(|u| u.values().any(|k| !k.keys().is_empty()))
        {
            // Only happens under throttling; retrying here would break the budget.
            return Err(StoreError::Unavailable(anyhow::anyhow!(
                "DynamoDB BatchGetItem left keys unprocessed"
            )));
        }
        let mut found = ConnectLookup::default();
        let items = out
            .responses()
            .and_then(|r| r.get(&self.table))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for item in items {
            let pk = get_s(item, PK)?;
            if pk == user_pk {
                found.requester = Some(member_of(item)?);
            } else if pk == public_pk {
                let owner = get_s(item, "privateIdHash")?;
                found.target = Some(PublicEntry {
                    owner: PrivateIdHash::from_hex(owner)
                        .ok_or_else(|| corrupt("bad privateIdHash".into()))?,
                    username: get_s(item, "username")?.to_owned(),
                });
            }
        }
        Ok(found)
    }

    async fn join_room(
        &self,
        room: &RoomId,
        members: &[(PrivateIdHash, Member)],
        joiner: &PrivateIdHash,
        max_rooms: usize,
        now: &str,
    ) -> Result<(), JoinError> {
        let members: Item = members
            .iter()
            .map(|(hash, m)| {
                let entry = HashMap::from([
                    ("publicId".to_owned(), s(m.public_id.to_string())),
                    ("username".to_owned(), s(&m.username)),
                ]);
                (hash.to_hex(), AttributeValue::M(entry))
            })
            .collect();
        let room_write = Update::builder()
            .table_name(&self.table)
            .key(PK, s(room_key(room)))
            .update_expression(
                "SET #type = :type, members = :members, \
                 createdAt = if_not_exists(createdAt, :now), updatedAt = :now \
                 REMOVE rl, rt",
            )
            .expression_attribute_names("#type", "type")
            .expression_attribute_values(":type", s("room"))
            .expression_attribute_values(":members", AttributeValue::M(members))
            .expression_attribute_values(":now", s(now))
            .build()
            .map_err(|e| StoreError::Other(e.into()))?;
        // The joiner's own list of rooms, which their messages are checked against.
        // The user item exists (connect has just read it) and is never deleted, so a
        // failed condition means a full list.
        let joiner_write = Update::builder()
            .table_name(&self.table)
            .key(PK, s(user_key(joiner)))
            .update_expression("ADD rooms :rooms")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(rooms) \
                 OR size(rooms) < :max OR contains(rooms, :room))",
            )
            .expression_attribute_values(":rooms", AttributeValue::Ss(vec![room.to_string()]))
            .expression_attribute_values(":room", s(room.as_str()))
            .expression_attribute_values(":max", AttributeValue::N(max_rooms.to_string()))
            .build()
            .map_err(|e| StoreError::Other(e.into()))?;
        // Both writes are idempotent, so a transaction cancelled because another one
        // held an item (the peer connecting at the same moment, the joiner posting)
        // is tried once more before answering 503.
        let mut conflicts = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .client_request_token(crate::domain::random::hex(16).map_err(StoreError::Other)?)
                .transact_items(
                    TransactWriteItem::builder()
                        .update(room_write.clone())
                        .build(),
                )
                .transact_items(
                    TransactWriteItem::builder()
                        .update(joiner_write.clone())
                        .build(),
                )
                .send()
                .await;
            return match result {
                Ok(_) => Ok(()),
                Err(e) if cancelled_for(&e, "ConditionalCheckFailed") => {
                    Err(JoinError::TooManyRooms)
                }
                Err(e) if cancelled_for(&e, "TransactionConflict") => {
                    conflicts += 1;
                    if conflicts < 2 {
                        continue;
                    }
                    Err(StoreError::Unavailable(anyhow::anyhow!(
                        "DynamoDB TransactWriteItems: {}",
                        DisplayErrorContext(&e)
                    ))
                    .into())
                }
                Err(e) => Err(classify("TransactWriteItems", e).into()),
            };
        }
    }

    async fn count_message(
        &self,
        room: &RoomId,
        who: &PrivateIdHash,
        requested: RateWindow,
    ) -> Result<Allowance, StoreError> {
        let n = |v: u64| AttributeValue::N(v.to_string());
        let mut window = requested;
        // The SDK retries an update whose answer was lost; the token tells such a retry
        // that its first attempt already counted, so no message is counted twice.
        let token = crate::domain::random::hex(8).map_err(StoreError::Other)?;
        let counted_by_us = |old: &Item| {
            old.get("rt")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|t| *t == token)
        };
        if window.limit == 0 {
            return Ok(Allowance::Limited);
        }
        // Usually one update; a stale slot takes a restart, and a restart that loses a
        // race (or an update that meets the user's connect transaction) one more turn.
        for _ in 0..3 {
            let slot = rate_slot(window);
            // Every message but the first after a pause of a multiple of RATE_SLOTS
            // windows: the slot is this window's count, or absent.
            let counted = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(PK, s(user_key(who)))
                .update_expression(rate_update(
                    window,
                    "#slot = if_not_exists(#slot, :start) + :one",
                ))
                .condition_expression(
                    "contains(rooms, :room) AND (attribute_not_exists(#slot) \
                     OR (#slot >= :start AND #slot < :full)) \
                     AND (attribute_not_exists(rt) OR rt <> :token)",
                )
                .expression_attribute_names("#slot", &slot)
                .expression_attribute_values(":room", s(room.as_str()))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":token", s(&token))
                .expression_attribute_values(":start", n(rate::start(window)))
                .expression_attribute_values(":full", n(rate::full(window)))
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let old = match counted {
                Ok(out) => return allowed(out.attributes.as_ref()),
                Err(e) => match e.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                        failed.item().cloned().unwrap_or_default()
                    }
                    // The user's connect transaction held the item: nothing was written.
                    Some(UpdateItemError::TransactionConflictException(_)) => continue,
                    _ => return Err(classify("UpdateItem", e)),
                },
            };
            if !has_joined(&old, room) {
                return Ok(Allowance::NotMember);
            }
            if counted_by_us(&old) {
                return allowed(Some(&old));
            }
            let counter = old
                .get(&slot)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(later) = counter.and_then(|c| rate::later_of(window, c)) {
                window = later;
                continue;
            }
            if counter.is_some_and(|c| c >= rate::start(window)) {
                return Ok(Allowance::Limited);
            }
            // The slot holds the count of a window RATE_SLOTS (or a multiple) ago:
            // restart it at one.
            let restarted = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(PK, s(user_key(who)))
                .update_expression(rate_update(window, "#slot = :first"))
                .condition_expression(
                    "contains(rooms, :room) AND \
                     (attribute_not_exists(#slot) OR #slot < :start) AND \
                     (attribute_not_exists(rt) OR rt <> :token)",
                )
                .expression_attribute_names("#slot", &slot)
                .expression_attribute_values(":room", s(room.as_str()))
                .expression_attribute_values(":first", n(rate::start(window) + 1))
                .expression_attribute_values(":start", n(rate::start(window)))
                .expression_attribute_values(":token", s(&token))
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match restarted {
                Ok(out) => return allowed(out.attributes.as_ref()),
                Err(e) => match e.as_service_error() {
                    // Our own lost-answer retry: counted already.
                    Some(UpdateItemError::ConditionalCheckFailedException(failed))
                        if failed.item().is_some_and(&counted_by_us) =>
                    {
                        return allowed(failed.item());
                    }
                    // Another message restarted the slot first: count in it.
                    Some(UpdateItemError::ConditionalCheckFailedException(_)) => continue,
                    Some(UpdateItemError::TransactionConflictException(_)) => continue,
                    _ => return Err(classify("UpdateItem", e)),
                },
            }
        }
        Err(StoreError::Unavailable(anyhow::anyhow!(
            "the message counter kept changing under concurrent updates"
        )))
    }

    async fn room_member(
        &self,
        room: &RoomId,
        who: &PrivateIdHash,
    ) -> Result<Option<Member>, StoreError> {
        let hash = who.to_hex();
        // Project only the caller's own entry: the peer's is none of this request's business.
        let item = self
            .get_item(room_key(room), Some(("members.#who", &[("#who", &hash)])))
            .await?;
        item.as_ref()
            .and_then(|i| i.get("members"))
            .and_then(|m| m.as_m().ok())
            .and_then(|m| m.get(&hash))
            .map(member_from)
            .transpose()
    }

    async fn warm_up(&self) {
        // Every function may read this one key (see template.yaml), and nothing else
        // ever uses it.
        let result = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(WARM_UP_KEY))
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %DisplayErrorContext(&e), "DynamoDB warm-up failed");
        }
    }

    fn round_trips(&self) -> usize {
        self.round_trips.load(Ordering::Relaxed)
    }

    async fn get_user(&self, hash: &PrivateIdHash) -> Result<Option<UserRecord>, StoreError> {
        let Some(item) = self.get_item(user_key(hash), None).await? else {
            return Ok(None);
        };
        let public_id = get_s(&item, "publicId")?;
        Ok(Some(UserRecord {
            id: item
                .get("id")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| corrupt("id missing".into()))?,
            public_id: PublicId::parse(public_id)
                .ok_or_else(|| corrupt(format!("bad publicId {public_id:?}")))?,
            private_id_hash: *hash,
            username: get_s(&item, "username")?.to_owned(),
            created_at: get_s(&item, "createdAt")?.to_owned(),
            updated_at: get_s(&item, "updatedAt")?.to_owned(),
        }))
    }

    async fn get_public(&self, public_id: PublicId) -> Result<Option<PublicEntry>, StoreError> {
        let Some(item) = self.get_item(public_key(public_id), None).await? else {
            return Ok(None);
        };
        Ok(Some(PublicEntry {
            owner: PrivateIdHash::from_hex(get_s(&item, "privateIdHash")?)
                .ok_or_else(|| corrupt("bad privateIdHash".into()))?,
            username: get_s(&item, "username")?.to_owned(),
        }))
    }

    async fn room_members(
        &self,
        room: &RoomId,
    ) -> Result<Option<Vec<(PrivateIdHash, Member)>>, StoreError> {
        let Some(item) = self.get_item(room_key(room), None).await? else {
            return Ok(None);
        };
        let members = item
            .get("members")
            .and_then(|m| m.as_m().ok())
            .ok_or_else(|| corrupt("room without members".into()))?;
        let mut out = Vec::with_capacity(members.len());
        for (hash, value) in members {
            let hash =
                PrivateIdHash::from_hex(hash).ok_or_else(|| corrupt("bad member hash".into()))?;
            out.push((hash, member_from(value)?));
        }
        out.sort_by_key(|(hash, _)| *hash);
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_configuration_names_what_is_missing() {
        let full = [
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
        ];
        let without = |missing: &str| {
            let env: HashMap<&str, &str> = full
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            DynamoStore::from_lambda_env(
                &|name| env.get(name).map(|v| v.to_string()),
                "table",
                Timeouts::default(),
            )
            .map(|store| store.client.config().region().map(|r| r.to_string()))
        };
        assert_eq!(without("none"), Ok(Some("eu-west-1".into())));
        assert_eq!(without("AWS_SESSION_TOKEN"), Ok(Some("eu-west-1".into())));
        for name in ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            assert_eq!(without(name), Err(ConfigError::Missing(name)));
        }
    }

    #[test]
    fn the_bundled_roots_are_the_five_amazon_trust_services_roots() {
        let text = std::str::from_utf8(AMAZON_ROOTS).unwrap();
        assert_eq!(text.matches("-----BEGIN CERTIFICATE-----").count(), 5);
        assert!(amazon_roots_client().is_ok());
        // What the connector, built on first use, does with them: each must parse
        // into a trust anchor.
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(AMAZON_ROOTS) {
            roots.add(cert.unwrap()).unwrap();
        }
        assert_eq!(roots.len(), 5);
    }
}
