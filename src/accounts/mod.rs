//! Accounts and their sessions: which sessions are signed in to an account, signing an account
//! out everywhere (or everywhere but here), and asking every session of an account to sign in
//! again with one strategy.
//!
//! An app hands one [`Accounts`] to every [`Authenticator`](crate::Authenticator) it mounts
//! ([`Authenticator::accounts`](crate::Authenticator::accounts)) and says which account a sign-in
//! belongs to ([`Authenticator::account`](crate::Authenticator::account), from its sign-in hook's
//! user value; by default the provider's stable subject, e.g. the Apple ID's `sub`). From then
//! on the crate keeps:
//!
//! - **in each session**, a short record (`aam.acct`): the account, the crate's own id of the
//!   session, and when it signed in, to the millisecond;
//! - **per account**, in the account store: the sessions signed in to it (when each signed in,
//!   when it was last seen — written at most every [`DEFAULT_TOUCH_EVERY`] per session and
//!   instance, never on every request —, the strategy, a short user agent; nothing secret), and
//!   its *sign-out marks*.
//!
//! A sign-out mark is a time: every session that signed in at or before it is signed out at its
//! next request, whatever copy of its cookie it presents and whenever a slow request saved it.
//! Guards ([`SignedIn`](crate::SignedIn), [`RequireSignIn`](crate::RequireSignIn),
//! [`SignInState`](crate::SignInState)) and [`CurrentAccount`] check it; a signed-out session
//! is cleared and answered exactly as a visitor who never signed in. Times are compared in
//! milliseconds, as stored, and a sign-in is always stamped after every mark of its account, so
//! a sign-in in the mark's own second (or millisecond) stays signed in.
//!
//! | store | holds across | marks survive a restart | guarded request costs |
//! | --- | --- | --- | --- |
//! | [`Accounts::in_memory`] | one process | no | a map lookup |
//! | Redis ([`RedisSessions::accounts`](crate::session_store::RedisSessions::accounts), feature `redis`) | every instance on one Redis | yes | one `HGETALL` per account per [`DEFAULT_MARKS_CACHE`] and instance |
//!
//! With the cookie store, a cookie cannot be deleted from the browser: the marks are what
//! signs its copies out. In process, they are lost at a restart (a copy of a cookie signed out
//! before the restart opens again after it), so apps with several instances or restarts that
//! matter keep the marks in Redis even with cookie sessions.
//!
//! ```
//! use actix_apple_music::accounts::{Accounts, CurrentAccount};
//! use actix_web::{web, HttpResponse};
//!
//! async fn my_sessions(account: CurrentAccount) -> actix_web::Result<HttpResponse> {
//!     let sessions = account.sessions().await?;
//!     Ok(HttpResponse::Ok().json(serde_json::json!({"account": account.id(), "sessions": sessions})))
//! }
//!
//! async fn sign_out_everywhere(account: CurrentAccount) -> actix_web::Result<HttpResponse> {
//!     account.sign_out_everywhere().await?;
//!     Ok(HttpResponse::NoContent().finish())
//! }
//!
//! let accounts = Accounts::in_memory();
//! // Authenticator::new(strategy).accounts(accounts.clone()) for every strategy, then:
//! let app = actix_web::App::new()
//!     .app_data(web::Data::new(accounts))
//!     .route("/account/sessions", web::get().to(my_sessions))
//!     .route("/account/sign-out-everywhere", web::post().to(sign_out_everywhere));
//! # drop(app);
//! ```

mod error;
mod extract;

#[cfg(feature = "redis")]
pub(crate) mod redis;
pub(crate) mod store;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use actix_session::Session;
use serde::Serialize;
use time::OffsetDateTime;

use crate::clock::{system_clock, Clock, SharedClock};
use crate::session_records::account::{Entry, Marks, Millis, SessionRecord, EVERYWHERE_FIELD};
pub use error::AccountsError;
pub use extract::{AccountError, CurrentAccount};
use store::{AccountStore, MemoryAccounts};

/// How often a session's "last seen" is written to the account store, at most, per instance:
/// 5 minutes.
pub const DEFAULT_TOUCH_EVERY: Duration = Duration::from_secs(300);

/// How long an instance may reuse an account's marks read from a shared store (Redis) before
/// reading them again: 1 second. A sign-out made on this instance is seen here at once; one
/// made on another instance, within this time. Set it to zero to read them on every guarded
/// request ([`Accounts::cache_marks_for`]).
pub const DEFAULT_MARKS_CACHE: Duration = Duration::from_secs(1);

