//! Signing a test user in, for apps that test their own guarded routes (feature `test-util`).
//!
//! Add [`routes`] for the strategy to the app under test (next to the mounted strategy), then
//! call [`sign_in`] with an identity of the test's choosing (or [`sign_in_with_user`] with the
//! app's user value too); it answers the session cookie to send with the requests that
//! follow. Works for any [`Strategy`]; the Apple Music one is shown.
//!
//! ```
//! use actix_apple_music::developer_token::SigningKey;
//! use actix_apple_music::{test_util, AppleMusicConfig, AppleMusicIdentity, AppleMusicStrategy,
//!     AppleMusicUser, Authenticator, MusicUserToken};
//! use actix_session::{storage::CookieSessionStore, SessionMiddleware};
//! use actix_web::{cookie::Key, test, web, App, HttpResponse};
//! use std::time::Duration;
//!
//! async fn library(user: AppleMusicUser) -> HttpResponse {
//!     HttpResponse::Ok().body(format!("restricted: {:?}", user.identity().restricted()))
//! }
//!
//! # #[actix_web::main] async fn main() {
//! let config = AppleMusicConfig::new("TEAMID1234", "KEYID56789", SigningKey::generate());
//! let auth = Authenticator::new(AppleMusicStrategy::new(config).unwrap());
//! let app = test::init_service(
//!     App::new()
//!         .wrap(SessionMiddleware::new(CookieSessionStore::default(), Key::generate()))
//!         .configure(auth.mount("/auth/apple-music"))
//!         .configure(test_util::routes::<AppleMusicStrategy>)
//!         .route("/library", web::get().to(library)),
//! )
//! .await;
//!
//! let identity = AppleMusicIdentity::new(
//!     MusicUserToken::new("test-token"),
//!     time::OffsetDateTime::now_utc(),
//!     Duration::from_secs(180 * 86_400),
//!     Some(false),
//! );
//! let cookie = test_util::sign_in::<AppleMusicStrategy>(&app, &identity).await;
//! let req = test::TestRequest::get().uri("/library").cookie(cookie).to_request();
//! assert!(test::call_service(&app, req).await.status().is_success());
//! # }
//! ```

mod apple_id;

pub use apple_id::{log_in_with_apple_id, AppleIdStandIn};

use actix_session::SessionExt;
use actix_web::body::MessageBody;
use actix_web::cookie::Cookie;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, web, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::strategy::{Authenticator, Strategy};

/// The request type of an app made by `actix_web::test::init_service`, as the helpers'
/// bounds name it (actix-http's), so a test can write its own helpers without depending on
/// actix-http.
pub type AppRequest = actix_http::Request;

/// The path of the test-only sign-in route [`routes`] adds for strategy `S`.
pub fn sign_in_path<S: Strategy>() -> String {
    let slug: String = std::any::type_name::<S>()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("/__test/sign-in/{slug}")
}

/// Stores `identity` on `session` as a finished sign-in does, without a login: the session id
/// is renewed, a re-login mark cleared, the app's `user` value kept if given. For an app's own
/// test routes and tools; [`routes`] and [`sign_in`] wrap it for `actix_web::test`.
pub fn sign_in_session<S: Strategy>(
    auth: &Authenticator<S>,
    session: &actix_session::Session,
    identity: &S::Identity,
    user: Option<&serde_json::Value>,
) -> Result<(), crate::FlowError> {
    auth.sign_in(session, identity, user)
}

/// Adds the test-only sign-in route for strategy `S`. Only ever add it to apps under test.
pub fn routes<S: Strategy>(cfg: &mut web::ServiceConfig) {
    cfg.route(&sign_in_path::<S>(), web::post().to(sign_in_route::<S>));
}

#[derive(serde::Deserialize)]
#[serde(bound = "")]
struct SignIn<S: Strategy> {
    identity: S::Identity,
    #[serde(default)]
    user: Option<serde_json::Value>,
}

