//! Accounts and their sessions: listing, sign out everywhere and everywhere but here, re-login
//! everywhere, on the cookie store and on a server-side store (the in-memory stand-in for
//! Redis; `tests/redis.rs` runs the same on a real Redis with two instances).

use std::future::{ready, Future};
use std::time::Duration;

use actix_apple_music::accounts::{Accounts, CurrentAccount};
use actix_apple_music::{
    test_util, Authenticator, CallbackParams, FailureKind, LoginRequest, ManualClock, SignedIn,
    Strategy, StrategyError,
};
use actix_session::storage::{CookieSessionStore, SessionStore};
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::{Cookie, Key};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{test, web, App, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::common::memory_store::MemoryStore;

/// A provider whose identity is a person's name (its stable subject).
struct Person(&'static str);

#[derive(Debug, thiserror::Error)]
#[error("no name")]
struct NoName;

impl StrategyError for NoName {
    fn kind(&self) -> FailureKind {
        FailureKind::Token
    }
    fn reason(&self) -> &str {
        "no_name"
    }
}

impl Strategy for Person {
    type Identity = String;
    type Error = NoName;
    fn name(&self) -> &str {
        self.0
    }
    fn login_page(&self, _: &HttpRequest, login: &LoginRequest<'_>) -> HttpResponse {
        HttpResponse::Ok().body(login.state.to_owned())
    }
    fn callback(
        &self,
        _: &HttpRequest,
        params: &CallbackParams,
    ) -> impl Future<Output = Result<String, NoName>> {
        ready(params.get("name").map(str::to_owned).ok_or(NoName))
    }
    fn subject(&self, identity: &String) -> Option<String> {
        (self.0 == "person").then(|| identity.clone())
    }
}

/// The second strategy (no subject of its own: it joins the session's account).
struct Music;

impl Strategy for Music {
    type Identity = String;
    type Error = NoName;
    fn name(&self) -> &str {
        "music"
    }
    fn login_page(&self, _: &HttpRequest, _: &LoginRequest<'_>) -> HttpResponse {
        HttpResponse::Ok().finish()
    }
    fn callback(
        &self,
        _: &HttpRequest,
        _: &CallbackParams,
    ) -> impl Future<Output = Result<String, NoName>> {
        ready(Err(NoName))
    }
}

async fn me(user: SignedIn<Person>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"name": user.identity(), "account": user.account_id()}))
}

async fn music(user: SignedIn<Music>) -> HttpResponse {
    HttpResponse::Ok().body(user.identity().clone())
}