/// How long an index entry is kept when the session's end is unknown: 30 days.
const DEFAULT_ENTRY_LIFETIME: Duration = Duration::from_secs(30 * 86_400);

/// One session of an account, as [`CurrentAccount::sessions`] and [`Accounts::sessions`] list
/// it. Serialises as `{"current", "signed_in_at", "last_seen_at", "strategy", "user_agent"}`
/// (times in RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AccountSession {
    /// Whether it is the session of the request that asked.
    pub current: bool,
    /// When it signed in.
    #[serde(with = "time::serde::rfc3339")]
    pub signed_in_at: OffsetDateTime,
    /// When it was last seen (to within [`DEFAULT_TOUCH_EVERY`]).
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// The strategy it last signed in with, e.g. `apple-id`.
    pub strategy: String,
    /// A short user agent (at most 80 characters).
    pub user_agent: String,
}

/// The account index and sign-out marks of an app: one per app, handed to every
/// [`Authenticator`](crate::Authenticator) (cheap to clone). See the [module docs](self).
#[derive(Clone)]
pub struct Accounts {
    store: Arc<dyn AccountStore>,
    clock: SharedClock,
    shared: bool,
    marks_cache: Option<Arc<Recent<Marks>>>,
    touched: Arc<Recent<Millis>>,
    touch_every: Duration,
}

/// A small map of recent values that end after `ttl`, emptied when it reaches its capacity:
/// a shared read lock and a hash per look-up, which a guarded request can afford (a general
/// cache's bookkeeping was a visible part of it).
struct Recent<V> {
    ttl: Duration,
    entries: std::sync::RwLock<std::collections::HashMap<String, (std::time::Instant, V)>>,
}

/// Entries a [`Recent`] holds before it starts again empty.
const RECENT_CAPACITY: usize = 100_000;

impl<V: Clone> Recent<V> {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: std::sync::RwLock::new(std::collections::HashMap::new()),
        }
    }

    fn lock(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, std::collections::HashMap<String, (std::time::Instant, V)>>
    {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, key: &str) -> Option<V> {
        // Read-mostly: every guarded request looks, few write.
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let (at, value) = entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    fn insert(&self, key: &str, value: V) {
        let mut entries = self.lock();
        if entries.len() >= RECENT_CAPACITY && !entries.contains_key(key) {
            entries.clear();
        }
        entries.insert(key.to_owned(), (std::time::Instant::now(), value));
    }

    fn invalidate(&self, key: &str) {
        self.lock().remove(key);
    }
}

impl fmt::Debug for Accounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accounts")
            .field("shared", &self.shared)
            .field("touch_every", &self.touch_every)
            .finish_non_exhaustive()
    }
}

impl Accounts {
    /// Accounts kept in this process: for one instance (see the [module docs](self) for what a
    /// restart forgets).
    pub fn in_memory() -> Self {
        Self::on(Arc::new(MemoryAccounts::default()), false)
    }

    pub(crate) fn on(store: Arc<dyn AccountStore>, shared: bool) -> Self {
        Self {
            store,
            clock: system_clock(),
            shared,
            marks_cache: shared.then(|| Arc::new(Recent::new(DEFAULT_MARKS_CACHE))),
            touched: Arc::new(Recent::new(DEFAULT_TOUCH_EVERY)),
            touch_every: DEFAULT_TOUCH_EVERY,
        }
    }

