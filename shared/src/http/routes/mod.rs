//! The route table, and the routes, one file each (its body, its handler, its
//! configuration and its entry in the table). A handler is generic over its store (and publisher), so that a Lambda
//! binary instantiates only its own route over the concrete DynamoDB store (and Pusher
//! client), while the local server and the tests run the very same handlers over
//! `dyn Store`. Configuration: each route reads only the variables it needs (create-user
//! never sees the Pusher secret or the room key), validating them all before building a
//! client.

use super::endpoint::{IntoDyn, Wiring};
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

/// The route table: a line a route, `Variant in module`, in the order of `Route::ALL`.
/// Everything that lists every route is generated from it: `Route`, `Endpoint` (any one
/// route behind one type, for the local server and the tests) and their matches. Each
/// route's file has its struct (a handler generic over its ports), its `impl Handler`,
/// its `from_env` (what its Lambda function runs), and its [`RouteFile`]: its key, its
/// function's name, and how it is wired from a [`Wiring`].
macro_rules! route_table {
    ($($variant:ident in $module:ident),* $(,)?) => {
        $(
            mod $module;
            pub use $module::$variant;
        )*

        /// Every route of the service: the Lambda glue, the local server's router, the
        /// tests and the benchmarks follow this table, and a test
        /// (`shared/tests/route_table.rs`) checks that `openapi.yaml`, `template.yaml`,
        /// `functions/` and `events/` agree.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Route {
            $($variant),*
        }

        impl Route {
            pub const ALL: [Route; [$(stringify!($variant)),*].len()] = [$(Route::$variant),*];

            const fn info(self) -> RouteInfo {
                match self {
                    $(Self::$variant => <$module::Dyn as RouteFile>::ROUTE),*
                }
            }
        }

        /// Any one route behind one type: the same handlers the Lambda functions run,
        /// over `dyn Store` and `dyn Realtime`, for the local server and the tests.
        pub enum Endpoint {
            $($variant($module::Dyn)),*
        }

        impl Handler for Endpoint {
            fn route(&self) -> Route {
                match self {
                    $(Self::$variant(h) => h.route()),*
                }
            }

            async fn handle(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
                match self {
                    $(Self::$variant(h) => h.handle(req).await),*
                }
            }

            async fn warm_up(&self) {
                match self {
                    $(Self::$variant(h) => h.warm_up().await),*
                }
            }
        }

        impl Endpoint {
            /// The same handler, reading the time from `clock` (tests fix it).
            pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
                match &mut self {
                    $(Self::$variant(h) => h.set_clock(clock)),*
                }
                self
            }

            /// Every route's endpoint over the same ports and settings, in
            /// [`Route::ALL`]'s order: what a server of all of them (the local server, the
            /// tests) builds, so that none is wired by hand twice.
            pub fn all(w: Wiring) -> Vec<Self> {
                vec![$(Self::$variant(<$module::Dyn as RouteFile>::wire(&w))),*]
            }

            /// Build a route's handler from configuration, as its Lambda function does.
            pub async fn from_env(route: Route, env: Lookup<'_>) -> Result<Self, ConfigError> {
                Ok(match route {
                    $(Route::$variant => $variant::from_env(env).await?.into()),*
                })
            }
        }
    };
}

route_table! {
    CreateUser in create_user,
    Connect in connect,
    SendMessage in send_message,
    ChannelAuth in channel_auth,
    ListMessages in list_messages,
    BlockRoom in block_room,
    ListRooms in list_rooms,
    RotateId in rotate_id,
}

/// What a route's file tells the route table about it, on its `dyn` handler.
trait RouteFile: Sized {
    const ROUTE: RouteInfo;
    /// Its handler over the ports and settings every route is built from.
    fn wire(w: &Wiring) -> Self;
    fn set_clock(&mut self, clock: Arc<dyn Clock>);
}

/// A route's key and its Lambda function.
#[derive(Clone, Copy)]
struct RouteInfo {
    /// API Gateway's route key: `POST /users/{publicId}/connect`.
    key: &'static str,
    /// The Lambda function (crate, binary and `events/` file name) that serves it.
    function: &'static str,
}

/// The body of the routes that take the caller's private id alone.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrivateIdBody {
    private_id: String,
}

impl Route {
    /// API Gateway's route key, as logged: `POST /users/{publicId}/connect`.
    pub const fn key(self) -> &'static str {
        self.info().key
    }

    /// The path template (API Gateway's and axum's syntax alike).
    pub fn path(self) -> &'static str {
        let key = self.key();
        key.split_once(' ').map_or(key, |(_, path)| path)
    }

    /// The one path parameter, if the route has one.
    pub fn path_param(self) -> Option<&'static str> {
        let (_, rest) = self.path().split_once('{')?;
        rest.split_once('}').map(|(name, _)| name)
    }

    /// The Lambda function (crate, binary and `events/` file name) that serves it.
    pub const fn function(self) -> &'static str {
        self.info().function
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
