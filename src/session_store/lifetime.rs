//! [`LifetimeStore`]: a session store whose TTLs follow the crate's lifetime record.

use std::fmt;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use time::OffsetDateTime;

use super::failures::{record, StoreOperation};
use super::seal::Sealer;
use super::SessionState;
use crate::strategy::{lifetime_entries, LIFETIME_KEY};

/// A [`SessionStore`](actix_session::storage::SessionStore) that keeps each session as long as its sign-ins need (from the crate's
/// lifetime record) and no longer, bounds the time a request waits on it, reports failures to
/// [`StoreFailures`](super::StoreFailures), and, [`sealed`](Self::sealed), encrypts every value at rest. See the
/// [module docs](crate::session_store).
#[derive(Clone)]
pub struct LifetimeStore<S> {
    inner: S,
    timeout: std::time::Duration,
    sealer: Option<Sealer>,
    accept_unsealed_until: Option<OffsetDateTime>,
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
    let result = match super::failures::within_store_time(timeout, call).await {
        Some(result) => result,
        None => Err(timed_out(anyhow::anyhow!(
            "no answer within {} ms (the request's store time)",
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
            sealer: None,
            accept_unsealed_until: None,
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

    /// [`sealed`](Self::sealed) during a key rotation: values are sealed under the current key
    /// of `keys` and values sealed under a previous one still open (and are sealed again under
    /// the current key when their session is next written). See [`SessionKeys`](super::SessionKeys).
    pub fn sealed_with(inner: S, keys: &super::SessionKeys) -> Self {
        Self {
            sealer: Some(Sealer::with_keys(keys)),
            ..Self::new(inner)
        }
    }

    /// The migration switch for a store that was not sealed before: until `until`, values
    /// written in plaintext (by a version without sealing) still read, and are sealed when
    /// their session is next written. Otherwise (the default) a plaintext value is dropped as
    /// if it were not there, so someone who can write to the store cannot plant one. Set it
    /// for the weeks of a migration, then remove it.
    pub fn accept_unsealed_until(mut self, until: OffsetDateTime) -> Self {
        self.accept_unsealed_until = Some(until);
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

/// The TTL a session should get: until the latest time in the crate's lifetime record (one
/// entry per strategy), at least one second; the middleware's `configured` TTL when the
/// session holds no record (or one that does not read).
fn session_ttl(state: &SessionState, configured: &Duration, now: OffsetDateTime) -> Duration {
    let until = state.get(LIFETIME_KEY).and_then(|json| {
        // The record is a JSON string; the crate writes it without escapes, so it borrows.
        match serde_json::from_str::<&str>(json) {
            Ok(record) => latest_end(record),
            Err(_) => latest_end(&serde_json::from_str::<String>(json).ok()?),
        }
    });
    match until {
        Some(until) => Duration::seconds(until.saturating_sub(now.unix_timestamp()).max(1)),
        None => *configured,
    }
}

/// The latest end in a lifetime record.
fn latest_end(record: &str) -> Option<i64> {
    lifetime_entries(record).map(|(_, until)| until).max()
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
        Ok(match (&self.sealer, state) {
            (Some(sealer), Some(state)) => {
                let migrating = self
                    .accept_unsealed_until
                    .is_some_and(|until| OffsetDateTime::now_utc() < until);
                Some(sealer.open_state(state, migrating))
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
