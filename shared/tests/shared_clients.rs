//! A function's start-up with its secrets in Secrets Manager: the handler built with the
//! real secrets takes over the connection that the stand-in's warm-up opened, so its
//! first request opens none (`wiring::share_clients`, process-wide: this binary holds
//! this one test, which runs on one runtime, as a function does).

mod common;

use common::dynamodb_proxy::Proxy;
use common::pusher_receiver::Receiver;
use common::{ENDPOINT_VAR, api_event, env_map, fresh_store, invoke};
use secret_rooms::config;
use secret_rooms::http::{Endpoint, Route};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A TCP relay to `upstream` that counts the connections it accepts.
async fn counting_relay(upstream: String) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (endpoint, accepted)
}

/// A Secrets Manager that answers each `GetSecretValue` with the secret's id as its value.
async fn secrets_manager() -> String {
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(|body: String| async move {
            let asked: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            json!({"SecretString": asked["SecretId"]}).to_string()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    endpoint
}

#[tokio::test]
async fn the_real_handler_takes_over_the_connection_the_warm_up_opened() {
    secret_rooms::wiring::share_clients();
    let store = fresh_store().await;
    let pusher = Receiver::start().await;
    let moto = std::env::var(ENDPOINT_VAR).expect("the test command's moto endpoint");
    let dynamodb = Proxy::start(&moto, None).await;
    let upstream = dynamodb.endpoint.trim_start_matches("http://").to_owned();
    let (relay, connections) = counting_relay(upstream).await;
    let mut env = env_map(store.table(), &pusher.base_url);
    env.insert(ENDPOINT_VAR.into(), relay);
    let key = secret_rooms::domain::random::hex(32).unwrap();
    env.insert(config::ROOM_ID_KEY_SECRET_ARN.into(), key);
    env.insert(
        config::AWS_ENDPOINT_URL_SECRETS_MANAGER.into(),
        secrets_manager().await,
    );
    env.insert("WARM_UP_CONNECTIONS".into(), "true".into());
    let env: &'static std::collections::HashMap<String, String> = Box::leak(Box::new(env));
    let process: config::Lookup<'static> = Box::leak(Box::new(|k: &str| env.get(k).cloned()));
    let handler = secret_rooms::lambda::http::start(process, |env| {
        Endpoint::from_env(Route::ChannelAuth, env)
    })
    .await
    .unwrap();
    assert_eq!(dynamodb.forwarded(), 1, "the warm-up's request");
    // A first request, which reads the caller's user item.
    let id = |s| secret_rooms::domain::PublicId::parse(s).unwrap();
    let room = secret_rooms::domain::rooms::RoomKey::parse(common::ROOM_KEY)
        .unwrap()
        .room_of(id("123-456"), id("654-321"));
    let channel = format!("private-{}", room.as_str());
    let nobody = secret_rooms::domain::PrivateId::generate().unwrap();
    let form = serde_urlencoded::to_string([
        ("socket_id", "1234.1234"),
        ("channel_name", channel.as_str()),
        ("privateId", nobody.expose()),
    ])
    .unwrap();
    let reply = invoke(
        &handler,
        &api_event(
            Route::ChannelAuth,
            "/pusher/auth",
            Some("application/x-www-form-urlencoded"),
            Some(&form),
        ),
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(dynamodb.forwarded(), 2, "the first request's read");
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "the first request opened a connection of its own"
    );
}
