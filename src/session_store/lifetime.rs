//! [`LifetimeStore`]: a session store whose TTLs follow the crate's lifetime record.

use std::fmt;

use std::future::Future;

use actix_session::storage::{
    generate_session_key, LoadError, SaveError, SessionKey, SessionStore, UpdateError,
};
use actix_web::cookie::time::Duration;
use futures_util::future::LocalBoxFuture;
use time::OffsetDateTime;

use super::failures::{record, StoreOperation};
use super::seal::{Earlier, Sealer};
use super::SessionState;
use crate::session_records::LifetimeRecord;
#[cfg(test)]
use crate::session_records::LIFETIME_KEY;

/// A [`SessionStore`](actix_session::storage::SessionStore) that keeps each session as long as its sign-ins need (from the crate's
/// lifetime record) and no longer, bounds the time a request waits on it, reports failures to
/// [`StoreFailures`](super::StoreFailures), and, [`sealed`](Self::sealed), encrypts every value at rest. See the
/// [module docs](crate::session_store).
#[derive(Clone)]
pub struct LifetimeStore<S> {
    inner: S,
    timeout: std::time::Duration,
    sealing: Option<Sealing<S>>,
    accept_earlier_until: Option<OffsetDateTime>,
}

/// How [`KeyedSessionStore::write`] may write a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Only when no session has the key (a new session).
    Create,
    /// Only when a session has the key (a session rewritten).
    Replace,
}

/// A session store that writes a session under a key its caller chose. A
/// [sealed](LifetimeStore::sealed) store needs it: each value is sealed for its session's key,
/// so the key must be known before the store writes (actix-session's `save` lets the store
/// choose it). [`RedisStore`](super::RedisStore) is one.
pub trait KeyedSessionStore: SessionStore {
    /// Writes `state` under `key`, to live `ttl`, as `mode` allows; `Ok(false)` when it did
    /// not (`Create`: the key is taken; `Replace`: no such session, e.g. it expired).
    fn write(
        &self,
        key: &SessionKey,
        state: std::collections::HashMap<String, String>,
        ttl: &Duration,
        mode: WriteMode,
    ) -> impl Future<Output = anyhow::Result<bool>>;
}

/// [`KeyedSessionStore::write`] of the wrapped store, named when the store is sealed (where
/// the bound is known), so the [`SessionStore`] impl can call it for any store.
type WriteFn<S> = for<'a> fn(
    &'a S,
    &'a SessionKey,
    SessionState,
    Duration,
    WriteMode,
) -> LocalBoxFuture<'a, anyhow::Result<bool>>;

fn write_via<'a, S: KeyedSessionStore>(
    store: &'a S,
    key: &'a SessionKey,
    state: SessionState,
    ttl: Duration,
    mode: WriteMode,
) -> LocalBoxFuture<'a, anyhow::Result<bool>> {
    Box::pin(async move { store.write(key, state, &ttl, mode).await })
}

/// The sealer and the way to write a session under a chosen key.
struct Sealing<S> {
    sealer: Sealer,
    write: WriteFn<S>,
}

impl<S> Clone for Sealing<S> {
    fn clone(&self) -> Self {
        Self {
            sealer: self.sealer.clone(),
            write: self.write,
        }
    }
}

/// Default longest wait for one store operation: 2 seconds.
pub const DEFAULT_STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs one store operation within the request's store time; a failure or a timeout is recorded for
/// [`StoreFailures`](super::StoreFailures) and logged (the cause only: never a key or a value).
async fn guarded<T, E>(
    operation: StoreOperation,
    timeout: std::time::Duration,
    call: impl std::future::Future<Output = Result<T, E>>,
    timed_out: impl FnOnce(anyhow::Error) -> E,
    describe: impl FnOnce(&E) -> Option<String>,
) -> Result<T, E> {
    let started = std::time::Instant::now();
    let (result, outcome) = match super::failures::within_store_time(timeout, call).await {
        Some(Ok(answer)) => (Ok(answer), "ok"),
        Some(Err(e)) => (Err(e), "error"),
        None => (
            Err(timed_out(anyhow::anyhow!(
                "no answer within {} ms (the request's store time)",
                timeout.as_millis()
            ))),
            "timeout",
        ),
    };
    crate::audit::store_operation(operation.as_str(), outcome, started.elapsed());
    if let Err(e) = &result {
        if let Some(cause) = describe(e) {
            record(operation, &cause);
        }
    }
    result
}

