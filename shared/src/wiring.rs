//! The one place that builds clients from settings: configuration ([`crate::config`])
//! reads and validates variables into settings; the functions' start-up (each route's
//! `from_env`, the stream's function) builds its DynamoDB store and Pusher client here,
//! last, once every variable was read.

use crate::config::{self, ConfigError, Lookup};
use crate::realtime::pusher::{PusherClient, PusherConfig};
use crate::store::{DynamoStore, Timeouts};
use std::sync::atomic::{AtomicBool, Ordering};

static SHARING: AtomicBool = AtomicBool::new(false);

/// From now on, the DynamoDB and Pusher clients this process builds share their HTTP
/// clients, and so their connections: a function's start-up calls it, so that the
/// handler it builds once its secrets are read takes over the connections a stand-in
/// opened meanwhile (`lambda::http::main`). Not for tests: each runs its own runtime,
/// and a connection does not outlive the runtime that opened it.
pub fn share_clients() {
    SHARING.store(true, Ordering::SeqCst);
}

/// Whether [`share_clients`] was called.
pub fn sharing_clients() -> bool {
    SHARING.load(Ordering::SeqCst)
}

/// The DynamoDB store of a function on `table` ([`config::table_name`]) with `timeouts`
/// ([`config::dynamodb_timeouts`]), once [`config::aws`] is valid too: a function reads its table and
/// timeouts first, then its own variables, and builds its clients last.
pub fn dynamo_store(
    env: Lookup,
    table: String,
    timeouts: Timeouts,
) -> Result<DynamoStore, ConfigError> {
    let aws = config::aws(env)?;
    DynamoStore::from_settings(aws, table, timeouts).map_err(|e| ConfigError::Invalid {
        name: config::AWS_ENDPOINT_URL_DYNAMODB,
        reason: format!("cannot build an HTTPS client: {e}"),
    })
}

/// The Pusher client a function publishes with, built once at start-up.
pub fn pusher_client(pusher: &PusherConfig) -> Result<PusherClient, ConfigError> {
    PusherClient::new(pusher).map_err(|e| ConfigError::Invalid {
        name: config::PUSHER_HOST,
        reason: format!("cannot build an HTTP client: {e:#}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_store_is_built_once_the_aws_variables_are_there() {
        let full = [
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ];
        let build = |pairs: &[(&str, &str)]| {
            let map: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            dynamo_store(
                &move |k: &str| map.get(k).cloned(),
                "secret-rooms".into(),
                Timeouts::default(),
            )
        };
        assert_eq!(
            build(&full[1..]).unwrap_err(),
            ConfigError::Missing(config::AWS_REGION)
        );
        assert_eq!(build(&full).unwrap().table(), "secret-rooms");
    }
}
