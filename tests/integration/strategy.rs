//! The Apple Music strategy end to end, in process: login page, callback, session, errors.
//! Real `SessionMiddleware` with the cookie store in private (encrypted) mode.

use crate::common::{self, session_cookie};

use std::time::Duration;

use actix_apple_music::developer_token::{DeveloperTokenConfig, SigningKey};
use actix_apple_music::{
    AppleMusicConfig, AppleMusicError, AppleMusicIdentity, AppleMusicStrategy, Authenticator,
    ManualClock, Rejection, SignInContext, SignInError, StrategyError,
};
use actix_session::config::CookieContentSecurity;
use actix_session::storage::CookieSessionStore;
use actix_session::{SessionExt, SessionMiddleware};
use actix_web::cookie::{Cookie, Key};
use actix_web::http::{header, StatusCode};
use actix_web::{test, web, App, HttpRequest, HttpResponse};
use base64::Engine;
use common::{form, page_data, KEY_ID, TEAM_ID};
use serde_json::{json, Value};
use time::macros::datetime;

const PREFIX: &str = "/auth/apple-music";
const TOKEN: &str = "user-token-Ab12.Cd34/Ef56+Gh78==";

fn config(clock: &ManualClock) -> AppleMusicConfig {
    AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate())
        .check_with_apple(false)
        .app_name("Test App")
        .clock(clock.clone())
}

fn session(key: &Key) -> SessionMiddleware<CookieSessionStore> {
    SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
        .cookie_content_security(CookieContentSecurity::Private)
        .cookie_secure(false)
        .build()
}

/// Reports what the session holds: the identity's public fields, or 401.
async fn whoami(
    req: HttpRequest,
    auth: web::Data<Authenticator<AppleMusicStrategy>>,
) -> HttpResponse {
    let session = req.get_session();
    match auth.stored_identity(&session) {
        Some(identity) => HttpResponse::Ok().json(json!({
            "token": identity.music_user_token().secret(),
            "restricted": identity.restricted(),
            "authenticated_at": identity.authenticated_at().unix_timestamp(),
            "expires_at": identity.expires_at().unix_timestamp(),
            "user": auth.stored_user::<Value>(&session),
        })),
        None => HttpResponse::Unauthorized().finish(),
    }
}

async fn app_of(auth: Authenticator<AppleMusicStrategy>) -> impl crate::common::TestApp {
    crate::common::app(
        CookieSessionStore::default(),
        Key::generate(),
        auth,
        PREFIX,
        |cfg| {
            cfg.route("/whoami", web::get().to(whoami));
        },
    )
    .await
}

/// GET the login page; answers the page data and the session cookie.
macro_rules! start_login {
    ($app:expr, $query:expr) => {{
        let resp = test::call_service(
            &$app,
            test::TestRequest::get()
                .uri(&format!("{PREFIX}/login{}", $query))
                .to_request(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let cookie = session_cookie(&resp).expect("login sets the session cookie");
        let body = test::read_body(resp).await;
        let data = page_data(std::str::from_utf8(&body).unwrap(), "apple-music-login");
        (data, cookie)
    }};
}

macro_rules! post_callback {
    ($app:expr, $cookie:expr, $pairs:expr) => {{
        let mut req = test::TestRequest::post()
            .uri(&format!("{PREFIX}/callback"))
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .insert_header((header::ACCEPT, "application/json"))
            .set_payload(form($pairs));
        if let Some(cookie) = $cookie {
            req = req.cookie(cookie);
        }
        test::call_service(&$app, req.to_request()).await
    }};
}

macro_rules! whoami {
    ($app:expr, $cookie:expr) => {{
        let resp = test::call_service(
            &$app,
            test::TestRequest::get()
                .uri("/whoami")
                .cookie($cookie)
                .to_request(),
        )
        .await;
        let status = resp.status();
        let body = test::read_body(resp).await;
        (
            status,
            serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
        )
    }};
}

async fn error_json(resp: actix_web::dev::ServiceResponse) -> (StatusCode, Value) {
    let status = resp.status();
    let body = test::read_body(resp).await;
    (
        status,
        serde_json::from_slice(&body).expect("JSON error body"),
    )
}

/// The callback fields of a successful authorization of the login whose page data is `data`.
fn answer<'a>(data: &'a Value, code: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("code", code),
        ("state", s(&data["state"])),
        ("id_token_hint", s(&data["developerToken"])),
    ]
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

#[actix_web::test]
async fn login_and_post_callback_sign_the_user_in() {
    let clock = ManualClock::new(datetime!(2026-05-01 10:00 UTC));
    let auth = Authenticator::new(AppleMusicStrategy::new(config(&clock)).unwrap());
    let app = app_of(auth).await;
    let (data, cookie) = start_login!(app, "?return_to=/library%3Fsort%3Dnew");
    assert_eq!(data["mode"], "musickit");
    assert_eq!(data["callbackUrl"], "/auth/apple-music/callback");
    assert_eq!(
        data["musicKitUrl"],
        "https://js-cdn.music.apple.com/musickit/v3/musickit.js"
    );
    assert_eq!(data["forceDialog"], false);

    let resp = post_callback!(
        app,
        Some(cookie.clone()),
        &[
            ("code", TOKEN),
            ("state", s(&data["state"])),
            ("id_token_hint", s(&data["developerToken"])),
            ("restricted", "1"),
        ]
    );
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        resp.headers().get(header::LOCATION).unwrap(),
        "/library?sort=new"
    );
    let signed_in = session_cookie(&resp).expect("the session is re-issued");
    assert_ne!(signed_in.value(), cookie.value());

    let (status, me) = whoami!(app, signed_in);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["token"], TOKEN);
    assert_eq!(me["restricted"], true);
    let at = datetime!(2026-05-01 10:00 UTC).unix_timestamp();
    assert_eq!(me["authenticated_at"], at);
    assert_eq!(me["expires_at"], at + 180 * 86_400);
    assert_eq!(me["user"], Value::Null);
}

