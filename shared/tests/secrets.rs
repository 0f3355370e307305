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
