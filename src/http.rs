//! The outgoing HTTP side shared by the providers' clients (awc on rustls).

/// Makes sure rustls (under awc) has a process-wide crypto provider: aws-lc-rs with the
/// `aws_lc_rs` feature, ring with `rust_crypto` alone. If the app installed one already, that
/// one stays.
pub(crate) fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(feature = "aws_lc_rs")]
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        #[cfg(all(feature = "rust_crypto", not(feature = "aws_lc_rs")))]
        let provider = rustls::crypto::ring::default_provider();
        // Err means a provider is in place already, which is all we need.
        let _ = provider.install_default();
    });
}

/// A client for a provider's endpoints: no redirects followed, our user agent, `timeout`
/// for a whole exchange. Installs the TLS provider first (see [`install_tls_provider`]).
pub(crate) fn client(timeout: std::time::Duration) -> awc::Client {
    install_tls_provider();
    awc::Client::builder()
        .disable_redirects()
        .timeout(timeout)
        .add_default_header((
            actix_web::http::header::USER_AGENT,
            concat!("actix-apple-music/", env!("CARGO_PKG_VERSION")),
        ))
        .finish()
}

/// Where the strategy's HTTP clients come from: the app's factory, or the crate's own.
#[derive(Clone)]
pub(crate) struct HttpClient(
    pub(crate) Option<std::sync::Arc<dyn Fn() -> awc::Client + Send + Sync>>,
);

impl HttpClient {
    pub(crate) fn make(&self, timeout: std::time::Duration) -> awc::Client {
        match &self.0 {
            Some(make) => make(),
            None => client(timeout),
        }
    }
}