async fn music_refused(user: SignedIn<Music>) -> actix_web::Result<HttpResponse> {
    user.invalidate_everywhere().await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn account(account: CurrentAccount) -> actix_web::Result<HttpResponse> {
    let sessions = account.sessions().await?;
    Ok(HttpResponse::Ok().json(json!({"account": account.id(), "sessions": sessions})))
}

async fn everywhere(account: CurrentAccount) -> actix_web::Result<HttpResponse> {
    account.sign_out_everywhere().await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn others(account: CurrentAccount) -> actix_web::Result<HttpResponse> {
    account.sign_out_others().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A guarded request that is slow, then writes to its session (so its old copy is saved after
/// whatever happened meanwhile).
async fn slow(user: SignedIn<Person>, session: Session) -> HttpResponse {
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    session.insert("app.visits", 1).unwrap();
    HttpResponse::Ok().body(user.identity().clone())
}

fn authenticators(accounts: &Accounts) -> (Authenticator<Person>, Authenticator<Music>) {
    (
        Authenticator::new(Person("person")).accounts(accounts.clone()),
        Authenticator::new(Music).accounts(accounts.clone()),
    )
}

async fn app<St: SessionStore + 'static>(
    store: St,
    key: &Key,
    accounts: &Accounts,
) -> impl Service<test_util::AppRequest, Response = ServiceResponse, Error = actix_web::Error> {
    let (person, music_auth) = authenticators(accounts);
    test::init_service(
        App::new()
            .wrap(
                SessionMiddleware::builder(store, key.clone())
                    .cookie_secure(false)
                    .build(),
            )
            .configure(person.mount("/auth/person"))
            .configure(music_auth.mount("/auth/music"))
            .configure(test_util::routes::<Person>)
            .configure(test_util::routes::<Music>)
            .route("/me", web::get().to(me))
            .route("/music", web::get().to(music))
            .route("/music/refused", web::post().to(music_refused))
            .route("/slow", web::get().to(slow))
            .route("/account", web::get().to(account))
            .route("/account/sign-out-everywhere", web::post().to(everywhere))
            .route("/account/sign-out-others", web::post().to(others)),
    )
    .await
}

/// A request's status, JSON body and the cookie to use next.
async fn call(
    app: &impl Service<test_util::AppRequest, Response = ServiceResponse, Error = actix_web::Error>,
    req: test::TestRequest,
    cookie: &Cookie<'static>,
) -> (StatusCode, Value, Cookie<'static>) {
    let resp = test::call_service(
        app,
        req.insert_header(("accept", "application/json"))
            .cookie(cookie.clone())
            .to_request(),
    )
    .await;
    let status = resp.status();
    let next = resp
        .response()
        .cookies()
        .next()
        .map(|c| c.into_owned())
        .unwrap_or_else(|| cookie.clone());
    let body = test::read_body(resp).await;
    (
        status,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        next,
    )
}

fn get(path: &str) -> test::TestRequest {
    test::TestRequest::get().uri(path)
}

fn post(path: &str) -> test::TestRequest {
    test::TestRequest::post().uri(path)
}

/// Every lifecycle check, on one store.
async fn lifecycle_on<St: SessionStore + 'static>(store: impl Fn() -> St) {
    let key = Key::generate();
    let accounts = Accounts::in_memory();
    let app = app(store(), &key, &accounts).await;
    // Ada in two browsers, Bob in a third.
    let laptop = test_util::sign_in::<Person>(&app, &"ada".to_string()).await;
    let phone = test_util::sign_in::<Person>(&app, &"ada".to_string()).await;
    let bob = test_util::sign_in::<Person>(&app, &"bob".to_string()).await;
    let (status, body, laptop) = call(&app, get("/me"), &laptop).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["account"], "ada",
        "the subject is the account by default"
    );

    // The account lists both of Ada's sessions, this one marked.
    let (status, body, laptop) = call(&app, get("/account"), &laptop).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{body}");
    assert_eq!(sessions[0]["current"], true);
    assert_eq!(sessions[1]["current"], false);
    assert_eq!(sessions[0]["strategy"], "person");
    assert_eq!(sessions[0]["user_agent"], "actix-apple-music test_util");
    for field in ["signed_in_at", "last_seen_at"] {
        assert!(
            sessions[0][field].as_str().unwrap().ends_with('Z'),
            "{body}"
        );
    }

    // Signing in again in the same browser is the same session of the account, not a second.
    let again = post(&test_util::sign_in_path::<Person>())
        .insert_header(("user-agent", "actix-apple-music test_util"))
        .set_json(json!({"identity": "ada"}));
    let (status, _, laptop) = call(&app, again, &laptop).await;
    assert!(status.is_success(), "{status}");
    let (_, body, laptop) = call(&app, get("/account"), &laptop).await;
    assert_eq!(body["sessions"].as_array().unwrap().len(), 2, "{body}");

    // Everywhere but here: the phone is out, the laptop stays (under a new cookie), Bob stays.
    let old_laptop = laptop.clone();
    let (status, _, laptop) = call(&app, post("/account/sign-out-others"), &laptop).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body, _) = call(&app, get("/me"), &phone).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["error"], "unauthenticated",
        "as a visitor who never signed in"
    );
    let (status, _, laptop) = call(&app, get("/me"), &laptop).await;
    assert_eq!(status, StatusCode::OK, "this session stays signed in");
    let (status, _, _) = call(&app, get("/me"), &old_laptop).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a copy of this session from before is signed out too"
    );
    let (_, body, laptop) = call(&app, get("/account"), &laptop).await;
    assert_eq!(body["sessions"].as_array().unwrap().len(), 1, "{body}");

    // A slow request of a second session saves its old copy after the sign-out everywhere.
    let tablet = test_util::sign_in::<Person>(&app, &"ada".to_string()).await;
    let slow = call(&app, get("/slow"), &tablet);
    let sign_out = async {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        call(&app, post("/account/sign-out-everywhere"), &laptop).await
    };
    let ((slow_status, _, saved), (out_status, _, after_laptop)) =
        futures_util::future::join(slow, sign_out).await;
    assert_eq!(
        slow_status,
        StatusCode::OK,
        "it was signed in when it began"
    );
    assert_eq!(out_status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(&app, get("/me"), &saved).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a sign-out does not come back"
    );
    for cookie in [&laptop, &after_laptop, &tablet] {
        let (status, _, _) = call(&app, get("/me"), cookie).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body, _) = call(&app, get("/account"), &laptop).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // Bob was never touched.
    let (status, body, _) = call(&app, get("/me"), &bob).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "bob");

    // Signing in again after the sign-out works at once.
    let again = test_util::sign_in::<Person>(&app, &"ada".to_string()).await;
    let (status, _, _) = call(&app, get("/me"), &again).await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn sign_out_everywhere_and_everywhere_but_here_on_the_cookie_store() {
    lifecycle_on(CookieSessionStore::default).await;
}

