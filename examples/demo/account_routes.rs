//! The demo's account routes: the account and its sessions, sign out everywhere (or everywhere
//! but here), and deleting the account (revoked at Apple, signed out everywhere, forgotten).
//!
//! - `GET /account`: `200 {"account": {"id", "sign_ins"}, "apple_id": {"sub", "email"} | null,
//!   "sessions": [{"current", "signed_in_at", "last_seen_at", "strategy", "user_agent"}, …]}`,
//!   `401` JSON when not signed in;
//! - `POST /account/sign-out-others`, `POST /account/sign-out-everywhere`,
//!   `POST /account/delete`: same-origin only (`403` otherwise, checked first); `401` JSON when
//!   not signed in; `303` to `/` for browsers,
//!   `204` (sign-outs) or `200` JSON (delete) for other clients.

use std::sync::Arc;

use actix_apple_music::accounts::CurrentAccount;
use actix_apple_music::{
    AccountDeletionError, AppleIdStrategy, AppleMusicStrategy, Authenticator, Revocation, SignedIn,
};
use actix_session::SessionExt;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};

use crate::accounts::{Accounts, DemoUser};

/// Adds the account routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account", web::get().to(account))
        .route("/account/sign-out-others", web::post().to(sign_out_others))
        .route(
            "/account/sign-out-everywhere",
            web::post().to(sign_out_everywhere),
        )
        .route("/account/delete", web::post().to(delete));
}

fn wants_html(req: &HttpRequest) -> bool {
    req.headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// The answer to a change that worked: back home for browsers, `body` (or `204`) otherwise.
fn done(req: &HttpRequest, body: Option<serde_json::Value>) -> HttpResponse {
    if wants_html(req) {
        return HttpResponse::SeeOther()
            .insert_header(("Location", "/"))
            .insert_header(("Cache-Control", "no-store"))
            .finish();
    }
    match body {
        Some(body) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(body),
        None => HttpResponse::NoContent().finish(),
    }
}

/// `403` for a POST another site's page made the browser send.
fn cross_origin(req: &HttpRequest) -> Option<HttpResponse> {
    let auth = req.app_data::<web::Data<Authenticator<AppleMusicStrategy>>>()?;
    (!auth.is_same_origin(req)).then(|| {
        HttpResponse::Forbidden().json(serde_json::json!({
            "error": "forbidden",
            "message": "cross-origin request refused",
        }))
    })
}

async fn account(
    account: CurrentAccount,
    apple_id: Option<SignedIn<AppleIdStrategy, DemoUser>>,
    table: web::Data<Arc<Accounts>>,
) -> actix_web::Result<HttpResponse> {
    let sessions = account.sessions().await?;
    let apple_id = apple_id
        .map(|a| serde_json::json!({"sub": a.identity().sub(), "email": a.identity().email()}));
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({
            "account": {"id": account.id(), "sign_ins": table.sign_ins(account.id())},
            "apple_id": apple_id,
            "sessions": sessions,
        })))
}

async fn sign_out_others(req: HttpRequest) -> actix_web::Result<HttpResponse> {
    if let Some(refused) = cross_origin(&req) {
        return Ok(refused);
    }
    let account = CurrentAccount::extract(&req).await?;
    account.sign_out_others().await?;
    Ok(done(&req, None))
}

async fn sign_out_everywhere(req: HttpRequest) -> actix_web::Result<HttpResponse> {
    if let Some(refused) = cross_origin(&req) {
        return Ok(refused);
    }
    let account = CurrentAccount::extract(&req).await?;
    account.sign_out_everywhere().await?;
    Ok(done(&req, None))
}

async fn delete(
    req: HttpRequest,
    apple_id: Option<web::Data<Authenticator<AppleIdStrategy>>>,
    table: web::Data<Arc<Accounts>>,
) -> actix_web::Result<HttpResponse> {
    if let Some(refused) = cross_origin(&req) {
        return Ok(refused);
    }
    let account = CurrentAccount::extract(&req).await?;
    let id = account.id().to_owned();
    let token = table.refresh_token(&id);
    let forget = || async {
        table.forget(&id);
        Ok::<_, std::convert::Infallible>(())
    };
    let result = match &apple_id {
        Some(auth) => auth.delete_account(&id, token.as_ref(), forget).await,
        None => {
            account.accounts().sign_out_everywhere(&id).await?;
            table.forget(&id);
            Ok(())
        }
    };
    match result {
        Ok(()) => {
            req.get_session().purge();
            Ok(done(
                &req,
                Some(serde_json::json!({"deleted": true, "account": id})),
            ))
        }
        Err(AccountDeletionError::NotRevoked(Revocation::Unavailable {
            retry_after, ..
        })) => Ok(HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", retry_after.as_secs().to_string()))
            .json(serde_json::json!({
                "error": "apple_unavailable",
                "message": "Apple could not be asked to revoke the Sign in with Apple token; nothing was deleted",
            }))),
        Err(e) => Ok(HttpResponse::BadGateway().json(serde_json::json!({
            "error": "not_deleted",
            "message": e.to_string(),
        }))),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The home page's account part: the sessions and the buttons.
pub async fn sessions_html(account: &CurrentAccount) -> String {
    let rows: String = match account.sessions().await {
        Ok(sessions) => sessions
            .iter()
            .map(|s| {
                format!(
                    "<tr class=\"session\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    if s.current { "this one" } else { "" },
                    escape(&s.strategy),
                    escape(&crate::rfc3339(s.signed_in_at)),
                    escape(&crate::rfc3339(s.last_seen_at)),
                    escape(&s.user_agent),
                )
            })
            .collect(),
        Err(e) => format!("<tr><td colspan=\"5\">{}</td></tr>", escape(&e.to_string())),
    };
    format!(
        r#"<h2>Your sessions (account <span id="session-account">{account}</span>)</h2>
<table id="sessions"><tr><th></th><th>with</th><th>signed in</th><th>last seen</th><th>browser</th></tr>{rows}</table>
<p><form class="inline" method="post" action="/account/sign-out-others"><button id="sign-out-others" type="submit">Sign out everywhere else</button></form>
<form class="inline" method="post" action="/account/sign-out-everywhere"><button id="sign-out-everywhere" type="submit">Sign out everywhere</button></form>
<form class="inline" method="post" action="/account/delete"><button id="delete-account" class="danger" type="submit">Delete my account</button></form></p>"#,
        account = escape(account.id()),
    )
}
