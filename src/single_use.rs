//! Single-use login states: a ledger of the states already spent.
//!
//! A login state lives in the session, and a session can be presented many times at once (the
//! same cookie on parallel requests) or again later (a copy of the pre-login cookie). Removing
//! the state from the session is therefore not enough to make it single-use. Before a callback
//! goes on, the [`Authenticator`](crate::Authenticator) records the state in a
//! [`StateLedger`] with one atomic operation; only the request that recorded it first signs in.
//!
//! | ledger | holds across | what is stored |
//! | --- | --- | --- |
//! | [`MemoryLedger`] (the default) | the requests of one process | a SHA-256 of the state, until the state's end |
//! | `RedisLedger` (feature `redis`, see [`session_store`](crate::session_store)) | every instance on one Redis | the same, as a key set with `SET … NX EX` |
//!
//! With the cookie store and several instances behind a load balancer, each instance keeps its
//! own memory ledger: a callback replayed to another instance within the state's lifetime is
//! not caught. Use Redis (sessions and ledger) when that matters.

use std::fmt;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use sha2::{Digest, Sha256};

/// The identifier of a spent state: a SHA-256 of the strategy's name and the state, so a
/// ledger never holds a usable state.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateId([u8; 32]);

impl StateId {
    pub(crate) fn new(namespace: &str, state: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(namespace.as_bytes());
        hasher.update([0]);
        hasher.update(state.as_bytes());
        Self(hasher.finalize().into())
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, e.g. for a store key.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for StateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateId({}…)", &self.to_hex()[..8])
    }
}

/// The ledger could not be asked (its store is down or too slow). The sign-in is refused
/// (`503`, `session_store_unavailable`): a state that cannot be recorded is not accepted.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the single-use state ledger is unavailable: {0}")]
pub struct LedgerError(String);

impl LedgerError {
    /// An error with a description of the cause (never a state or a key).
    pub fn new(cause: impl fmt::Display) -> Self {
        Self(cause.to_string())
    }
}

/// Records spent login states. `spend` must be atomic: of any number of concurrent calls with
/// the same `id`, exactly one answers `true`.
pub trait StateLedger: Send + Sync + 'static {
    /// Records `id` as spent for at least `ttl` (the state's remaining lifetime). Answers
    /// `true` if it was not spent before.
    fn spend<'a>(
        &'a self,
        id: &'a StateId,
        ttl: Duration,
    ) -> LocalBoxFuture<'a, Result<bool, LedgerError>>;

    /// Whether the ledger holds across instances (a shared store such as Redis). Mounting an
    /// authenticator whose account store is shared with a ledger that is not logs a warning:
    /// a state could then be spent once per instance.
    fn is_shared(&self) -> bool {
        false
    }
}

/// The in-process ledger: a bounded concurrent cache (moka) whose entries end with their
/// state. See the [module docs](self) for what it covers.
#[derive(Clone)]
pub struct MemoryLedger {
    spent: moka::sync::Cache<StateId, Duration>,
}

/// Default capacity of a [`MemoryLedger`]: one million spent states (about 100 MB at most).
/// Past it the oldest entries go first; a state evicted before its end could be replayed.
pub const DEFAULT_LEDGER_CAPACITY: u64 = 1_000_000;

struct UntilTheStateEnds;

impl moka::Expiry<StateId, Duration> for UntilTheStateEnds {
    fn expire_after_create(
        &self,
        _key: &StateId,
        ttl: &Duration,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(*ttl)
    }
}

impl MemoryLedger {
    /// A ledger holding at most [`DEFAULT_LEDGER_CAPACITY`] spent states.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_LEDGER_CAPACITY)
    }

    /// A ledger holding at most `capacity` spent states.
    pub fn with_capacity(capacity: u64) -> Self {
        Self {
            spent: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilTheStateEnds)
                .build(),
        }
    }
}

impl Default for MemoryLedger {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryLedger")
            .field("entries", &self.spent.entry_count())
            .finish()
    }
}

impl StateLedger for MemoryLedger {
    fn spend<'a>(
        &'a self,
        id: &'a StateId,
        ttl: Duration,
    ) -> LocalBoxFuture<'a, Result<bool, LedgerError>> {
        // `or_insert_with` coalesces concurrent calls on one missing key: one caller inserts
        // (a fresh entry), the others wait for it and read it. (`or_insert` does not: it is a
        // lookup then an insert, and two racing callers could both see a fresh entry.)
        let fresh = self.spent.entry(*id).or_insert_with(|| ttl).is_fresh();
        Box::pin(std::future::ready(Ok(fresh)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_spent_once_even_from_many_threads() {
        // Many rounds, each with threads released together at a barrier: a ledger that looks up
        // and then inserts lets two of them win in some round (it did, one run in twenty, with a
        // single round).
        let ledger = std::sync::Arc::new(MemoryLedger::new());
        const THREADS: usize = 8;
        for round in 0..300 {
            let id = StateId::new("apple-music", &format!("the-state-{round}"));
            let start = std::sync::Barrier::new(THREADS);
            let wins: usize = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..THREADS)
                    .map(|_| {
                        let (ledger, start) = (&ledger, &start);
                        scope.spawn(move || {
                            start.wait();
                            futures_util::FutureExt::now_or_never(
                                ledger.spend(&id, Duration::from_secs(60)),
                            )
                            .unwrap()
                            .unwrap() as usize
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            });
            assert_eq!(wins, 1, "round {round}: a state was spent {wins} times");
        }
        let other = StateId::new("apple-music", "another-state");
        let spent =
            futures_util::FutureExt::now_or_never(ledger.spend(&other, Duration::from_secs(60)));
        assert!(spent.unwrap().unwrap(), "another state is still fresh");
        let again =
            futures_util::FutureExt::now_or_never(ledger.spend(&other, Duration::from_secs(60)));
        assert!(!again.unwrap().unwrap(), "a spent state stays spent");
    }

    #[test]
    fn ids_depend_on_namespace_and_state_and_hide_the_state() {
        let a = StateId::new("apple-music", "s");
        assert_eq!(a, StateId::new("apple-music", "s"));
        assert_ne!(a, StateId::new("apple-id", "s"));
        assert_ne!(a, StateId::new("apple-music", "t"));
        let hex = a.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(format!("{a:?}"), format!("StateId({}…)", &hex[..8]));
    }
}
