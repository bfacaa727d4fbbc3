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
}

impl Sealer {
    pub(super) fn new(key: &actix_web::cookie::Key) -> Self {
        let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(None, key.master());
        let mut okm = [0u8; 32];
        hkdf.expand(b"actix-apple-music session values v1", &mut okm)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self {
            cipher: Arc::new(Aes256Gcm::new(&okm.into())),
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
    /// A value that was never sealed (written before sealing) is answered as it is.
    fn open(&self, name: &str, value: String) -> Option<String> {
        let Some(body) = value.strip_prefix(SEALED_PREFIX) else {
            return Some(value);
        };
        let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let plain = self
            .cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: sealed,
                    aad: name.as_bytes(),
                },
            )
            .ok()?;
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

    pub(super) fn open_state(&self, state: SessionState) -> SessionState {
        let mut dropped = 0usize;
        let opened = state
            .into_iter()
            .filter_map(|(name, value)| match self.open(&name, value) {
                Some(plain) => Some((name, plain)),
                None => {
                    dropped += 1;
                    None
                }
            })
            .collect();
        if dropped > 0 {
            log::warn!("session store: {dropped} sealed session value(s) did not open (another session key?) and were dropped");
        }
        opened
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // Written before sealing: still reads.
        assert_eq!(
            sealer.open("app.cart", "[1]".into()).as_deref(),
            Some("[1]")
        );
        assert_eq!(sealer.open("app.cart", "aam1.".into()), None);
    }
}
