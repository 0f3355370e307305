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
mod rate_slots;

pub use client::{AwsSettings, Timeouts};
pub use codec::item_json;

use super::rate;
use super::schema::{
    CounterItem, InboxItem, JoinedItem, Kind, MemberEntry, MessageItem, OfferItem, PublicItem,
    RoomItem, SideEntry, UserItem, attr, corrupt, keys, side_attr,
};
use super::{
    Allowance, Announce, Audience, CreateQuota, HistoryPage, InsertUserError, JoinError, Joining,
    KeptMessage, LastMessage, ListEntry, Member, Membership, Offer, PublicEntry, RateWindow,
    Requester, RoomsOf, RotateError, Store, StoreError, UserRecord,
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

    /// Every item of the table the room lists derive from (`keys::found`): a pass over
    /// the whole table, a `Scan` per page of keys.
    pub async fn found_items(&self) -> Result<Vec<Derived>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .projection_expression("#pk, #sk, #to")
                .filter_expression("begins_with(#sk, :room) OR begins_with(#sk, :offer)")
                .expression_attribute_names("#pk", attr::PK)
                .expression_attribute_names("#sk", attr::SK)
                .expression_attribute_names("#to", attr::TO)
                .expression_attribute_values(":room", s(keys::ROOM_ENTRY_PREFIX))
                .expression_attribute_values(":offer", s(keys::OFFER_ENTRY_PREFIX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify("Scan", e))?;
            for item in out.items() {
                let to = item.get(attr::TO).and_then(|v| v.as_s().ok());
                found.extend(keys::found(
                    &text_of(item, attr::PK)?,
                    &text_of(item, attr::SK)?,
                    to.map(String::as_str),
                ));
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(found),
            }
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Create the table (on-demand, keys `pk` and `sk`, a stream of new and old images
    /// for the room lists' projection) as the SAM template does; for local development
    /// and tests.
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let mut request = self.client.create_table().table_name(&self.table);
        for (name, key_type) in [(attr::PK, KeyType::Hash), (attr::SK, KeyType::Range)] {
            let attribute = AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_error)?;
            let key = KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(build_error)?;
            request = request.attribute_definitions(attribute).key_schema(key);
        }
        let stream = StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::NewAndOldImages)
            .build()
            .map_err(build_error)?;
        request
            .billing_mode(BillingMode::PayPerRequest)
            .stream_specification(stream)
            .send()
            .await
            .map_err(|e| classify("CreateTable", e))?;
        // As template.yaml: per-address counts go once their window has passed, kept
        // messages once their MESSAGE_TTL has.
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(attr::TTL)
            .enabled(true)
            .build()
            .map_err(build_error)?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(|e| classify("UpdateTimeToLive", e))?;
        Ok(())
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

    /// One counting update of `who`'s slot for `window`, conditioned on membership of
    /// `room`, on the slot (`condition`) and on not having counted already (`token`).
    /// `Ok` carries the updated item; `Err(Some(old))` a refusal and what the item held.
    async fn count_update(
        &self,
        count: &Count<'_>,
        window: RateWindow,
        set: &str,
        condition: &str,
        values: &[(&str, u64)],
    ) -> Result<Result<Item, Option<Item>>, StoreError> {
        let Count { who, room, sent } = *count;
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::user(who))))
            .update_expression(rate_slots::update_expression(window, set))
            .condition_expression(format!(
                "contains({rooms}, :room) AND ({condition}) \
                 AND (attribute_not_exists({lm}) OR NOT begins_with({lm}, :sent_id))",
                rooms = attr::ROOMS,
                lm = attr::LAST_MESSAGE,
            ))
            .expression_attribute_names("#slot", rate_slots::slot(window))
            .expression_attribute_values(":room", room_tag(room)?)
            .expression_attribute_values(":sent", s(sent.encode()))
            .expression_attribute_values(":sent_id", s(sent.id_part()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (name, value) in values {
            request = request.expression_attribute_values(*name, n(value));
        }
        match request.send().await {
            Ok(out) => Ok(Ok(out.attributes.unwrap_or_default())),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(Err(Some(failed.item().cloned().unwrap_or_default())))
                }
                // The user's connect transaction held the item: nothing was written.
                Some(UpdateItemError::TransactionConflictException(_)) => Ok(Err(None)),
                _ => Err(classify("UpdateItem", e)),
            },
        }
    }
}

