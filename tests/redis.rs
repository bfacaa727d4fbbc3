//! Several instances behind a load balancer: two app instances on two loopback ports share one
//! real `redis-server` (started here on a free port, in its own temporary directory) and one
//! session key. Needs `redis-server` and `redis-cli` and the `redis` feature; `.ci/run`
//! installs them and runs `cargo test --features redis --test redis -- --include-ignored`.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_apple_music::developer_token::SigningKey;
use actix_apple_music::session_store::{self, StoreFailures};
use actix_apple_music::{
    AppleMusicConfig, AppleMusicStrategy, AppleMusicUser, Authenticator, ManualClock,
};
use actix_session::config::CookieContentSecurity;
use actix_session::SessionMiddleware;
use actix_web::cookie::Key;
use actix_web::http::{header, StatusCode};
use actix_web::{web, App, HttpResponse};
use common::{form, page_data, KEY_ID, TEAM_ID};
use serde_json::Value;

#[path = "redis/topologies.rs"]
mod topologies;

const PREFIX: &str = "/auth/apple-music";
const HTML: &str = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8";

/// A `redis-server` on a free loopback port with its own directory; killed on drop.
struct Redis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Redis {
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]) != "PONG" {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn cli(&self, args: &[&str]) -> String {
        cli_at(self.port, args)
    }

    /// The session keys (without the ledger's spent-state keys).
    fn keys(&self) -> Vec<String> {
        let mut keys = self.all_keys();
        keys.retain(|k| !k.starts_with(session_store::SPENT_STATE_PREFIX));
        keys
    }

    fn spent_states(&self) -> Vec<String> {
        let mut keys = self.all_keys();
        keys.retain(|k| k.starts_with(session_store::SPENT_STATE_PREFIX));
        keys
    }

    fn all_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .cli(&["KEYS", "*"])
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    fn ttl(&self, key: &str) -> i64 {
        self.cli(&["TTL", key]).parse().unwrap()
    }
}

/// `redis-cli -p <port> <args>`: its output, trimmed.
fn cli_at(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli is installed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The store-agnostic suite (`tests/common/store_suite.rs`) on Redis, sealed, as the docs set
/// it up: the same cases the in-memory and cookie stores pass in `tests/integration`.
#[actix_web::test]
#[ignore = "needs redis-server; run by .ci/run"]
async fn the_store_suite_on_redis() {
    let redis = Redis::start();
    let store = session_store::redis(&redis.url(), &Key::generate())
        .await
        .unwrap()
        .store();
    let port = redis.port;
    let server_side = common::store_suite::ServerSide {
        keys: Box::new(move || {
            cli_at(port, &["KEYS", "*"])
                .lines()
                .filter(|k| !k.is_empty() && !k.starts_with(session_store::SPENT_STATE_PREFIX))
                .map(str::to_owned)
                .collect()
        }),
        ttl: Box::new(move |key| cli_at(port, &["TTL", key]).parse().ok()),
    };
    common::store_suite::run("redis", || store.clone(), Some(server_side)).await;
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn me(user: AppleMusicUser) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "expires_at": user.identity().expires_at().unix_timestamp(),
    }))
}

/// Starts one app instance on a free port; answers its base URL.
async fn instance(redis_url: &str, pem: &str, key: &Key, clock: Option<ManualClock>) -> String {
    instance_with(redis_url, pem, key, clock, true, false).await
}

