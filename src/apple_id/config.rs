//! Configuration of the Sign in with Apple strategy, in code or from the environment.

use std::fmt;
use std::time::Duration;

use url::Url;

use crate::clock::Clock;
use crate::developer_token::{SigningKey, APPLE_ID_ISSUER};
use crate::error::ConfigError;
use crate::secret::ClientSecret;
use crate::strategy::FlowOptions;

/// Environment variables read by [`AppleIdConfig::from_env`].
pub mod env {
    /// The Services ID (the OAuth client ID), e.g. `com.example.web`.
    pub const CLIENT_ID: &str = "APPLE_ID_CLIENT_ID";
    /// The team ID (default: `APPLE_MUSIC_TEAM_ID`).
    pub const TEAM_ID: &str = "APPLE_ID_TEAM_ID";
    /// The ID of the key with Sign in with Apple enabled (default: `APPLE_MUSIC_KEY_ID`).
    pub const KEY_ID: &str = "APPLE_ID_KEY_ID";
    /// The key's PEM (default: the MusicKit key, `APPLE_MUSIC_PRIVATE_KEY[_PATH]`).
    pub const PRIVATE_KEY: &str = "APPLE_ID_PRIVATE_KEY";
    /// A path to the key's `.p8` file.
    pub const PRIVATE_KEY_PATH: &str = "APPLE_ID_PRIVATE_KEY_PATH";
    /// The absolute redirect URL registered with Apple, `https://app.example/auth/apple/callback`.
    pub const REDIRECT_URL: &str = "APPLE_ID_REDIRECT_URL";
    /// The issuer (default `https://appleid.apple.com`): authorize, token and keys URLs are
    /// `{issuer}/auth/authorize`, `/auth/token`, `/auth/keys`.
    pub const ISSUER: &str = "APPLE_ID_ISSUER";
}

/// How the app proves itself at the token endpoint.
#[derive(Clone)]
pub(crate) enum Credentials {
    /// Apple's way: an ES256 JWT signed with the app's key (cached and rotated).
    AppleKey {
        team_id: String,
        key_id: String,
        key: SigningKey,
    },
    /// A static client secret (other OpenID Connect providers, tests).
    Static(ClientSecret),
}

/// The provider's endpoints.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    pub(crate) authorize: String,
    pub(crate) token: String,
    pub(crate) keys: String,
}

/// Everything [`AppleIdStrategy`](super::AppleIdStrategy) needs; checked when the strategy is
/// built, so a bad value stops the app at start-up.
#[derive(Clone)]
pub struct AppleIdConfig {
    pub(crate) client_id: String,
    pub(crate) redirect_url: String,
    pub(crate) issuer: String,
    pub(crate) endpoints: Option<Endpoints>,
    pub(crate) credentials: Credentials,
    pub(crate) scope: String,
    pub(crate) request_id_token: bool,
    pub(crate) timeout: Duration,
    pub(crate) max_keys_bytes: usize,
    pub(crate) client: Option<crate::http::Outgoing>,
    pub(crate) flow: FlowOptions,
    pub(crate) identity_lifetime: Duration,
}

/// How long a Sign in with Apple sign-in lasts before the guard asks for a new one, by
/// default: 30 days ([`AppleIdConfig::identity_lifetime`]).
pub const DEFAULT_APPLE_ID_LIFETIME: Duration = Duration::from_secs(30 * 86_400);

impl fmt::Debug for AppleIdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppleIdConfig")
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url)
            .field("issuer", &self.issuer)
            .field("endpoints", &self.endpoints)
            .field(
                "credentials",
                &match &self.credentials {
                    Credentials::AppleKey {
                        team_id, key_id, ..
                    } => {
                        format!("signed client secret (team {team_id}, key {key_id})")
                    }
                    Credentials::Static(_) => "static client secret ([redacted])".to_owned(),
                },
            )
            .field("scope", &self.scope)
            .field("flow", &self.flow)
            .finish_non_exhaustive()
    }
}

impl AppleIdConfig {
    /// Sign in with Apple for the Services ID `client_id`, returning to `redirect_url` (the
    /// absolute URL of `…/auth/apple/callback`, as registered with Apple), with client secrets
    /// signed by `key` (team `team_id`, key `key_id`; the MusicKit key can serve if it has Sign
    /// in with Apple enabled). Defaults: Apple's issuer, `scope=name email`, a 10 s timeout
    /// for Apple's endpoints, the default flow options.
    pub fn new(
        client_id: impl Into<String>,
        redirect_url: impl Into<String>,
        team_id: impl Into<String>,
        key_id: impl Into<String>,
        key: SigningKey,
    ) -> Self {
        Self::with_credentials(
            client_id.into(),
            redirect_url.into(),
            Credentials::AppleKey {
                team_id: team_id.into(),
                key_id: key_id.into(),
                key,
            },
        )
    }

