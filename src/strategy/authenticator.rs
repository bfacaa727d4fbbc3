//! The [`Authenticator`]: a strategy mounted on an app, and everything around it that is not
//! provider-specific (login state, the app's hook, the session, the answers).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tracing::Instrument as _;

use actix_session::{Session, SessionExt};
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

use super::error::{FlowError, Rejection, SignInError};
use super::keys::MountPaths;
use super::options::FlowOptions;
use super::state::{PendingLogin, StateProof};
use super::Strategy;
use crate::accounts::Accounts;
use crate::audit::AuditEvent;
use crate::session_records::StrategyKeys;
use crate::single_use::{MemoryLedger, StateId, StateLedger};

type HookFuture = Pin<Box<dyn Future<Output = Result<serde_json::Value, Rejection>>>>;
type Hook<S> = Arc<dyn Fn(SignInContext<S>) -> HookFuture + Send + Sync>;
type FailureHandler<E> = Arc<dyn Fn(&HttpRequest, &SignInError<E>) -> HttpResponse + Send + Sync>;
/// Reads the account id out of the app's user value.
pub(super) type AccountOf = Arc<dyn Fn(&serde_json::Value) -> Option<String> + Send + Sync>;

/// Mounts a [`Strategy`] on an actix app and runs the flow around it: `login`, `callback` and
/// `logout` routes under a prefix, a single-use login state in the session, the app's
/// sign-in hook, session renewal, the identity in the session, success and typed failure
/// answers.
///
/// ```no_run
/// # use actix_apple_music::{AppleMusicStrategy, Authenticator};
/// # fn app(strategy: AppleMusicStrategy) {
/// let auth = Authenticator::new(strategy).options(|o| o.success_target("/library"));
/// let app = actix_web::App::new()
///     // .wrap(SessionMiddleware::new(...))
///     .configure(auth.mount("/auth/apple-music"));
/// assert_eq!(auth.login_path(), "/auth/apple-music/login");
/// # }
/// ```
///
/// Cloning is cheap (a few `Arc`s); clones share their mount paths, so mount from any of
/// them (e.g. inside `HttpServer::new`) and every clone knows the paths.
pub struct Authenticator<S: Strategy> {
    pub(super) strategy: Arc<S>,
    pub(super) options: Arc<FlowOptions>,
    hook: Option<Hook<S>>,
    pub(super) failure_handler: Option<FailureHandler<S::Error>>,
    pub(super) paths: Arc<OnceLock<MountPaths>>,
    pub(super) keys: Arc<StrategyKeys>,
    pub(super) ledger: Arc<dyn StateLedger>,
    unreadable_logged: Arc<AtomicBool>,
    user_unreadable_logged: Arc<AtomicBool>,
    pub(super) accounts: Option<Accounts>,
    pub(super) account_of: Option<AccountOf>,
}

impl<S: Strategy> Clone for Authenticator<S> {
    fn clone(&self) -> Self {
        Self {
            strategy: self.strategy.clone(),
            options: self.options.clone(),
            hook: self.hook.clone(),
            failure_handler: self.failure_handler.clone(),
            paths: self.paths.clone(),
            keys: self.keys.clone(),
            ledger: self.ledger.clone(),
            unreadable_logged: self.unreadable_logged.clone(),
            user_unreadable_logged: self.user_unreadable_logged.clone(),
            accounts: self.accounts.clone(),
            account_of: self.account_of.clone(),
        }
    }
}

impl<S: Strategy + std::fmt::Debug> std::fmt::Debug for Authenticator<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("strategy", &self.strategy)
            .field("options", &self.options)
            .field("prefix", &self.prefix())
            .finish_non_exhaustive()
    }
}

/// What the app's sign-in hook is told about a sign-in: the request, the new identity, the
/// app's user value this session held before (kept through the credential's end and through
/// invalidation, until the next sign-in, a [`forget`](Authenticator::forget) or a logout),
/// and whether this is a re-login. It is the same whether or not a guarded request saw the
/// end first.
///
/// A credential such as a music user token identifies nobody: it changes at every sign-in.
/// `previous_user` is what this *browser session* held, so on a shared browser it may be
/// someone else's account. Link to it only when that is safe for the app, e.g. when the
/// session also holds an app account the user signed in to (or a Sign in with Apple
/// identity, whose `sub` is stable).
pub struct SignInContext<S: Strategy> {
    request: HttpRequest,
    identity: S::Identity,
    previous_user: Option<serde_json::Value>,
    relogin: bool,
    another_person: bool,
    previous_account: Option<String>,
    after_saved: std::rc::Rc<std::cell::RefCell<Vec<crate::session_store::AfterSave>>>,
}

