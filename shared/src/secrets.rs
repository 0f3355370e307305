//! AWS Secrets Manager, for the deployed functions' secrets (the room-id key, the
//! Pusher secret), read once at start-up. One signed JSON call per secret over the
//! project's one HTTPS client: the SDK crate would add a second client stack to every
//! function for two requests in its life.

use crate::store::dynamodb::AwsSettings;
use anyhow::Context as _;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

const SERVICE: &str = "secretsmanager";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

pub struct SecretsManager {
    http: reqwest::Client,
    endpoint: String,
    aws: AwsSettings,
}

impl std::fmt::Debug for SecretsManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsManager")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl SecretsManager {
    /// A client for `aws`'s region and credentials, at `endpoint` when given (a
    /// Secrets Manager-compatible server such as moto's), else at AWS's regional one.
    pub fn new(aws: AwsSettings, endpoint: Option<String>) -> anyhow::Result<Self> {
        let endpoint = endpoint
            .unwrap_or_else(|| format!("https://secretsmanager.{}.amazonaws.com", aws.region));
        let http = crate::tls::reqwest_builder()?
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .build()?;
        Ok(Self {
            http,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            aws,
        })
    }

    /// The `SecretString` of a secret (its ARN or name).
    pub async fn get_secret_string(&self, id: &str) -> anyhow::Result<String> {
        let answer = self
            .call("GetSecretValue", json!({ "SecretId": id }))
            .await?;
        answer["SecretString"]
            .as_str()
            .map(str::to_owned)
            .context("the secret has no SecretString")
    }

    /// Create a secret and return its ARN (tests and operations; no function does).
    pub async fn create_secret(&self, name: &str, value: &str) -> anyhow::Result<String> {
        let answer = self
            .call(
                "CreateSecret",
                json!({ "Name": name, "SecretString": value }),
            )
            .await?;
        answer["ARN"]
            .as_str()
            .map(str::to_owned)
            .context("CreateSecret answered no ARN")
    }

    async fn call(&self, action: &str, body: Value) -> anyhow::Result<Value> {
        let body = body.to_string();
        let url = format!("{}/", self.endpoint);
        let host = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split('/').next())
            .context("an endpoint without a host")?
            .to_owned();
        let target = format!("secretsmanager.{action}");
        let headers = [
            ("host", host.as_str()),
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", target.as_str()),
        ];
        let identity = Credentials::new(
            &self.aws.access_key_id,
            &self.aws.secret_access_key,
            self.aws.session_token.clone(),
            None,
            "environment",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.aws.region)
            .name(SERVICE)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()?
            .into();
        let signable = SignableRequest::new(
            "POST",
            url.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )?;
        let (signature, _) = sign(signable, &params)?.into_parts();
        let mut request = self.http.post(&url).body(body.clone());
        for (name, value) in headers.iter().copied().chain(signature.headers()) {
            if name != "host" {
                request = request.header(name, value);
            }
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("Secrets Manager {action}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            // The error's type and message; never the request, which may hold a secret.
            let kind = answer["__type"].as_str().unwrap_or("unknown error");
            let message = answer["message"]
                .as_str()
                .or_else(|| answer["Message"].as_str())
                .unwrap_or_default();
            anyhow::bail!("Secrets Manager {action}: {status} {kind} {message}");
        }
        Ok(answer)
    }
}
