//! Apple's server-to-server notifications: `POST {prefix}/notifications`, verified with the
//! same keys as `id_token`s, each event handed to the app once, and the sessions of a person
//! who stopped using Sign in with Apple with the app (or deleted their Apple ID) signed out
//! everywhere.

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use time::OffsetDateTime;

use super::keys::JwsError;
use super::AppleIdStrategy;
use crate::accounts::from_millis;
use crate::respond;
use crate::single_use::StateId;
use crate::strategy::Authenticator;

/// How old a notification may be (its `iat`) and still be accepted: 24 hours, so a
/// notification Apple delivers again after an outage of the app still counts. Each event is
/// remembered (to hand it to the app once) for this long and an hour more.
pub const NOTIFICATION_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// What happened, as Apple's `events.type` says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotificationKind {
    /// `email-disabled`: the person switched off forwarding from their private relay address.
    EmailDisabled,
    /// `email-enabled`: they switched it on again.
    EmailEnabled,
    /// `consent-revoked`: they stopped using Sign in with Apple with the app. Their sessions
    /// are signed out everywhere before the app hears of it.
    ConsentRevoked,
    /// `account-delete`: they deleted their Apple ID. Their sessions are signed out
    /// everywhere before the app hears of it.
    AccountDeleted,
    /// A type this version of the crate does not know (kept as Apple sent it).
    Other(String),
}

impl NotificationKind {
    fn parse(kind: &str) -> Self {
        match kind {
            "email-disabled" => Self::EmailDisabled,
            "email-enabled" => Self::EmailEnabled,
            "consent-revoked" => Self::ConsentRevoked,
            "account-delete" => Self::AccountDeleted,
            other => Self::Other(other.chars().take(100).collect()),
        }
    }

    /// The type as Apple writes it, e.g. `consent-revoked`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::EmailDisabled => "email-disabled",
            Self::EmailEnabled => "email-enabled",
            Self::ConsentRevoked => "consent-revoked",
            Self::AccountDeleted => "account-delete",
            Self::Other(kind) => kind,
        }
    }

    /// Whether the person's sessions are signed out for it.
    pub fn signs_out(&self) -> bool {
        matches!(self, Self::ConsentRevoked | Self::AccountDeleted)
    }
}

/// One verified notification from Apple, as the app's hook
/// ([`AppleIdStrategy::on_notification`]) receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppleIdNotification {
    /// What happened.
    pub kind: NotificationKind,
    /// The person's `sub`.
    pub sub: String,
    /// When it happened.
    pub event_time: OffsetDateTime,
    /// For the email events: the address.
    pub email: Option<String>,
    /// For the email events: whether it is a private relay address.
    pub is_private_email: Option<bool>,
    /// The accounts whose sessions were signed out for it (for `consent-revoked` and
    /// `account-delete`, when the app keeps [`Accounts`](crate::accounts::Accounts)).
    pub signed_out_accounts: Vec<String>,
}

/// Why a notification was refused: `400 {"error": "invalid_notification", "reason": …}`
/// (`503 apple_unavailable` when Apple's keys could not be fetched, so that Apple delivers it
/// again).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid notification: {reason}")]
pub(crate) struct NotificationError {
    reason: &'static str,
    unavailable: bool,
}

impl NotificationError {
    fn invalid(reason: &'static str) -> Self {
        Self {
            reason,
            unavailable: false,
        }
    }

    fn of_jws(e: JwsError) -> Self {
        Self::invalid(match e {
            JwsError::TooLong | JwsError::NotJws => "not_a_jws",
            JwsError::UnknownKey => "unknown_key",
            JwsError::UnusableKey | JwsError::WrongAlgorithm => "wrong_algorithm",
            JwsError::BadSignature => "bad_signature",
            JwsError::WrongAudience => "wrong_audience",
            JwsError::WrongIssuer => "wrong_issuer",
            JwsError::MissingClaim => "missing_claim",
            JwsError::Invalid => "invalid_jws",
            JwsError::KeysUnavailable(_) => {
                return Self {
                    reason: "apple_unavailable",
                    unavailable: true,
                }
            }
        })
    }

    fn response(&self) -> HttpResponse {
        let (status, error) = if self.unavailable {
            (StatusCode::SERVICE_UNAVAILABLE, self.reason)
        } else {
            (StatusCode::BAD_REQUEST, "invalid_notification")
        };
        let retry_after = self.unavailable.then_some(Duration::from_secs(5));
        respond::error_json(
            respond::error_status(status, retry_after),
            error,
            &[("reason", self.reason)],
        )
    }
}

#[derive(Deserialize)]
struct Body {
    payload: Option<String>,
}

/// `events`: a JSON string holding the object, or the object itself.
#[derive(Deserialize)]
#[serde(untagged)]
enum Events {
    Text(String),
    Object(EventFields),
}

#[derive(Deserialize)]
struct EventFields {
    #[serde(rename = "type")]
    kind: String,
    sub: String,
    #[serde(default)]
    event_time: Option<serde_json::Value>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default, deserialize_with = "super::identity::bool_or_string")]
    is_private_email: Option<bool>,
}

