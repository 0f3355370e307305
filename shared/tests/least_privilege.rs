//! Each function's IAM policy in `template.yaml` grants exactly the DynamoDB actions and
//! item-key prefixes the function calls: every route's every path (its start-up
//! warm-up, success, refusals) runs through a proxy that records each request, and the
//! (action, key) pairs recorded must be the pairs granted, no more, no fewer.

mod common;

use common::dynamodb_proxy::{Exchange, Proxy};
use common::pusher_receiver::Receiver;
use common::{ENDPOINT_VAR, Functions, api_event, invoke};
use secret_rooms::domain::ports::SystemClock;
use secret_rooms::http::{Handler, Route};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

type Grants = BTreeSet<(String, String)>;

/// The granted (action, key pattern) pairs of each function, read off its `Policies`:
/// `Action: [dynamodb:X]` lines, each followed by its `dynamodb:LeadingKeys: [...]`.
fn granted() -> BTreeMap<String, Grants> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let template = std::fs::read_to_string(path).unwrap();
    let mut grants: BTreeMap<String, Grants> = BTreeMap::new();
    let (mut function, mut actions) = (None::<String>, Vec::<String>::new());
    let list = |text: &str| -> Vec<String> {
        text.trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(',')
            .map(|item| item.trim().trim_matches('"').to_owned())
            .filter(|item| !item.is_empty())
            .collect()
    };
    for line in template.lines() {
        if line.starts_with("  ") && !line.starts_with("   ") && line.ends_with("Function:") {
            function = Some(line.trim().trim_end_matches(':').to_owned());
        } else if let Some(rest) = line.trim().strip_prefix("Action:") {
            actions = list(rest)
                .into_iter()
                .map(|a| a.trim_start_matches("dynamodb:").to_owned())
                .collect();
        } else if let Some(rest) = line.trim().strip_prefix("dynamodb:LeadingKeys:") {
            let function = function.clone().expect("a policy inside a function");
            for action in &actions {
                for key in list(rest) {
                    grants
                        .entry(function.clone())
                        .or_default()
                        .insert((action.clone(), key));
                }
            }
        }
    }
    grants
}

/// An item key as a policy pattern: the two fixed keys as they are, others by prefix.
fn pattern(key: &str) -> String {
    match key {
        "WARMUP" | "COUNTER#users" => key.to_owned(),
        _ => match key.split_once('#') {
            Some((prefix, _)) => format!("{prefix}#*"),
            None => key.to_owned(),
        },
    }
}

fn pk(item: &Value) -> String {
    item["pk"]["S"].as_str().unwrap_or("?").to_owned()
}

/// What each recorded request needs: the action IAM checks and the key it touches.
fn needed(exchanges: &[Exchange]) -> Grants {
    let mut out = Grants::new();
    for e in exchanges {
        let r = &e.request;
        match e.operation.as_str() {
            "GetItem" | "UpdateItem" | "DeleteItem" => {
                out.insert((e.operation.clone(), pattern(&pk(&r["Key"]))));
            }
            "Query" => {
                let pk = r["ExpressionAttributeValues"][":pk"]["S"]
                    .as_str()
                    .unwrap_or("?");
                out.insert(("Query".into(), pattern(pk)));
            }
            "PutItem" => {
                out.insert(("PutItem".into(), pattern(&pk(&r["Item"]))));
            }
            "BatchGetItem" => {
                for table in r["RequestItems"].as_object().into_iter().flatten() {
                    for key in table.1["Keys"].as_array().into_iter().flatten() {
                        out.insert(("BatchGetItem".into(), pattern(&pk(key))));
                    }
                }
            }
            "TransactWriteItems" => {
                for item in r["TransactItems"].as_array().into_iter().flatten() {
                    if let Some(put) = item.get("Put") {
                        out.insert(("PutItem".into(), pattern(&pk(&put["Item"]))));
                    } else if let Some(update) = item.get("Update") {
                        out.insert(("UpdateItem".into(), pattern(&pk(&update["Key"]))));
                    } else if let Some(delete) = item.get("Delete") {
                        out.insert(("DeleteItem".into(), pattern(&pk(&delete["Key"]))));
                    } else if let Some(check) = item.get("ConditionCheck") {
                        out.insert(("ConditionCheckItem".into(), pattern(&pk(&check["Key"]))));
                    }
                }
            }
            other => {
                out.insert((other.to_owned(), "?".into()));
            }
        }
    }
    out
}

