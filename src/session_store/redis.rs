//! Redis: a session store on one multiplexed, self-healing connection, sealed, and the
//! single-use state ledger on the same connection.

use std::fmt;

use actix_session::storage::{
    generate_session_key, LoadError, SaveError, SessionKey, SessionStore, UpdateError,
};
use actix_web::cookie::time::Duration;
use futures_util::future::LocalBoxFuture;
use redis::{Cmd, FromRedisValue, Value};

use super::lifetime::{LifetimeStore, DEFAULT_STORE_TIMEOUT};
use super::redis_link::{Link, RedisTarget};
use super::SessionState;

/// Connects to Redis at `url` (`redis://[:password@]host:port[/db]`): a [`RedisStore`] in a
/// [sealed](LifetimeStore::sealed) [`LifetimeStore`] keyed from `key` (the session
/// middleware's key), and a [`RedisLedger`] on the same connection. Checks that Redis
/// answers before it returns; the error names the URL without its password.
///
/// A guarded request costs one Redis round trip (`GET`). While Redis is down requests fail
/// at once (`503` through [`StoreFailures`](super::StoreFailures)), and the first request
/// after it is back is served.
pub async fn redis(
    url: &str,
    key: &actix_web::cookie::Key,
) -> Result<RedisSessions, crate::ConfigError> {
    redis_with_keys(url, &super::SessionKeys::new(key.clone())).await
}

/// [`redis()`] during a session-key rotation: values sealed under the current key of `keys`,
/// and values sealed under a previous one still read (sealed again when next written).
pub async fn redis_with_keys(
    url: &str,
    keys: &super::SessionKeys,
) -> Result<RedisSessions, crate::ConfigError> {
    redis_at(&RedisTarget::Node(url.to_owned()), keys).await
}

/// [`redis_with_keys`] on any [`RedisTarget`]: one node, a Sentinel group's primary (followed
/// across failovers) or a Cluster. Sessions, login states and account records are the same on
/// each; on a Cluster every key stands alone or shares a hash tag with the keys it must move
/// with, so no command spans two slots.
///
/// ```no_run
/// # async fn run(keys: actix_apple_music::session_store::SessionKeys) -> Result<(), Box<dyn std::error::Error>> {
/// use actix_apple_music::session_store::{self, RedisTarget};
///
/// // SESSION_REDIS_URL, or SESSION_REDIS_SENTINELS with SESSION_REDIS_SENTINEL_MASTER,
/// // or SESSION_REDIS_CLUSTER.
/// if let Some(target) = RedisTarget::from_env()? {
///     let redis = session_store::redis_at(&target, &keys).await?;
///     # let _ = redis;
/// }
/// # Ok(()) }
/// ```
pub async fn redis_at(
    target: &RedisTarget,
    keys: &super::SessionKeys,
) -> Result<RedisSessions, crate::ConfigError> {
    let store = RedisStore::connect_to(target).await?;
    Ok(RedisSessions {
        accounts: Default::default(),
        ledger: RedisLedger {
            store: store.clone(),
            timeout: DEFAULT_STORE_TIMEOUT,
        },
        store: LifetimeStore::sealed_with(store, keys),
    })
}

/// What [`redis()`] connects: the session store and the single-use state ledger, on one
/// connection.
#[derive(Clone)]
pub struct RedisSessions {
    store: LifetimeStore<RedisStore>,
    ledger: RedisLedger,
    /// The account store on this connection, made at the first
    /// [`accounts`](RedisSessions::accounts) call and shared by its clones.
    pub(crate) accounts: std::sync::Arc<std::sync::OnceLock<crate::accounts::Accounts>>,
}

impl fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSessions").finish_non_exhaustive()
    }
}

impl RedisSessions {
    /// The sealed session store, for `SessionMiddleware` (clone it into each worker).
    pub fn store(&self) -> LifetimeStore<RedisStore> {
        self.store.clone()
    }

    /// The ledger for [`Authenticator::state_ledger`](crate::Authenticator::state_ledger).
    pub fn ledger(&self) -> RedisLedger {
        self.ledger.clone()
    }
}

/// An actix-session [`SessionStore`] in Redis, on one multiplexed connection that every
/// worker shares and that reconnects by itself.
///
/// Sessions are kept as actix-session's own `RedisSessionStore` keeps them (the session key
/// as the Redis key, the state as a JSON object, `SET … NX EX` to create, `SET … XX EX` to
/// rewrite), so sessions it wrote stay readable. It differs where a guarded route feels it:
/// one round trip per read (no connection check before each command, as a pool's recycling
/// does), and a command that met a lost connection is sent once more, at once, on a new
/// one, instead of waiting out a reconnection backoff.
///
/// Use it through [`redis()`], which wraps it in a sealed [`LifetimeStore`]; on its own it
/// keeps values in plaintext.
#[derive(Clone)]
pub struct RedisStore {
    link: Link,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `url` and checks that Redis answers (`PING`). The error names the URL
    /// without its password.
    pub async fn connect(url: &str) -> Result<Self, crate::ConfigError> {
        Self::connect_to(&RedisTarget::Node(url.to_owned())).await
    }

    /// Connects to `target` and checks that it answers (`PING`). The error names the
    /// environment variable of the target's kind and the target without its password.
    pub async fn connect_to(target: &RedisTarget) -> Result<Self, crate::ConfigError> {
        Ok(RedisStore {
            link: Link::connect(target).await?,
        })
    }