/// The notification in `body`, verified.
async fn verify(
    strategy: &AppleIdStrategy,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<AppleIdNotification, NotificationError> {
    let payload = serde_json::from_slice::<Body>(body)
        .ok()
        .and_then(|b| b.payload)
        .filter(|p| !p.is_empty())
        .ok_or(NotificationError::invalid("no_payload"))?;
    let config = strategy.config();
    let claims = strategy
        .keys
        .verify(
            &payload,
            &config.issuer,
            &config.client_id,
            &["iss", "aud", "iat"],
        )
        .await
        .map_err(NotificationError::of_jws)?;
    let iat = claims
        .get("iat")
        .and_then(serde_json::Value::as_i64)
        .ok_or(NotificationError::invalid("missing_claim"))?;
    let now_secs = now.unix_timestamp();
    if iat > now_secs.saturating_add(60) {
        return Err(NotificationError::invalid("issued_in_the_future"));
    }
    if now_secs.saturating_sub(iat) > NOTIFICATION_MAX_AGE.as_secs() as i64 {
        return Err(NotificationError::invalid("too_old"));
    }
    let bad = || NotificationError::invalid("bad_events");
    let events = match claims.get("events").cloned() {
        Some(value) => serde_json::from_value::<Events>(value).map_err(|_| bad())?,
        None => return Err(bad()),
    };
    let fields = match events {
        Events::Object(fields) => fields,
        Events::Text(text) => serde_json::from_str::<EventFields>(&text).map_err(|_| bad())?,
    };
    if fields.sub.is_empty() || fields.kind.is_empty() {
        return Err(bad());
    }
    let event_time = match fields.event_time {
        Some(serde_json::Value::Number(n)) => n.as_i64().map(from_millis),
        Some(serde_json::Value::String(s)) => s.parse().ok().map(from_millis),
        _ => None,
    }
    .unwrap_or(now);
    Ok(AppleIdNotification {
        kind: NotificationKind::parse(&fields.kind),
        sub: fields.sub,
        event_time,
        email: fields.email,
        is_private_email: fields.is_private_email,
        signed_out_accounts: Vec::new(),
    })
}

/// `POST {prefix}/notifications`: `200` for every valid notification (known, unknown or
/// repeated), `400` with a reason for an invalid one, which changes nothing. No session, no
/// same-origin check (Apple has neither); logs the event type only.
pub(crate) async fn notifications(
    req: HttpRequest,
    body: web::Payload,
    auth: web::Data<Authenticator<AppleIdStrategy>>,
) -> HttpResponse {
    // A JSON body of at most 16 KiB, within the flow's body timeout.
    let body = match auth.read_form_or_json(&req, body).await {
        Ok(body) => body,
        Err(_) => return NotificationError::invalid("bad_body").response(),
    };
    let strategy = auth.strategy();
    let mut event = match verify(strategy, &body, auth.flow_options().now()).await {
        Ok(event) => event,
        Err(e) => {
            tracing::info!("Sign in with Apple notification refused: {}", e.reason);
            return e.response();
        }
    };
    crate::audit::emit(crate::audit::AuditEvent::NotificationReceived {
        kind: event.kind.as_str().to_owned(),
    });
    // Spent first: each event reaches the app once, whatever happens below.
    let once = StateId::new(
        "apple-id.notification",
        &format!(
            "{}\0{}\0{}",
            event.kind.as_str(),
            event.sub,
            crate::accounts::millis(event.event_time)
        ),
    );
    let keep = NOTIFICATION_MAX_AGE + Duration::from_secs(3600);
    let fresh = match auth.ledger().spend(&once, keep).await {
        Ok(fresh) => fresh,
        Err(e) => {
            tracing::error!("{e}");
            return NotificationError {
                reason: "session_store_unavailable",
                unavailable: true,
            }
            .response();
        }
    };
    if !fresh {
        tracing::info!("a repeated Sign in with Apple notification (already handed to the app)");
    }
    // A new event signs out every session of the person, now. A repeated one (Apple delivers
    // again, e.g. after a 503 of ours) signs out as of the event's time only: a person who
    // signed in anew since stays signed in.
    let mut failed = None;
    if let (true, Some(accounts)) = (event.kind.signs_out(), auth.account_store()) {
        let name = super::APPLE_ID_STRATEGY_NAME;
        let signed_out = if fresh {
            accounts.sign_out_subject(name, &event.sub).await
        } else {
            accounts
                .sign_out_subject_before(name, &event.sub, event.event_time)
                .await
        };
        match signed_out {
            Ok(accounts) => event.signed_out_accounts = accounts,
            Err(e) => failed = Some(e),
        }
    }
    if fresh {
        if let Some(hook) = &strategy.notification_hook {
            hook(event).await;
        }
    }
    if let Some(e) = failed {
        // Apple delivers it again; the sign-out is then done as of the event's time.
        return actix_web::ResponseError::error_response(&e);
    }
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(serde_json::json!({"received": true}))
}
