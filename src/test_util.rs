//! Signing a test user in, for apps that test their own guarded routes (feature `test-util`).
//!
//! Add [`routes`] to the app under test (next to the mounted strategy), then call
//! [`sign_in`] with an identity of the test's choosing; it answers the session cookie to send
//! with the requests that follow.
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
//!         .configure(test_util::routes)
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
//! let cookie = test_util::sign_in(&app, &identity).await;
//! let req = test::TestRequest::get().uri("/library").cookie(cookie).to_request();
//! assert!(test::call_service(&app, req).await.status().is_success());
//! # }
//! ```

use actix_session::SessionExt;
use actix_web::body::MessageBody;
use actix_web::cookie::Cookie;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, web, HttpRequest, HttpResponse};

use crate::apple_music::{AppleMusicIdentity, AppleMusicStrategy};
use crate::strategy::Authenticator;

/// The path of the test-only sign-in route [`routes`] adds.
pub const SIGN_IN_PATH: &str = "/__test/apple-music/sign-in";

/// Adds the test-only sign-in route. Only ever add it to apps under test.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(SIGN_IN_PATH, web::post().to(sign_in_route));
}

#[derive(serde::Deserialize)]
struct SignIn {
    identity: AppleMusicIdentity,
    #[serde(default)]
    user: Option<serde_json::Value>,
}

async fn sign_in_route(req: HttpRequest, body: web::Json<SignIn>) -> HttpResponse {
    let Some(auth) = req.app_data::<web::Data<Authenticator<AppleMusicStrategy>>>() else {
        return HttpResponse::InternalServerError().body("mount the Apple Music strategy first");
    };
    let SignIn { identity, user } = body.into_inner();
    match auth.sign_in(&req.get_session(), &identity, user.as_ref()) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}

/// Signs `identity` in through the app's own session middleware and answers the session
/// cookie.
pub async fn sign_in<S, B>(app: &S, identity: &AppleMusicIdentity) -> Cookie<'static>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    sign_in_with_user(app, identity, None).await
}

/// Like [`sign_in`], with the app's user value as a verify hook would have answered it.
pub async fn sign_in_with_user<S, B>(
    app: &S,
    identity: &AppleMusicIdentity,
    user: Option<serde_json::Value>,
) -> Cookie<'static>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let req = test::TestRequest::post()
        .uri(SIGN_IN_PATH)
        .set_json(serde_json::json!({"identity": identity, "user": user}))
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
