//! API Gateway (HTTP API, payload v2) to a route's [`Handler`] and back. Each route's
//! function binary is `lambda::http::main(routes::X::from_env)`.

use crate::config::{ConfigError, Lookup};
use crate::http::{ApiRequest, ApiResponse, Handler, new_request_id, respond};
use lambda_http::http::header::{CONTENT_TYPE, RETRY_AFTER};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use std::convert::Infallible;
use std::future::Future;

/// Serve `endpoint` on the Lambda Runtime API until the process ends.
pub async fn run<H: Handler>(endpoint: H) -> Result<(), lambda_http::Error> {
    let endpoint = &endpoint;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Infallible>(handle(endpoint, req).await)
    }))
    .await
}

/// One invocation: the API Gateway request in, the HTTP response out.
pub async fn handle<H: Handler + ?Sized>(endpoint: &H, req: Request) -> Response<Body> {
    let request_id = req
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(new_request_id);
    let path_param = endpoint.route().path_param().and_then(|name| {
        req.path_parameters_ref()
            .and_then(|p| p.first(name))
            .map(str::to_owned)
    });
    let api = ApiRequest {
        method: req.method().as_str().to_owned(),
        path: req.uri().path().to_owned(),
        path_param,
        content_type: req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: req.body().as_ref().to_vec(),
        source: source_ip(&req),
    };
    to_lambda_response(respond(endpoint, &api, &request_id).await)
}

/// API Gateway's `requestContext.http.sourceIp`: the address its TCP connection came
/// from (not a header a client could set).
fn source_ip(req: &Request) -> Option<std::net::IpAddr> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.http.source_ip.as_deref()?.parse().ok(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

fn to_lambda_response(response: ApiResponse) -> Response<Body> {
    let mut builder = Response::builder().status(response.status);
    if let Some(seconds) = response.retry_after {
        builder = builder.header(RETRY_AFTER, seconds);
    }
    let built = match response.body {
        Some(body) => builder
            .header(CONTENT_TYPE, "application/json")
            .body(Body::Text(body.to_string())),
        None => builder.body(Body::Empty),
    };
    // Only an invalid status or header could fail, and ours are constants.
    built.unwrap_or_else(|_| {
        let mut fallback = Response::new(Body::Empty);
        *fallback.status_mut() = lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

/// The whole `main` of a function binary: logs, configuration (`build`, for example
/// `routes::CreateUser::from_env`), connection warm-up, then serve. Invalid
/// configuration ends the process at init with a line naming the variable.
pub async fn main<H, F, Fut>(build: F) -> Result<(), lambda_http::Error>
where
    H: Handler,
    F: FnOnce(Lookup<'static>) -> Fut,
    Fut: Future<Output = Result<H, ConfigError>>,
{
    crate::telemetry::init();
    let process: Lookup<'static> = &crate::config::process_env;
    // The deployed stack's secrets come from Secrets Manager, once, before anything
    // else reads the configuration.
    let secrets = match crate::config::fetch_secrets(process).await {
        Ok(secrets) => secrets,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            return Err(e.into());
        }
    };
    let env: Lookup<'static> = Box::leak(Box::new(crate::config::with_secrets(process, secrets)));
    let built = match crate::config::warm_up(env) {
        Ok(warm_up) => build(env).await.map(|handler| (handler, warm_up)),
        Err(e) => Err(e),
    };
    let handler = match built {
        Ok((handler, warm_up)) => {
            if warm_up {
                handler.warm_up().await;
            }
            handler
        }
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            return Err(e.into());
        }
    };
    run(handler).await
}
