//! IPMI 2.0 over RMCP+ through `ipmitool -I lanplus` (`chassis power on|soft|off|status`). The
//! password never goes on ipmitool's command line (where `ps` would show it): `-f FILE` when
//! the config names a password file, else `-E` with `IPMI_PASSWORD` in ipmitool's environment.

use std::{path::PathBuf, process::Stdio, time::Duration};

use futures::future::BoxFuture;
use tokio::process::Command;

use super::{BmcConfig, PowerController, PowerError, PowerState};

pub struct Ipmi {
    host: String,
    port: Option<u16>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    password: Option<String>,
    cipher_suite: Option<u8>,
    timeout: Duration,
    /// The ipmitool binary (`ipmitool` on PATH unless `LQX_IPMITOOL` names another).
    program: String,
}

impl Ipmi {
    pub fn new(cfg: &BmcConfig) -> Result<Ipmi, PowerError> {
        let addr = cfg.address.trim();
        let (host, port) = match addr.rsplit_once(':') {
            // host:port, but not a bare IPv6 address.
            Some((h, p)) if !h.contains(':') || h.ends_with(']') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| PowerError::Unsupported(format!("IPMI address {addr:?}: bad port {p:?}")))?;
                (h.trim_matches(|c| c == '[' || c == ']').to_string(), Some(port))
            }
            _ => (addr.to_string(), None),
        };
        if host.is_empty() || host.starts_with('-') {
            return Err(PowerError::Unsupported(format!("IPMI address {addr:?} is not a host")));
        }
        let (password_file, password) = match &cfg.password_file {
            Some(f) => (Some(f.clone()), None),
            None => (None, cfg.password.clone()),
        };
        Ok(Ipmi {
            host,
            port,
            username: cfg.username.clone(),
            password_file,
            password,
            cipher_suite: cfg.cipher_suite,
            timeout: cfg.timeout,
            program: std::env::var("LQX_IPMITOOL").unwrap_or_else(|_| "ipmitool".into()),
        })
    }

    async fn run(&self, args: &[&str]) -> Result<String, PowerError> {
        let mut c = Command::new(&self.program);
        c.args(["-I", "lanplus", "-H", &self.host]);
        if let Some(p) = self.port {
            c.args(["-p", &p.to_string()]);
        }
        if let Some(u) = &self.username {
            c.args(["-U", u]);
        }
        if let Some(cs) = self.cipher_suite {
            c.args(["-C", &cs.to_string()]);
        }
        // ipmitool's own retries stay inside our time limit: one retry, 1 s apart.
        c.args(["-R", "2", "-N", "1"]);
        match (&self.password_file, &self.password) {
            (Some(f), _) => {
                c.arg("-f").arg(f);
            }
            (None, Some(p)) => {
                c.arg("-E").env("IPMI_PASSWORD", p);
            }
            (None, None) => {}
        }
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = c.spawn().map_err(|e| {
            PowerError::Controller(format!(
                "cannot run {} (install the ipmitool package): {e}",
                self.program
            ))
        })?;
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| {
                PowerError::Controller(format!(
                    "IPMI {} at {}: no answer within {:?}",
                    args.join(" "),
                    self.host,
                    self.timeout
                ))
            })?
            .map_err(|e| PowerError::Controller(format!("ipmitool: {e}")))?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(PowerError::Controller(format!(
                "IPMI {} at {}: {}",
                args.join(" "),
                self.host,
                why.trim().lines().last().unwrap_or("ipmitool failed")
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// `chassis power status` output ("Chassis Power is on") in lqx's terms.
pub fn state_of(output: &str) -> PowerState {
    let s = output.trim().to_ascii_lowercase();
    if s.ends_with(" on") {
        PowerState::On
    } else if s.ends_with(" off") {
        PowerState::Standby
    } else {
        PowerState::Unknown
    }
}

impl PowerController for Ipmi {
    fn power_on(&self) -> BoxFuture<'_, Result<(), PowerError>> {
        Box::pin(async { self.run(&["chassis", "power", "on"]).await.map(drop) })
    }

    fn power_off(&self) -> BoxFuture<'_, Result<(), PowerError>> {
        Box::pin(async { self.run(&["chassis", "power", "soft"]).await.map(drop) })
    }

    fn force_off(&self) -> BoxFuture<'_, Result<(), PowerError>> {
        Box::pin(async { self.run(&["chassis", "power", "off"]).await.map(drop) })
    }

    fn status(&self) -> BoxFuture<'_, Result<PowerState, PowerError>> {
        Box::pin(async { Ok(state_of(&self.run(&["chassis", "power", "status"]).await?)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::power::BmcKind;

    #[test]
    fn addresses_and_status_lines() {
        let i = Ipmi::new(&BmcConfig::new(BmcKind::Ipmi, "10.0.0.2:6230")).unwrap();
        assert_eq!((i.host.as_str(), i.port), ("10.0.0.2", Some(6230)));
        let i = Ipmi::new(&BmcConfig::new(BmcKind::Ipmi, "bmc-1")).unwrap();
        assert_eq!((i.host.as_str(), i.port), ("bmc-1", None));
        let i = Ipmi::new(&BmcConfig::new(BmcKind::Ipmi, "[fd00::2]:623")).unwrap();
        assert_eq!((i.host.as_str(), i.port), ("fd00::2", Some(623)));
        assert!(Ipmi::new(&BmcConfig::new(BmcKind::Ipmi, "-oProxy=x")).is_err());
        assert!(Ipmi::new(&BmcConfig::new(BmcKind::Ipmi, "h:99999")).is_err());
        assert_eq!(state_of("Chassis Power is on\n"), PowerState::On);
        assert_eq!(state_of("Chassis Power is off\n"), PowerState::Standby);
        assert_eq!(state_of("garbage"), PowerState::Unknown);
    }
}
