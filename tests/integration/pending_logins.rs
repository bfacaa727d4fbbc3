//! A few logins may be pending in one session: a login page opened by another site (a bare
//! navigation to `…/login`) no longer makes the person's own sign-in in progress fail.

use actix_apple_music::developer_token::SigningKey;
use actix_apple_music::{test_util, AppleMusicConfig, AppleMusicStrategy, Authenticator};
use actix_session::storage::CookieSessionStore;
use actix_session::SessionMiddleware;
use actix_web::cookie::{Cookie, Key};
use actix_web::http::StatusCode;
use actix_web::{test, App};

use crate::common::{form, KEY_ID, TEAM_ID};

#[actix_web::test]
async fn another_sites_login_navigations_do_not_fail_the_persons_own_sign_in() {
    let config =
        AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate()).check_with_apple(false);
    let auth = Authenticator::new(AppleMusicStrategy::new(config).unwrap());
    let app = crate::common::app(
        CookieSessionStore::default(),
        Key::generate(),
        auth,
        "/auth/apple-music",
        |_| {},
    )
    .await;
    // A login page: its state and developer token, and the session cookie after it.
    let page = |cookie: Option<Cookie<'static>>| {
        let app = &app;
        async move {
            let mut req = test::TestRequest::get().uri("/auth/apple-music/login");
            if let Some(cookie) = &cookie {
                req = req.cookie(cookie.clone());
            }
            let resp = test::call_service(app, req.to_request()).await;
            let next = resp
                .response()
                .cookies()
                .next()
                .map(|c| c.into_owned())
                .or(cookie)
                .unwrap();
            let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
            let data = test_util::login_page_data(&html);
            (data, next)
        }
    };
    let callback = |data: serde_json::Value, cookie: Cookie<'static>| {
        let app = &app;
        async move {
            let body = form(&[
                ("code", "a-token"),
                ("state", data["state"].as_str().unwrap()),
                ("id_token_hint", data["developerToken"].as_str().unwrap()),
            ]);
            test::call_service(
                app,
                test::TestRequest::post()
                    .uri("/auth/apple-music/callback")
                    .insert_header(("content-type", "application/x-www-form-urlencoded"))
                    .insert_header(("accept", "application/json"))
                    .cookie(cookie)
                    .set_payload(body)
                    .to_request(),
            )
            .await
            .status()
        }
    };
    // The person's login page, then two navigations another site made in the same browser.
    let (mine, cookie) = page(None).await;
    let (_, cookie) = page(Some(cookie)).await;
    let (_, cookie) = page(Some(cookie)).await;
    assert_eq!(callback(mine, cookie).await, StatusCode::SEE_OTHER);

    // Bounded: after three more, the person's first login is gone.
    let (mine, cookie) = page(None).await;
    let mut cookie = cookie;
    for _ in 0..3 {
        cookie = page(Some(cookie)).await.1;
    }
    assert_eq!(callback(mine, cookie).await, StatusCode::BAD_REQUEST);
}

/// A sign-in too large for the session cookie is refused with a typed error before its state
/// is spent (a browser would silently drop the cookie); a server-side store takes it.
#[actix_web::test]
async fn a_sign_in_too_large_for_the_cookie_is_refused_before_the_state_is_spent() {
    use actix_apple_music::session_store::{CompactCookieStore, LifetimeStore, StoreFailures};
    let config = AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate())
        .check_with_apple(false)
        .max_user_token_len(4000);
    let auth = Authenticator::new(AppleMusicStrategy::new(config).unwrap());
    let app = test::init_service(
        App::new()
            .wrap(StoreFailures::around(
                SessionMiddleware::builder(
                    LifetimeStore::new(CompactCookieStore::new()),
                    Key::generate(),
                )
                .cookie_secure(false)
                .build(),
            ))
            .configure(auth.mount("/auth/apple-music")),
    )
    .await;
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/auth/apple-music/login")
            .to_request(),
    )
    .await;
    let cookie = resp.response().cookies().next().unwrap().into_owned();
    let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    let data = test_util::login_page_data(&html);
    let callback = |token: String| {
        let (app, data, cookie) = (&app, &data, cookie.clone());
        async move {
            let body = form(&[
                ("code", &token),
                ("state", data["state"].as_str().unwrap()),
                ("id_token_hint", data["developerToken"].as_str().unwrap()),
            ]);
            let resp = test::call_service(
                app,
                test::TestRequest::post()
                    .uri("/auth/apple-music/callback")
                    .insert_header(("content-type", "application/x-www-form-urlencoded"))
                    .insert_header(("accept", "application/json"))
                    .cookie(cookie)
                    .set_payload(body)
                    .to_request(),
            )
            .await;
            let status = resp.status();
            let json: serde_json::Value =
                serde_json::from_slice(&test::read_body(resp).await).unwrap_or_default();
            (status, json)
        }
    };
    let (status, body) = callback("x".repeat(3500)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["reason"], "session_too_large");
    // The state was not spent: the same login goes on with a token that fits.
    let (status, body) = callback("y".repeat(600)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
}

/// Two sign-ins begun in two tabs: the one cancelled (`declined`) spends its own login only;
/// the other still completes.
#[actix_web::test]
async fn a_cancelled_sign_in_in_one_tab_leaves_the_other_tabs_login_pending() {
    let config =
        AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate()).check_with_apple(false);
    let auth = Authenticator::new(AppleMusicStrategy::new(config).unwrap());
    let app = crate::common::app(
        CookieSessionStore::default(),
        Key::generate(),
        auth,
        "/auth/apple-music",
        |_| {},
    )
    .await;
    let next = |resp: &actix_web::dev::ServiceResponse, cookie: Cookie<'static>| {
        resp.response()
            .cookies()
            .next()
            .map(|c| c.into_owned())
            .unwrap_or(cookie)
    };
    let mut cookie: Option<Cookie<'static>> = None;
    let mut tabs = Vec::new();
    for _ in 0..2 {
        let mut req = test::TestRequest::get().uri("/auth/apple-music/login");
        if let Some(c) = &cookie {
            req = req.cookie(c.clone());
        }
        let resp = test::call_service(&app, req.to_request()).await;
        let c = resp
            .response()
            .cookies()
            .next()
            .map(|c| c.into_owned())
            .or(cookie.clone())
            .unwrap();
        let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        tabs.push(test_util::login_page_data(&html));
        cookie = Some(c);
    }
    let post = |fields: &[(&str, &str)], cookie: Cookie<'static>| {
        test::TestRequest::post()
            .uri("/auth/apple-music/callback")
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .insert_header(("accept", "application/json"))
            .cookie(cookie)
            .set_payload(form(fields))
            .to_request()
    };
    let cookie = cookie.unwrap();
    let first = tabs[0]["state"].as_str().unwrap();
    let resp = test::call_service(
        &app,
        post(&[("error", "declined"), ("state", first)], cookie.clone()),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let cookie = next(&resp, cookie);
    let resp = test::call_service(
        &app,
        post(
            &[
                ("code", "a-token"),
                ("state", tabs[1]["state"].as_str().unwrap()),
                ("id_token_hint", tabs[1]["developerToken"].as_str().unwrap()),
            ],
            cookie,
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}
