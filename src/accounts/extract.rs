//! [`CurrentAccount`]: the account the request's session is signed in to.

use actix_session::{Session, SessionExt};
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use futures_util::future::LocalBoxFuture;

use super::{AccountSession, Accounts, AccountsError, Standing};
use crate::session_records::account::{short_user_agent, Entry, SessionRecord};

/// The account the request's session is signed in to (with any strategy), for an app's
/// account pages: list its sessions, sign it out everywhere or everywhere but here.
///
/// Refuses with `401 {"error": "unauthenticated"}` when the session is bound to no account or
/// was signed out (a signed-out session is cleared), `503` when the account store cannot be
/// asked, and `500` when no [`Accounts`] is in the app's data (mounting an
/// [`Authenticator`](crate::Authenticator) with [`accounts`](crate::Authenticator::accounts)
/// registers it).
pub struct CurrentAccount {
    accounts: Accounts,
    record: SessionRecord,
    session: Session,
    request: HttpRequest,
}

impl std::fmt::Debug for CurrentAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurrentAccount")
            .field("account", &self.record.account)
            .finish_non_exhaustive()
    }
}

/// Why [`CurrentAccount`] refused a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// Not signed in to an account (`401 unauthenticated`).
    #[error("sign-in required")]
    Unauthenticated,
    /// The account store could not be asked (`503`).
    #[error(transparent)]
    Unavailable(#[from] AccountsError),
    /// No [`Accounts`] in the app's data (`500`: a programming error).
    #[error("no Accounts in the app's data: give one to Authenticator::accounts")]
    NotConfigured,
}

impl ResponseError for AccountError {
    fn status_code(&self) -> StatusCode {
        match self {
            AccountError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AccountError::Unavailable(e) => e.status_code(),
            AccountError::NotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            AccountError::Unauthenticated => crate::respond::error_json(
                HttpResponse::Unauthorized(),
                "unauthenticated",
                &[("message", "sign in to see your account")],
            ),
            AccountError::Unavailable(e) => e.error_response(),
            AccountError::NotConfigured => {
                tracing::error!("{self}");
                HttpResponse::InternalServerError().finish()
            }
        }
    }
}

impl FromRequest for CurrentAccount {
    type Error = AccountError;
    type Future = LocalBoxFuture<'static, Result<Self, AccountError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let request = req.clone();
        Box::pin(async move {
            let accounts = request
                .app_data::<web::Data<Accounts>>()
                .map(|a| a.get_ref().clone())
                .ok_or(AccountError::NotConfigured)?;
            let session = request.get_session();
            match accounts.standing(&session).await? {
                Standing::NoAccount => Err(AccountError::Unauthenticated),
                Standing::SignedOut => {
                    session.purge();
                    Err(AccountError::Unauthenticated)
                }
                Standing::Active { record, .. } => {
                    accounts.seen(&record);
                    Ok(CurrentAccount {
                        accounts,
                        record,
                        session,
                        request,
                    })
                }
            }
        })
    }
}

impl CurrentAccount {
    /// The account's id, as the app gave it.
    pub fn id(&self) -> &str {
        &self.record.account
    }

    /// The account store.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The account's sessions, this one marked `current`, this one first, then by last seen.
    pub async fn sessions(&self) -> Result<Vec<AccountSession>, AccountsError> {
        self.accounts
            .sessions_marking(&self.record.account, Some(&self.record.sid))
            .await
    }

    /// Signs every session of the account out, this one included (cleared at once; the others
    /// at their next request, on every instance sharing the store).
    pub async fn sign_out_everywhere(self) -> Result<(), AccountsError> {
        self.accounts
            .sign_out_everywhere(&self.record.account)
            .await?;
        self.session.purge();
        Ok(())
    }

    /// Signs every other session of the account out; this one stays signed in, under a new
    /// session id (so a stolen copy of this session's server-side key is signed out too).
    pub async fn sign_out_others(&self) -> Result<(), AccountsError> {
        let entry = match self.accounts.entry_of(&self.record).await {
            Some(entry) => entry,
            None => Entry {
                signed_in_at: self.record.stamp,
                last_seen_at: self.accounts.now_ms(),
                strategy: String::new(),
                user_agent: short_user_agent(
                    self.request
                        .headers()
                        .get(header::USER_AGENT)
                        .and_then(|v| v.to_str().ok()),
                ),
                until: self.accounts.now_ms() + 86_400_000,
            },
        };
        self.session.renew();
        self.accounts
            .sign_out_others(&self.session, &self.record, entry)
            .await?;
        crate::audit::emit(crate::audit::AuditEvent::SignedOutEverywhere {
            account: self.record.account.clone(),
            but_this_session: true,
        });
        Ok(())
    }
}
