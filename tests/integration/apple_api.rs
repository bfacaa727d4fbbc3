//! Asking Apple: sign-in verification with `GET /v1/me/storefront`, the developer-token
//! self-check and the API helper, against a real HTTP server on a loopback port 0 that stands
//! in for Apple Music API (no mocked client).

use crate::common::{self, session_cookie};

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix_apple_music::apple_music_api::{
    ApiError, ApiRequest, AppleCheck, DeveloperTokenCheck, UnavailablePolicy,
};
use actix_apple_music::developer_token::SigningKey;
use actix_apple_music::session_store::{CompactCookieStore, LifetimeStore};
use actix_apple_music::{AppleMusicConfig, AppleMusicStrategy, AppleMusicUser, Authenticator};
use actix_web::cookie::{Cookie, Key};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::{test, web, App, HttpRequest, HttpResponse};
use common::{form, page_data, KEY_ID, TEAM_ID};
use serde_json::{json, Value};

const PREFIX: &str = "/auth/apple-music";
const HTML: &str = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8";

/// What the stand-in answers.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    Ok,
    Status(u16),
    NoSubscription,
    RateLimited,
    RateLimitedFor(&'static str),
    Hang,
    Huge,
    Malformed,
    RedirectElsewhere,
}

/// A request the stand-in received.
#[derive(Clone, Debug)]
struct Seen {
    app_client: bool,
    path: String,
    authorization: Option<String>,
    music_user_token: Option<String>,
}

struct FakeApple {
    base: String,
    behaviour: Arc<Mutex<Behaviour>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

#[derive(Clone)]
struct FakeState {
    behaviour: Arc<Mutex<Behaviour>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    elsewhere: String,
}

async fn fake_apple(req: HttpRequest, state: web::Data<FakeState>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    state.seen.lock().unwrap().push(Seen {
        app_client: header("x-app-client").is_some(),
        path: req.path().to_owned(),
        authorization: header("authorization"),
        music_user_token: header("music-user-token"),
    });
    let behaviour = *state.behaviour.lock().unwrap();
    match behaviour {
        Behaviour::Ok if req.path() == "/v1/me/storefront" => HttpResponse::Ok().json(json!({
            "data": [{"id": "gb", "type": "storefronts", "attributes": {
                "name": "United Kingdom", "defaultLanguageTag": "en-GB"}}]
        })),
        Behaviour::Ok => HttpResponse::Ok().json(json!({"data": []})),
        Behaviour::Status(code) => {
            HttpResponse::build(StatusCode::from_u16(code).unwrap()).json(json!({"errors": []}))
        }
        Behaviour::NoSubscription => HttpResponse::BadRequest().json(json!({
            "errors": [{"status": "400", "code": "40015", "title": "No subscription"}]
        })),
        Behaviour::RateLimited => HttpResponse::TooManyRequests()
            .insert_header((header::RETRY_AFTER, "7"))
            .finish(),
        Behaviour::RateLimitedFor(wait) => HttpResponse::TooManyRequests()
            .insert_header((header::RETRY_AFTER, wait))
            .finish(),
        Behaviour::Hang => {
            actix_web::rt::time::sleep(Duration::from_secs(30)).await;
            HttpResponse::Ok().finish()
        }
        Behaviour::Huge => HttpResponse::Ok()
            .content_type("application/json")
            .body(vec![b' '; 10 * 1024 * 1024]),
        Behaviour::Malformed => HttpResponse::Ok()
            .content_type("application/json")
            .body("{\"data\": [ not json"),
        Behaviour::RedirectElsewhere => HttpResponse::Found()
            .insert_header((
                header::LOCATION,
                format!("{}{}", state.elsewhere, req.path()),
            ))
            .finish(),
    }
}

/// Starts a stand-in on a free loopback port; `elsewhere` is where redirects point.
fn start_fake(behaviour: Behaviour, elsewhere: &str) -> FakeApple {
    let state = FakeState {
        behaviour: Arc::new(Mutex::new(behaviour)),
        seen: Arc::new(Mutex::new(Vec::new())),
        elsewhere: elsewhere.to_owned(),
    };
    let (behaviour, seen) = (state.behaviour.clone(), state.seen.clone());
    let base = crate::common::serve(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .default_service(web::to(fake_apple))
    });
    FakeApple {
        base,
        behaviour,
        seen,
    }
}

