//! A small app that signs users in with Apple Music.
//!
//! ```text
//! cargo run --example demo          # then open the printed URL
//! ```
//!
//! With no `APPLE_MUSIC_*` credentials set it runs in **sandbox mode**: a throwaway key and
//! a local stand-in for Apple's authorization page, so the sign-in can be clicked through
//! without an Apple account. With `APPLE_MUSIC_TEAM_ID`, `APPLE_MUSIC_KEY_ID` and
//! `APPLE_MUSIC_PRIVATE_KEY_PATH` (or `APPLE_MUSIC_PRIVATE_KEY`) set it uses Apple's real
//! MusicKit. Other variables: `BIND` (default `127.0.0.1:8080`), `SESSION_KEY` (base64 of at
//! least 64 bytes, shared by instances), `SESSION_REDIS_URL` or `SESSION_REDIS_SENTINELS` + `SESSION_REDIS_SENTINEL_MASTER` or `SESSION_REDIS_CLUSTER` (Redis sessions; needs
//! `--features redis`), `INSECURE_COOKIES=1` (send the session cookie without `Secure`, for
//! plain-HTTP clients other than browsers on localhost), `AUTH_RATE_LIMIT_PER_MINUTE` (per
//! client address on the sign-in routes; default 300, `0` switches it off),
//! `METRICS_BIND` (serve the crate's metrics in Prometheus text at `GET /metrics` on this
//! address of its own), `APPLE_MUSIC_LOGIN_PAGE` and the rest of `AppleMusicConfig::from_env`'s list.

mod accounts;
mod metrics_listener;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

mod account_routes;

use accounts::{Accounts, DemoUser};
use actix_apple_music::apple_music_api::DeveloperTokenCheck;
use actix_apple_music::sandbox::{self, Credentials};
use actix_apple_music::session_store::{
    plain_http_sessions, secure_sessions, CompactCookieStore, LifetimeStore, SecretSealer,
    SessionKeys, StoreFailures, HOST_COOKIE_NAME,
};
use actix_apple_music::{
    AppleIdStrategy, AppleMusicStrategy, AppleMusicUser, Authenticator, SignInState,
    SAFE_LOG_FORMAT,
};
use actix_session::config::PersistentSession;
use actix_session::storage::SessionStore;
use actix_web::cookie::Key;
use actix_web::dev::{Service, ServiceRequest};
use actix_web::middleware::{Condition, Logger};
use actix_web::{web, App, HttpResponse, HttpServer};
use base64::Engine;
use futures_util::future::Either;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;

