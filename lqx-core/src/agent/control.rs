//! How the agent reaches the control plane: the [`ControlPlane`] trait, its gRPC client
//! ([`GrpcControlPlane`]), and the conversions between the wire messages of
//! `limiquantix.node.v1` and the agent's types. The control plane's side is
//! `crate::compute::agents`, which also implements this trait for in-process use (tests and
//! all-in-one setups that want the agent path without a socket).

use futures::future::BoxFuture;
use tonic::{Code, metadata::MetadataValue, transport::Channel};

use super::reconcile::{DesiredDomain, MigrationOrder};
use crate::{
    api::node::v1::{self as pb, agent_service_client::AgentServiceClient},
    driver::{DomainSpec, DomainState, DriverError},
    model::VmId,
    {Error, ErrorKind, Result},
};

/// The control plane as the agent sees it.
pub trait ControlPlane: Send + Sync + 'static {
    fn register(&self, req: pb::RegisterRequest) -> BoxFuture<'_, Result<pb::RegisterResponse>>;
    /// One heartbeat, authenticated by the node credential.
    fn heartbeat(&self, credential: String, req: pb::HeartbeatRequest) -> BoxFuture<'_, Result<pb::HeartbeatResponse>>;
}

/// The control plane over gRPC.
#[derive(Clone)]
pub struct GrpcControlPlane {
    client: AgentServiceClient<Channel>,
}

impl GrpcControlPlane {
    /// Over `channel` (built by the caller, with TLS when the URL is https).
    pub fn new(channel: Channel) -> Self {
        GrpcControlPlane {
            client: AgentServiceClient::new(channel),
        }
    }
}

pub(crate) fn authorized<T>(credential: &str, msg: T) -> Result<tonic::Request<T>> {
    let mut r = tonic::Request::new(msg);
    let v: MetadataValue<_> = format!("Bearer {credential}")
        .parse()
        .map_err(|_| Error::invalid("credential", "contains characters not allowed in a header"))?;
    r.metadata_mut().insert("authorization", v);
    Ok(r)
}

/// A gRPC status as an lqx error (its kind from the code, its message as sent).
pub fn from_status(s: tonic::Status) -> Error {
    let kind = match s.code() {
        Code::NotFound => ErrorKind::NotFound,
        Code::AlreadyExists => ErrorKind::AlreadyExists,
        Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidArgument,
        Code::FailedPrecondition => ErrorKind::FailedPrecondition,
        Code::Aborted => ErrorKind::Aborted,
        Code::PermissionDenied => ErrorKind::PermissionDenied,
        Code::Unauthenticated => ErrorKind::Unauthenticated,
        Code::ResourceExhausted => ErrorKind::ResourceExhausted,
        Code::DeadlineExceeded => ErrorKind::DeadlineExceeded,
        Code::Unavailable | Code::Cancelled | Code::Unknown => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    };
    Error::new(kind, s.message().to_string())
}

impl ControlPlane for GrpcControlPlane {
    fn register(&self, req: pb::RegisterRequest) -> BoxFuture<'_, Result<pb::RegisterResponse>> {
        let mut c = self.client.clone();
        Box::pin(async move { c.register(req).await.map(|r| r.into_inner()).map_err(from_status) })
    }

    fn heartbeat(&self, credential: String, req: pb::HeartbeatRequest) -> BoxFuture<'_, Result<pb::HeartbeatResponse>> {
        let mut c = self.client.clone();
        Box::pin(async move {
            c.heartbeat(authorized(&credential, req)?)
                .await
                .map(|r| r.into_inner())
                .map_err(from_status)
        })
    }
}

/// A domain state as sent on the wire (`DomainStatus.state`); `None` for unknown text.
pub fn parse_state(s: &str) -> Option<DomainState> {
    Some(match s {
        "running" => DomainState::Running,
        "paused" => DomainState::Paused,
        "shutting_down" => DomainState::ShuttingDown,
        "shutoff" => DomainState::Shutoff,
        "crashed" => DomainState::Crashed,
        _ => return None,
    })
}

/// The wire name of a driver error's kind, and back (for `DomainStatus.error_kind`).
pub fn error_kind_str(e: &DriverError) -> &'static str {
    match e {
        DriverError::AlreadyExists(_) => "already_exists",
        DriverError::NotFound(_) => "not_found",
        DriverError::InvalidState(_) => "invalid_state",
        DriverError::Unsupported(_) => "unsupported",
        DriverError::Unavailable(_) => "unavailable",
        DriverError::Timeout(_) => "timeout",
        DriverError::Exhausted(_) => "exhausted",
        DriverError::Invalid(_) => "invalid",
        DriverError::Other(_) => "other",
    }
}