impl FakeApple {
    fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Every log line of this test binary, to check that no token reaches a log.
pub(crate) fn log_lines() -> &'static Mutex<Vec<String>> {
    static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LINES.get_or_init(|| Mutex::new(Vec::new()))
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        log_lines()
            .lock()
            .unwrap()
            .push(format!("{} {}", record.target(), record.args()));
    }
    fn flush(&self) {}
}

pub(crate) fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        log::set_boxed_logger(Box::new(Capture)).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
}

fn assert_no_secret_logged(secrets: &[&str]) {
    for line in log_lines().lock().unwrap().iter() {
        for secret in secrets {
            assert!(!line.contains(secret), "a log line holds a token: {line}");
        }
    }
}

fn config(base: &str) -> AppleMusicConfig {
    AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate())
        .api_base_url(base)
        .api_timeout(Duration::from_millis(500))
}

async fn me(user: AppleMusicUser) -> HttpResponse {
    let identity = user.identity();
    HttpResponse::Ok().json(json!({
        "storefront": identity.storefront().map(|s| json!({"id": s.id, "name": s.name})),
        "verification": identity.apple_check(),
    }))
}

async fn library(user: AppleMusicUser) -> Result<HttpResponse, ApiError> {
    let answer = user.api(ApiRequest::get("/v1/me/library/songs")).await?;
    Ok(HttpResponse::Ok().json(answer.json::<Value>()?))
}

/// The stack the docs recommend for one instance: the compact cookie store.
async fn app(config: AppleMusicConfig) -> impl crate::common::TestApp {
    let auth = Authenticator::new(AppleMusicStrategy::new(config).unwrap());
    let store = LifetimeStore::new(CompactCookieStore::new());
    crate::common::app(store, Key::generate(), auth, PREFIX, |cfg| {
        cfg.route("/me", web::get().to(me))
            .route("/library", web::get().to(library));
    })
    .await
}

/// Login page, then a callback carrying `code`: answers the callback's response, the
/// developer token the page handed out, and the session cookie to use next.
async fn sign_in<S>(app: &S, code: &str) -> (ServiceResponse, String, Cookie<'static>)
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let login = test::call_service(
        app,
        test::TestRequest::get()
            .uri(&format!("{PREFIX}/login"))
            .to_request(),
    )
    .await;
    let cookie = session_cookie(&login).expect("the login sets a session");
    let html = String::from_utf8(test::read_body(login).await.to_vec()).unwrap();
    let data = page_data(&html, "apple-music-login");
    let developer_token = data["developerToken"].as_str().unwrap().to_owned();
    let callback = test::call_service(
        app,
        test::TestRequest::post()
            .uri(&format!("{PREFIX}/callback"))
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .insert_header((header::ACCEPT, "application/json"))
            .cookie(cookie.clone())
            .set_payload(form(&[
                ("code", code),
                ("state", data["state"].as_str().unwrap()),
                ("id_token_hint", &developer_token),
            ]))
            .to_request(),
    )
    .await;
    let cookie = session_cookie(&callback).unwrap_or(cookie);
    (callback, developer_token, cookie)
}

/// `GET uri` with the session cookie.
async fn get<S>(app: &S, uri: &str, cookie: Cookie<'static>) -> ServiceResponse
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    test::call_service(
        app,
        test::TestRequest::get()
            .uri(uri)
            .cookie(cookie)
            .to_request(),
    )
    .await
}

async fn json_of(resp: ServiceResponse) -> Value {
    serde_json::from_slice(&test::read_body(resp).await).unwrap()
}

/// Signs in while the stand-in answers `behaviour`; answers the callback's status, headers
/// and JSON body, after checking that the answer names no token.
async fn failed_sign_in(behaviour: Behaviour) -> (StatusCode, header::HeaderMap, Value) {
    capture_logs();
    let fake = start_fake(behaviour, "http://127.0.0.1:9");
    let app = app(config(&fake.base)).await;
    let code = format!("user-token-{behaviour:?}-Zq81");
    let (resp, developer_token, cookie) = sign_in(&app, &code).await;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = json_of(resp).await;
    let text = body.to_string();
    assert!(!text.contains(&code) && !text.contains(&developer_token));
    assert_no_secret_logged(&[&code, &developer_token]);
    // Not signed in afterwards.
    let me = get(&app, "/me", cookie).await;
    assert_eq!(
        me.status(),
        StatusCode::UNAUTHORIZED,
        "{behaviour:?} signed the user in"
    );
    (status, headers, body)
}

