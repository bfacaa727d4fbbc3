//! Accounts across re-logins, as an app builds them from the README: an in-memory user table
//! linked through the sign-in hook, a guarded page, a home page that tells signed in /
//! signed out / re-login needed, an API call, sign-out. Driven with the crate's own test
//! helpers (`test_util::log_in_with_apple_music`, the in-process `AppleMusicStandIn`): no
//! port, no network.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_apple_music::apple_music_api::{ApiError, ApiRequest};
use actix_apple_music::developer_token::SigningKey;
use actix_apple_music::test_util::{self, AppleMusicStandIn};
use actix_apple_music::{
    AppleMusicConfig, AppleMusicIdentity, AppleMusicStrategy, AppleMusicUser, Authenticator,
    ManualClock, MusicUserToken, SignInContext, SignInState, SignOutExt,
};
use actix_session::SessionExt;
use actix_web::cookie::{Cookie, Key};
use actix_web::http::{header, StatusCode};
use actix_web::{test, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::common::memory_store::MemoryStore;
use crate::common::{KEY_ID, TEAM_ID};

const PREFIX: &str = "/auth/apple-music";
const HTML: &str = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8";

/// The app's user value, kept in the session by the hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AppUser {
    account: u32,
}

/// What the hook saw at each sign-in.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    previous: Option<AppUser>,
    relogin: bool,
}

#[derive(Default)]
struct Accounts {
    next: u32,
    sign_ins: HashMap<u32, u32>,
    seen: Vec<Seen>,
}

async fn library(user: AppleMusicUser<AppUser>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"account": user.user().map(|u| u.account)}))
}

async fn home(state: SignInState<AppleMusicStrategy, AppUser>) -> HttpResponse {
    HttpResponse::Ok().body(match state {
        SignInState::SignedIn(user) => format!("in:{}", user.user().unwrap().account),
        SignInState::SignedOut { login_url } => format!("out:{login_url}"),
        SignInState::ReloginNeeded { login_url, .. } => format!("relogin:{login_url}"),
        _ => "other".into(),
    })
}

async fn songs(user: AppleMusicUser<AppUser>) -> Result<HttpResponse, ApiError> {
    let answer = user.api(ApiRequest::get("/v1/me/library/songs")).await?;
    Ok(HttpResponse::build(answer.status()).body(answer.body().clone()))
}

async fn sign_out(user: AppleMusicUser<AppUser>) -> HttpResponse {
    user.sign_out();
    HttpResponse::NoContent().finish()
}

async fn sign_out_by_request(req: HttpRequest) -> HttpResponse {
    assert!(req.sign_out::<AppleMusicStrategy>());
    HttpResponse::NoContent().finish()
}

async fn cart(req: HttpRequest) -> HttpResponse {
    let session = req.get_session();
    if req.method() == actix_web::http::Method::POST {
        session.insert("app.cart", 3).unwrap();
    }
    HttpResponse::Ok().json(session.get::<u32>("app.cart").unwrap())
}

struct Setup {
    clock: ManualClock,
    accounts: Arc<Mutex<Accounts>>,
    stand_in: AppleMusicStandIn,
}

fn setup() -> (Setup, Authenticator<AppleMusicStrategy>) {
    let clock = ManualClock::starting_now();
    let stand_in = AppleMusicStandIn::new();
    let accounts = Arc::new(Mutex::new(Accounts::default()));
    let table = accounts.clone();
    let auth = Authenticator::new(
        AppleMusicStrategy::new(
            AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate())
                .user_token_lifetime(Duration::from_secs(3600))
                .api_stand_in(&stand_in)
                .clock(clock.clone()),
        )
        .unwrap(),
    )
    .on_sign_in(move |sign_in: SignInContext<AppleMusicStrategy>| {
        let previous = sign_in.previous_user::<AppUser>();
        let mut table = table.lock().unwrap();
        table.seen.push(Seen {
            previous: previous.clone(),
            relogin: sign_in.is_relogin(),
        });
        // Link to the account this session held; a new account otherwise.
        let account = match previous {
            Some(user) => user.account,
            None => {
                table.next += 1;
                table.next
            }
        };
        *table.sign_ins.entry(account).or_default() += 1;
        async move { Ok(AppUser { account }) }
    });
    (
        Setup {
            clock,
            accounts,
            stand_in,
        },
        auth,
    )
}

