//! The process-wide crypto provider jsonwebtoken needs.

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
