//! Types and services generated from proto/ (gRPC via tonic-prost, proto3 JSON via pbjson),
//! and the proto <-> model conversions.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod auth {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/limiquantix.auth.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/limiquantix.auth.v1.serde.rs"));
    }
}
pub mod compute {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/limiquantix.compute.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/limiquantix.compute.v1.serde.rs"));
    }
}
pub mod alert {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/limiquantix.alert.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/limiquantix.alert.v1.serde.rs"));
    }
}
pub mod drs {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/limiquantix.drs.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/limiquantix.drs.v1.serde.rs"));
    }
}
pub mod ha {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/limiquantix.ha.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/limiquantix.ha.v1.serde.rs"));
    }
}
pub mod events {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/limiquantix.events.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/limiquantix.events.v1.serde.rs"));
    }
}
pub mod node {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/limiquantix.node.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/limiquantix.node.v1.serde.rs"));
    }
}

/// The encoded FileDescriptorSet of every lqx proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/lqx_descriptor.bin"));

pub mod project {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/limiquantix.project.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/limiquantix.project.v1.serde.rs"));
    }
}
pub mod convert;
