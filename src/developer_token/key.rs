//! Loading the ES256 signing key (a MusicKit `.p8` file or an `openssl ecparam` key).

use std::fmt;
use std::path::{Path, PathBuf};

use jsonwebtoken::{DecodingKey, EncodingKey};
use p256::pkcs8::der::pem::LineEnding;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, ObjectIdentifier};

/// Environment variable holding the private key's PEM text.
pub const ENV_PRIVATE_KEY: &str = "APPLE_MUSIC_PRIVATE_KEY";
/// Environment variable holding the path of the private key file.
pub const ENV_PRIVATE_KEY_PATH: &str = "APPLE_MUSIC_PRIVATE_KEY_PATH";

const EXPECTED: &str = "expected a P-256 (ES256) private key in PEM form: PKCS#8 \
     (`-----BEGIN PRIVATE KEY-----`, as in Apple's AuthKey_XXXXXXXXXX.p8) or SEC1 \
     (`-----BEGIN EC PRIVATE KEY-----`, as `openssl ecparam -name prime256v1 -genkey` writes)";

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_SECP256K1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.10");

/// Where a key came from, so errors can name it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySource {
    /// A file on disk.
    File(PathBuf),
    /// An environment variable holding the PEM text.
    Env(String),
    /// A PEM string handed to [`SigningKey::from_pem`].
    Pem,
    /// A key made by [`SigningKey::generate`].
    Generated,
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::File(path) => write!(f, "key file `{}`", path.display()),
            KeySource::Env(var) => write!(f, "environment variable `{var}`"),
            KeySource::Pem => f.write_str("PEM string"),
            KeySource::Generated => f.write_str("generated key"),
        }
    }
}

/// Why a signing key could not be loaded. Messages name the source and the expected format,
/// never the key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Neither `APPLE_MUSIC_PRIVATE_KEY` nor `APPLE_MUSIC_PRIVATE_KEY_PATH` is set.
    #[error("no private key configured: set {ENV_PRIVATE_KEY} (the PEM text) or {ENV_PRIVATE_KEY_PATH} (the path of the .p8 file)")]
    NotConfigured,
    /// Both `APPLE_MUSIC_PRIVATE_KEY` and `APPLE_MUSIC_PRIVATE_KEY_PATH` are set.
    #[error("both {ENV_PRIVATE_KEY} and {ENV_PRIVATE_KEY_PATH} are set: set only one")]
    Ambiguous,
    /// The key file could not be read.
    #[error("cannot read the {source_name}: {cause} ({EXPECTED})")]
    Read {
        /// The file.
        source_name: KeySource,
        /// The I/O error.
        #[source]
        cause: std::io::Error,
    },
    /// The source holds nothing but white space.
    #[error("the {source_name} is empty; {EXPECTED}")]
    Empty {
        /// Where the key came from.
        source_name: KeySource,
    },
    /// The source is not PEM text.
    #[error("the {source_name} is not a PEM private key; {EXPECTED}")]
    NotPem {
        /// Where the key came from.
        source_name: KeySource,
    },
    /// The source holds a key, but not a P-256 private key.
    #[error("the {source_name} holds {found}, which cannot sign ES256; {EXPECTED}")]
    UnsupportedKey {
        /// Where the key came from.
        source_name: KeySource,
        /// What kind of key it holds, e.g. `an RSA key` or `a P-384 key`.
        found: String,
    },
    /// The PEM block is damaged (its DER content does not parse).
    #[error("the {source_name} has a damaged {label} block; {EXPECTED}")]
    Invalid {
        /// Where the key came from.
        source_name: KeySource,
        /// The PEM label, e.g. `PRIVATE KEY`.
        label: String,
    },
}

/// A P-256 private key ready to sign ES256 tokens, with the public key derived from it for
/// verification.
///
/// Its `Debug` output names where it came from and redacts the key.
#[derive(Clone)]
pub struct SigningKey {
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    public_key_pem: String,
    source: KeySource,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("source", &self.source)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

impl SigningKey {
    /// Loads a key from PEM text (PKCS#8 or SEC1).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        Self::parse(pem, KeySource::Pem)
    }

