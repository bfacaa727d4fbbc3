//! Where an [`Authenticator`](super::Authenticator) lives: its mount paths (its session keys
//! are the session layer's, [`StrategyKeys`](crate::session_records::StrategyKeys)).

/// The mount prefix and the paths under it, computed once at mount.
#[derive(Debug)]
pub(super) struct MountPaths {
    pub(super) prefix: String,
    pub(super) login: String,
    pub(super) callback: String,
}

impl MountPaths {
    pub(super) fn new(prefix: &str) -> Self {
        let prefix = prefix.trim_end_matches('/');
        Self {
            prefix: prefix.to_owned(),
            login: format!("{prefix}/login"),
            callback: format!("{prefix}/callback"),
        }
    }
}
