//! `AuthError`, the one error of the auth module, and `Secret`, the wrapper that keeps
//! passwords, tokens and keys out of `Debug` output.

use std::{fmt, path::PathBuf};

use crate::model::{Permission, Role};

/// Everything that can go wrong in authentication and authorization. Messages are safe to
/// show a client: they never hold a password, token or key.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Missing credentials")]
    MissingCredentials,
    /// Bad signature, wrong algorithm, wrong issuer or audience, malformed claims, garbage.
    /// Deliberately one message: the client learns nothing about which check failed.
    #[error("Invalid token")]
    InvalidToken,
    #[error("Token expired")]
    TokenExpired,
    #[error("Token not yet valid")]
    TokenNotYetValid,
    #[error("Wrong token type: expected a {expected} token")]
    WrongTokenType { expected: &'static str },
    #[error("Token too large")]
    TokenTooLarge,
    /// Logged out, rotated away, or the user changed (password, role, disabled, deleted).
    #[error("Session revoked")]
    SessionRevoked,
    #[error("Refresh token already used; the session has been revoked")]
    RefreshReuse,
    /// Unknown user or wrong password: one message for both.
    #[error("Invalid username or password")]
    InvalidCredentials,
    /// A proven identity (right password, valid token or key) of a disabled account. Permission
    /// denied, not unauthenticated: logging in again does not help, an administrator must
    /// enable the account (as GitHub answers 403 for a suspended account).
    #[error("Account {username} is disabled; an administrator can enable it (lqx user update {username} --enable)")]
    AccountDisabled { username: String },
    #[error("Invalid API key")]
    InvalidApiKey,
    #[error("A node credential is accepted only by the agent API: this call needs a user token or an API key")]
    NodeCredentialElsewhere,
    #[error("API key expired")]
    ApiKeyExpired,
    #[error("Permission denied: {permission} required")]
    PermissionDenied { permission: Permission },
    #[error("Permission denied: {0}")]
    Forbidden(&'static str),
    #[error("Unknown method")]
    UnknownMethod,
    #[error("Role {requested} is higher than the creator's role {creator}")]
    RoleTooHigh { requested: Role, creator: Role },
    #[error("Too many failed attempts; retry in {retry_after} s")]
    Throttled { retry_after: u64 },
    /// Too many password checks running and waiting (see `hash_limit`).
    #[error("Too many password checks in progress; retry in {retry_after} s")]
    Busy { retry_after: u64 },
    #[error("Password too short: at least {min} characters")]
    PasswordTooShort { min: usize },
    #[error("Password too long: at most {max} bytes")]
    PasswordTooLong { max: usize },
    #[error("Password must not contain the username")]
    PasswordContainsUsername,
    #[error("Invalid {field}: {why}")]
    Invalid { field: &'static str, why: String },
    #[error("Signing key too short: {len} bytes, at least {min} required")]
    KeyTooShort { len: usize, min: usize },
    #[error("Signing key is not valid base64")]
    KeyEncoding,
    #[error("Signing key file {path} is readable by group or others (mode {mode:o}); expected 0600")]
    KeyFileMode { path: PathBuf, mode: u32 },
    #[error("Cannot use signing key file {path}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Password hashing failed")]
    Hash(#[source] argon2::password_hash::Error),
    #[error("Token signing failed")]
    Signing(#[source] jsonwebtoken::errors::Error),
    #[error("Background task failed")]
    Join(#[source] tokio::task::JoinError),
}

impl From<AuthError> for crate::Error {
    fn from(e: AuthError) -> Self {
        use AuthError::*;
        let msg = e.to_string();
        match e {
            MissingCredentials
            | InvalidToken
            | TokenExpired
            | TokenNotYetValid
            | WrongTokenType { .. }
            | TokenTooLarge
            | SessionRevoked
            | RefreshReuse
            | InvalidCredentials
            | InvalidApiKey
            | NodeCredentialElsewhere
            | ApiKeyExpired => crate::Error::unauthenticated(msg),
            PermissionDenied { .. } | Forbidden(_) | UnknownMethod | RoleTooHigh { .. } | AccountDisabled { .. } => {
                crate::Error::permission_denied(msg)
            }
            Throttled { retry_after } | Busy { retry_after } => {
                crate::Error::exhausted(msg).with_retry_after(retry_after)
            }
            PasswordTooShort { .. } | PasswordTooLong { .. } | PasswordContainsUsername => {
                crate::Error::invalid("password", lowercase_first(&msg))
            }
            Invalid { field, ref why } => crate::Error::invalid(field, why),
            KeyTooShort { .. } | KeyEncoding | KeyFileMode { .. } => crate::Error::precondition(msg),
            KeyFile { .. } => crate::Error::precondition(msg).with_source(e),
            Hash(_) | Signing(_) | Join(_) => crate::Error::internal(e),
        }
    }
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A password, token or key. `Debug` and `Display` print `<redacted>`; use
/// [`Secret::expose`] where the value really is needed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn kinds_keep_unauthenticated_and_denied_apart() {
        let e: crate::Error = AuthError::TokenExpired.into();
        assert_eq!(e.kind, ErrorKind::Unauthenticated);
        let e: crate::Error = AuthError::PermissionDenied {
            permission: Permission::VmCreate,
        }
        .into();
        assert_eq!(e.kind, ErrorKind::PermissionDenied);
        assert_eq!(e.message, "Permission denied: vm:create required");
        let e: crate::Error = AuthError::Throttled { retry_after: 8 }.into();
        assert_eq!(e.kind, ErrorKind::ResourceExhausted);
        assert_eq!(e.retry_after, Some(8));
        let e: crate::Error = AuthError::PasswordTooShort { min: 12 }.into();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert_eq!(e.message, "password: password too short: at least 12 characters");
        let e: crate::Error = AuthError::RoleTooHigh {
            requested: Role::Admin,
            creator: Role::Operator,
        }
        .into();
        assert_eq!(e.kind, ErrorKind::PermissionDenied);
        let e: crate::Error = AuthError::AccountDisabled { username: "bob".into() }.into();
        assert_eq!(e.kind, ErrorKind::PermissionDenied);
        assert!(e.message.starts_with("Account bob is disabled"), "{}", e.message);
    }

    #[test]
    fn secret_is_redacted() {
        let s = Secret::new("hunter2hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(s.expose(), "hunter2hunter2");
    }
}