#[actix_web::test]
async fn a_get_callback_is_refused_unless_the_app_opts_in() {
    let clock = ManualClock::starting_now();
    let app = app_of(Authenticator::new(
        AppleMusicStrategy::new(config(&clock)).unwrap(),
    ))
    .await;
    let (data, cookie) = start_login!(app, "");
    let query = form(&answer(&data, TOKEN));
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&format!("{PREFIX}/callback?{query}"))
            .cookie(cookie.clone())
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers().get(header::ALLOW).unwrap(), "POST");
    assert!(
        session_cookie(&resp).is_none(),
        "the session is not touched"
    );
    assert_eq!(whoami!(app, cookie.clone()).0, StatusCode::UNAUTHORIZED);
    // The login is still pending: the POST form of the same answer signs in.
    let resp = post_callback!(app, Some(cookie), &answer(&data, TOKEN));
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn a_get_callback_works_like_passport_apple_music_when_allowed() {
    let clock = ManualClock::starting_now();
    let app = app_of(Authenticator::new(
        AppleMusicStrategy::new(config(&clock).allow_get_callback(true)).unwrap(),
    ))
    .await;
    let (data, cookie) = start_login!(app, "");
    let query = form(&answer(&data, TOKEN));
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&format!("{PREFIX}/callback?{query}"))
            .cookie(cookie)
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers().get(header::LOCATION).unwrap(), "/");
    let (status, me) = whoami!(app, session_cookie(&resp).unwrap());
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["token"], TOKEN);
    assert_eq!(
        me["restricted"],
        Value::Null,
        "unknown restriction stays unknown"
    );
}

#[actix_web::test]
async fn the_verify_hook_links_a_user_or_refuses() {
    let clock = ManualClock::starting_now();
    let auth = Authenticator::new(AppleMusicStrategy::new(config(&clock)).unwrap()).on_sign_in(
        |sign_in: SignInContext<AppleMusicStrategy>| async move {
            let identity = sign_in.into_identity();
            if identity.music_user_token().secret() == "banned" {
                Err(Rejection::new("this account is suspended"))
            } else {
                Ok(json!({"user_id": 42}))
            }
        },
    );
    let app = app_of(auth).await;

    let (data, cookie) = start_login!(app, "");
    let resp = post_callback!(app, Some(cookie), &answer(&data, TOKEN));
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, me) = whoami!(app, session_cookie(&resp).unwrap());
    assert_eq!(me["user"], json!({"user_id": 42}));

    let (data, cookie) = start_login!(app, "");
    let resp = post_callback!(app, Some(cookie.clone()), &answer(&data, "banned"));
    let cookie_after = session_cookie(&resp);
    let (status, body) = error_json(resp).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "authorization_error");
    assert_eq!(body["reason"], "rejected_by_app");
    assert!(s(&body["message"]).contains("this account is suspended"));
    let (status, _) = whoami!(app, cookie_after.unwrap_or(cookie));
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a refused user is not signed in"
    );
}

#[actix_web::test]
async fn error_outcomes_map_to_authorization_reasons() {
    let clock = ManualClock::starting_now();
    let app = app_of(Authenticator::new(
        AppleMusicStrategy::new(config(&clock)).unwrap(),
    ))
    .await;
    for (error, reason) in [
        ("declined", "declined"),
        ("access_denied", "declined"),
        ("unavailable", "unavailable"),
        ("popup_closed", "popup_closed"),
        ("popup_blocked", "popup_blocked"),
        ("timed_out", "timed_out"),
        ("MusicKit JS could not be loaded", "musickit_error"),
    ] {
        let (data, cookie) = start_login!(app, "");
        // No id_token_hint: the page may fail before it has one.
        let resp = post_callback!(
            app,
            Some(cookie),
            &[("error", error), ("state", s(&data["state"]))]
        );
        let (status, body) = error_json(resp).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{error}");
        assert_eq!(body["error"], "authorization_error", "{error}");
        assert_eq!(body["reason"], reason, "{error}");
    }
}

