//! Keeping signed-out users out, for any strategy: an extractor for handlers
//! ([`SignedIn`]), a middleware for scopes ([`RequireSignIn`]), and the re-login when a
//! credential reaches its end.
//!
use futures_util::future::LocalBoxFuture;
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::Duration;

use actix_session::{Session, SessionExt};
use actix_web::body::EitherBody;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::accounts::{from_millis, Standing};
use crate::respond;
use crate::strategy::{Authenticator, Strategy};

/// Why a guarded request was refused. Answers as the table on [`SignedIn`] says.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// No identity in the session.
    #[error("sign-in required")]
    Unauthenticated {
        /// Where a browser is sent.
        login_url: String,
        /// Whether the client is a browser.
        html: bool,
        /// The strategy's name (the `WWW-Authenticate` realm).
        realm: String,
    },
    /// The identity's credential reached its end or was invalidated.
    #[error("your connection has ended; please sign in again")]
    ReauthenticationRequired {
        /// When it ended.
        expired_at: OffsetDateTime,
        /// Where a browser is sent (with `prompt=login`).
        login_url: String,
        /// Whether the client is a browser.
        html: bool,
        /// The strategy's name (the `WWW-Authenticate` realm).
        realm: String,
    },
    /// The guard's strategy is not mounted in this app (a programming error).
    #[error("the strategy guarding this route is not mounted: call App::configure(auth.mount(\"/auth/…\"))")]
    NotMounted,
    /// The account store could not be asked whether the session was signed out (`503`): the
    /// guard fails closed.
    #[error(transparent)]
    Unavailable(#[from] crate::accounts::AccountsError),
}