/// Starts one app instance; `sealed: false` is a store as written before sealing existed
/// (values in plaintext, no shared ledger); `migrating` switches on
/// `LifetimeStore::accept_earlier_values_until` (plaintext values still read, for a while).
async fn instance_with(
    redis_url: &str,
    pem: &str,
    key: &Key,
    clock: Option<ManualClock>,
    sealed: bool,
    migrating: bool,
) -> String {
    let mut config = AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::from_pem(pem).unwrap())
        .check_with_apple(false)
        .user_token_lifetime(Duration::from_secs(3600))
        .session_margin(Duration::from_secs(60));
    if let Some(clock) = clock {
        config = config.clock(clock);
    }
    let mut auth = Authenticator::new(AppleMusicStrategy::new(config).unwrap());
    let store = if sealed {
        let redis = session_store::redis(redis_url, key).await.unwrap();
        auth = auth.state_ledger(redis.ledger());
        match migrating {
            true => redis.store().accept_earlier_values_until(
                time::OffsetDateTime::now_utc() + Duration::from_secs(600),
            ),
            false => redis.store(),
        }
    } else {
        let plain = session_store::RedisStore::connect(redis_url).await.unwrap();
        // The same type as the sealed store's, without the sealing.
        session_store::LifetimeStore::new(plain)
    };
    let key = key.clone();
    common::serve(move || {
        App::new()
            .wrap(StoreFailures::around(
                SessionMiddleware::builder(store.clone(), key.clone())
                    .cookie_content_security(CookieContentSecurity::Private)
                    .cookie_secure(false)
                    .build(),
            ))
            .configure(auth.clone().mount(PREFIX))
            .route("/me", web::get().to(me))
    })
}

/// Two instances on one Redis, sharing the session key and the `.p8` key, as behind a load
/// balancer.
async fn two_instances(redis: &Redis) -> (String, String) {
    let pem = common::fresh_pkcs8_pem();
    let key = Key::generate();
    let a = instance(&redis.url(), &pem, &key, None).await;
    let b = instance(&redis.url(), &pem, &key, None).await;
    (a, b)
}

/// A browser-like client: keeps the session cookie, follows nothing.
struct Client {
    http: awc::Client,
    cookie: Option<String>,
}

struct Answer {
    status: StatusCode,
    content_type: String,
    retry_after: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.body))
    }
}

impl Client {
    fn new() -> Self {
        Self {
            http: awc::Client::builder()
                .disable_redirects()
                .timeout(Duration::from_secs(60))
                .finish(),
            cookie: None,
        }
    }

