//! Test helpers: a fresh DynamoDB table per test on the test command's moto server,
//! a Pusher-protocol receiver that verifies every signature, and request builders.
#![allow(dead_code)]

pub mod fake_dynamodb;
pub mod receiver;

use async_trait::async_trait;
use secret_rooms::domain::ports::{Clock, SystemClock};
use secret_rooms::store::{DynamoStore, EmbeddedStore, Store};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub const ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL_DYNAMODB";
pub const RATE_LIMIT: u32 = 8;
pub const ROOM_KEY: &str = "test-room-key-0123456789abcdef-0123456789";

/// A DynamoDB store on a table of its own. Fails loudly, naming the variable, when
/// no DynamoDB-compatible server was started (run `./scripts/test.sh`).
pub async fn fresh_store() -> DynamoStore {
    let endpoint = std::env::var(ENDPOINT_VAR).unwrap_or_default();
    assert!(
        !endpoint.is_empty(),
        "{ENDPOINT_VAR} is not set: these tests need a DynamoDB-compatible server. \
         Run ./scripts/test.sh, which installs and starts moto's server."
    );
    let store =
        DynamoStore::from_default_chain(fresh_table_name(), test_timeouts(), Some(&endpoint)).await;
    store
        .create_table()
        .await
        .unwrap_or_else(|e| panic!("cannot create a table on {endpoint}: {e}"));
    store
}

/// What ./scripts/test.sh sets for moto (slow under the concurrency tests); the fault
/// tests use the production timeouts instead.
pub fn test_timeouts() -> secret_rooms::store::Timeouts {
    secret_rooms::config::dynamodb_timeouts(&secret_rooms::config::process_env).unwrap()
}

pub fn fresh_table_name() -> String {
    format!("test-{}", secret_rooms::http::new_request_id())
}

/// Environment for `Endpoint::from_env`: a fresh table, the test room key, and Pusher
/// pointed at `pusher_base` (the receiver).
pub fn env_map(table: &str, pusher_base: &str) -> HashMap<String, String> {
    HashMap::from([
        ("TABLE_NAME".into(), table.into()),
        ("ROOM_ID_KEY".into(), ROOM_KEY.into()),
        ("PUSHER_APP_ID".into(), receiver::APP_ID.into()),
        ("PUSHER_KEY".into(), receiver::KEY.into()),
        ("PUSHER_SECRET".into(), receiver::SECRET.into()),
        ("PUSHER_HOST".into(), pusher_base.into()),
        ("PUSHER_TIMEOUT_MS".into(), "1500".into()),
        // A day-long window, so that no test runs across a window's end.
        ("MESSAGE_RATE_LIMIT".into(), RATE_LIMIT.to_string()),
        ("MESSAGE_RATE_WINDOW_SECS".into(), "86400".into()),
    ])
    .into_iter()
    // What Lambda sets (credentials, region) and the test command's moto endpoint and
    // timeouts: the functions read them from this map, not from the process.
    .chain(
        [
            "AWS_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            ENDPOINT_VAR,
            "DYNAMODB_ATTEMPT_TIMEOUT_MS",
            "DYNAMODB_OPERATION_TIMEOUT_MS",
        ]
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), std::env::var(name).ok()?))),
    )
    .collect()
}

/// Round trips since the last call: each call of the returned closure answers how many
/// the store made since the previous one.
pub fn round_trip_counter(store: &dyn Store) -> impl FnMut() -> usize + '_ {
    let mut last = store.round_trips();
    move || {
        let now = store.round_trips();
        let since = now - last;
        last = now;
        since
    }
}

use lambda_http::http::HeaderMap;
use secret_rooms::http::{Endpoint, Route, lambda};
use serde_json::{Value, json};

/// Every item of a store by key, as JSON with sorted keys, whatever the backend.
#[async_trait]
pub trait Items {
    async fn items(&self) -> BTreeMap<String, Value>;
}

#[async_trait]
impl Items for DynamoStore {
    async fn items(&self) -> BTreeMap<String, Value> {
        let out = self
            .client()
            .scan()
            .table_name(self.table())
            .send()
            .await
            .unwrap();
        assert!(
            out.last_evaluated_key().is_none(),
            "test tables fit one scan page"
        );
        out.items()
            .iter()
            .map(|item| {
                let pk = item["pk"].as_s().unwrap().clone();
                let map = item
                    .iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect();
                (pk, Value::Object(map))
            })
            .collect()
    }
}

#[async_trait]
impl Items for EmbeddedStore {
    async fn items(&self) -> BTreeMap<String, Value> {
        self.dump().await.unwrap().into_iter().collect()
    }
}

/// An attribute value as JSON with sorted keys, so that equal items print alike.
fn canonical(v: &aws_sdk_dynamodb::types::AttributeValue) -> Value {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    match v {
        A::M(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), canonical(v))).collect()),
        A::L(l) => Value::Array(l.iter().map(canonical).collect()),
        A::S(s) => json!(s),
        A::N(n) => serde_json::from_str(n).unwrap_or_else(|_| json!({ "bad number": n })),
        A::Ss(set) => {
            let mut sorted = set.clone();
            sorted.sort();
            json!(sorted)
        }
        other => json!({ "other": format!("{other:?}") }),
    }
}

