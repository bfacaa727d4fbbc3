//! Sign in with Apple as a [`Strategy`]: the redirect to Apple, the relay of Apple's form post,
//! the callback, and the notifications route.

use std::future::Future;

use actix_web::{HttpRequest, HttpResponse};
use oauth2::{CsrfToken, Scope};

use super::notifications::notifications;
use super::{
    nonce_for, AppleIdError, AppleIdIdentity, AppleIdStrategy, RelayData, APPLE_ID_STRATEGY_NAME,
};
use crate::strategy::{CallbackParams, FlowOptions, LoginRequest, Strategy};

impl Strategy for AppleIdStrategy {
    type Identity = AppleIdIdentity;
    type Error = AppleIdError;

    fn name(&self) -> &str {
        APPLE_ID_STRATEGY_NAME
    }

    fn default_options(&self) -> FlowOptions {
        self.config.flow.clone()
    }

    fn login_page(&self, _req: &HttpRequest, login: &LoginRequest<'_>) -> HttpResponse {
        let state = login.state.to_owned();
        let nonce = nonce_for(&state);
        let response_type = if self.config.request_id_token {
            "code id_token"
        } else {
            "code"
        };
        let client = self.client();
        let mut request = client
            .authorize_url(move || CsrfToken::new(state))
            .add_extra_param("response_mode", "form_post")
            .add_extra_param("nonce", nonce);
        if self.config.request_id_token {
            request = request.set_response_type(&oauth2::ResponseType::new(response_type.into()));
        }
        for scope in self.config.scope.split_whitespace() {
            request = request.add_scope(Scope::new(scope.to_owned()));
        }
        let (url, _) = request.url();
        crate::respond::see_other(url.as_str())
    }

    fn extra_routes(&self, scope: actix_web::Scope) -> actix_web::Scope {
        scope.route("/notifications", actix_web::web::post().to(notifications))
    }

    fn identity_expires_at(&self, identity: &AppleIdIdentity) -> Option<time::OffsetDateTime> {
        Some(identity.authenticated_at() + self.config.identity_lifetime)
    }

    fn subject(&self, identity: &AppleIdIdentity) -> Option<String> {
        Some(identity.sub().to_owned())
    }

    fn before_callback(&self, req: &HttpRequest, params: &CallbackParams) -> Option<HttpResponse> {
        if params.get("relayed") == Some("1") {
            return None;
        }
        let mut fields = std::collections::BTreeMap::new();
        for name in ["code", "state", "id_token", "user", "error"] {
            if let Some(value) = params.get(name) {
                fields.insert(name, value);
            }
        }
        fields.insert("relayed", "1");
        let action = req.path().to_owned();
        Some(self.relay.respond(
            &RelayData {
                action: &action,
                fields,
            },
            "",
            "",
        ))
    }

    fn callback(
        &self,
        _req: &HttpRequest,
        params: &CallbackParams,
    ) -> impl Future<Output = Result<AppleIdIdentity, AppleIdError>> {
        self.sign_in(params.clone())
    }
}