    async fn send(
        &mut self,
        method: &str,
        url: &str,
        accept: &str,
        body: Option<String>,
    ) -> Answer {
        let mut req = self
            .http
            .request(method.parse().unwrap(), url)
            .insert_header((header::ACCEPT, accept));
        if let Some(cookie) = &self.cookie {
            req = req.insert_header((header::COOKIE, cookie.clone()));
        }
        let mut resp = match body {
            Some(body) => req
                .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
                .send_body(body)
                .await
                .unwrap(),
            None => req.send().await.unwrap(),
        };
        for value in resp.headers().get_all(header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap().to_owned();
            if pair.starts_with("id=") {
                self.cookie = (pair != "id=").then_some(pair);
            }
        }
        let header_text = |name| {
            resp.headers()
                .get(name)
                .map(|v: &header::HeaderValue| v.to_str().unwrap().to_owned())
        };
        let content_type = header_text(header::CONTENT_TYPE).unwrap_or_default();
        let retry_after = header_text(header::RETRY_AFTER);
        let body = resp.body().limit(1 << 20).await.unwrap();
        Answer {
            status: resp.status(),
            content_type,
            retry_after,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn get(&mut self, url: &str, accept: &str) -> Answer {
        self.send("GET", url, accept, None).await
    }

    /// The login page's data block (state and developer token).
    async fn login(&mut self, base: &str) -> Value {
        let page = self.get(&format!("{base}{PREFIX}/login"), HTML).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page_data(&page.body, "apple-music-login")
    }

    async fn callback(&mut self, base: &str, data: &Value, code: &str) -> Answer {
        let body = form(&[
            ("code", code),
            ("state", data["state"].as_str().unwrap()),
            ("id_token_hint", data["developerToken"].as_str().unwrap()),
        ]);
        self.send(
            "POST",
            &format!("{base}{PREFIX}/callback"),
            "application/json",
            Some(body),
        )
        .await
    }
}

#[actix_web::test]
#[ignore = "needs redis-server; run by .ci/run"]
async fn two_instances_share_one_sign_in_through_redis() {
    let redis = Redis::start();
    let (a, b) = two_instances(&redis).await;
    let mut browser = Client::new();

    // The login starts on A: one session in Redis, kept as long as the login state.
    let data = browser.login(&a).await;
    let before = redis.keys();
    assert_eq!(before.len(), 1, "{before:?}");
    let ttl = redis.ttl(&before[0]);
    assert!((1..=600).contains(&ttl), "login-only session TTL {ttl}");
    let pre_login_cookie = browser.cookie.clone();

    // It finishes on B: a new session key, the old one gone from Redis.
    let done = browser.callback(&b, &data, "mut-shared-1").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_ne!(
        browser.cookie, pre_login_cookie,
        "the session key changes at sign-in"
    );
    let after = redis.keys();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before, "the pre-login session is deleted");
    let spent = redis.spent_states();
    assert_eq!(spent.len(), 1, "the state is recorded as spent: {spent:?}");
    let spent_ttl = redis.ttl(&spent[0]);
    assert!(
        (1..=600).contains(&spent_ttl),
        "spent state kept {spent_ttl} s"
    );
    // TTL follows the identity: 1 h token + 60 s margin.
    let ttl = redis.ttl(&after[0]);
    assert!((3600..=3660).contains(&ttl), "signed-in session TTL {ttl}");

    // Both instances see the identity.
    for base in [&b, &a] {
        let me = browser.get(&format!("{base}/me"), "application/json").await;
        assert_eq!(me.status, StatusCode::OK, "{base}: {}", me.body);
    }

    // Replaying the used login (old cookie, same state) fails: the state is single-use.
    let mut replay = Client::new();
    replay.cookie = pre_login_cookie;
    let again = replay.callback(&a, &data, "mut-replayed").await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.json()["reason"], "state_mismatch");

    // Logout on B logs out on A too, and removes the session from Redis.
    let out = browser
        .send(
            "POST",
            &format!("{b}{PREFIX}/logout"),
            HTML,
            Some(String::new()),
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(redis.keys().is_empty(), "{:?}", redis.keys());
    assert_eq!(
        redis.spent_states().len(),
        1,
        "the spent state stays until its end"
    );
    let me = browser.get(&format!("{a}/me"), "application/json").await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.json()["error"], "unauthenticated");
}

#[actix_web::test]
#[ignore = "needs redis-server; run by .ci/run"]
async fn an_expired_login_state_is_reported_and_removed() {
    let redis = Redis::start();
    let pem = common::fresh_pkcs8_pem();
    let key = Key::generate();
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let a = instance(&redis.url(), &pem, &key, Some(clock.clone())).await;
    let mut browser = Client::new();
    let data = browser.login(&a).await;
    clock.advance(Duration::from_secs(11 * 60));
    let late = browser.callback(&a, &data, "mut-late").await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    assert_eq!(late.json()["reason"], "state_expired");
    // The state is gone from the stored session: the same answer again is a mismatch.
    let again = browser.callback(&a, &data, "mut-late").await;
    assert_eq!(again.json()["reason"], "state_mismatch");
}

