//! Audit events and metrics: what sign-in is doing, for an app's audit log and for operators.
//!
//! **Events.** Every sign-in, failed sign-in, sign-out, sign out everywhere, re-login asked,
//! music user token refused by Apple, notification from Apple and revocation is an
//! [`AuditEvent`]. Each is
//!
//! - handed to the hooks added with [`on_event`] (for an audit log; a hook runs on the
//!   request's thread, so it should hand the event on, not wait on I/O), and
//! - a `tracing` event at `info` on the target `actix_apple_music::audit`, with the event's
//!   fields (`event`, `strategy`, `account`, `reason`, …).
//!
//! No event, log line or metric label carries a token, a key, a login state or a cookie:
//! accounts are the app's own ids, reasons are the stable snake_case names of the JSON answers.
//!
//! **Metrics**, through the [`metrics`](https://docs.rs/metrics) facade (the app installs the
//! exporter it wants; without one they cost next to nothing):
//!
//! | name | kind | labels |
//! |---|---|---|
//! | [`SIGN_INS`] | counter | `strategy`, `outcome` (`success` / `failure`), `reason` |
//! | [`EVENTS`] | counter | `event` |
//! | [`APPLE_REQUESTS`] | counter | `endpoint`, `outcome` |
//! | [`APPLE_REQUEST_SECONDS`] | histogram | `endpoint`, `outcome` |
//! | [`STORE_OPERATIONS`] | counter | `operation`, `outcome` |
//! | [`STORE_OPERATION_SECONDS`] | histogram | `operation`, `outcome` |
//! | [`DEVELOPER_TOKEN_SECONDS_LEFT`] | gauge | |
//! | [`CLIENT_SECRET_SECONDS_LEFT`] | gauge | |
//!
//! `endpoint` is `apple_music_api`, or Sign in with Apple's `token`, `keys` or `revoke`;
//! `outcome` of an Apple request is the status class (`2xx`, `4xx`, `5xx`) or `unavailable`
//! (no answer); `operation` is `load`, `save`, `update`, `delete` or `spend` (a login state),
//! its `outcome` `ok`, `error` or `timeout`. The gauges are set each time the token (or the
//! client secret) is used or renewed.
//!
//! ```
//! use actix_apple_music::audit::{self, AuditEvent};
//!
//! audit::on_event(|event: &AuditEvent| {
//!     if let AuditEvent::SignInFailed { strategy, reason, .. } = event {
//!         eprintln!("audit: a {strategy} sign-in failed: {reason}");
//!     }
//! });
//! ```

use std::sync::{Arc, RwLock};
use std::time::Duration;

/// `actix_apple_music_sign_ins_total`: sign-ins by `strategy`, `outcome` and `reason`.
pub const SIGN_INS: &str = "actix_apple_music_sign_ins_total";
/// `actix_apple_music_audit_events_total`: audit events by `event`.
pub const EVENTS: &str = "actix_apple_music_audit_events_total";
/// `actix_apple_music_apple_requests_total`: calls to Apple by `endpoint` and `outcome`.
pub const APPLE_REQUESTS: &str = "actix_apple_music_apple_requests_total";
/// `actix_apple_music_apple_request_duration_seconds`: how long calls to Apple took.
pub const APPLE_REQUEST_SECONDS: &str = "actix_apple_music_apple_request_duration_seconds";
/// `actix_apple_music_store_operations_total`: session store and ledger operations by
/// `operation` and `outcome`.
pub const STORE_OPERATIONS: &str = "actix_apple_music_store_operations_total";
/// `actix_apple_music_store_operation_duration_seconds`: how long they took.
pub const STORE_OPERATION_SECONDS: &str = "actix_apple_music_store_operation_duration_seconds";
/// `actix_apple_music_developer_token_seconds_left`: until the current developer token ends.
pub const DEVELOPER_TOKEN_SECONDS_LEFT: &str = "actix_apple_music_developer_token_seconds_left";
/// `actix_apple_music_apple_id_client_secret_seconds_left`: until the current Sign in with
/// Apple client secret ends.
pub const CLIENT_SECRET_SECONDS_LEFT: &str =
    "actix_apple_music_apple_id_client_secret_seconds_left";

