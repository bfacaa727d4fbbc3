//! `LifetimeStore` and `StoreFailures` over an in-memory store that can be taken down: `503`s
//! while the store fails or hangs, and recovery; and the store-agnostic suite
//! (`tests/common/store_suite.rs`: TTLs that follow the identity, renewal, sign-out, foreign and
//! tampered cookies) on the memory store and both cookie stores (Redis runs it in
//! `tests/redis.rs`).

use crate::common::{self, session_cookie};

use std::time::Duration;

use actix_apple_music::developer_token::SigningKey;
use actix_apple_music::session_store::{CompactCookieStore, LifetimeStore};
use actix_apple_music::{AppleMusicConfig, AppleMusicStrategy, AppleMusicUser, Authenticator};
use actix_web::cookie::{Cookie, Key};
use actix_web::dev::ServiceResponse;
use actix_web::http::{header, StatusCode};
use actix_web::{test, web, HttpResponse};
use common::memory_store::{MemoryStore, DOWN, HANGING, SLOW, UP};
use common::{form, page_data, KEY_ID, TEAM_ID};
use serde_json::Value;

const PREFIX: &str = "/auth/apple-music";
const HTML: &str = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8";

async fn me(_user: AppleMusicUser) -> HttpResponse {
    HttpResponse::Ok().finish()
}

/// The app over `store` under `LifetimeStore` (a 200 ms store time), signed with `key`.
async fn app_with<St: actix_session::storage::SessionStore + 'static>(
    store: St,
    key: Key,
) -> impl common::TestApp {
    let config = AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate())
        .check_with_apple(false)
        .user_token_lifetime(Duration::from_secs(7200))
        .session_margin(Duration::from_secs(300));
    let auth = Authenticator::new(AppleMusicStrategy::new(config).unwrap());
    let store = LifetimeStore::new(store).timeout(Duration::from_millis(200));
    common::app(store, key, auth, PREFIX, |cfg| {
        cfg.route("/me", web::get().to(me));
    })
    .await
}

async fn app(store: MemoryStore) -> impl common::TestApp {
    app_with(store, Key::generate()).await
}

/// Calls the app the way actix's server does: an error from the middleware chain (as
/// actix-session and `StoreFailures` answer when the store failed before the response
/// existed) becomes its own response. Answers status, headers and body.
async fn call<S, B>(app: &S, req: actix_http::Request) -> (StatusCode, header::HeaderMap, String)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    match test::try_call_service(app, req).await {
        Ok(resp) => {
            let (status, headers) = (resp.status(), resp.headers().clone());
            let body = test::read_body(resp).await;
            (status, headers, String::from_utf8(body.to_vec()).unwrap())
        }
        Err(error) => {
            let resp = error.error_response();
            let (status, headers) = (resp.status(), resp.headers().clone());
            let body = actix_web::body::to_bytes(resp.into_body()).await.unwrap();
            (status, headers, String::from_utf8(body.to_vec()).unwrap())
        }
    }
}

/// Opens the login page: the session cookie and the page's data block.
async fn start_login<S, B>(app: &S) -> (Cookie<'static>, Value)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let uri = format!("{PREFIX}/login");
    let login = test::call_service(app, test::TestRequest::get().uri(&uri).to_request()).await;
    let cookie = session_cookie(&login).unwrap();
    let html = test::read_body(login).await;
    let data = page_data(std::str::from_utf8(&html).unwrap(), "apple-music-login");
    (cookie, data)
}

/// Answers the login with `code`.
async fn finish_login<S, B>(
    app: &S,
    cookie: Cookie<'static>,
    data: &Value,
    code: &str,
) -> ServiceResponse<B>
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = ServiceResponse<B>,
        Error = actix_web::Error,
    >,
{
    test::call_service(app, callback(cookie, data, code)).await
}

/// The callback a browser posts for the login page `data`, with the music user token `code`.
fn callback(cookie: Cookie<'static>, data: &Value, code: &str) -> actix_http::Request {
    test::TestRequest::post()
        .uri(&format!("{PREFIX}/callback"))
        .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .insert_header((header::ACCEPT, "application/json"))
        .cookie(cookie)
        .set_payload(form(&[
            ("code", code),
            ("state", data["state"].as_str().unwrap()),
            ("id_token_hint", data["developerToken"].as_str().unwrap()),
        ]))
        .to_request()
}

