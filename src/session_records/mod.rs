//! The session layer: every key the crate writes in an actix-session session, and every record
//! it keeps there or in the account store, with typed calls to read and write them.
//!
//! One floor below both the framework (`strategy/`, `guard.rs`) and the stores
//! (`session_store/`, `accounts/`): they read and write through this module, and no other file
//! spells a key or a record's format.
//!
//! | key | record | written by | read by |
//! | --- | --- | --- | --- |
//! | `<strategy>.login` | the pending logins (state, return path, time) | the login page | the callback |
//! | `<strategy>.id` | the identity, versioned: `[version, identity]` | a sign-in | guards, the app |
//! | `<strategy>.user` | the app's user value from the sign-in hook | a sign-in | the app |
//! | `<strategy>.reauth` | when the identity ended (Unix seconds) | guards, invalidation | the login page, guards |
//! | `aam.until` | how long the session is worth keeping, per strategy ([`LifetimeRecord`]) | every change above | server-side stores (the session's TTL) |
//! | `aam.acct` | the account record ([`account::SessionRecord`]) | a sign-in with accounts | guards, account routes |
//!
//! The account store (memory or Redis) keeps, per account, the index of its sessions
//! ([`account::Entry`]) and its sign-out marks ([`account::Marks`]).

/// A key written and removed again in one request, never stored: the change makes
/// actix-session send the cookie (and save the session) again, as key rotation needs.
const REWRITE_MARK: &str = "aam.rotated";

/// Makes actix-session rewrite this request's session and cookie without changing what it
/// holds.
pub(crate) fn force_rewrite(session: &actix_session::Session) {
    if session.insert(REWRITE_MARK, 1).is_ok() {
        session.remove(REWRITE_MARK);
    }
}

pub(crate) mod account;
mod keys;
mod lifetime;

pub(crate) use keys::StrategyKeys;
pub(crate) use lifetime::{LifetimeRecord, LIFETIME_KEY};