/// Something that happened to a person's sign-in. Accounts are the app's own ids; nothing
/// here is secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditEvent {
    /// A sign-in was saved.
    SignedIn {
        /// The strategy's name (`apple-music`, `apple-id`, …).
        strategy: String,
        /// The account it signed in to, when accounts are on.
        account: Option<String>,
    },
    /// A sign-in failed.
    SignInFailed {
        /// The strategy's name.
        strategy: String,
        /// The family: `authorization_error`, `token_error` or `upstream_error`.
        family: &'static str,
        /// The stable reason, as in the JSON answer (`state_mismatch`, `declined`, …).
        reason: String,
    },
    /// A person signed out of one session (the logout route).
    SignedOut {
        /// The strategy whose logout route it was.
        strategy: String,
        /// The account of the session, when accounts are on.
        account: Option<String>,
    },
    /// Every session of an account was signed out (or every other one).
    SignedOutEverywhere {
        /// The account.
        account: String,
        /// Whether the session that asked stays signed in.
        but_this_session: bool,
    },
    /// A strategy's sessions of an account must sign in again.
    ReloginAsked {
        /// The account.
        account: String,
        /// The strategy.
        strategy: String,
    },
    /// Apple refused a music user token (the person revoked the app, or the token ended).
    TokenRefusedByApple {
        /// The strategy.
        strategy: String,
    },
    /// A server-to-server notification from Apple was received and verified.
    NotificationReceived {
        /// Its type as Apple names it (`consent-revoked`, `account-delete`, …).
        kind: String,
    },
    /// A Sign in with Apple token was revoked at Apple (or the revocation failed).
    Revocation {
        /// `revoked`, `refused` or `unavailable`.
        outcome: &'static str,
    },
}

impl AuditEvent {
    /// The event's snake_case name: the `event` label and field.
    pub fn name(&self) -> &'static str {
        match self {
            AuditEvent::SignedIn { .. } => "signed_in",
            AuditEvent::SignInFailed { .. } => "sign_in_failed",
            AuditEvent::SignedOut { .. } => "signed_out",
            AuditEvent::SignedOutEverywhere { .. } => "signed_out_everywhere",
            AuditEvent::ReloginAsked { .. } => "relogin_asked",
            AuditEvent::TokenRefusedByApple { .. } => "token_refused_by_apple",
            AuditEvent::NotificationReceived { .. } => "notification_received",
            AuditEvent::Revocation { .. } => "revocation",
        }
    }
}

type Hook = Arc<dyn Fn(&AuditEvent) + Send + Sync>;

fn hooks() -> &'static RwLock<Vec<Hook>> {
    static HOOKS: RwLock<Vec<Hook>> = RwLock::new(Vec::new());
    &HOOKS
}

/// Adds a hook that receives every [`AuditEvent`] of the process, from every authenticator
/// and account store (like a `tracing` subscriber or a `metrics` recorder, it is one per
/// process). Hooks run in the order added, on the thread of the request that caused the
/// event; a hook should not block.
pub fn on_event(hook: impl Fn(&AuditEvent) + Send + Sync + 'static) {
    hooks()
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::new(hook));
}

/// Records `event`: the hooks, a `tracing` event, the counters.
pub(crate) fn emit(event: AuditEvent) {
    let name = event.name();
    metrics::counter!(EVENTS, "event" => name).increment(1);
    match &event {
        AuditEvent::SignedIn { strategy, account } => {
            metrics::counter!(SIGN_INS, "strategy" => strategy.clone(), "outcome" => "success", "reason" => "")
                .increment(1);
            tracing::info!(target: "actix_apple_music::audit", event = name, strategy = %strategy, account = account.as_deref(), "signed in");
        }
        AuditEvent::SignInFailed {
            strategy,
            family,
            reason,
        } => {
            metrics::counter!(SIGN_INS, "strategy" => strategy.clone(), "outcome" => "failure", "reason" => reason.clone())
                .increment(1);
            tracing::info!(target: "actix_apple_music::audit", event = name, strategy = %strategy, family = *family, reason = %reason, "sign-in failed: {family} ({reason})");
        }
        AuditEvent::SignedOut { strategy, account } => {
            tracing::info!(target: "actix_apple_music::audit", event = name, strategy = %strategy, account = account.as_deref(), "signed out");
        }
        AuditEvent::SignedOutEverywhere {
            account,
            but_this_session,
        } => {
            tracing::info!(target: "actix_apple_music::audit", event = name, account = %account, but_this_session = *but_this_session, "signed out everywhere");
        }
        AuditEvent::ReloginAsked { account, strategy } => {
            tracing::info!(target: "actix_apple_music::audit", event = name, account = %account, strategy = %strategy, "re-login asked");
        }
        AuditEvent::TokenRefusedByApple { strategy } => {
            tracing::info!(target: "actix_apple_music::audit", event = name, strategy = %strategy, "Apple refused a music user token");
        }
        AuditEvent::NotificationReceived { kind } => {
            tracing::info!(target: "actix_apple_music::audit", event = name, kind = %kind, "notification from Apple: {kind}");
        }
        AuditEvent::Revocation { outcome } => {
            tracing::info!(target: "actix_apple_music::audit", event = name, outcome = *outcome, "revocation: {outcome}");
        }
    }
    let hooks = hooks().read().unwrap_or_else(|e| e.into_inner()).clone();
    for hook in hooks {
        hook(&event);
    }
}

