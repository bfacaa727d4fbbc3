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

mod inspect;
mod key;
mod signer;

pub use inspect::UnverifiedToken;
pub use key::{KeyError, KeySource, SigningKey, ENV_PRIVATE_KEY, ENV_PRIVATE_KEY_PATH};
pub(crate) use signer::check_origin as check_origin_pub;
pub use signer::{
    DeveloperToken, DeveloperTokenClaims, DeveloperTokenConfig, DeveloperTokenSigner, VerifyError,
    DEFAULT_APPLE_MUSIC_LIFETIME, DEFAULT_MUSICAPI_LIFETIME, MAX_LIFETIME,
};

/// Makes sure jsonwebtoken has a crypto provider before the first key is used.
///
/// jsonwebtoken picks its provider from its own cargo features, and panics when both of its
/// backends end up enabled (cargo unifies features across a build). Installing ours first
/// avoids that; if the app installed one already, that one stays.
pub(crate) fn ensure_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(feature = "aws_lc_rs")]
        let provider = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
        #[cfg(all(feature = "rust_crypto", not(feature = "aws_lc_rs")))]
        let provider = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
        // Err means a provider is in place already, which is all we need.
        let _ = provider.install_default();
    });
}

#[cfg(not(any(feature = "aws_lc_rs", feature = "rust_crypto")))]
compile_error!("actix-apple-music needs one crypto backend: enable the `aws_lc_rs` (default) or `rust_crypto` feature");
