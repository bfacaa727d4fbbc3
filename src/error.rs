//! Configuration errors, shared by every builder of the crate.

use crate::developer_token::KeyError;

/// A setting was missing or wrong. Raised at start-up (by `build`, `from_env`), never per
/// request. Messages quote the offending value (settings are not secrets; keys are never
/// quoted) and say what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required setting (often an environment variable) is not set.
    #[error("{name} is not set: {expected}")]
    Missing {
        /// The setting or environment variable.
        name: String,
        /// What it should hold.
        expected: String,
    },
    /// A setting has a value of the wrong form.
    #[error("{name} is invalid (got {value:?}): expected {expected}")]
    Invalid {
        /// The setting or environment variable.
        name: String,
        /// The value given.
        value: String,
        /// What it should look like.
        expected: String,
    },
    /// A developer token lifetime above Apple's limit.
    #[error("developer token lifetime of {requested_secs} s is too long: Apple accepts at most {max_secs} s (about 182 days)")]
    LifetimeTooLong {
        /// The lifetime asked for, in seconds.
        requested_secs: u64,
        /// The limit, 15 777 000 s.
        max_secs: u64,
    },
    /// The signing key could not be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The first token could not be signed (a key the crypto backend refuses).
    #[error("could not sign a developer token: {0}")]
    Signing(String),
}

impl ConfigError {
    pub(crate) fn invalid(
        name: impl Into<String>,
        value: &str,
        expected: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            name: name.into(),
            value: value.chars().take(200).collect(),
            expected: expected.into(),
        }
    }
}
