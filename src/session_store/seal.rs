//! Sealing session values at rest: AES-256-GCM under a key derived from the session key.

use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::SessionState;

/// What starts a sealed value: `aam1.` then base64url(nonce ‖ ciphertext ‖ tag).
const SEALED_PREFIX: &str = "aam1.";

/// AES-256-GCM under a key derived from the session key; each value's session key name is
/// its associated data, so a sealed value cannot be moved to another name.
#[derive(Clone)]
pub(super) struct Sealer {
    cipher: Arc<Aes256Gcm>,
    /// Ciphers of previous keys, tried in turn when the current one does not open a value.
    previous: Arc<Vec<Aes256Gcm>>,
}

impl Sealer {
    pub(super) fn new(key: &actix_web::cookie::Key) -> Self {
        Self::derived(key, b"actix-apple-music session values v1")
    }

    /// The sealer of the current key of `keys`, which also opens values of the previous ones.
    pub(super) fn with_keys(keys: &super::SessionKeys) -> Self {
        Self::derived_all(keys, b"actix-apple-music session values v1")
    }

    fn derived(key: &actix_web::cookie::Key, info: &[u8]) -> Self {
        Self::derived_all(&super::SessionKeys::new(key.clone()), info)
    }

    fn derived_all(keys: &super::SessionKeys, info: &[u8]) -> Self {
        let cipher = |key: &actix_web::cookie::Key| {
            let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(None, key.master());
            let mut okm = [0u8; 32];
            hkdf.expand(info, &mut okm)
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            Aes256Gcm::new(&okm.into())
        };
        Self {
            cipher: Arc::new(cipher(&keys.current)),
            previous: Arc::new(keys.previous.iter().map(cipher).collect()),
        }
    }

    fn seal(&self, name: &str, value: &str) -> Option<String> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: value.as_bytes(),
                    aad: name.as_bytes(),
                },
            )
            .ok()?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Some(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The plain value; `None` for a sealed value that does not open (another key, tampered).
    /// A value that was never sealed (written before sealing) is answered as it is when
    /// `accept_plain`, else `None`.
    fn open_or_plain(&self, name: &str, value: String, accept_plain: bool) -> Option<String> {
        if !value.starts_with(SEALED_PREFIX) {
            return accept_plain.then_some(value);
        }
        self.open(name, value)
    }

    /// The plain value of a sealed value; `None` when it is not sealed or does not open.
    fn open(&self, name: &str, value: String) -> Option<String> {
        let body = value.strip_prefix(SEALED_PREFIX)?;
        let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let plain = std::iter::once(&*self.cipher)
            .chain(self.previous.iter())
            .find_map(|cipher| {
                cipher
                    .decrypt(
                        &nonce.into(),
                        Payload {
                            msg: sealed,
                            aad: name.as_bytes(),
                        },
                    )
                    .ok()
            })?;
        String::from_utf8(plain).ok()
    }

    pub(super) fn seal_state(&self, state: SessionState) -> Result<SessionState, anyhow::Error> {
        state
            .into_iter()
            .map(|(name, value)| {
                let sealed = self
                    .seal(&name, &value)
                    .ok_or_else(|| anyhow::anyhow!("a session value could not be sealed"))?;
                Ok((name, sealed))
            })
            .collect()
    }

    /// Opens every value; values that do not open (and unsealed ones unless `accept_plain`)
    /// are dropped, so the session reads as if they were never there.
    pub(super) fn open_state(&self, state: SessionState, accept_plain: bool) -> SessionState {
        let mut dropped = 0usize;
        let opened = state
            .into_iter()
            .filter_map(
                |(name, value)| match self.open_or_plain(&name, value, accept_plain) {
                    Some(plain) => Some((name, plain)),
                    None => {
                        dropped += 1;
                        None
                    }
                },
            )
            .collect();
        if dropped > 0 {
            log::warn!("session store: {dropped} session value(s) did not open (another session key, or not sealed) and were dropped");
        }
        opened
    }
}

/// Seals the secrets an app keeps beyond a session — a Sign in with Apple refresh token for
/// account deletion and the daily check, a music user token for a background job — under the
/// session key (AES-256-GCM, a key derived from it for this purpose only), each bound to its
/// owner (e.g. the account id), so a sealed value copied to another account does not open.
///
/// ```
/// use actix_apple_music::session_store::SecretSealer;
/// use actix_apple_music::RefreshToken;
///
/// let sealer = SecretSealer::new(&actix_web::cookie::Key::generate());
/// let sealed = sealer.seal_refresh_token(&RefreshToken::new("r.secret"), "acct-1");
/// assert!(!sealed.contains("r.secret"));
/// let opened = sealer.open_refresh_token(&sealed, "acct-1").unwrap();
/// assert_eq!(opened.secret(), "r.secret");
/// assert!(sealer.open_refresh_token(&sealed, "acct-2").is_err());
/// ```
#[derive(Clone)]
pub struct SecretSealer {
    sealer: Sealer,
}

