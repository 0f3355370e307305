//! The route table, and the routes, one file each (its body, its handler and its
//! configuration). A handler is generic over its store (and publisher), so that a Lambda
//! binary instantiates only its own route over the concrete DynamoDB store (and Pusher
//! client), while the local server and the tests run the very same handlers over
//! `dyn Store`. Configuration: each route reads only the variables it needs (create-user
//! never sees the Pusher secret or the room key), validating them all before building a
//! client.

use super::{
    ApiError, ApiRequest, ApiResponse, Handler, parse_form_or_json, parse_json, parse_private_id,
    parse_public_id, parse_room_id, path_param,
};
use crate::config::{self, ConfigError, Lookup};
use crate::domain::SocketId;
use crate::domain::addresses::AddressLimit;
use crate::domain::channels::{authorize_channel, authorize_inbox};
use crate::domain::history::{
    Before, Cursor, DEFAULT_PAGE, MAX_PAGE, MessageTtl, list_messages, list_messages_newest_first,
};
use crate::domain::inbox::list_rooms;
use crate::domain::messages::{Message, RateLimit, send_message};
use crate::domain::ports::{Clock, SystemClock};
use crate::domain::rooms::{
    ConnectLimits, INBOX_PREFIX, RoomKey, block_room, connect_and_announce,
};
use crate::domain::sent::MessageId;
use crate::domain::users::{IdPolicy, UserIds, create_user, rotate_public_id};
use crate::domain::{PublicKey, RoomId};
use crate::realtime::Realtime;
use crate::realtime::pusher::{PusherClient, PusherCredentials};
use crate::store::{DynamoStore, Store};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::SystemTime;

mod block_room;
mod channel_auth;
mod connect;
mod create_user;
mod list_messages;
mod list_rooms;
mod rotate_id;
mod send_message;

pub use block_room::BlockRoom;
pub use channel_auth::ChannelAuth;
pub use connect::Connect;
pub use create_user::CreateUser;
pub use list_messages::ListMessages;
pub use list_rooms::ListRooms;
pub use rotate_id::RotateId;
pub use send_message::SendMessage;

/// The body of the routes that take the caller's private id alone.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrivateIdBody {
    private_id: String,
}

/// Every route of the service: the Lambda glue, the local server's router, the tests
/// and the benchmarks follow this table, and a test (`shared/tests/route_table.rs`)
/// checks that `openapi.yaml`, `template.yaml`, `functions/` and `events/` agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    CreateUser,
    Connect,
    SendMessage,
    ChannelAuth,
    ListMessages,
    BlockRoom,
    ListRooms,
    RotateId,
}

impl Route {
    pub const ALL: [Route; 8] = [
        Route::CreateUser,
        Route::Connect,
        Route::SendMessage,
        Route::ChannelAuth,
        Route::ListMessages,
        Route::BlockRoom,
        Route::ListRooms,
        Route::RotateId,
    ];

    /// API Gateway's route key, as logged: `POST /users/{publicId}/connect`.
    pub const fn key(self) -> &'static str {
        match self {
            Self::CreateUser => "POST /users/create",
            Self::Connect => "POST /users/{publicId}/connect",
            Self::SendMessage => "POST /rooms/{roomId}/message",
            Self::ChannelAuth => "POST /pusher/auth",
            Self::ListMessages => "POST /rooms/{roomId}/messages",
            Self::BlockRoom => "POST /rooms/{roomId}/block",
            Self::ListRooms => "POST /users/rooms",
            Self::RotateId => "POST /users/rotate",
        }
    }

    /// The path template (API Gateway's and axum's syntax alike).
    pub const fn path(self) -> &'static str {
        match self {
            Self::CreateUser => "/users/create",
            Self::Connect => "/users/{publicId}/connect",
            Self::SendMessage => "/rooms/{roomId}/message",
            Self::ChannelAuth => "/pusher/auth",
            Self::ListMessages => "/rooms/{roomId}/messages",
            Self::BlockRoom => "/rooms/{roomId}/block",
            Self::ListRooms => "/users/rooms",
            Self::RotateId => "/users/rotate",
        }
    }

    /// The one path parameter, if the route has one.
    pub const fn path_param(self) -> Option<&'static str> {
        match self {
            Self::Connect => Some("publicId"),
            Self::SendMessage | Self::ListMessages | Self::BlockRoom => Some("roomId"),
            Self::CreateUser | Self::ChannelAuth | Self::ListRooms | Self::RotateId => None,
        }
    }

    /// The Lambda function (crate, binary and `events/` file name) that serves it.
    pub const fn function(self) -> &'static str {
        match self {
            Self::CreateUser => "create-user",
            Self::Connect => "connect",
            Self::SendMessage => "send-message",
            Self::ChannelAuth => "channel-auth",
            Self::ListMessages => "list-messages",
            Self::BlockRoom => "block-room",
            Self::ListRooms => "list-rooms",
            Self::RotateId => "rotate-id",
        }
    }

    /// The concrete path for a path parameter (ignored by routes without one).
    pub fn path_with(self, param: &str) -> String {
        match self.path_param() {
            Some(name) => self.path().replace(&format!("{{{name}}}"), param),
            None => self.path().to_owned(),
        }
    }
}

/// The table and the DynamoDB timeouts, which every function reads first; the client is
/// built last ([`Self::store`]), after the route's own variables, so that configuration
/// errors are reported in that order.
struct DynamoConfig {
    table: String,
    timeouts: crate::store::Timeouts,
}

impl DynamoConfig {
    fn read(env: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::table_name(env)?,
            timeouts: config::dynamodb_timeouts(env)?,
        })
    }

    fn store(self, env: Lookup<'_>) -> Result<Arc<DynamoStore>, ConfigError> {
        Ok(Arc::new(crate::wiring::dynamo_store(
            env,
            self.table,
            self.timeouts,
        )?))
    }
}