#[actix_web::test]
async fn callback_problems_map_to_token_reasons() {
    let clock = ManualClock::starting_now();
    let app = app_of(Authenticator::new(
        AppleMusicStrategy::new(config(&clock)).unwrap(),
    ))
    .await;
    let foreign = DeveloperTokenConfig::apple_music(TEAM_ID, KEY_ID)
        .build(SigningKey::generate())
        .unwrap()
        .token();
    let long_code = "x".repeat(actix_apple_music::DEFAULT_MAX_USER_TOKEN_LEN + 1);

    type Case = (
        &'static str,
        Box<dyn Fn(&str, &str) -> Vec<(String, String)>>,
    );
    let p = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    };
    let foreign_token = foreign.as_str().to_owned();
    let long = long_code.clone();
    let cases: Vec<Case> = vec![
        (
            "missing_code",
            Box::new(move |st, dt| p(&[("state", st), ("id_token_hint", dt)])),
        ),
        (
            "missing_code",
            Box::new(move |st, dt| p(&[("code", ""), ("state", st), ("id_token_hint", dt)])),
        ),
        (
            "code_too_long",
            Box::new(move |st, dt| p(&[("code", &long), ("state", st), ("id_token_hint", dt)])),
        ),
        (
            "missing_state",
            Box::new(move |_, dt| p(&[("code", TOKEN), ("id_token_hint", dt)])),
        ),
        (
            "missing_state",
            Box::new(move |_, _| p(&[("error", "declined")])),
        ),
        (
            "state_mismatch",
            Box::new(move |_, dt| {
                p(&[("code", TOKEN), ("state", "forged"), ("id_token_hint", dt)])
            }),
        ),
        (
            "missing_id_token_hint",
            Box::new(move |st, _| p(&[("code", TOKEN), ("state", st)])),
        ),
        (
            "invalid_id_token_hint",
            Box::new(move |st, _| {
                p(&[
                    ("code", TOKEN),
                    ("state", st),
                    ("id_token_hint", "not.a.jwt"),
                ])
            }),
        ),
        (
            "invalid_id_token_hint",
            Box::new(move |st, _| {
                p(&[
                    ("code", TOKEN),
                    ("state", st),
                    ("id_token_hint", &foreign_token),
                ])
            }),
        ),
        (
            "malformed_request",
            Box::new(move |st, dt| {
                p(&[
                    ("code", TOKEN),
                    ("state", st),
                    ("id_token_hint", dt),
                    ("restricted", "maybe"),
                ])
            }),
        ),
        (
            "malformed_request",
            Box::new(move |st, dt| {
                p(&[
                    ("fragment", "%%%not-base64"),
                    ("state", st),
                    ("id_token_hint", dt),
                ])
            }),
        ),
    ];
    for (reason, make) in cases {
        let (data, cookie) = start_login!(app, "");
        let pairs = make(s(&data["state"]), s(&data["developerToken"]));
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let resp = post_callback!(app, Some(cookie), &refs);
        let (status, body) = error_json(resp).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reason}: {body}");
        assert_eq!(body["error"], "token_error", "{reason}");
        assert_eq!(body["reason"], reason, "{body}");
        assert!(!s(&body["message"]).contains(TOKEN));
    }

    // A parameter given twice, and bytes that are not UTF-8.
    for raw in ["code=a&code=b&state=x", "code=%FF%FE&state=x"] {
        let (_, cookie) = start_login!(app, "");
        let req = test::TestRequest::post()
            .uri(&format!("{PREFIX}/callback"))
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .cookie(cookie)
            .set_payload(raw)
            .to_request();
        let (status, body) = error_json(test::call_service(&app, req).await).await;
        assert_eq!(
            (status, s(&body["reason"])),
            (StatusCode::BAD_REQUEST, "malformed_request"),
            "{raw}"
        );
    }
    // An oversized body.
    let (_, cookie) = start_login!(app, "");
    let req = test::TestRequest::post()
        .uri(&format!("{PREFIX}/callback"))
        .cookie(cookie)
        .set_payload(format!("code={}", "a".repeat(20_000)))
        .to_request();
    let (status, body) = error_json(test::call_service(&app, req).await).await;
    assert_eq!(
        (status, s(&body["reason"])),
        (StatusCode::BAD_REQUEST, "malformed_request")
    );
}