    /// Loads a key from a file, such as the `AuthKey_XXXXXXXXXX.p8` Apple lets you download.
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let source = KeySource::File(path.to_path_buf());
        let bytes = std::fs::read(path).map_err(|cause| KeyError::Read {
            source_name: source.clone(),
            cause,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| KeyError::NotPem {
            source_name: source.clone(),
        })?;
        Self::parse(&text, source)
    }

    /// Loads the key named by the environment: `APPLE_MUSIC_PRIVATE_KEY` (the PEM text; `\n`
    /// escapes, as `.env` files often hold them, are understood) or
    /// `APPLE_MUSIC_PRIVATE_KEY_PATH` (a file path). Exactly one must be set.
    pub fn from_env() -> Result<Self, KeyError> {
        Self::from_env_vars(ENV_PRIVATE_KEY, ENV_PRIVATE_KEY_PATH)
    }

    /// Like [`from_env`](Self::from_env), from other variables: `inline` holding the PEM, or
    /// `path` naming a file (e.g. `APPLE_ID_PRIVATE_KEY` / `APPLE_ID_PRIVATE_KEY_PATH`).
    pub fn from_env_vars(inline: &str, path: &str) -> Result<Self, KeyError> {
        let pem_text = std::env::var(inline).ok().filter(|v| !v.is_empty());
        let file = std::env::var_os(path).filter(|p| !p.is_empty());
        match (pem_text, file) {
            (Some(_), Some(_)) => Err(KeyError::Ambiguous),
            (Some(pem), None) => {
                let pem = if pem.contains("\\n") && !pem.contains('\n') {
                    pem.replace("\\n", "\n")
                } else {
                    pem
                };
                Self::parse(&pem, KeySource::Env(inline.to_owned()))
            }
            (None, Some(file)) => Self::from_pem_file(PathBuf::from(file)),
            (None, None) => Err(KeyError::NotConfigured),
        }
    }

    /// A fresh random P-256 key, for tests and sandboxes. Apple and MusicAPI know nothing of
    /// it, so tokens it signs only work against stand-ins.
    pub fn generate() -> Self {
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        Self::from_secret(secret, KeySource::Generated)
            .expect("a freshly generated P-256 key always encodes")
    }

