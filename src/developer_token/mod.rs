//! Developer tokens: the ES256 JWTs an app signs with its MusicKit key (or its MusicAPI key)
//! to call the API and to run the sign-in in a browser.
//!
//! A [`DeveloperTokenSigner`] signs one token, keeps it, and hands out clones of it until it
//! nears its end, then signs the next. It also verifies tokens: the login callback uses that to
//! check the `id_token_hint` a browser sends back.
//!
//! ```
//! use actix_apple_music::developer_token::{DeveloperTokenConfig, SigningKey};
//!
//! // In an app: SigningKey::from_pem_file("AuthKey_ABC123DEFG.p8")? or SigningKey::from_env()?
//! let key = SigningKey::generate();
//! let signer = DeveloperTokenConfig::apple_music("TEAMID1234", "ABC123DEFG")
//!     .origins(["https://app.example"])
//!     .build(key)?;
//!
//! let token = signer.token(); // cached: as cheap as cloning an Arc
//! let claims = signer.verify(token.as_str())?;
//! assert_eq!(claims.issuer(), "TEAMID1234");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod error;
mod inspect;
mod key;
mod provider;
mod signer;
mod token;

pub(crate) use config::check_origin as check_origin_pub;
pub use config::{
    DeveloperTokenConfig, APPLE_ID_ISSUER, DEFAULT_APPLE_MUSIC_LIFETIME,
    DEFAULT_CLIENT_SECRET_LIFETIME, DEFAULT_MUSICAPI_LIFETIME, MAX_LIFETIME,
};
pub use error::VerifyError;
pub use inspect::UnverifiedToken;
pub use key::{KeyError, KeySource, SigningKey, ENV_PRIVATE_KEY, ENV_PRIVATE_KEY_PATH};
pub use signer::DeveloperTokenSigner;
pub use token::{DeveloperToken, DeveloperTokenClaims};

#[cfg(not(any(feature = "aws_lc_rs", feature = "rust_crypto")))]
compile_error!("actix-apple-music needs one crypto backend: enable the `aws_lc_rs` (default) or `rust_crypto` feature");
