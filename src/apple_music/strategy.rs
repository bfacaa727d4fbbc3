//! Apple Music as a [`Strategy`]: the login page, the callback, and the strategy's own routes
//! (page scripts, the return page, the manual token and developer-token routes).

use std::future::Future;

use actix_web::{web, HttpRequest, HttpResponse};

use super::manual::{developer_token, manual_token};
use super::{
    AppleMusicError, AppleMusicIdentity, AppleMusicStrategy, AuthorizationError, LoginData,
    LoginPage, ReturnData, STRATEGY_NAME,
};
use crate::strategy::{Authenticator, CallbackParams, FlowOptions, LoginRequest, Strategy};

impl Strategy for AppleMusicStrategy {
    type Identity = AppleMusicIdentity;
    type Error = AppleMusicError;

    fn name(&self) -> &str {
        STRATEGY_NAME
    }

    /// The flow options of the config (targets, state lifetime, GET callback, clock, …).
    fn default_options(&self) -> FlowOptions {
        self.config.flow.clone()
    }

    fn login_page(&self, _req: &HttpRequest, login: &LoginRequest<'_>) -> HttpResponse {
        let token = self.signer.token();
        let mode = self.config.login_page;
        let data = LoginData {
            mode: mode.as_str(),
            developer_token: token.as_str(),
            state: login.state,
            callback_url: login.callback_path,
            // Only the redirect page returns through our URL; only it learns the hand-back.
            return_url: if mode == LoginPage::Redirect {
                format!("{}/return?handback={}", login.prefix, login.handback)
            } else {
                format!("{}/return", login.prefix)
            },
            app_name: &self.config.app_name,
            app_icon_url: self.config.app_icon_url.as_deref(),
            force_dialog: login.force_dialog,
            timeout_ms: self.config.authorize_timeout.as_millis(),
            authorize_url: (mode != LoginPage::MusicKit)
                .then_some(self.config.authorize_url.as_str()),
            music_kit_url: (mode == LoginPage::MusicKit)
                .then_some(self.config.musickit_js_url.as_str()),
            manual_token_url: self
                .config
                .manual_token_route
                .then(|| format!("{}/token", login.prefix)),
        };
        self.login_template
            .respond(&data, &self.script_src, &self.extra_directives)
    }

    fn callback(
        &self,
        _req: &HttpRequest,
        params: &CallbackParams,
    ) -> impl Future<Output = Result<AppleMusicIdentity, AppleMusicError>> {
        // MusicKit's error words (`declined`, `popup_blocked`, …) come back as `error`.
        let checked = match params.get("error") {
            Some(error) => Err(AuthorizationError::from_callback_error(error).into()),
            None => self.identity(params).map_err(AppleMusicError::from),
        };
        async move { self.check_with_apple(checked?).await }
    }

    fn identity_expires_at(&self, identity: &AppleMusicIdentity) -> Option<time::OffsetDateTime> {
        Some(identity.expires_at())
    }

    fn extra_routes(&self, scope: actix_web::Scope) -> actix_web::Scope {
        let mut scope = scope.route("/assets/{name}", web::get().to(asset));
        if self.config.login_page == LoginPage::Redirect {
            scope = scope.route("/return", web::get().to(return_page));
        }
        if self.config.manual_token_route {
            scope = scope.route("/token", web::post().to(manual_token));
        }
        if self.config.developer_token_route {
            scope = scope.route("/developer-token", web::get().to(developer_token));
        }
        scope
    }
}

/// `GET …/assets/{name}`: a page script, by its content-hashed name.
async fn asset(
    name: web::Path<String>,
    auth: web::Data<Authenticator<AppleMusicStrategy>>,
) -> HttpResponse {
    match auth.strategy().assets.iter().find(|a| a.name == *name) {
        Some(asset) => asset.respond(),
        None => HttpResponse::NotFound().finish(),
    }
}

/// The return page: the same for every visitor (it reads nothing of the session), so a bare
/// navigation to it learns nothing that could complete a sign-in.
async fn return_page(auth: web::Data<Authenticator<AppleMusicStrategy>>) -> HttpResponse {
    let strategy = auth.strategy();
    let token = strategy.signer.token();
    let data = ReturnData {
        developer_token: token.as_str(),
        callback_url: auth.callback_path(),
    };
    strategy.return_template.respond(&data, "", "")
}
