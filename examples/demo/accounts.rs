//! The demo's accounts: an in-memory table, linked to sign-ins through the authenticators'
//! sign-in hooks. Shared with the browser tests (`tests/browser.rs`).
//!
//! An account is found or created by the Apple ID's stable `sub` only: a browser session that
//! held another account before never decides which account an Apple ID opens (on a shared
//! browser that would hand one person's Apple ID the previous person's account). A music user
//! token identifies nobody (it changes at every sign-in): Apple Music joins the account of the
//! Apple ID signed in in the same session, else the account this session already holds, else
//! a new one. The crate binds each session to its account (`Authenticator::account`), so a
//! sign-in to another account first drops what the session held for the previous person.

use std::collections::HashMap;
use std::future::{ready, Ready};
use std::sync::{Arc, Mutex};

use actix_apple_music::session_store::SecretSealer;
use actix_apple_music::{
    AppleIdNotification, AppleIdNotificationKind, AppleIdStrategy, AppleMusicStrategy,
    RefreshToken, Rejection, SignInContext,
};
use serde::{Deserialize, Serialize};

/// The app's user value the hooks keep in the session (as the bare id, `"acct-1"`: it rides
/// in every request's cookie).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DemoUser {
    /// The account's id, e.g. `acct-1`.
    pub account: String,
}

#[derive(Debug, Default)]
struct Table {
    next: u64,
    sign_ins: HashMap<String, u64>,
    by_apple_id: HashMap<String, String>,
    /// The Sign in with Apple refresh token of each account, sealed under the session key.
    refresh_tokens: HashMap<String, String>,
}

/// The account table.
#[derive(Debug)]
pub struct Accounts {
    table: Mutex<Table>,
    sealer: SecretSealer,
}

impl Accounts {
    /// An empty table whose stored tokens are sealed with `sealer`.
    pub fn new(sealer: SecretSealer) -> Self {
        Self {
            table: Mutex::new(Table::default()),
            sealer,
        }
    }

    fn create(table: &mut Table) -> String {
        table.next += 1;
        format!("acct-{}", table.next)
    }

    /// The account of the Apple ID `sub`, created at its first sign-in; one more sign-in.
    pub fn for_apple_id(&self, sub: &str) -> DemoUser {
        let mut table = self.table.lock().unwrap();
        let account = match table.by_apple_id.get(sub) {
            Some(account) => account.clone(),
            None => {
                let account = Self::create(&mut table);
                table.by_apple_id.insert(sub.to_owned(), account.clone());
                account
            }
        };
        *table.sign_ins.entry(account.clone()).or_default() += 1;
        DemoUser { account }
    }

    /// The account of an Apple Music sign-in: the session's Apple ID's, else the account this
    /// session holds (if it still exists), else a new one.
    pub fn for_apple_music(&self, apple_id: Option<&str>, session: Option<DemoUser>) -> DemoUser {
        if let Some(sub) = apple_id {
            return self.for_apple_id(sub);
        }
        let mut table = self.table.lock().unwrap();
        let account = session
            .map(|p| p.account)
            .filter(|a| table.sign_ins.contains_key(a))
            .unwrap_or_else(|| Self::create(&mut table));
        *table.sign_ins.entry(account.clone()).or_default() += 1;
        DemoUser { account }
    }

    /// How many times the account signed in (either way).
    pub fn sign_ins(&self, account: &str) -> u64 {
        let table = self.table.lock().unwrap();
        table.sign_ins.get(account).copied().unwrap_or(0)
    }

    /// The account's stored Sign in with Apple refresh token, opened.
    pub fn refresh_token(&self, account: &str) -> Option<RefreshToken> {
        let table = self.table.lock().unwrap();
        let sealed = table.refresh_tokens.get(account)?;
        self.sealer.open_refresh_token(sealed, account).ok()
    }

    /// Forgets the account: its sign-ins, its Apple ID link, its stored token.
    pub fn forget(&self, account: &str) {
        let mut table = self.table.lock().unwrap();
        table.sign_ins.remove(account);
        table.by_apple_id.retain(|_, a| a != account);
        table.refresh_tokens.remove(account);
    }

    /// The Apple Music sign-in hook.
    pub fn hook(
        accounts: Arc<Accounts>,
    ) -> impl Fn(SignInContext<AppleMusicStrategy>) -> Ready<Result<DemoUser, Rejection>> {
        move |sign_in| {
            let apple_id = sign_in.other_identity::<AppleIdStrategy>();
            let sub = apple_id.as_ref().map(|id| id.sub());
            ready(Ok(
                accounts.for_apple_music(sub, sign_in.previous_user::<DemoUser>())
            ))
        }
    }

    /// The Sign in with Apple hook: the account of this `sub`; its refresh token kept, sealed,
    /// for the account's deletion.
    pub fn apple_id_hook(
        accounts: Arc<Accounts>,
    ) -> impl Fn(SignInContext<AppleIdStrategy>) -> Ready<Result<DemoUser, Rejection>> {
        move |sign_in| {
            let identity = sign_in.identity();
            let user = accounts.for_apple_id(identity.sub());
            if let Some(token) = identity.refresh_token() {
                let sealed = accounts.sealer.seal_refresh_token(token, &user.account);
                let mut table = accounts.table.lock().unwrap();
                table.refresh_tokens.insert(user.account.clone(), sealed);
            }
            ready(Ok(user))
        }
    }

    /// Apple's notifications: a deleted Apple ID's account is forgotten (its sessions are
    /// signed out by the crate already); a person who stopped using Sign in with Apple keeps
    /// the account, without the revoked token.
    pub fn notification_hook(accounts: Arc<Accounts>) -> impl Fn(AppleIdNotification) -> Ready<()> {
        move |event| {
            let account = accounts
                .table
                .lock()
                .unwrap()
                .by_apple_id
                .get(&event.sub)
                .cloned();
            match (&event.kind, account) {
                (AppleIdNotificationKind::AccountDeleted, Some(account)) => {
                    accounts.forget(&account)
                }
                (AppleIdNotificationKind::ConsentRevoked, Some(account)) => {
                    accounts
                        .table
                        .lock()
                        .unwrap()
                        .refresh_tokens
                        .remove(&account);
                }
                _ => {}
            }
            ready(())
        }
    }
}