impl<S: Strategy> SignInContext<S> {
    /// The callback request.
    pub fn request(&self) -> &HttpRequest {
        &self.request
    }
    /// The new identity.
    pub fn identity(&self) -> &S::Identity {
        &self.identity
    }
    /// The new identity, by value.
    pub fn into_identity(self) -> S::Identity {
        self.identity
    }
    /// The app's user value this session held before this sign-in, read as `U` (`None` when
    /// there was none, or it does not read as `U`).
    pub fn previous_user<U: DeserializeOwned>(&self) -> Option<U> {
        let value = self.previous_user.clone()?;
        serde_json::from_value(value).ok()
    }
    /// Whether this session held this strategy's identity before (current, ended or
    /// invalidated): a re-login rather than a first sign-in.
    pub fn is_relogin(&self) -> bool {
        self.relogin
    }
    /// Whether this session held an identity of this strategy for *another person* (the
    /// provider's subject differs, e.g. another Apple ID): then `previous_user` and
    /// `previous_account` belong to that person, and the new one must not be linked to them.
    /// (With [`Accounts`](crate::accounts::Accounts), signing in to another account also
    /// clears what the session held for the previous one.)
    pub fn is_another_person(&self) -> bool {
        self.another_person
    }
    /// Runs `effect` only once the sign-in is stored and its session saved (a welcome email,
    /// a sign-in count): with [`StoreFailures`](crate::session_store::StoreFailures) around the
    /// session middleware, after the store has taken the session and before the answer is
    /// sent; a sign-in whose session could not be saved (answered `503`) runs none. Without
    /// it, once the sign-in is stored in the session. The hook itself runs before the
    /// session is saved: keep its own side effects to what may happen for a sign-in that fails.
    pub fn after_saved(&self, effect: impl Future<Output = ()> + 'static) {
        self.after_saved.borrow_mut().push(Box::pin(effect));
    }
    /// The account this session was signed in to before this sign-in, when the app keeps
    /// [`Accounts`](crate::accounts::Accounts) and the session was not signed out since.
    pub fn previous_account(&self) -> Option<&str> {
        self.previous_account.as_deref()
    }
    /// The identity another strategy `O` holds in this session, if it is mounted and signed
    /// in (e.g. the Apple Music hook reading the Sign in with Apple identity, whose `sub` is
    /// stable, to link the right account).
    pub fn other_identity<O: Strategy>(&self) -> Option<O::Identity> {
        let auth = self.request.app_data::<web::Data<Authenticator<O>>>()?;
        auth.stored_identity(&self.request.get_session())
    }
}

impl<S: Strategy> std::fmt::Debug for SignInContext<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInContext")
            .field("relogin", &self.relogin)
            .field("another_person", &self.another_person)
            .field("has_previous_user", &self.previous_user.is_some())
            .finish_non_exhaustive()
    }
}

/// What a finished sign-in answers: where to send the browser, and the identity.
#[derive(Debug)]
#[non_exhaustive]
pub struct SignedInAt<I> {
    /// The stored `return_to`, or the success target.
    pub location: String,
    /// The identity now in the session.
    pub identity: I,
}

impl<S: Strategy> Authenticator<S> {
    /// Wraps a strategy, with the strategy's [default options](Strategy::default_options),
    /// no sign-in hook, and an in-process [`MemoryLedger`].
    pub fn new(strategy: S) -> Self {
        let keys = Arc::new(StrategyKeys::new(strategy.name()));
        Self {
            options: Arc::new(strategy.default_options()),
            strategy: Arc::new(strategy),
            hook: None,
            failure_handler: None,
            paths: Arc::new(OnceLock::new()),
            keys,
            ledger: Arc::new(MemoryLedger::new()),
            unreadable_logged: Arc::new(AtomicBool::new(false)),
            user_unreadable_logged: Arc::new(AtomicBool::new(false)),
            accounts: None,
            account_of: None,
        }
    }

