//! Configuration of the Apple Music strategy, in code or from the environment.

use std::fmt;
use std::time::Duration;

use url::Url;

use super::env;
use crate::apple_music_api::{ApiOptions, UnavailablePolicy};
use crate::clock::Clock;
use crate::developer_token::{SigningKey, DEFAULT_APPLE_MUSIC_LIFETIME};
use crate::error::ConfigError;
use crate::strategy::FlowOptions;

/// Apple's MusicKit JS v3.
pub const DEFAULT_MUSICKIT_JS_URL: &str = "https://js-cdn.music.apple.com/musickit/v3/musickit.js";
/// Apple's authorization page.
pub const DEFAULT_AUTHORIZE_URL: &str = "https://authorize.music.apple.com/woa";
/// Default lifetime of a music user token: 180 days, as passport-apple-music and Music
/// Assistant use.
pub const DEFAULT_USER_TOKEN_LIFETIME: Duration = Duration::from_secs(180 * 86_400);
/// Default longest music user token the callback accepts, in bytes. The identity lives in
/// the session; with the cookie store it must fit a browser's 4 KiB cookie.
pub const DEFAULT_MAX_USER_TOKEN_LEN: usize = 1536;

/// Default warning window before a music user token's end: 14 days.
pub const DEFAULT_EXPIRY_WARNING: Duration = Duration::from_secs(14 * 86_400);

/// Which login page the strategy serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LoginPage {
    /// Loads MusicKit JS v3 and calls `authorize()` (the default).
    #[default]
    MusicKit,
    /// Speaks the authorization popup's protocol itself, without MusicKit JS.
    Direct,
    /// No popup: navigates the window to the authorize page and back to `…/return`
    /// (reverse-engineered; for Safari/iOS and in-app web views).
    Redirect,
}

impl LoginPage {
    fn parse(value: &str) -> Option<Self> {
        match value {
            "musickit" => Some(LoginPage::MusicKit),
            "direct" => Some(LoginPage::Direct),
            "redirect" => Some(LoginPage::Redirect),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LoginPage::MusicKit => "musickit",
            LoginPage::Direct => "direct",
            LoginPage::Redirect => "redirect",
        }
    }
}

/// Everything [`AppleMusicStrategy`](super::AppleMusicStrategy) needs. Built with
/// [`new`](Self::new) and setters, or read from the environment with
/// [`from_env`](Self::from_env); checked when the strategy is built, so a bad value stops the
/// app at start-up.
#[derive(Clone)]
pub struct AppleMusicConfig {
    pub(crate) team_id: String,
    pub(crate) key_id: String,
    pub(crate) key: SigningKey,
    pub(crate) app_name: String,
    pub(crate) app_icon_url: Option<String>,
    pub(crate) login_page: LoginPage,
    pub(crate) musickit_js_url: String,
    pub(crate) authorize_url: String,
    pub(crate) developer_token_lifetime: Duration,
    pub(crate) origins: Vec<String>,
    pub(crate) user_token_lifetime: Duration,
    pub(crate) max_user_token_len: usize,
    pub(crate) authorize_timeout: Duration,
    pub(crate) expiry_warning: Duration,
    pub(crate) manual_token_route: bool,
    pub(crate) developer_token_route: bool,
    pub(crate) check_with_apple: bool,
    pub(crate) api: ApiOptions,
    pub(crate) unavailable_policy: UnavailablePolicy,
    pub(crate) flow: FlowOptions,
}

impl fmt::Debug for AppleMusicConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppleMusicConfig")
            .field("team_id", &self.team_id)
            .field("key_id", &self.key_id)
            .field("key", &self.key)
            .field("app_name", &self.app_name)
            .field("login_page", &self.login_page)
            .field("user_token_lifetime", &self.user_token_lifetime)
            .field("check_with_apple", &self.check_with_apple)
            .field("api", &self.api)
            .field("unavailable_policy", &self.unavailable_policy)
            .field("flow", &self.flow)
            .finish_non_exhaustive()
    }
}

