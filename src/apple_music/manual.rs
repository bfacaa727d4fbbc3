//! The optional routes: manual token entry and the developer token for front ends.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use time::format_description::well_known::Rfc3339;

use super::AppleMusicStrategy;
use crate::strategy::{Authenticator, CallbackParams, FlowError, SignInError, StateProof};

type Auth = Authenticator<AppleMusicStrategy>;

#[derive(serde::Deserialize)]
struct ManualToken {
    music_user_token: Option<String>,
    state: Option<String>,
}

/// `POST …/token`: signs the user in with a pasted music user token. Form → `303` like the
/// callback; JSON → `200` with the identity's public fields.
pub(super) async fn manual_token(
    req: HttpRequest,
    body: web::Payload,
    auth: web::Data<Auth>,
) -> HttpResponse {
    if !auth.is_same_origin(&req) {
        return crate::respond::cross_origin_refused("token entry");
    }
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let input = match read_input(&req, body, &auth, is_json).await {
        Ok(input) => input,
        Err(e) => return auth.failure_response(&req, &SignInError::Flow(e)),
    };
    let strategy = auth.strategy();
    let result = auth
        .finish_sign_in(&req, StateProof::state(input.state.as_deref()), || async {
            let token = input.music_user_token.unwrap_or_default().trim().to_owned();
            let identity = strategy.identity_for(token, None)?;
            strategy.check_with_apple(identity).await
        })
        .await;
    match result {
        Ok(done) if is_json => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .json(serde_json::json!({
                "provider": "apple-music",
                "authenticated_at": done.identity.authenticated_at().format(&Rfc3339).unwrap_or_default(),
                "expires_at": done.identity.expires_at().format(&Rfc3339).unwrap_or_default(),
                "restricted": done.identity.restricted(),
            })),
        other => auth.respond(&req, other),
    }
}

async fn read_input(
    req: &HttpRequest,
    body: web::Payload,
    auth: &Auth,
    is_json: bool,
) -> Result<ManualToken, FlowError> {
    let bytes = auth.read_form_or_json(req, body).await?;
    if is_json {
        return serde_json::from_slice(&bytes).map_err(|_| FlowError::MalformedRequest {
            detail: "expected {\"music_user_token\": …, \"state\": …}".into(),
        });
    }
    let params = CallbackParams::parse(&bytes)?;
    Ok(ManualToken {
        music_user_token: params.get("music_user_token").map(str::to_owned),
        state: params.get("state").map(str::to_owned),
    })
}

/// `GET …/developer-token`: `{"token", "expires_at"}`, cacheable for at most five minutes and
/// never past the token's end.
pub(super) async fn developer_token(auth: web::Data<Auth>) -> HttpResponse {
    let strategy = auth.strategy();
    let token = strategy.signer().token();
    let now = auth.flow_options().now();
    let left = (token.expires_at() - now).whole_seconds().max(0);
    let max_age = left.min(300);
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, format!("private, max-age={max_age}")))
        .json(serde_json::json!({
            "token": token.as_str(),
            "expires_at": token.expires_at().format(&Rfc3339).unwrap_or_default(),
        }))
}
