//! Sign users in with Apple Music in actix-web apps.
//!
//! Apple Music has no OAuth server: an app gets a user's **music user token** only by running
//! MusicKit's authorization in the user's browser with a **developer token**, an ES256 JWT the
//! app signs with its MusicKit `.p8` key. This crate signs and rotates those developer tokens,
//! mounts login and callback routes that run the authorization, and keeps the resulting
//! identity in an actix-session session. There is no refresh token: when the music user token
//! ends (about 180 days) the user signs in again.
//!
//! # Developer tokens
//!
//! ```
//! use actix_apple_music::developer_token::{DeveloperTokenConfig, SigningKey};
//! use std::time::Duration;
//!
//! // In an app: SigningKey::from_pem_file("AuthKey_ABC123DEFG.p8")? or SigningKey::from_env()?
//! let key = SigningKey::generate();
//! let signer = DeveloperTokenConfig::apple_music("TEAMID1234", "ABC123DEFG")
//!     .lifetime(Duration::from_secs(30 * 86_400))
//!     .build(key)?;
//! let token = signer.token();
//! assert!(signer.verify(token.as_str()).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Mounting the strategy
//!
//! ```
//! use actix_apple_music::developer_token::SigningKey;
//! use actix_apple_music::{AppleMusicConfig, AppleMusicStrategy, Authenticator};
//! use actix_session::{storage::CookieSessionStore, SessionMiddleware};
//! use actix_web::{cookie::Key, App};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // In an app: AppleMusicConfig::from_env()? reads APPLE_MUSIC_TEAM_ID, APPLE_MUSIC_KEY_ID, …
//! let config = AppleMusicConfig::new("TEAMID1234", "ABC123DEFG", SigningKey::generate())
//!     .app_name("My Music App")
//!     .success_target("/library");
//! let auth = Authenticator::new(AppleMusicStrategy::new(config)?);
//! let key = Key::generate();
//! let app = App::new()
//!     .wrap(SessionMiddleware::new(CookieSessionStore::default(), key))
//!     .configure(auth.mount("/auth/apple-music"));
//! # drop(app); Ok(()) }
//! ```
//!
//! That serves `GET /auth/apple-music/login`, `POST /auth/apple-music/callback` and
//! `POST /auth/apple-music/logout` (and `GET /auth/apple-music/return` with the `redirect`
//! login page).
//!
//! # Writing a strategy
//!
//! A [`Strategy`] is a login page, a callback that turns parameters into an identity, and an
//! error type implementing [`StrategyError`]. The [`Authenticator`] does the rest (state,
//! the app's hook, the session, the answers), and [`SignedIn`] / [`RequireSignIn`] guard routes
//! for it:
//!
//! ```
//! use std::future::{ready, Future};
//!
//! use actix_apple_music::{
//!     Authenticator, CallbackParams, FailureKind, LoginRequest, SignedIn, Strategy, StrategyError,
//! };
//! use actix_web::{web, App, HttpRequest, HttpResponse};
//!
//! /// A stand-in provider: the login page is a form, the callback takes a name.
//! struct GuestStrategy;
//!
//! /// The strategy's own failures, in the crate's families.
//! #[derive(Debug, thiserror::Error)]
//! enum GuestError {
//!     #[error("a guest needs a name")]
//!     NoName,
//! }
//!
//! impl StrategyError for GuestError {
//!     fn kind(&self) -> FailureKind {
//!         FailureKind::Token // answered 400 token_error
//!     }
//!     fn reason(&self) -> &str {
//!         "no_name"
//!     }
//! }
//!
//! impl Strategy for GuestStrategy {
//!     type Identity = String; // kept in the session
//!     type Error = GuestError;
//!
//!     fn name(&self) -> &str {
//!         "guest" // also the session namespace: "guest.id", …
//!     }
//!
//!     fn login_page(&self, _req: &HttpRequest, login: &LoginRequest<'_>) -> HttpResponse {
//!         // The state goes back with the callback; the framework checks and spends it.
//!         HttpResponse::Ok().content_type("text/html").body(format!(
//!             r#"<form method="post" action="{}"><input name="name">
//!                <input type="hidden" name="state" value="{}"><button>Go</button></form>"#,
//!             login.callback_path, login.state
//!         ))
//!     }
//!
//!     fn callback(
//!         &self,
//!         _req: &HttpRequest,
//!         params: &CallbackParams,
//!     ) -> impl Future<Output = Result<String, GuestError>> {
//!         let name = params.get("name").filter(|n| !n.is_empty()).map(str::to_owned);
//!         ready(name.ok_or(GuestError::NoName))
//!     }
//! }
//!
//! async fn hello(guest: SignedIn<GuestStrategy>) -> String {
//!     format!("hello, {}", guest.identity())
//! }
//!
//! let auth = Authenticator::new(GuestStrategy).options(|o| o.success_target("/hello"));
//! let app = App::new()
//!     // .wrap(SessionMiddleware::new(…))
//!     .configure(auth.mount("/auth/guest"))
//!     .route("/hello", web::get().to(hello));
//! assert_eq!(auth.login_path(), "/auth/guest/login");
//! ```
//!
//! Extra routes of a strategy finish a sign-in with [`Authenticator::finish_sign_in`].
//!
//!
//! # Verifying with Apple
//!
//! Each new music user token is proven with Apple Music API (`GET /v1/me/storefront`) before
//! the user is signed in, and the identity keeps the user's [`Storefront`](apple_music_api::Storefront). Apple's refusals
//! become typed errors; when Apple cannot be asked the sign-in fails closed (`503`) unless the
//! app chooses [`UnavailablePolicy::AcceptUnverified`](apple_music_api::UnavailablePolicy::AcceptUnverified). See [`apple_music_api`] for the outcomes, the
//! developer-token self-check and the request helper
//! [`AppleMusicUser::api`].
//!
//! # Choosing a session store
//!
//! One instance: the session lives in a private cookie. actix-session's cookie store works;
//! [`session_store::CompactCookieStore`] behind [`StoreFailures::around`](session_store::StoreFailures::around) makes the cookie about
//! 130 bytes smaller (a signed-in cookie with a 600-character music user token: under 1 KiB)
//! and still reads the other's cookies. Several instances behind a load balancer: actix-session's Redis store (feature
//! `redis`) through [`session_store`], which makes each session's TTL follow its identity and
//! answers `503` while Redis is down. Every instance needs the same session key.
//!
//! # Security notes
//!
//! - The login state is single-use, expires (10 minutes by default) and is compared in
//!   constant time; it is spent atomically in a [`single_use::StateLedger`] before anything
//!   else (Apple included), so parallel and replayed callbacks fail; the session id is
//!   renewed at sign-in. With the cookie store, renewing cannot revoke a copy of the old
//!   cookie: use a server-side store (Redis) where that matters.
//! - The `redirect` page's return page holds nothing of the session; a return must carry the
//!   login's `handback`, which only the URL given to Apple has (see the
//!   [`AppleMusicStrategy`] docs), so no other site can complete a sign-in with its own token.
//! - `id_token_hint` must be a developer token this app signed and that is still valid.
//! - Callbacks are POST only unless the app switches GET on; bodies must arrive within 10 s.
//! - actix's default `Logger` format (`%r`) prints the query string, which holds the token
//!   on a GET callback. Log with [`SAFE_LOG_FORMAT`] and [`safe_log_path`] instead, which
//!   print the method and path only. The crate's own log lines never hold a token.
//! - Rate-limit the sign-in routes in the app (each callback may cost a call to Apple); the
//!   demo shows one.

