//! The login state: what a login in progress keeps in the session, the proof a callback
//! offers, and the `return_to` check.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::FlowError;
use super::params::CallbackParams;

/// Session data of a login in progress.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct PendingLogin {
    pub(crate) state: String,
    pub(crate) created: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) return_to: Option<String>,
}

impl PendingLogin {
    pub(crate) fn new(created: i64, return_to: Option<String>) -> Self {
        Self {
            state: oauth2::CsrfToken::new_random().secret().clone(),
            created,
            return_to,
        }
    }
}

/// How many logins may be pending in one session at once: a login page opened by another
/// site (a bare navigation to `…/login`) adds one instead of replacing the person's own, and
/// the oldest goes first past this bound.
pub(crate) const MAX_PENDING_LOGINS: usize = 3;

/// The logins pending in a session, oldest first (stored as a JSON array; a single object,
/// as earlier versions stored it, reads as a list of one).
#[derive(Default, Serialize)]
#[serde(transparent)]
pub(crate) struct PendingLogins(Vec<PendingLogin>);

impl<'de> Deserialize<'de> for PendingLogins {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Many(Vec<PendingLogin>),
            One(PendingLogin),
        }
        Ok(match Stored::deserialize(d)? {
            Stored::Many(logins) => Self(logins),
            Stored::One(login) => Self(vec![login]),
        })
    }
}

impl PendingLogins {
    /// Adds `login`, dropping the ones past their end (`ttl` seconds after they began, at
    /// `now`) and, past [`MAX_PENDING_LOGINS`], the oldest.
    pub(crate) fn push(&mut self, login: PendingLogin, now: i64, ttl: i64) {
        self.0.retain(|p| now.saturating_sub(p.created) < ttl);
        self.0.push(login);
        let extra = self.0.len().saturating_sub(MAX_PENDING_LOGINS);
        self.0.drain(..extra);
    }

    /// The most recent login, whose end is the latest.
    pub(crate) fn latest(&self) -> Option<&PendingLogin> {
        self.0.iter().max_by_key(|p| p.created)
    }

    /// Whether no login is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Takes out the login `proof` belongs to (every one is compared, in constant time);
    /// the error [`check_proof`] gives when none does.
    pub(crate) fn take_matching(
        &mut self,
        proof: StateProof<'_>,
    ) -> Result<PendingLogin, FlowError> {
        let mut found = None;
        for (i, login) in self.0.iter().enumerate() {
            if proof_matches(login, proof) {
                found = Some(i);
            }
        }
        match found {
            Some(i) => Ok(self.0.remove(i)),
            None => check_proof(None, proof),
        }
    }
}

/// Whether `proof` is `login`'s, as [`check_proof`] decides.
fn proof_matches(login: &PendingLogin, proof: StateProof<'_>) -> bool {
    let equal = |a: &str, b: &str| bool::from(a.as_bytes().ct_eq(b.as_bytes()));
    match (proof.state.filter(|s| !s.is_empty()), proof.handback) {
        (Some(state), _) => equal(&login.state, state),
        (None, Some(handback)) => equal(&handback_of(&login.state), handback),
        (None, None) => false,
    }
}

/// The login's hand-back value: derived from its state (SHA-256 with its own label), so it
/// needs no room in the session. It may appear in URLs (the return URL given to Apple); the
/// state cannot be had from it, and it cannot be had without the state.
pub(crate) fn handback_of(state: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"actix-apple-music handback\0")
        .chain_update(state.as_bytes())
        .finalize();
    URL_SAFE_NO_PAD.encode(digest)
}

/// What a callback offers as proof that it belongs to the login this session started: the
/// login's `state`, or its `handback` (for a page that returns through a URL of the app, see
/// [`LoginRequest::handback`](crate::LoginRequest::handback)).
#[derive(Clone, Copy, Default)]
pub struct StateProof<'a> {
    state: Option<&'a str>,
    handback: Option<&'a str>,
}

impl std::fmt::Debug for StateProof<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Which proof it is, not its value.
        f.debug_struct("StateProof")
            .field("state", &self.state.map(|_| "…"))
            .field("handback", &self.handback.map(|_| "…"))
            .finish()
    }
}

impl<'a> StateProof<'a> {
    /// The `state` value a callback carries.
    pub fn state(state: Option<&'a str>) -> Self {
        Self {
            state,
            handback: None,
        }
    }

