//! The deployed stack's secrets in AWS Secrets Manager (moto serves it, beside
//! DynamoDB): read once at start-up, one request each, over the plain variables.

mod common;

use common::dynamodb_proxy::Proxy;
use common::pusher_receiver::{self as receiver, Receiver};
use common::{ENDPOINT_VAR, ROOM_KEY, api_event, env_map, fresh_store, invoke};
use secret_rooms::config::{self, ConfigError};
use secret_rooms::domain::PublicId;
use secret_rooms::domain::rooms::RoomKey;
use secret_rooms::http::{Endpoint, Route};
use secret_rooms::secrets::SecretsManager;
use serde_json::json;

fn moto() -> String {
    std::env::var(ENDPOINT_VAR).expect("the test command's moto endpoint")
}

async fn client(endpoint: &str) -> SecretsManager {
    let env = |name: &str| std::env::var(name).ok();
    SecretsManager::new(config::aws(&env).unwrap(), Some(endpoint.to_owned())).unwrap()
}

#[tokio::test]
async fn functions_read_their_secrets_from_secrets_manager_once_at_start_up() {
    let pusher = Receiver::start().await;
    let store = fresh_store().await;
    let manager = client(&moto()).await;
    let name = |what: &str| format!("{}-{what}", store.table());
    let room_key_arn = manager
        .create_secret(&name("room-id-key"), ROOM_KEY)
        .await
        .unwrap();
    let pusher_arn = manager
        .create_secret(&name("pusher-secret"), receiver::SECRET)
        .await
        .unwrap();

    // Secrets Manager through a counting proxy; the plain variables hold other values,
    // which must not be used.
    let proxy = Proxy::start(&moto(), None).await;
    let mut env = env_map(store.table(), &pusher.base_url);
    env.insert(
        "ROOM_ID_KEY".into(),
        "b".repeat(2) + &ROOM_KEY[2..].replace('4', "5"),
    );
    env.insert("PUSHER_SECRET".into(), "not-the-secret".into());
    env.insert(config::ROOM_ID_KEY_SECRET_ARN.into(), room_key_arn);
    env.insert(config::PUSHER_SECRET_ARN.into(), pusher_arn);
    env.insert(
        config::AWS_ENDPOINT_URL_SECRETS_MANAGER.into(),
        proxy.endpoint.clone(),
    );
    let process = move |k: &str| env.get(k).cloned();
    let secrets = config::fetch_secrets(&process).await.unwrap();
    assert_eq!(proxy.forwarded(), 2, "one request per secret");
    assert!(
        proxy
            .take_exchanges()
            .iter()
            .all(|e| e.operation == "GetSecretValue" && e.status == 200)
    );
    let env = config::with_secrets(&process, secrets);

    let env = &env;
    let endpoint = |route| async move { Endpoint::from_env(route, env).await.unwrap() };
    let (create, connect, send, auth) = (
        endpoint(Route::CreateUser).await,
        endpoint(Route::Connect).await,
        endpoint(Route::SendMessage).await,
        endpoint(Route::ChannelAuth).await,
    );
    let new_user = || async {
        let reply = invoke(
            &create,
            &api_event(Route::CreateUser, "/users/create", None, None),
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body
    };
    let (alice, bob) = (new_user().await, new_user().await);
    let body = json!({"privateId": alice["privateId"]}).to_string();
    let bob_id = bob["publicId"].as_str().unwrap();
    let reply = invoke(
        &connect,
        &api_event(
            Route::Connect,
            &format!("/users/{bob_id}/connect"),
            Some("application/json"),
            Some(&body),
        ),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // The room id is the secret key's.
    let id = |v: &serde_json::Value| PublicId::parse(v["publicId"].as_str().unwrap()).unwrap();
    let expected = RoomKey::parse(ROOM_KEY)
        .unwrap()
        .room_of(id(&alice), id(&bob));
    let room = reply.body["roomId"].as_str().unwrap().to_owned();
    assert_eq!(room, expected.as_str());
    // Publishes and channel signatures use the secret Pusher secret (the receiver checks).
    let body = json!({"privateId": alice["privateId"], "message": "hi"}).to_string();
    let sent = invoke(
        &send,
        &api_event(
            Route::SendMessage,
            &format!("/rooms/{room}/message"),
            Some("application/json"),
            Some(&body),
        ),
    )
    .await;
    assert_eq!(sent.status, 204, "{}", sent.body);
    assert_eq!(pusher.messages().len(), 1);
    assert_eq!(
        pusher.published_count(),
        3,
        "the connect's announcement too, on the inbox and the room's channel"
    );
    let form = serde_urlencoded::to_string([
        ("socket_id", "1234.1234"),
        ("channel_name", &format!("private-{room}")),
        ("privateId", alice["privateId"].as_str().unwrap()),
    ])
    .unwrap();
    let signed = invoke(
        &auth,
        &api_event(
            Route::ChannelAuth,
            "/pusher/auth",
            Some("application/x-www-form-urlencoded"),
            Some(&form),
        ),
    )
    .await;
    assert_eq!(signed.status, 200, "{}", signed.body);
    let expected =
        secret_rooms::realtime::pusher::PusherCredentials::new(receiver::KEY, receiver::SECRET);
    use secret_rooms::domain::ports::ChannelSigner;
    assert_eq!(
        signed.body["auth"].as_str().unwrap(),
        expected.sign(
            &secret_rooms::domain::SocketId::parse("1234.1234").unwrap(),
            &format!("private-{room}")
        )
    );
    assert_eq!(proxy.forwarded(), 2, "nothing read the secrets again");
}

#[tokio::test]
async fn a_secret_that_cannot_be_read_fails_at_start_up_naming_its_variable() {
    let store = fresh_store().await;
    let mut env = env_map(store.table(), "http://127.0.0.1:9");
    env.insert(
        config::ROOM_ID_KEY_SECRET_ARN.into(),
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf".into(),
    );
    env.insert(config::AWS_ENDPOINT_URL_SECRETS_MANAGER.into(), moto());
    let process = move |k: &str| env.get(k).cloned();
    let err = config::fetch_secrets(&process).await.unwrap_err();
    assert!(
        matches!(&err, ConfigError::Invalid { name, .. } if *name == config::ROOM_ID_KEY_SECRET_ARN),
        "{err}"
    );
    assert!(err.to_string().contains("ResourceNotFound"), "{err}");
}

/// A Secrets Manager stand-in that holds every answer until `ready` says so, then
/// answers each `GetSecretValue` with the secret's id as its value (a fault no real
/// server gives on demand: answers held back).
async fn held_secrets_manager(
    ready: impl Fn(usize) -> bool + Send + Sync + 'static,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let arrived = Arc::new(AtomicUsize::new(0));
    let (counted, ready) = (arrived.clone(), Arc::new(ready));
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |body: String| {
            let (arrived, ready) = (counted.clone(), ready.clone());
            async move {
                let n = arrived.fetch_add(1, Ordering::SeqCst) + 1;
                // Polled: a read that comes too late to be let through fails the test
                // by its time-out, not by a wait here.
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
                while !ready(arrived.load(Ordering::SeqCst)) {
                    if tokio::time::Instant::now() > deadline {
                        return (
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                            format!("held read {n} was never let through"),
                        );
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["SecretId"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                (
                    axum::http::StatusCode::OK,
                    json!({"SecretString": id}).to_string(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (endpoint, arrived)
}

#[tokio::test]
async fn the_secrets_are_read_at_once_not_one_after_another() {
    // No answer until both reads have arrived: read in turn, the first never ends.
    let (manager, _) = held_secrets_manager(|arrived| arrived >= 2).await;
    let mut env = env_map("any-table", "http://127.0.0.1:9");
    env.insert(config::ROOM_ID_KEY_SECRET_ARN.into(), "room-key-arn".into());
    env.insert(config::PUSHER_SECRET_ARN.into(), "pusher-secret-arn".into());
    env.insert(config::AWS_ENDPOINT_URL_SECRETS_MANAGER.into(), manager);
    let process = move |k: &str| env.get(k).cloned();
    let mut secrets = config::fetch_secrets(&process).await.unwrap();
    secrets.sort();
    assert_eq!(
        secrets,
        vec![
            ("PUSHER_SECRET", "pusher-secret-arn".to_owned()),
            ("ROOM_ID_KEY", "room-key-arn".to_owned()),
        ]
    );
}

#[tokio::test]
async fn the_connections_are_warmed_while_the_secrets_are_read() {
    // Secrets Manager answers only once DynamoDB has seen the warm-up's request: a
    // start-up that warms up after reading its secrets never gets them.
    let store = fresh_store().await;
    let pusher = Receiver::start().await;
    let dynamodb = Proxy::start(&moto(), None).await;
    let seen = dynamodb.clone();
    let (manager, reads) = held_secrets_manager(move |_| seen.forwarded() >= 1).await;
    let mut env = env_map(store.table(), &pusher.base_url);
    env.insert(ENDPOINT_VAR.into(), dynamodb.endpoint.clone());
    let key = secret_rooms::domain::random::hex(32).unwrap();
    env.insert(config::ROOM_ID_KEY_SECRET_ARN.into(), key);
    env.insert(config::AWS_ENDPOINT_URL_SECRETS_MANAGER.into(), manager);
    env.insert("WARM_UP_CONNECTIONS".into(), "true".into());
    let env: &'static std::collections::HashMap<String, String> = Box::leak(Box::new(env));
    let process: config::Lookup<'static> = Box::leak(Box::new(|k: &str| env.get(k).cloned()));
    secret_rooms::lambda::http::start(process, |env| Endpoint::from_env(Route::ChannelAuth, env))
        .await
        .unwrap();
    assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The warm-up's request, and nothing else, reached DynamoDB before serving.
    let exchanges = dynamodb.take_exchanges();
    assert_eq!(exchanges.len(), 1, "{exchanges:?}");
    assert_eq!(exchanges[0].operation, "GetItem");
}

#[tokio::test]
async fn a_stand_in_that_cannot_be_built_leaves_the_warm_up_to_the_real_handler() {
    let store = fresh_store().await;
    let pusher = Receiver::start().await;
    let dynamodb = Proxy::start(&moto(), None).await;
    let (manager, _) = held_secrets_manager(|_| true).await;
    let mut env = env_map(store.table(), &pusher.base_url);
    env.insert(ENDPOINT_VAR.into(), dynamodb.endpoint.clone());
    // The held Secrets Manager answers a secret's id as its value.
    let key = secret_rooms::domain::random::hex(32).unwrap();
    env.insert(config::ROOM_ID_KEY_SECRET_ARN.into(), key.clone());
    env.insert(config::AWS_ENDPOINT_URL_SECRETS_MANAGER.into(), manager);
    env.insert("WARM_UP_CONNECTIONS".into(), "true".into());
    let env: &'static std::collections::HashMap<String, String> = Box::leak(Box::new(env));
    let process: config::Lookup<'static> = Box::leak(Box::new(|k: &str| env.get(k).cloned()));
    // A build that refuses every key but the real one, as it would refuse a stand-in
    // that came out unusable.
    let build = |env: config::Lookup<'static>| {
        let real = env("ROOM_ID_KEY").as_deref() == Some(key.as_str());
        async move {
            if !real {
                return Err(ConfigError::Invalid {
                    name: "ROOM_ID_KEY",
                    reason: "not the real key".into(),
                });
            }
            Endpoint::from_env(Route::ChannelAuth, env).await
        }
    };
    secret_rooms::lambda::http::start(process, build)
        .await
        .unwrap();
    let exchanges = dynamodb.take_exchanges();
    assert_eq!(
        exchanges.len(),
        1,
        "the real handler warmed up: {exchanges:?}"
    );
    assert_eq!(exchanges[0].operation, "GetItem");
}
