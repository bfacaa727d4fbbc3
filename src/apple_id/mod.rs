//! Sign in with Apple: a stable account identity (`sub`) beside Apple Music, on the same
//! framework and the same kind of `.p8` key.
//!
//! # Routes (under the mount prefix, `/auth/apple` by convention)
//!
//! - `GET login`: `303` to `{issuer}/auth/authorize` with `response_type=code`,
//!   `response_mode=form_post`, `scope=name email`, `client_id`, `redirect_uri`, `state` and
//!   `nonce`.
//! - `POST callback`: Apple's form post (`code`, `state`, `id_token`, `user` on the first
//!   sign-in, or `error`). It comes from Apple's site, so it carries no `SameSite=Lax` session
//!   cookie: the strategy answers a page that posts the same fields again from our origin
//!   (with `relayed=1`), and that second POST, which has the session, is checked as usual. The
//!   login state never leaves the session and stays single-use.
//! - `POST logout`.
//!
//! The code is exchanged at `{issuer}/auth/token` with the `oauth2` crate, with a client
//! secret (an ES256 JWT: `iss` team ID, `sub` Services ID, `aud` the issuer) signed, cached and
//! rotated like developer tokens. The answer's `id_token` is checked against the keys at
//! `{issuer}/auth/keys`: the algorithm pinned to the key's, `iss`, `aud`, `exp`, `iat`, and
//! the `nonce` of this login (derived from its state, so a token of another login is refused).

mod config;
mod error;
mod identity;
mod keys;
mod notifications;
mod revoke;
mod strategy;

use std::future::Future;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, EndpointNotSet, EndpointSet, ExtraTokenFields,
    RedirectUrl, StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use config::{env, AppleIdConfig, DEFAULT_APPLE_ID_LIFETIME};
pub use error::AppleIdError;
pub use identity::{AppleIdIdentity, PersonName};
pub use notifications::{AppleIdNotification, NotificationKind, NOTIFICATION_MAX_AGE};
pub use revoke::{AccountDeletionError, RefreshCheck, Revocation};

use crate::developer_token::{DeveloperTokenConfig, DeveloperTokenSigner};
use crate::error::ConfigError;
use crate::respond::PageTemplate;
use crate::secret::RefreshToken;
use crate::strategy::CallbackParams;
use config::Credentials;
use keys::{Expected, KeyCache};

/// Largest answer read from the token and revoke endpoints: 64 KiB.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Session namespace and name of the Sign in with Apple strategy.
pub const APPLE_ID_STRATEGY_NAME: &str = "apple-id";

/// The token answer's extra field: the `id_token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdTokenField {
    #[serde(default)]
    id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type TokenAnswer = StandardTokenResponse<IdTokenField, BasicTokenType>;
type OidcClient = oauth2::Client<
    BasicErrorResponse,
    TokenAnswer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// How the client secret is had.
enum Secret {
    Signed(DeveloperTokenSigner),
    Static(crate::secret::ClientSecret),
}

/// Signs users in with their Apple ID (OpenID Connect code flow). Mount it with an
/// [`Authenticator`](crate::Authenticator), e.g. at `/auth/apple`, beside Apple Music:
///
/// ```no_run
/// use actix_apple_music::developer_token::SigningKey;
/// use actix_apple_music::{AppleIdConfig, AppleIdStrategy, Authenticator};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let key = SigningKey::from_pem_file("AuthKey_ABC123DEFG.p8")?; // MusicKit + Sign in with Apple
/// let config = AppleIdConfig::new(
///     "com.example.web",                              // Services ID
///     "https://app.example/auth/apple/callback",      // registered redirect URL
///     "TEAMID1234",
///     "ABC123DEFG",
///     key,
/// );
/// let apple_id = Authenticator::new(AppleIdStrategy::new(config)?);
/// let app = actix_web::App::new().configure(apple_id.mount("/auth/apple"));
/// # drop(app); Ok(()) }
/// ```
pub struct AppleIdStrategy {
    config: AppleIdConfig,
    secret: Secret,
    keys: Arc<KeyCache>,
    relay: PageTemplate,
    notification_hook: Option<NotificationHook>,
}

type NotificationHook = Arc<
    dyn Fn(AppleIdNotification) -> futures_util::future::LocalBoxFuture<'static, ()> + Send + Sync,
>;

impl std::fmt::Debug for AppleIdStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppleIdStrategy")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct RelayData<'a> {
    action: &'a str,
    fields: std::collections::BTreeMap<&'a str, &'a str>,
}

impl AppleIdStrategy {
    /// Checks the config and signs the first client secret. Fails on any invalid setting.
    pub fn new(config: AppleIdConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let secret = match &config.credentials {
            Credentials::AppleKey {
                team_id,
                key_id,
                key,
            } => Secret::Signed(
                DeveloperTokenConfig::sign_in_with_apple(team_id, key_id, &config.client_id)
                    .audience(&config.issuer)
                    .shared_clock(config.clock_handle())
                    .build(key.clone())?,
            ),
            Credentials::Static(secret) => Secret::Static(secret.clone()),
        };
        let endpoints = config.endpoint_urls();
        let keys = Arc::new(KeyCache::new(
            config.http(),
            endpoints.keys,
            config.timeout,
            config.max_keys_bytes,
        ));
        Ok(Self {
            relay: PageTemplate::new(
                include_str!("pages/relay.html"),
                &crate::respond::with_post_form(include_str!("pages/relay.js")),
            ),
            secret,
            keys,
            config,
            notification_hook: None,
        })
    }