/// A call to Apple: its counter and duration.
pub(crate) fn apple_call(endpoint: &'static str, outcome: &'static str, took: Duration) {
    metrics::counter!(APPLE_REQUESTS, "endpoint" => endpoint, "outcome" => outcome).increment(1);
    metrics::histogram!(APPLE_REQUEST_SECONDS, "endpoint" => endpoint, "outcome" => outcome)
        .record(took.as_secs_f64());
}

/// The `outcome` label of an HTTP status.
pub(crate) fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The handles of one store operation's metrics, registered once per thread and recorder.
struct StoreHandles {
    operation: &'static str,
    outcome: &'static str,
    count: metrics::Counter,
    seconds: metrics::Histogram,
}

thread_local! {
    /// The recorder the handles were registered with (its address), and the handles.
    static STORE_HANDLES: std::cell::RefCell<(usize, Vec<StoreHandles>)> =
        const { std::cell::RefCell::new((0, Vec::new())) };
}

/// A store operation: its counter and duration. Every guarded request loads its session, so
/// the handles are kept per thread instead of looked up in the recorder's registry each time
/// (registered again when another recorder is installed).
pub(crate) fn store_operation(operation: &'static str, outcome: &'static str, took: Duration) {
    let recorder = metrics::with_recorder(|recorder| {
        recorder as *const dyn metrics::Recorder as *const () as usize
    });
    STORE_HANDLES.with(|cell| {
        let mut cache = cell.borrow_mut();
        if cache.0 != recorder {
            *cache = (recorder, Vec::new());
        }
        let at = match cache
            .1
            .iter()
            .position(|h| h.operation == operation && h.outcome == outcome)
        {
            Some(at) => at,
            None => {
                cache.1.push(StoreHandles {
                    operation,
                    outcome,
                    count: metrics::counter!(STORE_OPERATIONS, "operation" => operation, "outcome" => outcome),
                    seconds: metrics::histogram!(STORE_OPERATION_SECONDS, "operation" => operation, "outcome" => outcome),
                });
                cache.1.len() - 1
            }
        };
        let handles = &cache.1[at];
        handles.count.increment(1);
        handles.seconds.record(took.as_secs_f64());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_has_its_own_name() {
        let events = [
            AuditEvent::SignedIn {
                strategy: "s".into(),
                account: None,
            },
            AuditEvent::SignInFailed {
                strategy: "s".into(),
                family: "token_error",
                reason: "r".into(),
            },
            AuditEvent::SignedOut {
                strategy: "s".into(),
                account: None,
            },
            AuditEvent::SignedOutEverywhere {
                account: "a".into(),
                but_this_session: false,
            },
            AuditEvent::ReloginAsked {
                account: "a".into(),
                strategy: "s".into(),
            },
            AuditEvent::TokenRefusedByApple {
                strategy: "s".into(),
            },
            AuditEvent::NotificationReceived { kind: "k".into() },
            AuditEvent::Revocation { outcome: "revoked" },
        ];
        let mut names: Vec<&str> = events.iter().map(AuditEvent::name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), events.len());
    }

    #[test]
    fn statuses_fall_in_their_class() {
        assert_eq!(status_class(200), "2xx");
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(302), "3xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(429), "4xx");
        assert_eq!(status_class(503), "5xx");
    }
}
