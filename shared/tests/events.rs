//! Every file in `events/` (the samples for `sam local invoke -e` and
//! `cargo lambda invoke --data-file`) fed to its function's handler.

mod common;

use common::{Functions, invoke, pusher_receiver::Receiver};
use secret_rooms::http::Route;
use std::path::{Path, PathBuf};

/// File, function, expected status and error code. The happy-path samples carry a
/// well-formed private id that nobody holds, so on a fresh table they are refused the
/// way a stranger is; replace it with one from create-user to see them succeed.
const EXPECTED: &[(&str, Route, u16, Option<&str>)] = &[
    ("create-user.json", Route::CreateUser, 201, None),
    (
        "connect.json",
        Route::Connect,
        401,
        Some("unknown_private_id"),
    ),
    (
        "send-message.json",
        Route::SendMessage,
        404,
        Some("room_not_found"),
    ),
    (
        "channel-auth.json",
        Route::ChannelAuth,
        403,
        Some("not_a_member"),
    ),
    (
        "list-messages.json",
        Route::ListMessages,
        404,
        Some("room_not_found"),
    ),
    (
        "block-room.json",
        Route::BlockRoom,
        404,
        Some("room_not_found"),
    ),
    (
        "list-rooms.json",
        Route::ListRooms,
        401,
        Some("unknown_private_id"),
    ),
    (
        "rotate-id.json",
        Route::RotateId,
        401,
        Some("unknown_private_id"),
    ),
    (
        "bad/create-user-unknown-field.json",
        Route::CreateUser,
        400,
        Some("malformed_body"),
    ),
    (
        "bad/connect-malformed-public-id.json",
        Route::Connect,
        400,
        Some("invalid_public_id"),
    ),
    (
        "bad/connect-invalid-json.json",
        Route::Connect,
        400,
        Some("malformed_body"),
    ),
    (
        "bad/connect-no-body.json",
        Route::Connect,
        400,
        Some("malformed_body"),
    ),
    (
        "bad/connect-wrong-type.json",
        Route::Connect,
        400,
        Some("malformed_body"),
    ),
    (
        "bad/send-message-empty.json",
        Route::SendMessage,
        400,
        Some("empty_message"),
    ),
    (
        "bad/send-message-too-long.json",
        Route::SendMessage,
        413,
        Some("message_too_long"),
    ),
    (
        "bad/send-message-malformed-room.json",
        Route::SendMessage,
        400,
        Some("invalid_room_id"),
    ),
    (
        "bad/channel-auth-bad-socket-id.json",
        Route::ChannelAuth,
        400,
        Some("invalid_socket_id"),
    ),
    (
        "bad/channel-auth-not-a-room-channel.json",
        Route::ChannelAuth,
        400,
        Some("invalid_channel_name"),
    ),
    // API Gateway base64-encodes some bodies; the handler must decode them.
    (
        "channel-auth-base64-body.json",
        Route::ChannelAuth,
        403,
        Some("not_a_member"),
    ),
];

/// The stream's sample: a DynamoDB stream batch, as Lambda gives it to project-changes.
const STREAM_SAMPLE: &str = "project-changes.json";

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn json_files(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            json_files(&path, &format!("{prefix}{name}/"), out);
        } else if name.ends_with(".json") {
            out.push(format!("{prefix}{name}"));
        }
    }
}

#[test]
fn every_event_file_has_an_expectation() {
    let mut found = Vec::new();
    json_files(&events_dir(), "", &mut found);
    found.sort();
    let mut listed: Vec<String> = EXPECTED
        .iter()
        .map(|e| e.0.to_owned())
        .chain([STREAM_SAMPLE.to_owned()])
        .collect();
    listed.sort();
    assert_eq!(
        found, listed,
        "events/ and this test's table must list the same files"
    );
}

#[tokio::test]
async fn each_event_gets_its_expected_answer() {
    let pusher = Receiver::start().await;
    let f = Functions::start(&pusher.base_url).await;
    for (file, route, status, code) in EXPECTED {
        let text = std::fs::read_to_string(events_dir().join(file)).unwrap();
        let event: serde_json::Value = serde_json::from_str(&text).unwrap();
        let reply = invoke(f.endpoint(*route), &event).await;
        assert_eq!(reply.status, *status, "{file}: {}", reply.body);
        assert_eq!(
            reply.body["error"]["code"].as_str(),
            *code,
            "{file}: {}",
            reply.body
        );
    }
    assert!(pusher.published().is_empty());
}

