//! Any one route behind one type: the same handlers the Lambda functions run, over
//! `dyn Store` and `dyn Realtime`, for the local server and the tests.

use super::routes::{self, Route};
use super::{ApiError, ApiRequest, ApiResponse, Handler};
use crate::config::{ConfigError, Lookup};
use crate::domain::addresses::AddressLimit;
use crate::domain::history::MessageTtl;
use crate::domain::messages::RateLimit;
use crate::domain::ports::Clock;
use crate::domain::rooms::{ConnectLimits, RoomKey};
use crate::domain::users::IdPolicy;
use crate::realtime::Realtime;
use crate::realtime::pusher::PusherCredentials;
use crate::store::Store;
use std::sync::Arc;

pub enum Endpoint {
    CreateUser(routes::CreateUser<dyn Store>),
    Connect(routes::Connect<dyn Store, dyn Realtime>),
    SendMessage(routes::SendMessage<dyn Store, dyn Realtime>),
    ChannelAuth(routes::ChannelAuth<dyn Store>),
    ListMessages(routes::ListMessages<dyn Store>),
    BlockRoom(routes::BlockRoom<dyn Store>),
    ListRooms(routes::ListRooms<dyn Store>),
    RotateId(routes::RotateId<dyn Store>),
}

impl Handler for Endpoint {
    fn route(&self) -> Route {
        match self {
            Self::CreateUser(h) => h.route(),
            Self::Connect(h) => h.route(),
            Self::SendMessage(h) => h.route(),
            Self::ChannelAuth(h) => h.route(),
            Self::ListMessages(h) => h.route(),
            Self::BlockRoom(h) => h.route(),
            Self::ListRooms(h) => h.route(),
            Self::RotateId(h) => h.route(),
        }
    }

    async fn handle(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        match self {
            Self::CreateUser(h) => h.handle(req).await,
            Self::Connect(h) => h.handle(req).await,
            Self::SendMessage(h) => h.handle(req).await,
            Self::ChannelAuth(h) => h.handle(req).await,
            Self::ListMessages(h) => h.handle(req).await,
            Self::BlockRoom(h) => h.handle(req).await,
            Self::ListRooms(h) => h.handle(req).await,
            Self::RotateId(h) => h.handle(req).await,
        }
    }

    async fn warm_up(&self) {
        match self {
            Self::CreateUser(h) => h.warm_up().await,
            Self::Connect(h) => h.warm_up().await,
            Self::SendMessage(h) => h.warm_up().await,
            Self::ChannelAuth(h) => h.warm_up().await,
            Self::ListMessages(h) => h.warm_up().await,
            Self::BlockRoom(h) => h.warm_up().await,
            Self::ListRooms(h) => h.warm_up().await,
            Self::RotateId(h) => h.warm_up().await,
        }
    }
}

impl Endpoint {
    /// Handle a request end to end (see [`super::respond`]).
    pub async fn respond(&self, req: &ApiRequest, request_id: &str) -> ApiResponse {
        super::respond(self, req, request_id).await
    }

    /// The same handler, reading the time from `clock` (tests fix it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        match &mut self {
            Self::CreateUser(h) => h.clock = clock,
            Self::Connect(h) => h.clock = clock,
            Self::SendMessage(h) => h.clock = clock,
            Self::ListMessages(h) => h.clock = clock,
            Self::BlockRoom(h) => h.clock = clock,
            Self::ListRooms(h) => h.clock = clock,
            Self::RotateId(h) => h.clock = clock,
            Self::ChannelAuth(_) => {}
        }
        self
    }

    /// Every route's endpoint over the same ports and settings, in [`Route::ALL`]'s
    /// order: what a server of all of them (the local server, the tests) builds, so
    /// that none is wired by hand twice.
    pub fn all(w: Wiring) -> Vec<Self> {
        let Wiring {
            store,
            realtime,
            credentials,
            room_key,
            clock,
            rate,
            ttl,
            connect,
            create_limit,
            ids,
        } = w;
        Route::ALL
            .iter()
            .map(|route| match route {
                Route::CreateUser => Self::from(routes::CreateUser {
                    ids,
                    limit: create_limit.clone(),
                    ..routes::CreateUser::new(store.clone(), clock.clone())
                }),
                Route::Connect => Self::from(routes::Connect {
                    store: store.clone(),
                    limits: connect,
                    realtime: realtime.clone(),
                    room_key: room_key.clone(),
                    clock: clock.clone(),
                }),
                Route::SendMessage => Self::from(routes::SendMessage {
                    store: store.clone(),
                    realtime: realtime.clone(),
                    rate,
                    ttl,
                    clock: clock.clone(),
                }),
                Route::ChannelAuth => Self::from(routes::ChannelAuth {
                    store: store.clone(),
                    credentials: credentials.clone(),
                    room_key: room_key.clone(),
                }),
                Route::ListMessages => Self::from(routes::ListMessages {
                    store: store.clone(),
                    clock: clock.clone(),
                }),
                Route::BlockRoom => Self::from(routes::BlockRoom {
                    store: store.clone(),
                    clock: clock.clone(),
                }),
                Route::ListRooms => Self::from(routes::ListRooms {
                    store: store.clone(),
                    room_key: room_key.clone(),
                    clock: clock.clone(),
                }),
                Route::RotateId => Self::from(routes::RotateId {
                    store: store.clone(),
                    ids,
                    limit: create_limit.clone(),
                    clock: clock.clone(),
                }),
            })
            .collect()
    }

    /// Build a route's handler from configuration, as its Lambda function does.
    pub async fn from_env(route: Route, env: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(match route {
            Route::CreateUser => routes::CreateUser::from_env(env).await?.into(),
            Route::Connect => routes::Connect::from_env(env).await?.into(),
            Route::SendMessage => routes::SendMessage::from_env(env).await?.into(),
            Route::ChannelAuth => routes::ChannelAuth::from_env(env).await?.into(),
            Route::ListMessages => routes::ListMessages::from_env(env).await?.into(),
            Route::BlockRoom => routes::BlockRoom::from_env(env).await?.into(),
            Route::ListRooms => routes::ListRooms::from_env(env).await?.into(),
            Route::RotateId => routes::RotateId::from_env(env).await?.into(),
        })
    }
}

