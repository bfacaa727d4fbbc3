//! What an [`Authenticator`] writes in the lifetime record (how long a session is worth
//! keeping, read by server-side stores; see [`LifetimeRecord`]) and its re-login marks.

use actix_session::Session;
use time::OffsetDateTime;

use super::authenticator::Authenticator;
use super::state::{PendingLogin, PendingLogins};
use super::Strategy;
use crate::session_records::LifetimeRecord;

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
        if let Ok(Some(identity)) = self.keys.read_identity::<S::Identity>(session) {
            match self.strategy.identity_expires_at(&identity) {
                Some(end) => later(end.unix_timestamp().saturating_add(margin)),
                None => known = false,
            }
        }
        if let Some(mark) = self.reauthentication_mark(session) {
            later(mark.unix_timestamp().saturating_add(margin));
        }
        let mut record = LifetimeRecord::read(session);
        record.set(&self.keys.name, until.filter(|_| known));
        let written = record.write(session);
        if let Err(e) = written {
            tracing::warn!("could not record the session's lifetime: {e}");
        }
    }

    /// Notes in the session that its identity ended (expired or invalidated) at `at`, so the
    /// next guarded request asks for a fresh sign-in (`prompt=login`).
    pub(crate) fn mark_reauthentication(&self, session: &Session, at: OffsetDateTime) {
        session.remove(&self.keys.identity);
        if let Err(e) = self.keys.write_reauth(session, at.unix_timestamp()) {
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
        let Ok(Some(identity)) = self.keys.read_identity::<S::Identity>(session) else {
            return false;
        };
        self.strategy
            .identity_expires_at(&identity)
            .is_some_and(|end| self.now() >= end)
    }

    /// When the identity of this session ended, if a guard (or Apple's refusal of its token)
    /// marked it and no sign-in happened since.
    pub fn reauthentication_mark(&self, session: &Session) -> Option<OffsetDateTime> {
        let secs = self.keys.read_reauth(session)?;
        OffsetDateTime::from_unix_timestamp(secs).ok()
    }
}