impl<S> fmt::Debug for LifetimeStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LifetimeStore").finish_non_exhaustive()
    }
}

impl<S: SessionStore> LifetimeStore<S> {
    /// Wraps a store; a request waits at most [`DEFAULT_STORE_TIMEOUT`] on it in all (every
    /// operation of the request under [`StoreFailures`](super::StoreFailures) shares that
    /// time; outside it, each operation has it). Values are
    /// stored as they are: use [`sealed`](Self::sealed) for a server-side store.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            timeout: DEFAULT_STORE_TIMEOUT,
            sealing: None,
            accept_earlier_until: None,
        }
    }

    /// Wraps a server-side store and seals every session value at rest (AES-256-GCM, key
    /// derived from `key`, the session middleware's key). Every instance needs the same key.
    ///
    /// Each value is sealed for its session's key and its name: a value copied into another
    /// session, or under another name, does not open (it reads as absent), and neither does a
    /// value in plaintext — someone who can write to the store can neither move a person's
    /// identity into their own session nor plant one.
    pub fn sealed(inner: S, key: &actix_web::cookie::Key) -> Self
    where
        S: KeyedSessionStore,
    {
        Self::sealed_with(inner, &super::SessionKeys::new(key.clone()))
    }

    /// [`sealed`](Self::sealed) during a key rotation: values are sealed under the current key
    /// of `keys` and values sealed under a previous one still open (and are sealed again under
    /// the current key when their session is next written). See [`SessionKeys`](super::SessionKeys).
    pub fn sealed_with(inner: S, keys: &super::SessionKeys) -> Self
    where
        S: KeyedSessionStore,
    {
        Self {
            sealing: Some(Sealing {
                sealer: Sealer::with_keys(keys),
                write: write_via::<S>,
            }),
            ..Self::new(inner)
        }
    }

    /// The migration switch for a store written by an earlier version: until `until`, values
    /// in plaintext (written before sealing) and values sealed for their name only (before
    /// values were bound to their session) still read, and are sealed for their session when
    /// it is next written. Otherwise (the default) such a value is dropped as if it were not
    /// there, so someone who can write to the store cannot plant or move one. Set it for the
    /// weeks of a migration, then remove it.
    pub fn accept_earlier_values_until(mut self, until: OffsetDateTime) -> Self {
        self.accept_earlier_until = Some(until);
        self
    }

    /// The longest a request waits on the store, all its operations together, before it is
    /// answered `503`. (A slow store would otherwise cost this much per operation: loading the
    /// session, spending the login state, saving the session.)
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: SessionStore> LifetimeStore<S> {
    /// A new session under a fresh key, its values sealed for that key.
    async fn save_sealed(
        &self,
        sealing: &Sealing<S>,
        state: &SessionState,
        ttl: Duration,
    ) -> Result<SessionKey, SaveError> {
        let session_key = generate_session_key();
        let sealed = sealing
            .sealer
            .seal_state(session_key.as_ref(), state)
            .map_err(SaveError::Other)?;
        let created = guarded(
            StoreOperation::Save,
            self.timeout,
            (sealing.write)(&self.inner, &session_key, sealed, ttl, WriteMode::Create),
            |e| e,
            |e| Some(e.to_string()),
        )
        .await
        .map_err(SaveError::Other)?;
        // A 64-character random key: a collision is not a practical event, and `Create`
        // makes one fail instead of overwriting another session.
        match created {
            true => Ok(session_key),
            false => Err(SaveError::Other(anyhow::anyhow!(
                "a new session key was already taken"
            ))),
        }
    }
}

