//! A local stand-in for Apple's authorization page, so the whole sign-in can be clicked
//! through without an Apple account (the demo's default) and tested in a browser.
//!
//! It speaks the popup protocol exactly as Apple's page is observed to: it reads `a`,
//! `referrer`, `app=music` and `p=subscribe`, asks its opener for `thirdPartyInfo`, shows the
//! app name and icon, and answers `authorize` (a fake token and the restricted flag),
//! `decline` or `unavailable`. Opened without an opener (the `redirect` login page) it sends
//! the browser back to `referrer` with the result in the URL fragment.
//!
//! It also stands in for Apple Music API under `/v1/`, so sandbox sign-ins are verified too
//! and an app's own calls answer: every call checks the bearer developer token against the
//! mounted strategy's signer (`401` otherwise), then answers as `test_util::AppleMusicStandIn`
//! does (the storefront, the library's songs, albums and playlists, recently played, catalog
//! search and songs; `404` elsewhere). Personal calls (`/v1/me/…`) accept the sandbox's own
//! tokens (`sandbox.…`), answer `400` with error code `40015` (no subscription) for tokens
//! that start with `sandbox.nosub`, and `403` for anything else, so a pasted token shows what
//! Apple's refusal looks like.
//!
//! Nothing here switches on by itself: an app mounts [`routes`] and builds its config with
//! [`config`] explicitly, and [`credentials_from_env`] never falls back to the sandbox when
//! any real credential is set.

mod apple_id;

use actix_web::{web, HttpRequest, HttpResponse};

pub use apple_id::{
    apple_id_config, apple_id_routes, sandbox_sub, APPLE_ID_CLIENT_ID, APPLE_ID_PATH,
};

use crate::apple_music::{env, AppleMusicConfig, LoginPage};
use crate::developer_token::{SigningKey, ENV_PRIVATE_KEY, ENV_PRIVATE_KEY_PATH};
use crate::error::ConfigError;
use crate::respond::PageTemplate;

/// Path of the sandbox authorization page.
pub const AUTHORIZE_PATH: &str = "/sandbox/authorize";
/// The Team ID of sandbox developer tokens.
pub const TEAM_ID: &str = "SANDBOX000";
/// The key ID of sandbox developer tokens.
pub const KEY_ID: &str = "SANDBOXKEY";

/// Adds `GET /sandbox/authorize` and the stand-in for Apple Music API under `/v1/` to an app.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/{rest:.*}", web::route().to(api));
    let template = web::Data::new(PageTemplate::new(
        include_str!("authorize.html"),
        include_str!("authorize.js"),
    ));
    cfg.service(
        web::resource(AUTHORIZE_PATH)
            .app_data(template)
            .route(web::get().to(authorize_page)),
    );
}

type Auth = crate::strategy::Authenticator<crate::AppleMusicStrategy>;

/// Whether the request's bearer token is a developer token of the mounted strategy.
fn developer_token_ok(req: &HttpRequest) -> bool {
    let Some(auth) = req.app_data::<web::Data<Auth>>() else {
        return false;
    };
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| auth.strategy().signer().verify(token).is_ok())
}

/// The stand-in for Apple Music API: the developer token checked against the mounted
/// strategy's signer (`401` otherwise), then the crate's one stand-in behaviour; music user
/// tokens `sandbox.nosub…` have no subscription, other `sandbox.…` ones are accepted, anything
/// else is refused (`403`).
async fn api(req: HttpRequest) -> HttpResponse {
    use crate::stand_in::{answer, UserToken};
    let (status, body) = if developer_token_ok(&req) {
        let user_token = match req
            .headers()
            .get("music-user-token")
            .and_then(|v| v.to_str().ok())
        {
            None => UserToken::Missing,
            Some(t) if t.starts_with("sandbox.nosub") => UserToken::NoSubscription,
            Some(t) if t.starts_with("sandbox.") => UserToken::Accepted,
            Some(_) => UserToken::Refused,
        };
        let path = match req.uri().path_and_query() {
            Some(pq) => pq.as_str().to_owned(),
            None => req.path().to_owned(),
        };
        answer(req.method().as_str(), &path, user_token)
    } else {
        (
            401,
            serde_json::json!({"errors": [{"status": "401", "code": "40100", "title": "Unauthorized"}]}),
        )
    };
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(body)
}

async fn authorize_page(template: web::Data<PageTemplate>) -> HttpResponse {
    template.respond(&(), "", "")
}

/// A config for the sandbox: a throwaway key, sandbox IDs, the `direct` login page pointed
/// at `{base_url}/sandbox/authorize`, Apple Music API at `base_url` (the stand-ins of
/// [`routes`]); then the optional `APPLE_MUSIC_*` variables (so
/// `APPLE_MUSIC_LOGIN_PAGE=redirect` picks the popup-free page).
pub fn config(base_url: &str) -> Result<AppleMusicConfig, ConfigError> {
    let mut config = AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate())
        .app_name("Sandbox demo")
        .login_page(LoginPage::Direct)
        .authorize_url(format!(
            "{}{AUTHORIZE_PATH}",
            base_url.trim_end_matches('/')
        ))
        .api_base_url(base_url.trim_end_matches('/'));
    config.apply_env_options()?;
    Ok(config)
}

/// What the environment holds.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Credentials {
    /// Real credentials: the full config from [`AppleMusicConfig::from_env`].
    Real(AppleMusicConfig),
    /// No credential at all: run the sandbox.
    Sandbox,
}

/// Real credentials when any of `APPLE_MUSIC_TEAM_ID`, `APPLE_MUSIC_KEY_ID`,
/// `APPLE_MUSIC_PRIVATE_KEY`, `APPLE_MUSIC_PRIVATE_KEY_PATH` is set (and then all must be
/// valid: partial credentials are an error, never a fall-back), the sandbox when none is.
pub fn credentials_from_env() -> Result<Credentials, ConfigError> {
    let any_set = [
        env::TEAM_ID,
        env::KEY_ID,
        ENV_PRIVATE_KEY,
        ENV_PRIVATE_KEY_PATH,
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    if any_set {
        AppleMusicConfig::from_env().map(Credentials::Real)
    } else {
        Ok(Credentials::Sandbox)
    }
}