#[actix_web::test]
async fn state_is_single_use_bound_to_the_session_and_expires() {
    let clock = ManualClock::starting_now();
    let app = app_of(Authenticator::new(
        AppleMusicStrategy::new(config(&clock)).unwrap(),
    ))
    .await;

    // Replay: the same answer twice.
    let (data, cookie) = start_login!(app, "");
    let pairs = [
        ("code", TOKEN),
        ("state", s(&data["state"])),
        ("id_token_hint", s(&data["developerToken"])),
    ];
    let first = post_callback!(app, Some(cookie.clone()), &pairs);
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let after = session_cookie(&first).unwrap();
    let (_, body) = error_json(post_callback!(app, Some(after), &pairs)).await;
    assert_eq!(body["reason"], "state_mismatch");
    // Replaying with the pre-login cookie (an old copy) is refused as well: the state was
    // consumed in that cookie's successor, but the old cookie still holds it. With the cookie
    // store that old copy cannot be revoked (documented); a server-side store fixes it.

    // Another browser's state: a state that is valid, but in another session.
    let (data_a, _cookie_a) = start_login!(app, "");
    let (_data_b, cookie_b) = start_login!(app, "");
    let (_, body) = error_json(post_callback!(
        app,
        Some(cookie_b),
        &[
            ("code", TOKEN),
            ("state", s(&data_a["state"])),
            ("id_token_hint", s(&data_a["developerToken"])),
        ]
    ))
    .await;
    assert_eq!(body["reason"], "state_mismatch");

    // No session at all.
    let (_, body) = error_json(post_callback!(
        app,
        None::<Cookie<'static>>,
        &[
            ("code", TOKEN),
            ("state", s(&data_a["state"])),
            ("id_token_hint", s(&data_a["developerToken"])),
        ]
    ))
    .await;
    assert_eq!(body["reason"], "state_mismatch");

    // Expired: the default TTL is 10 minutes.
    let (data, cookie) = start_login!(app, "");
    clock.advance(Duration::from_secs(600));
    let resp = post_callback!(app, Some(cookie), &answer(&data, TOKEN));
    let consumed = session_cookie(&resp).expect("the expired state is removed");
    let (_, body) = error_json(resp).await;
    assert_eq!(body["reason"], "state_expired");
    let (_, body) = error_json(post_callback!(app, Some(consumed), &answer(&data, TOKEN))).await;
    assert_eq!(
        body["reason"], "state_mismatch",
        "an expired state is gone once reported"
    );
}

#[actix_web::test]
async fn return_to_only_accepts_same_site_paths() {
    let clock = ManualClock::starting_now();
    let app = app_of(Authenticator::new(
        AppleMusicStrategy::new(config(&clock).success_target("/home")).unwrap(),
    ))
    .await;
    for (return_to, expected) in [
        ("//evil.example", "/home"),
        ("https://evil.example", "/home"),
        ("/\\evil.example", "/home"),
        ("javascript:alert(1)", "/home"),
        ("/ok?x=1", "/ok?x=1"),
    ] {
        let query = form(&[("return_to", return_to)]);
        let (data, cookie) = start_login!(app, format!("?{query}"));
        let resp = post_callback!(app, Some(cookie), &answer(&data, TOKEN));
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            resp.headers().get(header::LOCATION).unwrap(),
            expected,
            "{return_to}"
        );
    }
}

#[actix_web::test]
async fn the_login_page_is_inert_to_hostile_app_names_and_locked_down() {
    let clock = ManualClock::starting_now();
    let hostile = "Tom's \"Mix\" </script><script>alert(1)</script> <!-- & 🎧\u{2028}";
    let app = app_of(Authenticator::new(
        AppleMusicStrategy::new(
            config(&clock)
                .app_name(hostile)
                .app_icon_url("https://cdn.example/icon.png"),
        )
        .unwrap(),
    ))
    .await;
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&format!("{PREFIX}/login?prompt=login"))
            .to_request(),
    )
    .await;
    let headers = resp.headers().clone();
    let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();

    let data = page_data(&html, "apple-music-login");
    assert_eq!(data["appName"], hostile);
    assert_eq!(data["appIconUrl"], "https://cdn.example/icon.png");
    assert_eq!(data["forceDialog"], true);
    assert_eq!(
        html.matches("<script").count(),
        2,
        "only the data block and our script"
    );
    assert!(!html.contains("alert(1)</script>"));

    assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    assert_eq!(
        headers.get(header::REFERRER_POLICY).unwrap(),
        "strict-origin-when-cross-origin"
    );
    let csp = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\" defer></script>")),
        "our script carries the page's nonce: {html}"
    );
    assert!(
        csp.contains("https://js-cdn.music.apple.com"),
        "MusicKit's origin may load scripts: {csp}"
    );
    // A nonce is never reused.
    let again = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&format!("{PREFIX}/login"))
            .to_request(),
    )
    .await;
    assert!(!again
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .unwrap()
        .to_str()
        .unwrap()
        .contains(nonce));
}

#[actix_web::test]
async fn the_login_page_carries_the_cached_developer_token() {
    let clock = ManualClock::starting_now();
    let strategy =
        AppleMusicStrategy::new(config(&clock).login_page(actix_apple_music::LoginPage::Direct))
            .unwrap();
    let current = strategy.signer().token();
    let app = app_of(Authenticator::new(strategy)).await;
    for _ in 0..3 {
        let (data, _) = start_login!(app, "");
        assert_eq!(
            data["developerToken"],
            current.as_str(),
            "signed once, not per login"
        );
        assert_eq!(data["mode"], "direct");
        assert_eq!(
            data["authorizeUrl"],
            "https://authorize.music.apple.com/woa"
        );
        assert_eq!(data["returnUrl"], "/auth/apple-music/return");
    }
}

