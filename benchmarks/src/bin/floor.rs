//! The floor: a bare `lambda_runtime` function that answers `{}`, built with the same
//! release profile as the real functions. Its init time is what Rust on Lambda costs
//! before any work of ours.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| async {
        Ok::<Value, Error>(Value::Object(Default::default()))
    }))
    .await
}
