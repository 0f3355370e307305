//! API Gateway HTTP API (payload v2) events, as a function receives them, for any route
//! of the route table; and `invoke`, which hands one to a handler as Lambda does.

use lambda_http::http::HeaderMap;
use secret_rooms::http::{Handler, Route};
use secret_rooms::lambda;
use serde_json::{Value, json};

/// An event for `route` at `path` (the path parameter is read off it where the route's
/// template has one). A body given is sent as is, with `content_type` if given.
pub fn api_event(
    route: Route,
    path: &str,
    content_type: Option<&str>,
    body: Option<&str>,
) -> Value {
    let route_key = route.key();
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
    if let Some((name, value)) = path_parameter(route, path) {
        event["pathParameters"] = json!({ name: value });
    }
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    event
}

/// The route's path parameter in `path`: the segment where its template has `{name}`.
fn path_parameter(route: Route, path: &str) -> Option<(&'static str, &str)> {
    let name = route.path_param()?;
    let index = route
        .path()
        .split('/')
        .position(|segment| segment == format!("{{{name}}}"))?;
    let value = path.split('/').nth(index)?;
    Some((name, value))
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

/// Feed an API Gateway event to a function's handler, as the Lambda runtime does.
pub async fn invoke<H: Handler + ?Sized>(handler: &H, event: &Value) -> Reply {
    let request =
        lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway event");
    let response = lambda::http::handle(handler, request).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_come_from_the_route_template() {
        let event = api_event(Route::Connect, "/users/123-456/connect", None, Some("{}"));
        assert_eq!(event["pathParameters"], json!({"publicId": "123-456"}));
        assert_eq!(event["routeKey"], json!("POST /users/{publicId}/connect"));
        let event = api_event(Route::SendMessage, "/rooms/abc/message", None, None);
        assert_eq!(event["pathParameters"], json!({"roomId": "abc"}));
        let event = api_event(Route::CreateUser, "/users/create", None, None);
        assert!(event.get("pathParameters").is_none());
        assert!(event.get("body").is_none());
    }
}
