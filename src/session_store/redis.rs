//! Redis: actix-session's `RedisSessionStore` on a connection pool, sealed, and the
//! single-use state ledger on the same pool.

use std::fmt;

use futures_util::future::LocalBoxFuture;

use super::lifetime::{LifetimeStore, DEFAULT_STORE_TIMEOUT};

/// Connects to Redis at `url` (`redis://[:password@]host:port[/db]`): actix-session's
/// `RedisSessionStore`, on a connection pool, in a [sealed](LifetimeStore::sealed)
/// [`LifetimeStore`] keyed from `key` (the session middleware's key), and a [`RedisLedger`]
/// on the same pool. Checks that Redis answers before it returns; the error names the URL
/// without its password.
///
/// The pool (deadpool-redis) opens connections on demand: while Redis is down requests fail
/// at once (`503` through [`StoreFailures`](super::StoreFailures)), and the first request after it is back is
/// served. (actix-session's single-connection `RedisSessionStore::new` may instead keep
/// requests waiting for a minute while it reconnects.)
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
        store: LifetimeStore::sealed(store, key),
        ledger: RedisLedger {
            pool,
            timeout: DEFAULT_STORE_TIMEOUT,
        },
    })
}

/// What [`redis`] connects: the session store and the single-use state ledger, on one pool.
#[derive(Clone)]
pub struct RedisSessions {
    store: LifetimeStore<actix_session::storage::RedisSessionStore>,
    ledger: RedisLedger,
}

impl fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSessions").finish_non_exhaustive()
    }
}

impl RedisSessions {
    /// The sealed session store, for `SessionMiddleware` (clone it into each worker).
    pub fn store(&self) -> LifetimeStore<actix_session::storage::RedisSessionStore> {
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
#[derive(Clone)]
pub struct RedisLedger {
    pool: deadpool_redis::Pool,
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

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

/// `url` with any password replaced by `***`.
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
