//! The one edge between the wire and the domain: every proto <-> model conversion, one
//! module per API, and the one update-mask rule ([`mask`]). Proto -> model conversions
//! validate and name the offending field; model -> proto conversions cannot fail.
//!
//! They live in lqx-core, not the server, because the CLI prints with them too (`vm_out`,
//! `node_out`, alert and event protos). Modules over server-only types (sessions, the DRS
//! engine's status, the HA manager's report) are behind the `server` feature. The agent
//! protocol's own conversions (desired domains, driver error kinds) stay with the agent
//! in `agent::control`, which both ends of that protocol use.

pub mod alert;
#[cfg(feature = "server")]
pub mod auth;
pub mod compute;
pub mod drs;
pub mod events;
pub mod ha;
pub mod mask;
pub mod project;
#[cfg(feature = "server")]
pub mod vm_requests;

use crate::{Error, Result};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

pub fn timestamp(t: DateTime<Utc>) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

pub fn opt_timestamp(t: Option<DateTime<Utc>>) -> Option<pbjson_types::Timestamp> {
    t.map(timestamp)
}

pub fn from_timestamp(field: &str, t: &pbjson_types::Timestamp) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)
        .ok_or_else(|| Error::invalid(field, "timestamp out of range"))
}

pub fn labels_in(l: &HashMap<String, String>) -> BTreeMap<String, String> {
    l.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub fn labels_out(l: &BTreeMap<String, String>) -> HashMap<String, String> {
    l.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// An optional idempotency key (`request_id`), bounded.
pub fn request_id_in(s: &str) -> Result<Option<String>> {
    match s.len() {
        0 => Ok(None),
        1..=128 => Ok(Some(s.to_string())),
        _ => Err(Error::invalid("request_id", "must be at most 128 characters")),
    }
}
