//! Guarding routes: the extractor, the scope middleware, expiry and re-login, invalidation,
//! the optional manual-token and developer-token routes, and the test helper.

use crate::common::{self, session_cookie};

use std::time::Duration;

use actix_apple_music::developer_token::SigningKey;
use actix_apple_music::{
    test_util, AppleMusicConfig, AppleMusicIdentity, AppleMusicStrategy, AppleMusicUser,
    Authenticator, ManualClock, MusicUserToken, RequireAppleMusic,
};
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Cookie, Key};
use actix_web::http::{header, StatusCode};
use actix_web::{test, web, HttpMessage, HttpRequest, HttpResponse};
use common::{form, page_data, KEY_ID, TEAM_ID};
use serde_json::{json, Value};
use time::macros::datetime;

const PREFIX: &str = "/auth/apple-music";
const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

async fn library(user: AppleMusicUser) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "token": user.identity().music_user_token().secret(),
        "expires_soon": user.expires_soon(),
        "days_left": user.token_time_left().as_secs() / 86_400,
    }))
}

async fn home(user: Option<AppleMusicUser>) -> HttpResponse {
    HttpResponse::Ok().body(match user {
        Some(_) => "signed in",
        None => "signed out",
    })
}

/// Stands in for a handler that called Apple and got 403 on /v1/me/….
async fn apple_said_403(user: AppleMusicUser) -> HttpResponse {
    user.invalidate();
    HttpResponse::BadGateway().finish()
}

/// Writes an identity as the crate stored it before identities carried a version.
async fn write_old_identity(req: HttpRequest) -> HttpResponse {
    use actix_session::SessionExt;
    let old = json!({"mut": "old-format-token", "dev": "x", "at": 1_700_000_000, "exp": 4_000_000_000_i64, "v": "off"});
    req.get_session().insert("apple-music.id", old).unwrap();
    HttpResponse::NoContent().finish()
}

async fn in_scope(req: HttpRequest) -> HttpResponse {
    let token = req
        .extensions()
        .get::<AppleMusicIdentity>()
        .map(|i| i.music_user_token().secret().to_owned());
    HttpResponse::Ok().json(json!({"token": token}))
}

fn config(clock: &ManualClock) -> AppleMusicConfig {
    AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate())
        .check_with_apple(false)
        .clock(clock.clone())
}

async fn app_of(config: AppleMusicConfig) -> impl crate::common::TestApp {
    app_with_key(config, Key::generate()).await
}

async fn app_with_key(config: AppleMusicConfig, key: Key) -> impl crate::common::TestApp {
    let auth = Authenticator::new(AppleMusicStrategy::new(config).unwrap());
    crate::common::app(CookieSessionStore::default(), key, auth, PREFIX, |cfg| {
        cfg.configure(test_util::routes::<AppleMusicStrategy>)
            .route("/", web::get().to(home))
            .route("/library", web::get().to(library))
            .route("/apple-403", web::post().to(apple_said_403))
            .route("/write-old-identity", web::post().to(write_old_identity))
            .service(
                web::scope("/private")
                    .wrap(RequireAppleMusic::new())
                    .route("/data", web::get().to(in_scope))
                    .route("/library", web::get().to(library)),
            );
    })
    .await
}

