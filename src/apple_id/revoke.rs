//! Revoking a person's tokens at Apple, checking a refresh token, and deleting an account in
//! one call.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::AppleIdStrategy;
use crate::accounts::AccountsError;
use crate::secret::RefreshToken;
use crate::strategy::{Authenticator, MAX_RETRY_AFTER};

/// Wait suggested when Apple gives no `Retry-After`: 5 seconds.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// One exchange with Apple, as oauth2's async HTTP client answers it.
type Exchange =
    std::pin::Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, crate::http::HttpError>>>>;
/// The `Retry-After` of the last answer, if any.
type NotedWait = Arc<Mutex<Option<Duration>>>;

/// What Apple said to a revocation ([`AppleIdStrategy::revoke`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revocation {
    /// Revoked (Apple answers so for a token it does not know, too). The person's next
    /// authorization of the app is a first one again.
    Revoked,
    /// Apple refused the app's client credentials or the request (`invalid_client`,
    /// `invalid_request`, …): a configuration fault, not worth retrying as it is.
    Refused {
        /// Apple's `error`.
        error: String,
    },
    /// Apple could not be asked: try again after `retry_after`.
    Unavailable {
        /// Apple's `Retry-After` (bounded), or 5 seconds.
        retry_after: Duration,
        /// What went wrong (never a token).
        detail: String,
    },
}

/// What Apple said about a refresh token ([`AppleIdStrategy::check_refresh_token`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshCheck {
    /// The person still uses Sign in with Apple with the app.
    Alive,
    /// The token is revoked (`invalid_grant`): they stopped, or the app revoked it.
    Revoked,
    /// Apple refused the app's client credentials (`invalid_client`, …).
    Refused {
        /// Apple's `error`.
        error: String,
    },
    /// Apple could not be asked: try again after `retry_after`.
    Unavailable {
        /// Apple's `Retry-After` (bounded), or 5 seconds.
        retry_after: Duration,
        /// What went wrong (never a token).
        detail: String,
    },
}

/// Why [`Authenticator::delete_account`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountDeletionError {
    /// Apple did not revoke the token: nothing else was done.
    #[error("Apple did not revoke the Sign in with Apple token: {0:?}")]
    NotRevoked(Revocation),
    /// The token was revoked, but the account store could not sign the account out:
    /// call again (revoking twice is harmless).
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    /// The app's own deletion failed (the token is revoked and the account signed out).
    #[error("the app could not delete the account: {0}")]
    App(String),
}

fn retry_after(header: Option<Duration>) -> Duration {
    header.unwrap_or(DEFAULT_RETRY_AFTER).min(MAX_RETRY_AFTER)
}

impl AppleIdStrategy {
    /// The Services ID (OAuth client ID) the app signs in with.
    pub fn client_id(&self) -> &str {
        &self.config.client_id
    }

    /// oauth2's HTTP client on the strategy's awc client, remembering a `Retry-After`.
    fn http_noting_retry(&self) -> (impl Fn(oauth2::HttpRequest) -> Exchange, NotedWait) {
        let seen = Arc::new(Mutex::new(None));
        let noted = seen.clone();
        let timeout = self.config.timeout;
        let client = self.config.http();
        let http = move |request: oauth2::HttpRequest| {
            let client = client.clone();
            let noted = noted.clone();
            Box::pin(async move {
                let answer = client
                    .exchange(
                        request,
                        crate::http::Limits::new(timeout, super::MAX_ANSWER_BYTES),
                    )
                    .await?;
                let wait = answer
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                *noted.lock().unwrap_or_else(|e| e.into_inner()) = wait;
                Ok(answer)
            }) as Exchange
        };
        (http, seen)
    }

    /// Revokes `token` (a refresh token) at `{issuer}/auth/revoke`, with a fresh client
    /// secret, as Apple asks of apps when a person deletes their account. (The form is built
    /// here: oauth2's revocation request insists on an `https` URL, and the stand-ins of
    /// development and tests speak plain HTTP.)
    pub async fn revoke(&self, token: &RefreshToken) -> Revocation {
        let revocation = self.send_revocation(token).await;
        crate::audit::emit(crate::audit::AuditEvent::Revocation {
            outcome: match revocation {
                Revocation::Revoked => "revoked",
                Revocation::Refused { .. } => "refused",
                Revocation::Unavailable { .. } => "unavailable",
            },
        });
        revocation
    }