    /// The `state` and `handback` parameters of a callback.
    pub fn from_params(params: &'a CallbackParams) -> Self {
        Self {
            state: params.get("state"),
            handback: params.get("handback"),
        }
    }
}

/// Checks `proof` against the pending login, in constant time. A `state` wins over a
/// `handback` when both are given; a `handback` parameter that is empty or wrong, or given
/// when the session has no login, is [`FlowError::HandbackMismatch`].
pub(crate) fn check_proof(
    pending: Option<PendingLogin>,
    proof: StateProof<'_>,
) -> Result<PendingLogin, FlowError> {
    fn nonempty(v: Option<&str>) -> Option<&str> {
        v.filter(|s| !s.is_empty())
    }
    let equal = |a: &str, b: &str| bool::from(a.as_bytes().ct_eq(b.as_bytes()));
    match (nonempty(proof.state), proof.handback) {
        (Some(state), _) => match pending {
            Some(p) if equal(&p.state, state) => Ok(p),
            _ => Err(FlowError::StateMismatch),
        },
        (None, Some(handback)) => match pending {
            Some(p) if equal(&handback_of(&p.state), handback) => Ok(p),
            _ => Err(FlowError::HandbackMismatch),
        },
        (None, None) => Err(FlowError::MissingState),
    }
}