#[actix_web::test]
async fn failures_answer_html_to_browsers_and_json_to_the_rest() {
    let clock = ManualClock::starting_now();
    let app = app_of(Authenticator::new(
        AppleMusicStrategy::new(config(&clock)).unwrap(),
    ))
    .await;
    let (data, cookie) = start_login!(app, "");
    let req = test::TestRequest::post()
        .uri(&format!("{PREFIX}/callback"))
        .insert_header((header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8"))
        .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .cookie(cookie)
        .set_payload(form(&[
            ("error", "<b>boom</b>"),
            ("state", s(&data["state"])),
        ]))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp
        .headers()
        .get(header::CONTENT_TYPE)
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(resp
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .is_some());
    let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert!(html.contains("data-reason=\"musickit_error\""));
    assert!(html.contains("&lt;b&gt;boom&lt;/b&gt;") && !html.contains("<b>boom"));
    assert!(html.contains("href=\"/auth/apple-music/login\""));

    for accept in [None, Some("*/*"), Some("application/json")] {
        let mut req = test::TestRequest::post()
            .uri(&format!("{PREFIX}/callback"))
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .set_payload("code=x");
        if let Some(accept) = accept {
            req = req.insert_header((header::ACCEPT, accept));
        }
        let (status, body) = error_json(test::call_service(&app, req.to_request()).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["reason"], "missing_state", "{accept:?}");
    }
}

#[actix_web::test]
async fn logout_forgets_the_user_and_refuses_foreign_origins() {
    let clock = ManualClock::starting_now();
    let app = app_of(Authenticator::new(
        AppleMusicStrategy::new(config(&clock).logout_target("/bye")).unwrap(),
    ))
    .await;
    let (data, cookie) = start_login!(app, "");
    let resp = post_callback!(app, Some(cookie), &answer(&data, TOKEN));
    let signed_in = session_cookie(&resp).unwrap();

    let foreign = test::TestRequest::post()
        .uri(&format!("{PREFIX}/logout"))
        .insert_header((header::ORIGIN, "https://evil.example"))
        .cookie(signed_in.clone())
        .to_request();
    assert_eq!(
        test::call_service(&app, foreign).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(whoami!(app, signed_in.clone()).0, StatusCode::OK);

    let own = test::TestRequest::post()
        .uri(&format!("{PREFIX}/logout"))
        .insert_header((header::ORIGIN, "http://localhost:8080"))
        .insert_header((header::HOST, "localhost:8080"))
        .cookie(signed_in)
        .to_request();
    let resp = test::call_service(&app, own).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers().get(header::LOCATION).unwrap(), "/bye");
    let removed = session_cookie(&resp).expect("the cookie is removed");
    assert_eq!(whoami!(app, removed).0, StatusCode::UNAUTHORIZED);
}

/// The `handback` value of a redirect login page's return URL.
fn handback_of(data: &Value) -> String {
    let url = url::Url::parse("http://x.invalid")
        .unwrap()
        .join(s(&data["returnUrl"]))
        .unwrap();
    assert_eq!(url.path(), format!("{PREFIX}/return"));
    url.query_pairs()
        .find(|(k, _)| k == "handback")
        .map(|(_, v)| v.into_owned())
        .expect("the redirect page's return URL carries the hand-back")
}

#[actix_web::test]
async fn the_redirect_return_fragment_is_decoded_server_side_when_the_page_cannot() {
    let clock = ManualClock::starting_now();
    let app = app_of(Authenticator::new(
        AppleMusicStrategy::new(config(&clock).login_page(actix_apple_music::LoginPage::Redirect))
            .unwrap(),
    ))
    .await;
    let (data, cookie) = start_login!(app, "");
    let handback = handback_of(&data);
    // The return page holds the developer token, and nothing of the session.
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&format!("{PREFIX}/return?handback={handback}"))
            .cookie(cookie.clone())
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    let ret = page_data(&html, "apple-music-return");
    assert_eq!(ret["developerToken"], data["developerToken"]);
    assert!(ret.get("state").is_none(), "{ret}");
    assert!(!html.contains(s(&data["state"])) && !html.contains(&handback));

    let fragment = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"musicUserToken": TOKEN, "itre": "1", "cid": "abc"}).to_string());
    let resp = post_callback!(
        app,
        Some(cookie),
        &[
            ("fragment", &fragment),
            ("handback", &handback),
            ("id_token_hint", s(&ret["developerToken"])),
        ]
    );
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, me) = whoami!(app, session_cookie(&resp).unwrap());
    assert_eq!(me["token"], TOKEN);
    assert_eq!(me["restricted"], true);
}

