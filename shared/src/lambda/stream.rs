//! The table's DynamoDB stream to the room lists' [`Projector`] and back (Lambda's
//! partial batch response). The `project-changes` binary is `lambda::stream::main()`.

use crate::config::{self, Lookup};
use crate::projector::Projector;
use serde_json::Value;

/// The whole `main` of the `project-changes` function: logs, configuration, warm-up,
/// then serve Lambda's stream batches.
pub async fn main() -> Result<(), lambda_http::Error> {
    use lambda_http::lambda_runtime::{LambdaEvent, run, service_fn};
    crate::telemetry::init();
    let env: Lookup<'static> = &config::process_env;
    let projector =
        match config::warm_up(env).and_then(|warm| Ok((Projector::from_env(env)?, warm))) {
            Ok((projector, warm)) => {
                if warm {
                    projector.warm_up().await;
                }
                projector
            }
            Err(e) => {
                tracing::error!(error = %e, "invalid configuration");
                return Err(e.into());
            }
        };
    let projector = &projector;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, std::convert::Infallible>(projector.handle(&event.payload).await)
    }))
    .await
}
