//! Where the crate reads the time from.
//!
//! Everything that expires — developer tokens, login state, music user tokens — asks a
//! [`Clock`] rather than the system directly, so tests can move time instead of sleeping.

use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use time::OffsetDateTime;

/// A source of the current time (UTC).
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

/// The system's wall clock. The default everywhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until it is told to move. Meant for tests.
///
/// Clones share the same time, so a test keeps one handle and gives another to the code it
/// drives.
///
/// ```
/// use actix_apple_music::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new(time::macros::datetime!(2026-01-01 00:00 UTC));
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.now(), time::macros::datetime!(2026-01-01 00:01:30 UTC));
/// ```
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<Mutex<OffsetDateTime>>,
}

impl ManualClock {
    /// A clock that reads `start` until moved.
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// A clock that starts at the current system time (whole seconds).
    pub fn starting_now() -> Self {
        let now = OffsetDateTime::now_utc();
        Self::new(now.replace_nanosecond(0).unwrap_or(now))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    /// Sets the clock to a given time (forwards or backwards).
    pub fn set(&self, to: OffsetDateTime) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

/// A shared clock handle, as the crate's configs hold it. Clones read the same clock, and
/// [`retarget`](Self::retarget) moves all of them at once: a strategy's config, its token
/// signer and its identity checks hold clones of one handle, and the
/// [`Authenticator`](crate::Authenticator) moves that handle to its own clock, so one clock
/// rules everything under an authenticator.
#[derive(Clone)]
pub(crate) struct SharedClock(Arc<RwLock<Arc<dyn Clock>>>);

impl SharedClock {
    pub(crate) fn new(clock: impl Clock) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(clock))))
    }

    /// The current time of the clock this handle reads.
    pub(crate) fn now(&self) -> OffsetDateTime {
        // Read under the lock: no reference count touched on this per-request path.
        self.0.read().unwrap_or_else(|e| e.into_inner()).now()
    }

    fn current(&self) -> Arc<dyn Clock> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether both handles are one (clones of each other).
    pub(crate) fn same(&self, other: &SharedClock) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Makes this handle, and every clone of it, read the clock `to` reads now.
    pub(crate) fn retarget(&self, to: &SharedClock) {
        let clock = to.current();
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = clock;
    }
}

impl Clock for SharedClock {
    fn now(&self) -> OffsetDateTime {
        SharedClock::now(self)
    }
}

impl fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedClock").field(&self.now()).finish()
    }
}

pub(crate) fn system_clock() -> SharedClock {
    SharedClock::new(SystemClock)
}
