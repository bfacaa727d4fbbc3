//! One clock under an authenticator: a clock set on the `Authenticator` only (not on the
//! strategy's config) rules the flow and the strategy alike — the developer token's `iat`,
//! the identity's `authenticated_at`, and the `id_token` check of Sign in with Apple.

use actix_apple_music::developer_token::SigningKey;
use actix_apple_music::test_util::{self, AppleIdStandIn};
use actix_apple_music::{
    AppleIdConfig, AppleIdStrategy, AppleMusicConfig, AppleMusicStrategy, Authenticator,
    ManualClock,
};
use actix_web::cookie::Key;
use actix_web::http::StatusCode;
use actix_web::{test, web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use time::macros::datetime;
use time::OffsetDateTime;

use crate::common::memory_store::MemoryStore;
use crate::common::{KEY_ID, TEAM_ID};

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn authenticated_at(
    req: HttpRequest,
    auth: web::Data<Authenticator<AppleMusicStrategy>>,
) -> HttpResponse {
    use actix_session::SessionExt;
    match auth.stored_identity(&req.get_session()) {
        Some(identity) => {
            HttpResponse::Ok().body(identity.authenticated_at().unix_timestamp().to_string())
        }
        None => HttpResponse::Unauthorized().finish(),
    }
}

#[actix_web::test]
async fn apple_musics_developer_token_and_identity_follow_the_authenticators_clock() {
    let clock = ManualClock::new(datetime!(2026-03-01 12:00 UTC));
    // The strategy's config has no clock of its own: the system clock, until the
    // authenticator's replaces it.
    let config =
        AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate()).check_with_apple(false);
    let auth = Authenticator::new(AppleMusicStrategy::new(config).unwrap())
        .options(|o| o.clock(clock.clone()));
    let app = crate::common::app(
        MemoryStore::default(),
        Key::generate(),
        auth,
        "/auth/apple-music",
        |cfg| {
            cfg.route("/at", web::get().to(authenticated_at));
        },
    )
    .await;

    let page = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/auth/apple-music/login")
            .to_request(),
    )
    .await;
    let html = String::from_utf8(test::read_body(page).await.to_vec()).unwrap();
    let data = test_util::login_page_data(&html);
    let token = claims_of(data["developerToken"].as_str().unwrap());
    assert_eq!(
        token["iat"],
        datetime!(2026-03-01 12:00 UTC).unix_timestamp(),
        "the developer token is signed at the authenticator's time: {token}"
    );

    clock.advance(std::time::Duration::from_secs(90));
    let login = test_util::log_in_with_apple_music(&app, "/auth/apple-music", "mut-1", None).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/at")
            .cookie(login.cookie)
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let at = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert_eq!(
        at,
        datetime!(2026-03-01 12:01:30 UTC)
            .unix_timestamp()
            .to_string(),
        "the identity is stamped at the authenticator's time"
    );
}

/// Signs in with the stand-in Apple ID (whose `id_token`s are issued at the system time, valid
/// ten minutes) under an authenticator whose clock is `clock`, if any.
async fn apple_id_sign_in(clock: Option<ManualClock>) -> test_util::TestLogin {
    let stand_in = AppleIdStandIn::new();
    let config = AppleIdConfig::new(
        "com.example.web",
        "http://localhost/auth/apple/callback",
        TEAM_ID,
        KEY_ID,
        SigningKey::generate(),
    )
    .stand_in(&stand_in);
    let mut auth = Authenticator::new(AppleIdStrategy::new(config).unwrap());
    if let Some(clock) = clock {
        auth = auth.options(|o| o.clock(clock));
    }
    let app = crate::common::app(
        MemoryStore::default(),
        Key::generate(),
        auth,
        "/auth/apple",
        |_| {},
    )
    .await;
    test_util::log_in_with_apple_id(&app, "/auth/apple", &stand_in, "ada@example.com", None).await
}

#[actix_web::test]
async fn sign_in_with_apples_id_token_check_follows_the_authenticators_clock() {
    let now = OffsetDateTime::now_utc();
    let login = apple_id_sign_in(Some(ManualClock::new(now))).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);

    // An hour later by the authenticator's clock, the stand-in's fresh id_token (valid ten
    // minutes by the system's) has expired: the check reads the authenticator's clock.
    let login = apple_id_sign_in(Some(ManualClock::new(now + time::Duration::HOUR))).await;
    assert_eq!(login.status, StatusCode::BAD_REQUEST, "{}", login.body);
    let body: Value = serde_json::from_str(&login.body).unwrap();
    assert_eq!(body["error"], "token_error", "{body}");
    assert_eq!(body["reason"], "id_token_expired", "{body}");
}
