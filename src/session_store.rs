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
//! On a server-side store the values are **sealed** ([`IdentityStore::sealed`]): each is
//! encrypted with AES-256-GCM under a key derived (HKDF-SHA256) from the session key, so a dump
//! of Redis holds no music user token. Values written before sealing was switched on still
//! read, and are sealed when the session is next written. The cookie store needs no sealing:
//! actix-session's private cookies are already encrypted with the session key.
//!
//! With Redis, [`redis`] also gives the [`RedisLedger`], which makes login states single-use
//! across every instance (see [`single_use`](crate::single_use)):
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # async fn run(key: actix_web::cookie::Key, auth: actix_apple_music::Authenticator<actix_apple_music::AppleMusicStrategy>) -> Result<(), Box<dyn std::error::Error>> {
//! use actix_apple_music::session_store::{self, StoreFailures};
//! use actix_session::{config::PersistentSession, SessionMiddleware};
//! use actix_web::{cookie::time::Duration, App, HttpServer};
//!
//! let redis = session_store::redis("redis://127.0.0.1:6379", &key).await?;
//! let auth = auth.state_ledger(redis.ledger());
//! let store = redis.store();
//! HttpServer::new(move || {
//!     App::new()
//!         .wrap(
//!             SessionMiddleware::builder(store.clone(), key.clone())
//!                 // the cookie may live as long as a music user token (plus the margin)
//!                 .session_lifecycle(PersistentSession::default().session_ttl(Duration::days(187)))
//!                 .build(),
//!         )
//!         .wrap(StoreFailures::new()) // outermost: store outages become 503s
//!         .configure(auth.clone().mount("/auth/apple-music"))
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
use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::cookie::time::Duration;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use futures_util::future::LocalBoxFuture;
use time::OffsetDateTime;

use crate::strategy::LIFETIME_KEY;

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
/// [`StoreFailures`] turns into `503`s; [`sealed`](Self::sealed), it also encrypts every value
/// at rest. See the [module docs](self).
#[derive(Clone)]
pub struct IdentityStore<S> {
    inner: S,
    timeout: std::time::Duration,
    sealer: Option<Sealer>,
}

/// What starts a sealed value: `aam1.` then base64url(nonce ‖ ciphertext ‖ tag).
const SEALED_PREFIX: &str = "aam1.";

/// AES-256-GCM under a key derived from the session key; each value's session key name is
/// its associated data, so a sealed value cannot be moved to another name.
#[derive(Clone)]
struct Sealer {
    cipher: Arc<Aes256Gcm>,
}

impl Sealer {
    fn new(key: &actix_web::cookie::Key) -> Self {
        let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(None, key.master());
        let mut okm = [0u8; 32];
        hkdf.expand(b"actix-apple-music session values v1", &mut okm)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self {
            cipher: Arc::new(Aes256Gcm::new(&okm.into())),
        }
    }