    /// The app's hook for Apple's server-to-server notifications (mounted at
    /// `POST {prefix}/notifications`): each verified event, once, even when Apple delivers it
    /// again. For `consent-revoked` and `account-delete` the person's sessions are already
    /// signed out everywhere when it runs (with [`Accounts`](crate::accounts::Accounts)); the
    /// app forgets or marks what it keeps for them. Keep it quick: Apple waits for the answer.
    pub fn on_notification<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(AppleIdNotification) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.notification_hook = Some(Arc::new(move |event| Box::pin(hook(event))));
        self
    }

    /// Reads the config from the environment ([`AppleIdConfig::from_env`]) and builds.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::new(AppleIdConfig::from_env()?)
    }

    /// The config.
    pub fn config(&self) -> &AppleIdConfig {
        &self.config
    }

    /// The client-secret signer, when the secret is Apple's signed JWT.
    pub fn client_secret_signer(&self) -> Option<&DeveloperTokenSigner> {
        match &self.secret {
            Secret::Signed(signer) => Some(signer),
            Secret::Static(_) => None,
        }
    }

    fn client(&self) -> OidcClient {
        let endpoints = self.config.endpoint_urls();
        let client = oauth2::Client::new(ClientId::new(self.config.client_id.clone()))
            .set_auth_uri(AuthUrl::new(endpoints.authorize).expect("checked at start-up"))
            .set_token_uri(TokenUrl::new(endpoints.token).expect("checked at start-up"))
            .set_redirect_uri(
                RedirectUrl::new(self.config.redirect_url.clone()).expect("checked at start-up"),
            )
            .set_auth_type(AuthType::RequestBody);
        client.set_client_secret(oauth2::ClientSecret::new(self.client_secret()))
    }

    /// The client secret to send now (signed, cached and rotated; or the static one).
    fn client_secret(&self) -> String {
        match &self.secret {
            Secret::Signed(signer) => signer.token().as_str().to_owned(),
            Secret::Static(secret) => secret.secret().to_owned(),
        }
    }

    async fn exchange(&self, code: String) -> Result<TokenAnswer, AppleIdError> {
        let timeout = self.config.timeout;
        let client = self.config.http();
        let http = move |request: oauth2::HttpRequest| {
            let client = client.clone();
            async move {
                client
                    .exchange(request, crate::http::Limits::new(timeout, MAX_ANSWER_BYTES))
                    .await
            }
        };
        let answer = self
            .client()
            .exchange_code(AuthorizationCode::new(code))
            .request_async(&http)
            .await;
        answer.map_err(|e| match e {
            oauth2::RequestTokenError::ServerResponse(answer) => match answer.error().as_ref() {
                "invalid_grant" => AppleIdError::InvalidGrant,
                "invalid_client" | "unauthorized_client" => AppleIdError::InvalidClient,
                "server_error" | "temporarily_unavailable" => AppleIdError::Unavailable {
                    detail: format!("the token endpoint answered {}", answer.error().as_ref()),
                },
                other => AppleIdError::TokenEndpoint {
                    error: other.chars().take(100).collect(),
                },
            },
            oauth2::RequestTokenError::Request(e) => AppleIdError::Unavailable {
                detail: e.to_string(),
            },
            oauth2::RequestTokenError::Parse(..) => AppleIdError::Unavailable {
                detail: "the token endpoint's answer is not the expected JSON".into(),
            },
            oauth2::RequestTokenError::Other(detail) => AppleIdError::Unavailable { detail },
        })
    }

    async fn sign_in(&self, params: CallbackParams) -> Result<AppleIdIdentity, AppleIdError> {
        if let Some(error) = params.get("error") {
            return Err(match error {
                "user_cancelled_authorize" | "access_denied" => AppleIdError::Cancelled,
                other => AppleIdError::Provider {
                    error: other.chars().take(100).collect(),
                },
            });
        }
        let code = params
            .get("code")
            .filter(|c| !c.is_empty())
            .ok_or(AppleIdError::MissingCode)?
            .to_owned();
        let answer = self.exchange(code).await?;
        let id_token = answer
            .extra_fields()
            .id_token
            .clone()
            .ok_or(AppleIdError::MissingIdToken)?;
        let now = self.config.flow.now();
        let nonce = nonce_for(params.get("state").unwrap_or_default());
        let expected = Expected {
            issuer: &self.config.issuer,
            audience: &self.config.client_id,
            nonce: &nonce,
            now: now.unix_timestamp(),
        };
        let claims = self.keys.check(&id_token, &expected).await?;
        let refresh = answer
            .refresh_token()
            .map(|t| RefreshToken::new(t.secret().clone()));
        Ok(AppleIdIdentity::from_claims(
            claims,
            params.get("user"),
            refresh,
            now,
        ))
    }
}

/// The `nonce` of the login whose state is `state`: a value only this login's callback can
/// match (the state is secret and single-use), so an `id_token` of another login is refused.
fn nonce_for(state: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"actix-apple-music apple-id nonce\0")
        .chain_update(state.as_bytes())
        .finalize();
    URL_SAFE_NO_PAD.encode(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nonce_depends_on_the_state_only_and_hides_it() {
        assert_eq!(nonce_for("s1"), nonce_for("s1"));
        assert_ne!(nonce_for("s1"), nonce_for("s2"));
        assert!(!nonce_for("secret-state").contains("secret"));
        assert_eq!(nonce_for("x").len(), 43);
    }
}