fn location(resp: &actix_web::dev::ServiceResponse) -> String {
    resp.headers()
        .get(header::LOCATION)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

macro_rules! get {
    ($app:expr, $uri:expr, $accept:expr, $cookie:expr) => {{
        let mut req = test::TestRequest::get().uri($uri);
        if let Some(accept) = $accept {
            req = req.insert_header((header::ACCEPT, accept));
        }
        if let Some(cookie) = $cookie {
            req = req.cookie(cookie);
        }
        test::call_service(&$app, req.to_request()).await
    }};
}

async fn json_of(resp: actix_web::dev::ServiceResponse) -> Value {
    serde_json::from_slice(&test::read_body(resp).await).unwrap()
}

fn identity(at: time::OffsetDateTime, token: &str) -> AppleMusicIdentity {
    AppleMusicIdentity::new(
        MusicUserToken::new(token),
        at,
        Duration::from_secs(180 * 86_400),
        None,
    )
}

#[actix_web::test]
async fn signed_out_browsers_go_to_login_and_come_back_where_they_were() {
    let clock = ManualClock::starting_now();
    let app = app_of(config(&clock)).await;
    let resp = get!(
        app,
        "/library?sort=new&page=2",
        Some(HTML),
        None::<Cookie<'static>>
    );
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let login = location(&resp);
    assert_eq!(
        login,
        "/auth/apple-music/login?return_to=%2Flibrary%3Fsort%3Dnew%26page%3D2"
    );

    // Follow it: login page, callback, back to the page with its query string.
    let resp = get!(app, &login, Some(HTML), None::<Cookie<'static>>);
    let cookie = session_cookie(&resp).unwrap();
    let data = page_data(
        std::str::from_utf8(&test::read_body(resp).await).unwrap(),
        "apple-music-login",
    );
    let req = test::TestRequest::post()
        .uri(&format!("{PREFIX}/callback"))
        .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .cookie(cookie)
        .set_payload(form(&[
            ("code", "tok"),
            ("state", data["state"].as_str().unwrap()),
            ("id_token_hint", data["developerToken"].as_str().unwrap()),
        ]))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(location(&resp), "/library?sort=new&page=2");
    let cookie = session_cookie(&resp).unwrap();
    let resp = get!(app, "/library?sort=new&page=2", Some(HTML), Some(cookie));
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json_of(resp).await["token"], "tok");
}

#[actix_web::test]
async fn signed_out_api_clients_get_401_json() {
    let clock = ManualClock::starting_now();
    let app = app_of(config(&clock)).await;
    for accept in [None, Some("*/*"), Some("application/json")] {
        for uri in ["/library", "/private/data"] {
            let resp = get!(app, uri, accept, None::<Cookie<'static>>);
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{uri} {accept:?}");
            assert!(resp.headers().get(header::WWW_AUTHENTICATE).is_some());
            let back = url::form_urlencoded::byte_serialize(uri.as_bytes()).collect::<String>();
            assert_eq!(
                json_of(resp).await,
                json!({"error": "unauthenticated", "strategy": "apple-music",
                       "login_url": format!("/auth/apple-music/login?return_to={back}")})
            );
        }
    }
    // The scope middleware redirects browsers the same way.
    let resp = get!(app, "/private/data", Some(HTML), None::<Cookie<'static>>);
    assert_eq!(
        location(&resp),
        "/auth/apple-music/login?return_to=%2Fprivate%2Fdata"
    );
    // Public pages see "signed out" without an error.
    let resp = get!(app, "/", Some(HTML), None::<Cookie<'static>>);
    assert_eq!(test::read_body(resp).await, "signed out");
}

#[actix_web::test]
async fn the_scope_middleware_hands_the_identity_to_handlers() {
    let clock = ManualClock::starting_now();
    let app = app_of(config(&clock)).await;
    let cookie = test_util::sign_in::<AppleMusicStrategy>(
        &app,
        &identity(actix_apple_music::Clock::now(&clock), "scoped"),
    )
    .await;
    let resp = get!(app, "/private/data", None::<&str>, Some(cookie.clone()));
    assert_eq!(json_of(resp).await, json!({"token": "scoped"}));
    // The extractor inside the scope gets the identity the middleware checked.
    let resp = get!(app, "/private/library", None::<&str>, Some(cookie.clone()));
    assert_eq!(json_of(resp).await["token"], "scoped");
    let resp = get!(app, "/", None::<&str>, Some(cookie));
    assert_eq!(test::read_body(resp).await, "signed in");
}

#[actix_web::test]
async fn an_ended_token_sends_the_user_through_login_with_prompt() {
    let clock = ManualClock::new(datetime!(2026-01-01 0:00 UTC));
    let app = app_of(config(&clock)).await;
    let cookie = test_util::sign_in::<AppleMusicStrategy>(
        &app,
        &identity(datetime!(2026-01-01 0:00 UTC), "old"),
    )
    .await;

    // Day 100: fine, no warning. Day 170: inside the 14-day window.
    clock.advance(Duration::from_secs(100 * 86_400));
    let body = json_of(get!(app, "/library", None::<&str>, Some(cookie.clone()))).await;
    assert_eq!(
        (body["expires_soon"].clone(), body["days_left"].clone()),
        (json!(false), json!(80))
    );
    clock.advance(Duration::from_secs(70 * 86_400));
    let body = json_of(get!(app, "/library", None::<&str>, Some(cookie.clone()))).await;
    assert_eq!(
        (body["expires_soon"].clone(), body["days_left"].clone()),
        (json!(true), json!(10))
    );

    // Day 180: ended. Browsers are sent to login with prompt=login and the return path.
    clock.advance(Duration::from_secs(10 * 86_400));
    let resp = get!(app, "/library?x=1", Some(HTML), Some(cookie.clone()));
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&resp),
        "/auth/apple-music/login?prompt=login&return_to=%2Flibrary%3Fx%3D1"
    );
    let after = session_cookie(&resp).expect("the ended identity is removed from the session");

    // API clients learn when it ended; the session no longer holds the identity.
    let resp = get!(app, "/library", None::<&str>, Some(after.clone()));
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        json_of(resp).await,
        json!({"error": "reauthentication_required", "expired_at": "2026-06-30T00:00:00Z",
               "strategy": "apple-music",
               "login_url": "/auth/apple-music/login?prompt=login&return_to=%2Flibrary"})
    );
    let resp = get!(app, "/", None::<&str>, Some(after.clone()));
    assert_eq!(test::read_body(resp).await, "signed out");

    // The login it is sent to asks MusicKit for a fresh dialog.
    let resp = get!(
        app,
        "/auth/apple-music/login?prompt=login&return_to=%2Flibrary",
        Some(HTML),
        Some(after)
    );
    let data = page_data(
        std::str::from_utf8(&test::read_body(resp).await).unwrap(),
        "apple-music-login",
    );
    assert_eq!(data["forceDialog"], true);
}

#[actix_web::test]
async fn invalidating_after_apple_refused_the_token_forces_a_fresh_login() {
    let clock = ManualClock::starting_now();
    let app = app_of(config(&clock)).await;
    let cookie = test_util::sign_in::<AppleMusicStrategy>(
        &app,
        &identity(actix_apple_music::Clock::now(&clock), "revoked"),
    )
    .await;
    let resp = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/apple-403")
            .cookie(cookie)
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let after = session_cookie(&resp).unwrap();
    let resp = get!(app, "/library", Some(HTML), Some(after.clone()));
    assert_eq!(
        location(&resp),
        "/auth/apple-music/login?prompt=login&return_to=%2Flibrary"
    );
    let resp = get!(app, "/library", None::<&str>, Some(after));
    assert_eq!(json_of(resp).await["error"], "reauthentication_required");
}

#[actix_web::test]
async fn tampered_or_foreign_cookies_count_as_signed_out() {
    let clock = ManualClock::starting_now();
    let app = app_of(config(&clock)).await;
    let other_app = app_of(config(&clock)).await;
    let foreign = test_util::sign_in::<AppleMusicStrategy>(
        &other_app,
        &identity(actix_apple_music::Clock::now(&clock), "x"),
    )
    .await;
    let mut tampered = test_util::sign_in::<AppleMusicStrategy>(
        &app,
        &identity(actix_apple_music::Clock::now(&clock), "y"),
    )
    .await;
    let mut value = tampered.value().to_owned();
    value.replace_range(10..14, "AAAA");
    tampered.set_value(value);
    for cookie in [foreign, tampered, Cookie::new("id", "garbage")] {
        let resp = get!(app, "/library", Some(HTML), Some(cookie.clone()));
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{cookie}");
        let resp = get!(app, "/library", None::<&str>, Some(cookie));
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(json_of(resp).await["error"], "unauthenticated");
    }
}

#[actix_web::test]
async fn the_manual_token_route_is_off_by_default_and_guarded_by_state_and_origin() {
    let clock = ManualClock::starting_now();
    let off = app_of(config(&clock)).await;
    let resp = test::call_service(
        &off,
        test::TestRequest::post()
            .uri(&format!("{PREFIX}/token"))
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let app = app_of(config(&clock).manual_token_route(true)).await;
    let resp = get!(
        app,
        &format!("{PREFIX}/login?return_to=/library"),
        Some(HTML),
        None::<Cookie<'static>>
    );
    let cookie = session_cookie(&resp).unwrap();
    let data = page_data(
        std::str::from_utf8(&test::read_body(resp).await).unwrap(),
        "apple-music-login",
    );
    assert_eq!(data["manualTokenUrl"], "/auth/apple-music/token");
    let state = data["state"].as_str().unwrap().to_owned();

    // Without state.
    let req = test::TestRequest::post()
        .uri(&format!("{PREFIX}/token"))
        .cookie(cookie.clone())
        .set_json(json!({"music_user_token": "pasted"}))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(resp).await["reason"], "missing_state");

    // From another origin.
    let req = test::TestRequest::post()
        .uri(&format!("{PREFIX}/token"))
        .insert_header((header::ORIGIN, "https://evil.example"))
        .cookie(cookie.clone())
        .set_json(json!({"music_user_token": "pasted", "state": state}))
        .to_request();
    assert_eq!(
        test::call_service(&app, req).await.status(),
        StatusCode::FORBIDDEN
    );

    // As a form, from our own origin: 303 like the callback.
    let req = test::TestRequest::post()
        .uri(&format!("{PREFIX}/token"))
        .insert_header((header::HOST, "localhost:8080"))
        .insert_header((header::ORIGIN, "http://localhost:8080"))
        .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .cookie(cookie)
        .set_payload(form(&[("music_user_token", "pasted"), ("state", &state)]))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/library");
    let signed_in = session_cookie(&resp).unwrap();
    assert_eq!(
        json_of(get!(app, "/library", None::<&str>, Some(signed_in))).await["token"],
        "pasted"
    );

    // As JSON: 200 with the identity's public fields, never the token.
    let resp = get!(
        app,
        &format!("{PREFIX}/login"),
        Some(HTML),
        None::<Cookie<'static>>
    );
    let cookie = session_cookie(&resp).unwrap();
    let data = page_data(
        std::str::from_utf8(&test::read_body(resp).await).unwrap(),
        "apple-music-login",
    );
    let req = test::TestRequest::post()
        .uri(&format!("{PREFIX}/token"))
        .cookie(cookie)
        .set_json(json!({"music_user_token": "pasted-json", "state": data["state"]}))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = json_of(resp).await;
    assert_eq!(body["provider"], "apple-music");
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["restricted"], Value::Null);
    assert!(!body.to_string().contains("pasted-json"));
}