async fn app(auth: Authenticator<AppleMusicStrategy>) -> impl crate::common::TestApp {
    crate::common::app(
        MemoryStore::default(),
        Key::generate(),
        auth,
        PREFIX,
        |cfg| {
            cfg.configure(test_util::routes::<AppleMusicStrategy>)
                .route("/", web::get().to(home))
                .route("/library", web::get().to(library))
                .route("/songs", web::get().to(songs))
                .route("/sign-out", web::post().to(sign_out))
                .route("/sign-out-by-request", web::post().to(sign_out_by_request))
                .route("/cart", web::to(cart));
        },
    )
    .await
}

async fn get(
    app: &impl actix_web::dev::Service<
        test_util::AppRequest,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
    uri: &str,
    accept: &str,
    cookie: &Cookie<'static>,
) -> (StatusCode, Option<String>, String) {
    let resp = test::call_service(
        app,
        test::TestRequest::get()
            .uri(uri)
            .insert_header((header::ACCEPT, accept.to_owned()))
            .cookie(cookie.clone())
            .to_request(),
    )
    .await;
    let status = resp.status();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    (status, location, body)
}

/// The re-login after the end reaches the same account, and the hook sees the same thing
/// whether or not a guarded request saw the end first; the login page asks again by itself.
#[actix_web::test]
async fn the_app_user_survives_the_end_of_the_music_user_token() {
    for guarded_first in [true, false] {
        let (setup, auth) = setup();
        let app = app(auth).await;
        let first = test_util::log_in_with_apple_music(&app, PREFIX, "token-1", None).await;
        assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
        let cookie = first.cookie;
        let (_, _, body) = get(&app, "/library", "application/json", &cookie).await;
        assert_eq!(body, r#"{"account":1}"#);
        assert_eq!(
            get(&app, "/", HTML, &cookie).await.2,
            "in:1",
            "signed in, with the app's user"
        );

        setup.clock.advance(Duration::from_secs(3601));
        if guarded_first {
            let (status, location, _) = get(&app, "/library", HTML, &cookie).await;
            assert_eq!(status, StatusCode::SEE_OTHER);
            assert!(location.unwrap().contains("prompt=login"));
        }
        // The home page tells "re-login needed" from "signed out", with prompt=login.
        let (_, _, body) = get(&app, "/", HTML, &cookie).await;
        assert!(
            body.starts_with("relogin:/auth/apple-music/login?prompt=login"),
            "{body}"
        );
        // The login page forces the dialog by itself.
        let (_, _, page) = get(&app, &format!("{PREFIX}/login"), HTML, &cookie).await;
        let data = test_util::login_page_data(&page);
        assert_eq!(data["forceDialog"], true, "guarded_first={guarded_first}");

        let again = test_util::log_in_with_apple_music(&app, PREFIX, "token-2", Some(cookie)).await;
        assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
        let (_, _, body) = get(&app, "/library", "application/json", &again.cookie).await;
        assert_eq!(
            body, r#"{"account":1}"#,
            "the same account (guarded_first={guarded_first})"
        );
        {
            let accounts = setup.accounts.lock().unwrap();
            assert_eq!(accounts.sign_ins[&1], 2);
            assert_eq!(
                accounts.seen,
                [
                    Seen {
                        previous: None,
                        relogin: false
                    },
                    Seen {
                        previous: Some(AppUser { account: 1 }),
                        relogin: true
                    },
                ],
                "guarded_first={guarded_first}"
            );
        }
        // Apple was asked once per sign-in, in process.
        assert_eq!(
            setup.stand_in.calls(),
            ["GET /v1/me/storefront", "GET /v1/me/storefront"]
        );
        // A fresh login page (no re-login mark now) does not force the dialog.
        let (_, _, page) = get(&app, &format!("{PREFIX}/login"), HTML, &again.cookie).await;
        assert_eq!(test_util::login_page_data(&page)["forceDialog"], false);
    }
}

/// Another browser with another token gets another account.
#[actix_web::test]
async fn another_browser_gets_another_account() {
    let (setup, auth) = setup();
    let app = app(auth).await;
    let a = test_util::log_in_with_apple_music(&app, PREFIX, "token-a", None).await;
    let b = test_util::log_in_with_apple_music(&app, PREFIX, "token-b", None).await;
    assert_eq!(
        get(&app, "/library", "*/*", &a.cookie).await.2,
        r#"{"account":1}"#
    );
    assert_eq!(
        get(&app, "/library", "*/*", &b.cookie).await.2,
        r#"{"account":2}"#
    );
    assert!(!setup.accounts.lock().unwrap().seen[1].relogin);
}

/// Sign-out from a handler and from the request alone: the identity and the app's user go,
/// the app's own keys stay, and the next sign-in is a first one (no previous user).
#[actix_web::test]
async fn signing_out_forgets_the_user_and_keeps_the_apps_keys() {
    for route in ["/sign-out", "/sign-out-by-request"] {
        let (setup, auth) = setup();
        let app = app(auth).await;
        let login = test_util::log_in_with_apple_music(&app, PREFIX, "token-1", None).await;
        let resp = test::call_service(
            &app,
            test::TestRequest::post()
                .uri("/cart")
                .cookie(login.cookie.clone())
                .to_request(),
        )
        .await;
        let cookie = resp
            .response()
            .cookies()
            .next()
            .map(|c| c.into_owned())
            .unwrap_or(login.cookie);
        let resp = test::call_service(
            &app,
            test::TestRequest::post()
                .uri(route)
                .cookie(cookie.clone())
                .to_request(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let cookie = resp
            .response()
            .cookies()
            .next()
            .map(|c| c.into_owned())
            .unwrap_or(cookie);
        let (_, _, body) = get(&app, "/", HTML, &cookie).await;
        assert!(
            body.starts_with("out:"),
            "signed out, not 'relogin': {body}"
        );
        assert_eq!(
            get(&app, "/cart", "*/*", &cookie).await.2,
            "3",
            "the app's key stays"
        );
        let again = test_util::log_in_with_apple_music(&app, PREFIX, "token-2", Some(cookie)).await;
        assert_eq!(again.status, StatusCode::SEE_OTHER);
        let seen = setup.accounts.lock().unwrap().seen.clone();
        assert_eq!(
            seen[1],
            Seen {
                previous: None,
                relogin: false
            },
            "{route}"
        );
    }
}

/// An API call whose token Apple refuses answers browsers as the guard does (303 to the
/// login with prompt=login) and other clients `401`; the re-login keeps the account.
#[actix_web::test]
async fn api_failures_answer_like_the_guard_and_are_never_a_success() {
    let (setup, auth) = setup();
    let app = app(auth).await;
    let login = test_util::log_in_with_apple_music(&app, PREFIX, "token-1", None).await;
    let (status, _, body) = get(&app, "/songs", "application/json", &login.cookie).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let songs: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        songs["data"][0]["type"], "library-songs",
        "the stand-in's library: {body}"
    );

    setup.stand_in.refuse("token-1");
    let (status, location, _) = get(&app, "/songs", HTML, &login.cookie).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        location.unwrap(),
        format!("{PREFIX}/login?prompt=login&return_to=%2Fsongs")
    );
    let (status, _, body) = get(&app, "/songs", "application/json", &login.cookie).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("reauthentication_required"), "{body}");
    let again =
        test_util::log_in_with_apple_music(&app, PREFIX, "token-2", Some(login.cookie)).await;
    assert_eq!(
        get(&app, "/library", "*/*", &again.cookie).await.2,
        r#"{"account":1}"#
    );
}

/// `sign_in_with_user` takes the app's own type; a handler that reads the user as another
/// type gets `None` (and the crate logs once why).
#[actix_web::test]
async fn typed_test_sign_in_with_the_apps_user() {
    let (_, auth) = setup();
    let app = app(auth).await;
    let identity = AppleMusicIdentity::new(
        MusicUserToken::new("typed"),
        time::OffsetDateTime::now_utc(),
        Duration::from_secs(3600),
        None,
    );
    let cookie = test_util::sign_in_with_user::<AppleMusicStrategy, _>(
        &app,
        &identity,
        &AppUser { account: 42 },
    )
    .await;
    assert_eq!(
        get(&app, "/library", "*/*", &cookie).await.2,
        r#"{"account":42}"#
    );
}