    /// Runs `cmd`; a command that met a lost connection is sent once more on a new one (see
    /// [`RedisTarget`] for how each topology finds it).
    pub(crate) async fn run<T: FromRedisValue>(&self, cmd: &Cmd) -> redis::RedisResult<T> {
        self.link.run(cmd).await
    }

    /// [`run`](Self::run) within the request's store time (see [`LifetimeStore::timeout`]):
    /// the account records' calls, so that a slow Redis answers a sign-in or a guarded
    /// request within that time too, not after Redis wakes up.
    pub(crate) async fn run_within<T: FromRedisValue>(&self, cmd: &Cmd) -> redis::RedisResult<T> {
        super::failures::within_store_time(DEFAULT_STORE_TIMEOUT, self.run(cmd))
            .await
            .unwrap_or_else(|| {
                Err(redis::RedisError::from((
                    redis::ErrorKind::IoError,
                    "no answer within the request's store time",
                )))
            })
    }

    /// `SET key body <NX|XX> EX ttl`: whether Redis set it (`NX`: the key was free, `XX`: it
    /// existed).
    async fn set(
        &self,
        key: &str,
        body: String,
        ttl: &Duration,
        only: &str,
    ) -> anyhow::Result<bool> {
        let answer: Value = self
            .run(
                redis::cmd("SET")
                    .arg(key)
                    .arg(body)
                    .arg(only)
                    .arg("EX")
                    .arg(ttl.whole_seconds().max(1)),
            )
            .await?;
        Ok(!matches!(answer, Value::Nil))
    }
}

impl SessionStore for RedisStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        let value: Option<String> = self
            .run(redis::cmd("GET").arg(session_key.as_ref()))
            .await
            .map_err(|e| LoadError::Other(e.into()))?;
        value
            .map(|value| serde_json::from_str(&value))
            .transpose()
            .map_err(|e| LoadError::Deserialization(e.into()))
    }

    async fn save(&self, state: SessionState, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let body = serde_json::to_string(&state).map_err(|e| SaveError::Serialization(e.into()))?;
        // A 64-character random key: a collision is not a practical event, and `NX` makes
        // one fail instead of overwriting another session.
        let session_key = generate_session_key();
        match self.set(session_key.as_ref(), body, ttl, "NX").await {
            Ok(true) => Ok(session_key),
            Ok(false) => Err(SaveError::Other(anyhow::anyhow!(
                "a new session key was already taken"
            ))),
            Err(e) => Err(SaveError::Other(e)),
        }
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: SessionState,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let body =
            serde_json::to_string(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        match self.set(session_key.as_ref(), body, ttl, "XX").await {
            Ok(true) => Ok(session_key),
            // The session expired between load and update: it becomes a new one.
            Ok(false) => self.save(state, ttl).await.map_err(super::as_update_error),
            Err(e) => Err(UpdateError::Other(e)),
        }
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        self.run::<()>(
            redis::cmd("EXPIRE")
                .arg(session_key.as_ref())
                .arg(ttl.whole_seconds().max(1)),
        )
        .await?;
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        self.run::<()>(redis::cmd("DEL").arg(session_key.as_ref()))
            .await?;
        Ok(())
    }
}

impl super::KeyedSessionStore for RedisStore {
    async fn write(
        &self,
        key: &SessionKey,
        state: SessionState,
        ttl: &Duration,
        mode: super::WriteMode,
    ) -> anyhow::Result<bool> {
        let body = serde_json::to_string(&state)?;
        let only = match mode {
            super::WriteMode::Create => "NX",
            super::WriteMode::Replace => "XX",
        };
        self.set(key.as_ref(), body, ttl, only).await
    }
}

/// Spent login states in Redis: `SET actix-apple-music:spent:<sha256 hex> 1 NX EX <ttl>`,
/// atomic across every instance on the same Redis. Waits at most [`DEFAULT_STORE_TIMEOUT`],
/// within the request's store time (see [`LifetimeStore::timeout`]); a failure refuses the
/// sign-in (`503`).
#[derive(Clone)]
pub struct RedisLedger {
    store: RedisStore,
    timeout: std::time::Duration,
}

impl fmt::Debug for RedisLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLedger")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The Redis key prefix of spent login states.
pub const SPENT_STATE_PREFIX: &str = "actix-apple-music:spent:";

impl crate::single_use::StateLedger for RedisLedger {
    fn is_shared(&self) -> bool {
        true
    }

    fn spend<'a>(
        &'a self,
        id: &'a crate::single_use::StateId,
        ttl: std::time::Duration,
    ) -> LocalBoxFuture<'a, Result<bool, crate::single_use::LedgerError>> {
        use crate::single_use::LedgerError;
        Box::pin(async move {
            let call = async {
                let answer: Option<String> = self
                    .store
                    .run(
                        redis::cmd("SET")
                            .arg(format!("{SPENT_STATE_PREFIX}{}", id.to_hex()))
                            .arg(1)
                            .arg("NX")
                            .arg("EX")
                            .arg(ttl.as_secs().max(1)),
                    )
                    .await
                    .map_err(LedgerError::new)?;
                Ok(answer.is_some())
            };
            super::failures::within_store_time(self.timeout, call)
                .await
                .unwrap_or_else(|| {
                    Err(LedgerError::new(format!(
                        "Redis did not answer within {} ms",
                        self.timeout.as_millis()
                    )))
                })
        })
    }
}