#[actix_web::test]
async fn a_verified_sign_in_carries_the_storefront_and_sent_both_tokens() {
    capture_logs();
    let fake = start_fake(Behaviour::Ok, "http://127.0.0.1:9");
    let app = app(config(&fake.base)).await;
    let code = "user-token-Verified-7Hq2";
    let (resp, developer_token, cookie) = sign_in(&app, code).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);

    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/me/storefront");
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {developer_token}").as_str())
    );
    assert_eq!(seen[0].music_user_token.as_deref(), Some(code));

    let me = get(&app, "/me", cookie).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(
        json_of(me).await,
        json!({"storefront": {"id": "gb", "name": "United Kingdom"}, "verification": "verified"})
    );
    assert_no_secret_logged(&[code, &developer_token]);
}

#[actix_web::test]
async fn apple_refusing_the_user_token_is_a_token_error() {
    let (status, _, body) = failed_sign_in(Behaviour::Status(403)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "token_error");
    assert_eq!(body["reason"], "rejected_by_apple");
}

#[actix_web::test]
async fn no_subscription_is_an_authorization_error() {
    let (status, _, body) = failed_sign_in(Behaviour::NoSubscription).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "authorization_error");
    assert_eq!(body["reason"], "no_subscription");
}

#[actix_web::test]
async fn a_refused_developer_token_is_a_500_that_says_what_to_check() {
    let (status, _, body) = failed_sign_in(Behaviour::Status(401)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"], "upstream_error");
    assert_eq!(body["reason"], "developer_token_rejected");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("team ID") && message.contains("key ID") && message.contains(".p8"));
    assert!(log_lines()
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("refused this app's developer token")));
}

#[actix_web::test]
async fn rate_limiting_is_a_503_with_retry_after() {
    let (status, headers, body) = failed_sign_in(Behaviour::RateLimited).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "7");
    assert_eq!(body["error"], "upstream_error");
    assert_eq!(body["reason"], "rate_limited");
}

/// The app hands in its own HTTP client (made once per thread); the sign-in goes through it.
#[actix_web::test]
async fn the_app_can_hand_in_its_own_http_client() {
    let fake = start_fake(Behaviour::Ok, "http://127.0.0.1:9");
    let made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = made.clone();
    let app = app(config(&fake.base).api_http_client(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        awc::Client::builder()
            .disable_redirects()
            .add_default_header(("x-app-client", "yes"))
            .finish()
    }))
    .await;
    let (resp, _, _) = sign_in(&app, "user-token-own-client").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (resp, _, _) = sign_in(&app, "user-token-own-client-2").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        made.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one client per thread"
    );
    assert!(
        fake.seen().iter().all(|s| s.app_client),
        "every call went through the app's client"
    );
}

/// A non-2xx answer from Apple is a typed error, never a success: the README's `songs`
/// handler answers Apple's 404 as 404, not `200 {"errors": …}`.
#[actix_web::test]
async fn an_apple_404_is_an_error_with_its_status() {
    let fake = start_fake(Behaviour::Ok, "http://127.0.0.1:9");
    let app = app(config(&fake.base)).await;
    let (_, _, cookie) = sign_in(&app, "user-token-404").await;
    fake.set(Behaviour::Status(404));
    let resp = get(&app, "/library", cookie.clone()).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body = json_of(resp).await;
    assert_eq!(body["error"], "upstream_error");
    assert_eq!(body["reason"], "apple_status");
    fake.set(Behaviour::Status(400));
    assert_eq!(
        get(&app, "/library", cookie).await.status(),
        StatusCode::BAD_GATEWAY
    );
}

#[actix_web::test]
async fn a_retry_after_passed_on_is_at_most_an_hour() {
    let (status, headers, body) = failed_sign_in(Behaviour::RateLimitedFor("99999999999999")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "3600");
    assert_eq!(body["reason"], "rate_limited");
    let (_, headers, _) = failed_sign_in(Behaviour::RateLimitedFor("3599")).await;
    assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "3599");
}

