//! `DriverError`: what can go wrong talking to a hypervisor, in kinds a caller can act on.

use crate::{Error, ErrorKind};

/// The error of every [`super::Hypervisor`] operation.
///
/// Clone and comparable so the simulated hypervisor can inject it and tests can match it. The
/// payload is a message safe to show an operator (ids, names, libvirt's own text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// A domain (or volume) with this id or name exists already.
    #[error("Already exists: {0}")]
    AlreadyExists(String),
    /// No such domain, storage pool, volume or hypervisor.
    #[error("Not found: {0}")]
    NotFound(String),
    /// The domain is in the wrong state for the operation (start a running domain, ...).
    #[error("Invalid state: {0}")]
    InvalidState(String),
    /// The hypervisor cannot do this at all (e.g. live migration on the test driver).
    #[error("Unsupported: {0}")]
    Unsupported(String),
    /// The hypervisor cannot be reached (connection lost, daemon down).
    #[error("Hypervisor unavailable: {0}")]
    Unavailable(String),
    /// The operation did not finish in time (e.g. a guest ignored the ACPI shutdown).
    #[error("Timed out: {0}")]
    Timeout(String),
    /// Not enough memory (or another resource) on the host to run the domain.
    #[error("Insufficient resources: {0}")]
    Exhausted(String),
    /// The domain spec is malformed.
    #[error("Invalid domain spec: {0}")]
    Invalid(String),
    /// Anything else the hypervisor reported.
    #[error("Hypervisor error: {0}")]
    Other(String),
}

/// The kind of a [`DriverError`], without its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DriverErrorKind {
    AlreadyExists,
    NotFound,
    InvalidState,
    Unsupported,
    Unavailable,
    Timeout,
    Exhausted,
    Invalid,
    Other,
}

impl DriverError {
    pub fn kind(&self) -> DriverErrorKind {
        match self {
            DriverError::AlreadyExists(_) => DriverErrorKind::AlreadyExists,
            DriverError::NotFound(_) => DriverErrorKind::NotFound,
            DriverError::InvalidState(_) => DriverErrorKind::InvalidState,
            DriverError::Unsupported(_) => DriverErrorKind::Unsupported,
            DriverError::Unavailable(_) => DriverErrorKind::Unavailable,
            DriverError::Timeout(_) => DriverErrorKind::Timeout,
            DriverError::Exhausted(_) => DriverErrorKind::Exhausted,
            DriverError::Invalid(_) => DriverErrorKind::Invalid,
            DriverError::Other(_) => DriverErrorKind::Other,
        }
    }

    /// The message without the kind prefix.
    pub fn message(&self) -> &str {
        match self {
            DriverError::AlreadyExists(m)
            | DriverError::NotFound(m)
            | DriverError::InvalidState(m)
            | DriverError::Unsupported(m)
            | DriverError::Unavailable(m)
            | DriverError::Timeout(m)
            | DriverError::Exhausted(m)
            | DriverError::Invalid(m)
            | DriverError::Other(m) => m,
        }
    }
}

impl From<DriverError> for Error {
    fn from(e: DriverError) -> Self {
        let kind = match e.kind() {
            DriverErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
            DriverErrorKind::NotFound => ErrorKind::NotFound,
            // Both mean "not possible in the current situation"; the caller may fall back
            // (destroy after a failed shutdown, cold after a refused live migration).
            DriverErrorKind::InvalidState | DriverErrorKind::Unsupported => ErrorKind::FailedPrecondition,
            DriverErrorKind::Unavailable => ErrorKind::Unavailable,
            DriverErrorKind::Timeout => ErrorKind::DeadlineExceeded,
            DriverErrorKind::Exhausted => ErrorKind::ResourceExhausted,
            DriverErrorKind::Invalid => ErrorKind::InvalidArgument,
            DriverErrorKind::Other => return Error::internal(e),
        };
        Error::new(kind, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_to_core_error_kinds() {
        let cases = [
            (DriverError::AlreadyExists("x".into()), ErrorKind::AlreadyExists),
            (DriverError::NotFound("x".into()), ErrorKind::NotFound),
            (DriverError::InvalidState("x".into()), ErrorKind::FailedPrecondition),
            (DriverError::Unsupported("x".into()), ErrorKind::FailedPrecondition),
            (DriverError::Unavailable("x".into()), ErrorKind::Unavailable),
            (DriverError::Timeout("x".into()), ErrorKind::DeadlineExceeded),
            (DriverError::Exhausted("x".into()), ErrorKind::ResourceExhausted),
            (DriverError::Invalid("x".into()), ErrorKind::InvalidArgument),
            (DriverError::Other("x".into()), ErrorKind::Internal),
        ];
        for (driver, kind) in cases {
            assert_eq!(Error::from(driver).kind, kind);
        }
    }

    #[test]
    fn other_hides_libvirt_text_from_clients() {
        let e = Error::from(DriverError::Other("/var/lib/secret path".into()));
        assert!(!e.message.contains("secret"));
        assert!(e.source.is_some());
    }
}
