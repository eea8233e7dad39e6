//! Typed ids: a VmId can never be passed where a NodeId is expected.

use std::{fmt, str::FromStr};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered (v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
            /// Parses an id, with an InvalidArgument error naming `field`.
            pub fn parse(field: &str, s: &str) -> crate::Result<Self> {
                s.parse().map_err(|_| crate::Error::invalid(field, format!("{:?} is not a valid {} id", s, $what)))
            }
        }
        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

typed_id!(/// A virtual machine.
    VmId, "VM");
typed_id!(/// A hypervisor host.
    NodeId, "node");
typed_id!(/// A project (tenant namespace for VMs).
    ProjectId, "project");
typed_id!(/// A user account.
    UserId, "user");
typed_id!(/// An API key (service-account token).
    ApiKeyId, "API key");
typed_id!(/// An alert.
    AlertId, "alert");
typed_id!(/// A DRS recommendation.
    RecommendationId, "recommendation");
typed_id!(/// An audit log entry.
    AuditId, "audit entry");
typed_id!(/// A webhook receiver.
    WebhookId, "webhook");
typed_id!(/// A login session family (refresh-token rotation chain).
    SessionId, "session");

impl ProjectId {
    /// The project every installation has; VMs created without a project land here.
    pub const DEFAULT: ProjectId = ProjectId(Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0001));
}

/// Serde default of records written before projects existed.
pub(crate) fn default_project() -> ProjectId {
    ProjectId::DEFAULT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_the_field() {
        let err = VmId::parse("id", "nope").unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::InvalidArgument);
        assert!(err.message.starts_with("id:"), "{}", err.message);
        let id = VmId::new();
        assert_eq!(VmId::parse("id", &id.to_string()).unwrap(), id);
    }
}