/// Twenty callbacks with one state and one cookie, at once: exactly one signs in, and Apple
/// is asked once. Afterwards the pre-login cookie with the same state and another token is
/// refused without asking Apple again.
#[actix_web::test]
async fn parallel_callbacks_with_one_state_sign_in_once_and_ask_apple_once() {
    let fake = start_fake(Behaviour::Ok, "http://127.0.0.1:9");
    let app = app(config(&fake.base)).await;
    let login = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&format!("{PREFIX}/login"))
            .to_request(),
    )
    .await;
    let pre_login = session_cookie(&login).unwrap();
    let html = String::from_utf8(test::read_body(login).await.to_vec()).unwrap();
    let data = page_data(&html, "apple-music-login");
    let callback = |code: String| {
        test::TestRequest::post()
            .uri(&format!("{PREFIX}/callback"))
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .insert_header((header::ACCEPT, "application/json"))
            .cookie(pre_login.clone())
            .set_payload(form(&[
                ("code", code.as_str()),
                ("state", data["state"].as_str().unwrap()),
                ("id_token_hint", data["developerToken"].as_str().unwrap()),
            ]))
            .to_request()
    };
    let answers = futures_util::future::join_all(
        (0..20).map(|i| test::call_service(&app, callback(format!("parallel-token-{i}")))),
    )
    .await;
    let mut signed_in = 0;
    for answer in answers {
        if answer.status() == StatusCode::SEE_OTHER {
            signed_in += 1;
            let me = get(&app, "/me", session_cookie(&answer).unwrap()).await;
            assert_eq!(me.status(), StatusCode::OK);
        } else {
            assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
            assert_eq!(json_of(answer).await["reason"], "state_mismatch");
        }
    }
    assert_eq!(signed_in, 1, "exactly one of 20 signs in");
    let storefront_calls = || {
        fake.seen()
            .iter()
            .filter(|s| s.path == "/v1/me/storefront")
            .count()
    };
    assert_eq!(storefront_calls(), 1, "Apple is asked once per state");

    // The replay: the pre-login cookie, the same state, another token.
    let replay = test::call_service(&app, callback("replayed-token".into())).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(replay).await["reason"], "state_mismatch");
    assert_eq!(storefront_calls(), 1, "a refused state costs no Apple call");
}

#[actix_web::test]
async fn a_server_that_never_answers_times_out_fail_closed() {
    let started = std::time::Instant::now();
    let (status, headers, body) = failed_sign_in(Behaviour::Hang).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the timeout did not apply"
    );
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert_eq!(body["reason"], "apple_unavailable");
}

#[actix_web::test]
async fn a_ten_megabyte_body_is_not_read() {
    let (status, _, body) = failed_sign_in(Behaviour::Huge).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["reason"], "apple_unavailable");
    assert!(body["message"].as_str().unwrap().contains("larger than"));
}

#[actix_web::test]
async fn malformed_json_and_5xx_are_apple_unavailable() {
    for behaviour in [Behaviour::Malformed, Behaviour::Status(502)] {
        let (status, _, body) = failed_sign_in(behaviour).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{behaviour:?}");
        assert_eq!(body["error"], "upstream_error");
        assert_eq!(body["reason"], "apple_unavailable");
    }
}

#[actix_web::test]
async fn a_redirect_to_another_host_is_not_followed() {
    capture_logs();
    let elsewhere = start_fake(Behaviour::Ok, "http://127.0.0.1:9");
    let fake = start_fake(Behaviour::RedirectElsewhere, &elsewhere.base);
    let app = app(config(&fake.base)).await;
    let (resp, _, _) = sign_in(&app, "user-token-Redirect-1").await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json_of(resp).await["reason"], "apple_unavailable");
    assert_eq!(fake.seen().len(), 1);
    assert!(elsewhere.seen().is_empty(), "the redirect was followed");
}