#[actix_web::test]
async fn a_failing_or_hanging_store_answers_503_and_the_app_recovers() {
    let store = MemoryStore::default();
    let app = app(store.clone()).await;
    // A signed-in session, made while the store is up.
    let (cookie, data) = start_login(&app).await;
    let done = finish_login(&app, cookie, &data, "mut-outage").await;
    let cookie = session_cookie(&done).unwrap();

    for (mode, what) in [(DOWN, "down"), (HANGING, "hanging")] {
        store.set_mode(mode);
        let (status, headers, text) = call(
            &app,
            test::TestRequest::get()
                .uri("/me")
                .cookie(cookie.clone())
                .to_request(),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}");
        assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "5");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["error"], "session_store_unavailable", "{what}");
        assert_eq!(body["operation"], "load");

        let (status, headers, text) = call(
            &app,
            test::TestRequest::get()
                .uri("/me")
                .insert_header((header::ACCEPT, HTML))
                .cookie(cookie.clone())
                .to_request(),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let content_type = headers.get(header::CONTENT_TYPE).unwrap().to_str().unwrap();
        assert!(content_type.starts_with("text/html"), "{content_type}");
        assert!(
            text.contains("data-error=\"session_store_unavailable\""),
            "{text}"
        );

        // A new visitor's login page cannot save its session.
        let (status, _, text) = call(
            &app,
            test::TestRequest::get()
                .uri(&format!("{PREFIX}/login"))
                .insert_header((header::ACCEPT, "application/json"))
                .to_request(),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["operation"], "save");
    }

    store.set_mode(UP);
    let back = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/me")
            .cookie(cookie)
            .to_request(),
    )
    .await;
    assert_eq!(
        back.status(),
        StatusCode::OK,
        "served again once the store is back"
    );
}

/// The store's time limit (200 ms here) is for the whole request, not for each operation: a
/// store answering every operation in 150 ms serves a guarded request (one load), but a
/// sign-in (load, then save) is answered 503 once the request's 200 ms are used up.
#[actix_web::test]
async fn a_slow_store_costs_a_request_at_most_its_time_limit_in_all() {
    let store = MemoryStore::default();
    let app = app(store.clone()).await;
    let (cookie, data) = start_login(&app).await;
    let done = finish_login(&app, cookie, &data, "mut-slow-1").await;
    let signed_in = session_cookie(&done).unwrap();
    let (cookie, data) = start_login(&app).await;

    store.set_mode(SLOW);
    let (status, _, _) = call(
        &app,
        test::TestRequest::get()
            .uri("/me")
            .cookie(signed_in)
            .to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "one slow operation fits");

    let started = std::time::Instant::now();
    let (status, _, text) = call(&app, callback(cookie, &data, "mut-slow-2")).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"], "session_store_unavailable", "{body}");
    // Two operations of 150 ms each would be 300 ms; the request's limit is 200 ms.
    assert!(
        took < std::time::Duration::from_millis(290),
        "took {took:?}"
    );
}

/// Switching from actix-session's cookie store to the compact one keeps everyone signed in:
/// its JSON cookies still read, and the next write is compact (and smaller).
#[actix_web::test]
async fn cookies_of_actix_sessions_cookie_store_still_read_after_switching() {
    let key = Key::generate();
    let before = app_with(
        actix_session::storage::CookieSessionStore::default(),
        key.clone(),
    )
    .await;
    let (cookie, data) = start_login(&before).await;
    let signed_in = finish_login(&before, cookie, &data, "sandbox.token").await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let old = session_cookie(&signed_in).unwrap();

    let after = app_with(CompactCookieStore::new(), key).await;
    let me = test::TestRequest::get().uri("/me").cookie(old.clone());
    let (status, _, _) = call(&after, me.to_request()).await;
    assert_eq!(status, StatusCode::OK, "the old cookie still signs in");

    // A new sign-in on the compact store: the same identity in a smaller cookie.
    let (cookie, data) = start_login(&after).await;
    let signed_in = finish_login(&after, cookie, &data, "sandbox.token").await;
    let new = session_cookie(&signed_in).unwrap();
    assert!(
        new.value().len() < old.value().len(),
        "compact {} bytes, JSON {} bytes",
        new.value().len(),
        old.value().len()
    );
    let me = test::TestRequest::get().uri("/me").cookie(new);
    assert_eq!(call(&after, me.to_request()).await.0, StatusCode::OK);
}

/// The store-agnostic suite (`tests/common/store_suite.rs`) on the in-memory store, plain and
/// sealed; Redis runs it in `tests/redis.rs`.
#[actix_web::test]
async fn the_store_suite_on_the_memory_store() {
    use common::store_suite::{run, ServerSide};
    let server_side = |store: &MemoryStore| {
        let (keys, ttl) = (store.clone(), store.clone());
        Some(ServerSide {
            keys: Box::new(move || keys.keys()),
            ttl: Box::new(move |key| ttl.ttl(key)),
        })
    };
    let plain = MemoryStore::default();
    run(
        "memory",
        || LifetimeStore::new(plain.clone()),
        server_side(&plain),
    )
    .await;
    let sealed = MemoryStore::default();
    let sealing = Key::generate();
    run(
        "memory, sealed",
        || LifetimeStore::sealed(sealed.clone(), &sealing),
        server_side(&sealed),
    )
    .await;
}

/// The same suite on both cookie stores: actix-session's and the crate's compact one.
#[actix_web::test]
async fn the_store_suite_on_both_cookie_stores() {
    use common::store_suite::run;
    run(
        "actix-session's cookie store",
        || LifetimeStore::new(actix_session::storage::CookieSessionStore::default()),
        None,
    )
    .await;
    run(
        "the compact cookie store",
        || LifetimeStore::new(CompactCookieStore::new()),
        None,
    )
    .await;
}
