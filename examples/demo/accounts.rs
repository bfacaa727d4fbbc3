//! The demo's accounts: an in-memory table, linked to sign-ins through the authenticators'
//! sign-in hooks. Shared with the browser tests (`tests/browser.rs`).
//!
//! A music user token identifies nobody (it changes at every sign-in). With Sign in with
//! Apple in the same session, an account is keyed by the Apple ID's stable `sub`: a re-login,
//! on any device, reaches the same account. Without it, a re-login is linked to the account
//! *this browser session* held before: all a demo can do, and on a shared browser it would
//! hand the next person the previous one's account.

use std::collections::HashMap;
use std::future::{ready, Ready};
use std::sync::{Arc, Mutex};

use actix_apple_music::{AppleIdStrategy, AppleMusicStrategy, Rejection, SignInContext};
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
}

/// The account table.
#[derive(Debug, Default)]
pub struct Accounts {
    table: Mutex<Table>,
}

impl Accounts {
    /// Links a sign-in: the account of the Apple ID `sub` when known, else the account the
    /// session held before, else a new one; one more sign-in for it.
    pub fn link(&self, apple_id: Option<&str>, previous: Option<DemoUser>) -> DemoUser {
        let mut table = self.table.lock().unwrap();
        let by_sub = apple_id.and_then(|sub| table.by_apple_id.get(sub).cloned());
        let known = previous
            .map(|p| p.account)
            .filter(|a| table.sign_ins.contains_key(a));
        let account = match by_sub.or(known) {
            Some(account) => account,
            None => {
                table.next += 1;
                format!("acct-{}", table.next)
            }
        };
        if let Some(sub) = apple_id {
            table.by_apple_id.insert(sub.to_owned(), account.clone());
        }
        *table.sign_ins.entry(account.clone()).or_default() += 1;
        DemoUser { account }
    }

    /// How many times the account signed in (either way).
    pub fn sign_ins(&self, account: &str) -> u64 {
        self.table
            .lock()
            .unwrap()
            .sign_ins
            .get(account)
            .copied()
            .unwrap_or(0)
    }

    /// The Apple Music sign-in hook: the Apple ID of this session, if signed in with Apple,
    /// decides the account.
    pub fn hook(
        accounts: Arc<Accounts>,
    ) -> impl Fn(SignInContext<AppleMusicStrategy>) -> Ready<Result<DemoUser, Rejection>> {
        move |sign_in| {
            let apple_id = sign_in.other_identity::<AppleIdStrategy>();
            let sub = apple_id.as_ref().map(|id| id.sub());
            ready(Ok(accounts.link(sub, sign_in.previous_user::<DemoUser>())))
        }
    }

    /// The Sign in with Apple hook: the account of this `sub`.
    pub fn apple_id_hook(
        accounts: Arc<Accounts>,
    ) -> impl Fn(SignInContext<AppleIdStrategy>) -> Ready<Result<DemoUser, Rejection>> {
        move |sign_in| {
            let sub = sign_in.identity().sub().to_owned();
            ready(Ok(
                accounts.link(Some(&sub), sign_in.previous_user::<DemoUser>())
            ))
        }
    }
}