    fn seal(&self, name: &str, value: &str) -> Option<String> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: value.as_bytes(),
                    aad: name.as_bytes(),
                },
            )
            .ok()?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Some(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The plain value; `None` for a sealed value that does not open (another key, tampered).
    /// A value that was never sealed (written before sealing) is answered as it is.
    fn open(&self, name: &str, value: String) -> Option<String> {
        let Some(body) = value.strip_prefix(SEALED_PREFIX) else {
            return Some(value);
        };
        let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let plain = self
            .cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: sealed,
                    aad: name.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }

    fn seal_state(&self, state: SessionState) -> Result<SessionState, anyhow::Error> {
        state
            .into_iter()
            .map(|(name, value)| {
                let sealed = self
                    .seal(&name, &value)
                    .ok_or_else(|| anyhow::anyhow!("a session value could not be sealed"))?;
                Ok((name, sealed))
            })
            .collect()
    }

    fn open_state(&self, state: SessionState) -> SessionState {
        let mut dropped = 0usize;
        let opened = state
            .into_iter()
            .filter_map(|(name, value)| match self.open(&name, value) {
                Some(plain) => Some((name, plain)),
                None => {
                    dropped += 1;
                    None
                }
            })
            .collect();
        if dropped > 0 {
            log::warn!("session store: {dropped} sealed session value(s) did not open (another session key?) and were dropped");
        }
        opened
    }
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
    /// Wraps a store; each operation waits at most [`DEFAULT_STORE_TIMEOUT`]. Values are
    /// stored as they are: use [`sealed`](Self::sealed) for a server-side store.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            timeout: DEFAULT_STORE_TIMEOUT,
            sealer: None,
        }
    }

    /// Wraps a server-side store and seals every session value at rest (AES-256-GCM, key
    /// derived from `key`, the session middleware's key). Every instance needs the same key.
    pub fn sealed(inner: S, key: &actix_web::cookie::Key) -> Self {
        Self {
            sealer: Some(Sealer::new(key)),
            ..Self::new(inner)
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

/// Connects to Redis at `url` (`redis://[:password@]host:port[/db]`): actix-session's
/// `RedisSessionStore`, on a connection pool, in a [sealed](IdentityStore::sealed)
/// [`IdentityStore`] keyed from `key` (the session middleware's key), and a [`RedisLedger`]
/// on the same pool. Checks that Redis answers before it returns; the error names the URL
/// without its password.
///
/// The pool (deadpool-redis) opens connections on demand: while Redis is down requests fail
/// at once (`503` through [`StoreFailures`]), and the first request after it is back is
/// served. (actix-session's single-connection `RedisSessionStore::new` may instead keep
/// requests waiting for a minute while it reconnects.)
#[cfg(feature = "redis")]
pub async fn redis(
    url: &str,
    key: &actix_web::cookie::Key,
) -> Result<RedisSessions, crate::ConfigError> {
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
    let store = actix_session::storage::RedisSessionStore::new_pooled(pool.clone())
        .await
        .map_err(|e| fail(&e))?;
    Ok(RedisSessions {
        store: IdentityStore::sealed(store, key),
        ledger: RedisLedger {
            pool,
            timeout: DEFAULT_STORE_TIMEOUT,
        },
    })
}

/// What [`redis`] connects: the session store and the single-use state ledger, on one pool.
#[cfg(feature = "redis")]
#[derive(Clone)]
pub struct RedisSessions {
    store: IdentityStore<actix_session::storage::RedisSessionStore>,
    ledger: RedisLedger,
}

#[cfg(feature = "redis")]
impl fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSessions").finish_non_exhaustive()
    }
}

#[cfg(feature = "redis")]
impl RedisSessions {
    /// The sealed session store, for `SessionMiddleware` (clone it into each worker).
    pub fn store(&self) -> IdentityStore<actix_session::storage::RedisSessionStore> {
        self.store.clone()
    }

    /// The ledger for [`Authenticator::state_ledger`](crate::Authenticator::state_ledger).
    pub fn ledger(&self) -> RedisLedger {
        self.ledger.clone()
    }
}

/// Spent login states in Redis: `SET actix-apple-music:spent:<sha256 hex> 1 NX EX <ttl>`,
/// atomic across every instance on the same Redis. Waits at most
/// [`DEFAULT_STORE_TIMEOUT`]; a failure refuses the sign-in (`503`).
#[cfg(feature = "redis")]
#[derive(Clone)]
pub struct RedisLedger {
    pool: deadpool_redis::Pool,
    timeout: std::time::Duration,
}

#[cfg(feature = "redis")]
impl fmt::Debug for RedisLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLedger")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The Redis key prefix of spent login states.
#[cfg(feature = "redis")]
pub const SPENT_STATE_PREFIX: &str = "actix-apple-music:spent:";

#[cfg(feature = "redis")]
impl crate::single_use::StateLedger for RedisLedger {
    fn spend<'a>(
        &'a self,
        id: &'a crate::single_use::StateId,
        ttl: std::time::Duration,
    ) -> LocalBoxFuture<'a, Result<bool, crate::single_use::LedgerError>> {
        use crate::single_use::LedgerError;
        Box::pin(async move {
            let call = async {
                let mut conn = self.pool.get().await.map_err(LedgerError::new)?;
                let answer: Option<String> = deadpool_redis::redis::cmd("SET")
                    .arg(format!("{SPENT_STATE_PREFIX}{}", id.to_hex()))
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl.as_secs().max(1))
                    .query_async(&mut conn)
                    .await
                    .map_err(LedgerError::new)?;
                Ok(answer.is_some())
            };
            actix_web::rt::time::timeout(self.timeout, call)
                .await
                .unwrap_or_else(|_| {
                    Err(LedgerError::new(format!(
                        "Redis did not answer within {} ms",
                        self.timeout.as_millis()
                    )))
                })
        })
    }
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

