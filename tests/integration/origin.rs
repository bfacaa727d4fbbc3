//! The same-origin check compares the configured public origin, when there is one.

use actix_apple_music::developer_token::SigningKey;
use actix_apple_music::{AppleMusicConfig, AppleMusicStrategy, Authenticator};
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::Key;
use actix_web::http::StatusCode;
use actix_web::test;

use crate::common::{KEY_ID, TEAM_ID};

async fn logout_status(public_origin: Option<&str>, origin: &str) -> StatusCode {
    let config = AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate());
    let mut auth = Authenticator::new(AppleMusicStrategy::new(config).unwrap());
    if let Some(public) = public_origin {
        let public = public.to_owned();
        auth = auth.options(move |o| o.public_origin(public));
    }
    let app = crate::common::app(
        CookieSessionStore::default(),
        Key::generate(),
        auth,
        "/auth/apple-music",
        |_| {},
    )
    .await;
    test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/auth/apple-music/logout")
            .insert_header(("host", "internal:8080"))
            .insert_header(("origin", origin))
            .to_request(),
    )
    .await
    .status()
}

#[actix_web::test]
async fn the_configured_public_origin_is_the_one_compared() {
    // Without one, the request's own scheme and Host.
    assert_eq!(
        logout_status(None, "http://internal:8080").await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        logout_status(None, "https://app.example").await,
        StatusCode::FORBIDDEN
    );
    // With one (behind a proxy), that origin and no other, not even the request's own.
    let public = Some("https://app.example");
    assert_eq!(
        logout_status(public, "https://app.example").await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        logout_status(public, "http://internal:8080").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        logout_status(public, "https://evil.example").await,
        StatusCode::FORBIDDEN
    );
}
