//! Sessions on a server-side store (Redis) for apps that run several instances.
//!
//! Everything the crate keeps between requests — the login state, the identity, the re-login
//! mark — lives in the actix-session session, so with a shared store any instance can serve
//! any step of a sign-in. Two pieces make a store fit for that:
//!
//! - [`IdentityStore`] wraps any [`SessionStore`] (actix-session's `RedisSessionStore` above
//!   all). It sets each session's server-side TTL from what the session holds: a session with
//!   only a login state lives as long as the state (10 minutes by default); a signed-in one
//!   lives until the music user token's end plus the session margin
//!   ([`DEFAULT_SESSION_MARGIN`](crate::strategy::DEFAULT_SESSION_MARGIN), 7 days, so that a
//!   user who comes back after the end still gets the re-login prompt); a session holding
//!   nothing of the crate's keeps the middleware's TTL. It also records store failures for…
//! - [`StoreFailures`], a middleware placed *outside* `SessionMiddleware`, which answers a
//!   request whose session could not be loaded or saved with `503` and a typed
//!   [`StoreUnavailable`] error (JSON, or an HTML page for browsers) instead of actix-session's
//!   bare `500`. Nothing is cached: the next request tries the store again, so the app serves
//!   again as soon as the store is back.
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # async fn run(key: actix_web::cookie::Key) -> Result<(), Box<dyn std::error::Error>> {
//! use actix_apple_music::session_store::{IdentityStore, StoreFailures};
//! use actix_session::{config::PersistentSession, storage::RedisSessionStore, SessionMiddleware};
//! use actix_web::{cookie::time::Duration, App, HttpServer};
//!
//! let store = IdentityStore::new(RedisSessionStore::new("redis://127.0.0.1:6379").await?);
//! HttpServer::new(move || {
//!     App::new()
//!         .wrap(
//!             SessionMiddleware::builder(store.clone(), key.clone())
//!                 // the cookie may live as long as a music user token (plus the margin)
//!                 .session_lifecycle(PersistentSession::default().session_ttl(Duration::days(187)))
//!                 .build(),
//!         )
//!         .wrap(StoreFailures::new()) // outermost: store outages become 503s
//! })
//! # ; Ok(()) }
//! ```
//!
//! The TTL is set whenever the session is written; `update_ttl` (actix-session's
//! `TtlExtensionPolicy::OnEveryRequest`) is ignored, since extending a session past its
//! identity's end is what this type avoids.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::cookie::time::Duration;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use futures_util::future::LocalBoxFuture;
use time::OffsetDateTime;

use crate::strategy::SESSION_UNTIL_SUFFIX;

type SessionState = std::collections::HashMap<String, String>;

/// Which store operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreOperation {
    /// Reading a session.
    Load,
    /// Writing a new session.
    Save,
    /// Rewriting a session.
    Update,
    /// Deleting a session (logout, or the old key at sign-in).
    Delete,
}

impl StoreOperation {
    /// `load`, `save`, `update` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreOperation::Load => "load",
            StoreOperation::Save => "save",
            StoreOperation::Update => "update",
            StoreOperation::Delete => "delete",
        }
    }
}

/// The session store failed: answered `503` with `Retry-After: 5` and
/// `{"error": "session_store_unavailable", "operation": …, "message": …}`, or an HTML page
/// for browsers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the session store is unavailable (could not {} a session); please try again in a moment", .operation.as_str())]
#[non_exhaustive]
pub struct StoreUnavailable {
    /// What failed.
    pub operation: StoreOperation,
    /// Whether the request asked for HTML (set by [`StoreFailures`]).
    html: bool,
}

impl StoreUnavailable {
    fn response(&self, html: bool) -> HttpResponse {
        let mut builder = HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE);
        builder
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
        if html {
            let nonce = crate::response::nonce();
            crate::response::secure_page(&mut builder, &nonce, "", "");
            return builder.body(
                include_str!("pages/unavailable.html")
                    .replace("{{NONCE}}", &nonce)
                    .replace("{{OPERATION}}", self.operation.as_str())
                    .replace(
                        "{{MESSAGE}}",
                        &crate::response::escape_html(&self.to_string()),
                    ),
            );
        }
        builder.json(serde_json::json!({
            "error": "session_store_unavailable",
            "operation": self.operation.as_str(),
            "message": self.to_string(),
        }))
    }
}

impl ResponseError for StoreUnavailable {
    fn status_code(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }

