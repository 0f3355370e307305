//! Handler CPU per request with no I/O: each route's full Lambda handler (API Gateway
//! event parsing, validation, domain logic, response and its log line) over a store and
//! a publisher that answer at once. `cargo bench -p benchmarks --bench handlers`.

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use secret_rooms::domain::addresses::{AddressKey, AddressLimit, CreateLimit};
use secret_rooms::domain::history::Cursor;
use secret_rooms::domain::messages::RateLimit;
use secret_rooms::domain::ports::SystemClock;
use secret_rooms::domain::rooms::RoomKey;
use secret_rooms::domain::sent::LastSent;
use secret_rooms::domain::{PrivateId, PrivateIdHash, PublicId, RoomId};
use secret_rooms::http::routes;
use secret_rooms::http::{Endpoint, Route};
use secret_rooms::lambda;
use secret_rooms::realtime::pusher::PusherCredentials;
use secret_rooms::realtime::{Realtime, RealtimeError};
use secret_rooms::store::{
    Allowance, Announce, Audience, CreateQuota, HistoryPage, InsertUserError, JoinError, Joining,
    Keeping, KeptMessage, LastMessage, ListEntry, ListStore, Member, Membership, MessageStore,
    Offer, PublicEntry, RateWindow, Requester, RoomStore, RoomsOf, RotateError, Store, StoreError,
    UserRecord, UserStore,
};
use secret_rooms_test_kit::events::api_event;
use serde_json::json;
use std::hint::black_box;
use std::sync::Arc;

/// Answers every call at once, as a member of every room.
struct InstantStore;

fn member() -> Member {
    Member {
        public_id: PublicId::from_number(123_456).unwrap_or_else(|| unreachable!()),
        username: "Brave Otter".into(),
    }
}

#[async_trait]
impl UserStore for InstantStore {
    async fn reserve_user_ids(&self, count: u64) -> Result<u64, StoreError> {
        Ok(count)
    }

    async fn insert_user(
        &self,
        _: &UserRecord,
        _: Option<&CreateQuota>,
    ) -> Result<(), InsertUserError> {
        Ok(())
    }

    async fn member_for_connect(&self, _: &PrivateIdHash) -> Result<Option<Requester>, StoreError> {
        Ok(Some(Requester {
            member: member(),
            since: "2026-11-30T00:00:00.000Z".into(),
            public_key: None,
            rooms: Default::default(),
            connects: None,
            announced: Default::default(),
        }))
    }

    async fn rotate_public_id(
        &self,
        _: &PrivateIdHash,
        _: &Member,
        _: PublicId,
        _: Option<&CreateQuota>,
        _: &str,
    ) -> Result<(), RotateError> {
        Ok(())
    }

    async fn get_user(&self, _: &PrivateIdHash) -> Result<Option<UserRecord>, StoreError> {
        Ok(None)
    }

    async fn get_public(&self, _: PublicId) -> Result<Option<PublicEntry>, StoreError> {
        Ok(None)
    }
}

#[async_trait]
impl RoomStore for InstantStore {
    async fn join_room(&self, _: &Joining<'_>) -> Result<Announce, JoinError> {
        Ok(Announce::Now)
    }

    async fn room_member(
        &self,
        _: &RoomId,
        _: &PrivateIdHash,
    ) -> Result<Option<Membership>, StoreError> {
        Ok(Some(Membership {
            member: member(),
            since: None,
            closed: false,
            peer: None,
            peer_id: None,
        }))
    }

    async fn close_room(
        &self,
        _: &RoomId,
        _: &PrivateIdHash,
        _: &[PublicId],
        _: Option<&PrivateIdHash>,
        _: &str,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn room_members(
        &self,
        _: &RoomId,
    ) -> Result<Option<Vec<(PrivateIdHash, Member)>>, StoreError> {
        Ok(None)
    }
}

#[async_trait]
impl MessageStore for InstantStore {
    async fn count_message(
        &self,
        _: &RoomId,
        _: &PrivateIdHash,
        _: RateWindow,
        _: &LastSent,
    ) -> Result<Allowance, StoreError> {
        Ok(Allowance::Allowed(member()))
    }

