//! The demo's accounts: an in-memory table, linked to Apple Music sign-ins through the
//! authenticator's sign-in hook. Shared with the browser tests (`tests/browser.rs`).
//!
//! A music user token identifies nobody (it changes at every sign-in), so a re-login is linked
//! to the account *this browser session* held before. That is what a demo can do; on a shared
//! browser it would hand the next person the previous one's account. A real app links to an
//! account the user is signed in to (its own login, or Sign in with Apple's stable `sub`).

use std::collections::HashMap;
use std::future::{ready, Ready};
use std::sync::{Arc, Mutex};

use actix_apple_music::{AppleMusicStrategy, Rejection, SignInContext};
use serde::{Deserialize, Serialize};

/// The app's user value the hook keeps in the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoUser {
    /// The account's id, e.g. `acct-1`.
    pub account: String,
}

/// The account table.
#[derive(Debug, Default)]
pub struct Accounts {
    state: Mutex<(u64, HashMap<String, u64>)>,
}

impl Accounts {
    /// Links a sign-in: the account the session held before (one more sign-in), or a new one.
    pub fn link(&self, previous: Option<DemoUser>) -> DemoUser {
        let mut state = self.state.lock().unwrap();
        let (next, sign_ins) = &mut *state;
        let account = match previous.filter(|p| sign_ins.contains_key(&p.account)) {
            Some(user) => user.account,
            None => {
                *next += 1;
                format!("acct-{next}")
            }
        };
        *sign_ins.entry(account.clone()).or_default() += 1;
        DemoUser { account }
    }

    /// How many times the account signed in.
    pub fn sign_ins(&self, account: &str) -> u64 {
        self.state
            .lock()
            .unwrap()
            .1
            .get(account)
            .copied()
            .unwrap_or(0)
    }

    /// The sign-in hook for the authenticator.
    pub fn hook(
        accounts: Arc<Accounts>,
    ) -> impl Fn(SignInContext<AppleMusicStrategy>) -> Ready<Result<DemoUser, Rejection>> {
        move |sign_in| ready(Ok(accounts.link(sign_in.previous_user::<DemoUser>())))
    }
}
