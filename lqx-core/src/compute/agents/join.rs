//! Joining: a one-time join token for a node credential (only its hash stored, found by its
//! prefix), and checking that credential on every call of the node's agent.

use super::*;

/// The node's current credential: `{"prefix": ..., "hash": ...}`.
pub(super) fn credential_key(node: NodeId) -> String {
    format!("node_credential/{node}")
}

/// Which node a credential prefix belongs to.
fn prefix_key(prefix: &str) -> String {
    format!("node_credential_prefix/{prefix}")
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct StoredCredential {
    prefix: String,
    /// Hex SHA-256 of the whole credential.
    hash: String,
}

impl Agents {
    /// Joins a host: spends the join token, creates or refreshes the node record and
    /// returns the node credential (shown this once).
    pub async fn register(&self, req: pb::RegisterRequest) -> Result<pb::RegisterResponse> {
        crate::model::validate::name("name", &req.name)?;
        if req.cpu_cores == 0 || req.memory_mib == 0 {
            return Err(Error::invalid("cpu_cores", "the host must report its CPUs and memory"));
        }
        self.inner.compute.redeem_join_token(&req.join_token, &req.name).await?;
        let info = NodeInfo {
            hostname: if req.hostname.is_empty() {
                req.name.clone()
            } else {
                req.hostname.clone()
            },
            cpus: req.cpu_cores,
            memory_mib: req.memory_mib,
            cpu_model: req.cpu_model.clone(),
        };
        let mut reg = NodeRegistration::new(req.name.clone(), req.libvirt_uri.clone());
        reg.hostname = info.hostname.clone();
        reg.management_address = req.management_address.clone();
        reg.labels = req.labels.clone().into_iter().collect();
        // attach_node reads the capacity through the Hypervisor trait: a detached link answers
        // node_info from the registration. The real link is installed under the node's id.
        let probe = Arc::new(self.new_link(NodeId::new(), &req.name, info.clone()));
        let node = self.inner.compute.attach_node(reg, probe).await?;

        let secret = apikey::generate(SecretKind::NodeCredential);
        let stored = StoredCredential {
            prefix: secret.prefix.clone(),
            hash: secret.hash.clone(),
        };
        let store = &self.inner.compute.store;
        store.kv_put(&prefix_key(&secret.prefix), &node.id.to_string()).await?;
        // Written last: from here on the old credential (another prefix) is refused.
        store
            .kv_put(
                &credential_key(node.id),
                &serde_json::to_string(&stored).map_err(Error::internal)?,
            )
            .await?;
        write(&self.inner.credentials).retain(|_, (n, _)| *n != node.id);
        write(&self.inner.credentials).insert(secret.prefix.clone(), (node.id, secret.hash.clone()));
        let credential = secret.secret.expose().to_string();

        let link = self.install(node.id, &node.name, info);
        self.rebuild(&link).await?;
        info!(node = %node.id, name = %node.name, "host joined");
        let t = self.inner.timing;
        Ok(pb::RegisterResponse {
            node_id: node.id.to_string(),
            node_credential: credential,
            heartbeat_interval_seconds: secs(t.heartbeat_interval),
            lease_ttl_seconds: secs(t.lease_ttl),
            self_fence_after_seconds: secs(t.self_fence_after),
        })
    }

    /// The node a credential belongs to; Unauthenticated when it is not valid.
    pub async fn authenticate(&self, credential: &str) -> Result<NodeId> {
        let bad = || Error::unauthenticated("invalid node credential");
        let prefix = apikey::parse_secret(SecretKind::NodeCredential, credential).ok_or_else(bad)?;
        let cached = read(&self.inner.credentials).get(prefix).cloned();
        let (node, hash) = match cached {
            Some(c) => c,
            None => {
                let store = &self.inner.compute.store;
                let (node, _) = store.kv_get(&prefix_key(prefix)).await?.ok_or_else(bad)?;
                let node = NodeId::parse("node", &node).map_err(Error::internal)?;
                let (rec, _) = store.kv_get(&credential_key(node)).await?.ok_or_else(bad)?;
                let rec: StoredCredential = serde_json::from_str(&rec).map_err(Error::internal)?;
                if rec.prefix != prefix {
                    // Replaced by a later join.
                    return Err(bad());
                }
                write(&self.inner.credentials).insert(prefix.to_string(), (node, rec.hash.clone()));
                (node, rec.hash)
            }
        };
        if apikey::verify_secret(credential, &hash) {
            Ok(node)
        } else {
            Err(bad())
        }
    }

    /// Authenticates a call made for `claimed` (the request's node id).
    pub(super) async fn authorize(&self, credential: &str, claimed: &str) -> Result<NodeId> {
        let node = self.authenticate(credential).await?;
        if claimed != node.to_string() {
            return Err(Error::permission_denied(
                "this node credential cannot act for another node",
            ));
        }
        Ok(node)
    }
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs().max(1)).unwrap_or(u32::MAX)
}
