//! lqx-core: the lqx domain. Everything that is not transport (lqx-server) or terminal (lqx-cli).
//!
//! Heavy parts sit behind features: `server` (storage engines, password hashing, JWT,
//! webhooks), `libvirt` (the libvirt driver). With default features off this crate is the
//! model plus the API types and client, which is all the CLI links.

pub mod api;
#[cfg(feature = "server")]
pub mod compute;
pub mod error;
pub mod model;

pub mod alert;
pub mod cluster_file;
pub mod drs;
pub mod events;
pub mod ha;
pub mod placement;
pub mod power;

#[cfg(feature = "server")]
pub mod agent;
#[cfg(feature = "server")]
pub mod auth;
#[cfg(feature = "server")]
pub mod background;
#[cfg(feature = "server")]
pub mod driver;
#[cfg(feature = "server")]
pub mod fence;
#[cfg(feature = "server")]
pub mod handover;
#[cfg(feature = "server")]
pub mod leader;
#[cfg(feature = "server")]
pub mod retention;
#[cfg(feature = "server")]
pub mod saga;
#[cfg(feature = "server")]
pub mod store;

pub use error::{Error, ErrorKind, Result};