impl ResponseError for GuardError {
    fn status_code(&self) -> StatusCode {
        match self {
            GuardError::Unauthenticated { html: true, .. }
            | GuardError::ReauthenticationRequired { html: true, .. } => StatusCode::SEE_OTHER,
            GuardError::Unauthenticated { .. } | GuardError::ReauthenticationRequired { .. } => {
                StatusCode::UNAUTHORIZED
            }
            GuardError::NotMounted => StatusCode::INTERNAL_SERVER_ERROR,
            GuardError::Unavailable(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let challenge = |realm: &str, error: Option<&str>| {
            let scheme = scheme_of(realm);
            let value = match error {
                Some(error) => format!("{scheme} realm=\"{realm}\", error=\"{error}\""),
                None => format!("{scheme} realm=\"{realm}\""),
            };
            HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("Session"))
        };
        match self {
            GuardError::Unauthenticated {
                login_url,
                html: true,
                ..
            }
            | GuardError::ReauthenticationRequired {
                login_url,
                html: true,
                ..
            } => respond::see_other(login_url),
            GuardError::Unauthenticated {
                realm, login_url, ..
            } => {
                let mut builder = HttpResponse::Unauthorized();
                builder.insert_header((header::WWW_AUTHENTICATE, challenge(realm, None)));
                respond::error_json(
                    builder,
                    "unauthenticated",
                    &[("strategy", realm), ("login_url", login_url)],
                )
            }
            GuardError::ReauthenticationRequired {
                expired_at,
                realm,
                login_url,
                ..
            } => {
                let mut builder = HttpResponse::Unauthorized();
                builder.insert_header((
                    header::WWW_AUTHENTICATE,
                    challenge(realm, Some("reauthentication_required")),
                ));
                respond::error_json(
                    builder,
                    "reauthentication_required",
                    &[
                        (
                            "expired_at",
                            &expired_at.format(&Rfc3339).unwrap_or_default(),
                        ),
                        ("strategy", realm),
                        ("login_url", login_url),
                    ],
                )
            }
            GuardError::NotMounted => {
                tracing::error!("{self}");
                HttpResponse::InternalServerError().finish()
            }
            GuardError::Unavailable(e) => e.error_response(),
        }
    }
}

/// The `WWW-Authenticate` scheme for a strategy name: `apple-music` → `AppleMusic`.
fn scheme_of(realm: &str) -> String {
    realm
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or(String::new(), |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

fn login_url<S: Strategy>(auth: &Authenticator<S>, req: &HttpRequest, prompt: bool) -> String {
    let return_to = match req.uri().path_and_query() {
        Some(pq) => pq.as_str().to_owned(),
        None => req.path().to_owned(),
    };
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if prompt {
        query.append_pair("prompt", "login");
    }
    query.append_pair("return_to", &return_to);
    format!("{}?{}", auth.login_path(), query.finish())
}

/// Checks the session of `req`; answers the identity or the refusal.
type Checked<S> = (
    <S as Strategy>::Identity,
    Session,
    web::Data<Authenticator<S>>,
);

/// The identity [`RequireSignIn<S>`] checked for this request, for the extractors inside its
/// scope (keyed by the strategy, so two strategies with the same identity type never mix).
struct Guarded<S: Strategy>(S::Identity);

async fn check<S: Strategy>(req: &HttpRequest) -> Result<Checked<S>, GuardError> {
    let auth = req
        .app_data::<web::Data<Authenticator<S>>>()
        .cloned()
        .ok_or(GuardError::NotMounted)?;
    let session = req.get_session();
    // Inside a guarded scope the middleware has read and checked it already.
    if let Some(Guarded(identity)) = req.extensions().get::<Guarded<S>>() {
        return Ok((identity.clone(), session, auth));
    }
    let mut relogin_mark = None;
    if let Some(accounts) = auth.account_store() {
        match accounts.standing(&session).await? {
            Standing::NoAccount => {}
            Standing::SignedOut => {
                // Signed out everywhere: cleared, and answered as a visitor who never signed in.
                session.purge();
                return Err(refusal(&auth, req, None));
            }
            Standing::Active { record, marks } => {
                relogin_mark = marks.relogin_of(auth.strategy().name(), record.stamp);
                accounts.seen(&record);
            }
        }
    }
    let now = auth.flow_options().now();
    let ended_at = match auth.stored_identity(&session) {
        Some(_) if relogin_mark.is_some() => {
            let at = from_millis(relogin_mark.unwrap_or_default());
            auth.mark_reauthentication(&session, at);
            Some(at)
        }
        Some(identity) => match auth.strategy().identity_expires_at(&identity) {
            Some(end) if now >= end => {
                auth.mark_reauthentication(&session, end);
                Some(end)
            }
            _ => return Ok((identity, session, auth)),
        },
        None => auth.reauthentication_mark(&session),
    };
    Err(refusal(&auth, req, ended_at))
}

/// The refusal for a request without a usable identity: re-login when its identity ended at
/// `ended_at`, else sign-in.
fn refusal<S: Strategy>(
    auth: &Authenticator<S>,
    req: &HttpRequest,
    ended_at: Option<OffsetDateTime>,
) -> GuardError {
    // Only refusals need to know who is asking and where to send them.
    let html = respond::wants_html(req);
    let realm = auth.strategy().name().to_owned();
    match ended_at {
        Some(expired_at) => GuardError::ReauthenticationRequired {
            expired_at,
            login_url: login_url(auth, req, true),
            html,
            realm,
        },
        None => GuardError::Unauthenticated {
            login_url: login_url(auth, req, false),
            html,
            realm,
        },
    }
}

/// The user signed in with strategy `S`, for handlers:
/// `async fn me(user: SignedIn<MyStrategy>) -> …` (for Apple Music,
/// [`AppleMusicUser`](crate::AppleMusicUser)).
///
/// `U` is the app's own user value, as the sign-in hook answered it (`()` without a hook).
/// Use `Option<SignedIn<S>>` on pages that work signed in or out, and
/// `Result<SignedIn<S>, GuardError>` to tell "signed out" from "re-login needed".
///
/// The extractor and [`RequireSignIn`] answer the same way when the request has no usable identity:
///
/// | situation | browser (`Accept` lists `text/html`) | any other client |
/// | --- | --- | --- |
/// | not signed in | `303` to `…/login?return_to=<path and query>` | `401 {"error": "unauthenticated", "strategy", "login_url"}` + `WWW-Authenticate` |
/// | credential past its end, or invalidated | `303` to `…/login?prompt=login&return_to=…` | `401 {"error": "reauthentication_required", "expired_at", "strategy", "login_url"}` |
///
/// `strategy` is the strategy's name (`apple-music`) and `login_url` where a single-page app
/// sends the browser to sign in (with `prompt=login` for a re-login), back to this request's
/// path.
///
/// A tampered, foreign or unreadable session cookie counts as "not signed in"; an identity
/// written by another version of the app counts as "re-login".
pub struct SignedIn<S: Strategy, U = ()> {
    identity: S::Identity,
    user: Option<U>,
    session: Session,
    auth: web::Data<Authenticator<S>>,
    request: HttpRequest,
}

impl<S: Strategy, U> std::fmt::Debug for SignedIn<S, U>
where
    S::Identity: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl<S: Strategy, U> SignedIn<S, U> {
    /// The identity.
    pub fn identity(&self) -> &S::Identity {
        &self.identity
    }

    /// The app's user value from the sign-in hook, if there was one.
    pub fn user(&self) -> Option<&U> {
        self.user.as_ref()
    }

    /// The authenticator that signed this user in.
    pub fn authenticator(&self) -> &Authenticator<S> {
        &self.auth
    }

    /// When the credential ends, if the strategy knows.
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        self.auth.strategy().identity_expires_at(&self.identity)
    }

    /// Time left before the credential ends (`None` when the strategy does not know).
    pub fn time_left(&self) -> Option<Duration> {
        let left = self.expires_at()? - self.auth.flow_options().now();
        Some(left.try_into().unwrap_or(Duration::ZERO))
    }

    /// Marks this identity as no longer valid, e.g. after the provider refused its
    /// credential. The next guarded request goes through re-login with `prompt=login`; the
    /// app's user value stays for the re-login's hook.
    pub fn invalidate(&self) {
        let now = self.auth.flow_options().now();
        self.auth.mark_reauthentication(&self.session, now);
    }

    /// Marks this identity as no longer valid here and in every other session of its account
    /// (on every instance that shares the [`Accounts`](crate::accounts::Accounts) store), e.g.
    /// after Apple answered `403` for the music user token. Without an account, as
    /// [`invalidate`](Self::invalidate).
    pub async fn invalidate_everywhere(&self) -> Result<(), crate::accounts::AccountsError> {
        self.invalidate();
        let record = crate::accounts::Accounts::record(&self.session);
        if let (Some(accounts), Some(record)) = (self.auth.account_store(), record) {
            accounts
                .require_relogin(&record.account, self.auth.strategy().name())
                .await?;
        }
        Ok(())
    }

    /// The account this session is signed in to, when the app keeps
    /// [`Accounts`](crate::accounts::Accounts).
    pub fn account_id(&self) -> Option<String> {
        crate::accounts::Accounts::record(&self.session).map(|r| r.account)
    }

    /// Signs this user out of this strategy ([`Authenticator::forget`]): the identity, the
    /// app's user value and any re-login mark go; other strategies and the app's own session
    /// keys stay. (`POST …/logout` clears the whole session.)
    pub fn sign_out(self) {
        self.auth.forget(&self.session);
    }

    /// The login URL that brings the user back to this request's page, with `prompt=login`
    /// when `relogin`.
    pub fn login_url(&self, relogin: bool) -> String {
        login_url(&self.auth, &self.request, relogin)
    }

    /// The request this user came with.
    pub fn request(&self) -> &HttpRequest {
        &self.request
    }
}

/// Signing out from code that holds only the request: `req.sign_out::<AppleMusicStrategy>()`
/// does what [`SignedIn::sign_out`] does.
pub trait SignOutExt {
    /// Signs strategy `S` out of this request's session; `false` when `S` is not mounted.
    fn sign_out<S: Strategy>(&self) -> bool;
}

impl SignOutExt for HttpRequest {
    fn sign_out<S: Strategy>(&self) -> bool {
        match self.app_data::<web::Data<Authenticator<S>>>() {
            Some(auth) => {
                auth.forget(&self.get_session());
                true
            }
            None => false,
        }
    }
}

/// Where a request stands with strategy `S`, for pages that work in every case (a home page
/// with "Sign in" or "Reconnect"): never refuses the request.
#[derive(Debug)]
#[non_exhaustive]
pub enum SignInState<S: Strategy, U = ()>
where
    S::Identity: std::fmt::Debug,
{
    /// Signed in.
    SignedIn(SignedIn<S, U>),
    /// Not signed in: send the user to `login_url` to sign in.
    SignedOut {
        /// The login URL, back to this page.
        login_url: String,
    },
    /// Was signed in, but the credential ended or was invalidated: `login_url` asks again
    /// (`prompt=login`).
    ReloginNeeded {
        /// When it ended.
        ended_at: OffsetDateTime,
        /// The login URL with `prompt=login`, back to this page.
        login_url: String,
    },
}

impl<S: Strategy, U: DeserializeOwned + 'static> FromRequest for SignInState<S, U>
where
    S::Identity: std::fmt::Debug,
{
    type Error = GuardError;
    type Future = LocalBoxFuture<'static, Result<Self, GuardError>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let signed_in = SignedIn::<S, U>::from_request(req, payload);
        Box::pin(async move {
            match signed_in.await {
                Ok(user) => Ok(SignInState::SignedIn(user)),
                Err(GuardError::Unauthenticated { login_url, .. }) => {
                    Ok(SignInState::SignedOut { login_url })
                }
                Err(GuardError::ReauthenticationRequired {
                    expired_at,
                    login_url,
                    ..
                }) => Ok(SignInState::ReloginNeeded {
                    ended_at: expired_at,
                    login_url,
                }),
                Err(other) => Err(other),
            }
        })
    }
}

impl<S: Strategy, U: DeserializeOwned + 'static> FromRequest for SignedIn<S, U> {
    type Error = GuardError;
    type Future = LocalBoxFuture<'static, Result<Self, GuardError>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let request = req.clone();
        Box::pin(async move {
            let (identity, session, auth) = check::<S>(&request).await?;
            Ok(SignedIn {
                user: read_user::<S, U>(&auth, &session),
                identity,
                session,
                auth,
                request,
            })
        })
    }
}

