//! A local stand-in for Apple's authorization page, so the whole sign-in can be clicked
//! through without an Apple account (the demo's default) and tested in a browser.
//!
//! It speaks the popup protocol exactly as Apple's page is observed to: it reads `a`,
//! `referrer`, `app=music` and `p=subscribe`, asks its opener for `thirdPartyInfo`, shows the
//! app name and icon, and answers `authorize` (a fake token and the restricted flag),
//! `decline` or `unavailable`. Opened without an opener (the `redirect` login page) it sends
//! the browser back to `referrer` with the result in the URL fragment.
//!
//! It also stands in for the two Apple Music API calls the crate makes, so sandbox sign-ins
//! are verified too: `GET /v1/test` and `GET /v1/me/storefront` check the bearer developer
//! token against the mounted strategy's signer (`401` otherwise). The storefront call
//! answers `200` with the `us` storefront for the sandbox's own tokens (`sandbox.…`), `400`
//! with error code `40015` (no subscription) for tokens that start with `sandbox.nosub`, and
//! `403` for anything else, so a pasted token shows what Apple's refusal looks like.
//!
//! Nothing here switches on by itself: an app mounts [`routes`] and builds its config with
//! [`config`] explicitly, and [`credentials_from_env`] never falls back to the sandbox when
//! any real credential is set.

mod apple_id;

use actix_web::{web, HttpRequest, HttpResponse};

pub use apple_id::{
    apple_id_config, apple_id_routes, sandbox_sub, APPLE_ID_CLIENT_ID, APPLE_ID_PATH,
};

use crate::apple_music::page::PageTemplate;
use crate::apple_music::{env, AppleMusicConfig, LoginPage};
use crate::developer_token::{SigningKey, ENV_PRIVATE_KEY, ENV_PRIVATE_KEY_PATH};
use crate::error::ConfigError;

/// Path of the sandbox authorization page.
pub const AUTHORIZE_PATH: &str = "/sandbox/authorize";
/// The Team ID of sandbox developer tokens.
pub const TEAM_ID: &str = "SANDBOX000";
/// The key ID of sandbox developer tokens.
pub const KEY_ID: &str = "SANDBOXKEY";

/// Adds `GET /sandbox/authorize`, `GET /v1/test` and `GET /v1/me/storefront` to an app.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/test", web::get().to(api_test))
        .route("/v1/me/storefront", web::get().to(api_storefront));
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

fn api_error(status: u16, code: &str, title: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(serde_json::json!({
        "errors": [{"status": status.as_str(), "code": code, "title": title}]
    }))
}

async fn api_test(req: HttpRequest) -> HttpResponse {
    if !developer_token_ok(&req) {
        return api_error(401, "40100", "Unauthorized");
    }
    HttpResponse::Ok().json(serde_json::json!({"meta": {"sandbox": true}}))
}

async fn api_storefront(req: HttpRequest) -> HttpResponse {
    if !developer_token_ok(&req) {
        return api_error(401, "40100", "Unauthorized");
    }
    let user_token = req
        .headers()
        .get("music-user-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if user_token.starts_with("sandbox.nosub") {
        return api_error(400, "40015", "No Apple Music subscription");
    }
    if !user_token.starts_with("sandbox.") {
        return api_error(403, "40300", "Forbidden");
    }
    HttpResponse::Ok().json(serde_json::json!({
        "data": [{
            "id": "us",
            "type": "storefronts",
            "href": "/v1/storefronts/us",
            "attributes": {
                "name": "United States (sandbox)",
                "defaultLanguageTag": "en-US",
                "supportedLanguageTags": ["en-US", "es-MX"],
                "explicitContentPolicy": "allowed"
            }
        }]
    }))
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
