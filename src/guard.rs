//! Keeping signed-out users out: an extractor for handlers, a middleware for scopes, and the
//! re-login when a music user token reaches its end.
//!
//! Both answer the same way when the request has no usable identity:
//!
//! | situation | browser (`Accept` lists `text/html`) | any other client |
//! | --- | --- | --- |
//! | not signed in | `303` to `…/login?return_to=<path and query>` | `401 {"error": "unauthenticated"}` + `WWW-Authenticate` |
//! | token past its end, or invalidated | `303` to `…/login?prompt=login&return_to=…` | `401 {"error": "reauthentication_required", "expired_at": …}` |
//!
//! A tampered, foreign or unreadable session cookie counts as "not signed in".

use std::future::{ready, Ready};
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

use crate::apple_music::{AppleMusicIdentity, AppleMusicStrategy};
use crate::response;
use crate::strategy::Authenticator;

type AppleMusicAuth = Authenticator<AppleMusicStrategy>;

/// Why a guarded request was refused. Answers as the table in the [module docs](self) says.
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
    },
    /// The identity's music user token reached its end or was invalidated.
    #[error("your Apple Music connection has ended; please sign in again")]
    ReauthenticationRequired {
        /// When it ended.
        expired_at: OffsetDateTime,
        /// Where a browser is sent (with `prompt=login`).
        login_url: String,
        /// Whether the client is a browser.
        html: bool,
    },
    /// The Apple Music strategy is not mounted in this app (a programming error).
    #[error("the Apple Music strategy is not mounted: call App::configure(auth.mount(\"/auth/apple-music\"))")]
    NotMounted,
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
        }
    }

    fn error_response(&self) -> HttpResponse {
        const CHALLENGE: &str = "AppleMusic realm=\"apple-music\"";
        match self {
            GuardError::Unauthenticated {
                login_url,
                html: true,
            }
            | GuardError::ReauthenticationRequired {
                login_url,
                html: true,
                ..
            } => response::see_other(login_url),
            GuardError::Unauthenticated { .. } => HttpResponse::Unauthorized()
                .insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(CHALLENGE),
                ))
                .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
                .json(serde_json::json!({"error": "unauthenticated"})),
            GuardError::ReauthenticationRequired { expired_at, .. } => HttpResponse::Unauthorized()
                .insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "AppleMusic realm=\"apple-music\", error=\"reauthentication_required\"",
                    ),
                ))
                .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
                .json(serde_json::json!({
                    "error": "reauthentication_required",
                    "expired_at": expired_at.format(&Rfc3339).unwrap_or_default(),
                })),
            GuardError::NotMounted => {
                log::error!("{self}");
                HttpResponse::InternalServerError().finish()
            }
        }
    }
}

fn login_url(auth: &AppleMusicAuth, req: &HttpRequest, prompt: bool) -> String {
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
fn check(
    req: &HttpRequest,
) -> Result<(AppleMusicIdentity, Session, web::Data<AppleMusicAuth>), GuardError> {
    let auth = req
        .app_data::<web::Data<AppleMusicAuth>>()
        .cloned()
        .ok_or(GuardError::NotMounted)?;
    let session = req.get_session();
    let now = auth.strategy().config().flow.clock.now();
    let ended_at = match auth.stored_identity(&session) {
        Some(identity) if !identity.is_expired_at(now) => return Ok((identity, session, auth)),
        Some(identity) => {
            auth.mark_reauthentication(&session, identity.expires_at());
            Some(identity.expires_at())
        }
        None => auth.reauthentication_mark(&session),
    };
    // Only refusals need to know who is asking and where to send them.
    let html = response::wants_html(req);
    Err(match ended_at {
        Some(expired_at) => GuardError::ReauthenticationRequired {
            expired_at,
            login_url: login_url(&auth, req, true),
            html,
        },
        None => GuardError::Unauthenticated {
            login_url: login_url(&auth, req, false),
            html,
        },
    })
}

/// The signed-in Apple Music user, for handlers: `async fn me(user: AppleMusicUser) -> …`.
///
/// `U` is the app's own user value, as the verify hook answered it (`()` without a hook).
/// Use `Option<AppleMusicUser>` on pages that work signed in or out.
pub struct AppleMusicUser<U = ()> {
    identity: AppleMusicIdentity,
    user: Option<U>,
    session: Session,
    auth: web::Data<AppleMusicAuth>,
}

impl<U> std::fmt::Debug for AppleMusicUser<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppleMusicUser")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl<U: DeserializeOwned> AppleMusicUser<U> {
    /// The identity (music user token, times, restriction).
    pub fn identity(&self) -> &AppleMusicIdentity {
        &self.identity
    }

    /// The app's user value from the verify hook, if there was one.
    pub fn user(&self) -> Option<&U> {
        self.user.as_ref()
    }

    /// Time left before the music user token reaches its end.
    pub fn time_left(&self) -> Duration {
        let left = self.identity.expires_at() - self.auth.strategy().config().flow.clock.now();
        left.try_into().unwrap_or(Duration::ZERO)
    }

    /// Whether the end is within the warning window (default 14 days): time to tell the user
    /// "your Apple Music connection expires in N days".
    pub fn expires_soon(&self) -> bool {
        self.time_left() <= self.auth.strategy().config().expiry_warning
    }
}

