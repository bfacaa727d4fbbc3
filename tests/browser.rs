//! The sign-in pages in a real browser: headless Debian Chromium driven through ChromeDriver,
//! against an app served on a loopback port with the crate's sandbox authorizer.
//!
//! These need `chromium` and `chromium-driver` (`apt-get install chromium chromium-driver`),
//! so they are ignored by a plain `cargo test`; `.ci/run` installs both and runs them with
//! `--include-ignored`. No fixed sleeps: every wait polls a condition with a timeout.

mod common;

/// The demo's account routes (`/account`, sign out everywhere, delete).
#[path = "../examples/demo/account_routes.rs"]
#[allow(dead_code)] // the home page's part is the demo's
mod account_routes;
/// The demo's account table, linked through the sign-in hook as the demo does.
#[path = "../examples/demo/accounts.rs"]
mod accounts;

#[allow(dead_code)] // for account_routes
fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_apple_music::session_store::{
    secure_sessions, CompactCookieStore, LifetimeStore, StoreFailures,
};
use actix_apple_music::{
    sandbox, AppleMusicStrategy, AppleMusicUser, Authenticator, LoginPage, SignInContext,
};
use actix_web::cookie::Key;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine;
use fantoccini::{Client, ClientBuilder, Locator};
use sha2::{Digest, Sha256};

const WAIT: Duration = Duration::from_secs(30);

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn me(
    user: AppleMusicUser<accounts::DemoUser>,
    apple_id: Option<actix_apple_music::SignedIn<actix_apple_music::AppleIdStrategy>>,
    accounts: web::Data<Arc<accounts::Accounts>>,
) -> HttpResponse {
    let account = user.user().map(|u| u.account.clone()).unwrap_or_default();
    HttpResponse::Ok().json(serde_json::json!({
        "apple_id": apple_id.map(|a| serde_json::json!({"sub": a.identity().sub(), "email": a.identity().email()})),
        "account": {"id": account, "sign_ins": accounts.sign_ins(&account)},
        "music_user_token_sha256": sha256_hex(user.identity().music_user_token().secret()),
        "restricted": user.identity().restricted(),
        "storefront": user.identity().storefront().map(|s| s.id.clone()),
    }))
}

/// Who is signed in with Apple, on a path under `/auth` (where a deeper-path cookie would go).
async fn whoami_apple_id(
    user: actix_apple_music::SignedIn<actix_apple_music::AppleIdStrategy>,
) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<p id=\"who\">{}</p>",
            user.identity().email().unwrap_or_default()
        ))
}

async fn page(req: HttpRequest) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><title>page</title><p id=\"page\">{}</p>",
            req.path()
        ))
}

struct Harness {
    client: Client,
    base: String,
    driver: Child,
    /// ChromeDriver's URL and the capabilities, for more browsers.
    webdriver: String,
    caps: serde_json::Map<String, serde_json::Value>,
    /// Every music user token the app accepted (recorded by its verify hook).
    accepted: Arc<Mutex<Vec<String>>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn musickit_standin() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(include_str!("musickit_standin.js"))
}

async fn harness(login_page: LoginPage) -> Harness {
    harness_with(login_page, |config| config).await
}

/// More routes for the harness's app, made once the app's base URL is known.
type Extra = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

async fn harness_with(
    login_page: LoginPage,
    tweak: impl FnOnce(actix_apple_music::AppleMusicConfig) -> actix_apple_music::AppleMusicConfig,
) -> Harness {
    harness_full(login_page, tweak, |_| {
        Arc::new(|_: &mut web::ServiceConfig| {})
    })
    .await
}

