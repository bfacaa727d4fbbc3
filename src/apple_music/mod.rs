//! The Apple Music strategy: login page, callback, identity.
//!
//! # Routes (under the mount prefix)
//!
//! - `GET login[?return_to=/path][&prompt=login]`: a page that runs the authorization in the
//!   browser (see [`LoginPage`]) and then submits a POST form to the callback.
//! - `POST callback` (and `GET`, only with
//!   [`allow_get_callback`](AppleMusicConfig::allow_get_callback)): passport-apple-music's
//!   parameters, `code=<music user token>&state=…&id_token_hint=<developer token>[&restricted=1|0]`
//!   or `error=<message>&state=…[&id_token_hint=…]`.
//! - `GET return?handback=…`: the `redirect` page's return page (reads the URL fragment);
//!   mounted only when the `redirect` page is configured.
//! - `POST logout`.
//!
//! # The return page cannot be used to sign someone in
//!
//! A page on another site can open our login page in a window (a fresh login state lands in
//! the victim's session) and then navigate that window to our return page with its own token
//! in the fragment. So the return page holds nothing of the session: it posts the fragment
//! with the `handback` value it finds in its own URL. That value is a second secret of the
//! login, put only into the return URL the login page gives Apple (`referrer`); the callback
//! accepts it in place of `state`, once. A return without it, or with another login's, is
//! [`FlowError::HandbackMismatch`](crate::FlowError::HandbackMismatch) (`handback_mismatch`).
//!
//! # The `redirect` page is reverse-engineered
//!
//! Navigating the window to Apple's authorize page and coming back to `referrer` with the
//! result in the fragment (`#<base64 of {"musicUserToken", "itre", "cid"}>`) is what apps in
//! the wild observe; Apple does not document it. Apple only hands the token back when
//! `referrer` has the origin of the page that navigated there; a return without a fragment is
//! taken as `declined`.

pub mod api;
mod config;
pub mod env;
mod error;
mod identity;
mod manual;
mod name;

mod strategy;
mod user;

use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Serialize;

pub use config::{
    AppleMusicConfig, LoginPage, DEFAULT_AUTHORIZE_URL, DEFAULT_EXPIRY_WARNING,
    DEFAULT_MAX_USER_TOKEN_LEN, DEFAULT_MUSICKIT_JS_URL, DEFAULT_USER_TOKEN_LIFETIME,
};
pub use error::{AppleMusicError, AuthorizationError, TokenError, UpstreamError};
pub use identity::AppleMusicIdentity;
pub use user::{AppleMusicUser, RequireAppleMusic};

use crate::developer_token::{DeveloperTokenConfig, DeveloperTokenSigner};
use crate::error::ConfigError;
use crate::respond::{PageTemplate, ScriptAsset};
use crate::secret::MusicUserToken;
use crate::strategy::CallbackParams;
use api::AppleMusicApi;

pub use name::STRATEGY_NAME;

/// Signs users in with Apple Music. Mount it with an [`Authenticator`](crate::Authenticator):
///
/// ```no_run
/// use actix_apple_music::{AppleMusicConfig, AppleMusicStrategy, Authenticator};
/// use actix_session::{storage::CookieSessionStore, SessionMiddleware};
/// use actix_web::{cookie::Key, App, HttpServer};
///
/// #[actix_web::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     // APPLE_MUSIC_TEAM_ID, APPLE_MUSIC_KEY_ID, APPLE_MUSIC_PRIVATE_KEY_PATH, …
///     let strategy = AppleMusicStrategy::new(AppleMusicConfig::from_env()?)?;
///     let auth = Authenticator::new(strategy);
///     let key = Key::generate(); // share one key between instances, see the README
///     HttpServer::new(move || {
///         App::new()
///             .wrap(SessionMiddleware::new(CookieSessionStore::default(), key.clone()))
///             .configure(auth.mount("/auth/apple-music"))
///     })
///     .bind(("127.0.0.1", 8080))?
///     .run()
///     .await?;
///     Ok(())
/// }
/// ```
pub struct AppleMusicStrategy {
    config: AppleMusicConfig,
    signer: DeveloperTokenSigner,
    api: AppleMusicApi,
    login_template: PageTemplate,
    return_template: PageTemplate,
    assets: Arc<[ScriptAsset; 2]>,
    script_src: String,
    extra_directives: String,
}

