//! Options of the flow around a strategy, with their defaults.

use std::time::Duration;

use crate::clock::{system_clock, Clock, SharedClock};
use crate::error::ConfigError;

/// Default time a session outlives what it holds: 7 days, so a user who comes back within a
/// week of the credential's end still gets the re-login prompt.
pub const DEFAULT_SESSION_MARGIN: Duration = Duration::from_secs(7 * 86_400);

/// Default longest wait for a request body on the crate's routes: 10 seconds. A body that has
/// not arrived by then is answered `408` (`request_timeout`).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Default lifetime of a login state: 10 minutes.
pub const DEFAULT_STATE_TTL: Duration = Duration::from_secs(600);

/// Options of the flow around a strategy: where success, failure and logout go, how long a
/// login may take, how long sessions are kept, which requests count as same-origin, the
/// clock. Set them on the [`Authenticator`](crate::Authenticator) (or, for Apple Music, on
/// its config, which hands them to the authenticator). Every setter documents its default;
/// [`check`](Self::check) runs at mount.
#[derive(Clone)]
pub struct FlowOptions {
    pub(crate) success_target: String,
    pub(crate) failure_target: Option<String>,
    pub(crate) logout_target: String,
    pub(crate) state_ttl: Duration,
    pub(crate) session_margin: Duration,
    pub(crate) public_origin: Option<String>,
    pub(crate) trust_forwarded_headers: bool,
    pub(crate) allow_get_callback: bool,
    pub(crate) body_timeout: Duration,
    pub(crate) clock: SharedClock,
}

impl std::fmt::Debug for FlowOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowOptions")
            .field("success_target", &self.success_target)
            .field("failure_target", &self.failure_target)
            .field("logout_target", &self.logout_target)
            .field("state_ttl", &self.state_ttl)
            .field("session_margin", &self.session_margin)
            .field("public_origin", &self.public_origin)
            .field("trust_forwarded_headers", &self.trust_forwarded_headers)
            .field("allow_get_callback", &self.allow_get_callback)
            .field("body_timeout", &self.body_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for FlowOptions {
    fn default() -> Self {
        Self {
            success_target: "/".into(),
            failure_target: None,
            logout_target: "/".into(),
            state_ttl: DEFAULT_STATE_TTL,
            session_margin: DEFAULT_SESSION_MARGIN,
            public_origin: None,
            trust_forwarded_headers: false,
            allow_get_callback: false,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            clock: system_clock(),
        }
    }
}

impl FlowOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where a successful sign-in goes when the login had no `return_to` (default `/`).
    pub fn success_target(mut self, path: impl Into<String>) -> Self {
        self.success_target = path.into();
        self
    }
    /// Where browsers go after a failed sign-in, with `?error=…&reason=…` added. Unset (the
    /// default), failures are answered in place with an HTML page or JSON.
    pub fn failure_target(mut self, path: impl Into<String>) -> Self {
        self.failure_target = Some(path.into());
        self
    }
    /// Where `POST …/logout` sends the browser (default `/`).
    pub fn logout_target(mut self, path: impl Into<String>) -> Self {
        self.logout_target = path.into();
        self
    }
    /// How long a login may take from login page to callback (default 10 minutes; 1 s or
    /// more).
    pub fn state_ttl(mut self, ttl: Duration) -> Self {
        self.state_ttl = ttl;
        self
    }
    /// How long a server-side session outlives what it holds: the credential's end, or a
    /// re-login mark (default [`DEFAULT_SESSION_MARGIN`], 7 days).
    pub fn session_margin(mut self, margin: Duration) -> Self {
        self.session_margin = margin;
        self
    }
    /// The app's public origin (`https://app.example`). When set, it is the only origin the
    /// same-origin checks (logout, token entry) accept in `Origin` headers; unset, the
    /// request's own scheme and `Host` are. Set it behind a TLS-terminating proxy.
    pub fn public_origin(mut self, origin: impl Into<String>) -> Self {
        self.public_origin = Some(origin.into());
        self
    }
    /// Believe `Forwarded` / `X-Forwarded-Host` / `X-Forwarded-Proto` for the request's own
    /// origin when no [`public_origin`](Self::public_origin) is set (default `false`: any
    /// client can send them). Only behind a proxy that sets them itself.
    pub fn trust_forwarded_headers(mut self, trust: bool) -> Self {
        self.trust_forwarded_headers = trust;
        self
    }
    /// Also accept the callback by `GET` (default `false`: `GET …/callback` answers `405`
    /// with `Allow: POST`). Only for clients that need it: a GET callback puts its values in
    /// a URL, where browser history and access logs keep them.
    pub fn allow_get_callback(mut self, allow: bool) -> Self {
        self.allow_get_callback = allow;
        self
    }
    /// How long the crate's routes wait for a request body (default
    /// [`DEFAULT_BODY_TIMEOUT`], 10 s); later is answered `408` (`request_timeout`).
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }
    /// Where every expiry is read from (default the system clock); tests pass a
    /// [`ManualClock`](crate::ManualClock). Set on an
    /// [`Authenticator`](crate::Authenticator), it also becomes the clock of the strategy
    /// the authenticator wraps (tokens it signs, identities it stamps, `id_token` checks).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = SharedClock::new(clock);
        self
    }

    /// The current time of the flow's clock.
    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// Checks every option: targets are same-site paths or absolute http(s) URLs, the state
    /// lives at least a second, the public origin is an origin.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.state_ttl < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "state TTL",
                &format!("{:?}", self.state_ttl),
                "1 second or more",
            ));
        }
        for (name, target) in [
            ("success target", Some(&self.success_target)),
            ("logout target", Some(&self.logout_target)),
            ("failure target", self.failure_target.as_ref()),
        ] {
            if let Some(target) = target {
                let absolute = url::Url::parse(target)
                    .ok()
                    .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
                if super::state::safe_return_to(target).is_none() && !absolute {
                    return Err(ConfigError::invalid(
                        name,
                        target,
                        "a path such as /home, or an absolute http(s) URL",
                    ));
                }
            }
        }
        if let Some(origin) = &self.public_origin {
            crate::developer_token::check_origin_pub(origin)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(options: FlowOptions) -> String {
        options.check().unwrap_err().to_string()
    }

    #[test]
    fn a_bad_setting_is_refused_with_its_name_and_good_ones_pass() {
        assert!(FlowOptions::new().check().is_ok());
        let good = FlowOptions::new()
            .success_target("https://app.example/library")
            .failure_target("/signin-failed")
            .logout_target("/")
            .state_ttl(Duration::from_secs(1))
            .public_origin("https://app.example");
        assert!(good.check().is_ok(), "{:?}", good.check());
        assert!(
            refused(FlowOptions::new().state_ttl(Duration::from_millis(999))).contains("state TTL")
        );
        assert!(
            refused(FlowOptions::new().success_target("//evil.example")).contains("success target")
        );
        assert!(
            refused(FlowOptions::new().logout_target("javascript:alert(1)"))
                .contains("logout target")
        );
        assert!(
            refused(FlowOptions::new().failure_target("ftp://x.example/"))
                .contains("failure target")
        );
        assert!(FlowOptions::new()
            .public_origin("https://app.example/path")
            .check()
            .is_err());
    }
}