#[actix_web::test]
async fn the_developer_token_route_serves_the_cached_token_briefly() {
    let clock = ManualClock::new(datetime!(2026-01-01 0:00 UTC));
    let app = app_of(
        config(&clock)
            .developer_token_route(true)
            .developer_token_lifetime(Duration::from_secs(120)),
    )
    .await;
    let resp = get!(
        app,
        &format!("{PREFIX}/developer-token"),
        None::<&str>,
        None::<Cookie<'static>>
    );
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers().get(header::CACHE_CONTROL).unwrap(),
        "private, max-age=120"
    );
    let body = json_of(resp).await;
    assert_eq!(body["expires_at"], "2026-01-01T00:02:00Z");
    assert!(body["token"].as_str().unwrap().starts_with("eyJ"));

    clock.advance(Duration::from_secs(100));
    let resp = get!(
        app,
        &format!("{PREFIX}/developer-token"),
        None::<&str>,
        None::<Cookie<'static>>
    );
    let max_age: i64 = resp
        .headers()
        .get(header::CACHE_CONTROL)
        .unwrap()
        .to_str()
        .unwrap()
        .trim_start_matches("private, max-age=")
        .parse()
        .unwrap();
    let body = json_of(resp).await;
    let expires = time::OffsetDateTime::parse(
        body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        datetime!(2026-01-01 0:01:40 UTC) + Duration::from_secs(max_age as u64) <= expires,
        "cache outlives the token"
    );

    let off = app_of(config(&clock)).await;
    let resp = get!(
        off,
        &format!("{PREFIX}/developer-token"),
        None::<&str>,
        None::<Cookie<'static>>
    );
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