    fn error_response(&self) -> HttpResponse {
        self.response(self.html)
    }
}

tokio::task_local! {
    // The store failure of the request that StoreFailures is running, if any.
    static FAILURE: RefCell<Option<StoreUnavailable>>;
}

fn record(operation: StoreOperation, cause: &dyn fmt::Display) {
    log::error!(
        "session store: could not {} a session: {cause}",
        operation.as_str()
    );
    let _ = FAILURE.try_with(|slot| {
        slot.borrow_mut().get_or_insert(StoreUnavailable {
            operation,
            html: false,
        });
    });
}

/// A [`SessionStore`] whose TTLs follow the crate's identities, and whose failures
/// [`StoreFailures`] turns into `503`s. See the [module docs](self).
#[derive(Clone)]
pub struct IdentityStore<S> {
    inner: S,
    timeout: std::time::Duration,
}

/// Default longest wait for one store operation: 2 seconds.
pub const DEFAULT_STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs one store operation with a deadline; a failure or a timeout is recorded for
/// [`StoreFailures`] and logged (the cause only: never a key or a value).
async fn guarded<T, E>(
    operation: StoreOperation,
    timeout: std::time::Duration,
    call: impl std::future::Future<Output = Result<T, E>>,
    timed_out: impl FnOnce(anyhow::Error) -> E,
    describe: impl FnOnce(&E) -> Option<String>,
) -> Result<T, E> {
    let result = match actix_web::rt::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(timed_out(anyhow::anyhow!(
            "no answer within {} ms",
            timeout.as_millis()
        ))),
    };
    if let Err(e) = &result {
        if let Some(cause) = describe(e) {
            record(operation, &cause);
        }
    }
    result
}

impl<S> fmt::Debug for IdentityStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityStore").finish_non_exhaustive()
    }
}

impl<S: SessionStore> IdentityStore<S> {
    /// Wraps a store; each operation waits at most [`DEFAULT_STORE_TIMEOUT`].
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            timeout: DEFAULT_STORE_TIMEOUT,
        }
    }

    /// The longest wait for one store operation before the request is answered `503`.
    /// (A Redis client may otherwise keep a request waiting while it reconnects.)
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

/// Connects to Redis at `url` (`redis://[:password@]host:port[/db]`) and wraps
/// actix-session's `RedisSessionStore`, on a connection pool, in an [`IdentityStore`].
/// Checks that Redis answers before it returns; the error names the URL without its
/// password.
///
/// The pool (deadpool-redis) opens connections on demand: while Redis is down requests fail
/// at once (`503` through [`StoreFailures`]), and the first request after it is back is
/// served. (actix-session's single-connection `RedisSessionStore::new` may instead keep
/// requests waiting for a minute while it reconnects.)
#[cfg(feature = "redis")]
pub async fn redis(
    url: &str,
) -> Result<IdentityStore<actix_session::storage::RedisSessionStore>, crate::ConfigError> {
    let shown = redact_url(url);
    let fail = |cause: &dyn fmt::Display| crate::ConfigError::Invalid {
        name: "SESSION_REDIS_URL".into(),
        value: shown.clone(),
        expected: format!(
            "a reachable Redis server, redis://[:password@]host:port[/db] ({})",
            first_line(&cause.to_string())
        ),
    };
    let mut config = deadpool_redis::Config::from_url(url);
    let limit = Some(DEFAULT_STORE_TIMEOUT);
    config.pool = Some(deadpool_redis::PoolConfig {
        timeouts: deadpool_redis::Timeouts {
            wait: limit,
            create: limit,
            recycle: limit,
        },
        ..deadpool_redis::PoolConfig::default()
    });
    let pool = config
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .map_err(|e| fail(&e))?;
    let mut conn = pool.get().await.map_err(|e| fail(&e))?;
    deadpool_redis::redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .map_err(|e| fail(&e))?;
    drop(conn);
    actix_session::storage::RedisSessionStore::new_pooled(pool)
        .await
        .map(IdentityStore::new)
        .map_err(|e| fail(&e))
}

#[cfg(feature = "redis")]
fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

/// `url` with any password replaced by `***`.
#[cfg(feature = "redis")]
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "(not a URL)".into(),
    }
}