/// An API Gateway HTTP API (payload v2) event, as the function receives it.
pub fn api_event(
    route: Route,
    path: &str,
    content_type: Option<&str>,
    body: Option<&str>,
) -> Value {
    let (route_key, param) = match route {
        Route::CreateUser => ("POST /users/create", None),
        Route::Connect => (
            "POST /users/{publicId}/connect",
            Some(("publicId", path.split('/').nth(2))),
        ),
        Route::SendMessage => (
            "POST /rooms/{roomId}/message",
            Some(("roomId", path.split('/').nth(2))),
        ),
        Route::ChannelAuth => ("POST /pusher/auth", None),
    };
    let mut headers = json!({"host": "api.test"});
    if let Some(ct) = content_type {
        headers["content-type"] = json!(ct);
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.test",
            "domainPrefix": "api", "requestId": "test", "routeKey": route_key,
            "stage": "$default", "time": "24/Nov/2026:05:20:55 +0000", "timeEpoch": 0,
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "test"}
        },
        "isBase64Encoded": false
    });
    if let Some((name, Some(value))) = param {
        event["pathParameters"] = json!({ name: value });
    }
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    event
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

/// Feed an API Gateway event to a function's handler, as the Lambda runtime does.
pub async fn invoke(endpoint: &Endpoint, event: &Value) -> Reply {
    let request =
        lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway event");
    let response = lambda::handle(endpoint, request).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.body().as_ref();
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("non-JSON body ({e}): {body:?}"))
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// The four functions on one fresh table, configured as in production but for the
/// endpoints: moto for DynamoDB, the receiver for Pusher.
pub struct Functions {
    pub table: String,
    pub create_user: Endpoint,
    pub connect: Endpoint,
    pub send_message: Endpoint,
    pub channel_auth: Endpoint,
}

impl Functions {
    pub async fn start(pusher_base: &str) -> Self {
        Self::start_with_clock(pusher_base, Arc::new(SystemClock)).await
    }

    /// The four functions, reading the time from `clock`.
    pub async fn start_with_clock(pusher_base: &str, clock: Arc<dyn Clock>) -> Self {
        let store = fresh_store().await;
        let env = env_map(store.table(), pusher_base);
        let lookup = move |k: &str| env.get(k).cloned();
        let clock = &clock;
        let build = |route| {
            let lookup = &lookup;
            async move {
                Endpoint::from_env(route, lookup)
                    .await
                    .expect("valid test configuration")
                    .with_clock(clock.clone())
            }
        };
        Self {
            table: store.table().to_owned(),
            create_user: build(Route::CreateUser).await,
            connect: build(Route::Connect).await,
            send_message: build(Route::SendMessage).await,
            channel_auth: build(Route::ChannelAuth).await,
        }
    }

    pub fn endpoint(&self, route: Route) -> &Endpoint {
        match route {
            Route::CreateUser => &self.create_user,
            Route::Connect => &self.connect,
            Route::SendMessage => &self.send_message,
            Route::ChannelAuth => &self.channel_auth,
        }
    }

    pub async fn call(
        &self,
        route: Route,
        path: &str,
        content_type: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        invoke(
            self.endpoint(route),
            &api_event(route, path, content_type, body),
        )
        .await
    }

    pub async fn create(&self) -> (String, String, String) {
        let r = self
            .call(Route::CreateUser, "/users/create", None, None)
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let field = |k: &str| r.body[k].as_str().unwrap().to_owned();
        (field("publicId"), field("privateId"), field("username"))
    }

    pub async fn connect(&self, private_id: &str, public_id: &str) -> Reply {
        let body = json!({"privateId": private_id}).to_string();
        self.call(
            Route::Connect,
            &format!("/users/{public_id}/connect"),
            Some("application/json"),
            Some(&body),
        )
        .await
    }

    /// The room id `private_id` gets connecting to `public_id` (which must succeed).
    pub async fn room(&self, private_id: &str, public_id: &str) -> String {
        let reply = self.connect(private_id, public_id).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["roomId"].as_str().unwrap().to_owned()
    }

    pub async fn send(&self, private_id: &str, room: &str, message: &str) -> Reply {
        let body = json!({"privateId": private_id, "message": message}).to_string();
        self.call(
            Route::SendMessage,
            &format!("/rooms/{room}/message"),
            Some("application/json"),
            Some(&body),
        )
        .await
    }

    /// Channel auth as pusher-js sends it: form-encoded.
    pub async fn auth(&self, private_id: &str, socket_id: &str, channel: &str) -> Reply {
        let body = serde_urlencoded::to_string([
            ("socket_id", socket_id),
            ("channel_name", channel),
            ("privateId", private_id),
        ])
        .unwrap();
        self.call(
            Route::ChannelAuth,
            "/pusher/auth",
            Some("application/x-www-form-urlencoded"),
            Some(&body),
        )
        .await
    }

    /// Every item of the table, in a stable order: "changes nothing" is checked
    /// by comparing two of these.
    pub async fn snapshot(&self) -> Vec<String> {
        let store =
            DynamoStore::from_default_chain(self.table.clone(), test_timeouts(), None).await;
        let out = store
            .client()
            .scan()
            .table_name(&self.table)
            .send()
            .await
            .unwrap();
        let mut items: Vec<String> = out
            .items()
            .iter()
            .map(|item| {
                let map = item
                    .iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect();
                Value::Object(map).to_string()
            })
            .collect();
        items.sort();
        items
    }
}

/// The time the domain operations are called with in tests that do not fix it.
#[allow(dead_code)]
pub fn now() -> std::time::SystemTime {
    std::time::SystemTime::now()
}