#[actix_web::test]
#[ignore = "needs redis-server; run by .ci/run"]
async fn a_redis_outage_answers_503_and_the_app_recovers_without_a_restart() {
    let mut redis = Redis::start();
    let (a, b) = two_instances(&redis).await;
    let mut browser = Client::new();
    let data = browser.login(&a).await;
    assert_eq!(
        browser.callback(&b, &data, "mut-outage-1").await.status,
        StatusCode::SEE_OTHER
    );
    let pending = {
        let mut other = Client::new();
        let data = other.login(&b).await;
        (other, data)
    };

    redis.stop();

    // Guarded route: typed 503, JSON or HTML by Accept, at once: a refused connection is not
    // waited out until the store's 2 s deadline (a reconnection backoff once did that).
    let asked = Instant::now();
    let json = browser.get(&format!("{a}/me"), "application/json").await;
    let waited = asked.elapsed();
    assert!(waited < Duration::from_secs(1), "the 503 took {waited:?}");
    assert_eq!(
        json.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        json.body
    );
    let body = json.json();
    assert_eq!(body["error"], "session_store_unavailable");
    assert_eq!(body["operation"], "load");
    assert!(!json.body.contains("mut-outage-1"));
    let html = browser.get(&format!("{b}/me"), HTML).await;
    assert_eq!(html.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        html.content_type.starts_with("text/html"),
        "{}",
        html.content_type
    );
    assert!(html.body.contains("session_store_unavailable"));

    // Login page (a new session cannot be saved) and callback (cannot be loaded).
    let mut fresh = Client::new();
    let login = fresh.get(&format!("{a}{PREFIX}/login"), HTML).await;
    assert_eq!(login.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(login.body.contains("save"));
    let (mut other, other_data) = pending;
    let callback = other.callback(&a, &other_data, "mut-outage-2").await;
    assert_eq!(callback.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(callback.json()["error"], "session_store_unavailable");

    // Redis is back (empty: it kept nothing on disk). The same apps serve again, and the
    // same client signs in again.
    redis.spawn();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        let me = browser.get(&format!("{a}/me"), "application/json").await;
        if me.status != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
            break me.status;
        }
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the app did not recover");
    let data = browser.login(&b).await;
    let done = browser.callback(&a, &data, "mut-outage-3").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    for base in [&a, &b] {
        let me = browser.get(&format!("{base}/me"), "application/json").await;
        assert_eq!(me.status, StatusCode::OK);
    }
}

/// Twenty callbacks with one state and one cookie, at once, spread over two instances:
/// exactly one signs in; the others are refused as `state_mismatch`.
#[actix_web::test]
#[ignore = "needs redis-server; run by .ci/run"]
async fn parallel_callbacks_with_one_state_sign_in_once_across_instances() {
    let redis = Redis::start();
    let (a, b) = two_instances(&redis).await;
    let mut browser = Client::new();
    let data = browser.login(&a).await;
    let cookie = browser.cookie.clone();
    let calls = (0..20).map(|i| {
        let mut client = Client::new();
        client.cookie = cookie.clone();
        let base = if i % 2 == 0 { a.clone() } else { b.clone() };
        let data = data.clone();
        async move {
            client
                .callback(&base, &data, &format!("mut-parallel-{i}"))
                .await
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    let signed_in = answers
        .iter()
        .filter(|a| a.status == StatusCode::SEE_OTHER)
        .count();
    assert_eq!(signed_in, 1, "exactly one of 20 signs in");
    for answer in answers.iter().filter(|a| a.status != StatusCode::SEE_OTHER) {
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
        assert_eq!(answer.json()["reason"], "state_mismatch");
    }
    assert_eq!(redis.spent_states().len(), 1);
}

/// A dump of every Redis key holds no music user token, no developer token and no login
/// state in plaintext; a session copied under another session's key does not read; a session
/// written before sealing is refused, unless the store is
/// migrating (`accept_earlier_values_until`): then it reads, and is sealed when next written.
#[actix_web::test]
#[ignore = "needs redis-server; run by .ci/run"]
async fn redis_holds_no_token_or_state_in_plaintext() {
    let redis = Redis::start();
    let pem = common::fresh_pkcs8_pem();
    let key = Key::generate();
    let sealed = instance(&redis.url(), &pem, &key, None).await;
    let legacy = instance_with(&redis.url(), &pem, &key, None, false, false).await;
    let migrating = instance_with(&redis.url(), &pem, &key, None, true, true).await;

    let token = "mut-at-rest-0123456789";
    let mut browser = Client::new();
    let data = browser.login(&sealed).await;
    let state = data["state"].as_str().unwrap().to_owned();
    let pending = redis.keys();
    let dump = |redis: &Redis| -> String {
        redis
            .all_keys()
            .iter()
            .map(|k| format!("{k} = {}\n", redis.cli(&["GET", k])))
            .collect()
    };
    let at_login = dump(&redis);
    assert_eq!(pending.len(), 1);
    assert!(
        !at_login.contains(&state),
        "the login state is sealed: {at_login}"
    );
    assert!(!at_login.contains("apple-music.login\":\"{"), "{at_login}");
    let done = browser.callback(&sealed, &data, token).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let signed_in = dump(&redis);
    let developer_token = data["developerToken"].as_str().unwrap();
    assert!(!signed_in.contains(token), "{signed_in}");
    assert!(!signed_in.contains(developer_token), "{signed_in}");
    assert!(!signed_in.contains(&state), "{signed_in}");
    assert!(
        signed_in.contains("aam2."),
        "values are sealed: {signed_in}"
    );
    // The sealed session reads back on the sealed instance.
    let me = browser
        .get(&format!("{sealed}/me"), "application/json")
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);

    // Someone who can write to Redis copies the victim's sealed session under their own
    // session's key: every value is sealed for its session, so it reads as no session.
    let victim_key = redis.keys().pop().unwrap();
    let mut attacker = Client::new();
    let data = attacker.login(&sealed).await;
    let done = attacker.callback(&sealed, &data, "mut-attacker").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let attacker_key = redis.keys().into_iter().find(|k| *k != victim_key).unwrap();
    let victims = redis.cli(&["GET", &victim_key]);
    assert_eq!(
        redis.cli(&["SET", &attacker_key, &victims, "KEEPTTL"]),
        "OK"
    );
    let me = attacker
        .get(&format!("{sealed}/me"), "application/json")
        .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.body);
    let me = browser
        .get(&format!("{sealed}/me"), "application/json")
        .await;
    assert_eq!(me.status, StatusCode::OK, "the victim stays: {}", me.body);

    // A session written by the old, unsealed store: its identity is plaintext in Redis…
    let mut old = Client::new();
    let data = old.login(&legacy).await;
    let done = old
        .callback(&legacy, &data, "mut-written-before-sealing")
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(dump(&redis).contains("mut-written-before-sealing"));
    // …which a sealed store refuses (someone who can write to Redis could plant one)…
    let mut copy = Client::new();
    copy.cookie = old.cookie.clone();
    let me = copy.get(&format!("{sealed}/me"), "application/json").await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.body);
    // …and one migrating still reads, and seals it when it writes it next (a logout-free way
    // to make it write: start a login in the same session).
    let me = old
        .get(&format!("{migrating}/me"), "application/json")
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let _ = old.login(&migrating).await;
    assert!(
        !dump(&redis).contains("mut-written-before-sealing"),
        "{}",
        dump(&redis)
    );
    let me = old.get(&format!("{sealed}/me"), "application/json").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
}

async fn account(
    account: actix_apple_music::accounts::CurrentAccount,
) -> actix_web::Result<HttpResponse> {
    let sessions = account.sessions().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"account": account.id(), "sessions": sessions})))
}