const PREFIX: &str = "/auth/apple-music";
const APPLE_ID_PREFIX: &str = "/auth/apple";

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn home(
    state: SignInState<AppleMusicStrategy, DemoUser>,
    // `None` when Sign in with Apple is not mounted (real credentials without APPLE_ID_*).
    apple_id: Option<SignInState<AppleIdStrategy, DemoUser>>,
    account: Option<actix_apple_music::accounts::CurrentAccount>,
    mode: web::Data<&'static str>,
    sandbox_mode: web::Data<bool>,
) -> HttpResponse {
    let account_part = match &account {
        Some(account) => account_routes::sessions_html(account).await,
        None => String::new(),
    };
    let sandbox_part = if **sandbox_mode {
        r#"<p class="mode">Sandbox: play what a person does at Apple on <a id="sandbox-apple-id-account" href="/sandbox/apple-id/account">the sandbox Apple ID page</a> (stop using Sign in with Apple, delete the Apple ID).</p>"#
    } else {
        ""
    };
    let apple_id_part = match apple_id {
        Some(SignInState::SignedIn(user)) => format!(
            r#"<p id="apple-id">Signed in with Apple as <span id="apple-id-email">{}</span> (account <span id="apple-id-account">{}</span>).</p>"#,
            escape(user.identity().email().unwrap_or("(no email shared)")),
            escape(&user.user().map(|u| u.account.clone()).unwrap_or_default())
        ),
        Some(_) => format!(
            r#"<p><a class="button apple" id="sign-in-with-apple" href="{APPLE_ID_PREFIX}/login?return_to=/">Sign in with Apple</a></p>"#
        ),
        None => String::new(),
    };
    let body = match state {
        SignInState::ReloginNeeded { .. } => format!(
            r#"<p id="ended">Your Apple Music connection has ended.</p>
<p><a class="button" id="sign-in" href="{PREFIX}/login?prompt=login&amp;return_to=/">Reconnect Apple Music</a></p>"#
        ),
        SignInState::SignedOut { .. } => format!(
            r#"<p>You are signed out.</p>
<p><a class="button" id="sign-in" href="{PREFIX}/login?return_to=/">Connect Apple Music</a></p>"#
        ),
        SignInState::SignedIn(user) => {
            let identity = user.identity();
            let days = user.token_time_left().as_secs() / 86_400;
            let warning = if user.expires_soon() {
                r#"<p class="warn">Your Apple Music connection ends soon: reconnect to keep it.</p>"#
            } else {
                ""
            };
            format!(
                r#"<p id="signed-in">You are signed in with Apple Music.</p>
<dl>
  <dt>Account</dt><dd id="account">{account}</dd>
  <dt>Signed in</dt><dd id="authenticated-at">{at}</dd>
  <dt>Connection ends</dt><dd id="expires-at">{exp} (<span id="days-left">{days}</span> days left)</dd>
  <dt>Restricted account</dt><dd id="restricted">{restricted}</dd>
</dl>
{warning}
<p><a class="button" id="reconnect" href="{PREFIX}/login?prompt=login&amp;return_to=/">Reconnect</a>
<a class="link" href="/me">/me (JSON)</a></p>
<form method="post" action="{PREFIX}/logout"><button id="sign-out" type="submit">Sign out</button></form>"#,
                account = escape(&user.user().map(|u| u.account.clone()).unwrap_or_default()),
                at = escape(&rfc3339(identity.authenticated_at())),
                exp = escape(&rfc3339(identity.expires_at())),
                restricted = match identity.restricted() {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "unknown",
                },
            )
        }
        _ => String::new(),
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ))
        .body(format!(
            r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>actix-apple-music demo</title>
<style>
 body {{ font: 16px/1.5 system-ui, -apple-system, sans-serif; max-width: 34rem; margin: 4rem auto; padding: 0 1rem; color: #1d1d1f; }}
 h1 {{ font-size: 1.5rem; }} .mode {{ color: #6e6e73; font-size: .85rem; }}
 .button, button {{ display: inline-block; font: inherit; padding: .6rem 1.2rem; border: 0; border-radius: 999px; background: #fa243c; color: #fff; text-decoration: none; cursor: pointer; }}
 button, .apple {{ background: #1d1d1f; }} button.danger {{ background: #c00; }} table {{ border-collapse: collapse; font-size: .85rem; }} td, th {{ padding: .2rem .4rem; text-align: left; border-bottom: 1px solid #d2d2d7; }} form.inline {{ display: inline; }} dt {{ font-weight: 600; }} dd {{ margin: 0 0 .5rem; }} .warn {{ color: #b25000; }} .link {{ margin-left: 1rem; }}
</style></head>
<body><h1>actix-apple-music demo</h1><p class="mode">{mode}</p>
{apple_id_part}
{body}
{account_part}
{sandbox_part}
</body></html>"#,
            mode = escape(&mode)
        ))
}

async fn me(
    user: AppleMusicUser<DemoUser>,
    apple_id: Option<actix_apple_music::SignedIn<AppleIdStrategy, DemoUser>>,
    accounts: web::Data<Arc<Accounts>>,
) -> HttpResponse {
    let identity = user.identity();
    let apple_id = apple_id
        .map(|a| serde_json::json!({"sub": a.identity().sub(), "email": a.identity().email()}));
    let account = user
        .user()
        .map(|u| serde_json::json!({"id": u.account, "sign_ins": accounts.sign_ins(&u.account)}));
    let digest = Sha256::digest(identity.music_user_token().secret().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({
        "provider": "apple-music",
        "authenticated_at": rfc3339(identity.authenticated_at()),
        "expires_at": rfc3339(identity.expires_at()),
        "restricted": identity.restricted(),
        "storefront": identity.storefront().map(|s| serde_json::json!({"id": s.id, "name": s.name})),
        "verification": identity.apple_check(),
        "music_user_token_sha256": hex,
        "account": account,
        "apple_id": apple_id,
    }))
}

/// Where the demo keeps sessions: private cookies, or Redis with `SESSION_REDIS_URL` (one
/// node), `SESSION_REDIS_SENTINELS` + `SESSION_REDIS_SENTINEL_MASTER`, or
/// `SESSION_REDIS_CLUSTER`.
enum Sessions {
    Cookie,
    #[cfg(feature = "redis")]
    Redis(Box<actix_apple_music::session_store::RedisSessions>),
}

#[cfg(feature = "redis")]
async fn sessions(keys: &SessionKeys) -> Result<Sessions, String> {
    use actix_apple_music::session_store::{self, RedisTarget};
    let Some(target) = RedisTarget::from_env().map_err(|e| e.to_string())? else {
        println!("Sessions: in private cookies (set SESSION_REDIS_URL, SESSION_REDIS_SENTINELS or SESSION_REDIS_CLUSTER for Redis).");
        return Ok(Sessions::Cookie);
    };
    let redis = session_store::redis_at(&target, keys)
        .await
        .map_err(|e| e.to_string())?;
    let topology = match target {
        RedisTarget::Sentinel { .. } => "the primary of a Sentinel group",
        RedisTarget::Cluster(_) => "a Cluster",
        _ => "one node",
    };
    println!("Sessions: in Redis ({topology}), values sealed with the session key; login states single-use across instances.");
    Ok(Sessions::Redis(Box::new(redis)))
}

#[cfg(not(feature = "redis"))]
async fn sessions(_keys: &SessionKeys) -> Result<Sessions, String> {
    let named = [
        "SESSION_REDIS_URL",
        "SESSION_REDIS_SENTINELS",
        "SESSION_REDIS_SENTINEL_MASTER",
        "SESSION_REDIS_CLUSTER",
    ]
    .into_iter()
    .find(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()));
    match named {
        Some(name) => Err(format!("{name} is set, but this demo was built without Redis support: run it with `cargo run --example demo --features redis`")),
        None => {
            println!("Sessions: in private cookies (build with --features redis and set SESSION_REDIS_URL for Redis).");
            Ok(Sessions::Cookie)
        }
    }
}

/// Everything the server needs besides the session store.
struct Server {
    listener: std::net::TcpListener,
    auth: Authenticator<AppleMusicStrategy>,
    keys: SessionKeys,
    secure: bool,
    session_ttl: actix_web::cookie::time::Duration,
    mode: &'static str,
    sandbox_mode: bool,
    limiter: Option<Arc<RateLimiter>>,
    accounts: Arc<Accounts>,
    apple_id: Option<Authenticator<AppleIdStrategy>>,
}

/// The crate's account index and sign-out marks: in Redis with Redis sessions, else in process.
fn account_store(store: &Sessions) -> actix_apple_music::accounts::Accounts {
    match store {
        Sessions::Cookie => actix_apple_music::accounts::Accounts::in_memory(),
        #[cfg(feature = "redis")]
        Sessions::Redis(redis) => redis.accounts(),
    }
}

type RateLimiter = governor::DefaultKeyedRateLimiter<std::net::IpAddr>;

/// The sign-in routes' rate limit: `AUTH_RATE_LIMIT_PER_MINUTE` requests a minute per client
/// address (default 300, bursts up to that), `0` for none.
fn rate_limiter() -> Result<Option<Arc<RateLimiter>>, String> {
    let per_minute = match std::env::var("AUTH_RATE_LIMIT_PER_MINUTE") {
        Ok(text) if !text.trim().is_empty() => text.trim().parse::<u32>().map_err(|_| {
            format!("AUTH_RATE_LIMIT_PER_MINUTE={text} is not a whole number (0 switches the limit off)")
        })?,
        _ => 300,
    };
    let Some(per_minute) = std::num::NonZeroU32::new(per_minute) else {
        println!("Sign-in routes: no rate limit (AUTH_RATE_LIMIT_PER_MINUTE=0).");
        return Ok(None);
    };
    println!("Sign-in routes: at most {per_minute} requests a minute per client address (AUTH_RATE_LIMIT_PER_MINUTE).");
    Ok(Some(Arc::new(governor::RateLimiter::keyed(
        governor::Quota::per_minute(per_minute),
    ))))
}

/// `429 Too Many Requests` with `Retry-After`, as JSON or, for browsers, a short page.
fn too_many_requests(req: &ServiceRequest, wait: std::time::Duration) -> HttpResponse {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    let html = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let mut builder = HttpResponse::TooManyRequests();
    builder
        .insert_header(("Retry-After", secs.to_string()))
        .insert_header(("Cache-Control", "no-store"));
    if html {
        builder.content_type("text/html; charset=utf-8").body(format!(
            "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Too many sign-in attempts</title>\
             <main data-error=\"rate_limited\"><h1>Too many sign-in attempts</h1>\
             <p>Please wait {secs} seconds and try again.</p></main></html>"
        ))
    } else {
        builder.json(serde_json::json!({
            "error": "rate_limited",
            "message": format!("too many sign-in requests from this address; try again in {secs} s"),
            "retry_after": secs,
        }))
    }
}
/// Runs the app with the session store `make_store` builds (one per worker).
async fn serve<S, F>(make_store: F, server: Server) -> Result<(), String>
where
    S: SessionStore + 'static,
    F: Fn() -> LifetimeStore<S> + Clone + Send + 'static,
{
    let Server {
        listener,
        auth,
        keys,
        secure,
        session_ttl,
        mode,
        sandbox_mode,
        limiter,
        accounts,
        apple_id,
    } = server;
    let access_log = log::log_enabled!(target: "actix_web::middleware::logger", log::Level::Info);
    HttpServer::new(move || {
        let limiter = limiter.clone();
        // `__Host-id` (Secure, Path=/, no Domain): no same-site page can plant a session cookie
        // the server reads first. Plain-HTTP development (INSECURE_COOKIES=1) keeps `id`.
        let (session, cookie_name) = if secure {
            (
                secure_sessions(make_store(), keys.current().clone()),
                HOST_COOKIE_NAME,
            )
        } else {
            (
                plain_http_sessions(make_store(), keys.current().clone()),
                "id",
            )
        };
        let session = session
            .session_lifecycle(PersistentSession::default().session_ttl(session_ttl))
            .build();
        let mut app = App::new()
            // Cookies under a previous key (SESSION_KEY_PREVIOUS) still read, and are written
            // again under SESSION_KEY.
            .wrap(StoreFailures::around(session).rotating(keys.clone(), cookie_name))
            .wrap_fn(move |req, srv| {
                // The sign-in routes only (Apple Music and Sign in with Apple): each callback
                // may cost a call to Apple.
                let refused = limiter.as_ref().and_then(|limiter| {
                    let path = req.path();
                    let sign_in = [PREFIX, APPLE_ID_PREFIX].iter().any(|prefix| {
                        path.strip_prefix(prefix)
                            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
                    });
                    if !sign_in {
                        return None;
                    }
                    let ip = req.peer_addr()?.ip();
                    limiter.check_key(&ip).err().map(|not_until| {
                        not_until.wait_time_from(governor::clock::Clock::now(
                            &governor::clock::DefaultClock::default(),
                        ))
                    })
                });
                let fut = match refused {
                    Some(wait) => {
                        let response = too_many_requests(&req, wait);
                        Either::Left(std::future::ready(Ok(req
                            .into_response(response)
                            .map_into_right_body())))
                    }
                    None => Either::Right(srv.call(req)),
                };
                async move {
                    match fut {
                        Either::Left(ready) => ready.await,
                        Either::Right(call) => call.await.map(|res| res.map_into_left_body()),
                    }
                }
            })
            // The access log, outermost so refused requests (429, 503) have their line too, and
            // only where its lines are kept (`RUST_LOG` at `info` or finer for it): the Logger
            // renders its line's fields on every request, logged or not.
            .wrap(Condition::new(
                access_log,
                Logger::new(SAFE_LOG_FORMAT)
                    .custom_request_replace("path", actix_apple_music::safe_log_path),
            ))
            .app_data(web::Data::new(mode))
            .app_data(web::Data::new(sandbox_mode))
            .app_data(web::Data::new(accounts.clone()))
            .configure(auth.mount(PREFIX))
            .configure(|cfg| {
                if let Some(apple_id) = &apple_id {
                    apple_id.mount(APPLE_ID_PREFIX)(cfg);
                }
            })
            .route("/", web::get().to(home))
            .route("/me", web::get().to(me))
            .configure(account_routes::routes);
        if sandbox_mode {
            app = app
                .configure(sandbox::routes)
                .configure(sandbox::apple_id_routes);
        }
        app
    })
    .listen(listener)
    .map_err(|e| e.to_string())?
    .run()
    .await
    .map_err(|e| e.to_string())
}

/// One key from base64 of at least 64 bytes; `name` names the variable in errors.
fn key_from(name: &str, text: &str) -> Result<Key, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| format!("{name} is not base64: expected base64 of at least 64 random bytes (e.g. `openssl rand -base64 64`)"))?;
    Key::try_from(bytes.as_slice())
        .map_err(|_| format!("{name} holds {} bytes: expected at least 64", bytes.len()))
}

/// `SESSION_KEY` (the current key) and `SESSION_KEY_PREVIOUS` (comma-separated keys being
/// rotated out, still read).
fn session_keys() -> Result<SessionKeys, String> {
    let current = match std::env::var("SESSION_KEY") {
        Ok(text) if !text.trim().is_empty() => key_from("SESSION_KEY", &text)?,
        _ => {
            println!("SESSION_KEY is not set: using a random key, so sessions will not survive a restart or be shared between instances.");
            Key::generate()
        }
    };
    let mut previous = Vec::new();
    if let Ok(list) = std::env::var("SESSION_KEY_PREVIOUS") {
        for (i, text) in list
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .enumerate()
        {
            previous.push(key_from(
                &format!("SESSION_KEY_PREVIOUS (key {})", i + 1),
                text,
            )?);
        }
    }
    if !previous.is_empty() {
        println!(
            "Session key rotation: {} previous key(s) still read (SESSION_KEY_PREVIOUS); sessions are written again under SESSION_KEY as they are seen.",
            previous.len()
        );
    }
    Ok(SessionKeys::new(current).previous(previous))
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

#[actix_web::main]
async fn run() -> Result<(), String> {
    let keys = session_keys()?;
    metrics_listener::start()?;
    let store = sessions(&keys).await?;
    let limiter = rate_limiter()?;
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let addr: SocketAddr = bind
        .to_socket_addrs()
        .map_err(|e| format!("BIND={bind} is not an address: {e}"))?
        .next()
        .ok_or_else(|| format!("BIND={bind} resolves to no address"))?;
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let host = if local.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        local.ip().to_string()
    };
    let host = if local.is_ipv6() && !local.ip().is_unspecified() {
        format!("[{host}]")
    } else {
        host
    };
    let base_url = format!("http://{host}:{}", local.port());

    let (config, sandbox_mode) = match sandbox::credentials_from_env().map_err(|e| e.to_string())? {
        Credentials::Real(config) => (config, false),
        Credentials::Sandbox => {
            println!("No Apple Music credentials (APPLE_MUSIC_TEAM_ID, APPLE_MUSIC_KEY_ID, APPLE_MUSIC_PRIVATE_KEY_PATH): running in sandbox mode with a throwaway key and a local stand-in for Apple's authorization page.");
            (sandbox::config(&base_url).map_err(|e| e.to_string())?, true)
        }
    };
    let config = config
        .manual_token_route(true)
        .developer_token_route(true)
        .app_name(if sandbox_mode {
            "actix-apple-music demo (sandbox)"
        } else {
            "actix-apple-music demo"
        });
    let config = match std::env::var("APPLE_MUSIC_APP_NAME") {
        Ok(name) if !name.trim().is_empty() => config.app_name(name),
        _ => config,
    };
    let strategy = AppleMusicStrategy::new(config).map_err(|e| e.to_string())?;
    if !sandbox_mode {
        let check = strategy.api().check_developer_token().await;
        match check {
            DeveloperTokenCheck::Accepted => println!("Apple Music: {check}."),
            _ => eprintln!("Apple Music: {check}."),
        }
    }
    let session_ttl = actix_web::cookie::time::Duration::seconds(
        strategy.config().session_lifetime().as_secs() as i64,
    );
    let mode: &'static str = if sandbox_mode {
        "Sandbox mode: no Apple account needed, tokens are fake."
    } else {
        "Using Apple Music."
    };
    let accounts = Arc::new(Accounts::new(SecretSealer::with_keys(&keys)));
    let lifecycle = account_store(&store);
    let apple_id = if sandbox_mode {
        Some(sandbox::apple_id_config(&base_url))
    } else if std::env::var_os(actix_apple_music::apple_id_env::CLIENT_ID).is_some() {
        Some(actix_apple_music::AppleIdConfig::from_env().map_err(|e| e.to_string())?)
    } else {
        println!("Sign in with Apple: off (set APPLE_ID_CLIENT_ID and APPLE_ID_REDIRECT_URL to switch it on).");
        None
    };
    let apple_id = match apple_id {
        Some(config) => {
            let strategy = AppleIdStrategy::new(config)
                .map_err(|e| e.to_string())?
                .on_notification(Accounts::notification_hook(accounts.clone()));
            Some(
                Authenticator::new(strategy)
                    .on_sign_in(Accounts::apple_id_hook(accounts.clone()))
                    .accounts(lifecycle.clone())
                    .account(|user: &DemoUser| user.account.clone()),
            )
        }
        None => None,
    };
    let auth = Authenticator::new(strategy)
        .on_sign_in(Accounts::hook(accounts.clone()))
        .accounts(lifecycle)
        .account(|user: &DemoUser| user.account.clone());
    #[cfg(feature = "redis")]
    let (auth, apple_id) = match &store {
        // One ledger for every strategy: a state spent on one instance is spent on all.
        Sessions::Redis(redis) => (
            auth.state_ledger(redis.ledger()),
            apple_id.map(|a| a.state_ledger(redis.ledger())),
        ),
        Sessions::Cookie => (auth, apple_id),
    };

    let secure = !matches!(
        std::env::var("INSECURE_COOKIES").as_deref().map(str::trim),
        Ok("1" | "true" | "yes" | "on")
    );
    if secure {
        println!("Session cookies carry `Secure`: browsers keep them on https:// and on http://localhost or 127.0.0.1; other plain-HTTP clients (curl, scripts) need INSECURE_COOKIES=1.");
    } else {
        println!("INSECURE_COOKIES is set: session cookies are sent without `Secure`, also over plain HTTP. Never do this in production.");
    }
    println!("Open {base_url}/ in your browser.");

    let server = Server {
        listener,
        auth,
        keys,
        secure,
        session_ttl,
        mode,
        sandbox_mode,
        limiter,
        accounts,
        apple_id,
    };
    match store {
        Sessions::Cookie => serve(|| LifetimeStore::new(CompactCookieStore::new()), server).await,
        #[cfg(feature = "redis")]
        Sessions::Redis(redis) => serve(move || redis.store(), server).await,
    }
}
