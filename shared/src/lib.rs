//! secret-rooms: pairs two anonymous people in a secret 1:1 chat room.
//!
//! - [`domain`]: identifiers, room-id derivation and the four operations, free of HTTP.
//! - [`store`]: the storage contract and its DynamoDB implementation.
//! - [`realtime`]: the Pusher Channels REST client and channel authorization.
//! - [`http`]: request parsing, error mapping and the Lambda glue every function uses.
//! - [`config`]: environment variables, validated at start-up.

pub mod config;
pub mod domain;
pub mod http;
pub mod random;
pub mod realtime;
pub mod store;
pub mod telemetry;
pub mod tls;