async fn sign_in_route<S: Strategy>(req: HttpRequest, body: web::Json<SignIn<S>>) -> HttpResponse {
    let Some(auth) = req.app_data::<web::Data<Authenticator<S>>>() else {
        return HttpResponse::InternalServerError().body("mount the strategy first");
    };
    let SignIn { identity, user } = body.into_inner();
    let session = req.get_session();
    match auth
        .store_sign_in(&req, &session, &identity, user.as_ref())
        .await
    {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}

/// Signs `identity` in with strategy `S` through the app's own session middleware and answers
/// the session cookie: `test_util::sign_in::<AppleMusicStrategy>(&app, &identity)`.
pub async fn sign_in<S: Strategy>(
    app: &impl Service<
        AppRequest,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
    identity: &S::Identity,
) -> Cookie<'static> {
    post_sign_in::<S>(app, serde_json::json!({"identity": identity})).await
}

/// Like [`sign_in`], with the app's user value as the sign-in hook would have answered it
/// (what `SignedIn<S, U>::user()` then reads).
pub async fn sign_in_with_user<S: Strategy, U: Serialize>(
    app: &impl Service<
        AppRequest,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
    identity: &S::Identity,
    user: &U,
) -> Cookie<'static> {
    post_sign_in::<S>(app, serde_json::json!({"identity": identity, "user": user})).await
}

async fn post_sign_in<S: Strategy>(
    app: &impl Service<
        AppRequest,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
    body: serde_json::Value,
) -> Cookie<'static> {
    let req = test::TestRequest::post()
        .uri(&sign_in_path::<S>())
        .insert_header(("user-agent", "actix-apple-music test_util"))
        .set_json(body)
        .to_request();
    let resp = test::call_service(app, req).await;
    assert!(
        resp.status().is_success(),
        "test sign-in failed with {}",
        resp.status()
    );
    resp.response()
        .cookies()
        .next()
        .map(|c| c.into_owned())
        .expect("the session middleware set a cookie")
}

/// An in-process stand-in for Apple Music API, for apps under `actix_web::test::init_service`
/// (no port, no network): `AppleMusicConfig::api_stand_in(&stand_in)`. It answers as the
/// sandbox does (one behaviour for both): `GET /v1/test`, `/v1/me/storefront` (the `us`
/// storefront), the library's songs, albums and playlists (`POST` a playlist: `201`), recently
/// played, catalog search and songs, and `404` for anything else, as Apple would. Every music
/// user token is accepted unless marked with [`refuse`](Self::refuse) (`403`) or
/// [`without_subscription`](Self::without_subscription) (`400` with code `40015`); `/v1/me/…`
/// without one is `403`. It counts the calls it answered.
#[derive(Clone, Default)]
pub struct AppleMusicStandIn {
    inner: std::sync::Arc<StandInState>,
}

#[derive(Default)]
struct StandInState {
    refused: std::sync::Mutex<Vec<String>>,
    no_subscription: std::sync::Mutex<Vec<String>>,
    calls: std::sync::Mutex<Vec<String>>,
}

impl std::fmt::Debug for AppleMusicStandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppleMusicStandIn")
            .field("calls", &self.calls().len())
            .finish_non_exhaustive()
    }
}

impl AppleMusicStandIn {
    /// A stand-in that accepts every token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `403` for `music_user_token` from now on (expired or revoked).
    pub fn refuse(&self, music_user_token: &str) -> &Self {
        self.inner
            .refused
            .lock()
            .unwrap()
            .push(music_user_token.to_owned());
        self
    }

    /// Answers `400` with code `40015` (no subscription) for `music_user_token`.
    pub fn without_subscription(&self, music_user_token: &str) -> &Self {
        self.inner
            .no_subscription
            .lock()
            .unwrap()
            .push(music_user_token.to_owned());
        self
    }

    /// The calls answered so far, as `"GET /v1/me/storefront"`.
    pub fn calls(&self) -> Vec<String> {
        self.inner.calls.lock().unwrap().clone()
    }
}