async fn harness_full(
    login_page: LoginPage,
    tweak: impl FnOnce(actix_apple_music::AppleMusicConfig) -> actix_apple_music::AppleMusicConfig,
    extra: impl FnOnce(&str) -> Extra,
) -> Harness {
    // The app, on a free loopback port, with the sandbox authorizer.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let extra = extra(&base);
    let config = sandbox::config(&base)
        .unwrap()
        .login_page(login_page)
        .musickit_js_url(format!("{base}/musickit.js"))
        .app_name("Browser Test ✓");
    let config = tweak(config);
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let recorder = accepted.clone();
    let key = Key::generate();
    let accounts = Arc::new(accounts::Accounts::new(
        actix_apple_music::session_store::SecretSealer::new(&key),
    ));
    let link = accounts::Accounts::hook(accounts.clone());
    let auth = Authenticator::new(AppleMusicStrategy::new(config).unwrap()).on_sign_in(
        move |sign_in: SignInContext<AppleMusicStrategy>| {
            recorder
                .lock()
                .unwrap()
                .push(sign_in.identity().music_user_token().secret().to_owned());
            link(sign_in)
        },
    );
    // The crate's account index, as the demo keeps it with the cookie store.
    let lifecycle = actix_apple_music::accounts::Accounts::in_memory();
    let auth = auth
        .accounts(lifecycle.clone())
        .account(|user: &accounts::DemoUser| user.account.clone());
    let apple_id = Authenticator::new(
        actix_apple_music::AppleIdStrategy::new(sandbox::apple_id_config(&base))
            .unwrap()
            .on_notification(accounts::Accounts::notification_hook(accounts.clone())),
    )
    .on_sign_in(accounts::Accounts::apple_id_hook(accounts.clone()))
    .accounts(lifecycle)
    .account(|user: &accounts::DemoUser| user.account.clone());
    let server = HttpServer::new(move || {
        App::new()
            // The demo's session stack: the compact cookie store, its base64 sent unescaped.
            // The demo's default cookie: `__Host-id`, Secure (Chromium keeps it on
            // http://127.0.0.1), Path=/, no Domain.
            .wrap(StoreFailures::around(
                secure_sessions(LifetimeStore::new(CompactCookieStore::new()), key.clone()).build(),
            ))
            .configure(auth.clone().mount("/auth/apple-music"))
            .app_data(web::Data::new(accounts.clone()))
            .configure(sandbox::routes)
            .configure(apple_id.mount("/auth/apple"))
            .configure(sandbox::apple_id_routes)
            .configure(|cfg| extra(cfg))
            .route("/me", web::get().to(me))
            .route("/auth/whoami", web::get().to(whoami_apple_id))
            .configure(account_routes::routes)
            .route("/musickit.js", web::get().to(musickit_standin))
            .default_service(web::get().to(page))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);

    // ChromeDriver on another free port.
    let port = free_port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is installed (apt-get install chromium-driver)");
    let webdriver = format!("http://127.0.0.1:{port}");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                     "--window-size=1000,800"],
        }),
    );
    let client = connect(&webdriver, &caps).await;
    Harness {
        client,
        base,
        driver,
        webdriver,
        caps,
        accepted,
    }
}