impl std::fmt::Debug for AppleMusicStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppleMusicStrategy")
            .field("config", &self.config)
            .field("signer", &self.signer)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LoginData<'a> {
    mode: &'static str,
    developer_token: &'a str,
    state: &'a str,
    callback_url: &'a str,
    return_url: String,
    app_name: &'a str,
    app_icon_url: Option<&'a str>,
    force_dialog: bool,
    timeout_ms: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorize_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    music_kit_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    manual_token_url: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReturnData<'a> {
    developer_token: &'a str,
    callback_url: &'a str,
}

impl AppleMusicStrategy {
    /// Checks the config, signs the first developer token and prepares the pages. Fails on
    /// any invalid setting, so a misconfigured app stops at start-up.
    pub fn new(config: AppleMusicConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let signer = DeveloperTokenConfig::apple_music(&config.team_id, &config.key_id)
            .lifetime(config.developer_token_lifetime)
            .origins(config.origins.clone())
            .shared_clock(config.flow.clock.clone())
            .build(config.key.clone())?;
        let mut api_options = config.api.clone();
        if let Some(origin) = config.origins.first() {
            api_options = api_options.origin(origin.clone());
        }
        let api = AppleMusicApi::with_options(signer.clone(), api_options)?;
        let (script_src, extra_directives) = match config.login_page {
            LoginPage::MusicKit => {
                let origin = url::Url::parse(&config.musickit_js_url)
                    .map(|u| u.origin().ascii_serialization())
                    .unwrap_or_default();
                (
                    format!(" {origin}"),
                    format!("; connect-src 'self' {origin} https://*.apple.com; frame-src https://*.apple.com"),
                )
            }
            LoginPage::Direct | LoginPage::Redirect => (String::new(), String::new()),
        };
        // The page scripts are static assets (cached for a year under content-hashed names,
        // checked by SRI); the pages keep only their data block.
        let assets = Arc::new([
            ScriptAsset::new(
                "login",
                crate::respond::with_post_form(include_str!("pages/login.js")),
            ),
            ScriptAsset::new(
                "return",
                crate::respond::with_post_form(include_str!("pages/return.js")),
            ),
        ]);
        Ok(Self {
            login_template: PageTemplate::with_asset(include_str!("pages/login.html"), &assets[0]),
            return_template: PageTemplate::with_asset(
                include_str!("pages/return.html"),
                &assets[1],
            ),
            assets,
            script_src,
            extra_directives,
            signer,
            api,
            config,
        })
    }