    async fn republish(
        &self,
        _: &PrivateIdHash,
        _: &LastSent,
        _: &LastSent,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn keep_message(
        &self,
        _: &RoomId,
        _: &KeptMessage,
        _: u64,
        _: Keeping,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn list_messages(
        &self,
        _: &RoomId,
        _: &Cursor,
        _: usize,
        _: u64,
    ) -> Result<HistoryPage, StoreError> {
        Ok(HistoryPage {
            messages: Vec::new(),
            next: None,
        })
    }

    async fn list_messages_before(
        &self,
        _: &RoomId,
        _: &Cursor,
        _: Option<&Cursor>,
        _: usize,
        _: u64,
    ) -> Result<HistoryPage, StoreError> {
        Ok(HistoryPage {
            messages: Vec::new(),
            next: None,
        })
    }

    async fn newest_message(&self, _: &RoomId) -> Result<Option<LastMessage>, StoreError> {
        Ok(None)
    }
}

#[async_trait]
impl ListStore for InstantStore {
    async fn rooms_of(&self, _: &PrivateIdHash, _: usize) -> Result<Option<RoomsOf>, StoreError> {
        Ok(None)
    }

    async fn offer(&self, _: PublicId, _: &RoomId) -> Result<Option<Offer>, StoreError> {
        Ok(None)
    }

    async fn audience(&self, _: &RoomId) -> Result<Option<Audience>, StoreError> {
        Ok(None)
    }

    async fn note_message(
        &self,
        _: &PrivateIdHash,
        _: &RoomId,
        _: ListEntry<'_>,
        _: &LastMessage,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn copy_offer(
        &self,
        _: &PrivateIdHash,
        _: PublicId,
        _: &str,
        _: &Offer,
        _: Option<&LastMessage>,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn drop_offer(
        &self,
        _: &PrivateIdHash,
        _: PublicId,
        _: &RoomId,
        _: &str,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn drop_offers_to(&self, _: &PrivateIdHash, _: PublicId) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl Store for InstantStore {
    fn round_trips(&self) -> usize {
        0
    }
}

struct InstantRealtime;

#[async_trait]
impl Realtime for InstantRealtime {
    async fn publish(&self, _: &[&str], _: &str, data: &str) -> Result<(), RealtimeError> {
        black_box(data);
        Ok(())
    }
}

const JSON: Option<&str> = Some("application/json");

fn event(route: Route, param: &str, content_type: Option<&str>, body: String) -> String {
    api_event(route, &route.path_with(param), content_type, Some(&body)).to_string()
}

fn handlers(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let me = PrivateId::generate().unwrap_or_else(|e| panic!("{e}"));
    let store: Arc<dyn Store> = Arc::new(InstantStore);
    let key = RoomKey::new(*b"benchmark-room-key-0123456789abc").unwrap_or_else(|| unreachable!());
    let peer = "654-321";
    let room = key.room_of(
        member().public_id,
        PublicId::parse(peer).unwrap_or_else(|| unreachable!()),
    );
    let private = me.expose();
    let cases = [
        (
            "create-user",
            // With the per-address limit on, as deployed: the address is hashed.
            Endpoint::from(routes::CreateUser {
                limit: Some(AddressLimit {
                    key: AddressKey::derive(b"benchmark-room-key-0123456789abc"),
                    limit: CreateLimit::default(),
                }),
                ..routes::CreateUser::new(store.clone(), Arc::new(SystemClock))
            }),
            event(Route::CreateUser, "", JSON, "{}".into()),
        ),
        (
            "connect",
            Endpoint::from(routes::Connect {
                limits: secret_rooms::domain::rooms::ConnectLimits::UNLIMITED,
                store: store.clone(),
                realtime: Arc::new(InstantRealtime),
                room_key: key.clone(),
                clock: Arc::new(SystemClock),
            }),
            event(
                Route::Connect,
                peer,
                JSON,
                json!({"privateId": private}).to_string(),
            ),
        ),
        (
            "send-message",
            Endpoint::from(routes::SendMessage {
                store: store.clone(),
                realtime: Arc::new(InstantRealtime),
                rate: RateLimit::default(),
                ttl: Default::default(),
                clock: Arc::new(SystemClock),
            }),
            event(
                Route::SendMessage,
                room.as_str(),
                JSON,
                json!({"privateId": private, "message": "hello, how are you today?"}).to_string(),
            ),
        ),
        (
            "channel-auth",
            Endpoint::from(routes::ChannelAuth {
                store,
                credentials: PusherCredentials::new("bench-key", "bench-secret"),
                room_key: key.clone(),
            }),
            event(
                Route::ChannelAuth,
                "",
                Some("application/x-www-form-urlencoded"),
                format!(
                    "socket_id=123.456&channel_name={}&privateId={private}",
                    room.channel()
                ),
            ),
        ),
    ];
    // The request line goes to a sink, as it would to stdout: its formatting is counted.
    let _logs = tracing::subscriber::set_default(secret_rooms::telemetry::subscriber(
        tracing_subscriber::EnvFilter::new("info"),
        std::io::sink,
    ));
    for (name, endpoint, event) in &cases {
        c.bench_function(&format!("handler/{name}"), |b| {
            b.to_async(&runtime).iter(|| async {
                let request =
                    lambda_http::request::from_str(event).unwrap_or_else(|e| panic!("{e}"));
                let response = lambda::http::handle(endpoint, request).await;
                assert!(
                    response.status().is_success(),
                    "{name}: {}",
                    response.status()
                );
                black_box(response)
            })
        });
    }
}

criterion_group!(benches, handlers);
criterion_main!(benches);
