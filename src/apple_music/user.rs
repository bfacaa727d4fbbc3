//! The guard's Apple Music names, and what only an Apple Music user can do.

use std::time::Duration;

use super::api::{ApiError, ApiRequest, ApiResponse};
use super::AppleMusicStrategy;
use crate::guard::{RequireSignIn, SignedIn};

/// The signed-in Apple Music user, for handlers: `async fn me(user: AppleMusicUser) -> …`.
/// [`SignedIn`] for the Apple Music strategy; see there for `Option<…>` and `Result<…>`.
pub type AppleMusicUser<U = ()> = SignedIn<AppleMusicStrategy, U>;

/// Guards a scope for Apple Music users:
/// `web::scope("/library").wrap(RequireAppleMusic::new())`. [`RequireSignIn`] for the Apple
/// Music strategy.
pub type RequireAppleMusic = RequireSignIn<AppleMusicStrategy>;

impl<U> SignedIn<AppleMusicStrategy, U> {
    /// Time left before the music user token reaches its end.
    pub fn token_time_left(&self) -> Duration {
        self.time_left().unwrap_or(Duration::ZERO)
    }

    /// Whether the end is within the warning window (default 14 days): time to tell the user
    /// "your Apple Music connection expires in N days".
    pub fn expires_soon(&self) -> bool {
        self.token_time_left() <= self.authenticator().strategy().config().expiry_warning
    }

    /// Sends an Apple Music API request as this user (developer token and music user
    /// token), through the strategy's [`AppleMusicApi`](crate::apple_music_api::AppleMusicApi). Any answer
    /// but a `2xx` is an [`ApiError`]. When Apple answers `403` to a `/v1/me/…` request the
    /// token is dead: the identity is [invalidated](SignedIn::invalidate) and the error is
    /// [`ApiError::ReloginRequired`], which answers as the guard does (`303` to the login with
    /// `prompt=login` for browsers, `401 reauthentication_required` otherwise).
    ///
    /// ```no_run
    /// use actix_apple_music::apple_music_api::{ApiError, ApiRequest};
    /// use actix_apple_music::AppleMusicUser;
    ///
    /// async fn songs(user: AppleMusicUser) -> Result<actix_web::HttpResponse, ApiError> {
    ///     let answer = user.api(ApiRequest::get("/v1/me/library/songs?limit=10")).await?;
    ///     Ok(actix_web::HttpResponse::Ok().json(answer.json::<serde_json::Value>()?))
    /// }
    /// ```
    pub async fn api(&self, request: ApiRequest) -> Result<ApiResponse, ApiError> {
        let personal = request.is_personal();
        let result = self
            .authenticator()
            .strategy()
            .api()
            .send(request, Some(self.identity().music_user_token()))
            .await;
        if personal && matches!(result, Err(ApiError::UserTokenRejected)) {
            tracing::info!("Apple Music refused a user's token: the identity is invalidated");
            self.invalidate();
            return Err(ApiError::ReloginRequired {
                login_url: self.login_url(true),
                html: crate::respond::wants_html(self.request()),
            });
        }
        result
    }
}