    /// Changes the flow options: `auth.options(|o| o.success_target("/library"))`.
    ///
    /// A clock set here (`o.clock(c)`) rules everything under the authenticator: the flow,
    /// and the strategy it wraps (the shipped strategies' developer token or client secret,
    /// identities' `authenticated_at`, `id_token` checks) — they read the strategy config's
    /// clock, which moves to `c`.
    pub fn options(mut self, change: impl FnOnce(FlowOptions) -> FlowOptions) -> Self {
        let before = self.options.clock.clone();
        let mut changed = change((*self.options).clone());
        if !changed.clock.same(&before) {
            before.retarget(&changed.clock);
            changed.clock = before;
        }
        self.options = Arc::new(changed);
        self
    }

    /// Where spent login states are recorded (default: a [`MemoryLedger`], which holds within
    /// one process). Apps with several instances pass the Redis ledger of
    /// [`session_store`](crate::session_store). See [`single_use`](crate::single_use).
    pub fn state_ledger(mut self, ledger: impl StateLedger) -> Self {
        self.ledger = Arc::new(ledger);
        self
    }

    /// The app's sign-in hook, as PassportJS's verify callback: it receives a
    /// [`SignInContext`] (the request, the new identity, the app's user value this session
    /// held before, whether this is a re-login) and answers the app's own user value (kept in
    /// the session next to the identity, read by [`SignedIn::user`](crate::SignedIn::user))
    /// or a [`Rejection`].
    pub fn on_sign_in<F, Fut, U>(mut self, hook: F) -> Self
    where
        F: Fn(SignInContext<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<U, Rejection>> + 'static,
        U: Serialize + 'static,
    {
        let hook = Arc::new(hook);
        self.hook = Some(Arc::new(move |context| {
            let fut = hook(context);
            Box::pin(async move {
                let user = fut.await?;
                serde_json::to_value(user).map_err(|e| {
                    Rejection::new(format!("the app's user value could not be stored: {e}"))
                })
            })
        }));
        self
    }

    /// Replaces the default failure answer (an HTML page or a JSON body, by `Accept`).
    pub fn failure_handler<F>(mut self, handler: F) -> Self
    where
        F: Fn(&HttpRequest, &SignInError<S::Error>) -> HttpResponse + Send + Sync + 'static,
    {
        self.failure_handler = Some(Arc::new(handler));
        self
    }

    /// The ledger of spent states (also what makes a provider's notification count once).
    pub(crate) fn ledger(&self) -> &dyn StateLedger {
        &*self.ledger
    }

    /// The strategy.
    pub fn strategy(&self) -> &S {
        &self.strategy
    }

    /// The flow options.
    pub fn flow_options(&self) -> &FlowOptions {
        &self.options
    }

    /// The login state's lifetime (set with `options(|o| o.state_ttl(…))`).
    pub fn state_ttl(&self) -> std::time::Duration {
        self.options.state_ttl
    }

    /// How long a server-side session outlives what it holds (set with
    /// `options(|o| o.session_margin(…))`).
    pub fn session_margin(&self) -> std::time::Duration {
        self.options.session_margin
    }

    /// Where a sign-in without `return_to` goes (set with `options(|o| o.success_target(…))`).
    pub fn success_target(&self) -> &str {
        &self.options.success_target
    }

    fn paths(&self) -> Option<&MountPaths> {
        self.paths.get()
    }

    /// The mount prefix, e.g. `/auth/apple-music` (empty until mounted).
    pub fn prefix(&self) -> &str {
        self.paths().map_or("", |p| p.prefix.as_str())
    }

    /// The login path, e.g. `/auth/apple-music/login` (empty until mounted).
    pub fn login_path(&self) -> &str {
        self.paths().map_or("", |p| p.login.as_str())
    }

    /// The callback path, e.g. `/auth/apple-music/callback` (empty until mounted).
    pub fn callback_path(&self) -> &str {
        self.paths().map_or("", |p| p.callback.as_str())
    }

    pub(super) fn now(&self) -> OffsetDateTime {
        self.options.now()
    }

    /// The identity stored in this request's session, if any (whatever its expiry). One
    /// that no longer reads (another version of the app wrote it, or a tampered store) is
    /// logged once, removed, and the session is marked for re-login.
    pub fn stored_identity(&self, session: &Session) -> Option<S::Identity> {
        match self.keys.read_identity(session) {
            Ok(identity) => identity,
            Err(_) => self.unreadable(session),
        }
    }

    fn unreadable(&self, session: &Session) -> Option<S::Identity> {
        if !self.unreadable_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "a stored `{}` identity no longer reads (written by another version?): asking for a fresh sign-in (logged once)",
                self.keys.name
            );
        }
        self.mark_reauthentication(session, self.now());
        None
    }

    /// The app's user value the sign-in hook answered, if any (and if it reads as `U`).
    pub fn stored_user<U: DeserializeOwned>(&self, session: &Session) -> Option<U> {
        self.stored_user_result(session).ok().flatten()
    }

    /// The app's user value: `Err` when one is stored but does not read as `U`.
    /// Whether a user value that does not read is the first for this authenticator (and its
    /// clones): the guard logs only that one.
    pub(crate) fn first_unreadable_user(&self) -> bool {
        !self.user_unreadable_logged.swap(true, Ordering::Relaxed)
    }

    pub(crate) fn stored_user_result<U: DeserializeOwned>(
        &self,
        session: &Session,
    ) -> Result<Option<U>, ()> {
        // Parsed here rather than by `Session::get`, whose error (for a value that does not
        // read as `U`, e.g. `()` beside a hook that stores a user) captures a backtrace when
        // `RUST_BACKTRACE` is set: that cost a guarded request 40 % of its throughput.
        let entries = session.entries();
        match entries.get(&self.keys.user) {
            Some(json) => serde_json::from_str::<U>(json).map(Some).map_err(|_| ()),
            None => Ok(None),
        }
    }

    /// Signs this strategy out of this session: forgets its identity, the app's user value
    /// and any re-login mark, and nothing else (other strategies' identities and the app's
    /// own keys stay). [`SignedIn::sign_out`](crate::SignedIn::sign_out) does the same from a
    /// handler. `POST …/logout` clears the whole session instead (every strategy, every key).
    pub fn forget(&self, session: &Session) {
        self.remove_identity(session);
        session.remove(&self.keys.reauth);
        self.refresh_until(session);
    }

    fn remove_identity(&self, session: &Session) {
        session.remove(&self.keys.identity);
        session.remove(&self.keys.user);
    }

    /// Stores `identity` on this session as a finished sign-in does, without a login (the
    /// sign-in's last step; apps' tests reach it through
    /// `test_util::sign_in_session`): renews the session id, clears a
    /// re-login mark, and keeps the app's user value if given.
    pub(crate) fn sign_in(
        &self,
        session: &Session,
        identity: &S::Identity,
        user: Option<&serde_json::Value>,
    ) -> Result<(), FlowError> {
        let fail = |e: actix_session::SessionInsertError| {
            tracing::error!("could not store the identity in the session: {e}");
            FlowError::malformed("the session could not hold the identity")
        };
        session.renew();
        session.remove(&self.keys.reauth);
        self.keys.write_identity(session, identity).map_err(fail)?;
        match user {
            Some(user) => session.insert(&self.keys.user, user).map_err(fail)?,
            None => {
                session.remove(&self.keys.user);
            }
        }
        self.refresh_until(session);
        Ok(())
    }

    /// Starts a login: stores a fresh single-use state (with `return_to`) in the session.
    pub(crate) fn begin_login(
        &self,
        session: &Session,
        return_to: Option<String>,
    ) -> Result<PendingLogin, FlowError> {
        let now = self.now().unix_timestamp();
        let pending = PendingLogin::new(now, return_to);
        let mut logins = self.pending_logins(session);
        logins.push(
            pending.clone(),
            now,
            self.options.state_ttl.as_secs() as i64,
        );
        session.insert(&self.keys.login, &logins).map_err(|e| {
            tracing::error!("could not store the login state: {e}");
            FlowError::malformed("the session could not hold the login state")
        })?;
        self.record_lifetime(session, Some(&pending));
        Ok(pending)
    }

    /// Checks the proof a callback carries against the session's pending login and spends
    /// the login, once: removed from the session and recorded in the [`StateLedger`], so of
    /// any number of parallel or replayed callbacks with this state exactly one goes on.
    /// Answers the stored `return_to`.
    async fn spend_state(
        &self,
        session: &Session,
        proof: StateProof<'_>,
    ) -> Result<Option<String>, FlowError> {
        let mut logins = self.pending_logins(session);
        let pending = logins.take_matching(proof)?;
        // The lifetime record may still name the spent login's end: a sign-in rewrites it,
        // and otherwise the session is not worth keeping past that end anyway.
        if logins.is_empty() {
            session.remove(&self.keys.login);
        } else if let Err(e) = session.insert(&self.keys.login, &logins) {
            tracing::warn!("could not keep the other pending logins: {e}");
        }
        let ttl = self.options.state_ttl;
        let age = self.now().unix_timestamp().saturating_sub(pending.created);
        if age < 0 || age as u64 >= ttl.as_secs() {
            return Err(FlowError::StateExpired);
        }
        let id = StateId::new(&self.keys.name, &pending.state);
        let left = ttl.saturating_sub(Duration::from_secs(age as u64));
        let started = std::time::Instant::now();
        let spent = self
            .ledger
            .spend(&id, left.max(Duration::from_secs(1)))
            .await;
        let outcome = if spent.is_ok() { "ok" } else { "error" };
        crate::audit::store_operation("spend", outcome, started.elapsed());
        match spent {
            Ok(true) => Ok(pending.return_to),
            Ok(false) => {
                tracing::warn!("a spent login state came back (a replay or a parallel callback)");
                Err(FlowError::StateMismatch)
            }
            Err(e) => {
                tracing::error!("{e}");
                Err(FlowError::StoreUnavailable {
                    detail: "the single-use state ledger did not answer".into(),
                })
            }
        }
    }

    /// Finishes a sign-in, the one way every route does it (the built-in callback, and any
    /// strategy's own routes): spends the login state that `proof` names (before anything
    /// else, so a state is worth one `identity` call at most), runs `identity` (the
    /// strategy's own checks), then the app's sign-in hook, renews the session and stores the
    /// identity. Answer it with [`respond`](Self::respond), or build your own success answer
    /// and use [`failure_response`](Self::failure_response).
    pub async fn finish_sign_in<F, Fut>(
        &self,
        req: &HttpRequest,
        proof: StateProof<'_>,
        identity: F,
    ) -> Result<SignedInAt<S::Identity>, SignInError<S::Error>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<S::Identity, S::Error>>,
    {
        // A span per sign-in: the app's own events inside (its hook) carry the strategy.
        let span = tracing::info_span!("sign_in", strategy = self.strategy.name());
        async move {
            let session = req.get_session();
            let return_to = self.spend_state(&session, proof).await?;
            let identity = identity().await.map_err(SignInError::Strategy)?;
            let effects: std::rc::Rc<std::cell::RefCell<Vec<crate::session_store::AfterSave>>> =
                std::rc::Rc::default();
            let user = match &self.hook {
                Some(hook) => {
                    let previous = self
                        .keys
                        .read_identity::<S::Identity>(&session)
                        .ok()
                        .flatten();
                    let subject = |identity: &S::Identity| self.strategy.subject(identity);
                    let context = SignInContext {
                        request: req.clone(),
                        identity: identity.clone(),
                        previous_user: session
                            .get::<serde_json::Value>(&self.keys.user)
                            .ok()
                            .flatten(),
                        relogin: session.contains_key(&self.keys.identity)
                            || self.reauthentication_mark(&session).is_some(),
                        another_person: previous.is_some_and(|before| {
                            subject(&before).is_some_and(|b| Some(b) != subject(&identity))
                        }),
                        previous_account: self.previous_account(&session).await,
                        after_saved: effects.clone(),
                    };
                    Some(
                        hook(context)
                            .await
                            .map_err(|Rejection(reason)| FlowError::RejectedByApp { reason })?,
                    )
                }
                None => None,
            };
            self.store_sign_in(req, &session, &identity, user.as_ref())
                .await?;
            let signed_in = AuditEvent::SignedIn {
                strategy: self.strategy.name().to_owned(),
                account: crate::accounts::Accounts::record(&session).map(|r| r.account),
            };
            effects
                .borrow_mut()
                .insert(0, Box::pin(async move { crate::audit::emit(signed_in) }));
            let effects = std::mem::take(&mut *effects.borrow_mut());
            for effect in effects {
                if let Some(now) = crate::session_store::after_save(effect) {
                    now.await;
                }
            }
            Ok(SignedInAt {
                location: return_to.unwrap_or_else(|| self.options.success_target.clone()),
                identity,
            })
        }
        .instrument(span)
        .await
    }
}
