//! The `Store` port on DynamoDB: one table (`template.yaml`), the items of
//! [`super::schema`]. Each method is one request (but `count_message`, see there).
//!
//! - `client`: the HTTPS client, timeouts and the round-trip counter;
//! - `codec`: typed items as attribute values;
//! - `rate_slots`: the message counter's slots and what a refused count means;
//! - `errors`: which DynamoDB errors are worth retrying later.

mod client;
mod codec;
mod errors;
mod lists;
mod messages;
mod rate_slots;
mod rooms;
mod table;
mod users;

pub use client::{AwsSettings, Timeouts};
pub use codec::item_json;

use super::rate;
use super::schema::{
    CounterItem, InboxItem, JoinedItem, Kind, MemberEntry, MessageItem, OfferItem, PublicItem,
    RoomItem, SideEntry, UserItem, attr, corrupt, keys, side_attr,
};
use super::{
    Allowance, Announce, Audience, CreateQuota, HistoryPage, InsertUserError, JoinError, Joining,
    Keeping, KeptMessage, LastMessage, ListEntry, Member, Membership, Offer, PublicEntry,
    RateWindow, Requester, RoomStore, RoomsOf, RotateError, StoreError, UserRecord,
};
use crate::domain::history::Cursor;
use crate::domain::projection::Found as Derived;
use crate::domain::rooms::MAX_ROOMS;
use crate::domain::sent::LastSent;
use crate::domain::{PrivateIdHash, PublicId, RoomId};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::error::ProvideErrorMetadata as _;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, Delete, KeySchemaElement, KeyType, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification, TransactWriteItem, Update,
};
use aws_smithy_http_client::HttpClientError;
use codec::{
    Item, announced_marks, connect_counter, from_item, key, key_at, lists_room, n, room_tag,
    room_tags, s, to_attribute, to_item,
};
use errors::{
    build_error, cancelled_for, classify, condition_failed_at, conflict, failed_item,
    unless_condition_failed,
};
use rate_slots::{Found, Next};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    round_trips: Arc<AtomicUsize>,
    /// Where the client's credentials come from (the SDK's client no longer says).
    credentials: Option<SharedCredentialsProvider>,
}

impl DynamoStore {
    /// Count round trips, then create the client: once, as each creation sets up and
    /// checks the whole SDK runtime (about a third of a function's init).
    fn build(
        mut config: aws_sdk_dynamodb::config::Builder,
        table: impl Into<String>,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Self {
        let round_trips = Arc::new(AtomicUsize::new(0));
        config.push_interceptor(client::round_trip_counter(round_trips.clone()));
        Self {
            client: Client::from_conf(config.build()),
            table: table.into(),
            round_trips,
            credentials,
        }
    }

    /// A client configured from what Lambda sets for every function (read by
    /// `config::aws`). It leaves out the SDK's default configuration chain (profile
    /// files, SSO, web identity, container and instance credentials), which a function
    /// never needs and whose code was a third of each binary (see BENCHMARKS.md).
    pub fn from_settings(
        aws: AwsSettings,
        table: impl Into<String>,
        timeouts: Timeouts,
    ) -> Result<Self, HttpClientError> {
        let credentials = Credentials::new(
            aws.access_key_id,
            aws.secret_access_key,
            aws.session_token,
            None,
            "Lambda environment",
        );
        let provider = SharedCredentialsProvider::new(credentials);
        let mut config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(aws.region))
            .credentials_provider(provider.clone())
            .retry_config(RetryConfig::standard())
            .timeout_config(client::timeout_config(timeouts));
        if !aws.endpoint.as_deref().is_some_and(client::is_https) {
            config.set_http_client(Some(client::amazon_roots_client()?));
        }
        config.set_endpoint_url(aws.endpoint);
        Ok(Self::build(config, table, Some(provider)))
    }