#[actix_web::test]
async fn accept_unverified_signs_in_when_apple_is_down_but_not_when_it_refuses() {
    capture_logs();
    let fake = start_fake(Behaviour::Status(503), "http://127.0.0.1:9");
    let app =
        app(config(&fake.base).when_apple_unavailable(UnavailablePolicy::AcceptUnverified)).await;
    let (resp, _, cookie) = sign_in(&app, "user-token-Unverified-1").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let me = get(&app, "/me", cookie).await;
    assert_eq!(
        json_of(me).await,
        json!({"storefront": null, "verification": "unverified"})
    );

    fake.set(Behaviour::Status(403));
    let (resp, _, _) = sign_in(&app, "user-token-Unverified-2").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn verification_off_asks_nobody() {
    let fake = start_fake(Behaviour::Status(403), "http://127.0.0.1:9");
    let app = app(config(&fake.base).check_with_apple(false)).await;
    let (resp, _, cookie) = sign_in(&app, "user-token-Off-1").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(fake.seen().is_empty());
    let me = get(&app, "/me", cookie).await;
    assert_eq!(
        json_of(me).await,
        json!({"storefront": null, "verification": "off"})
    );
}

#[actix_web::test]
async fn the_self_check_answers_accepted_rejected_or_inconclusive() {
    let fake = start_fake(Behaviour::Ok, "http://127.0.0.1:9");
    let strategy = AppleMusicStrategy::new(config(&fake.base)).unwrap();
    let api = strategy.api();
    assert_eq!(
        api.check_developer_token().await,
        DeveloperTokenCheck::Accepted
    );
    let seen = fake.seen();
    assert_eq!(seen[0].path, "/v1/test");
    assert!(seen[0]
        .authorization
        .as_deref()
        .unwrap()
        .starts_with("Bearer ey"));
    assert_eq!(seen[0].music_user_token, None);

    fake.set(Behaviour::Status(401));
    assert_eq!(
        api.check_developer_token().await,
        DeveloperTokenCheck::Rejected { status: 401 }
    );
    fake.set(Behaviour::Status(403));
    assert_eq!(
        api.check_developer_token().await,
        DeveloperTokenCheck::Rejected { status: 403 }
    );
    // Only a 200 says "accepted": another success, or a 404, says nothing either way.
    for status in [204, 404, 500] {
        fake.set(Behaviour::Status(status));
        let check = api.check_developer_token().await;
        assert!(
            matches!(check, DeveloperTokenCheck::Inconclusive { .. }),
            "{status}: {check:?}"
        );
    }
    fake.set(Behaviour::Hang);
    let check = api.check_developer_token().await;
    assert!(matches!(check, DeveloperTokenCheck::Inconclusive { .. }));
    assert!(check.to_string().contains("could not check"));
    // Nothing listens on port 9 of loopback: a connection failure is inconclusive too.
    let nowhere = AppleMusicStrategy::new(config("http://127.0.0.1:9")).unwrap();
    assert!(matches!(
        nowhere.api().check_developer_token().await,
        DeveloperTokenCheck::Inconclusive { .. }
    ));
}

#[actix_web::test]
async fn a_403_from_the_api_helper_invalidates_and_the_next_guarded_request_relogs_with_prompt() {
    capture_logs();
    let fake = start_fake(Behaviour::Ok, "http://127.0.0.1:9");
    let app = app(config(&fake.base)).await;
    let code = "user-token-Helper-4Kd9";
    let (resp, developer_token, cookie) = sign_in(&app, code).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);

    // The helper sends both tokens and hands the answer back.
    let ok = get(&app, "/library", cookie.clone()).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let last = fake.seen().pop().unwrap();
    assert_eq!(last.path, "/v1/me/library/songs");
    assert_eq!(last.music_user_token.as_deref(), Some(code));

    // Apple now refuses the token: the helper's error, and the identity is gone.
    fake.set(Behaviour::Status(403));
    let refused = get(&app, "/library", cookie.clone()).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let cookie = session_cookie(&refused).expect("the session changed");
    let body = json_of(refused).await;
    assert_eq!(body["error"], "reauthentication_required");

    let next = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/me")
            .insert_header((header::ACCEPT, HTML))
            .cookie(cookie)
            .to_request(),
    )
    .await;
    assert_eq!(next.status(), StatusCode::SEE_OTHER);
    let location = next
        .headers()
        .get(header::LOCATION)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        location.starts_with(&format!("{PREFIX}/login?prompt=login&return_to=%2Fme")),
        "{location}"
    );
    assert_no_secret_logged(&[code, &developer_token]);
}