/// A page of history from the items read in order (at most `limit` + 1, each with its
/// `ttl`): the first `limit`, less the expired ones, and where the next page starts when
/// there is one more.
pub(super) fn history_page(
    mut read: Vec<(u64, KeptMessage)>,
    limit: usize,
    now_secs: u64,
) -> HistoryPage {
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

/// One message being counted: its sender, room and request token.
#[derive(Clone, Copy)]
struct Count<'a> {
    who: &'a PrivateIdHash,
    room: &'a RoomId,
    sent: &'a LastSent,
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

/// The sender as a room names them, from their user item after a count.
fn allowed(item: &Item) -> Result<Allowance, StoreError> {
    member_of(item).map(Allowance::Allowed)
}

fn sent_before(item: &Item) -> Result<Allowance, StoreError> {
    let first = last_sent(item).ok_or_else(|| corrupt("a retry found no last message"))?;
    Ok(Allowance::SentBefore {
        member: member_of(item)?,
        first,
    })
}

/// What `who`'s user item remembers of their last message.
fn last_sent(item: &Item) -> Option<LastSent> {
    let text = item.get(attr::LAST_MESSAGE)?.as_s().ok()?;
    LastSent::decode(text)
}

/// What a refused count found in the user item (which may be missing: then empty).
fn found(old: &Item, room: &RoomId, window: RateWindow, sent: &LastSent) -> Found {
    Found {
        joined: lists_room(old, room),
        sent_before: last_sent(old).is_some_and(|last| last.same_id(sent)),
        counter: old
            .get(&rate_slots::slot(window))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok()),
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn reserve_user_ids(&self, count: u64) -> Result<u64, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::USER_COUNTER)))
            .update_expression("ADD #value :count")
            .expression_attribute_names("#value", attr::VALUE)
            .expression_attribute_values(":count", n(count))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| classify("UpdateItem", e))?;
        let counter: CounterItem = from_item(out.attributes().unwrap_or(&Item::new()))?;
        Ok(counter.value)
    }

    async fn insert_user(
        &self,
        user: &UserRecord,
        quota: Option<&CreateQuota>,
    ) -> Result<(), InsertUserError> {
        let mut writes = Vec::new();
        for item in [
            to_item(
                &keys::user(&user.private_id_hash),
                keys::ITEM,
                &UserItem::new(user),
            )?,
            to_item(
                &keys::public(user.public_id),
                keys::ITEM,
                &PublicItem::new(user),
            )?,
        ] {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(format!("attribute_not_exists({})", attr::PK))
                .build()
                .map_err(build_error)?;
            writes.push(TransactWriteItem::builder().put(put).build());
        }
        // The third item, when limited: the source address's count for the window.
        const QUOTA_INDEX: usize = 2;
        if let Some(quota) = quota {
            writes.push(
                TransactWriteItem::builder()
                    .update(self.quota_update(quota)?)
                    .build(),
            );
        }
        // A transaction cancelled because another held one of its items (two creates
        // from one address at once) wrote nothing: tried again, twice at most.
        let mut conflicts = 0;
        loop {
            // The SDK retries a transaction whose answer was lost; the token makes such
            // a retry a no-op instead of a "condition failed" on our own first write,
            // which would leave that user behind and create another.
            let token = crate::domain::random::hex(16).map_err(StoreError::Other)?;
            let result = self
                .client
                .transact_write_items()
                .client_request_token(token)
                .set_transact_items(Some(writes.clone()))
                .send()
                .await;
            return match result {
                Ok(_) => Ok(()),
                // The address's count first: drawing other ids would not help.
                Err(e) if condition_failed_at(&e, QUOTA_INDEX) => Err(InsertUserError::RateLimited),
                // A failed condition on a user item: an id is taken.
                Err(e) if cancelled_for(&e, "ConditionalCheckFailed") => {
                    Err(InsertUserError::Taken)
                }
                Err(e) if cancelled_for(&e, "TransactionConflict") => {
                    conflicts += 1;
                    if conflicts < 3 {
                        continue;
                    }
                    Err(conflict(&e).into())
                }
                Err(e) => Err(classify("TransactWriteItems", e).into()),
            };
        }
    }

    async fn member_for_connect(
        &self,
        requester: &PrivateIdHash,
    ) -> Result<Option<Requester>, StoreError> {
        // The user item but its rate slots and token: what a room names its member by,
        // since when, their key, and the open rooms they joined (whether this connect
        // joins anew).
        let item = self
            .get_item(
                keys::user(requester),
                Some((
                    "#id, #public, #name, #created, #updated, #since, #key, #rooms, #cr, #ra",
                    &[
                        ("#cr", attr::CONNECTS),
                        ("#ra", attr::ANNOUNCED),
                        ("#id", attr::ID),
                        ("#updated", attr::UPDATED_AT),
                        ("#public", attr::PUBLIC_ID),
                        ("#name", attr::USERNAME),
                        ("#created", attr::CREATED_AT),
                        ("#since", attr::PUBLIC_ID_SINCE),
                        ("#key", attr::PUBLIC_KEY),
                        ("#rooms", attr::ROOMS),
                    ],
                )),
            )
            .await?;
        let Some(item) = item else {
            return Ok(None);
        };
        // The projection holds what the user item's `requester` needs; the rest of the
        // item (rate slots, token) is left on the server.
        from_item::<UserItem>(&item)?.requester().map(Some)
    }

    async fn join_room(&self, joining: &Joining<'_>) -> Result<Announce, JoinError> {
        let Joining {
            room,
            side,
            joiner,
            requester,
            target,
            max_rooms,
            connects,
            offer_expires_at: _,
            now,
        } = joining.clone();
        let entry = SideEntry::new(joiner, &requester.member, &requester.since, target, now);
        // The room in the joiner's own list, with the public id they connected to ...
        let joined_write = Update::builder()
            .table_name(&self.table)
            .key(attr::PK, s(keys::user(joiner)))
            .key(attr::SK, s(keys::room_entry(room)))
            .update_expression(
                "SET #type = :type, #room = :room, #peer = :peer, #since = :since, \
                 #joined = if_not_exists(#joined, :now)",
            )
            .expression_attribute_names("#type", attr::TYPE)
            .expression_attribute_names("#room", attr::ROOM_ID)
            .expression_attribute_names("#peer", attr::PEER)
            .expression_attribute_names("#since", attr::SINCE)
            .expression_attribute_names("#joined", attr::JOINED_AT)
            .expression_attribute_values(":type", to_attribute(&Kind::Joined)?)
            .expression_attribute_values(":room", s(room.as_str()))
            .expression_attribute_values(":peer", s(target.to_string()))
            .expression_attribute_values(":since", s(&requester.since))
            .expression_attribute_values(":now", s(now))
            .build()
            .map_err(build_error)?;
        // ... and offered in the target's inbox (at the latest connect), with the joiner's
        // key when they registered one: written alike whoever holds the target.
        let mut offer_set =
            "SET #type = :type, #room = :room, #from = :from, #opened = :now, #ttl = :ttl"
                .to_owned();
        let mut offer_write = Update::builder();
        if let Some(public_key) = requester.public_key {
            offer_set.push_str(", #key = :key");
            offer_write = offer_write
                .expression_attribute_names("#key", attr::PUBLIC_KEY)
                .expression_attribute_values(":key", s(public_key.to_string()));
        }
        let offer_write = offer_write
            .table_name(&self.table)
            .key(attr::PK, s(keys::public(target)))
            .key(attr::SK, s(keys::room_entry(room)))
            .update_expression(offer_set)
            .expression_attribute_names("#type", attr::TYPE)
            .expression_attribute_names("#room", attr::ROOM_ID)
            .expression_attribute_names("#from", attr::FROM)
            .expression_attribute_names("#opened", attr::OPENED_AT)
            .expression_attribute_names("#ttl", attr::TTL)
            .expression_attribute_values(":ttl", n(joining.offer_expires_at))
            .expression_attribute_values(":type", to_attribute(&Kind::Offer)?)
            .expression_attribute_values(":room", s(room.as_str()))
            .expression_attribute_values(
                ":from",
                to_attribute(&MemberEntry::new(&requester.member))?,
            )
            .expression_attribute_values(":now", s(now))
            .build()
            .map_err(build_error)?;
        let room_write = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::room(room))))
            .update_expression(
                "SET #type = :type, #side = :member, \
                 #created = if_not_exists(#created, :now), #updated = :now \
                 REMOVE rl, rt",
            )
            // A blocked room never reopens.
            .condition_expression("attribute_not_exists(#closed)")
            .expression_attribute_names("#closed", attr::CLOSED_AT)
            .expression_attribute_names("#type", attr::TYPE)
            .expression_attribute_names("#side", side_attr(side))
            .expression_attribute_names("#created", attr::CREATED_AT)
            .expression_attribute_names("#updated", attr::UPDATED_AT)
            .expression_attribute_values(":type", to_attribute(&Kind::Room)?)
            .expression_attribute_values(":member", to_attribute(&entry)?)
            .expression_attribute_values(":now", s(now))
            .build()
            .map_err(build_error)?;
        // (`REMOVE`: the rate maps rooms held before counts moved to the user item.)
        // The joiner's own list of open rooms, which their messages are checked against,
        // and their connect counter. A first join adds the room's tag and counts against
        // the cap (blocked rooms too: `joins` never goes down), conditioned on the tag
        // being new and the count under the cap; a join again is conditioned on the tag
        // being still there. Either counts the connect: on from the counter the joiner's
        // read found in this window, or anew in a later one, conditioned on the counter
        // being as read (a concurrent connect's change is read from the refusal). A
        // joiner with no user item fails every condition.
        let joining_again = requester.rooms.contains(&room.tag());
        let mut counter = requester.connects;
        let mut announced = requester.announced.clone();
        let mut conflicts = 0;
        loop {
            let window = counter
                .and_then(|c| rate::later_of(connects, c))
                .unwrap_or(connects);
            let (start, full) = (rate::start(window), rate::full(window));
            let current = counter.is_some_and(|c| c >= start);
            if counter.is_some_and(|c| c >= full) {
                return Err(JoinError::RateLimited);
            }
            // The announcement, by the marks of this window (none in a new one).
            let none = BTreeSet::new();
            let marks = if current { &announced } else { &none };
            let (announce, mark) = crate::domain::rooms::announcing(marks, room, !joining_again);
            let mut sets = Vec::new();
            let mut adds = Vec::new();
            let count_condition = if current {
                sets.push("#cr = #cr + :one");
                "#cr >= :start AND #cr < :full"
            } else {
                sets.push("#cr = :first");
                "(attribute_not_exists(#cr) OR #cr < :start)"
            };
            match (&mark, current) {
                (Some(_), true) => adds.push("#ra :mark"),
                (Some(_), false) => sets.push("#ra = :mark"),
                (None, _) => {}
            }
            if !joining_again {
                adds.extend(["#rooms :rooms", "#joins :one"]);
            }
            let mut expression = format!("SET {}", sets.join(", "));
            if !adds.is_empty() {
                expression = format!("ADD {} {expression}", adds.join(", "));
            }
            let mut update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(keys::user(joiner))))
                .update_expression(expression)
                .expression_attribute_names("#pk", attr::PK)
                .expression_attribute_names("#rooms", attr::ROOMS)
                .expression_attribute_names("#cr", attr::CONNECTS)
                .expression_attribute_values(":room", room_tag(room)?)
                .expression_attribute_values(":start", n(start))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            if let Some(mark) = &mark {
                update = update
                    .expression_attribute_names("#ra", attr::ANNOUNCED)
                    .expression_attribute_values(
                        ":mark",
                        aws_sdk_dynamodb::types::AttributeValue::Ss(vec![mark.clone()]),
                    );
            }
            if current || !joining_again {
                update = update.expression_attribute_values(":one", n(1));
            }
            update = if current {
                update.expression_attribute_values(":full", n(full))
            } else {
                update.expression_attribute_values(":first", n(start + 1))
            };
            update = if joining_again {
                update.condition_expression(format!(
                    "attribute_exists(#pk) AND contains(#rooms, :room) AND {count_condition}"
                ))
            } else {
                update
                    .condition_expression(format!(
                        "attribute_exists(#pk) AND NOT contains(#rooms, :room) \
                         AND (attribute_not_exists(#joins) OR #joins < :max) AND {count_condition}"
                    ))
                    .expression_attribute_names("#joins", attr::JOINS)
                    .expression_attribute_values(":rooms", room_tags(room)?)
                    .expression_attribute_values(":max", n(max_rooms))
            };
            let joiner_write = TransactWriteItem::builder()
                .update(update.build().map_err(build_error)?)
                .build();
            // Every write is idempotent, so a transaction cancelled because another one
            // held an item (the peer connecting at the same moment, the joiner posting)
            // is tried once more before answering 503.
            let result = self
                .client
                .transact_write_items()
                .client_request_token(crate::domain::random::hex(16).map_err(StoreError::Other)?)
                .transact_items(
                    TransactWriteItem::builder()
                        .update(room_write.clone())
                        .build(),
                )
                .transact_items(joiner_write)
                .transact_items(
                    TransactWriteItem::builder()
                        .update(joined_write.clone())
                        .build(),
                )
                .transact_items(
                    TransactWriteItem::builder()
                        .update(offer_write.clone())
                        .build(),
                )
                .send()
                .await;
            return match result {
                Ok(_) => Ok(announce),
                Err(e) if condition_failed_at(&e, 0) => Err(JoinError::Closed),
                // The joiner's condition: no user at all; a counter changed since it was
                // read (a concurrent connect: counted again from what the refusal shows);
                // joined at the same moment by another connect of theirs (which wrote
                // what this one would have); closed in between (the tag of a room joined
                // again is gone); or the cap.
                Err(e) if cancelled_for(&e, "ConditionalCheckFailed") => match failed_item(&e, 1) {
                    None => Err(JoinError::NoSuchJoiner),
                    Some(old) if connect_counter(&old) != counter => {
                        conflicts += 1;
                        if conflicts > 3 {
                            return Err(JoinError::Store(StoreError::Unavailable(
                                anyhow::anyhow!("the connect counter kept changing"),
                            )));
                        }
                        counter = connect_counter(&old);
                        announced = announced_marks(&old);
                        continue;
                    }
                    // (That connect announced the room.)
                    Some(old) if !joining_again && lists_room(&old, room) => Ok(Announce::Skip),
                    Some(_) if joining_again => Err(JoinError::Closed),
                    Some(_) => Err(JoinError::TooManyRooms),
                },
                Err(e) if cancelled_for(&e, "TransactionConflict") => {
                    conflicts += 1;
                    if conflicts < 2 {
                        continue;
                    }
                    Err(conflict(&e).into())
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
        sent: &LastSent,
    ) -> Result<Allowance, StoreError> {
        if requested.limit == 0 {
            return Ok(Allowance::Limited);
        }
        let mut window = requested;
        // A retry of the sender's last message (theirs, or the SDK's of an update whose
        // answer was lost) finds it remembered, and is not counted again.
        let count = Count { who, room, sent };
        // Usually one update; a stale slot takes a restart, and a restart that loses a
        // race (or an update that meets the user's connect transaction) one more turn.
        for _ in 0..3 {
            let (start, full) = (rate::start(window), rate::full(window));
            // Every message but the first after a pause of a multiple of RATE_SLOTS
            // windows: the slot is this window's count, or absent.
            let counted = self
                .count_update(
                    &count,
                    window,
                    "#slot = if_not_exists(#slot, :start) + :one",
                    "attribute_not_exists(#slot) OR (#slot >= :start AND #slot < :full)",
                    &[(":start", start), (":full", full), (":one", 1)],
                )
                .await?;
            let old = match counted {
                Ok(item) => return allowed(&item),
                Err(Some(old)) => old,
                Err(None) => continue,
            };
            match rate_slots::after_refusal(window, found(&old, room, window, sent)) {
                // Not an open room of theirs: a closed one (one more read, on this
                // refusal only), or none.
                Next::NotMember => {
                    let membership = self.room_member(room, who).await?;
                    return Ok(if membership.is_some_and(|m| m.closed) {
                        Allowance::Closed
                    } else {
                        Allowance::NotMember
                    });
                }
                Next::SentBefore => return sent_before(&old),
                Next::Limited => return Ok(Allowance::Limited),
                Next::CountIn(later) => {
                    window = later;
                    continue;
                }
                Next::Restart => {}
            }
            let restarted = self
                .count_update(
                    &count,
                    window,
                    "#slot = :first",
                    "attribute_not_exists(#slot) OR #slot < :start",
                    &[(":first", start + 1), (":start", start)],
                )
                .await?;
            match restarted {
                Ok(item) => return allowed(&item),
                // A retry (ours of a lost answer, or the sender's): counted already.
                Err(Some(old)) if found(&old, room, window, sent).sent_before => {
                    return sent_before(&old);
                }
                // Another message restarted the slot first (or the connect transaction
                // held the item): count again.
                Err(_) => continue,
            }
        }
        Err(StoreError::Unavailable(anyhow::anyhow!(
            "the message counter kept changing under concurrent updates"
        )))
    }

    async fn republish(
        &self,
        who: &PrivateIdHash,
        last: &LastSent,
        next: &LastSent,
    ) -> Result<bool, StoreError> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::user(who))))
            .update_expression("SET #lm = :next")
            .condition_expression("#lm = :last")
            .expression_attribute_names("#lm", attr::LAST_MESSAGE)
            .expression_attribute_values(":last", s(last.encode()))
            .expression_attribute_values(":next", s(next.encode()))
            .send()
            .await;
        match updated {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(false),
                // The user's connect transaction held the item: not published again.
                Some(UpdateItemError::TransactionConflictException(_)) => Ok(false),
                _ => Err(classify("UpdateItem", e)),
            },
        }
    }

    async fn room_member(
        &self,
        room: &RoomId,
        who: &PrivateIdHash,
    ) -> Result<Option<Membership>, StoreError> {
        let Some(item) = self.get_item(keys::room(room), None).await? else {
            return Ok(None);
        };
        from_item::<RoomItem>(&item)?.membership(who)
    }

    async fn keep_message(
        &self,
        room: &RoomId,
        message: &KeptMessage,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        let item = to_item(
            &keys::room(room),
            &keys::message(&message.cursor),
            &MessageItem::new(message, expires_at),
        )?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| classify("PutItem", e))?;
        Ok(())
    }

    async fn list_messages(
        &self,
        room: &RoomId,
        after: &Cursor,
        limit: usize,
        now_secs: u64,
    ) -> Result<HistoryPage, StoreError> {
        // Message sort keys all have one length, so `MSG#<after> ` sorts after the item
        // at `after` and before every later one: BETWEEN then excludes exactly `after`.
        // One item more than the page says whether another page follows.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :after AND :end")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .expression_attribute_values(":pk", s(keys::room(room)))
            .expression_attribute_values(":after", s(format!("{} ", keys::message(after))))
            .expression_attribute_values(":end", s(format!("{}~", keys::MESSAGE_PREFIX)))
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        let mut read = Vec::new();
        for item in out.items().iter().take(limit + 1) {
            let sk = text_of(item, attr::SK)?;
            let message: MessageItem = from_item(item)?;
            read.push((message.ttl, message.kept(&sk)?));
        }
        Ok(history_page(read, limit, now_secs))
    }

    async fn list_messages_before(
        &self,
        room: &RoomId,
        floor: &Cursor,
        before: Option<&Cursor>,
        limit: usize,
        now_secs: u64,
    ) -> Result<HistoryPage, StoreError> {
        // Newest first, from `before` (read too, as BETWEEN is inclusive, and left out:
        // one item more read for it) down to just past `floor`.
        let high = before.map_or(format!("{}~", keys::MESSAGE_PREFIX), keys::message);
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :floor AND :before")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .expression_attribute_values(":pk", s(keys::room(room)))
            .expression_attribute_values(":floor", s(format!("{} ", keys::message(floor))))
            .expression_attribute_values(":before", s(high))
            .scan_index_forward(false)
            .limit(i32::try_from(limit + 2).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        let mut read = Vec::new();
        for item in out.items() {
            let sk = text_of(item, attr::SK)?;
            let message: MessageItem = from_item(item)?;
            let kept = message.kept(&sk)?;
            if Some(&kept.cursor) != before && read.len() <= limit {
                read.push((message.ttl, kept));
            }
        }
        Ok(history_page(read, limit, now_secs))
    }

    async fn close_room(
        &self,
        room: &RoomId,
        blocker: &PrivateIdHash,
        inboxes: &[PublicId],
        peer: Option<&PrivateIdHash>,
        now: &str,
    ) -> Result<bool, StoreError> {
        let mut room_write = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::room(room))))
            .update_expression("SET #closed = if_not_exists(#closed, :now)")
            .expression_attribute_names("#closed", attr::CLOSED_AT)
            .expression_attribute_values(":now", s(now));
        if peer.is_none() {
            // No peer when the caller read the room: still none, or they would be left
            // open (the caller reads again).
            room_write = room_write
                .condition_expression("attribute_not_exists(#low) OR attribute_not_exists(#high)")
                .expression_attribute_names("#low", attr::LOW)
                .expression_attribute_names("#high", attr::HIGH);
        }
        let room_write = room_write.build().map_err(build_error)?;
        let mut writes = vec![TransactWriteItem::builder().update(room_write).build()];
        for inbox in inboxes {
            let offer_delete = Delete::builder()
                .table_name(&self.table)
                .key(attr::PK, s(keys::public(*inbox)))
                .key(attr::SK, s(keys::room_entry(room)))
                .build()
                .map_err(build_error)?;
            writes.push(TransactWriteItem::builder().delete(offer_delete).build());
        }
        // The room leaves each member's open rooms, which their messages are checked
        // against, and their joined entry says it is closed; only a user who joined the
        // room is written.
        for who in [Some(blocker), peer].into_iter().flatten() {
            let user_write = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(keys::user(who))))
                .update_expression("DELETE #rooms :room")
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#rooms", attr::ROOMS)
                .expression_attribute_names("#pk", attr::PK)
                .expression_attribute_values(":room", room_tags(room)?)
                .build()
                .map_err(build_error)?;
            let joined_write = Update::builder()
                .table_name(&self.table)
                .key(attr::PK, s(keys::user(who)))
                .key(attr::SK, s(keys::room_entry(room)))
                .update_expression("SET #closed = if_not_exists(#closed, :now)")
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#closed", attr::CLOSED_AT)
                .expression_attribute_names("#pk", attr::PK)
                .expression_attribute_values(":now", s(now))
                .build()
                .map_err(build_error)?;
            writes.push(TransactWriteItem::builder().update(user_write).build());
            writes.push(TransactWriteItem::builder().update(joined_write).build());
        }
        let mut conflicts = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .client_request_token(crate::domain::random::hex(16).map_err(StoreError::Other)?)
                .set_transact_items(Some(writes.clone()))
                .send()
                .await;
            return match result {
                Ok(_) => Ok(true),
                Err(e) if condition_failed_at(&e, 0) => Ok(false),
                Err(e) if cancelled_for(&e, "TransactionConflict") && conflicts < 1 => {
                    conflicts += 1;
                    continue;
                }
                Err(e) if cancelled_for(&e, "TransactionConflict") => Err(conflict(&e)),
                Err(e) => Err(classify("TransactWriteItems", e)),
            };
        }
    }

    async fn rooms_of(
        &self,
        who: &PrivateIdHash,
        max_offers: usize,
    ) -> Result<Option<RoomsOf>, StoreError> {
        // One query of the partition, newest sort key first: the user item ("_"), the
        // rooms they joined ("ROOM#", at most MAX_ROOMS), then the copies of offers
        // ("OFFER#"), so that a flood of offers cannot crowd out the rest.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_values(":pk", s(keys::user(who)))
            .scan_index_forward(false)
            .limit(i32::try_from(1 + MAX_ROOMS + max_offers).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        let mut user = None;
        let (mut joined, mut offers) = (Vec::new(), Vec::new());
        for item in out.items() {
            let sk = text_of(item, attr::SK)?;
            if sk == keys::ITEM {
                user = Some(from_item::<UserItem>(item)?);
            } else if sk.starts_with(keys::ROOM_ENTRY_PREFIX) {
                joined.push(from_item::<JoinedItem>(item)?.joined()?);
            } else if sk.starts_with(keys::OFFER_ENTRY_PREFIX) && offers.len() < max_offers {
                offers.push(from_item::<InboxItem>(item)?.inbox_offer()?);
            }
        }
        let Some(user) = user else {
            return Ok(None);
        };
        Ok(Some(RoomsOf {
            requester: user.requester()?,
            joined,
            offers,
        }))
    }

    async fn offer(&self, to: PublicId, room: &RoomId) -> Result<Option<Offer>, StoreError> {
        let key = key_at(keys::public(to), keys::room_entry(room));
        self.get_at(key, None)
            .await?
            .map(|item| from_item::<OfferItem>(&item)?.offer())
            .transpose()
    }

    async fn audience(&self, room: &RoomId) -> Result<Option<Audience>, StoreError> {
        self.get_item(keys::room(room), None)
            .await?
            .map(|item| from_item::<RoomItem>(&item)?.audience())
            .transpose()
    }

    async fn newest_message(&self, room: &RoomId) -> Result<Option<LastMessage>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .expression_attribute_values(":pk", s(keys::room(room)))
            .expression_attribute_values(":prefix", s(keys::MESSAGE_PREFIX))
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        out.items()
            .first()
            .map(|item| {
                let message: MessageItem = from_item(item)?;
                Ok(LastMessage {
                    sent_at: message.sent_at,
                    expires_at: message.ttl,
                })
            })
            .transpose()
    }

    async fn note_message(
        &self,
        who: &PrivateIdHash,
        room: &RoomId,
        entry: ListEntry<'_>,
        last: &LastMessage,
    ) -> Result<(), StoreError> {
        let sk = match entry {
            ListEntry::Joined => keys::room_entry(room),
            ListEntry::Offered { opened_at } => keys::offer_entry(opened_at, room),
        };
        // As `LastMessageEntry::takes`: an entry that is there, starts no later than the
        // message, and notes nothing as new.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_at(keys::user(who), sk)))
            .update_expression("SET #at = :at, #ttl = :ttl")
            .condition_expression(
                "attribute_exists(#pk) AND (attribute_not_exists(#since) OR #since <= :at) \
                 AND (attribute_not_exists(#at) OR #at < :at)",
            )
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#since", attr::SINCE)
            .expression_attribute_names("#at", attr::LAST_MESSAGE_AT)
            .expression_attribute_names("#ttl", attr::LAST_MESSAGE_TTL)
            .expression_attribute_values(":at", s(&last.sent_at))
            .expression_attribute_values(":ttl", n(last.expires_at))
            .send()
            .await;
        unless_condition_failed("UpdateItem", result)
    }

    async fn copy_offer(
        &self,
        owner: &PrivateIdHash,
        to: PublicId,
        since: &str,
        offer: &Offer,
        last: Option<&LastMessage>,
    ) -> Result<(), StoreError> {
        let mut copy = InboxItem::new(to, since, offer);
        if let Some(last) = last {
            copy.last_message.set(last);
        }
        let copy_key = key_at(
            keys::user(owner),
            keys::offer_entry(&offer.opened_at, &offer.room),
        );
        let update = |copy: &InboxItem| -> Result<_, StoreError> {
            // Every attribute of the copy; a key the offer no longer carries goes. A
            // noted message moves forward only (the condition; see below).
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(copy_key.clone()))
                .expression_attribute_names("#publicKey", attr::PUBLIC_KEY);
            let mut set = Vec::new();
            // In name order: the same copy asks the same request, byte for byte.
            let attributes: std::collections::BTreeMap<_, _> =
                to_item(&keys::user(owner), keys::ITEM, copy)?
                    .into_iter()
                    .collect();
            for (name, value) in attributes {
                if name == attr::PK || name == attr::SK {
                    continue;
                }
                set.push(format!("#{name} = :{name}"));
                update = update
                    .expression_attribute_names(format!("#{name}"), &name)
                    .expression_attribute_values(format!(":{name}"), value);
            }
            let mut expression = format!("SET {}", set.join(", "));
            if copy.public_key.is_none() {
                expression.push_str(" REMOVE #publicKey");
            }
            if copy.last_message.last_message_at.is_some() {
                update = update.condition_expression(format!(
                    "attribute_not_exists(#{at}) OR #{at} <= :{at}",
                    at = attr::LAST_MESSAGE_AT
                ));
            }
            Ok(update.update_expression(expression))
        };
        match update(&copy)?.send().await {
            Ok(_) => Ok(()),
            // The copy notes a newer message already (one noted since the newest was
            // read): the copy without it.
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                copy.last_message = Default::default();
                unless_condition_failed("UpdateItem", update(&copy)?.send().await)
            }
            Err(e) => Err(classify("UpdateItem", e)),
        }
    }

    async fn drop_offer(
        &self,
        holder: &PrivateIdHash,
        to: PublicId,
        room: &RoomId,
        opened_at: &str,
    ) -> Result<(), StoreError> {
        self.delete_copy(holder, &to.to_string(), keys::offer_entry(opened_at, room))
            .await
    }

    async fn drop_offers_to(&self, holder: &PrivateIdHash, to: PublicId) -> Result<(), StoreError> {
        let to = to.to_string();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .projection_expression("#sk, #to")
                .expression_attribute_names("#pk", attr::PK)
                .expression_attribute_names("#sk", attr::SK)
                .expression_attribute_names("#to", attr::TO)
                .expression_attribute_values(":pk", s(keys::user(holder)))
                .expression_attribute_values(":prefix", s(keys::OFFER_ENTRY_PREFIX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify("Query", e))?;
            for item in out.items() {
                if item.get(attr::TO).and_then(|v| v.as_s().ok()) == Some(&to) {
                    self.delete_copy(holder, &to, text_of(item, attr::SK)?)
                        .await?;
                }
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(()),
            }
        }
    }

    async fn rotate_public_id(
        &self,
        who: &PrivateIdHash,
        holder: &Member,
        new: PublicId,
        quota: Option<&CreateQuota>,
        now: &str,
    ) -> Result<(), RotateError> {
        let old = holder.public_id;
        let marker = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(
                &keys::public(new),
                keys::ITEM,
                &PublicItem::held(who, &holder.username, now),
            )?))
            .condition_expression(format!("attribute_not_exists({})", attr::PK))
            .build()
            .map_err(build_error)?;
        let user_write = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::user(who))))
            .update_expression("SET #public = :new, #since = :now, #updated = :now")
            .condition_expression("#public = :old")
            .expression_attribute_names("#public", attr::PUBLIC_ID)
            .expression_attribute_names("#since", attr::PUBLIC_ID_SINCE)
            .expression_attribute_names("#updated", attr::UPDATED_AT)
            .expression_attribute_values(":new", s(new.to_string()))
            .expression_attribute_values(":old", s(old.to_string()))
            .expression_attribute_values(":now", s(now))
            .build()
            .map_err(build_error)?;
        // The old marker stays, so the id is never given out again, but names nobody.
        let retire = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::public(old))))
            .update_expression("SET #retired = :now REMOVE #hash, #name")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#retired", attr::RETIRED_AT)
            .expression_attribute_names("#hash", attr::PRIVATE_ID_HASH)
            .expression_attribute_names("#name", attr::USERNAME)
            .expression_attribute_values(":now", s(now))
            .build()
            .map_err(build_error)?;
        let mut writes = vec![
            TransactWriteItem::builder().put(marker).build(),
            TransactWriteItem::builder().update(user_write).build(),
            TransactWriteItem::builder().update(retire).build(),
        ];
        const QUOTA_INDEX: usize = 3;
        if let Some(quota) = quota {
            writes.push(
                TransactWriteItem::builder()
                    .update(self.quota_update(quota)?)
                    .build(),
            );
        }
        let mut conflicts = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .client_request_token(crate::domain::random::hex(16).map_err(StoreError::Other)?)
                .set_transact_items(Some(writes.clone()))
                .send()
                .await;
            return match result {
                Ok(_) => Ok(()),
                Err(e) if condition_failed_at(&e, QUOTA_INDEX) => Err(RotateError::RateLimited),
                Err(e) if condition_failed_at(&e, 0) => Err(RotateError::Taken),
                Err(e) if condition_failed_at(&e, 1) => Err(RotateError::NotHolder),
                // The projection checking the old id's marker at that moment: once more
                // (nothing was written).
                Err(e) if cancelled_for(&e, "TransactionConflict") && conflicts < 1 => {
                    conflicts += 1;
                    continue;
                }
                Err(e) if cancelled_for(&e, "TransactionConflict") => Err(conflict(&e).into()),
                Err(e) => Err(classify("TransactWriteItems", e).into()),
            };
        }
    }

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

    async fn get_user(&self, hash: &PrivateIdHash) -> Result<Option<UserRecord>, StoreError> {
        let Some(item) = self.get_item(keys::user(hash), None).await? else {
            return Ok(None);
        };
        from_item::<UserItem>(&item)?.record(*hash).map(Some)
    }

    async fn get_public(&self, public_id: PublicId) -> Result<Option<PublicEntry>, StoreError> {
        let Some(item) = self.get_item(keys::public(public_id), None).await? else {
            return Ok(None);
        };
        from_item::<PublicItem>(&item)?.entry()
    }

    async fn room_members(
        &self,
        room: &RoomId,
    ) -> Result<Option<Vec<(PrivateIdHash, Member)>>, StoreError> {
        let Some(item) = self.get_item(keys::room(room), None).await? else {
            return Ok(None);
        };
        from_item::<RoomItem>(&item)?.members().map(Some)
    }
}
