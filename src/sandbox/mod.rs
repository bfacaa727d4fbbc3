//! A local stand-in for Apple's authorization page, so the whole sign-in can be clicked
//! through without an Apple account (the demo's default) and tested in a browser.
//!
//! It speaks the popup protocol exactly as Apple's page is observed to: it reads `a`,
//! `referrer`, `app=music` and `p=subscribe`, asks its opener for `thirdPartyInfo`, shows the
//! app name and icon, and answers `authorize` (a fake token and the restricted flag),
//! `decline` or `unavailable`. Opened without an opener (the `redirect` login page) it sends
//! the browser back to `referrer` with the result in the URL fragment.
//!
//! Nothing here switches on by itself: an app mounts [`routes`] and builds its config with
//! [`config`] explicitly, and [`credentials_from_env`] never falls back to the sandbox when
//! any real credential is set.

use actix_web::{web, HttpResponse};

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

/// Adds `GET /sandbox/authorize` to an app.
pub fn routes(cfg: &mut web::ServiceConfig) {
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

async fn authorize_page(template: web::Data<PageTemplate>) -> HttpResponse {
    template.respond(&(), "", "")
}

/// A config for the sandbox: a throwaway key, sandbox IDs, the `direct` login page pointed
/// at `{base_url}/sandbox/authorize`; then the optional `APPLE_MUSIC_*` variables (so
/// `APPLE_MUSIC_LOGIN_PAGE=redirect` picks the popup-free page).
pub fn config(base_url: &str) -> Result<AppleMusicConfig, ConfigError> {
    let mut config = AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate())
        .app_name("Sandbox demo")
        .login_page(LoginPage::Direct)
        .authorize_url(format!(
            "{}{AUTHORIZE_PATH}",
            base_url.trim_end_matches('/')
        ));
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