#[tokio::test]
async fn each_policy_grants_exactly_what_its_function_calls() {
    let pusher = Receiver::start().await;
    let proxy = Proxy::start(&std::env::var(ENDPOINT_VAR).unwrap(), None).await;
    let extra = [
        (ENDPOINT_VAR, proxy.endpoint.as_str()),
        ("CREATE_RATE_LIMIT", "4"),
    ];
    let f = Functions::start_with(&pusher.base_url, Arc::new(SystemClock), &extra).await;
    let mut used: BTreeMap<String, Grants> = BTreeMap::new();
    let mut record = |name: &str| {
        used.entry(name.to_owned())
            .or_default()
            .extend(needed(&proxy.take_exchanges()));
    };
    proxy.take_exchanges();
    let function = |route: Route| {
        format!(
            "{}Function",
            route
                .function()
                .split('-')
                .map(|w| w[..1].to_uppercase() + &w[1..])
                .collect::<String>()
        )
    };
    // The stream's function: what the writes so far make it do (each list settles it
    // first, and finds nothing left).
    const PROJECTOR: &str = "ProjectChangesFunction";

    for route in Route::ALL {
        f.endpoint(route).warm_up().await;
        record(&function(route));
    }
    f.project_changes().warm_up().await;
    record(PROJECTOR);
    // create-user: created, then refused past the per-address limit.
    let (alice_pub, alice, _) = f.create().await;
    let (bob_pub, bob, _) = f.create().await;
    let (_, carol, _) = f.create().await;
    record(&function(Route::CreateUser));
    // rotate-id: rotated (the address's fourth id), then refused past the limit, and
    // refused for a stranger.
    assert_eq!(f.rotate(&carol).await.status, 200);
    assert_eq!(f.rotate(&carol).await.status, 429);
    assert_eq!(f.rotate(&"A".repeat(43)).await.status, 401);
    record(&function(Route::RotateId));
    let refused = invoke(
        f.endpoint(Route::CreateUser),
        &api_event(Route::CreateUser, "/users/create", None, None),
    )
    .await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    record(&function(Route::CreateUser));
    // connect: both sides, again (a join again checks the requester's open rooms), an
    // unused id, an unknown private id.
    let room = f.room(&alice, &bob_pub).await;
    f.room(&bob, &alice_pub).await;
    f.room(&alice, &bob_pub).await;
    let unused = if alice_pub == "000-000" || bob_pub == "000-000" {
        "000-000-000"
    } else {
        "000-000"
    };
    f.room(&alice, unused).await;
    let stranger = "A".repeat(43);
    assert_eq!(f.connect(&stranger, &bob_pub).await.status, 401);
    record(&function(Route::Connect));
    // send-message: sent, and refused to a non-member.
    assert_eq!(f.send(&alice, &room, "hi").await.status, 204);
    assert_eq!(f.send(&stranger, &room, "hi").await.status, 404);
    record(&function(Route::SendMessage));
    // channel-auth: a member, and a stranger.
    let channel = format!("private-{room}");
    assert_eq!(f.auth(&alice, "1.1", &channel).await.status, 200);
    assert_eq!(f.auth(&stranger, "1.1", &channel).await.status, 403);
    // ... and on an inbox channel: its holder, and someone else.
    record(&function(Route::ChannelAuth));
    f.settle().await;
    record(PROJECTOR);
    let inbox = f.rooms(&bob).await.body["inboxChannel"]
        .as_str()
        .unwrap()
        .to_owned();
    record(&function(Route::ListRooms));
    assert_eq!(f.auth(&bob, "1.1", &inbox).await.status, 200);
    assert_eq!(f.auth(&alice, "1.1", &inbox).await.status, 403);
    record(&function(Route::ChannelAuth));
    // list-rooms: an identity, and a stranger.
    assert_eq!(f.rooms(&alice).await.status, 200);
    assert_eq!(f.rooms(&stranger).await.status, 401);
    record(&function(Route::ListRooms));
    // list-messages: a member, and a stranger.
    assert_eq!(f.history(&bob, &room, json!({})).await.status, 200);
    assert_eq!(f.history(&stranger, &room, json!({})).await.status, 404);
    record(&function(Route::ListMessages));
    // block-room: a room only offered to its blocker (who reads their own user item and
    // the offer), a stranger, a member, the same again; then the closed room refuses.
    let offered = f.room(&carol, &bob_pub).await;
    record(&function(Route::Connect));
    assert_eq!(f.block(&bob, &offered).await.status, 204);
    assert_eq!(f.block(&stranger, &room).await.status, 404);
    assert_eq!(f.block(&bob, &room).await.status, 204);
    assert_eq!(f.block(&alice, &room).await.status, 204);
    record(&function(Route::BlockRoom));
    assert_eq!(f.send(&alice, &room, "hi").await.status, 410);
    record(&function(Route::SendMessage));
    assert_eq!(f.auth(&alice, "1.1", &channel).await.status, 403);
    record(&function(Route::ChannelAuth));
    assert_eq!(f.connect(&alice, &bob_pub).await.status, 410);
    record(&function(Route::Connect));
    // The stream's function: the rotation's retired id, the block's deleted offers.
    f.settle().await;
    record(PROJECTOR);

    let granted = granted();
    assert_eq!(
        granted.keys().collect::<Vec<_>>(),
        used.keys().collect::<Vec<_>>(),
        "one policy per function"
    );
    for (function, calls) in &used {
        assert_eq!(
            &granted[function], calls,
            "{function}: granted (left) versus called (right)"
        );
    }
}

