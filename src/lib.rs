//! Sign users in with Apple Music in actix-web apps.
//!
//! Apple Music has no OAuth server: an app gets a user's **music user token** only by running
//! MusicKit's authorization in the user's browser with a **developer token**, an ES256 JWT the
//! app signs with its MusicKit `.p8` key. This crate signs and rotates those developer tokens,
//! mounts login and callback routes that run the authorization, and keeps the resulting
//! identity in an actix-session session.
//!
//! # Developer tokens
//!
//! ```
//! use actix_apple_music::developer_token::{DeveloperTokenConfig, SigningKey};
//! use std::time::Duration;
//!
//! // In an app: SigningKey::from_pem_file("AuthKey_ABC123DEFG.p8")? or SigningKey::from_env()?
//! let key = SigningKey::generate();
//! let signer = DeveloperTokenConfig::apple_music("TEAMID1234", "ABC123DEFG")
//!     .lifetime(Duration::from_secs(30 * 86_400))
//!     .build(key)?;
//! let token = signer.token();
//! assert!(signer.verify(token.as_str()).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod clock;
pub mod developer_token;
mod error;
pub mod headers;
mod secret;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::ConfigError;
pub use secret::{ClientSecret, MusicUserToken};
