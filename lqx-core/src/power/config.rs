//! The server's `power:` section: how each host's power is controlled (its BMC over Redfish
//! or IPMI, or Wake-on-LAN), keyed by node name, and how often changes are followed.
//!
//! ```yaml
//! power:
//!   poll_interval: 5s          # how often a host that is powering on/off is checked
//!   transition_timeout: 10m    # a host not on/off by then is marked unknown (and an event says so)
//!   nodes:
//!     node-1: {kind: redfish, address: "https://10.0.0.11", username: lqx, password_file: /etc/lqx/bmc-node-1}
//!     node-2: {kind: ipmi, address: "10.0.0.12", username: lqx, password_file: /etc/lqx/bmc-node-2}
//!     node-3: {kind: wol, address: "52:54:00:12:34:56"}   # power-on only
//! ```

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

/// Which protocol reaches a host's power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BmcKind {
    /// DMTF Redfish over HTTPS: `ComputerSystem.Reset`.
    Redfish,
    /// IPMI 2.0 (RMCP+, `ipmitool -I lanplus`).
    Ipmi,
    /// Wake-on-LAN magic packet: power-on only.
    Wol,
}

impl BmcKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BmcKind::Redfish => "redfish",
            BmcKind::Ipmi => "ipmi",
            BmcKind::Wol => "wol",
        }
    }
}

/// One host's power controller. Its `Debug` hides the password.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BmcConfig {
    pub kind: BmcKind,
    /// Redfish: the BMC's base URL (`https://bmc-1`, `https://10.0.0.11:8443`); IPMI: host or
    /// host:port (623 when absent); Wake-on-LAN: the host's MAC address.
    pub address: String,
    #[serde(default)]
    pub username: Option<String>,
    /// The password in the config file itself; prefer `password_file`.
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding the password (first line; read at start-up).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Redfish: the system to control (`/redfish/v1/Systems/1`, or just its id); when absent
    /// the only member of `/redfish/v1/Systems` (more than one is an error naming them).
    #[serde(default)]
    pub system: Option<String>,
    /// Redfish: a PEM CA certificate to verify the BMC's certificate against (besides the
    /// system's roots), for BMCs with a private CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Redfish: skip certificate verification and allow plain `http://`. Lab use only.
    #[serde(default)]
    pub insecure: bool,
    /// IPMI: the RMCP+ cipher suite (`ipmitool -C`); ipmitool's default when absent.
    #[serde(default)]
    pub cipher_suite: Option<u8>,
    /// Wake-on-LAN: where to send the magic packet (default `255.255.255.255:9`; a subnet's
    /// directed broadcast such as `10.0.0.255:9` crosses fewer assumptions).
    #[serde(default)]
    pub broadcast: Option<String>,
    /// Time limit for one request to the BMC.
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(10)
}

impl std::fmt::Debug for BmcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BmcConfig")
            .field("kind", &self.kind)
            .field("address", &self.address)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_file", &self.password_file)
            .field("system", &self.system)
            .field("ca_file", &self.ca_file)
            .field("insecure", &self.insecure)
            .field("cipher_suite", &self.cipher_suite)
            .field("broadcast", &self.broadcast)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl BmcConfig {
    /// A config of `kind` at `address` with every option at its default.
    pub fn new(kind: BmcKind, address: impl Into<String>) -> Self {
        BmcConfig {
            kind,
            address: address.into(),
            username: None,
            password: None,
            password_file: None,
            system: None,
            ca_file: None,
            insecure: false,
            cipher_suite: None,
            broadcast: None,
            timeout: default_request_timeout(),
        }
    }
}

/// The `power:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PowerConfig {
    /// How often hosts that are powering on or off are checked.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// A host still not on (or off) this long after the request is marked `unknown`.
    #[serde(with = "humantime_serde")]
    pub transition_timeout: Duration,
    /// Controllers by node name.
    pub nodes: BTreeMap<String, BmcConfig>,
}

impl Default for PowerConfig {
    fn default() -> Self {
        PowerConfig {
            poll_interval: Duration::from_secs(5),
            transition_timeout: Duration::from_secs(600),
            nodes: BTreeMap::new(),
        }
    }
}

impl BmcConfig {
    /// The password: `password_file`'s first line (trailing newline dropped), else `password`.
    pub fn read_password(&self) -> Result<Option<String>, super::PowerError> {
        if let Some(f) = &self.password_file {
            let text = std::fs::read_to_string(f).map_err(|e| {
                super::PowerError::Controller(format!("cannot read the BMC password file {}: {e}", f.display()))
            })?;
            return Ok(Some(text.lines().next().unwrap_or_default().to_string()));
        }
        Ok(self.password.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind_and_refuses_unknown_keys() {
        let c: PowerConfig = serde_norway::from_str(
            "poll_interval: 2s\nnodes:\n  n1: {kind: redfish, address: 'https://bmc', username: u, password_file: /p, ca_file: /ca.pem}\n  n2: {kind: ipmi, address: '10.0.0.2:6230', cipher_suite: 3, timeout: 3s}\n  n3: {kind: wol, address: '52:54:00:12:34:56'}\n",
        )
        .unwrap();
        assert_eq!(c.poll_interval, Duration::from_secs(2));
        assert_eq!(c.transition_timeout, Duration::from_secs(600));
        assert_eq!(c.nodes["n1"].kind, BmcKind::Redfish);
        assert!(!c.nodes["n1"].insecure, "verification is on unless asked");
        assert_eq!(c.nodes["n2"].cipher_suite, Some(3));
        assert_eq!(c.nodes["n2"].timeout, Duration::from_secs(3));
        assert_eq!(c.nodes["n3"].kind, BmcKind::Wol);
        let e = serde_norway::from_str::<PowerConfig>("nodes:\n  n1: {kind: redfish, address: x, pasword: y}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pasword"), "{e}");
        assert!(serde_norway::from_str::<PowerConfig>("nodes:\n  n1: {kind: smoke, address: x}\n").is_err());
        let mut c = BmcConfig::new(BmcKind::Ipmi, "h");
        c.password = Some("hunter2".into());
        assert!(!format!("{c:?}").contains("hunter2"), "no password in logs");
    }
}