/// The login CSRF: a page on another site opens our login page in a window (a login state
/// lands in the victim's session), then navigates that window to the return page with its
/// own token in the fragment. Whatever the return page is given, without this login's
/// hand-back nobody is signed in.
#[actix_web::test]
async fn a_return_the_browser_did_not_get_from_apple_signs_nobody_in() {
    let clock = ManualClock::starting_now();
    let app = app_of(Authenticator::new(
        AppleMusicStrategy::new(config(&clock).login_page(actix_apple_music::LoginPage::Redirect))
            .unwrap(),
    ))
    .await;
    let (data, victim) = start_login!(app, "");
    let handback = handback_of(&data);
    let attacker = base64::engine::general_purpose::STANDARD
        .encode(json!({"musicUserToken": "attacker-token"}).to_string());
    let dev = s(&data["developerToken"]);
    // What the return page posts when reached by a bare navigation: no hand-back, an empty
    // one, a guessed one, another login's, or the state's value in its place.
    let (other, _) = start_login!(app, "");
    let other_handback = handback_of(&other);
    let attempts: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("fragment", &attacker), ("id_token_hint", dev)],
            "missing_state",
        ),
        (
            vec![
                ("fragment", &attacker),
                ("handback", ""),
                ("id_token_hint", dev),
            ],
            "handback_mismatch",
        ),
        (
            vec![
                ("fragment", &attacker),
                ("handback", "guess"),
                ("id_token_hint", dev),
            ],
            "handback_mismatch",
        ),
        (
            vec![
                ("fragment", &attacker),
                ("handback", &other_handback),
                ("id_token_hint", dev),
            ],
            "handback_mismatch",
        ),
        (
            vec![
                ("fragment", &attacker),
                ("handback", s(&data["state"])),
                ("id_token_hint", dev),
            ],
            "handback_mismatch",
        ),
        (
            vec![
                ("code", "attacker-token"),
                ("handback", "guess"),
                ("id_token_hint", dev),
            ],
            "handback_mismatch",
        ),
    ];
    for (fields, reason) in attempts {
        let resp = post_callback!(app, Some(victim.clone()), &fields);
        let (status, body) = error_json(resp).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{fields:?}");
        assert_eq!(body["error"], "token_error");
        assert_eq!(body["reason"], reason, "{fields:?}");
        assert_eq!(whoami!(app, victim.clone()).0, StatusCode::UNAUTHORIZED);
    }
    // The real return of this browser still works, once.
    let own = base64::engine::general_purpose::STANDARD
        .encode(json!({"musicUserToken": TOKEN}).to_string());
    let fields = [
        ("fragment", own.as_str()),
        ("handback", &handback),
        ("id_token_hint", dev),
    ];
    let resp = post_callback!(app, Some(victim.clone()), &fields);
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        whoami!(app, session_cookie(&resp).unwrap()).1["token"],
        TOKEN
    );
    let (_, body) = error_json(post_callback!(app, Some(victim), &fields)).await;
    assert_eq!(
        body["reason"], "state_mismatch",
        "the hand-back is single-use"
    );
}

