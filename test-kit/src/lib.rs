//! What the tests and the benchmarks stand up around the service, written once:
//!
//! - [`events`]: API Gateway (HTTP API, payload v2) events for any route of the route
//!   table, and `invoke`, which feeds one to a handler as the Lambda runtime does;
//! - [`pusher_receiver`]: a Pusher REST endpoint that checks every signature;
//! - [`dynamodb_proxy`]: a DynamoDB stand-in that fails on demand, and a proxy in front
//!   of a real DynamoDB-compatible server;
//! - [`recording`]: a store that writes down every call made through it;
//! - [`refused`]: an address that refuses connections;
//! - [`tables`]: a fresh table per test on the test command's moto server, and dumps of
//!   either store's items.

pub mod dynamodb_proxy;
pub mod events;
pub mod pusher_receiver;
pub mod recording;
pub mod refused;
pub mod tables;

/// The server side's signature checks (the local server's), for tests of what clients see.
pub use local_server::pusher_server::verify as pusher_verify;