/// Secrets: each function is given the ARN of the secrets it reads at start-up and may
/// read those only; no secret value sits in a function variable.
#[test]
fn each_function_may_read_exactly_the_secrets_it_is_given() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let template = std::fs::read_to_string(path).unwrap();
    let mut given: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut readable: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let (mut function, mut secrets_statement) = (String::new(), false);
    for line in template.lines() {
        let text = line.trim();
        // A function resource (not `Globals`' `Function:`).
        if line.starts_with("  ")
            && !line.starts_with("   ")
            && line.ends_with("Function:")
            && text != "Function:"
        {
            function = text.trim_end_matches(':').to_owned();
            given.entry(function.clone()).or_default();
            readable.entry(function.clone()).or_default();
        }
        for (var, _) in secret_rooms::config::SECRETS {
            assert!(
                !text.starts_with(&format!("{var}:")),
                "{function} has {var} in a plain variable"
            );
        }
        if let Some((var, value)) = text.split_once(": !Ref ")
            && var.ends_with("_SECRET_ARN")
        {
            assert!(
                secret_rooms::config::SECRETS
                    .iter()
                    .any(|(_, arn_var)| *arn_var == var),
                "{var} is no secret the functions read"
            );
            given
                .entry(function.clone())
                .or_default()
                .insert(value.to_owned());
        }
        if text.starts_with("Action:") {
            secrets_statement = text.contains("secretsmanager:");
            if secrets_statement {
                assert_eq!(text, "Action: [secretsmanager:GetSecretValue]");
            }
        }
        if secrets_statement && let Some(secret) = text.strip_prefix("Resource: !Ref ") {
            readable
                .entry(function.clone())
                .or_default()
                .insert(secret.to_owned());
        }
    }
    // A function per route, and the stream's, which is given none.
    assert_eq!(given.len(), Route::ALL.len() + 1);
    assert_eq!(given["ProjectChangesFunction"], BTreeSet::new());
    assert_eq!(
        given, readable,
        "secrets given (left) versus readable (right)"
    );
    // Two secrets at most (connect and channel-auth name inbox channels and use Pusher);
    // the history and block functions need none.
    assert!(given.values().all(|s| s.len() <= 2), "{given:?}");
}
