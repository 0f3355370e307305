//! The DynamoDB client: its HTTPS connector (trusting only the bundled Amazon roots),
//! timeouts, and the interceptor that counts round trips.

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{ConfigBag, HttpClient, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::config::{SharedHttpClient, SharedInterceptor};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_http_client::{Builder as HttpClientBuilder, HttpClientError, tls};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpConnectorSettings, SharedHttpConnector};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How long a DynamoDB call may take: 1 s to connect, then `attempt` for each attempt
/// and `operation` in all (the SDK's standard retries included), well inside the
/// functions' 10 s. Defaults 2 s and 5 s; a slow DynamoDB-compatible emulator may need
/// more (`DYNAMODB_ATTEMPT_TIMEOUT_MS`, `DYNAMODB_OPERATION_TIMEOUT_MS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub attempt: Duration,
    pub operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            attempt: Duration::from_secs(2),
            operation: Duration::from_secs(5),
        }
    }
}

/// 1 s to connect, then the configured bounds per attempt and in all.
pub(super) fn timeout_config(timeouts: Timeouts) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(timeouts.attempt)
        .operation_timeout(timeouts.operation)
        .build()
}

/// What Lambda gives every function to reach DynamoDB (read by `config::aws`).
#[derive(Clone, PartialEq, Eq)]
pub struct AwsSettings {
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// `AWS_ENDPOINT_URL_DYNAMODB` (or `AWS_ENDPOINT_URL`): a DynamoDB-compatible server.
    pub endpoint: Option<String>,
}

impl std::fmt::Debug for AwsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSettings")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// Counts every HTTP attempt the SDK transmits.
#[derive(Debug)]
struct CountRoundTrips(Arc<AtomicUsize>);

impl Intercept for CountRoundTrips {
    fn name(&self) -> &'static str {
        "CountRoundTrips"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// An interceptor counting round trips into `counter`.
pub(super) fn round_trip_counter(counter: Arc<AtomicUsize>) -> SharedInterceptor {
    SharedInterceptor::new(CountRoundTrips(counter))
}

/// The roots DynamoDB's public endpoints chain to (Amazon Trust Services).
pub(super) const AMAZON_ROOTS: &[u8] = include_bytes!("../../../certs/amazon-roots.pem");

/// An HTTPS client that trusts only [`AMAZON_ROOTS`]. The SDK's default client reads
/// and parses every certificate of the system store at start-up (about 4 ms of each
/// cold start, measured by ./scripts/bench.sh); DynamoDB needs five of them.
///
/// Once [`crate::wiring::share_clients`] was called (a function's start-up), one client
/// for the whole process, so that every DynamoDB client built shares its connections.
pub(super) fn amazon_roots_client() -> Result<SharedHttpClient, HttpClientError> {
    static SHARED: std::sync::OnceLock<SharedHttpClient> = std::sync::OnceLock::new();
    if !crate::wiring::sharing_clients() {
        return new_amazon_roots_client();
    }
    if let Some(client) = SHARED.get() {
        return Ok(client.clone());
    }
    let client = new_amazon_roots_client()?;
    Ok(SHARED.get_or_init(|| client).clone())
}

fn new_amazon_roots_client() -> Result<SharedHttpClient, HttpClientError> {
    let trust = tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_ROOTS);
    let context = tls::TlsContext::builder().with_trust_store(trust).build()?;
    let client = HttpClientBuilder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https();
    Ok(SharedHttpClient::new(ConnectorOnFirstUse(client)))
}

/// The SDK's HTTPS client, minus the check it runs when a DynamoDB client is created:
/// that check builds the whole TLS connector (parsing the roots, setting up rustls) and
/// throws it away, and the first request builds it again. With the bundled roots,
/// which a test parses, it cannot fail: skipping it took a third off the work of each
/// function's init (BENCHMARKS.md).
#[derive(Debug)]
struct ConnectorOnFirstUse(SharedHttpClient);

impl HttpClient for ConnectorOnFirstUse {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// A DynamoDB endpoint override over HTTPS (a self-hosted DynamoDB-compatible server)
/// may use any CA: it keeps the system's roots. Plain-HTTP overrides need none.
pub(super) fn is_https(url: &str) -> bool {
    url.trim().to_ascii_lowercase().starts_with("https:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_roots_are_the_five_amazon_trust_services_roots() {
        let text = std::str::from_utf8(AMAZON_ROOTS).unwrap();
        assert_eq!(text.matches("-----BEGIN CERTIFICATE-----").count(), 5);
        assert!(amazon_roots_client().is_ok());
        // What the connector, built on first use, does with them: each must parse
        // into a trust anchor.
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(AMAZON_ROOTS) {
            roots.add(cert.unwrap()).unwrap();
        }
        assert_eq!(roots.len(), 5);
    }

    #[test]
    fn only_https_endpoints_keep_the_system_roots() {
        assert!(is_https(" HTTPS://dynamo.example"));
        assert!(!is_https("http://127.0.0.1:8000"));
    }

    #[test]
    fn settings_never_print_the_secret() {
        let settings = AwsSettings {
            region: "eu-west-1".into(),
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "very-secret".into(),
            session_token: Some("token".into()),
            endpoint: None,
        };
        let text = format!("{settings:?}");
        assert!(
            !text.contains("very-secret") && !text.contains("token\""),
            "{text}"
        );
    }
}
