//! The lifetime record (how long a session is worth keeping, read by server-side stores) and
//! the re-login marks of an [`Authenticator`].

use std::fmt::Write as _;

use actix_session::Session;
use time::OffsetDateTime;

use super::authenticator::{Authenticator, Record};
use super::state::{PendingLogin, PendingLogins};
use super::Strategy;

/// The session key, owned by the crate, that records how long a session is worth keeping:
/// `"<strategy>=<Unix time>,…"`, one entry per strategy. Server-side stores read it (see
/// [`session_store`](crate::session_store)); no other key counts.
pub(crate) const LIFETIME_KEY: &str = "aam.until";

/// The lifetime record's entries.
fn read_lifetimes(record: &str) -> std::collections::BTreeMap<String, i64> {
    lifetime_entries(record)
        .map(|(name, until)| (name.to_owned(), until))
        .collect()
}

/// The entries of a lifetime record (`name=unix-seconds`, comma-separated), skipping any
/// that does not read.
pub(crate) fn lifetime_entries(record: &str) -> impl Iterator<Item = (&str, i64)> {
    record.split(',').filter_map(|entry| {
        let (name, until) = entry.split_once('=')?;
        Some((name, until.trim().parse().ok()?))
    })
}

impl<S: Strategy> Authenticator<S> {
    /// Records how long this session is worth keeping for this strategy: the latest of the
    /// pending login's end, the identity's end plus the session margin, and a re-login mark
    /// plus the margin. An identity whose end is unknown removes the record (the store's own
    /// TTL applies).
    pub(super) fn refresh_until(&self, session: &Session) {
        let pending = self.pending_logins(session);
        self.record_lifetime(session, pending.latest());
    }

    /// The logins pending in this session.
    pub(super) fn pending_logins(&self, session: &Session) -> PendingLogins {
        session
            .get::<PendingLogins>(&self.keys.login)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// [`refresh_until`](Self::refresh_until) with the session's pending login already at
    /// hand (the login page has just written it; reading it back would decode it again).
    pub(super) fn record_lifetime(&self, session: &Session, pending: Option<&PendingLogin>) {
        let margin = self.options.session_margin.as_secs() as i64;
        let mut until: Option<i64> = None;
        let mut known = true;
        let mut later = |t: i64| until = Some(until.map_or(t, |u| u.max(t)));
        if let Some(pending) = pending {
            later(
                pending
                    .created
                    .saturating_add(self.options.state_ttl.as_secs() as i64),
            );
        }
        if let Ok(Some(record)) = session.get::<Record<S::Identity>>(&self.keys.identity) {
            match self.strategy.identity_expires_at(&record.1) {
                Some(end) => later(end.unix_timestamp().saturating_add(margin)),
                None => known = false,
            }
        }
        if let Some(mark) = self.reauthentication_mark(session) {
            later(mark.unix_timestamp().saturating_add(margin));
        }
        let mut record = session
            .get::<String>(LIFETIME_KEY)
            .ok()
            .flatten()
            .map(|r| read_lifetimes(&r))
            .unwrap_or_default();
        match (known, until) {
            (true, Some(until)) => {
                record.insert(self.keys.name.clone(), until);
            }
            _ => {
                record.remove(&self.keys.name);
            }
        }
        let written = if record.is_empty() {
            session.remove(LIFETIME_KEY);
            Ok(())
        } else {
            let mut text = String::with_capacity(record.len() * 24);
            for (name, until) in &record {
                if !text.is_empty() {
                    text.push(',');
                }
                let _ = write!(text, "{name}={until}");
            }
            session.insert(LIFETIME_KEY, text)
        };
        if let Err(e) = written {
            tracing::warn!("could not record the session's lifetime: {e}");
        }
    }

    /// Notes in the session that its identity ended (expired or invalidated) at `at`, so the
    /// next guarded request asks for a fresh sign-in (`prompt=login`).
    pub fn mark_reauthentication(&self, session: &Session, at: OffsetDateTime) {
        session.remove(&self.keys.identity);
        if let Err(e) = session.insert(&self.keys.reauth, at.unix_timestamp()) {
            tracing::warn!("could not mark the session for re-authentication: {e}");
        }
        self.refresh_until(session);
    }

    /// Whether this session needs a fresh sign-in: its identity ended (or was invalidated)
    /// and no sign-in happened since. The login page then asks the user again by itself, as
    /// with `prompt=login`.
    pub fn needs_relogin(&self, session: &Session) -> bool {
        if self.reauthentication_mark(session).is_some() {
            return true;
        }
        let Ok(Some(record)) = session.get::<Record<S::Identity>>(&self.keys.identity) else {
            return false;
        };
        self.strategy
            .identity_expires_at(&record.1)
            .is_some_and(|end| self.now() >= end)
    }

    /// When the identity of this session ended, if it was marked by
    /// [`mark_reauthentication`](Self::mark_reauthentication) and no sign-in happened since.
    pub fn reauthentication_mark(&self, session: &Session) -> Option<OffsetDateTime> {
        let secs = session.get::<i64>(&self.keys.reauth).ok().flatten()?;
        OffsetDateTime::from_unix_timestamp(secs).ok()
    }
}
