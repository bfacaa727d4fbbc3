//! Where an [`Authenticator`](super::Authenticator) lives: its mount paths and its session
//! keys.

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

/// The session keys of one strategy, namespaced by its name.
#[derive(Debug)]
pub(super) struct SessionKeys {
    pub(super) name: String,
    pub(super) login: String,
    pub(super) identity: String,
    pub(super) user: String,
    pub(super) reauth: String,
}

impl SessionKeys {
    pub(super) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            login: format!("{name}.login"),
            identity: format!("{name}.id"),
            user: format!("{name}.user"),
            reauth: format!("{name}.reauth"),
        }
    }
}