/// A new browser (its own profile, so its own cookies) through ChromeDriver.
async fn connect(webdriver: &str, caps: &serde_json::Map<String, serde_json::Value>) -> Client {
    let start = Instant::now();
    loop {
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        match builder.capabilities(caps.clone()).connect(webdriver).await {
            Ok(client) => break client,
            Err(e) => {
                assert!(start.elapsed() < WAIT, "chromedriver did not start: {e}");
                actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

impl Harness {
    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    async fn text_of(&self, id: &str) -> String {
        let element = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Id(id))
            .await
            .unwrap();
        element.text().await.unwrap()
    }

    async fn path_and_query(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits for the popup, switches to it and waits until it shows the app name.
    async fn switch_to_popup(&self) -> fantoccini::wd::WindowHandle {
        let main = self.client.window().await.unwrap();
        let start = Instant::now();
        let popup = loop {
            let windows = self.client.windows().await.unwrap();
            if let Some(popup) = windows.into_iter().find(|w| *w != main) {
                break popup;
            }
            assert!(
                start.elapsed() < WAIT,
                "timed out waiting for the authorization popup"
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        };
        self.client.switch_to_window(popup).await.unwrap();
        until(
            "the popup to show the app name from thirdPartyInfo",
            || async { self.text_of("app-name").await == "Browser Test ✓" },
        )
        .await;
        main
    }

    async fn click(&self, id: &str) {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Id(id))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn me(&self) -> serde_json::Value {
        self.goto("/me").await;
        let body = self
            .client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("/me answered {body}"))
    }

    /// Opens the login page and waits until its button is enabled.
    async fn login(&self, query: &str) {
        self.goto(&format!("/auth/apple-music/login{query}")).await;
    }
}

async fn direct_popup_outcome(button: &str) -> (String, String) {
    let h = harness(LoginPage::Direct).await;
    h.login("").await;
    let main = h.switch_to_popup().await;
    h.click(button).await;
    h.client.switch_to_window(main).await.unwrap();
    let error = h.text_of("reason").await;
    let kind = h
        .client
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .attr("data-error")
        .await
        .unwrap()
        .unwrap();
    h.client.clone().close().await.unwrap();
    (kind, error)
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver; run by .ci/run"]
async fn direct_allow_signs_in_and_returns_where_the_user_was() {
    let h = harness(LoginPage::Direct).await;
    // A foreign window's message (here: the page posting to itself) must be ignored.
    h.login("?return_to=/after%3Fx%3D1").await;
    h.client
        .execute(
            "window.postMessage({jsonrpc: '2.0', id: 1, method: 'authorize', params: ['forged', '0', '']}, '*');",
            vec![],
        )
        .await
        .unwrap();
    let main = h.switch_to_popup().await;
    h.click("restricted").await;
    h.click("allow").await;
    h.client.switch_to_window(main).await.unwrap();
    until("the return to /after?x=1", || async {
        h.path_and_query().await == "/after?x=1"
    })
    .await;

    let accepted = h.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 1, "one sign-in");
    assert!(
        accepted[0].starts_with("sandbox."),
        "the sandbox's token, not the forged one"
    );
    let me = h.me().await;
    assert_eq!(me["music_user_token_sha256"], sha256_hex(&accepted[0]));
    // Verified against the sandbox's stand-in for Apple Music API.
    assert_eq!(me["storefront"], "us");
    assert_eq!(me["restricted"], true);

    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    h.goto("/after?x=1").await;
    std::fs::write(
        dir.join("signed-in.png"),
        h.client.screenshot().await.unwrap(),
    )
    .unwrap();
    println!("screenshot: {}", dir.join("signed-in.png").display());
    h.client.clone().close().await.unwrap();
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver; run by .ci/run"]
async fn direct_dont_allow_is_an_authorization_error() {
    assert_eq!(
        direct_popup_outcome("decline").await,
        ("authorization_error".into(), "declined".into())
    );
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver; run by .ci/run"]
async fn direct_unavailable_is_an_authorization_error() {
    assert_eq!(
        direct_popup_outcome("unavailable").await,
        ("authorization_error".into(), "unavailable".into())
    );
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver; run by .ci/run"]
async fn closing_the_popup_is_popup_closed() {
    let h = harness(LoginPage::Direct).await;
    h.login("").await;
    let main = h.switch_to_popup().await;
    h.client.close_window().await.unwrap();
    h.client.switch_to_window(main).await.unwrap();
    assert_eq!(h.text_of("reason").await, "popup_closed");
    assert!(h.accepted.lock().unwrap().is_empty());
    h.client.clone().close().await.unwrap();
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver; run by .ci/run"]
async fn redirect_allow_comes_back_through_the_return_page_signed_in() {
    let h = harness(LoginPage::Redirect).await;
    h.login("?return_to=/library").await;
    until("the sandbox authorizer", || async {
        h.path_and_query().await.starts_with("/sandbox/authorize")
    })
    .await;
    until("the app name", || async {
        h.text_of("app-name").await == "Browser Test ✓"
    })
    .await;
    h.click("allow").await;
    until("the return to /library", || async {
        h.path_and_query().await == "/library"
    })
    .await;
    let accepted = h.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 1);
    assert_eq!(
        h.me().await["music_user_token_sha256"],
        sha256_hex(&accepted[0])
    );
    h.client.clone().close().await.unwrap();
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver; run by .ci/run"]
async fn redirect_dont_allow_and_a_bad_fragment_are_typed_errors() {
    let h = harness(LoginPage::Redirect).await;
    h.login("").await;
    until("the sandbox authorizer", || async {
        h.path_and_query().await.starts_with("/sandbox/authorize")
    })
    .await;
    h.click("decline").await;
    assert_eq!(h.text_of("reason").await, "declined");

    // Apple's return to the URL the login page gave it, with a fragment that is not base64
    // JSON.
    h.login("").await;
    let referrer = h.sandbox_referrer().await;
    h.client
        .goto(&format!("{referrer}#%%%not-base64"))
        .await
        .unwrap();
    assert_eq!(h.text_of("reason").await, "malformed_request");
    let kind = h
        .client
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .attr("data-error")
        .await
        .unwrap();
    assert_eq!(kind.as_deref(), Some("token_error"));
    assert!(h.accepted.lock().unwrap().is_empty());
    h.client.clone().close().await.unwrap();
}

impl Harness {
    /// Waits for the sandbox authorizer (the redirect page's next stop) and answers the
    /// `referrer` the login page gave it: our return URL with this login's hand-back.
    async fn sandbox_referrer(&self) -> String {
        until("the sandbox authorizer", || async {
            self.path_and_query()
                .await
                .starts_with("/sandbox/authorize")
        })
        .await;
        let url = self.client.current_url().await.unwrap();
        let referrer = url
            .query_pairs()
            .find(|(k, _)| k == "referrer")
            .map(|(_, v)| v.into_owned())
            .expect("the authorize URL carries a referrer");
        assert!(referrer.starts_with(&format!("{}/auth/apple-music/return?handback=", self.base)));
        referrer
    }

    /// `/me` asked for JSON by a script of a plain page of the app (the sign-in pages' CSP
    /// allows no fetch): its status.
    async fn me_status(&self) -> u64 {
        self.goto("/plain-page").await;
        self.client
            .execute(
                "return fetch('/me', {headers: {Accept: 'application/json'}}).then(r => r.status);",
                vec![],
            )
            .await
            .unwrap()
            .as_u64()
            .unwrap()
    }

    async fn local(&self, key: &str) -> Option<String> {
        let value = self
            .client
            .execute(
                "return localStorage.getItem(arguments[0]);",
                vec![serde_json::json!(key)],
            )
            .await
            .unwrap();
        value.as_str().map(str::to_owned)
    }

    async fn set_local(&self, key: &str, value: &str) {
        self.client
            .execute(
                "localStorage.setItem(arguments[0], arguments[1]);",
                vec![serde_json::json!(key), serde_json::json!(value)],
            )
            .await
            .unwrap();
    }

    async fn wait_enabled(&self, id: &str) {
        until("the button to be enabled", || async {
            let button = self.client.find(Locator::Id(id)).await.unwrap();
            button.prop("disabled").await.unwrap().as_deref() == Some("false")
        })
        .await;
    }
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver; run by .ci/run"]
async fn musickit_page_signs_in_reuses_the_cached_token_and_prompt_login_asks_again() {
    let h = harness(LoginPage::MusicKit).await;
    // Success: MusicKit configured with our developer token, authorize() from the click.
    h.login("?return_to=/one").await;
    h.wait_enabled("continue").await;
    h.click("continue").await;
    until("the return to /one", || async {
        h.path_and_query().await == "/one"
    })
    .await;
    let first = h.accepted.lock().unwrap()[0].clone();
    assert_eq!(
        h.local("music.standin.u").await.as_deref(),
        Some(first.as_str())
    );
    assert_eq!(h.local("standin.asked").await.as_deref(), Some("1"));

    // A second login hands back MusicKit's cached token without asking (and without a click).
    h.login("?return_to=/two").await;
    until("the return to /two", || async {
        h.path_and_query().await == "/two"
    })
    .await;
    assert_eq!(h.accepted.lock().unwrap()[1], first);
    assert_eq!(h.local("standin.asked").await.as_deref(), Some("1"));

    // prompt=login clears the cached token, so the user is asked again.
    h.login("?prompt=login&return_to=/three").await;
    h.wait_enabled("continue").await;
    assert_eq!(
        h.local("music.standin.u").await,
        None,
        "the cached token is cleared"
    );
    h.click("continue").await;
    until("the return to /three", || async {
        h.path_and_query().await == "/three"
    })
    .await;
    let third = h.accepted.lock().unwrap()[2].clone();
    assert_ne!(third, first);
    assert_eq!(h.local("standin.asked").await.as_deref(), Some("2"));
    assert_eq!(h.me().await["music_user_token_sha256"], sha256_hex(&third));
    h.client.clone().close().await.unwrap();
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver; run by .ci/run"]
async fn musickit_rejection_is_an_authorization_error() {
    let h = harness(LoginPage::MusicKit).await;
    h.login("").await;
    h.wait_enabled("continue").await;
    h.set_local("standin.decision", "deny").await;
    h.click("continue").await;
    assert_eq!(h.text_of("reason").await, "musickit_error");
    assert!(h.text_of("message").await.contains("AUTHORIZATION_ERROR"));
    assert!(h.accepted.lock().unwrap().is_empty());
    h.client.clone().close().await.unwrap();
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver; run by .ci/run"]
async fn an_ended_token_goes_through_login_with_prompt_and_back() {
    let h = harness_with(LoginPage::Direct, |c| {
        c.user_token_lifetime(Duration::from_secs(3))
    })
    .await;
    h.login("?return_to=/me").await;
    let main = h.switch_to_popup().await;
    h.click("allow").await;
    h.client.switch_to_window(main.clone()).await.unwrap();
    until("the return to /me", || async {
        h.path_and_query().await == "/me"
    })
    .await;
    let first = h.accepted.lock().unwrap()[0].clone();
    let account = h.me().await["account"]["id"].clone();
    assert_eq!(account, "acct-1");

    // Keep opening the guarded page until the 3-second token has ended.
    until("the guard to send the browser back to login", || async {
        h.goto("/me").await;
        h.path_and_query()
            .await
            .starts_with("/auth/apple-music/login")
    })
    .await;
    assert_eq!(
        h.path_and_query().await,
        "/auth/apple-music/login?prompt=login&return_to=%2Fme"
    );
    let main = h.switch_to_popup().await;
    h.click("allow").await;
    h.client.switch_to_window(main).await.unwrap();
    until("the return to /me", || async {
        h.path_and_query().await == "/me"
    })
    .await;
    let second = h.accepted.lock().unwrap()[1].clone();
    assert_ne!(second, first);
    let body = h
        .client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains(&sha256_hex(&second)), "{body}");
    // The re-login after the end reached the same account, one more sign-in.
    let me = h.me().await;
    assert_eq!(me["account"]["id"], account, "{me}");
    assert_eq!(me["account"]["sign_ins"], 2, "{me}");
    h.client.clone().close().await.unwrap();
}

/// The login CSRF of the return page, as a page on another site runs it: it opens our login
/// page in the victim's window (a fresh login state lands in the victim's session), then
/// navigates that window to our return page with its own token in the fragment — without a
/// hand-back, or with a guessed one. Nobody is signed in, and a victim who was signed in
/// stays signed in as themselves.
#[actix_web::test]
#[ignore = "needs chromium and chromedriver; run by .ci/run"]
async fn the_return_page_login_csrf_signs_nobody_in() {
    let h = harness(LoginPage::Redirect).await;
    let attacker = base64::engine::general_purpose::STANDARD
        .encode(serde_json::json!({"musicUserToken": "sandbox.attacker", "itre": "0"}).to_string());
    for attack in [
        format!("/auth/apple-music/return#{attacker}"),
        format!("/auth/apple-music/return?handback=guessed#{attacker}"),
    ] {
        h.login("").await;
        let _ = h.sandbox_referrer().await;
        h.goto(&attack).await;
        assert_eq!(h.text_of("reason").await, "handback_mismatch", "{attack}");
        assert!(h.accepted.lock().unwrap().is_empty(), "{attack}");
        assert_eq!(h.me_status().await, 401, "{attack}");
    }

    // The normal redirect flow still signs in…
    h.login("?return_to=/library").await;
    let _ = h.sandbox_referrer().await;
    h.click("allow").await;
    until("the return to /library", || async {
        h.path_and_query().await == "/library"
    })
    .await;
    let accepted = h.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 1);
    // …and a signed-in victim is not switched to the attacker's account.
    h.login("").await;
    let _ = h.sandbox_referrer().await;
    h.goto(&format!("/auth/apple-music/return#{attacker}"))
        .await;
    assert_eq!(h.text_of("reason").await, "handback_mismatch");
    assert_eq!(h.accepted.lock().unwrap().len(), 1);
    assert_eq!(
        h.me().await["music_user_token_sha256"],
        sha256_hex(&accepted[0])
    );
    h.client.clone().close().await.unwrap();
}

/// The same attack against the `musickit` page: there is no return page to navigate to.
#[actix_web::test]
#[ignore = "needs chromium and chromedriver; run by .ci/run"]
async fn the_musickit_page_has_no_return_page_to_abuse() {
    let h = harness(LoginPage::MusicKit).await;
    let attacker = base64::engine::general_purpose::STANDARD
        .encode(serde_json::json!({"musicUserToken": "sandbox.attacker"}).to_string());
    h.login("").await;
    until("the MusicKit page to be ready", || async {
        h.client.find(Locator::Id("continue")).await.ok().is_some()
    })
    .await;
    h.goto(&format!("/auth/apple-music/return#{attacker}"))
        .await;
    until("the 404 page", || async {
        h.client
            .source()
            .await
            .map(|s| s.contains("/auth/apple-music/return"))
            .unwrap_or(false)
    })
    .await;
    assert!(h.accepted.lock().unwrap().is_empty());
    assert_eq!(h.me_status().await, 401);
    h.client.clone().close().await.unwrap();
}

/// The sandbox authorizer hands its tokens only to pages of its own origin: given another
/// site's `referrer`, "Allow" goes nowhere.
#[actix_web::test]
#[ignore = "needs chromium and chromedriver; run by .ci/run"]
async fn the_sandbox_hands_no_token_to_another_site() {
    let h = harness(LoginPage::Redirect).await;
    let info = base64::engine::general_purpose::STANDARD
        .encode(serde_json::json!({"thirdPartyName": "Evil", "thirdPartyToken": "x"}).to_string());
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("a", &info)
        .append_pair("referrer", "http://evil.invalid/collect")
        .append_pair("app", "music")
        .append_pair("p", "subscribe")
        .finish();
    h.goto(&format!("/sandbox/authorize?{query}")).await;
    until("the refusal", || async {
        h.text_of("problem").await.contains("a page of this site")
    })
    .await;
    h.click("allow").await;
    // Still on the authorizer: the click did not navigate anywhere.
    let url = h.client.current_url().await.unwrap();
    assert_eq!(url.path(), "/sandbox/authorize");
    assert!(h.accepted.lock().unwrap().is_empty());
    h.client.clone().close().await.unwrap();
}

/// The demo's linked flow: Sign in with Apple, then connect Apple Music; the music user token
/// ends; the re-login reaches the same account, with the same Apple ID `sub`.
#[actix_web::test]
#[ignore = "needs chromium and chromedriver; run by .ci/run"]
async fn sign_in_with_apple_then_apple_music_keeps_the_account_across_the_end() {
    let h = harness_with(LoginPage::Direct, |c| {
        c.user_token_lifetime(Duration::from_secs(3))
    })
    .await;
    // Sign in with Apple at the sandbox's Apple ID (a cross-site-style form post back, relayed).
    h.goto("/auth/apple/login?return_to=/signed-in-with-apple")
        .await;
    until("the sandbox Apple ID page", || async {
        h.path_and_query()
            .await
            .starts_with("/sandbox/apple-id/auth/authorize")
    })
    .await;
    let email = h.client.find(Locator::Id("email")).await.unwrap();
    email.clear().await.unwrap();
    email.send_keys("linked-user@example.com").await.unwrap();
    h.click("continue").await;
    until("the return after Sign in with Apple", || async {
        h.path_and_query().await == "/signed-in-with-apple"
    })
    .await;

    // Connect Apple Music in the same session.
    h.login("?return_to=/me").await;
    let main = h.switch_to_popup().await;
    h.click("allow").await;
    h.client.switch_to_window(main).await.unwrap();
    until("the return to /me", || async {
        h.path_and_query().await == "/me"
    })
    .await;
    let first = h.me().await;
    let sub = first["apple_id"]["sub"].clone();
    assert!(sub.as_str().unwrap().starts_with("sandbox."), "{first}");
    assert_eq!(first["apple_id"]["email"], "linked-user@example.com");
    let account = first["account"]["id"].clone();
    assert_eq!(
        first["account"]["sign_ins"], 2,
        "Apple ID + Apple Music: {first}"
    );

    // The music user token ends; the guard sends the browser to re-login.
    until("the guard to send the browser back to login", || async {
        h.goto("/me").await;
        h.path_and_query()
            .await
            .starts_with("/auth/apple-music/login")
    })
    .await;
    let main = h.switch_to_popup().await;
    h.click("allow").await;
    h.client.switch_to_window(main).await.unwrap();
    until("the return to /me", || async {
        h.path_and_query().await == "/me"
    })
    .await;
    let again = h.me().await;
    assert_eq!(again["account"]["id"], account, "{again}");
    assert_eq!(again["apple_id"]["sub"], sub, "{again}");
    assert_eq!(again["account"]["sign_ins"], 3, "{again}");
    assert_eq!(h.accepted.lock().unwrap().len(), 2);
    h.client.clone().close().await.unwrap();
}

/// `oidc-provider` on `localhost`, killed on drop.
struct OidcProvider {
    child: Child,
    issuer: String,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_oidc_provider(redirect_uri: &str) -> OidcProvider {
    use std::io::BufRead;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
    assert!(
        dir.join("node_modules/oidc-provider").exists(),
        "oidc-provider is not installed: run `npm ci --prefix tests/oidc` (.ci/run does)"
    );
    let port = free_port();
    let mut child = Command::new("node")
        .arg("provider.mjs")
        .arg(port.to_string())
        .arg(redirect_uri)
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node is installed");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(issuer) = line.strip_prefix("ready ") {
                let _ = tx.send(issuer.to_owned());
            }
        }
    });
    let issuer = rx.recv_timeout(WAIT).expect("oidc-provider did not start");
    OidcProvider { child, issuer }
}

async fn oidc_me(
    user: actix_apple_music::SignedIn<actix_apple_music::AppleIdStrategy>,
) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "sub": user.identity().sub(),
        "email": user.identity().email(),
        "email_verified": user.identity().email_verified(),
    }))
}

/// The Sign in with Apple strategy's OpenID Connect core against a real provider no one here
/// wrote (`oidc-provider`, on `http://localhost:<port>`, a different site than the app on
/// `127.0.0.1`): the whole code flow in Chromium, its cross-site `form_post` answer relayed,
/// the code exchanged with a static client secret, the RS256 `id_token` verified through the
/// provider's JWKS.
#[actix_web::test]
#[ignore = "needs chromium, chromedriver, node and `npm ci --prefix tests/oidc`; run by .ci/run"]
async fn a_real_openid_provider_signs_in_through_the_apple_id_strategy() {
    let provider: Arc<Mutex<Option<OidcProvider>>> = Arc::new(Mutex::new(None));
    let keep = provider.clone();
    let h = harness_full(
        LoginPage::Direct,
        |c| c,
        move |base| {
            let redirect = format!("{base}/auth/oidc/callback");
            let started = start_oidc_provider(&redirect);
            let issuer = started.issuer.clone();
            *keep.lock().unwrap() = Some(started);
            // The provider's own endpoint paths, from its discovery document.
            let discovery: serde_json::Value = std::thread::spawn({
                let url = format!("{issuer}/.well-known/openid-configuration");
                move || {
                    let runtime = actix_web::rt::System::new();
                    runtime.block_on(async move {
                        awc::Client::default()
                            .get(url)
                            .send()
                            .await
                            .unwrap()
                            .json::<serde_json::Value>()
                            .await
                            .unwrap()
                    })
                }
            })
            .join()
            .unwrap();
            let endpoint = |name: &str| discovery[name].as_str().unwrap().to_owned();
            let config = actix_apple_music::AppleIdConfig::with_client_secret(
                "actix-apple-music-test",
                redirect,
                actix_apple_music::ClientSecret::new("test-secret-not-for-production"),
            )
            .issuer(&issuer)
            .endpoints(
                endpoint("authorization_endpoint"),
                endpoint("token_endpoint"),
                endpoint("jwks_uri"),
            )
            .scope("openid email")
            .flow(|o| o.success_target("/oidc-me"));
            let oidc = Authenticator::new(actix_apple_music::AppleIdStrategy::new(config).unwrap());
            Arc::new(move |cfg: &mut web::ServiceConfig| {
                oidc.mount("/auth/oidc")(cfg);
                cfg.route("/oidc-me", web::get().to(oidc_me));
            })
        },
    )
    .await;
    let issuer = provider.lock().unwrap().as_ref().unwrap().issuer.clone();

    h.goto("/auth/oidc/login").await;
    until("the provider's login page", || async {
        h.client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .starts_with(&issuer)
            && h.client
                .find(Locator::Css("input[name=login]"))
                .await
                .is_ok()
    })
    .await;
    h.client
        .find(Locator::Css("input[name=login]"))
        .await
        .unwrap()
        .send_keys("alice")
        .await
        .unwrap();
    h.client
        .find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys("any")
        .await
        .unwrap();
    h.client
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the consent page", || async {
        h.client
            .source()
            .await
            .map(|s| s.contains("name=\"prompt\" value=\"consent\""))
            .unwrap_or(false)
    })
    .await;
    h.client
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the return to /oidc-me", || async {
        h.path_and_query().await == "/oidc-me"
    })
    .await;
    let body = h
        .client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let me: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}"));
    assert_eq!(me["sub"], "alice", "{me}");
    assert_eq!(me["email"], "alice@oidc.test");
    assert_eq!(me["email_verified"], true);
    h.client.clone().close().await.unwrap();
    drop(provider);
}

