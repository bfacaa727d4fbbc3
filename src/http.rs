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

/// An in-process provider (`test_util`'s stand-ins): answers a request without a network.
#[cfg(feature = "test-util")]
pub(crate) type InProcess =
    std::sync::Arc<dyn Fn(&oauth2::HttpRequest) -> oauth2::HttpResponse + Send + Sync>;

/// Where a provider's requests go: the app's awc client (from its factory) or the crate's own,
/// or, in tests, an in-process stand-in. One path for the token, keys and revoke endpoints.
#[derive(Clone, Default)]
pub(crate) struct HttpClient {
    pub(crate) make: Option<std::sync::Arc<dyn Fn() -> awc::Client + Send + Sync>>,
    #[cfg(feature = "test-util")]
    pub(crate) in_process: Option<InProcess>,
}

impl HttpClient {
    pub(crate) fn make(&self, timeout: std::time::Duration) -> awc::Client {
        match &self.make {
            Some(make) => make(),
            None => client(timeout),
        }
    }

    /// Sends `request` and reads the answer: no redirects followed, `timeout` for the whole
    /// exchange, at most `limit` bytes of body.
    pub(crate) async fn exchange(
        &self,
        request: oauth2::HttpRequest,
        timeout: std::time::Duration,
        limit: usize,
    ) -> Result<oauth2::HttpResponse, std::io::Error> {
        let endpoint = match request.uri().path().rsplit('/').next() {
            Some("token") => "token",
            Some("keys") => "keys",
            Some("revoke") => "revoke",
            _ => "other",
        };
        let started = std::time::Instant::now();
        let span = tracing::debug_span!("apple_request", endpoint);
        let answer =
            tracing::Instrument::instrument(self.send(request, timeout, limit), span).await;
        let outcome = match &answer {
            Ok(answer) => crate::audit::status_class(answer.status().as_u16()),
            Err(_) => "unavailable",
        };
        crate::audit::apple_call(endpoint, outcome, started.elapsed());
        answer
    }

    /// [`exchange`](Self::exchange) without its metrics.
    async fn send(
        &self,
        request: oauth2::HttpRequest,
        timeout: std::time::Duration,
        limit: usize,
    ) -> Result<oauth2::HttpResponse, std::io::Error> {
        #[cfg(feature = "test-util")]
        if let Some(answer) = &self.in_process {
            return Ok(answer(&request));
        }
        let client = self.make(timeout);
        let exchange = async {
            let mut outgoing = client.request(
                request
                    .method()
                    .as_str()
                    .parse()
                    .map_err(std::io::Error::other)?,
                request.uri().to_string(),
            );
            for (name, value) in request.headers() {
                outgoing = outgoing.insert_header((name.as_str(), value.as_bytes()));
            }
            let mut answer = outgoing
                .send_body(request.body().clone())
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let body = answer
                .body()
                .limit(limit)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let mut response = oauth2::http::Response::builder().status(answer.status().as_u16());
            for (name, value) in answer.headers() {
                response = response.header(name.as_str(), value.as_bytes());
            }
            response.body(body.to_vec()).map_err(std::io::Error::other)
        };
        actix_web::rt::time::timeout(timeout, exchange)
            .await
            .map_err(|_| std::io::Error::other("the provider did not answer in time"))?
    }
}
