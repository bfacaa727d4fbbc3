//! Environment variables read by [`AppleMusicConfig::from_env`](crate::AppleMusicConfig::from_env).

/// Team ID (10 characters).
pub const TEAM_ID: &str = "APPLE_MUSIC_TEAM_ID";
/// MusicKit key ID (10 characters).
pub const KEY_ID: &str = "APPLE_MUSIC_KEY_ID";
/// App name shown by Apple's authorization page.
pub const APP_NAME: &str = "APPLE_MUSIC_APP_NAME";
/// App icon URL shown by Apple's authorization page.
pub const APP_ICON_URL: &str = "APPLE_MUSIC_APP_ICON_URL";
/// `musickit` | `direct` | `redirect`.
pub const LOGIN_PAGE: &str = "APPLE_MUSIC_LOGIN_PAGE";
/// MusicKit JS URL.
pub const MUSICKIT_JS_URL: &str = "APPLE_MUSIC_MUSICKIT_JS_URL";
/// Authorization page URL.
pub const AUTHORIZE_URL: &str = "APPLE_MUSIC_AUTHORIZE_URL";
/// Music user token lifetime in seconds.
pub const USER_TOKEN_LIFETIME_SECS: &str = "APPLE_MUSIC_USER_TOKEN_LIFETIME_SECS";
/// Developer token lifetime in seconds.
pub const DEVELOPER_TOKEN_LIFETIME_SECS: &str = "APPLE_MUSIC_DEVELOPER_TOKEN_LIFETIME_SECS";
/// Comma-separated `origin` claim.
pub const ORIGINS: &str = "APPLE_MUSIC_ORIGINS";
/// Login state lifetime in seconds.
pub const STATE_TTL_SECS: &str = "APPLE_MUSIC_STATE_TTL_SECS";
/// `true` (default) or `false`: prove each new music user token with Apple.
pub const VERIFY_TOKENS: &str = "APPLE_MUSIC_VERIFY_TOKENS";
/// Apple Music API base URL (default `https://api.music.apple.com`).
pub const API_BASE_URL: &str = "APPLE_MUSIC_API_BASE_URL";
/// `true` or `false` (default): also accept the callback by `GET`, as
/// passport-apple-music's page sends it.
pub const ALLOW_GET_CALLBACK: &str = "APPLE_MUSIC_ALLOW_GET_CALLBACK";
