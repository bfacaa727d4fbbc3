//! A small, PassportJS-style strategy framework for actix-web.
//!
//! A [`Strategy`] knows how to show a login page and how to turn a callback into an
//! identity. The [`Authenticator`] around it does everything that is not provider-specific:
//! it mounts `login`, `callback` and `logout` routes under a prefix, keeps a single-use login
//! state in the session, checks it on the way back, calls the app's verify hook, renews the
//! session id, stores the identity, and answers success or a typed failure.
//!
//! Nothing here knows about Apple Music; [`AppleMusicStrategy`](crate::AppleMusicStrategy) is
//! one strategy, and a test or manual-token strategy plugs into the same trait.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_session::{Session, SessionExt};
use actix_web::http::header;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::clock::{system_clock, SharedClock};
use crate::error::{AuthError, AuthorizationError, TokenError, UpstreamError};
use crate::response;
use crate::single_use::{MemoryLedger, StateId, StateLedger};

/// Largest callback request (query string or form body) the callback reads.
pub const MAX_CALLBACK_BYTES: usize = 16 * 1024;

/// A sign-in method: a login page and a callback that yields an identity.
pub trait Strategy: Send + Sync + Sized + 'static {
    /// What a successful sign-in yields; kept in the session.
    type Identity: Serialize + DeserializeOwned + Clone + 'static;

    /// A short name, also the namespace of its session keys (`"<name>.identity"`).
    fn name(&self) -> &str;

    /// Options of the surrounding flow (targets, state lifetime, clock).
    fn flow_options(&self) -> &FlowOptions;

    /// Answers the login page for a login whose state is already stored in the session.
    fn login_page(&self, req: &HttpRequest, login: &LoginRequest<'_>) -> HttpResponse;

    /// Turns a callback whose state has been checked into an identity, or a typed error.
    fn callback(
        &self,
        req: &HttpRequest,
        params: &CallbackParams,
    ) -> impl Future<Output = Result<Self::Identity, AuthError>>;

    /// When `identity`'s credential ends, if the strategy knows. A session that holds the
    /// identity is kept until then plus the flow's session margin (see
    /// [`session_store`](crate::session_store)); `None` (the default) leaves the session's
    /// lifetime to the store's configuration.
    fn identity_expires_at(&self, identity: &Self::Identity) -> Option<OffsetDateTime> {
        let _ = identity;
        None
    }

    /// Adds strategy-specific routes to the mounted scope (e.g. a return page).
    fn extra_routes(&self, scope: actix_web::Scope) -> actix_web::Scope {
        scope
    }
}

/// What the login page needs to know about the login it starts.
#[derive(Debug)]
#[non_exhaustive]
pub struct LoginRequest<'a> {
    /// The single-use state to send back with the callback.
    pub state: &'a str,
    /// A second secret of this login, for a page that hands the result back through a URL
    /// of ours (the `redirect` page's return URL): the callback accepts it as `handback`
    /// instead of `state`. Never put it in a page a bare navigation can load.
    pub handback: &'a str,
    /// The callback path (under the mount prefix).
    pub callback_path: &'a str,
    /// The mount prefix, e.g. `/auth/apple-music`.
    pub prefix: &'a str,
    /// `prompt=login`: ask the user again even if the browser holds a cached token.
    pub force_dialog: bool,
}

/// Options of the flow around a strategy. Defaults: success and logout go to `/`, failures
/// are answered in place (HTML or JSON), login state lives 10 minutes, sessions outlive their
/// identity by [`DEFAULT_SESSION_MARGIN`], callbacks by POST only, request bodies within
/// [`DEFAULT_BODY_TIMEOUT`], the origin from the request itself (no forwarded headers), the
/// system clock.
#[derive(Clone)]
pub struct FlowOptions {
    pub(crate) success_target: String,
    pub(crate) failure_target: Option<String>,
    pub(crate) logout_target: String,
    pub(crate) state_ttl: Duration,
    pub(crate) session_margin: Duration,
    pub(crate) public_origin: Option<String>,
    pub(crate) trust_forwarded_headers: bool,
    pub(crate) allow_get_callback: bool,
    pub(crate) body_timeout: Duration,
    pub(crate) clock: SharedClock,
}