    /// Where this key came from.
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// The public half as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) block: what MusicAPI's
    /// dashboard asks for, and what another service needs to verify tokens.
    pub fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }

    fn parse(text: &str, source: KeySource) -> Result<Self, KeyError> {
        super::provider::ensure_crypto_provider();
        if text.trim().is_empty() {
            return Err(KeyError::Empty {
                source_name: source,
            });
        }
        let not_pem = || KeyError::NotPem {
            source_name: source.clone(),
        };
        let block = private_key_block(text).ok_or_else(not_pem)?;
        let (label, der) =
            p256::pkcs8::der::pem::decode_vec(block.as_bytes()).map_err(|_| not_pem())?;
        let invalid = || KeyError::Invalid {
            source_name: source.clone(),
            label: label.to_owned(),
        };
        let unsupported = |found: &str| KeyError::UnsupportedKey {
            source_name: source.clone(),
            found: found.to_owned(),
        };
        let secret = match label {
            "PRIVATE KEY" => {
                let info =
                    p256::pkcs8::PrivateKeyInfo::try_from(der.as_slice()).map_err(|_| invalid())?;
                if info.algorithm.oid == OID_RSA {
                    return Err(unsupported("an RSA key"));
                }
                if info.algorithm.oid == OID_ED25519 {
                    return Err(unsupported("an Ed25519 key"));
                }
                if info.algorithm.oid != OID_EC_PUBLIC_KEY {
                    return Err(unsupported(&format!(
                        "a key of algorithm {}",
                        info.algorithm.oid
                    )));
                }
                check_curve(info.algorithm.parameters_oid().ok()).map_err(|c| unsupported(&c))?;
                p256::SecretKey::from_pkcs8_der(&der).map_err(|_| invalid())?
            }
            "EC PRIVATE KEY" => {
                let key = sec1::EcPrivateKey::try_from(der.as_slice()).map_err(|_| invalid())?;
                let curve = key.parameters.and_then(|p| p.named_curve());
                if curve.is_some() {
                    check_curve(curve).map_err(|c| unsupported(&c))?;
                }
                p256::SecretKey::from_sec1_der(&der).map_err(|_| invalid())?
            }
            "RSA PRIVATE KEY" => return Err(unsupported("an RSA key")),
            "ENCRYPTED PRIVATE KEY" => {
                return Err(unsupported("a password-protected key (decrypt it first)"))
            }
            "OPENSSH PRIVATE KEY" => return Err(unsupported("an OpenSSH key")),
            "PUBLIC KEY" | "EC PUBLIC KEY" | "RSA PUBLIC KEY" => {
                return Err(unsupported("a public key, not a private key"))
            }
            "CERTIFICATE" => return Err(unsupported("a certificate, not a private key")),
            other => return Err(unsupported(&format!("a `{other}` block"))),
        };
        Self::from_secret(secret, source.clone()).map_err(|_| invalid())
    }

    fn from_secret(secret: p256::SecretKey, source: KeySource) -> Result<Self, ()> {
        super::provider::ensure_crypto_provider();
        let pkcs8 = secret.to_pkcs8_der().map_err(|_| ())?;
        let public_key_pem = secret
            .public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|_| ())?;
        let decoding = DecodingKey::from_ec_pem(public_key_pem.as_bytes()).map_err(|_| ())?;
        Ok(Self {
            encoding: EncodingKey::from_ec_der(pkcs8.as_bytes()),
            decoding,
            public_key_pem,
            source,
        })
    }
}

fn check_curve(curve: Option<ObjectIdentifier>) -> Result<(), String> {
    match curve {
        Some(oid) if oid == OID_P256 => Ok(()),
        Some(oid) if oid == OID_P384 => Err("a P-384 key (ES384)".into()),
        Some(oid) if oid == OID_P521 => Err("a P-521 key (ES512)".into()),
        Some(oid) if oid == OID_SECP256K1 => Err("a secp256k1 key (ES256K)".into()),
        Some(oid) => Err(format!("an EC key on curve {oid}")),
        None => Err("an EC key without a named curve".into()),
    }
}

/// The first PEM block that is not `EC PARAMETERS` (which `openssl ecparam -genkey` writes
/// before the key unless given `-noout`).
fn private_key_block(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let label_end = block["-----BEGIN ".len()..].find("-----")? + "-----BEGIN ".len();
        let label = &block["-----BEGIN ".len()..label_end];
        let end_marker = format!("-----END {label}-----");
        let end = block.find(&end_marker)? + end_marker.len();
        if label != "EC PARAMETERS" {
            // Normalise line endings and indentation so hand-pasted keys still parse.
            let lines: Vec<&str> = block[..end]
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            return Some(lines.join("\n") + "\n");
        }
        rest = &block[end..];
    }
    None
}

#[cfg(test)]
mod curve_tests {
    use super::*;

    #[test]
    fn a_key_on_another_curve_is_refused_with_the_curve_named() {
        assert_eq!(check_curve(Some(OID_P256)), Ok(()));
        for (oid, named) in [
            (OID_P384, "P-384"),
            (OID_P521, "P-521"),
            (OID_SECP256K1, "secp256k1"),
        ] {
            let message = check_curve(Some(oid)).unwrap_err();
            assert!(message.contains(named), "{message}");
        }
        let other = ObjectIdentifier::new_unwrap("1.2.3.4");
        assert!(check_curve(Some(other)).unwrap_err().contains("1.2.3.4"));
        assert!(check_curve(None)
            .unwrap_err()
            .contains("without a named curve"));
    }
}