/// The stand-in answers in process: an [`HttpClient`](crate::http::HttpClient) like any other.
impl crate::http::HttpClient for AppleMusicStandIn {
    fn send(
        &self,
        request: crate::http::HttpRequest,
        _: crate::http::Limits,
    ) -> futures_util::future::LocalBoxFuture<
        '_,
        Result<crate::http::HttpResponse, crate::http::HttpError>,
    > {
        use crate::stand_in::{answer, UserToken};
        let state = &self.inner;
        let (method, path) = (request.method().as_str(), request.uri().path());
        state.calls.lock().unwrap().push(format!("{method} {path}"));
        let token = request
            .headers()
            .get("music-user-token")
            .and_then(|v| v.to_str().ok());
        let user_token = match token {
            None => UserToken::Missing,
            Some(t) if state.refused.lock().unwrap().iter().any(|r| r == t) => UserToken::Refused,
            Some(t) if state.no_subscription.lock().unwrap().iter().any(|r| r == t) => {
                UserToken::NoSubscription
            }
            Some(_) => UserToken::Accepted,
        };
        let (status, body) = answer(method, path, user_token);
        let response = oauth2::http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
            .map_err(|e| crate::http::HttpError::NoAnswer(e.to_string()));
        Box::pin(std::future::ready(response))
    }
}

/// What [`log_in_with_apple_music`] and [`log_in_with_apple_id`] ended with.
#[derive(Debug)]
#[non_exhaustive]
pub struct TestLogin {
    /// The callback's status (`303` on success).
    pub status: actix_web::http::StatusCode,
    /// Where the callback sent the browser.
    pub location: Option<String>,
    /// The session cookie to use next (the new one on success).
    pub cookie: Cookie<'static>,
    /// The callback's body (the failure's JSON, or empty).
    pub body: String,
}

/// Drives a whole Apple Music login under `actix_web::test`, as a browser would: `GET
/// {prefix}/login` (with `cookie`, the browser's session so far, if any), then the callback
/// with `music_user_token` and the page's state and developer token. With a
/// [stand-in](AppleMusicStandIn) or `check_with_apple(false)` nothing leaves the process.
pub async fn log_in_with_apple_music(
    app: &impl Service<
        AppRequest,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
    prefix: &str,
    music_user_token: &str,
    cookie: Option<Cookie<'static>>,
) -> TestLogin {
    let prefix = prefix.trim_end_matches('/');
    let mut page = test::TestRequest::get().uri(&format!("{prefix}/login"));
    if let Some(cookie) = &cookie {
        page = page.cookie(cookie.clone());
    }
    let resp = test::call_service(app, page.to_request()).await;
    assert!(
        resp.status().is_success(),
        "the login page answered {}",
        resp.status()
    );
    let cookie = session_cookie(&resp)
        .or(cookie)
        .expect("the login page sets a session");
    let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap_or_default();
    let data = login_page_data(&html);
    let field = |name: &str| data[name].as_str().unwrap_or_default().to_owned();
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("code", music_user_token)
        .append_pair("state", &field("state"))
        .append_pair("id_token_hint", &field("developerToken"))
        .finish();
    let callback = test::TestRequest::post()
        .uri(&format!("{prefix}/callback"))
        .insert_header(("content-type", "application/x-www-form-urlencoded"))
        .insert_header(("accept", "application/json"))
        .cookie(cookie.clone())
        .set_payload(form)
        .to_request();
    let resp = test::call_service(app, callback).await;
    let status = resp.status();
    let location = resp
        .headers()
        .get(actix_web::http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let cookie = session_cookie(&resp).unwrap_or(cookie);
    let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap_or_default();
    TestLogin {
        status,
        location,
        cookie,
        body,
    }
}

fn session_cookie(resp: &ServiceResponse<impl MessageBody>) -> Option<Cookie<'static>> {
    resp.response().cookies().next().map(|c| c.into_owned())
}

/// The login page's JSON data block (`<script type="application/json" id="apple-music-login">`).
pub fn login_page_data(html: &str) -> serde_json::Value {
    let open = r#"<script type="application/json" id="apple-music-login">"#;
    let Some(start) = html.find(open).map(|i| i + open.len()) else {
        return serde_json::Value::Null;
    };
    let end = html[start..]
        .find("</script>")
        .map_or(html.len(), |i| start + i);
    serde_json::from_str(&html[start..end]).unwrap_or(serde_json::Value::Null)
}
