//! Options of the Apple Music API client.

use std::fmt;
use std::time::Duration;

use super::types::{DEFAULT_API_BASE_URL, DEFAULT_API_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES};

/// Options of an [`AppleMusicApi`](super::AppleMusicApi). Defaults: [`DEFAULT_API_BASE_URL`],
/// [`DEFAULT_API_TIMEOUT`], [`DEFAULT_MAX_RESPONSE_BYTES`], no `Origin` header, the crate's
/// own HTTP client.
#[derive(Clone)]
pub struct ApiOptions {
    pub(super) base_url: String,
    pub(super) timeout: Duration,
    pub(super) max_body: usize,
    pub(super) origin: Option<String>,
    pub(super) client: Option<crate::http::Outgoing>,
}

impl fmt::Debug for ApiOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiOptions")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("max_body", &self.max_body)
            .field("origin", &self.origin)
            .field("own_http_client", &self.client.is_some())
            .finish()
    }
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_API_BASE_URL.into(),
            timeout: DEFAULT_API_TIMEOUT,
            max_body: DEFAULT_MAX_RESPONSE_BYTES,
            origin: None,
            client: None,
        }
    }
}

impl ApiOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Where requests go (a stand-in in tests).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }
    /// Timeout of one request, from connecting to the end of the body.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Largest body read; a larger one is [`ApiError::Unavailable`](super::ApiError::Unavailable).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }
    /// An `Origin` header to send, for developer tokens with an `origin` claim.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }
    /// The app's own awc client (its connector, TLS roots, proxy, timeouts), made by `make`
    /// once on each thread that calls Apple (awc clients are single-threaded): shorthand for
    /// [`client`](Self::client)`(`[`AwcClient::with_factory`](crate::http::AwcClient::with_factory)`(make))`.
    /// It should not follow redirects: Apple's answers are classified, not followed. With it,
    /// the crate installs no process-wide TLS crypto provider (the crate's own client
    /// installs rustls's provider for the enabled backend when none is installed yet).
    pub fn http_client(self, make: impl Fn() -> awc::Client + Send + Sync + 'static) -> Self {
        self.client(crate::http::AwcClient::with_factory(make))
    }
    /// Any [`HttpClient`](crate::http::HttpClient) for the requests to Apple (default: the
    /// crate's [`AwcClient`](crate::http::AwcClient)); in tests, an in-process stand-in.
    pub fn client(mut self, client: impl crate::http::HttpClient) -> Self {
        self.client = Some(crate::http::Outgoing::new(client));
        self
    }
}