/// The stream sample: each record stands for its change (an offer, a join, a kept
/// message, a deleted offer, a retired id), and the function projects the batch: on a
/// table holding what those writes left (the joined entry, the kept message, a copy of
/// an offer to the id the rotation retired), the offer is copied, the join notes the
/// message, the deleted offer's copy goes and the retirement drops the other copy.
#[tokio::test]
async fn the_stream_sample_is_projected() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use secret_rooms::domain::projection::Change;
    use secret_rooms::domain::{PrivateIdHash, PublicId};
    use serde_json::{Value, json};
    let text = std::fs::read_to_string(events_dir().join(STREAM_SAMPLE)).unwrap();
    let event: Value = serde_json::from_str(&text).unwrap();
    let records = event["Records"].as_array().unwrap();
    let changes: Vec<Option<Change>> = records
        .iter()
        .map(secret_rooms::projector::change_of)
        .collect();
    assert!(
        matches!(
            changes[..],
            [
                Some(Change::Offered { .. }),
                Some(Change::Joined { .. }),
                Some(Change::MessageKept { .. }),
                Some(Change::OfferDeleted { .. }),
                Some(Change::Retired { .. }),
            ]
        ),
        "{changes:#?}"
    );
    // DynamoDB JSON (strings, numbers, maps: what the sample holds) as attribute values.
    fn attribute(value: &Value) -> AttributeValue {
        let (kind, inner) = value.as_object().unwrap().iter().next().unwrap();
        match kind.as_str() {
            "S" => AttributeValue::S(inner.as_str().unwrap().into()),
            "N" => AttributeValue::N(inner.as_str().unwrap().into()),
            "M" => AttributeValue::M(
                inner
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), attribute(v)))
                    .collect(),
            ),
            other => panic!("no {other} in the sample"),
        }
    }
    let pusher = Receiver::start().await;
    let f = Functions::start(&pusher.base_url).await;
    let store = secret_rooms_test_kit::tables::reopen(f.table()).await;
    let put = |image: &Value| {
        let item = image
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), attribute(v)))
            .collect();
        store
            .client()
            .put_item()
            .table_name(f.table())
            .set_item(Some(item))
            .send()
    };
    let joined = &records[1]["dynamodb"]["NewImage"];
    let kept = &records[2]["dynamodb"]["NewImage"];
    put(joined).await.unwrap();
    put(kept).await.unwrap();
    let holder = records[4]["dynamodb"]["OldImage"]["privateIdHash"]["S"]
        .as_str()
        .unwrap();
    let copy_key = format!("OFFER#2026-11-29T20:00:00.000Z#{}", "Y".repeat(43));
    let copy = json!({
        "pk": {"S": format!("USER#{holder}")}, "sk": {"S": copy_key},
        "type": {"S": "inbox"}, "roomId": {"S": "Y".repeat(43)}, "to": {"S": "310-554"},
        "since": {"S": "2026-11-29T18:00:00.000Z"},
        "from": {"M": {"publicId": {"S": "123-999"}, "username": {"S": "Shy Lynx"}}},
        "openedAt": {"S": "2026-11-29T20:00:00.000Z"}
    });
    put(&copy).await.unwrap();

    let get = |pk: String, sk: String| {
        store
            .client()
            .get_item()
            .table_name(f.table())
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk))
            .consistent_read(true)
            .send()
    };
    let text = |v: &Value| v["S"].as_str().unwrap().to_owned();
    // The offer (its item written, its record alone) first: nobody holds 123-456, so
    // its copy goes to the id's unheld partition (written, never read), as it would to
    // a holder's.
    let offer = &records[0]["dynamodb"]["NewImage"];
    let unheld = PrivateIdHash::unheld(PublicId::parse("123-456").unwrap()).to_hex();
    let offer_copy = format!(
        "OFFER#{}#{}",
        text(&offer["openedAt"]),
        text(&offer["roomId"])
    );
    put(offer).await.unwrap();
    let first = json!({"Records": [records[0].clone()]});
    assert_eq!(
        f.project_changes().handle(&first).await,
        json!({"batchItemFailures": []})
    );
    let copied = get(format!("USER#{unheld}"), offer_copy.clone())
        .await
        .unwrap()
        .item;
    assert!(
        copied.is_some(),
        "the offer was copied to its unheld partition"
    );
    // Then the table as the whole batch leaves it: the offer's item deleted (the REMOVE).
    store
        .client()
        .delete_item()
        .table_name(f.table())
        .key("pk", AttributeValue::S(text(&offer["pk"])))
        .key("sk", AttributeValue::S(text(&offer["sk"])))
        .send()
        .await
        .unwrap();

    assert_eq!(
        f.project_changes().handle(&event).await,
        json!({"batchItemFailures": []})
    );
    let entry = get(text(&joined["pk"]), text(&joined["sk"]))
        .await
        .unwrap()
        .item
        .expect("the joined entry");
    assert_eq!(
        entry.get("lastMessageAt").and_then(|v| v.as_s().ok()),
        Some(&text(&kept["sentAt"])),
        "the join noted the room's newest message: {entry:?}"
    );
    let gone = get(format!("USER#{holder}"), copy_key).await.unwrap().item;
    assert!(gone.is_none(), "the retirement dropped the copy: {gone:?}");
    let dropped = get(format!("USER#{unheld}"), offer_copy)
        .await
        .unwrap()
        .item;
    assert!(
        dropped.is_none(),
        "the deleted offer's copy is gone: {dropped:?}"
    );
}
