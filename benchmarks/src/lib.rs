//! Shared by the benchmark binaries and benches: a local Lambda Runtime API. Events,
//! the Pusher receiver and the DynamoDB proxy come from the test kit.

pub mod runtime_api;