/// The app's user value as `U`; a stored value that does not read as `U` (often: a handler
/// taking `SignedIn<S>`, so `U = ()`, beside a hook that stores a user) is logged once.
fn read_user<S: Strategy, U: DeserializeOwned + 'static>(
    auth: &Authenticator<S>,
    session: &Session,
) -> Option<U> {
    match auth.stored_user_result::<U>(session) {
        Ok(user) => user,
        Err(()) => {
            if auth.first_unreadable_user() {
                tracing::warn!(
                    "the app's user value in the session does not read as `{}`: take `SignedIn<_, YourUser>` (or `AppleMusicUser<YourUser>`) to read it (logged once)",
                    std::any::type_name::<U>()
                );
            }
            None
        }
    }
}

/// Guards a whole scope for strategy `S`:
/// `web::scope("/library").wrap(RequireSignIn::<MyStrategy>::new())` (for Apple Music,
/// [`RequireAppleMusic`](crate::RequireAppleMusic)). Answers like [`SignedIn`]; the identity
/// is also put in the request's extensions, and handlers inside may still take the
/// extractor.
pub struct RequireSignIn<S>(PhantomData<fn() -> S>);

impl<S> std::fmt::Debug for RequireSignIn<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequireSignIn")
    }
}

impl<S> Clone for RequireSignIn<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for RequireSignIn<S> {}

