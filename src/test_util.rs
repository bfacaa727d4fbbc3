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
    match auth.sign_in(&req.get_session(), &identity, user.as_ref()) {
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