/// Accepts a `return_to` only as a same-site path: `/…`, never `//…`, `/\…` or a scheme.
pub(crate) fn safe_return_to(value: &str) -> Option<String> {
    let ok = value.starts_with('/')
        && !value.starts_with("//")
        && !value.starts_with("/\\")
        && value.len() <= 2048
        && !value.chars().any(|c| c.is_control() || c == '\\');
    if !ok {
        return None;
    }
    // Resolve against a dummy origin: whatever the browser would make of it must stay there.
    let base = url::Url::parse("http://return-to.invalid/").ok()?;
    let url = base.join(value).ok()?;
    (url.origin() == base.origin()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(state: &str, created: i64) -> PendingLogin {
        PendingLogin {
            state: state.into(),
            created,
            return_to: None,
        }
    }

    #[test]
    fn a_few_logins_stay_pending_the_oldest_and_the_ended_ones_go() {
        let mut logins = PendingLogins::default();
        for (i, state) in ["a", "b", "c", "d"].iter().enumerate() {
            logins.push(login(state, 100 + i as i64), 100 + i as i64, 600);
        }
        let states: Vec<_> = logins.0.iter().map(|p| p.state.as_str()).collect();
        assert_eq!(
            states,
            ["b", "c", "d"],
            "at most {MAX_PENDING_LOGINS}, oldest out"
        );
        assert_eq!(logins.latest().unwrap().state, "d");
        logins.push(login("e", 800), 800, 600);
        let states: Vec<_> = logins.0.iter().map(|p| p.state.as_str()).collect();
        assert_eq!(states, ["e"], "ended ones are dropped");
        // Any pending one can be spent, once; the others stay.
        logins.push(login("f", 801), 801, 600);
        assert_eq!(
            logins
                .take_matching(StateProof::state(Some("e")))
                .unwrap()
                .state,
            "e"
        );
        assert!(matches!(
            logins.take_matching(StateProof::state(Some("e"))),
            Err(FlowError::StateMismatch)
        ));
        let handback = handback_of("f");
        let proof = StateProof {
            state: None,
            handback: Some(&handback),
        };
        assert_eq!(logins.take_matching(proof).unwrap().state, "f");
        assert!(logins.is_empty());
        assert!(matches!(
            logins.take_matching(StateProof::default()),
            Err(FlowError::MissingState)
        ));
        // The single object earlier versions stored reads as one pending login.
        let old: PendingLogins =
            serde_json::from_str(r#"{"state":"s","created":5,"return_to":"/x"}"#).unwrap();
        assert_eq!(old.0.len(), 1);
        assert_eq!(old.0[0].return_to.as_deref(), Some("/x"));
    }
    use proptest::prelude::{prop_assert_eq, prop_oneof, proptest, Just};
    use proptest::strategy::Strategy as _;

    #[test]
    fn debug_output_names_the_proofs_but_not_their_values() {
        let proof = StateProof::state(Some("the-secret-state"));
        let shown = format!("{proof:?}");
        assert!(!shown.contains("the-secret-state"), "{shown}");
        assert!(shown.contains("state: Some"), "{shown}");
        let login = crate::LoginRequest {
            state: "the-secret-state",
            handback: "the-secret-handback",
            callback_path: "/auth/x/callback",
            prefix: "/auth/x",
            force_dialog: false,
        };
        let shown = format!("{login:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("/auth/x/callback"), "{shown}");
    }

    fn pending(state: &str) -> Option<PendingLogin> {
        Some(PendingLogin {
            state: state.into(),
            created: 0,
            return_to: None,
        })
    }

    fn proof<'a>(state: Option<&'a str>, handback: Option<&'a str>) -> StateProof<'a> {
        StateProof { state, handback }
    }

    #[test]
    fn the_proof_is_the_state_or_the_handback_of_this_login() {
        let h = handback_of("S");
        let ok = |p| check_proof(pending("S"), p).map(|p| p.state);
        assert_eq!(ok(proof(Some("S"), None)), Ok("S".into()));
        assert_eq!(ok(proof(None, Some(&h))), Ok("S".into()));
        assert_eq!(ok(proof(Some("S"), Some("wrong"))), Ok("S".into()));
        assert_eq!(ok(proof(Some("S"), Some(&h))), Ok("S".into()));
        assert_eq!(ok(proof(Some(&h), None)), Err(FlowError::StateMismatch));
        assert_eq!(ok(proof(None, Some("S"))), Err(FlowError::HandbackMismatch));
        let other = handback_of("T");
        assert_eq!(
            ok(proof(None, Some(&other))),
            Err(FlowError::HandbackMismatch)
        );
        assert_eq!(ok(proof(None, Some(""))), Err(FlowError::HandbackMismatch));
        assert_eq!(ok(proof(Some(""), None)), Err(FlowError::MissingState));
        assert_eq!(ok(proof(None, None)), Err(FlowError::MissingState));
        // No login in the session.
        assert_eq!(
            check_proof(None, proof(Some("S"), None)).map(|p| p.state),
            Err(FlowError::StateMismatch)
        );
        assert_eq!(
            check_proof(None, proof(None, Some(&h))).map(|p| p.state),
            Err(FlowError::HandbackMismatch)
        );
    }

    #[test]
    fn fresh_logins_have_distinct_random_states_and_hand_backs() {
        let a = PendingLogin::new(0, None);
        let b = PendingLogin::new(0, None);
        assert_ne!(a.state, b.state);
        assert!(a.state.len() >= 22, "a 128-bit state");
        assert_ne!(handback_of(&a.state), handback_of(&b.state));
        assert_eq!(handback_of(&a.state), handback_of(&a.state));
        assert!(!handback_of(&a.state).contains(&a.state));
        assert_eq!(handback_of(&a.state).len(), 43);
    }

    #[test]
    fn return_to_takes_same_site_paths_only() {
        for good in [
            "/",
            "/library",
            "/a/b?c=d#e",
            "/after%3Fx%3D1",
            "/%2F%2Fevil",
        ] {
            assert_eq!(safe_return_to(good).as_deref(), Some(good), "{good}");
        }
        for bad in [
            "",
            "library",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil",
            "https://evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            " /x",
            "javascript:alert(1)",
            "/a\\b",
        ] {
            assert_eq!(safe_return_to(bad), None, "{bad:?}");
        }
    }

    /// Strings made of what open redirects are made of.
    fn tricky() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("/"),
                Just("\\"),
                Just("."),
                Just(":"),
                Just("@"),
                Just("%"),
                Just("?"),
                Just("#"),
                Just("\t"),
                Just("\n"),
                Just("\r"),
                Just(" "),
                Just("%2f"),
                Just("%5c"),
                Just("evil.example"),
                Just("http"),
                Just("a"),
                Just("\u{0}"),
                Just("\u{3002}"),
                Just("\u{ff0f}"),
                Just("%09"),
                Just("//"),
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn an_accepted_return_to_never_leaves_the_site(value in tricky()) {
            if let Some(accepted) = safe_return_to(&value) {
                prop_assert_eq!(&accepted, &value);
                for base in [
                    "https://app.example/",
                    "https://app.example/deep/page?q=1#f",
                    "http://127.0.0.1:8080/auth/x",
                ] {
                    let base = url::Url::parse(base).unwrap();
                    let resolved = base.join(&value).unwrap();
                    prop_assert_eq!(resolved.origin(), base.origin(), "{:?} left {}", value, base);
                }
            }
        }

        #[test]
        fn return_to_never_panics(value in ".{0,64}") {
            let _ = safe_return_to(&value);
        }
    }
}
