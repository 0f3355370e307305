//! TLS for outgoing HTTPS that costs nothing at start-up: rustls on aws-lc with the
//! Mozilla roots compiled in. The platform verifier would read and parse the whole
//! system store at start-up (about 2.5 ms of each cold start, measured by
//! ./scripts/bench.sh).

/// A reqwest client builder with that TLS configuration; every reqwest client of the
/// project starts here.
pub fn reqwest_builder() -> anyhow::Result<reqwest::ClientBuilder> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(reqwest::Client::builder().tls_backend_preconfigured(tls))
}