/// What [`Endpoint::all`] builds every route from: the ports once, and the settings
/// each route takes (as the functions read them from their variables).
pub struct Wiring {
    pub store: Arc<dyn Store>,
    pub realtime: Arc<dyn Realtime>,
    /// Signs channel subscriptions.
    pub credentials: PusherCredentials,
    pub room_key: RoomKey,
    pub clock: Arc<dyn Clock>,
    /// Messages per sender and window.
    pub rate: RateLimit,
    /// How long messages are kept.
    pub ttl: MessageTtl,
    /// Connects per identity and window, and how long offers stand.
    pub connect: ConnectLimits,
    /// Public ids taken per source address (creates and rotations); `None`: unlimited.
    pub create_limit: Option<AddressLimit>,
    pub ids: IdPolicy,
}

/// A store or publisher behind an `Arc`, concrete or already `dyn`, as the `dyn` the
/// endpoint holds: any route handler converts with `Endpoint::from`.
pub trait IntoDyn<D: ?Sized> {
    fn into_dyn(self: Arc<Self>) -> Arc<D>;
}

impl<S: Store + 'static> IntoDyn<dyn Store> for S {
    fn into_dyn(self: Arc<Self>) -> Arc<dyn Store> {
        self
    }
}

impl IntoDyn<dyn Store> for dyn Store {
    fn into_dyn(self: Arc<Self>) -> Arc<dyn Store> {
        self
    }
}

impl<R: Realtime + 'static> IntoDyn<dyn Realtime> for R {
    fn into_dyn(self: Arc<Self>) -> Arc<dyn Realtime> {
        self
    }
}

impl IntoDyn<dyn Realtime> for dyn Realtime {
    fn into_dyn(self: Arc<Self>) -> Arc<dyn Realtime> {
        self
    }
}

impl<S: IntoDyn<dyn Store> + ?Sized> From<routes::CreateUser<S>> for Endpoint {
    fn from(h: routes::CreateUser<S>) -> Self {
        Self::CreateUser(routes::CreateUser {
            store: h.store.into_dyn(),
            ids: h.ids,
            user_ids: h.user_ids,
            limit: h.limit,
            clock: h.clock,
        })
    }
}

impl<S, R> From<routes::Connect<S, R>> for Endpoint
where
    S: IntoDyn<dyn Store> + ?Sized,
    R: IntoDyn<dyn Realtime> + ?Sized,
{
    fn from(h: routes::Connect<S, R>) -> Self {
        Self::Connect(routes::Connect {
            store: h.store.into_dyn(),
            limits: h.limits,
            realtime: h.realtime.into_dyn(),
            room_key: h.room_key,
            clock: h.clock,
        })
    }
}

impl<S, R> From<routes::SendMessage<S, R>> for Endpoint
where
    S: IntoDyn<dyn Store> + ?Sized,
    R: IntoDyn<dyn Realtime> + ?Sized,
{
    fn from(h: routes::SendMessage<S, R>) -> Self {
        Self::SendMessage(routes::SendMessage {
            store: h.store.into_dyn(),
            realtime: h.realtime.into_dyn(),
            rate: h.rate,
            ttl: h.ttl,
            clock: h.clock,
        })
    }
}

impl<S: IntoDyn<dyn Store> + ?Sized> From<routes::ChannelAuth<S>> for Endpoint {
    fn from(h: routes::ChannelAuth<S>) -> Self {
        Self::ChannelAuth(routes::ChannelAuth {
            store: h.store.into_dyn(),
            credentials: h.credentials,
            room_key: h.room_key,
        })
    }
}

impl<S: IntoDyn<dyn Store> + ?Sized> From<routes::ListMessages<S>> for Endpoint {
    fn from(h: routes::ListMessages<S>) -> Self {
        Self::ListMessages(routes::ListMessages {
            store: h.store.into_dyn(),
            clock: h.clock,
        })
    }
}

impl<S: IntoDyn<dyn Store> + ?Sized> From<routes::BlockRoom<S>> for Endpoint {
    fn from(h: routes::BlockRoom<S>) -> Self {
        Self::BlockRoom(routes::BlockRoom {
            store: h.store.into_dyn(),
            clock: h.clock,
        })
    }
}

impl<S: IntoDyn<dyn Store> + ?Sized> From<routes::ListRooms<S>> for Endpoint {
    fn from(h: routes::ListRooms<S>) -> Self {
        Self::ListRooms(routes::ListRooms {
            store: h.store.into_dyn(),
            room_key: h.room_key,
            clock: h.clock,
        })
    }
}

impl<S: IntoDyn<dyn Store> + ?Sized> From<routes::RotateId<S>> for Endpoint {
    fn from(h: routes::RotateId<S>) -> Self {
        Self::RotateId(routes::RotateId {
            store: h.store.into_dyn(),
            ids: h.ids,
            limit: h.limit,
            clock: h.clock,
        })
    }
}
