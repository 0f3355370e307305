//! AWS Secrets Manager, for the deployed functions' secrets (the room-id key, the
//! Pusher secret), read once at start-up: one signed JSON call per secret
//! ([`crate::aws_json`]).

use crate::aws_json::{AwsJsonClient, Service};
use crate::store::dynamodb::AwsSettings;
use anyhow::Context as _;
use serde_json::json;

const SERVICE: Service = Service {
    signing_name: "secretsmanager",
    target_prefix: "secretsmanager",
    content_type: "application/x-amz-json-1.1",
    label: "Secrets Manager",
};

#[derive(Debug)]
pub struct SecretsManager {
    client: AwsJsonClient,
}

impl SecretsManager {
    /// A client for `aws`'s region and credentials, at `endpoint` when given (a
    /// Secrets Manager-compatible server such as moto's), else at AWS's regional one.
    pub fn new(aws: AwsSettings, endpoint: Option<String>) -> anyhow::Result<Self> {
        let endpoint = endpoint
            .unwrap_or_else(|| format!("https://secretsmanager.{}.amazonaws.com", aws.region));
        Ok(Self {
            client: AwsJsonClient::new(SERVICE, aws, &endpoint)?,
        })
    }

    /// The `SecretString` of a secret (its ARN or name).
    pub async fn get_secret_string(&self, id: &str) -> anyhow::Result<String> {
        let answer = self
            .client
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
            .client
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
}