#[actix_web::test]
async fn the_return_page_exists_only_for_the_redirect_login_page() {
    let clock = ManualClock::starting_now();
    for page in [
        actix_apple_music::LoginPage::MusicKit,
        actix_apple_music::LoginPage::Direct,
    ] {
        let app = app_of(Authenticator::new(
            AppleMusicStrategy::new(config(&clock).login_page(page)).unwrap(),
        ))
        .await;
        let (data, cookie) = start_login!(app, "");
        assert!(
            !s(&data["returnUrl"]).contains('?'),
            "no hand-back outside redirect"
        );
        let resp = test::call_service(
            &app,
            test::TestRequest::get()
                .uri(&format!("{PREFIX}/return"))
                .cookie(cookie)
                .to_request(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{page:?}");
    }
}

#[actix_web::test]
async fn the_longest_accepted_token_still_fits_a_cookie() {
    let clock = ManualClock::starting_now();
    let app = app_of(Authenticator::new(
        AppleMusicStrategy::new(config(&clock)).unwrap(),
    ))
    .await;
    let (data, cookie) = start_login!(app, "");
    let longest = "T".repeat(actix_apple_music::DEFAULT_MAX_USER_TOKEN_LEN);
    let resp = post_callback!(app, Some(cookie), &answer(&data, &longest));
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set_cookie = resp.headers().get(header::SET_COOKIE).unwrap().len();
    assert!(
        set_cookie < 4096,
        "Set-Cookie is {set_cookie} bytes; browsers drop cookies over 4 KiB"
    );
}

#[actix_web::test]
async fn identity_debug_output_redacts_the_token() {
    let identity = AppleMusicIdentity::new(
        actix_apple_music::MusicUserToken::new("secret-mut"),
        datetime!(2026-01-01 0:00 UTC),
        Duration::from_secs(60),
        Some(false),
    );
    let debug = format!("{identity:?}");
    assert!(!debug.contains("secret-mut"), "{debug}");
    assert!(debug.contains("MusicUserToken([redacted])"), "{debug}");
    let params = actix_apple_music::CallbackParams::parse(b"code=secret-mut&state=s").unwrap();
    assert!(!format!("{params:?}").contains("secret-mut"));
}

#[actix_web::test]
async fn failures_go_where_the_app_wants() {
    let clock = ManualClock::starting_now();
    // A failure target: browsers are redirected there with the family and reason; API
    // clients still get JSON.
    let app = app_of(Authenticator::new(
        AppleMusicStrategy::new(config(&clock).failure_target("/oops?from=login")).unwrap(),
    ))
    .await;
    let (data, cookie) = start_login!(app, "");
    let req = test::TestRequest::post()
        .uri(&format!("{PREFIX}/callback"))
        .insert_header((header::ACCEPT, "text/html"))
        .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .cookie(cookie.clone())
        .set_payload(form(&[("error", "declined"), ("state", s(&data["state"]))]))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        resp.headers().get(header::LOCATION).unwrap(),
        "/oops?from=login&error=authorization_error&reason=declined"
    );
    let (status, body) = error_json(post_callback!(app, Some(cookie), &[("code", TOKEN)])).await;
    assert_eq!(
        (status, s(&body["reason"])),
        (StatusCode::BAD_REQUEST, "missing_state")
    );

    // A failure handler replaces the answer entirely.
    let app = app_of(
        Authenticator::new(AppleMusicStrategy::new(config(&clock)).unwrap()).failure_handler(
            |_req: &HttpRequest, error: &SignInError<AppleMusicError>| {
                HttpResponse::ImATeapot().body(format!(
                    "{}:{}",
                    error.kind().as_str(),
                    error.reason()
                ))
            },
        ),
    )
    .await;
    let resp = post_callback!(app, None::<Cookie<'static>>, &[("code", TOKEN)]);
    assert_eq!(resp.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(test::read_body(resp).await, "token_error:missing_state");
}

/// A login state a few seconds old (not yet expired) is accepted; one second before its end
/// too; at its end it is not.
#[actix_web::test]
async fn a_state_is_good_until_its_end_and_not_after() {
    let clock = ManualClock::starting_now();
    let app = app_of(Authenticator::new(
        AppleMusicStrategy::new(config(&clock).state_ttl(Duration::from_secs(60))).unwrap(),
    ))
    .await;
    let (data, cookie) = start_login!(app, "");
    clock.advance(Duration::from_secs(5));
    let resp = post_callback!(app, Some(cookie), &answer(&data, TOKEN));
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "5 s old");

    let (data, cookie) = start_login!(app, "");
    clock.advance(Duration::from_secs(59));
    let resp = post_callback!(app, Some(cookie), &answer(&data, TOKEN));
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "59 s old");

    let (data, cookie) = start_login!(app, "");
    clock.advance(Duration::from_secs(60));
    let (status, body) = error_json(post_callback!(app, Some(cookie), &answer(&data, TOKEN))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["reason"], "state_expired", "60 s old");
}

/// Cookie store, one process: the pre-login cookie replayed after a successful sign-in,
/// with the same state and another token, is refused.
#[actix_web::test]
async fn a_used_state_replayed_with_the_pre_login_cookie_is_refused() {
    let clock = ManualClock::starting_now();
    let app = app_of(Authenticator::new(
        AppleMusicStrategy::new(config(&clock)).unwrap(),
    ))
    .await;
    let (data, pre_login) = start_login!(app, "");
    let resp = post_callback!(app, Some(pre_login.clone()), &answer(&data, TOKEN));
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let resp = post_callback!(
        app,
        Some(pre_login.clone()),
        &answer(&data, "another-token")
    );
    let (status, body) = error_json(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["reason"], "state_mismatch");
    assert_eq!(whoami!(app, pre_login).0, StatusCode::UNAUTHORIZED);
}

/// `Origin` is compared with the request's own scheme and `Host`; forwarded headers count
/// only when the app trusts them, and a configured public origin is the only one accepted.
#[actix_web::test]
async fn same_origin_checks_believe_forwarded_headers_only_when_told() {
    let clock = ManualClock::starting_now();
    let logout = |origin: &str| {
        test::TestRequest::post()
            .uri(&format!("{PREFIX}/logout"))
            .insert_header((header::HOST, "localhost:8080"))
            .insert_header((header::ORIGIN, origin.to_owned()))
            .insert_header(("x-forwarded-host", "evil.example"))
            .insert_header(("x-forwarded-proto", "https"))
            .insert_header((header::FORWARDED, "host=evil.example;proto=https"))
            .to_request()
    };
    let app = app_of(Authenticator::new(
        AppleMusicStrategy::new(config(&clock)).unwrap(),
    ))
    .await;
    let status = |resp: actix_web::dev::ServiceResponse| resp.status();
    assert_eq!(
        status(test::call_service(&app, logout("https://evil.example")).await),
        StatusCode::FORBIDDEN,
        "forwarded headers from any client are not believed"
    );
    assert_eq!(
        status(test::call_service(&app, logout("http://localhost:8080")).await),
        StatusCode::SEE_OTHER
    );

    let app = app_of(Authenticator::new(
        AppleMusicStrategy::new(config(&clock).trust_forwarded_headers(true)).unwrap(),
    ))
    .await;
    assert_eq!(
        status(test::call_service(&app, logout("https://evil.example")).await),
        StatusCode::SEE_OTHER,
        "behind a proxy that sets them, they are"
    );

    let app = app_of(Authenticator::new(
        AppleMusicStrategy::new(
            config(&clock)
                .public_origin("https://app.example")
                .trust_forwarded_headers(true),
        )
        .unwrap(),
    ))
    .await;
    assert_eq!(
        status(test::call_service(&app, logout("https://app.example")).await),
        StatusCode::SEE_OTHER
    );
    for other in ["http://localhost:8080", "https://evil.example"] {
        assert_eq!(
            status(test::call_service(&app, logout(other)).await),
            StatusCode::FORBIDDEN,
            "{other}: the public origin is the only one"
        );
    }
}

/// A callback body that stalls is answered `408` once the body timeout has passed (a real
/// server on a loopback port, a raw socket that sends half a body and waits).
#[actix_web::test]
async fn a_stalled_callback_body_is_answered_408() {
    let clock = ManualClock::starting_now();
    let auth = Authenticator::new(
        AppleMusicStrategy::new(config(&clock).body_timeout(Duration::from_millis(300))).unwrap(),
    );
    let key = Key::generate();
    let base = crate::common::serve(move || {
        App::new()
            .wrap(session(&key))
            .configure(auth.clone().mount(PREFIX))
    });
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let answer = actix_web::rt::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut socket = std::net::TcpStream::connect(addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(8)))
            .unwrap();
        socket
            .write_all(
                b"POST /auth/apple-music/callback HTTP/1.1\r\nHost: localhost\r\n\
                  Content-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\n\
                  Content-Length: 100\r\n\r\nstate=abc",
            )
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = socket.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
}