#[actix_web::test]
async fn errors_and_identities_do_not_show_tokens_in_debug_output() {
    let fake = start_fake(Behaviour::Ok, "http://127.0.0.1:9");
    let strategy = AppleMusicStrategy::new(config(&fake.base)).unwrap();
    let token = actix_apple_music::MusicUserToken::new("user-token-Debug-55");
    let storefront = strategy.api().storefront(&token).await.unwrap();
    let identity = actix_apple_music::AppleMusicIdentity::new(
        token.clone(),
        time::OffsetDateTime::now_utc(),
        Duration::from_secs(3600),
        None,
    );
    // A verified identity comes only out of the crate's own check with Apple (see
    // `a_verified_sign_in_carries_the_storefront_and_sent_both_tokens`).
    assert_eq!(identity.apple_check(), AppleCheck::Off);
    let shown = format!(
        "{identity:?} {storefront:?} {:?} {:?}",
        strategy.api(),
        strategy
    );
    assert!(!shown.contains("user-token-Debug-55"));
    assert!(!shown.contains(strategy.signer().token().as_str()));
    fake.set(Behaviour::Status(403));
    let error = strategy.api().storefront(&token).await.unwrap_err();
    assert_eq!(error, ApiError::UserTokenRejected);
    assert!(!format!("{error:?} {error}").contains("user-token-Debug-55"));
}

#[actix_web::test]
async fn bad_requests_and_options_are_refused_before_anything_is_sent() {
    let fake = start_fake(Behaviour::Ok, "http://127.0.0.1:9");
    let strategy = AppleMusicStrategy::new(config(&fake.base)).unwrap();
    // A path outside the API.
    let bad = strategy
        .api()
        .send(ApiRequest::get("https://elsewhere.example/v1/x"), None)
        .await
        .unwrap_err();
    assert!(matches!(bad, ApiError::InvalidPath { .. }));
    // A body that is not JSON (a map with non-string keys).
    let body: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
    let bad = strategy
        .api()
        .send(ApiRequest::post("/v1/me/library").json(&body), None)
        .await
        .unwrap_err();
    assert!(matches!(bad, ApiError::InvalidBody { .. }), "{bad:?}");
    assert_eq!(
        actix_web::ResponseError::status_code(&bad),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert!(fake.seen().is_empty(), "nothing was sent");
    // An Origin header that cannot be sent is a configuration error, not a silent drop.
    let options =
        actix_apple_music::apple_music_api::ApiOptions::new().origin("https://app.example\n");
    let err = actix_apple_music::apple_music_api::AppleMusicApi::with_options(
        strategy.signer().clone(),
        options,
    )
    .unwrap_err();
    assert!(err.to_string().contains("Origin"), "{err}");
}

#[actix_web::test]
async fn the_longest_token_with_its_storefront_still_fits_a_cookie() {
    let fake = start_fake(Behaviour::Ok, "http://127.0.0.1:9");
    let app = app(config(&fake.base)).await;
    let longest = "T".repeat(actix_apple_music::DEFAULT_MAX_USER_TOKEN_LEN);
    let (resp, _, _) = sign_in(&app, &longest).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set_cookie = resp.headers().get(header::SET_COOKIE).unwrap().len();
    assert!(
        set_cookie < 4096,
        "Set-Cookie is {set_cookie} bytes; browsers drop cookies over 4 KiB"
    );
}

/// A signed-in session cookie with a 600-character music user token and its storefront fits
/// in 1 KiB as sent (`id=<value>` of the `Set-Cookie` line, escapes and all): the identity
/// keeps only what is needed, compactly, and the base64 travels unescaped.
#[actix_web::test]
async fn a_signed_in_cookie_with_a_600_character_token_is_at_most_1_kib() {
    let fake = start_fake(Behaviour::Ok, "http://127.0.0.1:9");
    let app = app(config(&fake.base)).await;
    let token = "T".repeat(600);
    let (resp, _, _) = sign_in(&app, &token).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let line = resp
        .headers()
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    let pair = line.split(';').next().unwrap().to_owned();
    println!("session cookie: {} bytes", pair.len());
    assert!(
        pair.len() <= 1024,
        "the session cookie is {} bytes",
        pair.len()
    );
    assert!(!pair.contains('%'), "sent with its base64 as it is: {pair}");
    // Sent back as a browser does (the pair verbatim), it still holds the identity, with its
    // storefront.
    let me = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/me")
            .insert_header((header::COOKIE, pair))
            .to_request(),
    )
    .await;
    assert_eq!(me.status(), StatusCode::OK);
    let me = json_of(me).await;
    assert_eq!(me["storefront"]["id"], "gb");
}

