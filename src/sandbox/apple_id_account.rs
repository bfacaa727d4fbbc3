//! The sandbox's Apple ID page: what a person does at Apple (stop using Sign in with Apple with
//! the app, delete their Apple ID, switch the email relay off or on), sent to the app as the
//! signed server-to-server notification Apple would send.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};

use super::apple_id::{revoke_all_of, sandbox_sub, sign, APPLE_ID_CLIENT_ID};
use crate::apple_music::page::PageTemplate;
use crate::strategy::Authenticator;
use crate::AppleIdStrategy;

const TYPES: [&str; 4] = [
    "consent-revoked",
    "account-delete",
    "email-disabled",
    "email-enabled",
];

#[derive(serde::Serialize)]
struct PageData {
    sent: Option<String>,
    email: Option<String>,
    answer: Option<String>,
}

/// `GET /sandbox/apple-id/account[?sent=…&email=…&answer=…]`.
pub(super) async fn page(req: HttpRequest) -> HttpResponse {
    let query: HashMap<String, String> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let template = PageTemplate::new(
        include_str!("apple_id_account.html"),
        include_str!("apple_id_account.js"),
    );
    template.respond(
        &PageData {
            sent: query.get("sent").cloned(),
            email: query.get("email").cloned(),
            answer: query.get("answer").cloned(),
        },
        "",
        "",
    )
}

/// `POST /sandbox/apple-id/account/notify` (form `email`, `type`): revokes the person's
/// sandbox refresh tokens when they stop using the app or delete their Apple ID, then posts
/// the notification to `{the app's origin}{prefix}/notifications`, as Apple does. Answers a
/// browser with `303` back to the page, anyone else with JSON.
pub(super) async fn notify(
    req: HttpRequest,
    form: web::Form<Vec<(String, String)>>,
    auth: Option<web::Data<Authenticator<AppleIdStrategy>>>,
) -> HttpResponse {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let Some(auth) = auth else {
        return HttpResponse::InternalServerError().body("mount Sign in with Apple first");
    };
    if !auth.is_same_origin(&req) {
        return HttpResponse::Forbidden().json(serde_json::json!({"error": "forbidden"}));
    }
    let (email, kind) = (field("email"), field("type"));
    if email.is_empty() || !TYPES.contains(&kind.as_str()) {
        return HttpResponse::BadRequest().json(serde_json::json!({"error": "invalid_request"}));
    }
    let sub = sandbox_sub(&email);
    if matches!(kind.as_str(), "consent-revoked" | "account-delete") {
        revoke_all_of(&sub);
    }
    let now = time::OffsetDateTime::now_utc();
    let mut event = serde_json::json!({
        "type": kind, "sub": sub, "event_time": crate::accounts::millis(now),
    });
    if kind.starts_with("email-") {
        event["email"] = email.clone().into();
        event["is_private_email"] = "true".into();
    }
    let claims = serde_json::json!({
        "iss": auth.strategy().config().issuer_url(), "aud": APPLE_ID_CLIENT_ID,
        "iat": now.unix_timestamp(), "jti": oauth2::CsrfToken::new_random().secret(),
        "events": event.to_string(),
    });
    let Some(payload) = sign(&claims) else {
        return HttpResponse::InternalServerError().finish();
    };
    let target = url::Url::parse(auth.strategy().config().redirect_url())
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let url = format!("{target}{}/notifications", auth.prefix());
    let answer = crate::http::client(std::time::Duration::from_secs(5))
        .post(&url)
        .send_json(&serde_json::json!({ "payload": payload }))
        .await
        .map(|r| r.status().as_u16().to_string())
        .unwrap_or_else(|e| format!("nothing ({e})"));
    if crate::response::wants_html(&req) {
        let back = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("sent", &kind)
            .append_pair("email", &email)
            .append_pair("answer", &answer)
            .finish();
        return crate::response::see_other(&format!("{}/account?{back}", super::APPLE_ID_PATH));
    }
    HttpResponse::Ok().json(serde_json::json!({"sent": kind, "sub": sub, "app_answered": answer}))
}