/// Signs `email` in with Apple at the sandbox, in `client`.
async fn sign_in_with_apple(client: &Client, base: &str, email: &str) {
    client
        .goto(&format!("{base}/auth/apple/login?return_to=/signed-in"))
        .await
        .unwrap();
    let field = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("email"))
        .await
        .unwrap();
    field.clear().await.unwrap();
    field.send_keys(email).await.unwrap();
    client
        .find(Locator::Id("continue"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the return after Sign in with Apple", || async {
        client.current_url().await.unwrap().path() == "/signed-in"
    })
    .await;
}

/// `GET /account` in `client`: its JSON.
async fn account_of(client: &Client, base: &str) -> serde_json::Value {
    client.goto(&format!("{base}/account")).await.unwrap();
    let body = client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&body).unwrap_or_else(|_| panic!("/account answered {body}"))
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver; run by .ci/run"]
async fn stopping_sign_in_with_apple_signs_that_person_out_of_every_browser_and_no_one_else() {
    let h = harness(LoginPage::Direct).await;
    let second = connect(&h.webdriver, &h.caps).await;
    let bob = connect(&h.webdriver, &h.caps).await;
    sign_in_with_apple(&h.client, &h.base, "ada@example.com").await;
    sign_in_with_apple(&second, &h.base, "ada@example.com").await;
    sign_in_with_apple(&bob, &h.base, "bob@example.com").await;
    let ada = account_of(&second, &h.base).await;
    assert_eq!(ada["sessions"].as_array().unwrap().len(), 2, "{ada}");
    assert_eq!(ada["sessions"][0]["current"], true, "{ada}");
    assert_eq!(ada["apple_id"]["email"], "ada@example.com");

    // At "Apple" (the sandbox's Apple ID page), Ada stops using Sign in with Apple with the app.
    h.goto("/sandbox/apple-id/account").await;
    let field = h.client.find(Locator::Id("email")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys("ada@example.com").await.unwrap();
    h.click("stop-using").await;
    // The form posts and the page comes back (a new document): poll without holding on to an
    // element of the old one.
    until("the sandbox to say the app answered", || async {
        if !h.path_and_query().await.contains("sent=consent-revoked") {
            return false;
        }
        match h.client.find(Locator::Id("result")).await {
            Ok(element) => element
                .text()
                .await
                .is_ok_and(|text| text.contains("the app answered 200")),
            Err(_) => false,
        }
    })
    .await;

    for client in [&h.client, &second] {
        let answer = account_of(client, &h.base).await;
        assert_eq!(answer["error"], "unauthenticated", "{answer}");
    }
    let still = account_of(&bob, &h.base).await;
    assert_eq!(still["apple_id"]["email"], "bob@example.com", "{still}");
    assert_eq!(still["sessions"].as_array().unwrap().len(), 1);
    for client in [second, bob] {
        client.close().await.unwrap();
    }
    h.client.clone().close().await.unwrap();
}

/// A page of the same site on another port, which plants session cookies on a deeper path.
async fn tossing_page(cookie: web::Data<String>) -> HttpResponse {
    let value = cookie.get_ref();
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            r#"<!doctype html><title>same site</title><script>
document.cookie = "__Host-id={value}; Path=/auth; Secure";
document.cookie = "id={value}; Path=/auth";
document.cookie = "__Host-id={value}; Path=/auth/apple; Secure; SameSite=Lax";
document.title = "planted";
</script>"#
        ))
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver; run by .ci/run"]
async fn a_same_site_page_on_another_port_cannot_switch_the_victims_session() {
    let h = harness(LoginPage::Direct).await;
    // The attacker signs in as themselves and takes their own session cookie's value.
    let attacker = connect(&h.webdriver, &h.caps).await;
    sign_in_with_apple(&attacker, &h.base, "eve@example.com").await;
    let eve = attacker
        .get_named_cookie("__Host-id")
        .await
        .expect("the session cookie is __Host-id")
        .value()
        .to_owned();
    attacker.close().await.unwrap();
    // The victim signs in; a page of the same site (127.0.0.1, another port) plants Eve's
    // session cookie on deeper paths.
    sign_in_with_apple(&h.client, &h.base, "victim@example.com").await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let other = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(eve.clone()))
            .default_service(web::get().to(tossing_page))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    h.client.goto(&format!("{other}/")).await.unwrap();
    until("the page to run", || async {
        h.client.title().await.is_ok_and(|t| t == "planted")
    })
    .await;
    // Under /auth, where the planted cookies would be sent first, the victim is still the victim.
    h.goto("/auth/whoami").await;
    assert_eq!(h.text_of("who").await, "victim@example.com");
    let answer = account_of(&h.client, &h.base).await;
    assert_eq!(
        answer["apple_id"]["email"], "victim@example.com",
        "{answer}"
    );
    h.client.clone().close().await.unwrap();
}