    /// Where sign-in stamps and marks read the time (default the system clock). Every instance
    /// should agree on it to within a few milliseconds; a mark is also set no earlier than the
    /// latest sign-in the index holds, so a clock behind another instance's still signs
    /// those sessions out.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = SharedClock::new(clock);
        self
    }

    /// How long an instance may reuse marks read from a shared store (default
    /// [`DEFAULT_MARKS_CACHE`]; zero reads them on every guarded request). No effect in memory.
    pub fn cache_marks_for(mut self, time: Duration) -> Self {
        if self.shared {
            self.marks_cache = (!time.is_zero()).then(|| Arc::new(Recent::new(time)));
        }
        self
    }

    /// How often a session's "last seen" is written, at most (default
    /// [`DEFAULT_TOUCH_EVERY`]).
    pub fn touch_every(mut self, every: Duration) -> Self {
        self.touch_every = every;
        self.touched = Arc::new(Recent::new(every));
        self
    }

    /// Whether the store holds across instances (Redis).
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    pub(crate) fn now_ms(&self) -> Millis {
        millis(self.clock.now())
    }

    /// The account's marks, from the short cache when the store is shared.
    pub(crate) async fn marks(&self, account: &str) -> Result<Marks, AccountsError> {
        if let Some(cache) = &self.marks_cache {
            if let Some(marks) = cache.get(account) {
                return Ok(marks);
            }
            let marks = self.store.marks(account).await?;
            cache.insert(account, marks.clone());
            return Ok(marks);
        }
        self.store.marks(account).await
    }

    fn forget_cached(&self, account: &str) {
        if let Some(cache) = &self.marks_cache {
            cache.invalidate(account);
        }
    }

    /// The sessions signed in to `account` (none marked current).
    pub async fn sessions(&self, account: &str) -> Result<Vec<AccountSession>, AccountsError> {
        self.sessions_marking(account, None).await
    }

    pub(crate) async fn sessions_marking(
        &self,
        account: &str,
        current: Option<&str>,
    ) -> Result<Vec<AccountSession>, AccountsError> {
        let mut list: Vec<AccountSession> = self
            .store
            .list(account, self.now_ms())
            .await?
            .into_iter()
            .map(|(sid, e)| AccountSession {
                current: Some(sid.as_str()) == current,
                signed_in_at: from_millis(e.signed_in_at),
                last_seen_at: from_millis(e.last_seen_at),
                strategy: e.strategy,
                user_agent: e.user_agent,
            })
            .collect();
        list.sort_by(|a, b| {
            b.current
                .cmp(&a.current)
                .then(b.last_seen_at.cmp(&a.last_seen_at))
        });
        Ok(list)
    }

    /// Signs every session of `account` out, on every instance that shares the store, at its
    /// next request. Answers when the mark is set.
    pub async fn sign_out_everywhere(&self, account: &str) -> Result<(), AccountsError> {
        self.mark(account, EVERYWHERE_FIELD).await?;
        crate::audit::emit(crate::audit::AuditEvent::SignedOutEverywhere {
            account: account.to_owned(),
            but_this_session: false,
        });
        Ok(())
    }

    /// Asks every session of `account` that holds an identity of strategy `strategy` (its
    /// name, e.g. `apple-music`) to sign in again with it (`prompt=login`), e.g. after Apple
    /// refused a stored music user token (`403`) in a background job. The sessions stay
    /// signed in to their other strategies; the app's user value stays for the re-login's hook.
    pub async fn require_relogin(
        &self,
        account: &str,
        strategy: &str,
    ) -> Result<(), AccountsError> {
        self.mark(account, strategy).await?;
        crate::audit::emit(crate::audit::AuditEvent::ReloginAsked {
            account: account.to_owned(),
            strategy: strategy.to_owned(),
        });
        Ok(())
    }

    /// Signs out, everywhere, every account a provider's subject was linked to at sign-in
    /// (`strategy` is the provider's strategy name, e.g. `apple-id`, `subject` e.g. the
    /// Apple ID's `sub`). Answers those accounts.
    pub async fn sign_out_subject(
        &self,
        strategy: &str,
        subject: &str,
    ) -> Result<Vec<String>, AccountsError> {
        let accounts = self.store.accounts_of(&alias(strategy, subject)).await?;
        for account in &accounts {
            self.sign_out_everywhere(account).await?;
        }
        Ok(accounts)
    }

    /// [`sign_out_subject`](Self::sign_out_subject) as of `at` (a provider's event time):
    /// sessions signed in at or before it are signed out, later ones stay — so a notification
    /// delivered again after the person signed in anew signs nobody out.
    pub async fn sign_out_subject_before(
        &self,
        strategy: &str,
        subject: &str,
        at: OffsetDateTime,
    ) -> Result<Vec<String>, AccountsError> {
        let accounts = self.store.accounts_of(&alias(strategy, subject)).await?;
        for account in &accounts {
            self.store
                .mark(account, EVERYWHERE_FIELD, millis(at), false)
                .await?;
            self.forget_cached(account);
            crate::audit::emit(crate::audit::AuditEvent::SignedOutEverywhere {
                account: account.clone(),
                but_this_session: false,
            });
        }
        Ok(accounts)
    }

    async fn mark(&self, account: &str, field: &str) -> Result<Millis, AccountsError> {
        let at = self.store.mark(account, field, self.now_ms(), true).await?;
        self.forget_cached(account);
        Ok(at)
    }

    /// The account record of a session, if it has one that reads.
    pub(crate) fn record(session: &Session) -> Option<SessionRecord> {
        SessionRecord::read(session)
    }

    /// Where a session stands with its account's marks.
    pub(crate) async fn standing(&self, session: &Session) -> Result<Standing, AccountsError> {
        let Some(record) = Self::record(session) else {
            return Ok(Standing::NoAccount);
        };
        let marks = self.marks(&record.account).await?;
        if marks.signs_out(record.stamp) {
            return Ok(Standing::SignedOut);
        }
        Ok(Standing::Active { record, marks })
    }

    /// Notes the session as seen, at most every `touch_every` per instance, without making
    /// the request wait.
    pub(crate) fn seen(&self, record: &SessionRecord) {
        // An entry lives `touch_every`: while it is there, nothing is due (no clock read).
        if self.touched.get(&record.sid).is_some() {
            return;
        }
        let now = self.now_ms();
        self.touched.insert(&record.sid, now);
        let (store, account, sid) = (
            self.store.clone(),
            record.account.clone(),
            record.sid.clone(),
        );
        actix_web::rt::spawn(async move {
            if let Err(e) = store.touch(&account, &sid, now).await {
                tracing::warn!("could not note a session as seen: {e}");
            }
        });
    }

    /// Binds this session to `account` for a sign-in with strategy `name`: the session's
    /// record (kept when the session was already this account's and is not signed out, else
    /// a new one), stamped after every mark, and its entry in the index.
    pub(crate) async fn bind(
        &self,
        account: &str,
        previous: Option<&SessionRecord>,
        binding: Binding<'_>,
    ) -> Result<SessionRecord, AccountsError> {
        let marks = self.marks(account).await?;
        let now = self.now_ms();
        let stamp = marks
            .latest_for(binding.strategy)
            .map_or(now, |mark| now.max(mark + 1));
        let sid = match previous {
            Some(p) if p.account == account && !marks.signs_out(p.stamp) => p.sid.clone(),
            _ => SessionRecord::new_sid(),
        };
        let until = binding
            .until_ms
            .unwrap_or_else(|| now.saturating_add(DEFAULT_ENTRY_LIFETIME.as_millis() as i64));
        let entry = Entry {
            signed_in_at: stamp,
            last_seen_at: stamp,
            strategy: binding.strategy.to_owned(),
            user_agent: binding.user_agent,
            until: until.max(stamp),
        };
        self.store
            .register(account, &sid, &entry, binding.alias.as_deref())
            .await?;
        self.touched.insert(&sid, stamp);
        Ok(SessionRecord {
            account: account.to_owned(),
            sid,
            stamp,
        })
    }

    /// Removes a session from its account's index (a logout).
    pub(crate) async fn unbind(&self, record: &SessionRecord) {
        if let Err(e) = self.store.remove(&record.account, &record.sid).await {
            tracing::warn!("could not remove a signed-out session from its account's index: {e}");
        }
    }

    /// Signs every other session of the account out and re-stamps this one after the mark.
    pub(crate) async fn sign_out_others(
        &self,
        session: &Session,
        record: &SessionRecord,
        strategy_entry: Entry,
    ) -> Result<SessionRecord, AccountsError> {
        let mark = self.mark(&record.account, EVERYWHERE_FIELD).await?;
        let restamped = SessionRecord {
            stamp: mark + 1,
            ..record.clone()
        };
        let entry = Entry {
            signed_in_at: restamped.stamp,
            ..strategy_entry
        };
        self.store
            .register(&record.account, &record.sid, &entry, None)
            .await?;
        write_record(session, &restamped);
        Ok(restamped)
    }

    pub(crate) async fn entry_of(&self, record: &SessionRecord) -> Option<Entry> {
        self.store
            .list(&record.account, self.now_ms())
            .await
            .ok()?
            .into_iter()
            .find(|(sid, _)| *sid == record.sid)
            .map(|(_, e)| e)
    }
}

/// What a sign-in tells [`Accounts::bind`].
pub(crate) struct Binding<'a> {
    pub(crate) strategy: &'a str,
    pub(crate) alias: Option<String>,
    pub(crate) user_agent: String,
    pub(crate) until_ms: Option<Millis>,
}

/// Where a session stands with its account.
pub(crate) enum Standing {
    /// The session is bound to no account.
    NoAccount,
    /// A mark signed it out.
    SignedOut,
    /// Signed in; the marks may still ask a strategy for a re-login.
    Active { record: SessionRecord, marks: Marks },
}

pub(crate) fn write_record(session: &Session, record: &SessionRecord) {
    record.write(session);
}

/// The alias a provider's subject is linked under.
pub(crate) fn alias(strategy: &str, subject: &str) -> String {
    format!("{strategy}:{subject}")
}

pub(crate) fn millis(t: OffsetDateTime) -> Millis {
    (t.unix_timestamp_nanos() / 1_000_000) as Millis
}

pub(crate) fn from_millis(ms: Millis) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
