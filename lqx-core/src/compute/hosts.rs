//! The control plane's handles on hypervisor hosts. In-process hosts (the simulated
//! hypervisor, `--dev`, all-in-one libvirt URIs) are driven directly through their
//! [`Hypervisor`]; the node agent reconciles remote hosts.

use crate::driver::Hypervisor;
use crate::model::NodeId;
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Clone, Default)]
pub struct Hosts {
    inner: Arc<RwLock<HashMap<NodeId, Arc<dyn Hypervisor>>>>,
}

impl Hosts {
    pub fn insert(&self, node: NodeId, hv: Arc<dyn Hypervisor>) {
        self.inner.write().unwrap_or_else(|p| p.into_inner()).insert(node, hv);
    }

    pub fn remove(&self, node: NodeId) {
        self.inner.write().unwrap_or_else(|p| p.into_inner()).remove(&node);
    }

    /// The hypervisor of a node, or Unavailable when the control plane cannot reach it.
    pub fn get(&self, node: NodeId) -> Result<Arc<dyn Hypervisor>> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node)
            .cloned()
            .ok_or_else(|| Error::unavailable(format!("node {node} is not connected")).with_retry_after(5))
    }

    pub fn contains(&self, node: NodeId) -> bool {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).contains_key(&node)
    }
}
