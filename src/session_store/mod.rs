//! Sessions on a server-side store (Redis) for apps that run several instances.
//!
//! Everything the crate keeps between requests — the login state, the identity, the re-login
//! mark — lives in the actix-session session, so with a shared store any instance can serve
//! any step of a sign-in. Two pieces make a store fit for that:
//!
//! - [`LifetimeStore`] wraps any [`SessionStore`](actix_session::storage::SessionStore) (`RedisStore` above
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
//! On a server-side store the values are **sealed** ([`LifetimeStore::sealed`]): each is
//! encrypted with AES-256-GCM under a key derived (HKDF-SHA256) from the session key, so a dump
//! of Redis holds no music user token, and bound to its session's key and its name, so a value
//! copied into another session does not open. A value in plaintext is refused (read as absent);
//! [`LifetimeStore::accept_earlier_values_until`] lets values written by an earlier version read
//! for the time of a migration (sealed for their session when it is next written). The cookie store needs no sealing:
//! actix-session's private cookies are already encrypted with the session key.
//!
//! With Redis, [`redis()`] also gives the [`RedisLedger`], which makes login states single-use
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
//!         // Store outages become typed 503s, not actix-session's bare 500s.
//!         .wrap(StoreFailures::around(
//!             SessionMiddleware::builder(store.clone(), key.clone())
//!                 // the cookie may live as long as a music user token (plus the margin)
//!                 .session_lifecycle(PersistentSession::default().session_ttl(Duration::days(187)))
//!                 .build(),
//!         ))
//!         .configure(auth.mount("/auth/apple-music"))
//! })
//! # ; Ok(()) }
//! ```
//!
//! The TTL is set whenever the session is written; `update_ttl` (actix-session's
//! `TtlExtensionPolicy::OnEveryRequest`) is ignored, since extending a session past its
//! identity's end is what this type avoids.

mod cookie;
mod cookie_name;
mod failures;
mod lifetime;
mod middleware;
mod raw_cookie;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod redis_link;
mod rotation;
mod seal;

pub use cookie::CompactCookieStore;
pub use cookie_name::{plain_http_sessions, secure_sessions, HOST_COOKIE_NAME};
pub(crate) use failures::{after_save, in_cookie, AfterSave};

/// The largest session cookie a browser keeps (name and value): 4096 bytes.
pub(crate) const MAX_COOKIE_BYTES: usize = 4096;

/// The session cookie's size as sent, at most, for `session` plus `extra` bytes of values:
/// the compact form, sealed (AES-GCM nonce and tag), in base64, behind `__Host-id=`.
pub(crate) fn cookie_bytes(session: &actix_session::Session, extra: usize) -> usize {
    let plain: usize = session
        .entries()
        .iter()
        .map(|(k, v)| k.len() + v.len() + 2)
        .sum::<usize>()
        + 4
        + extra;
    HOST_COOKIE_NAME.len() + 1 + (plain + 28).div_ceil(3) * 4
}
pub use failures::{StoreFailures, StoreOperation, StoreUnavailable};
pub use lifetime::{KeyedSessionStore, LifetimeStore, WriteMode, DEFAULT_STORE_TIMEOUT};
pub use middleware::SessionStack;

/// The former name of [`SessionStack`] (a middleware, named like a collection).
#[deprecated(note = "renamed SessionStack")]
pub type Sessions<St> = SessionStack<St>;
#[cfg(feature = "redis")]
pub use redis::{
    redis, redis_at, redis_with_keys, RedisLedger, RedisSessions, RedisStore, SPENT_STATE_PREFIX,
};
#[cfg(feature = "redis")]
pub use redis_link::{
    RedisTarget, SESSION_REDIS_CLUSTER, SESSION_REDIS_SENTINELS, SESSION_REDIS_SENTINEL_MASTER,
    SESSION_REDIS_URL,
};
pub use rotation::{SessionKeys, TouchRotated};
pub use seal::{SealError, SecretSealer};

/// The state of one session, as actix-session hands it to stores.
type SessionState = std::collections::HashMap<String, String>;

/// A failed save, as the update that fell back to it failed.
fn as_update_error(e: actix_session::storage::SaveError) -> actix_session::storage::UpdateError {
    use actix_session::storage::{SaveError, UpdateError};
    match e {
        SaveError::Serialization(e) => UpdateError::Serialization(e),
        SaveError::Other(e) => UpdateError::Other(e),
    }
}