/// The TTL a session should get: until the latest time in the crate's lifetime record (one
/// entry per strategy), at least one second; the middleware's `configured` TTL when the
/// session holds no record (or one that does not read).
fn session_ttl(state: &SessionState, configured: &Duration, now: OffsetDateTime) -> Duration {
    let until = state
        .get(LIFETIME_KEY)
        .and_then(|record| {
            serde_json::from_str::<std::collections::BTreeMap<String, i64>>(record).ok()
        })
        .and_then(|record| record.into_values().max());
    match until {
        Some(until) => Duration::seconds(until.saturating_sub(now.unix_timestamp()).max(1)),
        None => *configured,
    }
}

impl<S: SessionStore> SessionStore for IdentityStore<S> {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        let state = guarded(
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
        .await?;
        Ok(match (&self.sealer, state) {
            (Some(sealer), Some(state)) => Some(sealer.open_state(state)),
            (_, state) => state,
        })
    }

    async fn save(
        &self,
        session_state: SessionState,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let ttl = session_ttl(&session_state, ttl, OffsetDateTime::now_utc());
        let session_state = match &self.sealer {
            Some(sealer) => sealer.seal_state(session_state).map_err(SaveError::Other)?,
            None => session_state,
        };
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
        let session_state = match &self.sealer {
            Some(sealer) => sealer
                .seal_state(session_state)
                .map_err(UpdateError::Other)?,
            None => session_state,
        };
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
    fn sealed_values_open_only_under_their_key_and_name() {
        let key = actix_web::cookie::Key::generate();
        let sealer = Sealer::new(&key);
        let sealed = sealer
            .seal("apple-music.identity", "{\"mut\":\"secret\"}")
            .unwrap();
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("secret"));
        assert_eq!(
            sealer
                .open("apple-music.identity", sealed.clone())
                .as_deref(),
            Some("{\"mut\":\"secret\"}")
        );
        assert_eq!(
            sealer.open("apple-music.user", sealed.clone()),
            None,
            "moved to another name"
        );
        let other = Sealer::new(&actix_web::cookie::Key::generate());
        assert_eq!(
            other.open("apple-music.identity", sealed.clone()),
            None,
            "another key"
        );
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            sealer.open("apple-music.identity", tampered),
            None,
            "tampered"
        );
        // Written before sealing: still reads.
        assert_eq!(
            sealer.open("app.cart", "[1]".into()).as_deref(),
            Some("[1]")
        );
        assert_eq!(sealer.open("app.cart", "aam1.".into()), None);
    }

    #[test]
    fn ttl_follows_the_latest_entry_of_the_crates_own_record() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let configured = Duration::days(1);
        let mut state = SessionState::new();
        state.insert("app.cart".into(), "[]".into());
        // An app's own key that looks like a lifetime changes nothing.
        state.insert("cart.until".into(), "1000005".into());
        assert_eq!(session_ttl(&state, &configured, now), configured);
        state.insert(LIFETIME_KEY.into(), r#"{"apple-music":1000600}"#.into());
        assert_eq!(
            session_ttl(&state, &configured, now),
            Duration::seconds(600)
        );
        state.insert(
            LIFETIME_KEY.into(),
            r#"{"apple-music":1000600,"other":1003600}"#.into(),
        );
        assert_eq!(
            session_ttl(&state, &configured, now),
            Duration::seconds(3600)
        );
        state.insert(LIFETIME_KEY.into(), r#"{"apple-music":900000}"#.into());
        assert_eq!(session_ttl(&state, &configured, now), Duration::seconds(1));
        state.insert(LIFETIME_KEY.into(), "not json".into());
        assert_eq!(session_ttl(&state, &configured, now), configured);
    }
}
