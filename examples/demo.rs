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
//! least 64 bytes, shared by instances), `SESSION_REDIS_URL` (Redis sessions; needs
//! `--features redis`), `APPLE_MUSIC_LOGIN_PAGE` and the rest of `AppleMusicConfig::from_env`'s
//! list.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use actix_apple_music::sandbox::{self, Credentials};
use actix_apple_music::session_store::{IdentityStore, StoreFailures};
use actix_apple_music::DeveloperTokenCheck;
use actix_apple_music::{AppleMusicStrategy, AppleMusicUser, Authenticator, SAFE_LOG_FORMAT};
use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_session::storage::{CookieSessionStore, SessionStore};
use actix_session::SessionMiddleware;
use actix_web::cookie::Key;
use actix_web::middleware::Logger;
use actix_web::{web, App, HttpResponse, HttpServer};
use base64::Engine;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;

const PREFIX: &str = "/auth/apple-music";

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn home(user: Option<AppleMusicUser>, mode: web::Data<&'static str>) -> HttpResponse {
    let body = match user {
        None => format!(
            r#"<p>You are signed out.</p>
<p><a class="button" id="sign-in" href="{PREFIX}/login?return_to=/">Continue with Apple Music</a></p>"#
        ),
        Some(user) => {
            let identity = user.identity();
            let days = user.time_left().as_secs() / 86_400;
            let warning = if user.expires_soon() {
                r#"<p class="warn">Your Apple Music connection ends soon: reconnect to keep it.</p>"#
            } else {
                ""
            };
            format!(
                r#"<p id="signed-in">You are signed in with Apple Music.</p>
<dl>
  <dt>Signed in</dt><dd id="authenticated-at">{at}</dd>
  <dt>Connection ends</dt><dd id="expires-at">{exp} (<span id="days-left">{days}</span> days left)</dd>
  <dt>Restricted account</dt><dd id="restricted">{restricted}</dd>
</dl>
{warning}
<p><a class="button" id="reconnect" href="{PREFIX}/login?prompt=login&amp;return_to=/">Reconnect</a>
<a class="link" href="/me">/me (JSON)</a></p>
<form method="post" action="{PREFIX}/logout"><button id="sign-out" type="submit">Sign out</button></form>"#,
                at = escape(&rfc3339(identity.authenticated_at())),
                exp = escape(&rfc3339(identity.expires_at())),
                restricted = match identity.restricted() {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "unknown",
                },
            )
        }
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(format!(
            r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>actix-apple-music demo</title>
<style>
 body {{ font: 16px/1.5 system-ui, -apple-system, sans-serif; max-width: 34rem; margin: 4rem auto; padding: 0 1rem; color: #1d1d1f; }}
 h1 {{ font-size: 1.5rem; }} .mode {{ color: #6e6e73; font-size: .85rem; }}
 .button, button {{ display: inline-block; font: inherit; padding: .6rem 1.2rem; border: 0; border-radius: 999px; background: #fa243c; color: #fff; text-decoration: none; cursor: pointer; }}
 button {{ background: #1d1d1f; }} dt {{ font-weight: 600; }} dd {{ margin: 0 0 .5rem; }} .warn {{ color: #b25000; }} .link {{ margin-left: 1rem; }}
</style></head>
<body><h1>actix-apple-music demo</h1><p class="mode">{mode}</p>
{body}
</body></html>"#,
            mode = escape(&mode)
        ))
}

async fn me(user: AppleMusicUser) -> HttpResponse {
    let identity = user.identity();
    let digest = Sha256::digest(identity.music_user_token().secret().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    HttpResponse::Ok().json(serde_json::json!({
        "provider": "apple-music",
        "authenticated_at": rfc3339(identity.authenticated_at()),
        "expires_at": rfc3339(identity.expires_at()),
        "restricted": identity.restricted(),
        "storefront": identity.storefront().map(|s| serde_json::json!({"id": s.id, "name": s.name})),
        "verification": identity.verification(),
        "music_user_token_sha256": hex,
    }))
}

/// Where the demo keeps sessions: private cookies, or Redis with `SESSION_REDIS_URL`.
enum Sessions {
    Cookie,
    #[cfg(feature = "redis")]
    Redis(IdentityStore<actix_session::storage::RedisSessionStore>),
}

async fn sessions() -> Result<Sessions, String> {
    let Some(url) = std::env::var("SESSION_REDIS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        println!("Sessions: in private cookies (set SESSION_REDIS_URL for Redis).");
        return Ok(Sessions::Cookie);
    };
    #[cfg(feature = "redis")]
    {
        let store = actix_apple_music::session_store::redis(url.trim())
            .await
            .map_err(|e| e.to_string())?;
        println!("Sessions: in Redis (SESSION_REDIS_URL).");
        Ok(Sessions::Redis(store))
    }
    #[cfg(not(feature = "redis"))]
    {
        let _ = url;
        Err("SESSION_REDIS_URL is set, but this demo was built without Redis support: run it with `cargo run --example demo --features redis`".into())
    }
}

/// Everything the server needs besides the session store.
struct Server {
    listener: std::net::TcpListener,
    auth: Authenticator<AppleMusicStrategy>,
    key: Key,
    secure: bool,
    session_ttl: actix_web::cookie::time::Duration,
    mode: &'static str,
    sandbox_mode: bool,
}

/// Runs the app with the session store `make_store` builds (one per worker).
async fn serve<S, F>(make_store: F, server: Server) -> Result<(), String>
where
    S: SessionStore + 'static,
    F: Fn() -> IdentityStore<S> + Clone + Send + 'static,
{
    let Server {
        listener,
        auth,
        key,
        secure,
        session_ttl,
        mode,
        sandbox_mode,
    } = server;
    HttpServer::new(move || {
        let session = SessionMiddleware::builder(make_store(), key.clone())
            .cookie_content_security(CookieContentSecurity::Private)
            .cookie_secure(secure)
            .session_lifecycle(PersistentSession::default().session_ttl(session_ttl))
            .build();
        let mut app = App::new()
            .wrap(session)
            .wrap(StoreFailures::new())
            .wrap(
                Logger::new(SAFE_LOG_FORMAT)
                    .custom_request_replace("path", actix_apple_music::safe_log_path),
            )
            .app_data(web::Data::new(mode))
            .configure(auth.clone().mount(PREFIX))
            .route("/", web::get().to(home))
            .route("/me", web::get().to(me));
        if sandbox_mode {
            app = app.configure(sandbox::routes);
        }
        app
    })
    .listen(listener)
    .map_err(|e| e.to_string())?
    .run()
    .await
    .map_err(|e| e.to_string())
}

fn session_key() -> Result<Key, String> {
    match std::env::var("SESSION_KEY") {
        Ok(text) if !text.trim().is_empty() => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| "SESSION_KEY is not base64: expected base64 of at least 64 random bytes (e.g. `openssl rand -base64 64`)".to_owned())?;
            Key::try_from(bytes.as_slice()).map_err(|_| {
                format!(
                    "SESSION_KEY holds {} bytes: expected at least 64",
                    bytes.len()
                )
            })
        }
        _ => {
            println!("SESSION_KEY is not set: using a random key, so sessions will not survive a restart or be shared between instances.");
            Ok(Key::generate())
        }
    }
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
    let store = sessions().await?;
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
    let auth = Authenticator::new(strategy);
    let key = session_key()?;

    let secure = !local.ip().is_loopback();
    if !secure {
        println!("Listening on a loopback address over plain HTTP: session cookies are sent without `Secure` so browsers keep them.");
    }
    println!("Open {base_url}/ in your browser.");

    let server = Server {
        listener,
        auth,
        key,
        secure,
        session_ttl,
        mode,
        sandbox_mode,
    };
    match store {
        Sessions::Cookie => {
            serve(|| IdentityStore::new(CookieSessionStore::default()), server).await
        }
        #[cfg(feature = "redis")]
        Sessions::Redis(store) => serve(move || store.clone(), server).await,
    }
}
