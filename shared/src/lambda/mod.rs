//! The Lambda glue, every function's `main`: [`http`] for a route's function (API
//! Gateway's events to a route's handler), [`stream`] for the stream's (`project-changes`:
//! DynamoDB stream batches to the projection). The handlers themselves know nothing of
//! Lambda: `http::routes` and `projector::Projector`.

pub mod http;
pub mod stream;
