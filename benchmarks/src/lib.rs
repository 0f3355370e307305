//! Shared by the benchmark binaries and benches.

use serde_json::{Value, json};

/// An API Gateway HTTP API (payload v2) POST event.
pub fn api_event(
    route_key: &str,
    path: &str,
    params: Option<Value>,
    body: &str,
    form: bool,
) -> Value {
    let content_type = if form {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    };
    let mut event = json!({
        "version": "2.0", "routeKey": route_key, "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": content_type},
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench", "domainPrefix": "bench",
            "requestId": "bench", "routeKey": route_key, "stage": "$default",
            "time": "24/Nov/2026:05:20:55 +0000", "timeEpoch": 0,
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"}
        },
        "body": body, "isBase64Encoded": false
    });
    if let Some(params) = params {
        event["pathParameters"] = params;
    }
    event
}