    /// Reads the config from the environment ([`AppleMusicConfig::from_env`]) and builds.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::new(AppleMusicConfig::from_env()?)
    }

    /// The developer-token signer (cached, rotating).
    pub fn signer(&self) -> &DeveloperTokenSigner {
        &self.signer
    }

    /// The config.
    pub fn config(&self) -> &AppleMusicConfig {
        &self.config
    }

    /// The Apple Music API client this strategy verifies tokens with (its base URL, timeout
    /// and body limit come from the config).
    pub fn api(&self) -> &AppleMusicApi {
        &self.api
    }

    /// Proves a new identity's music user token with Apple (`GET /v1/me/storefront`) when
    /// checking is on; answers the identity with its storefront, or the typed failure.
    pub(crate) async fn check_with_apple(
        &self,
        identity: AppleMusicIdentity,
    ) -> Result<AppleMusicIdentity, AppleMusicError> {
        if !self.config.check_with_apple {
            return Ok(identity);
        }
        match self.api.storefront(identity.music_user_token()).await {
            Ok(storefront) => Ok(identity.verified(storefront)),
            Err(error) => {
                tracing::info!("Apple Music did not verify a new sign-in: {error}");
                match error.into_sign_in_error(self.config.unavailable_policy) {
                    Some(failure) => Err(failure),
                    None => Ok(identity.unverified()),
                }
            }
        }
    }

    /// An identity for a music user token that arrived now, checked for length.
    pub(crate) fn identity_for(
        &self,
        music_user_token: String,
        restricted: Option<bool>,
    ) -> Result<AppleMusicIdentity, TokenError> {
        if music_user_token.is_empty() {
            return Err(TokenError::MissingUserToken);
        }
        if music_user_token.len() > self.config.max_user_token_len {
            return Err(TokenError::UserTokenTooLong {
                max: self.config.max_user_token_len,
            });
        }
        Ok(AppleMusicIdentity::new(
            MusicUserToken::new(music_user_token),
            self.config.flow.clock.now(),
            self.config.user_token_lifetime,
            restricted,
        ))
    }

    /// Builds the identity from checked callback values.
    fn identity(&self, params: &CallbackParams) -> Result<AppleMusicIdentity, TokenError> {
        let hint = params
            .get("id_token_hint")
            .filter(|h| !h.is_empty())
            .ok_or(TokenError::MissingIdTokenHint)?;
        self.signer
            .verify(hint)
            .map_err(TokenError::InvalidIdTokenHint)?;
        // The music user token travels as `code`, as passport-apple-music sends it.
        let (music_user_token, restricted) = match (params.get("code"), params.get("fragment")) {
            (None, Some(fragment)) => decode_fragment(fragment)?,
            (token, _) => (
                token.unwrap_or_default().to_owned(),
                parse_restricted(params.get("restricted"))?,
            ),
        };
        self.identity_for(music_user_token, restricted)
    }
}

fn parse_restricted(value: Option<&str>) -> Result<Option<bool>, TokenError> {
    match value {
        None | Some("") => Ok(None),
        Some("1" | "true") => Ok(Some(true)),
        Some("0" | "false") => Ok(Some(false)),
        Some(_) => Err(TokenError::malformed(
            "`restricted` must be 1, 0, true or false",
        )),
    }
}

/// Decodes the `redirect` return fragment: base64 (standard or URL-safe, padded or not) of
/// `{"musicUserToken": …, "itre": "0" | "1", "cid": …}`.
fn decode_fragment(fragment: &str) -> Result<(String, Option<bool>), TokenError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Fragment {
        music_user_token: String,
        #[serde(default)]
        itre: Option<String>,
    }
    let bad = || TokenError::malformed("the return fragment is not base64 of the expected JSON");
    let text = fragment.trim_start_matches('#');
    let text = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map_err(|_| bad())?;
    let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text.as_bytes()).ok())
        .ok_or_else(bad)?;
    let parsed: Fragment = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let restricted = match parsed.itre.as_deref() {
        Some("1") => Some(true),
        Some("0") => Some(false),
        _ => None,
    };
    Ok((parsed.music_user_token, restricted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_fragment_decoder_never_panics(text in "\\PC{0,200}") {
            let _ = decode_fragment(&text);
        }

        #[test]
        fn the_fragment_decoder_reads_every_base64_flavour(
            token in "\\PC{1,80}",
            itre in prop_oneof![Just(None), Just(Some("0")), Just(Some("1")), Just(Some("x"))],
            engine in 0usize..4,
            hash in any::<bool>(),
        ) {
            let mut json = serde_json::json!({"musicUserToken": token, "cid": "c"});
            if let Some(itre) = itre {
                json["itre"] = itre.into();
            }
            let engines = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD];
            let encoded = engines[engine].encode(json.to_string());
            let fragment = if hash { format!("#{encoded}") } else { encoded };
            let (decoded, restricted) = decode_fragment(&fragment).unwrap();
            prop_assert_eq!(decoded, token);
            prop_assert_eq!(restricted, match itre {
                Some("1") => Some(true),
                Some("0") => Some(false),
                _ => None,
            });
        }
    }

    #[test]
    fn a_fragment_that_is_not_base64_json_is_malformed() {
        for bad in [
            "",
            "#",
            "%%%",
            "bm90IGpzb24",
            "e30",
            "eyJtdXNpY1VzZXJUb2tlbiI6MX0",
        ] {
            assert_eq!(
                decode_fragment(bad).map_err(|e| e.reason()),
                Err("malformed_request"),
                "{bad:?}"
            );
        }
    }
}
