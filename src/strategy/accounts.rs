//! The [`Authenticator`]'s side of the account lifecycle: which account a sign-in belongs to,
//! and binding the session to it (see [`accounts`](crate::accounts)).

use std::sync::Arc;

use actix_session::Session;
use actix_web::http::header;
use actix_web::HttpRequest;
use serde::de::DeserializeOwned;

use super::authenticator::Authenticator;
use super::error::FlowError;
use super::Strategy;
use crate::accounts::{alias, millis, write_record, Accounts, Binding};
use crate::session_records::account::{short_user_agent, Marks, Millis, SessionRecord};
use crate::session_records::StrategyKeys;

impl<S: Strategy> Authenticator<S> {
    /// The app's [`Accounts`]: from now on every sign-in binds its session to an account
    /// (see [`account`](Self::account)), guards sign out sessions that an account's marks
    /// sign out, and the app can list and end an account's sessions. Give every authenticator
    /// of the app the same one (clones share it); mounting registers it as app data for
    /// [`CurrentAccount`](crate::accounts::CurrentAccount).
    pub fn accounts(mut self, accounts: Accounts) -> Self {
        self.accounts = Some(accounts);
        self
    }

    /// Which account a sign-in belongs to, read from the sign-in hook's user value `U`
    /// (`.account(|user: &MyUser| user.id.clone())`). Without it, or when the value does not
    /// read as `U`, the account is the provider's stable subject
    /// ([`Strategy::subject`], e.g. the Apple ID's `sub`), else the account the session is
    /// already signed in to, else none (the sign-in binds no account).
    pub fn account<U, F>(mut self, account_of: F) -> Self
    where
        U: DeserializeOwned,
        F: Fn(&U) -> String + Send + Sync + 'static,
    {
        self.account_of = Some(Arc::new(move |value: &serde_json::Value| {
            U::deserialize(value).ok().map(|user| account_of(&user))
        }));
        self
    }

    /// The [`Accounts`] given to [`accounts`](Self::accounts), if any.
    pub fn account_store(&self) -> Option<&Accounts> {
        self.accounts.as_ref()
    }

    /// Stores a finished sign-in: binds the session to its account (when the app keeps
    /// accounts), then the identity and the app's user value.
    pub(crate) async fn store_sign_in(
        &self,
        req: &HttpRequest,
        session: &Session,
        identity: &S::Identity,
        user: Option<&serde_json::Value>,
    ) -> Result<(), FlowError> {
        let record = match &self.accounts {
            Some(accounts) => self.bind(accounts, req, session, identity, user).await?,
            None => None,
        };
        self.sign_in(session, identity, user)?;
        if let Some(record) = record {
            write_record(session, &record);
        }
        if crate::session_store::in_cookie() {
            let bytes = crate::session_store::cookie_bytes(session, 0);
            if bytes > crate::session_store::MAX_COOKIE_BYTES {
                self.forget(session);
                return Err(FlowError::SessionTooLarge { bytes });
            }
        }
        Ok(())
    }

    async fn bind(
        &self,
        accounts: &Accounts,
        req: &HttpRequest,
        session: &Session,
        identity: &S::Identity,
        user: Option<&serde_json::Value>,
    ) -> Result<Option<SessionRecord>, FlowError> {
        let unavailable = |e: crate::accounts::AccountsError| {
            tracing::error!("{e}");
            FlowError::StoreUnavailable {
                detail: "the account store did not answer".into(),
            }
        };
        let subject = self.strategy().subject(identity);
        let chosen = self
            .account_of
            .as_ref()
            .zip(user)
            .and_then(|(account_of, user)| account_of(user))
            .or_else(|| subject.clone());
        let mut previous = Accounts::record(session);
        if let Some(p) = &previous {
            let marks = accounts.marks(&p.account).await.map_err(unavailable)?;
            let other_person = chosen.as_ref().is_some_and(|a| *a != p.account);
            if other_person || marks.signs_out(p.stamp) {
                // Another person's session, or a signed-out one: nothing of it carries over
                // (identities, user values, the app's own keys).
                session.clear();
                previous = None;
            } else {
                self.relogin_others(session, &marks, p.stamp);
            }
        }
        let Some(account) = chosen.or_else(|| previous.as_ref().map(|p| p.account.clone())) else {
            return Ok(None);
        };
        let margin = self.flow_options().session_margin.as_millis() as Millis;
        let binding = Binding {
            strategy: &self.keys.name,
            alias: subject.map(|s| alias(&self.keys.name, &s)),
            user_agent: short_user_agent(
                req.headers()
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok()),
            ),
            until_ms: self
                .strategy()
                .identity_expires_at(identity)
                .map(|end| millis(end).saturating_add(margin)),
        };
        accounts
            .bind(&account, previous.as_ref(), binding)
            .await
            .map(Some)
            .map_err(unavailable)
    }

    /// Applies re-login marks to the other strategies this session holds, before a sign-in
    /// re-stamps it (their identities would otherwise look newer than the mark).
    fn relogin_others(&self, session: &Session, marks: &Marks, stamp: Millis) {
        for (name, at) in &marks.relogin {
            if *name == self.keys.name || stamp > *at {
                continue;
            }
            let keys = StrategyKeys::new(name);
            if session.contains_key(&keys.identity) {
                session.remove(&keys.identity);
                let _ = session.insert(&keys.reauth, at / 1000);
            }
        }
    }
}

impl<S: Strategy> Authenticator<S> {
    /// The account this session is signed in to, unless it was signed out (for the hook).
    pub(super) async fn previous_account(&self, session: &Session) -> Option<String> {
        let accounts = self.accounts.as_ref()?;
        let record = Accounts::record(session)?;
        let marks = accounts.marks(&record.account).await.ok()?;
        (!marks.signs_out(record.stamp)).then_some(record.account)
    }
}
