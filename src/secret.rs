//! Secret strings that must never reach a log.

use std::fmt;

use subtle::ConstantTimeEq;

macro_rules! secret_string {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Its `Debug` output is redacted, it has no `Display`, and it is compared in constant
        /// time with [`secret_eq`](Self::secret_eq) rather than `==`.
        #[derive(Clone, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret itself. Mind where it goes.
            pub fn secret(&self) -> &str {
                &self.0
            }

            /// Compares two secrets in constant time (for equal lengths).
            pub fn secret_eq(&self, other: &Self) -> bool {
                self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_string!(
    /// A music user token: the opaque credential MusicKit hands back once a user allows the
    /// app. It grants access to the user's library, so it is a secret.
    MusicUserToken
);

secret_string!(
    /// A MusicAPI client secret (a password with full access to the account; backend only).
    ClientSecret
);

secret_string!(
    /// A refresh token from an OpenID Connect provider (Sign in with Apple): lets the app check
    /// with the provider later that the user's authorization still stands. Never kept in the
    /// session; the sign-in hook receives it for apps that store it.
    RefreshToken
);