/// The account-linking attack on a shared browser: Ada signs in with Apple and connects Apple
/// Music; Bob, on the same browser, signs in with his own Apple ID. Bob gets his own account
/// (never Ada's), Ada's Apple Music is not his, and Ada's next sign-in there is hers again.
#[actix_web::test]
#[ignore = "needs chromium and chromedriver; run by .ci/run"]
async fn on_a_shared_browser_another_apple_id_never_lands_in_the_previous_persons_account() {
    let h = harness(LoginPage::Direct).await;
    sign_in_with_apple(&h.client, &h.base, "ada@example.com").await;
    h.login("?return_to=/me").await;
    let main = h.switch_to_popup().await;
    h.click("allow").await;
    h.client.switch_to_window(main).await.unwrap();
    until("the return to /me", || async {
        h.path_and_query().await == "/me"
    })
    .await;
    let ada = account_of(&h.client, &h.base).await;
    let ada_account = ada["account"]["id"].clone();
    assert_eq!(ada["apple_id"]["email"], "ada@example.com", "{ada}");

    sign_in_with_apple(&h.client, &h.base, "bob@example.com").await;
    let bob = account_of(&h.client, &h.base).await;
    assert_eq!(bob["apple_id"]["email"], "bob@example.com", "{bob}");
    assert_ne!(
        bob["account"]["id"], ada_account,
        "Bob never lands in Ada's account"
    );
    // Ada's Apple Music went with Ada: /me asks Bob to connect his own.
    h.goto("/me").await;
    until("the guard to send Bob to the Apple Music login", || async {
        h.path_and_query()
            .await
            .starts_with("/auth/apple-music/login")
    })
    .await;

    sign_in_with_apple(&h.client, &h.base, "ada@example.com").await;
    let again = account_of(&h.client, &h.base).await;
    assert_eq!(again["account"]["id"], ada_account, "{again}");
    h.client.clone().close().await.unwrap();
}