/// Default longest wait for a request body on the crate's routes: 10 seconds. A body that has
/// not arrived by then is answered `408` (`request_timeout`).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Default time a session outlives what it holds (see [`FlowOptions`]): 7 days, so a user who
/// comes back within a week of the music user token's end still gets the re-login prompt.
pub const DEFAULT_SESSION_MARGIN: Duration = Duration::from_secs(7 * 86_400);

impl std::fmt::Debug for FlowOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowOptions")
            .field("success_target", &self.success_target)
            .field("failure_target", &self.failure_target)
            .field("logout_target", &self.logout_target)
            .field("state_ttl", &self.state_ttl)
            .field("session_margin", &self.session_margin)
            .field("public_origin", &self.public_origin)
            .field("trust_forwarded_headers", &self.trust_forwarded_headers)
            .field("allow_get_callback", &self.allow_get_callback)
            .field("body_timeout", &self.body_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for FlowOptions {
    fn default() -> Self {
        Self {
            success_target: "/".into(),
            failure_target: None,
            logout_target: "/".into(),
            state_ttl: Duration::from_secs(600),
            session_margin: DEFAULT_SESSION_MARGIN,
            public_origin: None,
            trust_forwarded_headers: false,
            allow_get_callback: false,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            clock: system_clock(),
        }
    }
}

/// Session data of a login in progress.
#[derive(Serialize, Deserialize)]
struct PendingLogin {
    state: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    handback: String,
    created: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    return_to: Option<String>,
}

/// A refusal from the app's verify hook; becomes
/// [`AuthorizationError::RejectedByApp`] with this reason.
#[derive(Debug, Clone)]
pub struct Rejection(String);

impl Rejection {
    /// A refusal with a reason the user may read.
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

type HookFuture = Pin<Box<dyn Future<Output = Result<serde_json::Value, Rejection>>>>;
type VerifyHook<I> = Arc<dyn Fn(HttpRequest, I) -> HookFuture + Send + Sync>;
type FailureHandler = Arc<dyn Fn(&HttpRequest, &AuthError) -> HttpResponse + Send + Sync>;

/// Mounts a [`Strategy`] on an actix app and runs the flow around it.
///
/// ```no_run
/// # use actix_apple_music::{AppleMusicConfig, AppleMusicStrategy, Authenticator};
/// # fn app(strategy: AppleMusicStrategy) {
/// let auth = Authenticator::new(strategy);
/// let app = actix_web::App::new()
///     // .wrap(SessionMiddleware::new(...))
///     .configure(auth.mount("/auth/apple-music"));
/// # }
/// ```
///
/// Cloning is cheap (a few `Arc`s): clone it into each worker's `App`.
pub struct Authenticator<S: Strategy> {
    strategy: Arc<S>,
    verify: Option<VerifyHook<S::Identity>>,
    failure_handler: Option<FailureHandler>,
    paths: Arc<MountPaths>,
    keys: Arc<SessionKeys>,
    ledger: Arc<dyn StateLedger>,
}

/// The mount prefix and the paths under it, computed once at mount.
#[derive(Debug, Default)]
struct MountPaths {
    prefix: String,
    login: String,
    callback: String,
}

impl MountPaths {
    fn new(prefix: &str) -> Self {
        let prefix = prefix.trim_end_matches('/');
        Self {
            prefix: prefix.to_owned(),
            login: format!("{prefix}/login"),
            callback: format!("{prefix}/callback"),
        }
    }
}

impl<S: Strategy> Clone for Authenticator<S> {
    fn clone(&self) -> Self {
        Self {
            strategy: self.strategy.clone(),
            verify: self.verify.clone(),
            failure_handler: self.failure_handler.clone(),
            paths: self.paths.clone(),
            keys: self.keys.clone(),
            ledger: self.ledger.clone(),
        }
    }
}

/// The session keys of one strategy, namespaced by its name.
#[derive(Debug, Clone)]
pub(crate) struct SessionKeys {
    pub(crate) login: String,
    pub(crate) identity: String,
    pub(crate) user: String,
    pub(crate) reauth: String,
    pub(crate) until: String,
}

/// Suffix of the session entry (`"<strategy name>.until"`, Unix seconds) that says how long
/// the session is worth keeping; read by [`session_store`](crate::session_store).
pub const SESSION_UNTIL_SUFFIX: &str = ".until";

impl SessionKeys {
    fn new(name: &str) -> Self {
        Self {
            login: format!("{name}.login"),
            identity: format!("{name}.identity"),
            user: format!("{name}.user"),
            reauth: format!("{name}.reauth"),
            until: format!("{name}{SESSION_UNTIL_SUFFIX}"),
        }
    }
}

impl<S: Strategy> Authenticator<S> {
    /// Wraps a strategy with no verify hook (the identity alone is kept).
    pub fn new(strategy: S) -> Self {
        let keys = Arc::new(SessionKeys::new(strategy.name()));
        Self {
            strategy: Arc::new(strategy),
            verify: None,
            failure_handler: None,
            paths: Arc::new(MountPaths::default()),
            keys,
            ledger: Arc::new(MemoryLedger::new()),
        }
    }

    /// Where spent login states are recorded (default: a [`MemoryLedger`], which holds within
    /// one process). Apps with several instances pass the Redis ledger of
    /// [`session_store`](crate::session_store). See [`single_use`](crate::single_use).
    pub fn state_ledger(mut self, ledger: impl StateLedger) -> Self {
        self.ledger = Arc::new(ledger);
        self
    }

    /// The verify hook, as PassportJS's verify callback: it receives the request and the new
    /// identity and answers the app's own user value (kept in the session next to the
    /// identity, see [`stored_user`](Self::stored_user)) or a [`Rejection`].
    pub fn verify<F, Fut, U>(mut self, hook: F) -> Self
    where
        F: Fn(HttpRequest, S::Identity) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<U, Rejection>> + 'static,
        U: Serialize + 'static,
    {
        let hook = Arc::new(hook);
        self.verify = Some(Arc::new(move |req, identity| {
            let fut = hook(req, identity);
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
        F: Fn(&HttpRequest, &AuthError) -> HttpResponse + Send + Sync + 'static,
    {
        self.failure_handler = Some(Arc::new(handler));
        self
    }

    /// The strategy.
    pub fn strategy(&self) -> &S {
        &self.strategy
    }

    /// The mount prefix (empty before [`mount`](Self::mount)).
    pub fn prefix(&self) -> &str {
        &self.paths.prefix
    }

    /// The login path, e.g. `/auth/apple-music/login`.
    pub fn login_path(&self) -> &str {
        &self.paths.login
    }

    /// The callback path, e.g. `/auth/apple-music/callback`.
    pub fn callback_path(&self) -> &str {
        &self.paths.callback
    }

    /// Mounts the routes under `prefix` (e.g. `/auth/apple-music`) and registers this
    /// authenticator as app data, so extractors anywhere in the app can find it. Use with
    /// [`App::configure`](actix_web::App::configure):
    ///
    /// - `GET {prefix}/login[?return_to=/path][&prompt=login]`: the login page;
    /// - `GET` and `POST {prefix}/callback`: finishes the sign-in, `303` on success;
    /// - `POST {prefix}/logout`: forgets the identity, `303` to the logout target;
    /// - whatever routes the strategy adds.
    pub fn mount(mut self, prefix: &str) -> impl FnOnce(&mut ServiceConfig) {
        self.paths = Arc::new(MountPaths::new(prefix));
        let prefix = self.paths.prefix.clone();
        move |cfg: &mut ServiceConfig| {
            let data = web::Data::new(self.clone());
            let scope = web::scope(&prefix)
                .app_data(data.clone())
                .route("/login", web::get().to(login::<S>))
                .route("/callback", web::get().to(callback_get::<S>))
                .route("/callback", web::post().to(callback_post::<S>))
                .route("/logout", web::post().to(logout::<S>));
            let scope = self.strategy.extra_routes(scope);
            cfg.app_data(data).service(scope);
        }
    }

    pub(crate) fn options(&self) -> &FlowOptions {
        self.strategy.flow_options()
    }

    fn now(&self) -> OffsetDateTime {
        self.options().clock.now()
    }

    /// The identity stored in this request's session, if any (whatever its expiry).
    pub fn stored_identity(&self, session: &Session) -> Option<S::Identity> {
        match session.get::<S::Identity>(&self.keys.identity) {
            Ok(identity) => identity,
            Err(_) => {
                // Written by another version of the app, or tampered: treat as signed out.
                session.remove(&self.keys.identity);
                None
            }
        }
    }

    /// The app's user value the verify hook answered, if any.
    pub fn stored_user<U: DeserializeOwned>(&self, session: &Session) -> Option<U> {
        session.get::<U>(&self.keys.user).ok().flatten()
    }

    /// Forgets the identity (and the app's user value) of this session.
    pub fn forget(&self, session: &Session) {
        self.remove_identity(session);
        self.refresh_until(session);
    }

    fn remove_identity(&self, session: &Session) {
        session.remove(&self.keys.identity);
        session.remove(&self.keys.user);
    }

    /// Records how long this session is worth keeping: the latest of the pending login's
    /// end, the identity's end plus the session margin, and a re-login mark plus the margin.
    /// An identity whose end is unknown removes the record (the store's own TTL applies).
    fn refresh_until(&self, session: &Session) {
        let options = self.options();
        let margin = options.session_margin.as_secs() as i64;
        let mut until: Option<i64> = None;
        let mut later = |t: i64| until = Some(until.map_or(t, |u| u.max(t)));
        if let Some(pending) = session.get::<PendingLogin>(&self.keys.login).ok().flatten() {
            later(
                pending
                    .created
                    .saturating_add(options.state_ttl.as_secs() as i64),
            );
        }
        if let Some(identity) = self.stored_identity(session) {
            match self.strategy.identity_expires_at(&identity) {
                Some(end) => later(end.unix_timestamp().saturating_add(margin)),
                None => {
                    session.remove(&self.keys.until);
                    return;
                }
            }
        }
        if let Some(mark) = self.reauthentication_mark(session) {
            later(mark.unix_timestamp().saturating_add(margin));
        }
        match until {
            Some(until) => {
                if let Err(e) = session.insert(&self.keys.until, until) {
                    log::warn!("could not record the session's lifetime: {e}");
                }
            }
            None => {
                session.remove(&self.keys.until);
            }
        }
    }

    /// Notes in the session that its identity ended (expired or invalidated) at `at`, so the
    /// next guarded request asks for a fresh sign-in (`prompt=login`).
    pub fn mark_reauthentication(&self, session: &Session, at: OffsetDateTime) {
        self.remove_identity(session);
        if let Err(e) = session.insert(&self.keys.reauth, at.unix_timestamp()) {
            log::warn!("could not mark the session for re-authentication: {e}");
        }
        self.refresh_until(session);
    }

    /// When the identity of this session ended, if it was marked by
    /// [`mark_reauthentication`](Self::mark_reauthentication) and no sign-in happened since.
    pub fn reauthentication_mark(&self, session: &Session) -> Option<OffsetDateTime> {
        let secs = session.get::<i64>(&self.keys.reauth).ok().flatten()?;
        OffsetDateTime::from_unix_timestamp(secs).ok()
    }

    /// Signs `identity` in on this session, as a successful callback does: renews the
    /// session id and stores it, with the app's user value if given.
    pub fn sign_in(
        &self,
        session: &Session,
        identity: &S::Identity,
        user: Option<&serde_json::Value>,
    ) -> Result<(), SignInError> {
        session.renew();
        session.remove(&self.keys.reauth);
        session
            .insert(&self.keys.identity, identity)
            .map_err(|e| SignInError(e.to_string()))?;
        match user {
            Some(user) => session
                .insert(&self.keys.user, user)
                .map_err(|e| SignInError(e.to_string()))?,
            None => {
                session.remove(&self.keys.user);
            }
        }
        self.refresh_until(session);
        Ok(())
    }

    /// Starts a login: stores a fresh single-use state and hand-back value (with
    /// `return_to`) in the session. Answers them.
    fn begin_login(
        &self,
        session: &Session,
        return_to: Option<String>,
    ) -> Result<PendingLogin, SignInError> {
        let pending = PendingLogin {
            state: oauth2::CsrfToken::new_random().secret().clone(),
            handback: oauth2::CsrfToken::new_random().secret().clone(),
            created: self.now().unix_timestamp(),
            return_to,
        };
        session
            .insert(&self.keys.login, &pending)
            .map_err(|e| SignInError(e.to_string()))?;
        self.refresh_until(session);
        Ok(pending)
    }

    /// Checks the proof a callback carries (`state`, or the login's `handback`) against the
    /// session's pending login and spends the login, once: removed from the session and
    /// recorded in the [`StateLedger`], so of any number of parallel or replayed callbacks
    /// with this state exactly one goes on. Answers the stored `return_to`.
    pub(crate) async fn spend_state(
        &self,
        session: &Session,
        proof: StateProof<'_>,
    ) -> Result<Option<String>, AuthError> {
        let pending = session.get::<PendingLogin>(&self.keys.login).ok().flatten();
        let pending = check_proof(pending, proof)?;
        // `until` may still name the consumed login's end: a successful sign-in rewrites it,
        // and otherwise the session is not worth keeping past that end anyway.
        session.remove(&self.keys.login);
        let ttl = self.options().state_ttl;
        let age = self.now().unix_timestamp().saturating_sub(pending.created);
        if age < 0 || age as u64 >= ttl.as_secs() {
            return Err(TokenError::StateExpired.into());
        }
        let id = StateId::new(self.strategy.name(), &pending.state);
        let left = ttl.saturating_sub(Duration::from_secs(age as u64));
        match self
            .ledger
            .spend(&id, left.max(Duration::from_secs(1)))
            .await
        {
            Ok(true) => Ok(pending.return_to),
            Ok(false) => {
                log::warn!("a spent login state came back (a replay or a parallel callback)");
                Err(TokenError::StateMismatch.into())
            }
            Err(e) => {
                log::error!("{e}");
                Err(UpstreamError::StateStoreUnavailable {
                    detail: "the single-use state ledger did not answer".into(),
                }
                .into())
            }
        }
    }

    /// Runs a checked callback to its end: state, strategy, verify hook, session.
    async fn finish(
        &self,
        req: &HttpRequest,
        params: &CallbackParams,
    ) -> Result<String, AuthError> {
        let session = req.get_session();
        let return_to = self
            .spend_state(&session, StateProof::from_params(params))
            .await?;
        if let Some(error) = params.get("error") {
            return Err(AuthorizationError::from_callback_error(error).into());
        }
        let identity = self.strategy.callback(req, params).await?;
        self.complete(req, &session, identity).await?;
        Ok(return_to.unwrap_or_else(|| self.options().success_target.clone()))
    }

    /// Runs the verify hook and stores the identity; shared by every way of signing in.
    pub(crate) async fn complete(
        &self,
        req: &HttpRequest,
        session: &Session,
        identity: S::Identity,
    ) -> Result<(), AuthError> {
        let user = match &self.verify {
            Some(hook) => Some(
                hook(req.clone(), identity.clone())
                    .await
                    .map_err(|Rejection(reason)| AuthorizationError::RejectedByApp { reason })?,
            ),
            None => None,
        };
        self.sign_in(session, &identity, user.as_ref())
            .map_err(|e| {
                log::error!("could not store the identity in the session: {}", e.0);
                TokenError::malformed("the session could not hold the identity")
            })?;
        Ok(())
    }

    /// The answer to a failed sign-in for this request.
    pub(crate) fn failure(&self, req: &HttpRequest, error: &AuthError) -> HttpResponse {
        log::info!("sign-in failed: {} ({})", error.kind(), error.reason());
        if let Some(handler) = &self.failure_handler {
            return handler(req, error);
        }
        if let (Some(target), true) = (&self.options().failure_target, response::wants_html(req)) {
            let sep = if target.contains('?') { '&' } else { '?' };
            return response::see_other(&format!(
                "{target}{sep}error={}&reason={}",
                error.kind(),
                error.reason()
            ));
        }
        response::auth_error(req, error, self.login_path())
    }

    /// Whether the request's `Origin`, when present, is the app's own: the configured
    /// public origin when there is one, else the request's scheme and `Host` (forwarded
    /// headers only when the app trusts them).
    pub(crate) fn same_origin(&self, req: &HttpRequest) -> bool {
        let Some(origin) = req.headers().get(header::ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let options = self.options();
        match &options.public_origin {
            Some(public) => origin == public.trim_end_matches('/'),
            None => Some(origin) == own_origin(req, options.trust_forwarded_headers).as_deref(),
        }
    }
}

/// The request's own origin: its scheme (TLS or not) and `Host`; with `trust_forwarded`, what
/// `Forwarded` / `X-Forwarded-*` say instead (actix's `ConnectionInfo`).
pub(crate) fn own_origin(req: &HttpRequest, trust_forwarded: bool) -> Option<String> {
    if trust_forwarded {
        let info = req.connection_info();
        return Some(format!("{}://{}", info.scheme(), info.host()));
    }
    let scheme = if req.app_config().secure() {
        "https"
    } else {
        "http"
    };
    let host = match req.headers().get(header::HOST) {
        Some(host) => host.to_str().ok()?.to_owned(),
        None => req.uri().authority()?.as_str().to_owned(),
    };
    Some(format!("{scheme}://{host}"))
}

/// What a callback offers as proof that it belongs to the login this session started: the
/// login's `state`, or its `handback` (for a return page reached through a URL of ours).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StateProof<'a> {
    pub(crate) state: Option<&'a str>,
    pub(crate) handback: Option<&'a str>,
}

impl<'a> StateProof<'a> {
    pub(crate) fn from_params(params: &'a CallbackParams) -> Self {
        Self {
            state: params.get("state"),
            handback: params.get("handback"),
        }
    }
}

/// Checks `proof` against the pending login, in constant time. A `state` wins over a
/// `handback` when both are given; a `handback` parameter that is empty or wrong, or given
/// when the session has no login, is [`TokenError::HandbackMismatch`].
fn check_proof(
    pending: Option<PendingLogin>,
    proof: StateProof<'_>,
) -> Result<PendingLogin, TokenError> {
    fn nonempty(v: Option<&str>) -> Option<&str> {
        v.filter(|s| !s.is_empty())
    }
    let equal = |a: &str, b: &str| bool::from(a.as_bytes().ct_eq(b.as_bytes()));
    match (nonempty(proof.state), proof.handback) {
        (Some(state), _) => match pending {
            Some(p) if equal(&p.state, state) => Ok(p),
            _ => Err(TokenError::StateMismatch),
        },
        (None, Some(handback)) => match pending {
            Some(p) if !p.handback.is_empty() && equal(&p.handback, handback) => Ok(p),
            _ => Err(TokenError::HandbackMismatch),
        },
        (None, None) => Err(TokenError::MissingState),
    }
}

/// The session could not store a value (serialisation failed).
#[derive(Debug, thiserror::Error)]
#[error("could not store the sign-in in the session: {0}")]
pub struct SignInError(String);

/// Accepts a `return_to` only as a same-site path: `/…`, never `//…`, `/\…` or a scheme.
pub(crate) fn safe_return_to(value: &str) -> Option<String> {
    let ok = value.starts_with('/')
        && !value.starts_with("//")
        && !value.starts_with("/\\")
        && value.len() <= 2048
        && !value.chars().any(|c| c.is_control() || c == '\\');
    if !ok {
        return None;
    }
    // Resolve against a dummy origin: whatever the browser would make of it must stay there.
    let base = url::Url::parse("http://return-to.invalid/").ok()?;
    let url = base.join(value).ok()?;
    (url.origin() == base.origin()).then(|| value.to_owned())
}

async fn login<S: Strategy>(req: HttpRequest, auth: web::Data<Authenticator<S>>) -> HttpResponse {
    let mut return_to = None;
    let mut force_dialog = false;
    for (name, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        match &*name {
            "return_to" => return_to = safe_return_to(&value),
            "prompt" => force_dialog = value == "login",
            _ => {}
        }
    }
    let session = req.get_session();
    let pending = match auth.begin_login(&session, return_to) {
        Ok(pending) => pending,
        Err(e) => {
            log::error!("{e}");
            return HttpResponse::InternalServerError().finish();
        }
    };
    auth.strategy.login_page(
        &req,
        &LoginRequest {
            state: &pending.state,
            handback: &pending.handback,
            callback_path: auth.callback_path(),
            prefix: auth.prefix(),
            force_dialog,
        },
    )
}

async fn callback_get<S: Strategy>(
    req: HttpRequest,
    auth: web::Data<Authenticator<S>>,
) -> HttpResponse {
    if !auth.options().allow_get_callback {
        // A music user token in a URL ends up in history and access logs: POST only.
        return HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, "POST"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({
                "error": "method_not_allowed",
                "message": "the callback takes a POST form; GET callbacks are switched off",
            }));
    }
    let params = CallbackParams::parse(req.query_string().as_bytes());
    run_callback(&req, &auth, params).await
}

async fn callback_post<S: Strategy>(
    req: HttpRequest,
    body: web::Payload,
    auth: web::Data<Authenticator<S>>,
) -> HttpResponse {
    let params = match read_body(&req, body, false, auth.options().body_timeout).await {
        Ok(bytes) => CallbackParams::parse(&bytes),
        Err(e) => Err(e),
    };
    run_callback(&req, &auth, params).await
}

async fn run_callback<S: Strategy>(
    req: &HttpRequest,
    auth: &Authenticator<S>,
    params: Result<CallbackParams, TokenError>,
) -> HttpResponse {
    let result = match params {
        Ok(params) => auth.finish(req, &params).await,
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(location) => response::see_other(&location),
        Err(error) => auth.failure(req, &error),
    }
}

/// Reads a form body (or a JSON one, when `json`) of at most [`MAX_CALLBACK_BYTES`], which
/// must arrive within `timeout` ([`TokenError::RequestTimeout`] otherwise).
pub(crate) async fn read_body(
    req: &HttpRequest,
    body: web::Payload,
    json: bool,
    timeout: Duration,
) -> Result<web::BytesMut, TokenError> {
    actix_web::rt::time::timeout(timeout, read_body_inner(req, body, json))
        .await
        .unwrap_or(Err(TokenError::RequestTimeout))
}

async fn read_body_inner(
    req: &HttpRequest,
    mut body: web::Payload,
    json: bool,
) -> Result<web::BytesMut, TokenError> {
    use futures_util::StreamExt;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded");
    if !json && !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(TokenError::malformed(
            "expected a form (application/x-www-form-urlencoded)",
        ));
    }
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|_| TokenError::malformed("the request body could not be read"))?;
        if bytes.len() + chunk.len() > MAX_CALLBACK_BYTES {
            return Err(TokenError::malformed("the request is too large"));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

async fn logout<S: Strategy>(req: HttpRequest, auth: web::Data<Authenticator<S>>) -> HttpResponse {
    if !auth.same_origin(&req) {
        return HttpResponse::Forbidden().json(serde_json::json!({
            "error": "forbidden",
            "message": "cross-origin logout refused",
        }));
    }
    req.get_session().purge();
    response::see_other(&auth.options().logout_target)
}

/// The parameters of a callback request, each given once and valid UTF-8. Its `Debug`
/// output names the parameters but not their values (which hold tokens).
#[derive(Clone, Default)]
pub struct CallbackParams {
    pairs: Vec<(String, String)>,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.pairs.iter().map(|(k, _)| k))
            .finish()
    }
}

impl CallbackParams {
    /// Parses `application/x-www-form-urlencoded` bytes (a query string or a form body).
    /// A parameter given twice, a name or value that is not UTF-8 once decoded, or more than
    /// [`MAX_CALLBACK_BYTES`] is [`TokenError::MalformedRequest`].
    pub fn parse(raw: &[u8]) -> Result<Self, TokenError> {
        if raw.len() > MAX_CALLBACK_BYTES {
            return Err(TokenError::malformed("the request is too large"));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for piece in raw.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let mut kv = piece.splitn(2, |b| *b == b'=');
            let name = decode_component(kv.next().unwrap_or_default())?;
            let value = decode_component(kv.next().unwrap_or_default())?;
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(TokenError::malformed(format!(
                    "parameter `{}` given more than once",
                    name.chars().take(40).collect::<String>()
                )));
            }
            pairs.push((name, value));
        }
        Ok(Self { pairs })
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Builds params from pairs (for strategies that receive JSON, and for tests).
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, TokenError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut out = Self::default();
        for (k, v) in pairs {
            let k = k.into();
            if out.get(&k).is_some() {
                return Err(TokenError::malformed(format!(
                    "parameter `{k}` given more than once"
                )));
            }
            out.pairs.push((k, v.into()));
        }
        Ok(out)
    }
}

fn decode_component(raw: &[u8]) -> Result<String, TokenError> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&plus_as_space).collect();
    String::from_utf8(bytes).map_err(|_| TokenError::malformed("a parameter is not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{any, prop_assert_eq, prop_oneof, proptest, Just};
    use proptest::strategy::Strategy as _;

    fn pending(state: &str, handback: &str) -> Option<PendingLogin> {
        Some(PendingLogin {
            state: state.into(),
            handback: handback.into(),
            created: 0,
            return_to: None,
        })
    }

    fn proof<'a>(state: Option<&'a str>, handback: Option<&'a str>) -> StateProof<'a> {
        StateProof { state, handback }
    }

    #[test]
    fn the_proof_is_the_state_or_the_handback_of_this_login() {
        let ok = |p| check_proof(pending("S", "H"), p).map(|p| p.state);
        assert_eq!(ok(proof(Some("S"), None)), Ok("S".into()));
        assert_eq!(ok(proof(None, Some("H"))), Ok("S".into()));
        assert_eq!(ok(proof(Some("S"), Some("wrong"))), Ok("S".into()));
        assert_eq!(ok(proof(Some("H"), None)), Err(TokenError::StateMismatch));
        assert_eq!(ok(proof(Some("S"), Some("H"))), Ok("S".into()));
        assert_eq!(
            ok(proof(None, Some("S"))),
            Err(TokenError::HandbackMismatch)
        );
        assert_eq!(ok(proof(None, Some(""))), Err(TokenError::HandbackMismatch));
        assert_eq!(ok(proof(Some(""), None)), Err(TokenError::MissingState));
        assert_eq!(ok(proof(None, None)), Err(TokenError::MissingState));
        // No login in the session.
        assert_eq!(
            check_proof(None, proof(Some("S"), None)).map(|p| p.state),
            Err(TokenError::StateMismatch)
        );
        assert_eq!(
            check_proof(None, proof(None, Some("H"))).map(|p| p.state),
            Err(TokenError::HandbackMismatch)
        );
        // A login stored before hand-backs existed has none: no hand-back matches it.
        assert_eq!(
            check_proof(pending("S", ""), proof(None, Some(""))).map(|p| p.state),
            Err(TokenError::HandbackMismatch)
        );
    }

    #[test]
    fn return_to_takes_same_site_paths_only() {
        for good in [
            "/",
            "/library",
            "/a/b?c=d#e",
            "/after%3Fx%3D1",
            "/%2F%2Fevil",
        ] {
            assert_eq!(safe_return_to(good).as_deref(), Some(good), "{good}");
        }
        for bad in [
            "",
            "library",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil",
            "https://evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            " /x",
            "javascript:alert(1)",
            "/a\\b",
        ] {
            assert_eq!(safe_return_to(bad), None, "{bad:?}");
        }
    }

    /// Strings made of what open redirects are made of.
    fn tricky() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("/"),
                Just("\\"),
                Just("."),
                Just(":"),
                Just("@"),
                Just("%"),
                Just("?"),
                Just("#"),
                Just("\t"),
                Just("\n"),
                Just("\r"),
                Just(" "),
                Just("%2f"),
                Just("%5c"),
                Just("evil.example"),
                Just("http"),
                Just("a"),
                Just("\u{0}"),
                Just("\u{3002}"),
                Just("\u{ff0f}"),
                Just("%09"),
                Just("//"),
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn an_accepted_return_to_never_leaves_the_site(value in tricky()) {
            if let Some(accepted) = safe_return_to(&value) {
                prop_assert_eq!(&accepted, &value);
                for base in ["https://app.example/", "https://app.example/deep/page?q=1#f", "http://127.0.0.1:8080/auth/x"] {
                    let base = url::Url::parse(base).unwrap();
                    let resolved = base.join(&value).unwrap();
                    prop_assert_eq!(resolved.origin(), base.origin(), "{:?} left {}", value, base);
                }
            }
        }

        #[test]
        fn return_to_never_panics(value in ".{0,64}") {
            let _ = safe_return_to(&value);
        }

        #[test]
        fn the_callback_parser_never_panics_and_keeps_names_unique(raw in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(params) = CallbackParams::parse(&raw) {
                let mut names: Vec<&str> = params.pairs.iter().map(|(n, _)| n.as_str()).collect();
                let count = names.len();
                names.sort_unstable();
                names.dedup();
                prop_assert_eq!(names.len(), count);
            }
        }

        #[test]
        fn the_callback_parser_reads_back_what_a_form_encodes(
            pairs in proptest::collection::btree_map("[a-z_]{1,12}", "\\PC{0,40}", 0..6)
        ) {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter())
                .finish();
            let params = CallbackParams::parse(body.as_bytes()).unwrap();
            for (name, value) in &pairs {
                prop_assert_eq!(params.get(name), Some(value.as_str()));
            }
        }
    }
}