    /// A client from the SDK's default configuration chain (credentials from the
    /// environment, profiles, SSO and the rest; region; `AWS_ENDPOINT_URL_DYNAMODB`),
    /// for the local server run against real DynamoDB from a developer's machine, and
    /// for tests. `endpoint` is the override the chain will find, if any: an HTTPS one
    /// keeps the system's roots (a self-hosted server may use any CA).
    pub async fn from_default_chain(
        table: impl Into<String>,
        timeouts: Timeouts,
        endpoint: Option<&str>,
    ) -> Self {
        let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        Self::from_loader(loader, table, timeouts, endpoint).await
    }

    /// As [`Self::from_default_chain`], but at `endpoint` and with the production
    /// timeouts (the fault tests check the bound they give).
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
        Self::from_loader(loader, table, timeouts, Some(endpoint)).await
    }

    async fn from_loader(
        loader: aws_config::ConfigLoader,
        table: impl Into<String>,
        timeouts: Timeouts,
        endpoint: Option<&str>,
    ) -> Self {
        let mut loader = loader.timeout_config(client::timeout_config(timeouts));
        if !endpoint.is_some_and(client::is_https) {
            match client::amazon_roots_client() {
                Ok(client) => loader = loader.http_client(client),
                Err(e) => tracing::warn!(error = %e, "bundled roots unusable; using the system's"),
            }
        }
        let config = loader.load().await;
        Self::build((&config).into(), table, config.credentials_provider())
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Where the client's credentials come from, for a client of another AWS service
    /// beside it (the local server's stream reader).
    pub fn credentials_provider(&self) -> Option<SharedCredentialsProvider> {
        self.credentials.clone()
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get_item(
        &self,
        pk: String,
        projection: Option<(&str, &[(&str, &str)])>,
    ) -> Result<Option<Item>, StoreError> {
        self.get_at(key(pk), projection).await
    }

    /// The item under `key` (strongly consistent), or the attributes `projection` names.
    async fn get_at(
        &self,
        key: Item,
        projection: Option<(&str, &[(&str, &str)])>,
    ) -> Result<Option<Item>, StoreError> {
        let mut request = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
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

    /// Delete the copy of an offer at `sk` in `holder`'s partition if it was made to
    /// `to` (a copy for another public id of theirs stays).
    async fn delete_copy(
        &self,
        holder: &PrivateIdHash,
        to: &str,
        sk: String,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_at(keys::user(holder), sk)))
            .condition_expression("#to = :to")
            .expression_attribute_names("#to", attr::TO)
            .expression_attribute_values(":to", s(to))
            .send()
            .await;
        unless_condition_failed("DeleteItem", result)
    }

    /// Count one more id taken from `quota`'s address in its window, under its limit.
    fn quota_update(&self, quota: &CreateQuota) -> Result<Update, StoreError> {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::address(&quota.address, quota.window))))
            .update_expression("SET #type = :type, #ttl = :ttl ADD #count :one")
            .condition_expression("attribute_not_exists(#count) OR #count < :limit")
            .expression_attribute_names("#type", attr::TYPE)
            .expression_attribute_names("#ttl", attr::TTL)
            .expression_attribute_names("#count", attr::COUNT)
            .expression_attribute_values(":type", to_attribute(&Kind::Address)?)
            .expression_attribute_values(":ttl", n(quota.expires_at))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(quota.limit))
            .build()
            .map_err(build_error)
    }
}

/// A user as rooms name them, from the two attributes of their user item that say so:
/// on the hot paths (every message, every connect), the rest of the item (the rooms
/// joined, the rate slots) is not decoded.
fn member_of(item: &Item) -> Result<Member, StoreError> {
    MemberEntry {
        public_id: text_of(item, attr::PUBLIC_ID)?,
        username: text_of(item, attr::USERNAME)?,
    }
    .member()
}

fn text_of(item: &Item, name: &str) -> Result<String, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .ok_or_else(|| corrupt(format!("user item without {name}")))
}

super::store_by_aggregate!(DynamoStore, {
    async fn warm_up(&self) {
        // Every function may read this one key (see template.yaml), and nothing else
        // ever uses it.
        let result = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::WARM_UP)))
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %DisplayErrorContext(&e), "DynamoDB warm-up failed");
        }
    }

    fn round_trips(&self) -> usize {
        self.round_trips.load(Ordering::Relaxed)
    }
});