/// The login page is lean: its script is a static asset under the mount prefix, with a
/// content-hashed name, a year of immutable caching and an SRI hash; the page keeps its JSON
/// data block and stays under 3 KiB.
#[actix_web::test]
async fn the_page_script_is_a_cacheable_asset_and_the_page_is_small() {
    use base64::Engine;
    use sha2::Digest;
    let clock = ManualClock::starting_now();
    let app = app_of(Authenticator::new(
        AppleMusicStrategy::new(config(&clock)).unwrap(),
    ))
    .await;
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&format!("{PREFIX}/login"))
            .to_request(),
    )
    .await;
    let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert!(
        html.len() <= 3 * 1024,
        "the login page is {} bytes",
        html.len()
    );
    let _ = page_data(&html, "apple-music-login");
    let src = html
        .split("<script src=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(
        src.starts_with("assets/login.") && src.ends_with(".js"),
        "{src}"
    );
    let integrity = html
        .split("integrity=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();

    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&format!("{PREFIX}/{src}"))
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers().get(header::CACHE_CONTROL).unwrap(),
        "public, max-age=31536000, immutable"
    );
    assert!(resp
        .headers()
        .get(header::CONTENT_TYPE)
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let body = test::read_body(resp).await;
    let sri = base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(&body));
    assert_eq!(
        integrity,
        format!("sha384-{sri}"),
        "SRI matches what is served"
    );
    assert!(String::from_utf8_lossy(&body).contains("apple-music-login"));

    for missing in ["assets/login.0000000000000000.js", "assets/other.js"] {
        let resp = test::call_service(
            &app,
            test::TestRequest::get()
                .uri(&format!("{PREFIX}/{missing}"))
                .to_request(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{missing}");
    }
}

/// `AppleMusicConfig` composes `FlowOptions` and `ApiOptions` as `AppleIdConfig` does: options
/// set through `flow(|o| …)` and `api(|o| …)` are the ones the sign-in uses.
#[actix_web::test]
async fn the_config_composes_flow_and_api_options() {
    let stand_in = actix_apple_music::test_util::AppleMusicStandIn::new();
    let config = AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate())
        .flow(|o| o.success_target("/library"))
        .api(|o| o.client(stand_in.clone()));
    let app = app_of(Authenticator::new(AppleMusicStrategy::new(config).unwrap())).await;
    let login =
        actix_apple_music::test_util::log_in_with_apple_music(&app, PREFIX, TOKEN, None).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
    assert_eq!(login.location.as_deref(), Some("/library"));
    assert_eq!(
        stand_in.calls(),
        ["GET /v1/me/storefront"],
        "the sign-in asked the stand-in"
    );
}