    /// The same flow against another OpenID Connect provider, with a static client secret
    /// (sent in the token request's body). Set its [`issuer`](Self::issuer) and
    /// [`endpoints`](Self::endpoints) (from its discovery document) and a
    /// [`scope`](Self::scope) it knows (usually `openid email`).
    pub fn with_client_secret(
        client_id: impl Into<String>,
        redirect_url: impl Into<String>,
        secret: ClientSecret,
    ) -> Self {
        Self::with_credentials(
            client_id.into(),
            redirect_url.into(),
            Credentials::Static(secret),
        )
    }

    fn with_credentials(client_id: String, redirect_url: String, credentials: Credentials) -> Self {
        Self {
            client_id,
            redirect_url,
            issuer: APPLE_ID_ISSUER.into(),
            endpoints: None,
            credentials,
            scope: "name email".into(),
            request_id_token: false,
            timeout: Duration::from_secs(10),
            max_keys_bytes: 64 * 1024,
            client: None,
            flow: FlowOptions::default(),
            identity_lifetime: DEFAULT_APPLE_ID_LIFETIME,
        }
    }

    /// Reads `APPLE_ID_CLIENT_ID`, `APPLE_ID_REDIRECT_URL`, the team ID (`APPLE_ID_TEAM_ID`,
    /// default `APPLE_MUSIC_TEAM_ID`), the key ID (`APPLE_ID_KEY_ID`, default
    /// `APPLE_MUSIC_KEY_ID`), the key (`APPLE_ID_PRIVATE_KEY` / `APPLE_ID_PRIVATE_KEY_PATH`,
    /// default the MusicKit key) and `APPLE_ID_ISSUER` (see [`apple_id_env`](crate::apple_id_env)). Each missing or bad value
    /// is its own error naming the variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let required = |name: &'static str, fallback: Option<&'static str>, expected: &str| {
            var(name)
                .or_else(|| fallback.and_then(var))
                .ok_or_else(|| ConfigError::Missing {
                    name: name.into(),
                    expected: expected.into(),
                })
        };
        let client_id = required(
            env::CLIENT_ID,
            None,
            "your Services ID, e.g. com.example.web",
        )?;
        let redirect = required(
            env::REDIRECT_URL,
            None,
            "the absolute redirect URL registered with Apple, e.g. https://app.example/auth/apple/callback",
        )?;
        let team_id = required(
            env::TEAM_ID,
            Some("APPLE_MUSIC_TEAM_ID"),
            "your 10-character Team ID",
        )?;
        let key_id = required(
            env::KEY_ID,
            Some("APPLE_MUSIC_KEY_ID"),
            "the ID of a key with Sign in with Apple enabled",
        )?;
        let key = if var(env::PRIVATE_KEY).is_some() || var(env::PRIVATE_KEY_PATH).is_some() {
            SigningKey::from_env_vars(env::PRIVATE_KEY, env::PRIVATE_KEY_PATH)?
        } else {
            SigningKey::from_env()?
        };
        let mut config = Self::new(client_id, redirect, team_id, key_id, key);
        if let Some(issuer) = var(env::ISSUER) {
            config.issuer = issuer.trim_end_matches('/').to_owned();
        }
        Ok(config)
    }

    /// The issuer: the `iss` the `id_token` must carry, the `aud` of client secrets, and, unless
    /// [`endpoints`](Self::endpoints) says otherwise, the base of `{issuer}/auth/authorize`,
    /// `/auth/token` and `/auth/keys` (default `https://appleid.apple.com`).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into().trim_end_matches('/').to_owned();
        self
    }
    /// The provider's authorize, token and keys (JWKS) URLs, when they are not Apple's
    /// `{issuer}/auth/…` paths (another provider names its own in its discovery document).
    pub fn endpoints(
        mut self,
        authorize: impl Into<String>,
        token: impl Into<String>,
        keys: impl Into<String>,
    ) -> Self {
        self.endpoints = Some(Endpoints {
            authorize: authorize.into(),
            token: token.into(),
            keys: keys.into(),
        });
        self
    }
    /// The scope asked for (default `name email`; with either, Apple answers by `form_post`).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = scope.into();
        self
    }
    /// Also ask for the `id_token` in the authorize answer (`response_type=code id_token`;
    /// default `code` only). The identity always comes from the token endpoint's `id_token`.
    pub fn request_id_token(mut self, yes: bool) -> Self {
        self.request_id_token = yes;
        self
    }
    /// The app's own awc client for the token, keys and revoke endpoints (its connector, TLS
    /// roots, proxy), made by `make` once on each thread that calls Apple: shorthand for
    /// [`client`](Self::client)`(`[`AwcClient::with_factory`](crate::http::AwcClient::with_factory)`(make))`.
    /// It should not follow redirects. With it, the crate installs no process-wide TLS crypto
    /// provider.
    pub fn http_client(self, make: impl Fn() -> awc::Client + Send + Sync + 'static) -> Self {
        self.client(crate::http::AwcClient::with_factory(make))
    }
    /// Any [`HttpClient`](crate::http::HttpClient) for the requests to Apple (default: the
    /// crate's [`AwcClient`](crate::http::AwcClient)).
    pub fn client(mut self, client: impl crate::http::HttpClient) -> Self {
        self.client = Some(crate::http::Outgoing::new(client));
        self
    }
    /// How long a call to the token or keys endpoint may take (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// How long a sign-in lasts (default [`DEFAULT_APPLE_ID_LIFETIME`], 30 days): from then on
    /// guards ask for a new sign-in (`reauthentication_required`), and a server-side session
    /// holding only this identity is kept until then plus the session margin. (Apple's
    /// sign-in itself does not end; this bounds what a stolen or forgotten session is worth.)
    pub fn identity_lifetime(mut self, lifetime: Duration) -> Self {
        self.identity_lifetime = lifetime;
        self
    }
    /// Flow options (targets, state lifetime, clock, …); see [`FlowOptions`].
    pub fn flow(mut self, change: impl FnOnce(FlowOptions) -> FlowOptions) -> Self {
        self.flow = change(self.flow);
        self
    }
    /// Where every expiry is read from (the flow's and the `id_token` checks').
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.flow = self.flow.clock(clock);
        self
    }
    /// The issuer the `id_token` must name.
    pub fn issuer_url(&self) -> &str {
        &self.issuer
    }
    /// The redirect URL given to the provider.
    pub fn redirect_url(&self) -> &str {
        &self.redirect_url
    }
    /// Sign in with Apple answered in process by `stand_in` (feature `test-util`): the token,
    /// keys and revoke endpoints, no port and no network, for apps' tests under
    /// `actix_web::test::init_service` with [`test_util::log_in_with_apple_id`](crate::test_util::log_in_with_apple_id).
    #[cfg(feature = "test-util")]
    pub fn stand_in(self, stand_in: &crate::test_util::AppleIdStandIn) -> Self {
        self.client(stand_in.clone())
    }

    /// Where the provider's requests go.
    pub(crate) fn http(&self) -> crate::http::Outgoing {
        self.client.clone().unwrap_or_default()
    }

    pub(crate) fn clock_handle(&self) -> crate::clock::SharedClock {
        self.flow.clock.clone()
    }

    pub(crate) fn endpoint_urls(&self) -> Endpoints {
        self.endpoints.clone().unwrap_or_else(|| Endpoints {
            authorize: format!("{}/auth/authorize", self.issuer),
            token: format!("{}/auth/token", self.issuer),
            keys: format!("{}/auth/keys", self.issuer),
        })
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let url = |name: &str, value: &str| -> Result<(), ConfigError> {
            Url::parse(value)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .map(|_| ())
                .ok_or_else(|| ConfigError::invalid(name, value, "an absolute http(s) URL"))
        };
        if self.client_id.trim().is_empty() {
            return Err(ConfigError::invalid(
                env::CLIENT_ID,
                &self.client_id,
                "your Services ID",
            ));
        }
        url(env::REDIRECT_URL, &self.redirect_url)?;
        url(env::ISSUER, &self.issuer)?;
        let endpoints = self.endpoint_urls();
        url("authorize URL", &endpoints.authorize)?;
        url("token URL", &endpoints.token)?;
        url("keys URL", &endpoints.keys)?;
        if self.identity_lifetime < Duration::from_secs(60) {
            return Err(ConfigError::invalid(
                "Sign in with Apple identity lifetime",
                &format!("{:?}", self.identity_lifetime),
                "a minute or more",
            ));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::invalid(
                "Sign in with Apple timeout",
                "0",
                "above zero",
            ));
        }
        self.flow.check()
    }
}
