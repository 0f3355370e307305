//! secret-rooms: the adapters and the edge around the domain crate
//! (`secret-rooms-domain`, re-exported as [`domain`]).
//!
//! - [`domain`]: identifiers, room-id derivation, the eight operations and their ports.
//! - [`store`]: the `Store` port on DynamoDB (and, with `embedded`, on a redb file).
//! - [`realtime`]: the `Realtime` and `ChannelSigner` ports on Pusher Channels.
//! - [`http`]: the route table, request parsing and error mapping.
//! - [`lambda`]: the Lambda glue of the route functions and of the stream's.
//! - [`config`]: environment variables, validated at start-up into settings.
//! - [`wiring`]: the one place that builds clients (DynamoDB, Pusher) from settings.
//! - [`secrets`]: AWS Secrets Manager, for the deployed functions' secrets.
//! - [`projector`]: the room lists' projection fed by the table's DynamoDB stream.
//! - [`aws_json`]: signed calls of AWS's JSON protocol (Secrets Manager, DynamoDB
//!   Streams).

pub use secret_rooms_domain as domain;

pub mod aws_json;
pub mod config;
pub mod http;
pub mod lambda;
pub mod projector;
pub mod realtime;
pub mod secrets;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod wiring;