    /// [`revoke`](Self::revoke) without its audit event.
    async fn send_revocation(&self, token: &RefreshToken) -> Revocation {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.config.client_id)
            .append_pair("client_secret", &self.client_secret())
            .append_pair("token", token.secret())
            .append_pair("token_type_hint", "refresh_token")
            .finish();
        let request = oauth2::http::Request::builder()
            .method("POST")
            .uri(format!("{}/auth/revoke", self.config.issuer))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body.into_bytes());
        let request = match request {
            Ok(request) => request,
            Err(e) => {
                return Revocation::Refused {
                    error: format!("no revocation URL: {e}"),
                }
            }
        };
        let (http, seen) = self.http_noting_retry();
        let answer = http(request).await;
        let wait = retry_after(*seen.lock().unwrap_or_else(|e| e.into_inner()));
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                return Revocation::Unavailable {
                    retry_after: wait,
                    detail: e.to_string(),
                }
            }
        };
        let status = answer.status().as_u16();
        let error = serde_json::from_slice::<serde_json::Value>(answer.body())
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_owned));
        match (status, error) {
            (200..=299, _) => Revocation::Revoked,
            (400..=499, Some(error))
                if !matches!(error.as_str(), "server_error" | "temporarily_unavailable") =>
            {
                Revocation::Refused {
                    error: error.chars().take(100).collect(),
                }
            }
            (status, _) => Revocation::Unavailable {
                retry_after: wait,
                detail: format!("the revoke endpoint answered {status}"),
            },
        }
    }

    /// Checks `token` with Apple (`grant_type=refresh_token` at `{issuer}/auth/token`): is
    /// the person still using Sign in with Apple with the app? Apple asks apps to check a
    /// token at most once a day, and may throttle more.
    pub async fn check_refresh_token(&self, token: &RefreshToken) -> RefreshCheck {
        let client = self.client();
        let (http, seen) = self.http_noting_retry();
        let refresh = oauth2::RefreshToken::new(token.secret().to_owned());
        let answer = client
            .exchange_refresh_token(&refresh)
            .request_async(&http)
            .await;
        let wait = retry_after(*seen.lock().unwrap_or_else(|e| e.into_inner()));
        match answer {
            Ok(_) => RefreshCheck::Alive,
            Err(oauth2::RequestTokenError::ServerResponse(answer)) => {
                match answer.error().as_ref() {
                    "invalid_grant" => RefreshCheck::Revoked,
                    "server_error" | "temporarily_unavailable" => RefreshCheck::Unavailable {
                        retry_after: wait,
                        detail: format!("the token endpoint answered {}", answer.error()),
                    },
                    other => RefreshCheck::Refused {
                        error: other.chars().take(100).collect(),
                    },
                }
            }
            Err(e) => RefreshCheck::Unavailable {
                retry_after: wait,
                detail: unavailable_detail(&e),
            },
        }
    }
}

fn unavailable_detail<E: std::error::Error, T: oauth2::ErrorResponse>(
    e: &oauth2::RequestTokenError<E, T>,
) -> String {
    match e {
        oauth2::RequestTokenError::Request(e) => e.to_string(),
        oauth2::RequestTokenError::Parse(..) => "Apple's answer is not the expected JSON".into(),
        oauth2::RequestTokenError::Other(detail) => detail.clone(),
        oauth2::RequestTokenError::ServerResponse(_) => "Apple refused".into(),
    }
}

impl Authenticator<AppleIdStrategy> {
    /// Deletes an account in one call, from the app's own route: revokes the person's
    /// Sign in with Apple `refresh_token` at Apple (when the app kept one), signs every
    /// session of `account` out everywhere (with [`Accounts`](crate::accounts::Accounts)),
    /// then runs the app's own deletion, `forget`. Stops at the first step that fails, so a
    /// retry is safe.
    pub async fn delete_account<F, Fut, E>(
        &self,
        account: &str,
        refresh_token: Option<&RefreshToken>,
        forget: F,
    ) -> Result<(), AccountDeletionError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        if let Some(token) = refresh_token {
            match self.strategy().revoke(token).await {
                Revocation::Revoked => {}
                other => return Err(AccountDeletionError::NotRevoked(other)),
            }
        }
        if let Some(accounts) = self.account_store() {
            accounts.sign_out_everywhere(account).await?;
        }
        forget()
            .await
            .map_err(|e| AccountDeletionError::App(e.to_string()))
    }
}