#[actix_web::test]
async fn sign_out_everywhere_and_everywhere_but_here_on_a_server_side_store() {
    let store = MemoryStore::default();
    lifecycle_on(move || store.clone()).await;
}

#[actix_web::test]
async fn a_sign_in_in_the_marks_own_millisecond_stays_signed_in() {
    let clock = ManualClock::starting_now();
    let accounts = Accounts::in_memory().clock(clock.clone());
    let app = app(CookieSessionStore::default(), &Key::generate(), &accounts).await;
    let first = test_util::sign_in::<Person>(&app, &"ada".to_string()).await;
    accounts.sign_out_everywhere("ada").await.unwrap();
    // Same clock reading as the mark: this sign-in came after it, and stays.
    let second = test_util::sign_in::<Person>(&app, &"ada".to_string()).await;
    let (status, _, _) = call(&app, get("/me"), &second).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(&app, get("/me"), &first).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A second mark in the same millisecond still signs out the sign-in before it.
    accounts.sign_out_everywhere("ada").await.unwrap();
    let (status, _, _) = call(&app, get("/me"), &second).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_refused_credential_asks_every_session_of_the_account_to_sign_in_again_with_it() {
    let accounts = Accounts::in_memory();
    let app = app(CookieSessionStore::default(), &Key::generate(), &accounts).await;
    let mut browsers = Vec::new();
    for _ in 0..2 {
        let cookie = test_util::sign_in::<Person>(&app, &"ada".to_string()).await;
        // Apple Music joins the session's account (its identity has no subject).
        let resp = test::call_service(
            &app,
            post(&test_util::sign_in_path::<Music>())
                .cookie(cookie)
                .set_json(json!({"identity": "ada's music"}))
                .to_request(),
        )
        .await;
        assert!(resp.status().is_success());
        browsers.push(resp.response().cookies().next().unwrap().into_owned());
    }
    let (status, _, first) = call(&app, post("/music/refused"), &browsers[0]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for cookie in [&first, &browsers[1]] {
        let (status, body, next) = call(&app, get("/music"), cookie).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "reauthentication_required", "{body}");
        let (status, _, _) = call(&app, get("/me"), &next).await;
        assert_eq!(status, StatusCode::OK, "the other strategy stays signed in");
    }
}

#[actix_web::test]
async fn a_sign_in_to_another_account_drops_what_the_session_held_for_the_previous_one() {
    let accounts = Accounts::in_memory();
    let app = app(CookieSessionStore::default(), &Key::generate(), &accounts).await;
    let ada = test_util::sign_in::<Person>(&app, &"ada".to_string()).await;
    let resp = test::call_service(
        &app,
        post(&test_util::sign_in_path::<Music>())
            .cookie(ada)
            .set_json(json!({"identity": "ada's music"}))
            .to_request(),
    )
    .await;
    let ada = resp.response().cookies().next().unwrap().into_owned();
    // Bob signs in on Ada's browser.
    let resp = test::call_service(
        &app,
        post(&test_util::sign_in_path::<Person>())
            .cookie(ada)
            .set_json(json!({"identity": "bob"}))
            .to_request(),
    )
    .await;
    let bob = resp.response().cookies().next().unwrap().into_owned();
    let (status, body, bob) = call(&app, get("/me"), &bob).await;
    assert_eq!(
        (status, body["account"].as_str()),
        (StatusCode::OK, Some("bob"))
    );
    let (status, _, _) = call(&app, get("/music"), &bob).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "Ada's Apple Music is not Bob's"
    );
    let (_, body, _) = call(&app, get("/account"), &bob).await;
    assert_eq!(body["account"], "bob");
}

