//! Outgoing HTTP: every request the crate sends to Apple (Apple Music API; Sign in with
//! Apple's token, keys and revoke endpoints) goes through one [`HttpClient`].
//!
//! The default is [`AwcClient`]: awc on rustls, one client per worker thread (awc's clients
//! are single-threaded) holding its connection pool, no redirects followed. An app's own awc
//! client ([`AwcClient::with_factory`]), any other client, or a test's in-process stand-in
//! (`test_util`) is just another implementation of the trait, handed to the strategy's config.
//!
//! One policy for every request, whoever implements the trait: the crate gives each request
//! its [`Limits`] (the whole exchange's time, the largest body it reads) and classifies every
//! answer itself, redirects included.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;

use futures_util::future::LocalBoxFuture;

/// A request to Apple: `http` 1.x's request with the whole body (oauth2's type).
pub type HttpRequest = oauth2::HttpRequest;
/// Apple's answer, with the whole body (oauth2's type).
pub type HttpResponse = oauth2::HttpResponse;

/// What the crate allows one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The whole exchange, from connecting to the end of the body.
    pub timeout: Duration,
    /// The largest body to read; a larger one is [`HttpError::TooLarge`].
    pub max_body: usize,
}

impl Limits {
    /// `timeout` for the exchange, at most `max_body` bytes of answer.
    pub fn new(timeout: Duration, max_body: usize) -> Self {
        Self { timeout, max_body }
    }
}

/// Why a request got no answer the crate can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// No answer came: the connection failed, or broke before the answer was read.
    #[error("{0}")]
    NoAnswer(String),
    /// The answer's body is larger than [`Limits::max_body`].
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// No whole answer within [`Limits::timeout`].
    #[error("no answer within {} ms", .0.as_millis())]
    TimedOut(Duration),
}

/// An async HTTP client for the crate's requests to Apple (the shape of oauth2's
/// `AsyncHttpClient`, with the crate's [`Limits`]). Implementations must not follow
/// redirects: the crate classifies a `3xx` as Apple's answer. The future need not be `Send`
/// (awc's is not); the crate awaits it on the worker thread that made the request.
pub trait HttpClient: Send + Sync + 'static {
    /// Sends `request` and reads the whole answer within `limits`.
    fn send(
        &self,
        request: HttpRequest,
        limits: Limits,
    ) -> LocalBoxFuture<'_, Result<HttpResponse, HttpError>>;
}

/// The shared handle the strategies hold: the app's client, or the crate's [`AwcClient`].
#[derive(Clone)]
pub(crate) struct Outgoing(Arc<dyn HttpClient>);

impl Default for Outgoing {
    fn default() -> Self {
        static DEFAULT: LazyLock<Arc<AwcClient>> = LazyLock::new(|| Arc::new(AwcClient::new()));
        Self(DEFAULT.clone())
    }
}

impl Outgoing {
    pub(crate) fn new(client: impl HttpClient) -> Self {
        Self(Arc::new(client))
    }

    /// Sends `request` within `limits`.
    pub(crate) async fn send(
        &self,
        request: HttpRequest,
        limits: Limits,
    ) -> Result<HttpResponse, HttpError> {
        self.0.send(request, limits).await
    }

    /// [`send`](Self::send) for Sign in with Apple's endpoints, measured and traced by
    /// endpoint (`token`, `keys`, `revoke`).
    pub(crate) async fn exchange(
        &self,
        request: HttpRequest,
        limits: Limits,
    ) -> Result<HttpResponse, HttpError> {
        let endpoint = match request.uri().path().rsplit('/').next() {
            Some("token") => "token",
            Some("keys") => "keys",
            Some("revoke") => "revoke",
            _ => "other",
        };
        let started = std::time::Instant::now();
        let span = tracing::debug_span!("apple_request", endpoint);
        let answer = tracing::Instrument::instrument(self.send(request, limits), span).await;
        let outcome = match &answer {
            Ok(answer) => crate::audit::status_class(answer.status().as_u16()),
            Err(_) => "unavailable",
        };
        crate::audit::apple_call(endpoint, outcome, started.elapsed());
        answer
    }
}

impl fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Outgoing")
    }
}

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

type Factory = Arc<dyn Fn() -> awc::Client + Send + Sync>;

thread_local! {
    // This thread's awc clients, by `AwcClient`: awc's clients are single-threaded.
    static CLIENTS: std::cell::RefCell<HashMap<u64, (Weak<AwcInner>, awc::Client)>> =
        std::cell::RefCell::new(HashMap::new());
}

/// awc as an [`HttpClient`]: one client per worker thread and per `AwcClient` (clones share
/// them), made by the crate (rustls, no redirects, the crate's user agent) or by the app's
/// factory. An idempotent request whose pooled connection the server closed while it was idle
/// (a failure before any answer) is sent once more, on a fresh connection.
#[derive(Clone)]
pub struct AwcClient {
    inner: Arc<AwcInner>,
}

struct AwcInner {
    id: u64,
    make: Option<Factory>,
}

impl fmt::Debug for AwcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwcClient")
            .field("apps_client", &self.inner.make.is_some())
            .finish()
    }
}

impl Default for AwcClient {
    fn default() -> Self {
        Self::new()
    }
}

impl AwcClient {
    /// The crate's own client: rustls (installing the enabled backend's crypto provider when
    /// none is installed yet), no redirects, the crate's user agent.
    pub fn new() -> Self {
        Self::make(None)
    }

    /// The app's own awc client (its connector, TLS roots, proxy), made by `make` once on
    /// each thread that calls Apple. It should not follow redirects. With it, the crate
    /// installs no process-wide TLS crypto provider.
    pub fn with_factory(make: impl Fn() -> awc::Client + Send + Sync + 'static) -> Self {
        Self::make(Some(Arc::new(make)))
    }