#![deny(missing_docs)]

pub mod accounts;
mod apple_id;
mod apple_music;
pub mod audit;
mod clock;
pub mod developer_token;
mod error;
mod guard;
pub mod headers;
pub mod http;
mod respond;
#[cfg(feature = "sandbox")]
pub mod sandbox;
mod secret;
mod session_records;
pub mod session_store;
pub mod single_use;
#[cfg(any(feature = "sandbox", feature = "test-util"))]
mod stand_in;
mod strategy;
#[cfg(feature = "test-util")]
pub mod test_util;

pub use apple_id::{
    env as apple_id_env, AccountDeletionError, AppleIdConfig, AppleIdError, AppleIdIdentity,
    AppleIdNotification, AppleIdStrategy, NotificationKind as AppleIdNotificationKind, PersonName,
    RefreshCheck, Revocation, APPLE_ID_STRATEGY_NAME, DEFAULT_APPLE_ID_LIFETIME,
    NOTIFICATION_MAX_AGE,
};
pub use apple_music::{
    api as apple_music_api, env as apple_music_env, AppleMusicConfig, AppleMusicError,
    AppleMusicIdentity, AppleMusicStrategy, AppleMusicUser, AuthorizationError, LoginPage,
    RequireAppleMusic, TokenError, UpstreamError, DEFAULT_AUTHORIZE_URL, DEFAULT_EXPIRY_WARNING,
    DEFAULT_MAX_USER_TOKEN_LEN, DEFAULT_MUSICKIT_JS_URL, DEFAULT_USER_TOKEN_LIFETIME,
    STRATEGY_NAME,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::ConfigError;
pub use guard::{GuardError, RequireSignIn, SignInState, SignOutExt, SignedIn};
pub use secret::{ClientSecret, MusicUserToken, RefreshToken};
/// The README's examples, compiled as doctests (with the `redis` feature, which one of them
/// needs: `cargo test --doc --all-features`, run by `.ci/run`).
#[cfg(all(doctest, feature = "redis"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use strategy::{
    Authenticator, CallbackParams, FailureKind, FlowError, FlowOptions, LoginRequest, Rejection,
    SignInContext, SignInError, SignedInAt, StateProof, Strategy, StrategyError,
    DEFAULT_BODY_TIMEOUT, DEFAULT_SESSION_MARGIN, DEFAULT_STATE_TTL, MAX_CALLBACK_BYTES,
    MAX_RETRY_AFTER,
};

/// A `Logger` format that never prints a query string (which may hold a token): method and
/// path come from [`safe_log_path`].
///
/// ```
/// use actix_web::middleware::Logger;
/// let logger = Logger::new(actix_apple_music::SAFE_LOG_FORMAT)
///     .custom_request_replace("path", actix_apple_music::safe_log_path);
/// ```
pub const SAFE_LOG_FORMAT: &str = "%a \"%{path}xi\" %s %b %T";

/// The request's method and path without its query string, for [`SAFE_LOG_FORMAT`].
pub fn safe_log_path(req: &actix_web::dev::ServiceRequest) -> String {
    format!("{} {}", req.method(), req.path())
}