/// Reads one HTTP/1.1 request (headers and a `content-length` body); `false` at end of stream.
fn read_request(stream: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => seen.push(byte[0]),
            _ => return false,
        }
    }
    let head = String::from_utf8_lossy(&seen).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).is_ok()
}

/// A stand-in for Apple Music API over raw HTTP/1.1 that answers the first request of each
/// connection (keep-alive) and closes the connection when a second one comes on it, without
/// answering: what a server that closes idle connections does when the client reuses one
/// just as it closes. Answers the base URL and the count of connections.
fn closing_stand_in() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = connections.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::spawn(move || {
                if !read_request(&mut stream) {
                    return;
                }
                let body = r#"{"data":[]}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: keep-alive\r\n\r\n{body}",
                    body.len()
                );
                // A second request on this connection: closed without an answer.
                read_request(&mut stream);
            });
        }
    });
    (base, connections)
}

/// A background job's calls (spawned from the runtime, one after another) on a connection the
/// server closed: an idempotent request is sent once more on a fresh connection; a `POST` is
/// not (it may have reached Apple).
#[actix_web::test]
async fn a_pooled_connection_the_server_closed_is_retried_for_idempotent_requests_only() {
    use actix_apple_music::apple_music_api::{ApiOptions, ApiRequest, AppleMusicApi};
    let (base, connections) = closing_stand_in();
    let signer =
        actix_apple_music::developer_token::DeveloperTokenConfig::apple_music(TEAM_ID, KEY_ID)
            .build(SigningKey::generate())
            .unwrap();
    let api = AppleMusicApi::with_options(signer, ApiOptions::new().base_url(&base)).unwrap();
    let job = actix_web::rt::spawn(async move {
        let mut answers = Vec::new();
        for _ in 0..4 {
            let answer = api
                .send(ApiRequest::get("/v1/me/library/songs"), None)
                .await;
            answers.push(answer.map(|_| ()).map_err(|e| e.to_string()));
        }
        let post = api
            .send(
                ApiRequest::post("/v1/me/library/playlists").json(&json!({"attributes": {}})),
                None,
            )
            .await;
        (answers, post.map(|_| ()))
    });
    let (answers, post) = job.await.unwrap();
    assert_eq!(answers, vec![Ok(()); 4], "every GET answered");
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        4,
        "each reuse met a closed connection and went on a fresh one (the POST made none)"
    );
    assert!(post.is_err(), "a POST is not sent twice");
}

/// One rule for non-2xx answers: a `404` (the stand-in answers it for a path Apple does not
/// have) is `ApiError::Status`, answered `404`; never a success.
#[actix_web::test]
async fn a_404_from_apple_is_an_api_error_answered_404() {
    use actix_apple_music::apple_music_api::{ApiError, ApiRequest};
    use actix_web::ResponseError;
    let stand_in = actix_apple_music::test_util::AppleMusicStandIn::new();
    let config =
        AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate()).api_stand_in(&stand_in);
    let strategy = AppleMusicStrategy::new(config).unwrap();
    let token = actix_apple_music::MusicUserToken::new("t");
    let songs = strategy
        .api()
        .send(ApiRequest::get("/v1/me/library/songs"), Some(&token))
        .await
        .unwrap();
    assert_eq!(songs.status(), StatusCode::OK);
    let missing = strategy
        .api()
        .send(ApiRequest::get("/v1/me/library/nothing-here"), Some(&token))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, ApiError::Status { status: 404 }),
        "{missing:?}"
    );
    assert_eq!(missing.status_code(), StatusCode::NOT_FOUND);
}