async fn sign_out_everywhere(
    account: actix_apple_music::accounts::CurrentAccount,
) -> actix_web::Result<HttpResponse> {
    account.sign_out_everywhere().await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn sign_out_others(
    account: actix_apple_music::accounts::CurrentAccount,
) -> actix_web::Result<HttpResponse> {
    account.sign_out_others().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A guarded request that is slow, then writes to its session.
async fn slow(user: AppleMusicUser, session: actix_session::Session) -> HttpResponse {
    actix_web::rt::time::sleep(Duration::from_millis(400)).await;
    session.insert("app.visits", 1).unwrap();
    HttpResponse::Ok().json(serde_json::json!({"restricted": user.identity().restricted()}))
}

/// An instance that keeps accounts in Redis: the account is the music user token's part
/// before its first `-` (`ada-1` → `ada`).
async fn accounts_instance(redis_url: &str, pem: &str, key: &Key) -> String {
    let target = session_store::RedisTarget::Node(redis_url.to_owned());
    accounts_instance_at(&target, pem, key).await
}

/// [`accounts_instance`] on any Redis topology.
async fn accounts_instance_at(target: &session_store::RedisTarget, pem: &str, key: &Key) -> String {
    let config = AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::from_pem(pem).unwrap())
        .check_with_apple(false)
        .user_token_lifetime(Duration::from_secs(3600));
    let redis = session_store::redis_at(target, &session_store::SessionKeys::new(key.clone()))
        .await
        .unwrap();
    let auth = Authenticator::new(AppleMusicStrategy::new(config).unwrap())
        .state_ledger(redis.ledger())
        .accounts(redis.accounts())
        .on_sign_in(
            |sign_in: actix_apple_music::SignInContext<AppleMusicStrategy>| {
                let token = sign_in.identity().music_user_token().secret().to_owned();
                let person = token.split('-').next().unwrap_or_default().to_owned();
                async move { Ok(person) }
            },
        )
        .account(|person: &String| person.clone());
    let store = redis.store();
    let key = key.clone();
    common::serve(move || {
        App::new()
            .wrap(StoreFailures::around(
                SessionMiddleware::builder(store.clone(), key.clone())
                    .cookie_content_security(CookieContentSecurity::Private)
                    .cookie_secure(false)
                    .build(),
            ))
            .configure(auth.clone().mount(PREFIX))
            .route("/me", web::get().to(me))
            .route("/slow", web::get().to(slow))
            .route("/account", web::get().to(account))
            .route(
                "/account/sign-out-everywhere",
                web::post().to(sign_out_everywhere),
            )
            .route("/account/sign-out-others", web::post().to(sign_out_others))
    })
}

/// Signs a new browser in on `base` with the music user token `token`.
async fn signed_in(base: &str, token: &str) -> Client {
    let mut browser = Client::new();
    let data = browser.login(base).await;
    let answer = browser.callback(base, &data, token).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    browser
}

/// Polls `GET {base}/me` with `cookie` until it answers `want`; answers how long it took.
async fn me_becomes(base: &str, cookie: &Option<String>, want: StatusCode) -> Duration {
    let start = Instant::now();
    loop {
        let mut client = Client::new();
        client.cookie = cookie.clone();
        let status = client
            .get(&format!("{base}/me"), "application/json")
            .await
            .status;
        if status == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{base}/me kept answering {status}, not {want}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
#[ignore = "needs redis-server; run by .ci/run"]
async fn sign_out_everywhere_and_but_here_hold_across_two_instances_on_redis() {
    let redis = Redis::start();
    let (pem, key) = (common::fresh_pkcs8_pem(), Key::generate());
    let a = accounts_instance(&redis.url(), &pem, &key).await;
    let b = accounts_instance(&redis.url(), &pem, &key).await;
    let mut laptop = signed_in(&a, "ada-1").await;
    let phone = signed_in(&b, "ada-2").await;
    let bob = signed_in(&a, "bob-1").await;
    let listed = laptop
        .get(&format!("{b}/account"), "application/json")
        .await
        .json();
    assert_eq!(listed["account"], "ada");
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(listed["sessions"][0]["current"], true);

    // The index holds nothing secret: times, the strategy, a user agent.
    let index: Vec<String> = redis
        .all_keys()
        .into_iter()
        .filter(|k| k.contains(":account:") && k.ends_with(":sessions"))
        .collect();
    assert_eq!(
        index.len(),
        2,
        "one index per account, no key scan: {index:?}"
    );
    for key in &index {
        let dump = redis.cli(&["HGETALL", key]);
        assert!(!dump.contains("ada-") && !dump.contains("bob-"), "{dump}");
    }

    // Everywhere but here, asked on B: the phone is out on both instances, the laptop stays.
    let old_laptop = laptop.cookie.clone();
    let mut laptop_on_b = Client::new();
    laptop_on_b.cookie = laptop.cookie.clone();
    let answer = laptop_on_b
        .send(
            "POST",
            &format!("{b}/account/sign-out-others"),
            "application/json",
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.body);
    laptop.cookie = laptop_on_b.cookie.clone();
    let took = me_becomes(&a, &phone.cookie, StatusCode::UNAUTHORIZED).await;
    assert!(
        took <= actix_apple_music::accounts::DEFAULT_MARKS_CACHE + Duration::from_secs(2),
        "seen on the other instance within the marks cache time: {took:?}"
    );
    me_becomes(&b, &phone.cookie, StatusCode::UNAUTHORIZED).await;
    me_becomes(&a, &old_laptop, StatusCode::UNAUTHORIZED).await;
    for base in [&a, &b] {
        me_becomes(base, &laptop.cookie, StatusCode::OK).await;
    }

    // A slow request of the laptop saves its old copy after a sign-out everywhere from B.
    let slow = {
        let mut client = Client::new();
        client.cookie = laptop.cookie.clone();
        let a = a.clone();
        actix_web::rt::spawn(async move {
            let answer = client.get(&format!("{a}/slow"), "application/json").await;
            (answer.status, client.cookie)
        })
    };
    actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    let mut other = signed_in(&b, "ada-3").await;
    let answer = other
        .send(
            "POST",
            &format!("{b}/account/sign-out-everywhere"),
            "application/json",
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    let (status, saved) = slow.await.unwrap();
    assert_eq!(status, StatusCode::OK, "it began signed in");
    for base in [&a, &b] {
        me_becomes(base, &saved, StatusCode::UNAUTHORIZED).await;
        me_becomes(base, &other.cookie, StatusCode::UNAUTHORIZED).await;
    }
    // Bob was never touched; Ada signs in again at once.
    for base in [&a, &b] {
        me_becomes(base, &bob.cookie, StatusCode::OK).await;
    }
    let again = signed_in(&b, "ada-4").await;
    me_becomes(&a, &again.cookie, StatusCode::OK).await;

    // An entry past its end (the identity's end plus the session margin) is not listed, and
    // is removed from the index: read by an account store whose clock is 30 days on.
    let store = session_store::redis(&redis.url(), &key).await.unwrap();
    assert_eq!(store.accounts().sessions("ada").await.unwrap().len(), 1);
    let later = ManualClock::starting_now();
    later.advance(Duration::from_secs(30 * 86_400));
    let ended = store.accounts().clock(later);
    assert!(ended.sessions("ada").await.unwrap().is_empty());
    let index: Vec<String> = redis
        .all_keys()
        .into_iter()
        .filter(|k| k.contains(":account:") && k.ends_with(":sessions"))
        .collect();
    let left: usize = index
        .iter()
        .map(|k| redis.cli(&["HLEN", k]).parse::<usize>().unwrap())
        .sum();
    assert_eq!(left, 1, "only Bob's entry is left: {index:?}");
}

/// An instance rotating its session key: `keys.current()` seals and signs, the previous keys
/// still open.
async fn rotating_instance(redis_url: &str, pem: &str, keys: session_store::SessionKeys) -> String {
    let config = AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::from_pem(pem).unwrap())
        .check_with_apple(false)
        .user_token_lifetime(Duration::from_secs(3600));
    let redis = session_store::redis_with_keys(redis_url, &keys)
        .await
        .unwrap();
    let auth =
        Authenticator::new(AppleMusicStrategy::new(config).unwrap()).state_ledger(redis.ledger());
    let store = redis.store();
    common::serve(move || {
        let session = SessionMiddleware::builder(store.clone(), keys.current().clone())
            .cookie_content_security(CookieContentSecurity::Private)
            .cookie_secure(false)
            .build();
        App::new()
            .wrap(StoreFailures::around(session).rotating(keys.clone(), "id"))
            .configure(auth.mount(PREFIX))
            .route("/me", web::get().to(me))
    })
}

#[actix_web::test]
#[ignore = "needs redis-server; run by .ci/run"]
async fn a_key_rotation_on_redis_signs_nobody_out_and_reseals_under_the_new_key() {
    use session_store::SessionKeys;
    let redis = Redis::start();
    let pem = common::fresh_pkcs8_pem();
    let (old, new) = (Key::generate(), Key::generate());
    let before = rotating_instance(&redis.url(), &pem, SessionKeys::new(old.clone())).await;
    let seen = signed_in(&before, "seen-token").await;
    let unseen = signed_in(&before, "unseen-token").await;
    // Current new, previous old: still signed in, the session written again under the new key.
    let rotating = rotating_instance(
        &redis.url(),
        &pem,
        SessionKeys::new(new.clone()).previous([old]),
    )
    .await;
    let mut browser = Client::new();
    browser.cookie = seen.cookie.clone();
    let me = browser
        .get(&format!("{rotating}/me"), "application/json")
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_ne!(
        browser.cookie, seen.cookie,
        "the cookie is written again under the new key"
    );
    // The new key alone: the rotated session reads (cookie and sealed values); the one not
    // seen during the rotation is signed out cleanly.
    let after = rotating_instance(&redis.url(), &pem, SessionKeys::new(new)).await;
    me_becomes(&after, &browser.cookie, StatusCode::OK).await;
    me_becomes(&after, &unseen.cookie, StatusCode::UNAUTHORIZED).await;
}

/// Log lines of this test binary, for the warning test.
fn log_lines() -> &'static std::sync::Mutex<Vec<String>> {
    static LINES: std::sync::OnceLock<std::sync::Mutex<Vec<String>>> = std::sync::OnceLock::new();
    LINES.get_or_init(|| std::sync::Mutex::new(Vec::new()))
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        log_lines().lock().unwrap().push(record.args().to_string());
    }
    fn flush(&self) {}
}

/// Accounts in Redis with login states spent in process (a state could be spent once per
/// instance) is said loudly at start-up; with the shared ledger, nothing is said.
#[actix_web::test]
#[ignore = "needs redis-server; run by .ci/run"]
async fn accounts_in_redis_with_a_ledger_in_process_is_warned_at_mount() {
    let _ = log::set_boxed_logger(Box::new(Capture));
    log::set_max_level(log::LevelFilter::Warn);
    let redis = Redis::start();
    let key = Key::generate();
    let sessions = session_store::redis(&redis.url(), &key).await.unwrap();
    let strategy = || {
        AppleMusicStrategy::new(AppleMusicConfig::new(
            TEAM_ID,
            KEY_ID,
            SigningKey::generate(),
        ))
        .unwrap()
    };
    let warned = || {
        log_lines()
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("spends login states in process"))
            .count()
    };
    let shared = Authenticator::new(strategy())
        .accounts(sessions.accounts())
        .state_ledger(sessions.ledger());
    let _ = App::new().configure(shared.mount(PREFIX));
    assert_eq!(warned(), 0, "the shared ledger: nothing to say");
    let forgotten = Authenticator::new(strategy()).accounts(sessions.accounts());
    let _ = App::new().configure(forgotten.mount(PREFIX));
    let _ = App::new().configure(forgotten.mount(PREFIX)); // once per app, not per worker
    assert_eq!(warned(), 1, "{:?}", log_lines().lock().unwrap());
}