impl<S> Default for RequireSignIn<S> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<S> RequireSignIn<S> {
    /// The guard.
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<St, S, B> Transform<St, ServiceRequest> for RequireSignIn<S>
where
    S: Strategy,
    St: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RequireSignInService<St, S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: St) -> Self::Future {
        std::future::ready(Ok(RequireSignInService {
            service: Rc::new(service),
            strategy: PhantomData,
        }))
    }
}

/// The service [`RequireSignIn`] wraps around a scope (an implementation detail, named only
/// by `Transform`).
#[doc(hidden)]
pub struct RequireSignInService<St, S> {
    service: Rc<St>,
    strategy: PhantomData<fn() -> S>,
}

impl<St, S, B> Service<ServiceRequest> for RequireSignInService<St, S>
where
    S: Strategy,
    St: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future =
        futures_util::future::LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        Box::pin(async move {
            match check::<S>(req.request()).await {
                Ok((identity, _, _)) => {
                    req.extensions_mut().insert(Guarded::<S>(identity.clone()));
                    req.extensions_mut().insert(identity);
                    Ok(service.call(req).await?.map_into_left_body())
                }
                Err(e) => {
                    let response = e.error_response();
                    Ok(req.into_response(response).map_into_right_body())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_challenge_scheme_is_the_strategy_name_in_camel_case() {
        assert_eq!(super::scheme_of("apple-music"), "AppleMusic");
        assert_eq!(super::scheme_of("plain"), "Plain");
        assert_eq!(super::scheme_of("a_b-c"), "ABC");
    }
}

#[cfg(test)]
mod status_tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_status() {
        let unauthenticated = |html| GuardError::Unauthenticated {
            login_url: "/auth/x/login".into(),
            html,
            realm: "x".into(),
        };
        let ended = |html| GuardError::ReauthenticationRequired {
            expired_at: OffsetDateTime::UNIX_EPOCH,
            login_url: "/auth/x/login?prompt=login".into(),
            html,
            realm: "x".into(),
        };
        assert_eq!(unauthenticated(true).status_code(), StatusCode::SEE_OTHER);
        assert_eq!(
            unauthenticated(false).status_code(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(ended(true).status_code(), StatusCode::SEE_OTHER);
        assert_eq!(ended(false).status_code(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            GuardError::NotMounted.status_code(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let unavailable = GuardError::Unavailable(crate::accounts::AccountsError::new("down"));
        assert_eq!(unavailable.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        // The answers agree with the statuses.
        for error in [unauthenticated(false), ended(true), unavailable] {
            assert_eq!(error.error_response().status(), error.status_code());
        }
    }
}
