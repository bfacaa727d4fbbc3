//! The optional routes: manual token entry and the developer token for front ends.

use actix_session::SessionExt;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use time::format_description::well_known::Rfc3339;

use super::AppleMusicStrategy;
use crate::error::{AuthError, TokenError};
use crate::response;
use crate::strategy::{read_body, Authenticator, CallbackParams, StateProof};

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
    if !auth.same_origin(&req) {
        return HttpResponse::Forbidden().json(serde_json::json!({
            "error": "forbidden",
            "message": "cross-origin token entry refused",
        }));
    }
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let result = async {
        let bytes = read_body(&req, body, is_json, auth.options().body_timeout).await?;
        let input: ManualToken = if is_json {
            serde_json::from_slice(&bytes).map_err(|_| {
                TokenError::malformed("expected {\"music_user_token\": …, \"state\": …}")
            })?
        } else {
            let params = CallbackParams::parse(&bytes)?;
            ManualToken {
                music_user_token: params.get("music_user_token").map(str::to_owned),
                state: params.get("state").map(str::to_owned),
            }
        };
        let session = req.get_session();
        let proof = StateProof {
            state: input.state.as_deref(),
            handback: None,
        };
        let return_to = auth.spend_state(&session, proof).await?;
        let strategy = auth.strategy();
        let code = input.music_user_token.unwrap_or_default().trim().to_owned();
        let identity = strategy.identity_for(code, None)?;
        let identity = strategy.verify_with_apple(identity).await?;
        auth.complete(&req, &session, identity.clone()).await?;
        Ok::<_, AuthError>((identity, return_to))
    }
    .await;
    match result {
        Ok((identity, _)) if is_json => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .json(serde_json::json!({
                "provider": "apple-music",
                "authenticated_at": identity.authenticated_at().format(&Rfc3339).unwrap_or_default(),
                "expires_at": identity.expires_at().format(&Rfc3339).unwrap_or_default(),
                "restricted": identity.restricted(),
            })),
        Ok((_, return_to)) => {
            response::see_other(&return_to.unwrap_or_else(|| auth.strategy().config().flow.success_target.clone()))
        }
        Err(error) => auth.failure(&req, &error),
    }
}

/// `GET …/developer-token`: `{"token", "expires_at"}`, cacheable for at most five minutes and
/// never past the token's end.
pub(super) async fn developer_token(auth: web::Data<Auth>) -> HttpResponse {
    let strategy = auth.strategy();
    let token = strategy.signer().token();
    let now = strategy.config().flow.clock.now();
    let left = (token.expires_at() - now).whole_seconds().max(0);
    let max_age = left.min(300);
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, format!("private, max-age={max_age}")))
        .json(serde_json::json!({
            "token": token.as_str(),
            "expires_at": token.expires_at().format(&Rfc3339).unwrap_or_default(),
        }))
}