impl std::fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretSealer")
    }
}

/// A sealed secret did not open: another key, another owner, or tampered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the sealed secret does not open (another key or owner, or tampered)")]
pub struct SealError;

impl SecretSealer {
    /// A sealer under `key` (the session middleware's key; every instance needs the same).
    pub fn new(key: &actix_web::cookie::Key) -> Self {
        Self {
            sealer: Sealer::derived(key, b"actix-apple-music stored secrets v1"),
        }
    }

    /// A sealer under the current key of `keys` that also opens secrets sealed under the
    /// previous ones (seal them again with [`seal_refresh_token`](Self::seal_refresh_token)
    /// while the rotation lasts).
    pub fn with_keys(keys: &super::SessionKeys) -> Self {
        Self {
            sealer: Sealer::derived_all(keys, b"actix-apple-music stored secrets v1"),
        }
    }

    fn seal(&self, kind: &str, owner: &str, secret: &str) -> String {
        self.sealer
            .seal(&format!("{kind}\0{owner}"), secret)
            .expect("AES-GCM seals any value that fits in memory")
    }

    fn open(&self, kind: &str, owner: &str, sealed: &str) -> Result<String, SealError> {
        self.sealer
            .open(&format!("{kind}\0{owner}"), sealed.to_owned())
            .ok_or(SealError)
    }

    /// Seals a refresh token for `owner`.
    pub fn seal_refresh_token(&self, token: &crate::RefreshToken, owner: &str) -> String {
        self.seal("refresh_token", owner, token.secret())
    }

    /// Opens a refresh token sealed for `owner`.
    pub fn open_refresh_token(
        &self,
        sealed: &str,
        owner: &str,
    ) -> Result<crate::RefreshToken, SealError> {
        self.open("refresh_token", owner, sealed)
            .map(crate::RefreshToken::new)
    }

    /// Seals a music user token for `owner`.
    pub fn seal_music_user_token(&self, token: &crate::MusicUserToken, owner: &str) -> String {
        self.seal("music_user_token", owner, token.secret())
    }

    /// Opens a music user token sealed for `owner`.
    pub fn open_music_user_token(
        &self,
        sealed: &str,
        owner: &str,
    ) -> Result<crate::MusicUserToken, SealError> {
        self.open("music_user_token", owner, sealed)
            .map(crate::MusicUserToken::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_secret_opens_only_as_its_kind_for_its_owner_under_its_key() {
        let key = actix_web::cookie::Key::generate();
        let sealer = SecretSealer::new(&key);
        let token = crate::MusicUserToken::new("mut-secret");
        let sealed = sealer.seal_music_user_token(&token, "acct-1");
        assert_eq!(
            sealer
                .open_music_user_token(&sealed, "acct-1")
                .unwrap()
                .secret(),
            "mut-secret"
        );
        assert_eq!(
            sealer.open_refresh_token(&sealed, "acct-1").err(),
            Some(SealError)
        );
        assert!(SecretSealer::new(&actix_web::cookie::Key::generate())
            .open_music_user_token(&sealed, "acct-1")
            .is_err());
        // Not the session values' key: a session value does not open as a stored secret.
        let session_value = Sealer::new(&key)
            .seal("refresh_token\0acct-1", "x")
            .unwrap();
        assert!(sealer.open_refresh_token(&session_value, "acct-1").is_err());
        assert!(
            sealer.open_refresh_token("plain", "acct-1").is_err(),
            "never unsealed"
        );
        assert!(!format!("{sealer:?}").contains("mut"));
    }

    #[test]
    fn sealed_values_open_only_under_their_key_and_name() {
        let key = actix_web::cookie::Key::generate();
        let sealer = Sealer::new(&key);
        let sealed = sealer
            .seal("apple-music.identity", "{\"mut\":\"secret\"}")
            .unwrap();
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("secret"));
        assert_eq!(
            sealer
                .open("apple-music.identity", sealed.clone())
                .as_deref(),
            Some("{\"mut\":\"secret\"}")
        );
        assert_eq!(
            sealer.open("apple-music.user", sealed.clone()),
            None,
            "moved to another name"
        );
        let other = Sealer::new(&actix_web::cookie::Key::generate());
        assert_eq!(
            other.open("apple-music.identity", sealed.clone()),
            None,
            "another key"
        );
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            sealer.open("apple-music.identity", tampered),
            None,
            "tampered"
        );
        // Written before sealing: reads only while the migration switch is on.
        assert_eq!(
            sealer
                .open_or_plain("app.cart", "[1]".into(), true)
                .as_deref(),
            Some("[1]")
        );
        assert_eq!(sealer.open_or_plain("app.cart", "[1]".into(), false), None);
        assert_eq!(sealer.open("app.cart", "aam1.".into()), None);
    }
}