impl AppleMusicConfig {
    /// A config with the defaults: the `musickit` page, Apple's URLs, 180-day developer and
    /// music user tokens, 10-minute login state, success and logout to `/`, new tokens
    /// proven with Apple (fail-closed).
    pub fn new(team_id: impl Into<String>, key_id: impl Into<String>, key: SigningKey) -> Self {
        Self {
            team_id: team_id.into(),
            key_id: key_id.into(),
            key,
            app_name: "Apple Music sign-in".into(),
            app_icon_url: None,
            login_page: LoginPage::default(),
            musickit_js_url: DEFAULT_MUSICKIT_JS_URL.into(),
            authorize_url: DEFAULT_AUTHORIZE_URL.into(),
            developer_token_lifetime: DEFAULT_APPLE_MUSIC_LIFETIME,
            origins: Vec::new(),
            user_token_lifetime: DEFAULT_USER_TOKEN_LIFETIME,
            max_user_token_len: DEFAULT_MAX_USER_TOKEN_LEN,
            authorize_timeout: Duration::from_secs(180),
            expiry_warning: DEFAULT_EXPIRY_WARNING,
            manual_token_route: false,
            developer_token_route: false,
            check_with_apple: true,
            api: ApiOptions::default(),
            unavailable_policy: UnavailablePolicy::default(),
            flow: FlowOptions::default(),
        }
    }

