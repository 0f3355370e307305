//! The signed REST endpoint `POST /apps/{app_id}/events`: what the service publishes.

use super::*;

#[derive(Deserialize)]
struct TriggerBody {
    name: String,
    #[serde(default)]
    channels: Vec<String>,
    channel: Option<String>,
    data: String,
    socket_id: Option<String>,
}

fn rest_error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({"error": message.into()}).to_string();
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}

pub(super) async fn trigger(
    State(rt): State<Server>,
    Path(app_id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if app_id != rt.app.id {
        return rest_error(StatusCode::NOT_FOUND, format!("Unknown app {app_id}"));
    }
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let path = format!("/apps/{app_id}/events");
    if let Err(e) = verify_request(&rt.app.credentials, "POST", &path, &query, &body, now) {
        return rest_error(StatusCode::UNAUTHORIZED, e.to_string());
    }
    let Ok(event) = serde_json::from_slice::<TriggerBody>(&body) else {
        return rest_error(
            StatusCode::BAD_REQUEST,
            "Body must be {name, channels, data}",
        );
    };
    if event.data.len() > MAX_EVENT_BYTES {
        return rest_error(StatusCode::PAYLOAD_TOO_LARGE, "Event data is over 10KB");
    }
    let channels: Vec<String> = event.channels.into_iter().chain(event.channel).collect();
    if channels.is_empty() || channels.len() > 100 {
        return rest_error(StatusCode::BAD_REQUEST, "Name 1 to 100 channels");
    }
    for channel in &channels {
        rt.hub.publish(
            channel,
            &event.name,
            &event.data,
            event.socket_id.as_deref(),
        );
    }
    (StatusCode::OK, [(CONTENT_TYPE, "application/json")], "{}").into_response()
}