#[actix_web::test]
async fn without_an_account_store_nothing_changes_and_the_account_extractor_says_so() {
    let app = test::init_service(
        App::new()
            .wrap(
                SessionMiddleware::builder(CookieSessionStore::default(), Key::generate())
                    .cookie_secure(false)
                    .build(),
            )
            .configure(Authenticator::new(Person("person")).mount("/auth/person"))
            .configure(test_util::routes::<Person>)
            .route("/me", web::get().to(me))
            .route("/account", web::get().to(account)),
    )
    .await;
    let cookie = test_util::sign_in::<Person>(&app, &"ada".to_string()).await;
    let (status, body, cookie) = call(&app, get("/me"), &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["account"], Value::Null);
    let (status, _, _) = call(&app, get("/account"), &cookie).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[actix_web::test]
async fn the_hook_is_told_when_the_session_held_another_person() {
    let accounts = Accounts::in_memory();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let person = Authenticator::new(Person("person"))
        .accounts(accounts.clone())
        .on_sign_in(move |sign_in: actix_apple_music::SignInContext<Person>| {
            record.lock().unwrap().push((
                sign_in.identity().clone(),
                sign_in.is_another_person(),
                sign_in.previous_account().map(str::to_owned),
            ));
            async { Ok(()) }
        });
    let app = crate::common::app(
        CookieSessionStore::default(),
        Key::generate(),
        person,
        "/auth/person",
        |_| {},
    )
    .await;
    let mut cookie: Option<Cookie<'static>> = None;
    for name in ["ada", "ada", "bob"] {
        let mut page = get("/auth/person/login");
        if let Some(c) = &cookie {
            page = page.cookie(c.clone());
        }
        let resp = test::call_service(&app, page.to_request()).await;
        let at_login = resp.response().cookies().next().map(|c| c.into_owned());
        let state = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        let resp = test::call_service(
            &app,
            post("/auth/person/callback")
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .cookie(at_login.or(cookie.clone()).unwrap())
                .set_payload(crate::common::form(&[("name", name), ("state", &state)]))
                .to_request(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        cookie = resp.response().cookies().next().map(|c| c.into_owned());
    }
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            ("ada".to_owned(), false, None),
            ("ada".to_owned(), false, Some("ada".to_owned())),
            ("bob".to_owned(), true, Some("ada".to_owned())),
        ]
    );
}

/// The hook's after-save effects run once the sign-in's session is saved, and not for a
/// sign-in whose session could not be saved (a `503`).
#[actix_web::test]
async fn after_save_effects_run_only_for_a_saved_sign_in() {
    use crate::common::memory_store::{UP, WRITES_DOWN};
    use actix_apple_music::session_store::{LifetimeStore, StoreFailures};
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = counted.clone();
    let person = Authenticator::new(Person("person")).on_sign_in(
        move |sign_in: actix_apple_music::SignInContext<Person>| {
            let count = count.clone();
            sign_in.after_saved(async move {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
            async { Ok(()) }
        },
    );
    let store = MemoryStore::default();
    let app = test::init_service(
        App::new()
            .wrap(StoreFailures::around(
                SessionMiddleware::builder(LifetimeStore::new(store.clone()), Key::generate())
                    .cookie_secure(false)
                    .build(),
            ))
            .configure(person.mount("/auth/person")),
    )
    .await;
    let sign_in = |fail_the_save: bool| {
        let (app, store) = (&app, &store);
        async move {
            let resp = test::call_service(app, get("/auth/person/login").to_request()).await;
            let cookie = resp.response().cookies().next().unwrap().into_owned();
            let state = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
            if fail_the_save {
                store.set_mode(WRITES_DOWN);
            }
            let answer = test::try_call_service(
                app,
                post("/auth/person/callback")
                    .insert_header(("content-type", "application/x-www-form-urlencoded"))
                    .cookie(cookie)
                    .set_payload(crate::common::form(&[("name", "ada"), ("state", &state)]))
                    .to_request(),
            )
            .await;
            store.set_mode(UP);
            match answer {
                Ok(resp) => resp.status(),
                Err(e) => e.as_response_error().status_code(),
            }
        }
    };
    assert_eq!(sign_in(false).await, StatusCode::SEE_OTHER);
    assert_eq!(counted.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(sign_in(true).await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        counted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "a sign-in that was not saved runs no effect"
    );
}
