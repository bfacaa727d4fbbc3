//! One session-store suite, run per store: the in-memory test store (plain and sealed), both
//! cookie stores (actix-session's and `CompactCookieStore`) in `tests/integration`, and Redis
//! in `tests/redis.rs`. Each store runs under `LifetimeStore` and `StoreFailures`, as the docs
//! recommend, behind one Apple Music strategy that does not call Apple.

use std::time::Duration;

use actix_apple_music::developer_token::SigningKey;
use actix_apple_music::test_util;
use actix_apple_music::{AppleMusicConfig, AppleMusicStrategy, AppleMusicUser, Authenticator};
use actix_session::storage::SessionStore;
use actix_web::cookie::{Cookie, Key};
use actix_web::http::{header, StatusCode};
use actix_web::{test, web, HttpResponse};

use super::{TestApp, KEY_ID, TEAM_ID};

const PREFIX: &str = "/auth/apple-music";

/// The TTL (seconds) a server-side store holds for a session key.
pub type TtlOf = Box<dyn Fn(&str) -> Option<i64>>;

/// What the suite can see of a server-side store: the live session keys and their TTLs.
pub struct ServerSide {
    /// The session keys the store holds now.
    pub keys: Box<dyn Fn() -> Vec<String>>,
    /// The TTL (seconds) the store holds for a key.
    pub ttl: TtlOf,
}

async fn me(user: AppleMusicUser) -> HttpResponse {
    HttpResponse::Ok().body(
        user.identity()
            .authenticated_at()
            .unix_timestamp()
            .to_string(),
    )
}

async fn app_on<St: SessionStore + 'static>(store: St, key: &Key) -> impl TestApp {
    let config = AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate())
        .check_with_apple(false)
        .user_token_lifetime(Duration::from_secs(7200))
        .session_margin(Duration::from_secs(300));
    let auth = Authenticator::new(AppleMusicStrategy::new(config).unwrap());
    super::app(store, key.clone(), auth, PREFIX, |cfg| {
        cfg.route("/me", web::get().to(me));
    })
    .await
}

async fn status(app: &impl TestApp, cookie: Option<&Cookie<'static>>) -> StatusCode {
    let mut req = test::TestRequest::get()
        .uri("/me")
        .insert_header((header::ACCEPT, "application/json"));
    if let Some(cookie) = cookie {
        req = req.cookie(cookie.clone());
    }
    match test::try_call_service(app, req.to_request()).await {
        Ok(resp) => resp.status(),
        Err(e) => e.error_response().status(),
    }
}

async fn logout(app: &impl TestApp, cookie: &Cookie<'static>) -> Option<Cookie<'static>> {
    let resp = test::call_service(
        app,
        test::TestRequest::post()
            .uri(&format!("{PREFIX}/logout"))
            .cookie(cookie.clone())
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "logout");
    crate::common::session_cookie(&resp)
}

/// Runs the suite against the stores `make` gives (a fresh one per case, or clones of one),
/// with `server_side` when the store keeps sessions on a server.
pub async fn run<St, F>(name: &str, make: F, server_side: Option<ServerSide>)
where
    St: SessionStore + 'static,
    F: Fn() -> St,
{
    let key = Key::generate();
    let app = app_on(make(), &key).await;

    // Nobody is signed in without a session.
    assert_eq!(status(&app, None).await, StatusCode::UNAUTHORIZED, "{name}");

    // The login state alone lives as long as the state (ten minutes).
    let page = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&format!("{PREFIX}/login"))
            .to_request(),
    )
    .await;
    assert!(page.status().is_success(), "{name}: login page");
    let pre_login = crate::common::session_cookie(&page).expect("a pre-login session");
    if let Some(server) = &server_side {
        let keys = (server.keys)();
        assert_eq!(keys.len(), 1, "{name}: one pre-login session");
        let ttl = (server.ttl)(&keys[0]).unwrap();
        assert!((595..=600).contains(&ttl), "{name}: login-only TTL {ttl}");
    }

    // A sign-in: the session's key changes (no fixation), the identity reads back.
    let login =
        test_util::log_in_with_apple_music(&app, PREFIX, "mut-suite", Some(pre_login.clone()))
            .await;
    assert_eq!(
        login.status,
        StatusCode::SEE_OTHER,
        "{name}: {}",
        login.body
    );
    assert_ne!(
        login.cookie.value(),
        pre_login.value(),
        "{name}: renewed at sign-in"
    );
    assert_eq!(
        status(&app, Some(&login.cookie)).await,
        StatusCode::OK,
        "{name}"
    );
    if let Some(server) = &server_side {
        let keys = (server.keys)();
        assert_eq!(keys.len(), 1, "{name}: the pre-login session is gone");
        let ttl = (server.ttl)(&keys[0]).unwrap();
        assert!(
            (7495..=7500).contains(&ttl),
            "{name}: signed-in TTL {ttl} (2 h + 5 min)"
        );
    }

    // Another instance with the same key and store reads the session; one with another key
    // does not (and answers 401, not 500).
    let other = app_on(make(), &key).await;
    assert_eq!(
        status(&other, Some(&login.cookie)).await,
        StatusCode::OK,
        "{name}: same key"
    );
    let stranger = app_on(make(), &Key::generate()).await;
    assert_eq!(
        status(&stranger, Some(&login.cookie)).await,
        StatusCode::UNAUTHORIZED,
        "{name}: another key"
    );

    // A tampered cookie is no session: one character in its middle changed (the last one
    // could hold only base64 padding bits).
    let mut value: Vec<char> = login.cookie.value().chars().collect();
    let middle = value.len() / 2;
    value[middle] = if value[middle] == 'A' { 'B' } else { 'A' };
    let tampered = Cookie::new(
        login.cookie.name().to_owned(),
        value.into_iter().collect::<String>(),
    );
    assert_eq!(
        status(&app, Some(&tampered)).await,
        StatusCode::UNAUTHORIZED,
        "{name}: tampered"
    );

    // Sign-out: the cookie no longer signs in anywhere, and the server forgot the session.
    let after = logout(&app, &login.cookie).await;
    assert_eq!(
        status(&app, after.as_ref()).await,
        StatusCode::UNAUTHORIZED,
        "{name}"
    );
    if let Some(server) = &server_side {
        assert!((server.keys)().is_empty(), "{name}: the session is deleted");
        assert_eq!(
            status(&other, Some(&login.cookie)).await,
            StatusCode::UNAUTHORIZED,
            "{name}: the old cookie is signed out on every instance"
        );
    }
}
