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
///
/// With its secrets in Secrets Manager, a function warms its connections while the
/// secrets are read: the warm-up needs none, so a handler built with random stand-ins
/// for them opens the connections, through this process's shared HTTP clients
/// ([`crate::wiring`]), and the handler built with the real secrets takes them over.
pub async fn main<H, F, Fut>(build: F) -> Result<(), lambda_http::Error>
where
    H: Handler,
    F: Fn(Lookup<'static>) -> Fut,
    Fut: Future<Output = Result<H, ConfigError>>,
{
    crate::telemetry::init();
    crate::wiring::share_clients();
    let process: Lookup<'static> = &crate::config::process_env;
    match start(process, build).await {
        Ok(handler) => run(handler).await,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            Err(e.into())
        }
    }
}

/// Everything [`main`] does before serving: the secrets and the warm-up, then the
/// handler (public for the tests).
pub async fn start<H, F, Fut>(process: Lookup<'static>, build: F) -> Result<H, ConfigError>
where
    H: Handler,
    F: Fn(Lookup<'static>) -> Fut,
    Fut: Future<Output = Result<H, ConfigError>>,
{
    let warm_up = crate::config::warm_up(process)?;
    let early = warm_up && crate::config::reads_secrets(process);
    // Whether a stand-in warmed the connections. One that cannot be built (its
    // configuration is left to the real build to name) leaves the warm-up to the real
    // handler.
    let warm_early = async {
        if !early {
            return false;
        }
        let Ok(stand_ins) = crate::config::stand_in_secrets(process) else {
            return false;
        };
        let env: Lookup<'static> =
            Box::leak(Box::new(crate::config::with_secrets(process, stand_ins)));
        match build(env).await {
            Ok(stand_in) => {
                stand_in.warm_up().await;
                true
            }
            Err(_) => false,
        }
    };
    let (secrets, warmed) = tokio::join!(crate::config::fetch_secrets(process), warm_early);
    let env: Lookup<'static> = Box::leak(Box::new(crate::config::with_secrets(process, secrets?)));
    let handler = build(env).await?;
    if warm_up && !warmed {
        handler.warm_up().await;
    }
    Ok(handler)
}