/// The TTL a session should get: until the latest `*.until` entry, at least one second; the
/// middleware's `configured` TTL when the session holds none.
pub fn session_ttl(state: &SessionState, configured: &Duration, now: OffsetDateTime) -> Duration {
    let until = state
        .iter()
        .filter(|(key, _)| key.ends_with(SESSION_UNTIL_SUFFIX))
        .filter_map(|(_, value)| value.trim().parse::<i64>().ok())
        .max();
    match until {
        Some(until) => Duration::seconds(until.saturating_sub(now.unix_timestamp()).max(1)),
        None => *configured,
    }
}

impl<S: SessionStore> SessionStore for IdentityStore<S> {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        guarded(
            StoreOperation::Load,
            self.timeout,
            self.inner.load(session_key),
            LoadError::Other,
            |e| match e {
                LoadError::Other(cause) => Some(cause.to_string()),
                // Unreadable state: actix-session starts an empty session, no outage.
                LoadError::Deserialization(_) => None,
            },
        )
        .await
    }

    async fn save(
        &self,
        session_state: SessionState,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let ttl = session_ttl(&session_state, ttl, OffsetDateTime::now_utc());
        guarded(
            StoreOperation::Save,
            self.timeout,
            self.inner.save(session_state, &ttl),
            SaveError::Other,
            |e| Some(e.to_string()),
        )
        .await
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: SessionState,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let ttl = session_ttl(&session_state, ttl, OffsetDateTime::now_utc());
        guarded(
            StoreOperation::Update,
            self.timeout,
            self.inner.update(session_key, session_state, &ttl),
            UpdateError::Other,
            |e| Some(e.to_string()),
        )
        .await
    }

    async fn update_ttl(
        &self,
        _session_key: &SessionKey,
        _ttl: &Duration,
    ) -> Result<(), anyhow::Error> {
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        guarded(
            StoreOperation::Delete,
            self.timeout,
            self.inner.delete(session_key),
            |e| e,
            |e| Some(e.to_string()),
        )
        .await
    }
}

/// Answers `503` ([`StoreUnavailable`]) when an [`IdentityStore`] failed during the request.
/// Wrap it *around* `SessionMiddleware` (in actix, the last `.wrap` is the outermost).
///
/// When the session middleware gave up before a response existed (a failed load or save),
/// the `503` travels as the request's error, as actix-session's own `500` does, and actix's
/// server renders it; in tests, call the app with `actix_web::test::try_call_service` and
/// render the error with `error_response()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreFailures;

impl StoreFailures {
    /// The middleware.
    pub fn new() -> Self {
        Self
    }
}

impl<S, B> Transform<S, ServiceRequest> for StoreFailures
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Transform = StoreFailuresService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        std::future::ready(Ok(StoreFailuresService {
            service: Rc::new(service),
        }))
    }
}

/// The service [`StoreFailures`] wraps around the session middleware.
pub struct StoreFailuresService<S> {
    service: Rc<S>,
}

impl<S, B> Service<ServiceRequest> for StoreFailuresService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        // The request goes down the chain and must not be cloned (routing needs it unshared);
        // keep its `Accept` values (cheap clones) and read them only if the store failed.
        let accept: Vec<HeaderValue> = req.headers().get_all(header::ACCEPT).cloned().collect();
        Box::pin(FAILURE.scope(RefCell::new(None), async move {
            let result = service.call(req).await;
            let Some(failure) = FAILURE.with(|slot| slot.borrow_mut().take()) else {
                return result.map(ServiceResponse::map_into_left_body);
            };
            let html = crate::response::accepts_html(&accept);
            match result {
                Ok(res) => Ok(res
                    .into_response(failure.response(html))
                    .map_into_right_body()),
                // The session middleware gave up on the request: answer through the error.
                Err(_) => Err(StoreUnavailable { html, ..failure }.into()),
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_follows_the_latest_until_entry() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let configured = Duration::days(1);
        let mut state = SessionState::new();
        state.insert("app.cart".into(), "[]".into());
        assert_eq!(session_ttl(&state, &configured, now), configured);
        state.insert("apple-music.until".into(), "1000600".into());
        assert_eq!(
            session_ttl(&state, &configured, now),
            Duration::seconds(600)
        );
        state.insert("other.until".into(), "1003600".into());
        assert_eq!(
            session_ttl(&state, &configured, now),
            Duration::seconds(3600)
        );
        state.insert("apple-music.until".into(), "900000".into());
        state.remove("other.until");
        assert_eq!(session_ttl(&state, &configured, now), Duration::seconds(1));
    }
}