/// An identity that no longer reads (written by an older version, without the record's
/// version) is answered as a re-login, not a silent sign-out.
#[actix_web::test]
async fn an_identity_that_no_longer_reads_asks_for_a_fresh_sign_in() {
    let clock = ManualClock::starting_now();
    let app = app_of(config(&clock)).await;
    let resp = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/write-old-identity")
            .to_request(),
    )
    .await;
    let cookie = session_cookie(&resp).unwrap();
    let resp = get!(app, "/library", Some(HTML), Some(cookie.clone()));
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&resp).starts_with(&format!("{PREFIX}/login?prompt=login&return_to=%2Flibrary")),
        "{}",
        location(&resp)
    );
    let cookie = session_cookie(&resp).unwrap_or(cookie);
    let resp = get!(app, "/library", Some("application/json"), Some(cookie));
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(resp).await["error"], "reauthentication_required");
}

/// A stored user value that does not read as the handler's `U` (a hook storing one type, a
/// handler asking for another) is logged once per authenticator, not at every request.
#[actix_web::test]
async fn a_user_value_that_does_not_read_is_logged_once() {
    crate::apple_api::capture_logs();
    #[derive(serde::Deserialize)]
    struct OnceLoggedProfile {
        #[allow(dead_code)]
        plan: u32,
    }
    async fn profile(user: AppleMusicUser<OnceLoggedProfile>) -> HttpResponse {
        HttpResponse::Ok().json(json!({"has_profile": user.user().is_some()}))
    }
    let clock = ManualClock::starting_now();
    let auth = Authenticator::new(AppleMusicStrategy::new(config(&clock)).unwrap());
    let app = crate::common::app(
        CookieSessionStore::default(),
        Key::generate(),
        auth,
        PREFIX,
        |cfg| {
            cfg.configure(test_util::routes::<AppleMusicStrategy>)
                .route("/profile", web::get().to(profile));
        },
    )
    .await;
    let cookie = test_util::sign_in_with_user::<AppleMusicStrategy, _>(
        &app,
        &identity(actix_apple_music::Clock::now(&clock), "mut-user-value"),
        &"not a profile",
    )
    .await;
    for _ in 0..3 {
        let resp = get!(
            app,
            "/profile",
            Some("application/json"),
            Some(cookie.clone())
        );
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(json_of(resp).await["has_profile"], false);
    }
    let said = crate::apple_api::log_lines()
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains("OnceLoggedProfile"))
        .count();
    assert_eq!(said, 1);
}
