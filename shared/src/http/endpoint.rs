//! All four routes behind one type, over shared trait objects: what the local server
//! and the tests use. The Lambda functions use the routes of [`super::routes`] directly.

use super::routes::{
    self, CHANNEL_AUTH, CONNECT, CREATE_USER, SEND_MESSAGE, handle_channel_auth, handle_connect,
    handle_create_user, handle_send_message,
};
use super::{ApiError, ApiRequest, ApiResponse, Handler};
use crate::config::{ConfigError, Lookup};
use crate::domain::messages::RateLimit;
use crate::domain::rooms::RoomKey;
use crate::domain::users::IdPolicy;
use crate::realtime::Realtime;
use crate::realtime::pusher::PusherCredentials;
use crate::store::Store;
use std::sync::Arc;

/// One route with what it needs, built once at start-up.
pub enum Endpoint {
    CreateUser {
        store: Arc<dyn Store>,
        ids: IdPolicy,
    },
    Connect {
        store: Arc<dyn Store>,
        room_key: RoomKey,
    },
    SendMessage {
        store: Arc<dyn Store>,
        realtime: Arc<dyn Realtime>,
        rate: RateLimit,
    },
    ChannelAuth {
        store: Arc<dyn Store>,
        credentials: PusherCredentials,
    },
}

/// The four routes, one Lambda function each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    CreateUser,
    Connect,
    SendMessage,
    ChannelAuth,
}

impl Handler for Endpoint {
    fn route(&self) -> &'static str {
        match self {
            Self::CreateUser { .. } => CREATE_USER,
            Self::Connect { .. } => CONNECT,
            Self::SendMessage { .. } => SEND_MESSAGE,
            Self::ChannelAuth { .. } => CHANNEL_AUTH,
        }
    }

    fn path_param_name(&self) -> Option<&'static str> {
        match self {
            Self::Connect { .. } => Some("publicId"),
            Self::SendMessage { .. } => Some("roomId"),
            _ => None,
        }
    }

    async fn handle(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        match self {
            Self::CreateUser { store, ids } => handle_create_user(store.as_ref(), *ids, req).await,
            Self::Connect { store, room_key } => {
                handle_connect(store.as_ref(), room_key, req).await
            }
            Self::SendMessage {
                store,
                realtime,
                rate,
            } => handle_send_message(store.as_ref(), realtime.as_ref(), *rate, req).await,
            Self::ChannelAuth { store, credentials } => {
                handle_channel_auth(store.as_ref(), credentials, req).await
            }
        }
    }

    async fn warm_up(&self) {
        match self {
            Self::CreateUser { store, .. }
            | Self::Connect { store, .. }
            | Self::ChannelAuth { store, .. } => store.warm_up().await,
            Self::SendMessage {
                store, realtime, ..
            } => {
                tokio::join!(store.warm_up(), realtime.warm_up());
            }
        }
    }
}

impl Endpoint {
    /// Handle a request end to end (see [`super::respond`]).
    pub async fn respond(&self, req: &ApiRequest, request_id: &str) -> ApiResponse {
        super::respond(self, req, request_id).await
    }

    /// Build a route's endpoint from configuration, as its Lambda function does.
    pub async fn from_env(route: Route, env: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(match route {
            Route::CreateUser => {
                let r = routes::CreateUser::from_env(env).await?;
                Self::CreateUser {
                    store: Arc::new(r.store),
                    ids: r.ids,
                }
            }
            Route::Connect => {
                let r = routes::Connect::from_env(env).await?;
                Self::Connect {
                    store: Arc::new(r.store),
                    room_key: r.room_key,
                }
            }
            Route::SendMessage => {
                let r = routes::SendMessage::from_env(env).await?;
                Self::SendMessage {
                    store: Arc::new(r.store),
                    realtime: Arc::new(r.realtime),
                    rate: r.rate,
                }
            }
            Route::ChannelAuth => {
                let r = routes::ChannelAuth::from_env(env).await?;
                Self::ChannelAuth {
                    store: Arc::new(r.store),
                    credentials: r.credentials,
                }
            }
        })
    }
}