impl<U> AppleMusicUser<U> {
    /// Marks this identity as no longer valid, e.g. after Apple answered `403` on a
    /// `/v1/me/…` call (the token was revoked or ended early). The next guarded request goes
    /// through re-login with `prompt=login`.
    ///
    /// ```no_run
    /// # use actix_apple_music::AppleMusicUser;
    /// # async fn call_apple(_: &AppleMusicUser) -> u16 { 403 }
    /// async fn library(user: AppleMusicUser) -> actix_web::HttpResponse {
    ///     let status = call_apple(&user).await; // GET /v1/me/library/songs with user's headers
    ///     if status == 403 {
    ///         user.invalidate();
    ///         return actix_web::HttpResponse::SeeOther()
    ///             .insert_header(("Location", "/library"))
    ///             .finish();
    ///     }
    ///     actix_web::HttpResponse::Ok().finish()
    /// }
    /// ```
    pub fn invalidate(&self) {
        let now = self.auth.strategy().config().flow.clock.now();
        self.auth.mark_reauthentication(&self.session, now);
    }

    /// Sends an Apple Music API request as this user (developer token and music user
    /// token), through the strategy's [`AppleMusicApi`](crate::api::AppleMusicApi). When
    /// Apple answers `403` to a `/v1/me/…` request the token is dead: the identity is
    /// [invalidated](Self::invalidate) before the error is answered, so the next guarded
    /// request goes through re-login.
    ///
    /// ```no_run
    /// use actix_apple_music::api::{ApiError, ApiRequest};
    /// use actix_apple_music::AppleMusicUser;
    ///
    /// async fn songs(user: AppleMusicUser) -> Result<actix_web::HttpResponse, ApiError> {
    ///     let answer = user.api(ApiRequest::get("/v1/me/library/songs?limit=10")).await?;
    ///     Ok(actix_web::HttpResponse::Ok().json(answer.json::<serde_json::Value>()?))
    /// }
    /// ```
    pub async fn api(
        &self,
        request: crate::api::ApiRequest,
    ) -> Result<crate::api::ApiResponse, crate::api::ApiError> {
        let personal = request.is_personal();
        let result = self
            .auth
            .strategy()
            .api()
            .send(request, Some(self.identity.music_user_token()))
            .await;
        if personal && matches!(result, Err(crate::api::ApiError::UserTokenRejected)) {
            log::info!("Apple Music refused a user's token: the identity is invalidated");
            self.invalidate();
        }
        result
    }
}

impl<U: DeserializeOwned + 'static> FromRequest for AppleMusicUser<U> {
    type Error = GuardError;
    type Future = Ready<Result<Self, GuardError>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        ready(check(req).map(|(identity, session, auth)| AppleMusicUser {
            user: auth.stored_user::<U>(&session),
            identity,
            session,
            auth,
        }))
    }
}

/// Guards a whole scope: `web::scope("/library").wrap(RequireAppleMusic::new())`. Answers
/// like [`AppleMusicUser`]; handlers inside may still take the extractor for the identity.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequireAppleMusic;

impl RequireAppleMusic {
    /// The guard.
    pub fn new() -> Self {
        Self
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireAppleMusic
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RequireAppleMusicService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireAppleMusicService {
            service: Rc::new(service),
        }))
    }
}

/// The service [`RequireAppleMusic`] wraps around a scope.
pub struct RequireAppleMusicService<S> {
    service: Rc<S>,
}

impl<S, B> Service<ServiceRequest> for RequireAppleMusicService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future =
        futures_util::future::LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        match check(req.request()) {
            Ok((identity, _, _)) => {
                req.extensions_mut().insert(identity);
                let fut = self.service.call(req);
                Box::pin(async move { Ok(fut.await?.map_into_left_body()) })
            }
            Err(e) => {
                let response = e.error_response();
                Box::pin(async move { Ok(req.into_response(response).map_into_right_body()) })
            }
        }
    }
}
