//! AWS's JSON protocol (`X-Amz-Target` over a signed POST), for the two services the
//! project calls besides DynamoDB: Secrets Manager, once per secret at a function's
//! start-up, and DynamoDB Streams, from the local server and the tests. One signed
//! request over the project's HTTPS client each; an SDK crate per service would add a
//! second client stack for a handful of calls.

use crate::store::dynamodb::AwsSettings;
use anyhow::Context as _;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials as _, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// What tells one service's calls from another's.
#[derive(Clone, Copy, Debug)]
pub struct Service {
    /// The name requests are signed for (`secretsmanager`; `dynamodb` for streams).
    pub signing_name: &'static str,
    /// What precedes the action in `X-Amz-Target`.
    pub target_prefix: &'static str,
    pub content_type: &'static str,
    /// How log lines and errors name it.
    pub label: &'static str,
}

pub struct AwsJsonClient {
    http: reqwest::Client,
    url: String,
    host: String,
    service: Service,
    region: String,
    identity: Identity,
}

/// Whose credentials sign the calls.
enum Identity {
    /// What Lambda sets for a function (or a test's dummy keys).
    Fixed(Credentials),
    /// A provider asked before each call (it caches, and renews temporary credentials):
    /// the local server's, from the SDK's default chain.
    Provider(SharedCredentialsProvider),
}

impl std::fmt::Debug for AwsJsonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsJsonClient")
            .field("service", &self.service.label)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl AwsJsonClient {
    /// A client of `service` at `endpoint` (no trailing path), signing with `aws`'s
    /// region and credentials.
    pub fn new(service: Service, aws: AwsSettings, endpoint: &str) -> anyhow::Result<Self> {
        let credentials = Credentials::new(
            aws.access_key_id,
            aws.secret_access_key,
            aws.session_token,
            None,
            "environment",
        );
        Self::build(service, aws.region, Identity::Fixed(credentials), endpoint)
    }

    /// A client of `service` at `endpoint`, signing in `region` with what `provider`
    /// gives at each call.
    pub fn with_provider(
        service: Service,
        region: String,
        provider: SharedCredentialsProvider,
        endpoint: &str,
    ) -> anyhow::Result<Self> {
        Self::build(service, region, Identity::Provider(provider), endpoint)
    }

    fn build(
        service: Service,
        region: String,
        identity: Identity,
        endpoint: &str,
    ) -> anyhow::Result<Self> {
        let url = format!("{}/", endpoint.trim_end_matches('/'));
        let host = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split('/').next())
            .context("an endpoint without a host")?
            .to_owned();
        let http = crate::tls::reqwest_builder()?
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .build()?;
        Ok(Self {
            http,
            url,
            host,
            service,
            region,
            identity,
        })
    }

    /// One call of `action` with `body`; the answer's JSON, or an error naming the
    /// service's error type and message (never the request, which may hold a secret).
    pub async fn call(&self, action: &str, body: Value) -> anyhow::Result<Value> {
        let Service {
            signing_name,
            target_prefix,
            content_type,
            label,
        } = self.service;
        let body = body.to_string();
        let target = format!("{target_prefix}.{action}");
        let headers = [
            ("host", self.host.as_str()),
            ("content-type", content_type),
            ("x-amz-target", target.as_str()),
        ];
        let credentials = match &self.identity {
            Identity::Fixed(credentials) => credentials.clone(),
            Identity::Provider(provider) => provider
                .provide_credentials()
                .await
                .with_context(|| format!("{label} {action}: credentials"))?,
        };
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(signing_name)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()?
            .into();
        let signable = SignableRequest::new(
            "POST",
            self.url.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )?;
        let (signature, _) = sign(signable, &params)?.into_parts();
        let mut request = self.http.post(&self.url).body(body);
        for (name, value) in headers.iter().copied().chain(signature.headers()) {
            if name != "host" {
                request = request.header(name, value);
            }
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{label} {action}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let kind = answer["__type"].as_str().unwrap_or("unknown error");
            let message = answer["message"]
                .as_str()
                .or_else(|| answer["Message"].as_str())
                .unwrap_or_default();
            anyhow::bail!("{label} {action}: {status} {kind} {message}");
        }
        Ok(answer)
    }
}
