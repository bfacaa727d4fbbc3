//! Request headers for Apple Music API and MusicAPI.
//!
//! Each helper answers a `(HeaderName, HeaderValue)` pair, which both actix-web's and awc's
//! `insert_header` take. Values that carry a secret are marked sensitive, so HTTP libraries
//! that honour the flag keep them out of their debug output.

use actix_web::http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::developer_token::DeveloperToken;
use crate::secret::{ClientSecret, MusicUserToken};

/// Header name of the music user token on Apple Music API's `/v1/me/…` endpoints.
pub const MUSIC_USER_TOKEN: HeaderName = HeaderName::from_static("music-user-token");

fn sensitive(value: String) -> HeaderValue {
    // Tokens are base64url and dots; a value with control characters cannot come from us,
    // but an app could hand one in, so strip rather than panic.
    let mut value = HeaderValue::from_str(&value).unwrap_or_else(|_| {
        let clean: String = value
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .collect();
        HeaderValue::from_str(&clean).unwrap_or_else(|_| HeaderValue::from_static(""))
    });
    value.set_sensitive(true);
    value
}

/// `Authorization: Bearer <developer token>`, for every Apple Music API request.
pub fn apple_music_authorization(token: &DeveloperToken) -> (HeaderName, HeaderValue) {
    (
        AUTHORIZATION,
        sensitive(format!("Bearer {}", token.as_str())),
    )
}

/// `Music-User-Token: <music user token>`, for Apple Music API's personalised endpoints.
pub fn music_user_token(token: &MusicUserToken) -> (HeaderName, HeaderValue) {
    (MUSIC_USER_TOKEN, sensitive(token.secret().to_owned()))
}

/// Both Apple Music API headers of a personalised request (`/v1/me/…`).
pub fn apple_music_user_headers(
    developer_token: &DeveloperToken,
    user_token: &MusicUserToken,
) -> [(HeaderName, HeaderValue); 2] {
    [
        apple_music_authorization(developer_token),
        music_user_token(user_token),
    ]
}

/// MusicAPI, public endpoints: `Authorization: Token <client ID>`. The client ID is not a
/// secret; MusicAPI says it is safe in front ends.
pub fn musicapi_token(client_id: &str) -> (HeaderName, HeaderValue) {
    let value = HeaderValue::from_str(&format!("Token {client_id}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Token"));
    (AUTHORIZATION, value)
}

/// MusicAPI, backend only: `Authorization: Basic base64(<client ID>:<client secret>)`.
/// The secret gives full access to the account: never send this from a browser.
pub fn musicapi_basic(client_id: &str, secret: &ClientSecret) -> (HeaderName, HeaderValue) {
    let credentials = STANDARD.encode(format!("{client_id}:{}", secret.secret()));
    (AUTHORIZATION, sensitive(format!("Basic {credentials}")))
}

/// MusicAPI, front ends: `Authorization: DevToken <jwt>` with a token from a signer built by
/// [`DeveloperTokenConfig::musicapi`](crate::developer_token::DeveloperTokenConfig::musicapi).
pub fn musicapi_dev_token(token: &DeveloperToken) -> (HeaderName, HeaderValue) {
    (
        AUTHORIZATION,
        sensitive(format!("DevToken {}", token.as_str())),
    )
}