    fn make(make: Option<Factory>) -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self {
            inner: Arc::new(AwcInner {
                id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                make,
            }),
        }
    }

    /// This thread's client for this `AwcClient`. The per-thread table drops the clients of
    /// `AwcClient`s that are gone whenever it adds one, so it holds at most the live ones.
    fn client(&self) -> awc::Client {
        CLIENTS.with(|clients| {
            let mut clients = clients.borrow_mut();
            if let Some((_, client)) = clients.get(&self.inner.id) {
                return client.clone();
            }
            clients.retain(|_, (owner, _)| owner.strong_count() > 0);
            let client = match &self.inner.make {
                Some(make) => make(),
                None => {
                    install_tls_provider();
                    awc::Client::builder()
                        .disable_redirects()
                        .no_default_headers()
                        .add_default_header((
                            actix_web::http::header::USER_AGENT,
                            concat!("actix-apple-music/", env!("CARGO_PKG_VERSION")),
                        ))
                        .finish()
                }
            };
            clients.insert(self.inner.id, (Arc::downgrade(&self.inner), client.clone()));
            client
        })
    }
}

/// Whether sending `method` twice does what sending it once does.
fn is_idempotent(method: &oauth2::http::Method) -> bool {
    use oauth2::http::Method;
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    )
}

/// Whether a send failed before any answer came: the connection could not be made or was
/// closed under the request (a pooled connection the server had closed).
fn failed_before_answer(e: &awc::error::SendRequestError) -> bool {
    use awc::error::SendRequestError;
    matches!(
        e,
        SendRequestError::Connect(_) | SendRequestError::Send(_) | SendRequestError::Response(_)
    )
}

/// A send error as a short sentence, without the request's URL or headers.
fn describe_send_error(error: &awc::error::SendRequestError) -> String {
    use awc::error::SendRequestError as E;
    match error {
        E::Timeout => "no answer in time".into(),
        E::Connect(e) => format!("could not connect ({e})"),
        E::Url(_) => "the URL is not valid".into(),
        _ => "the request failed".into(),
    }
}

impl HttpClient for AwcClient {
    fn send(
        &self,
        request: HttpRequest,
        limits: Limits,
    ) -> LocalBoxFuture<'_, Result<HttpResponse, HttpError>> {
        Box::pin(async move {
            let method = request.method().clone();
            let outgoing = || -> Result<awc::ClientRequest, HttpError> {
                let method = actix_web::http::Method::from_bytes(method.as_str().as_bytes())
                    .map_err(|e| HttpError::NoAnswer(format!("not an HTTP method ({e})")))?;
                let mut outgoing = self
                    .client()
                    .request(method, request.uri().to_string())
                    .timeout(limits.timeout);
                for (name, value) in request.headers() {
                    let mut header =
                        actix_web::http::header::HeaderValue::from_bytes(value.as_bytes())
                            .map_err(|_| {
                                HttpError::NoAnswer("a header value is not valid".into())
                            })?;
                    // Tokens stay out of any Debug output on the way.
                    header.set_sensitive(value.is_sensitive());
                    outgoing = outgoing.insert_header((name.as_str(), header));
                }
                Ok(outgoing)
            };
            let exchange = async {
                let body = actix_web::web::Bytes::copy_from_slice(request.body());
                let mut answer = match outgoing()?.send_body(body.clone()).await {
                    Err(e) if is_idempotent(&method) && failed_before_answer(&e) => {
                        tracing::debug!("{}; sending once more", describe_send_error(&e));
                        outgoing()?.send_body(body).await
                    }
                    answer => answer,
                }
                .map_err(|e| HttpError::NoAnswer(describe_send_error(&e)))?;
                let body = answer
                    .body()
                    .limit(limits.max_body)
                    .await
                    .map_err(|e| match e {
                        awc::error::PayloadError::Overflow => HttpError::TooLarge(limits.max_body),
                        _ => HttpError::NoAnswer("the answer's body could not be read".into()),
                    })?;
                let mut response =
                    oauth2::http::Response::builder().status(answer.status().as_u16());
                for (name, value) in answer.headers() {
                    response = response.header(name.as_str(), value.as_bytes());
                }
                response
                    .body(Vec::from(body))
                    .map_err(|e| HttpError::NoAnswer(e.to_string()))
            };
            actix_web::rt::time::timeout(limits.timeout, exchange)
                .await
                .map_err(|_| HttpError::TimedOut(limits.timeout))?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_per_thread_and_the_clients_of_dropped_ones_go() {
        let made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = made.clone();
        let app = AwcClient::with_factory(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            awc::Client::default()
        });
        app.client();
        app.clone().client();
        assert_eq!(
            made.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "one per thread, shared by clones"
        );
        let before = CLIENTS.with(|c| c.borrow().len());
        for _ in 0..5 {
            AwcClient::with_factory(awc::Client::default).client();
        }
        let after = CLIENTS.with(|c| c.borrow().len());
        assert!(
            after <= before + 1,
            "dropped clients are pruned: {before} → {after}"
        );
        assert!(CLIENTS.with(|c| c.borrow().contains_key(&app.inner.id)));
    }

    #[test]
    fn only_idempotent_methods_are_sent_twice() {
        use oauth2::http::Method;
        for method in [
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::PUT,
            Method::DELETE,
        ] {
            assert!(is_idempotent(&method), "{method}");
        }
        for method in [Method::POST, Method::PATCH] {
            assert!(!is_idempotent(&method), "{method}");
        }
    }
}