    /// Reads `APPLE_MUSIC_TEAM_ID`, `APPLE_MUSIC_KEY_ID`, the key
    /// (`APPLE_MUSIC_PRIVATE_KEY` or `APPLE_MUSIC_PRIVATE_KEY_PATH`) and the optional
    /// `APPLE_MUSIC_APP_NAME`, `APPLE_MUSIC_APP_ICON_URL`, `APPLE_MUSIC_LOGIN_PAGE`,
    /// `APPLE_MUSIC_MUSICKIT_JS_URL`, `APPLE_MUSIC_AUTHORIZE_URL`,
    /// `APPLE_MUSIC_USER_TOKEN_LIFETIME_SECS`, `APPLE_MUSIC_DEVELOPER_TOKEN_LIFETIME_SECS`,
    /// `APPLE_MUSIC_ORIGINS`, `APPLE_MUSIC_STATE_TTL_SECS`, `APPLE_MUSIC_VERIFY_TOKENS`,
    /// `APPLE_MUSIC_API_BASE_URL` and `APPLE_MUSIC_ALLOW_GET_CALLBACK` (see [`apple_music_env`](crate::apple_music_env)). Each
    /// bad value is its own error naming the variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let team_id = required(env::TEAM_ID, "your 10-character Team ID")?;
        let key_id = required(env::KEY_ID, "the 10-character ID of your MusicKit key")?;
        let key = SigningKey::from_env()?;
        let mut config = Self::new(team_id, key_id, key);
        config.apply_env_options()?;
        Ok(config)
    }

    /// Applies the optional variables (everything but the IDs and the key) to this config.
    pub fn apply_env_options(&mut self) -> Result<(), ConfigError> {
        if let Some(name) = optional(env::APP_NAME) {
            self.app_name = name;
        }
        if let Some(icon) = optional(env::APP_ICON_URL) {
            self.app_icon_url = Some(icon);
        }
        if let Some(page) = optional(env::LOGIN_PAGE) {
            self.login_page = LoginPage::parse(&page).ok_or_else(|| {
                ConfigError::invalid(env::LOGIN_PAGE, &page, "one of musickit, direct, redirect")
            })?;
        }
        if let Some(url) = optional(env::MUSICKIT_JS_URL) {
            self.musickit_js_url = url;
        }
        if let Some(url) = optional(env::AUTHORIZE_URL) {
            self.authorize_url = url;
        }
        if let Some(secs) = seconds(env::USER_TOKEN_LIFETIME_SECS)? {
            self.user_token_lifetime = secs;
        }
        if let Some(secs) = seconds(env::DEVELOPER_TOKEN_LIFETIME_SECS)? {
            self.developer_token_lifetime = secs;
        }
        if let Some(origins) = optional(env::ORIGINS) {
            self.origins = origins
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(String::from)
                .collect();
        }
        if let Some(on) = boolean(env::VERIFY_TOKENS)? {
            self.check_with_apple = on;
        }
        if let Some(on) = boolean(env::ALLOW_GET_CALLBACK)? {
            self.flow.allow_get_callback = on;
        }
        if let Some(url) = optional(env::API_BASE_URL) {
            self.api = self.api.clone().base_url(url.trim());
        }
        if let Some(secs) = seconds(env::STATE_TTL_SECS)? {
            self.flow.state_ttl = secs;
        }
        Ok(())
    }

    /// The name Apple's authorization page shows.
    pub fn app_name(mut self, name: impl Into<String>) -> Self {
        self.app_name = name.into();
        self
    }
    /// The icon Apple's authorization page shows (an `https` URL).
    pub fn app_icon_url(mut self, url: impl Into<String>) -> Self {
        self.app_icon_url = Some(url.into());
        self
    }
    /// Which login page to serve.
    pub fn login_page(mut self, page: LoginPage) -> Self {
        self.login_page = page;
        self
    }
    /// Where the `musickit` page loads MusicKit JS from.
    pub fn musickit_js_url(mut self, url: impl Into<String>) -> Self {
        self.musickit_js_url = url.into();
        self
    }
    /// The authorization page the `direct` and `redirect` pages open.
    pub fn authorize_url(mut self, url: impl Into<String>) -> Self {
        self.authorize_url = url.into();
        self
    }
    /// Lifetime of the developer tokens (at most 15 777 000 s).
    pub fn developer_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.developer_token_lifetime = lifetime;
        self
    }
    /// The developer token's `origin` claim.
    pub fn origins<I: IntoIterator<Item = S>, S: Into<String>>(mut self, origins: I) -> Self {
        self.origins = origins.into_iter().map(Into::into).collect();
        self
    }
    /// How long a music user token is taken to live after sign-in (default 180 days).
    pub fn user_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.user_token_lifetime = lifetime;
        self
    }
    /// Longest music user token accepted, in bytes (default 1536; see
    /// [`DEFAULT_MAX_USER_TOKEN_LEN`]).
    pub fn max_user_token_len(mut self, bytes: usize) -> Self {
        self.max_user_token_len = bytes;
        self
    }
    /// How long the login page waits for MusicKit or the popup before giving up with
    /// `timed_out` (default 3 minutes).
    pub fn authorize_timeout(mut self, timeout: Duration) -> Self {
        self.authorize_timeout = timeout;
        self
    }
    /// How long before the music user token's end
    /// [`AppleMusicUser::expires_soon`](crate::AppleMusicUser::expires_soon) turns true
    /// (default 14 days).
    pub fn expiry_warning(mut self, window: Duration) -> Self {
        self.expiry_warning = window;
        self
    }
    /// Serves `POST …/token` (off by default): a user pastes a music user token (for
    /// instance the `media-user-token` cookie of music.apple.com) and is signed in as by a
    /// callback. It needs the session's login state and a same-origin request.
    pub fn manual_token_route(mut self, enabled: bool) -> Self {
        self.manual_token_route = enabled;
        self
    }
    /// Serves `GET …/developer-token` (off by default): `{"token", "expires_at"}` from the
    /// signer's cache, for apps that run MusicKit JS in their own pages. It needs no sign-in;
    /// the token's `origin` claim limits where it can be used.
    pub fn developer_token_route(mut self, enabled: bool) -> Self {
        self.developer_token_route = enabled;
        self
    }
    /// Whether each new music user token (callback or manual entry) is proven with Apple's
    /// `GET /v1/me/storefront` before the user is signed in (default `true`; see
    /// [`apple_music_api`](crate::apple_music_api)). Off, identities carry no storefront.
    pub fn check_with_apple(mut self, enabled: bool) -> Self {
        self.check_with_apple = enabled;
        self
    }
    /// Flow options (targets, state lifetime, origin checks, clock, …), as
    /// [`AppleIdConfig::flow`](crate::AppleIdConfig::flow) takes them; see [`FlowOptions`].
    /// The flow setters below are shorthands for it.
    pub fn flow(mut self, change: impl FnOnce(FlowOptions) -> FlowOptions) -> Self {
        self.flow = change(self.flow);
        self
    }
    /// Apple Music API options (base URL, timeout, body limit, `Origin`, HTTP client); see
    /// [`ApiOptions`](crate::apple_music_api::ApiOptions). The `api_*` setters below are
    /// shorthands for it.
    pub fn api(mut self, change: impl FnOnce(ApiOptions) -> ApiOptions) -> Self {
        self.api = change(self.api);
        self
    }
    /// Apple Music API base URL (default `https://api.music.apple.com`; a stand-in in tests,
    /// the sandbox in the demo).
    pub fn api_base_url(mut self, url: impl Into<String>) -> Self {
        self.api = self.api.base_url(url);
        self
    }
    /// The app's own HTTP client for Apple Music API, made once per thread (see
    /// [`ApiOptions::http_client`](crate::apple_music_api::ApiOptions::http_client)).
    pub fn api_http_client(
        mut self,
        make: impl Fn() -> awc::Client + Send + Sync + 'static,
    ) -> Self {
        self.api = self.api.http_client(make);
        self
    }
    /// Answers Apple Music API calls in process (feature `test-util`): see
    /// [`test_util::AppleMusicStandIn`](crate::test_util::AppleMusicStandIn).
    #[cfg(feature = "test-util")]
    pub fn api_stand_in(mut self, stand_in: &crate::test_util::AppleMusicStandIn) -> Self {
        self.api = self.api.client(stand_in.clone());
        self
    }
    /// Timeout of one Apple Music API request, body included (default 10 s).
    pub fn api_timeout(mut self, timeout: Duration) -> Self {
        self.api = self.api.timeout(timeout);
        self
    }
    /// Largest Apple Music API response body read (default 4 MiB).
    pub fn api_max_response_bytes(mut self, bytes: usize) -> Self {
        self.api = self.api.max_response_bytes(bytes);
        self
    }
    /// What a sign-in does when Apple cannot be asked (default
    /// [`UnavailablePolicy::FailClosed`]: `503`).
    pub fn when_apple_unavailable(mut self, policy: UnavailablePolicy) -> Self {
        self.unavailable_policy = policy;
        self
    }
    /// How long a server-side session outlives what it holds: the music user token's end, or
    /// a re-login mark (default 7 days; see
    /// [`session_store`](crate::session_store)).
    pub fn session_margin(mut self, margin: Duration) -> Self {
        self.flow.session_margin = margin;
        self
    }
    /// How long a signed-in session is worth keeping: the music user token's lifetime plus
    /// the session margin (187 days by default). A good `session_ttl` for actix-session's
    /// `PersistentSession` cookie.
    pub fn session_lifetime(&self) -> Duration {
        self.user_token_lifetime + self.flow.session_margin
    }
    /// Where a successful sign-in goes when the login had no `return_to` (default `/`).
    pub fn success_target(mut self, path: impl Into<String>) -> Self {
        self.flow.success_target = path.into();
        self
    }
    /// Where browsers go after a failed sign-in, with `?error=…&reason=…` added. Unset (the
    /// default), failures are answered in place with an HTML page or JSON.
    pub fn failure_target(mut self, path: impl Into<String>) -> Self {
        self.flow.failure_target = Some(path.into());
        self
    }
    /// Where `POST …/logout` sends the browser (default `/`).
    pub fn logout_target(mut self, path: impl Into<String>) -> Self {
        self.flow.logout_target = path.into();
        self
    }
    /// How long a login may take from login page to callback (default 10 minutes; 1 s or
    /// more).
    pub fn state_ttl(mut self, ttl: Duration) -> Self {
        self.flow.state_ttl = ttl;
        self
    }
    /// The app's public origin (`https://app.example`). When set, it is the only origin the
    /// same-origin checks (logout, manual token entry) accept in `Origin` headers; unset, the
    /// request's own scheme and `Host` are. Set it behind a TLS-terminating proxy.
    pub fn public_origin(mut self, origin: impl Into<String>) -> Self {
        self.flow.public_origin = Some(origin.into());
        self
    }
    /// Believe `Forwarded` / `X-Forwarded-Host` / `X-Forwarded-Proto` for the request's own
    /// origin when no [`public_origin`](Self::public_origin) is set (default `false`: any
    /// client can send them). Only behind a proxy that sets them itself.
    pub fn trust_forwarded_headers(mut self, trust: bool) -> Self {
        self.flow.trust_forwarded_headers = trust;
        self
    }
    /// Also accept the callback by `GET` (default `false`: `GET …/callback` answers `405`
    /// with `Allow: POST`). Only for clients that follow passport-apple-music's GET callback:
    /// it puts the music user token in a URL, where browser history and access logs keep it.
    pub fn allow_get_callback(mut self, allow: bool) -> Self {
        self.flow.allow_get_callback = allow;
        self
    }
    /// How long the crate's routes wait for a request body (default
    /// [`DEFAULT_BODY_TIMEOUT`](crate::strategy::DEFAULT_BODY_TIMEOUT), 10 s); later is
    /// answered `408` (`request_timeout`).
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.flow.body_timeout = timeout;
        self
    }
    /// Where every expiry is read from; tests pass a [`ManualClock`](crate::ManualClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.flow.clock = crate::clock::SharedClock::new(clock);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let http_url = |name: &str, value: &str| -> Result<Url, ConfigError> {
            Url::parse(value)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| ConfigError::invalid(name, value, "an absolute http(s) URL"))
        };
        http_url("MusicKit JS URL", &self.musickit_js_url)?;
        http_url("authorize URL", &self.authorize_url)?;
        if let Some(icon) = &self.app_icon_url {
            http_url("app icon URL", icon)?;
        }
        if self.app_name.trim().is_empty() {
            return Err(ConfigError::invalid(
                "app name",
                &self.app_name,
                "a non-empty name",
            ));
        }
        if self.user_token_lifetime < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "music user token lifetime",
                &format!("{:?}", self.user_token_lifetime),
                "1 second or more",
            ));
        }
        self.flow.check()?;
        Ok(())
    }
}

fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn required(name: &str, expected: &str) -> Result<String, ConfigError> {
    optional(name).ok_or_else(|| ConfigError::Missing {
        name: name.into(),
        expected: expected.into(),
    })
}

fn boolean(name: &str) -> Result<Option<bool>, ConfigError> {
    let Some(value) = optional(name) else {
        return Ok(None);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(Some(true)),
        "false" | "0" | "no" | "off" => Ok(Some(false)),
        _ => Err(ConfigError::invalid(name, &value, "true or false")),
    }
}

fn seconds(name: &str) -> Result<Option<Duration>, ConfigError> {
    let Some(value) = optional(name) else {
        return Ok(None);
    };
    match value.trim().parse::<u64>() {
        Ok(secs) if secs >= 1 => Ok(Some(Duration::from_secs(secs))),
        _ => Err(ConfigError::invalid(
            name,
            &value,
            "a whole number of seconds, 1 or more",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::LoginPage;

    #[test]
    fn every_login_page_name_parses_and_nothing_else() {
        for page in [LoginPage::MusicKit, LoginPage::Direct, LoginPage::Redirect] {
            assert_eq!(LoginPage::parse(page.as_str()), Some(page));
        }
        assert_eq!(LoginPage::parse("musickit"), Some(LoginPage::MusicKit));
        assert_eq!(LoginPage::parse("direct"), Some(LoginPage::Direct));
        for bad in ["", "MusicKit", "popup", "direct "] {
            assert_eq!(LoginPage::parse(bad), None, "{bad:?}");
        }
    }
}