pub fn driver_error(kind: &str, message: String) -> DriverError {
    match kind {
        "already_exists" => DriverError::AlreadyExists(message),
        "not_found" => DriverError::NotFound(message),
        "invalid_state" => DriverError::InvalidState(message),
        "unsupported" => DriverError::Unsupported(message),
        "unavailable" => DriverError::Unavailable(message),
        "timeout" => DriverError::Timeout(message),
        "exhausted" => DriverError::Exhausted(message),
        "invalid" => DriverError::Invalid(message),
        _ => DriverError::Other(message),
    }
}

/// A desired domain on the wire.
pub fn desired_to_pb(d: &DesiredDomain, reboot_seq: u64) -> pb::DesiredDomain {
    pb::DesiredDomain {
        vm_id: d.spec.id.to_string(),
        name: d.spec.name.clone(),
        cpu_cores: d.spec.vcpus,
        memory_mib: d.spec.memory_mib,
        desired_state: if d.running { "running" } else { "stopped" }.into(),
        ha_protected: d.ha_protected,
        domain_xml: String::new(),
        spec_json: serde_json::to_string(&d.spec).unwrap_or_default(),
        force_off: d.force_off,
        reboot_seq,
        migrate: d.migrate.as_ref().map(|m| pb::MigrationOrder {
            migration_id: m.id.clone(),
            destination_uri: m.destination_uri.clone(),
            options_json: serde_json::to_string(&m.options).unwrap_or_default(),
        }),
        incoming_migration: d.incoming,
    }
}

/// A desired domain from the wire, with its reboot sequence number.
pub fn desired_from_pb(d: &pb::DesiredDomain) -> Result<(DesiredDomain, u64)> {
    let id = VmId::parse("domains[].vm_id", &d.vm_id)?;
    let spec: DomainSpec =
        serde_json::from_str(&d.spec_json).map_err(|e| Error::invalid("domains[].spec_json", e.to_string()))?;
    if spec.id != id {
        return Err(Error::invalid("domains[].spec_json", "names another VM than vm_id"));
    }
    let running = match d.desired_state.as_str() {
        "running" => true,
        "stopped" => false,
        other => {
            return Err(Error::invalid(
                "domains[].desired_state",
                format!("{other:?} is not running or stopped"),
            ));
        }
    };
    let migrate = match &d.migrate {
        Some(m) => Some(MigrationOrder {
            id: m.migration_id.clone(),
            destination_uri: m.destination_uri.clone(),
            options: serde_json::from_str(&m.options_json)
                .map_err(|e| Error::invalid("domains[].migrate.options_json", e.to_string()))?,
        }),
        None => None,
    };
    Ok((
        DesiredDomain {
            spec,
            running,
            ha_protected: d.ha_protected,
            force_off: d.force_off,
            migrate,
            incoming: d.incoming_migration,
        },
        d.reboot_seq,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_round_trips_and_rejects_mismatched_ids() {
        let mut d = DesiredDomain::new(DomainSpec::new(VmId::new(), "a<b&\"c'", 2, 512), true);
        d.ha_protected = true;
        d.migrate = Some(MigrationOrder {
            id: "m1".into(),
            destination_uri: "qemu+tls://b/system".into(),
            options: crate::driver::LiveOptions {
                bandwidth_mib_per_sec: 100,
                timeout: Some(std::time::Duration::from_secs(60)),
                ..Default::default()
            },
        });
        let wire = desired_to_pb(&d, 3);
        assert_eq!(desired_from_pb(&wire).unwrap(), (d.clone(), 3));
        let mut bad = wire.clone();
        bad.vm_id = VmId::new().to_string();
        assert_eq!(desired_from_pb(&bad).unwrap_err().kind, ErrorKind::InvalidArgument);
        let mut bad = wire;
        bad.desired_state = "exploded".into();
        assert!(desired_from_pb(&bad).is_err());
    }

    #[test]
    fn error_kinds_round_trip() {
        for e in [
            DriverError::AlreadyExists("x".into()),
            DriverError::Exhausted("x".into()),
            DriverError::Invalid("x".into()),
            DriverError::Other("x".into()),
        ] {
            assert_eq!(driver_error(error_kind_str(&e), "x".into()), e);
        }
        for s in [DomainState::Running, DomainState::Shutoff, DomainState::Crashed] {
            assert_eq!(parse_state(s.as_str()), Some(s));
        }
    }
}