/// The TTL a session should get: until the latest time in the crate's lifetime record (one
/// entry per strategy), at least one second; the middleware's `configured` TTL when the
/// session holds no record (or one that does not read).
fn session_ttl(state: &SessionState, configured: &Duration, now: OffsetDateTime) -> Duration {
    match LifetimeRecord::latest_end_in(state) {
        Some(until) => Duration::seconds(until.saturating_sub(now.unix_timestamp()).max(1)),
        None => *configured,
    }
}

impl<S: SessionStore> SessionStore for LifetimeStore<S> {
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
        Ok(match (&self.sealing, state) {
            (Some(sealing), Some(state)) => {
                let earlier = match self.accept_earlier_until {
                    Some(until) if OffsetDateTime::now_utc() < until => Earlier::Accepted,
                    _ => Earlier::Refused,
                };
                Some(
                    sealing
                        .sealer
                        .open_state(session_key.as_ref(), state, earlier),
                )
            }
            (_, state) => state,
        })
    }

    async fn save(
        &self,
        session_state: SessionState,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let ttl = session_ttl(&session_state, ttl, OffsetDateTime::now_utc());
        match &self.sealing {
            Some(sealing) => self.save_sealed(sealing, &session_state, ttl).await,
            None => {
                guarded(
                    StoreOperation::Save,
                    self.timeout,
                    self.inner.save(session_state, &ttl),
                    SaveError::Other,
                    |e| Some(e.to_string()),
                )
                .await
            }
        }
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: SessionState,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let ttl = session_ttl(&session_state, ttl, OffsetDateTime::now_utc());
        let Some(sealing) = &self.sealing else {
            return guarded(
                StoreOperation::Update,
                self.timeout,
                self.inner.update(session_key, session_state, &ttl),
                UpdateError::Other,
                |e| Some(e.to_string()),
            )
            .await;
        };
        let sealed = sealing
            .sealer
            .seal_state(session_key.as_ref(), &session_state)
            .map_err(UpdateError::Other)?;
        let replaced = guarded(
            StoreOperation::Update,
            self.timeout,
            (sealing.write)(&self.inner, &session_key, sealed, ttl, WriteMode::Replace),
            |e| e,
            |e| Some(e.to_string()),
        )
        .await
        .map_err(UpdateError::Other)?;
        if replaced {
            return Ok(session_key);
        }
        // The session ended between load and update: it becomes a new one, sealed for its
        // new key.
        self.save_sealed(sealing, &session_state, ttl)
            .await
            .map_err(super::as_update_error)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_follows_the_latest_entry_of_the_crates_own_record() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let configured = Duration::days(1);
        let mut state = SessionState::new();
        state.insert("app.cart".into(), "[]".into());
        // An app's own key that looks like a lifetime changes nothing.
        state.insert("cart.until".into(), "1000005".into());
        assert_eq!(session_ttl(&state, &configured, now), configured);
        state.insert(LIFETIME_KEY.into(), r#""apple-music=1000600""#.into());
        assert_eq!(
            session_ttl(&state, &configured, now),
            Duration::seconds(600)
        );
        state.insert(
            LIFETIME_KEY.into(),
            r#""apple-music=1000600,other=1003600""#.into(),
        );
        assert_eq!(
            session_ttl(&state, &configured, now),
            Duration::seconds(3600)
        );
        state.insert(LIFETIME_KEY.into(), r#""apple-music=900000""#.into());
        assert_eq!(session_ttl(&state, &configured, now), Duration::seconds(1));
        state.insert(LIFETIME_KEY.into(), "not json".into());
        assert_eq!(session_ttl(&state, &configured, now), configured);
    }
}
