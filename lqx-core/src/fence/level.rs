//! What fences an agent host, as the agent reports it in every heartbeat: the node views
//! show it and HA admission names the VMs whose only fence is weaker than a host watchdog.

use serde::{Deserialize, Serialize};

use super::protocol::Reply;

/// The strongest fence that still works on a host, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FencingLevel {
    /// The fence process pets a host watchdog device: even a hung fence process or a hung
    /// libvirtd ends with a host reset.
    HostWatchdog,
    /// A fence process without a host watchdog: a hung agent is fenced, a hung fence process
    /// or libvirtd is not.
    FenceProcess,
    /// Only the agent's own watchdog task: a hung (stopped, deadlocked) agent does not fence.
    AgentOnly,
    /// Nothing can fence right now (libvirt hangs and no host watchdog is known).
    None,
}

impl FencingLevel {
    /// The name on the wire and in views.
    pub fn as_str(self) -> &'static str {
        match self {
            FencingLevel::HostWatchdog => "host-watchdog",
            FencingLevel::FenceProcess => "fence-process",
            FencingLevel::AgentOnly => "agent-only",
            FencingLevel::None => "none",
        }
    }

    /// Parses [`Self::as_str`]; anything else (an agent older than the typed report) is `None`.
    pub fn parse(s: &str) -> Option<FencingLevel> {
        [
            FencingLevel::HostWatchdog,
            FencingLevel::FenceProcess,
            FencingLevel::AgentOnly,
            FencingLevel::None,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
    }

    /// A hung agent still gets its HA domains destroyed.
    pub fn survives_hung_agent(self) -> bool {
        matches!(self, FencingLevel::HostWatchdog | FencingLevel::FenceProcess)
    }
}

/// A host's fencing: its level and why it is not stronger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fencing {
    pub level: FencingLevel,
    pub reason: String,
}

impl Fencing {
    pub fn new(level: FencingLevel, reason: impl Into<String>) -> Self {
        Fencing {
            level,
            reason: reason.into(),
        }
    }

    /// The fencing a fence process's reply proves.
    pub fn of_reply(r: &Reply) -> Fencing {
        match (&r.degraded, &r.watchdog) {
            (Some(d), _) => Fencing::new(FencingLevel::FenceProcess, d.clone()),
            (None, Some(w)) => Fencing::new(
                FencingLevel::HostWatchdog,
                format!(
                    "fence process and host watchdog {w} (timeout {})",
                    humantime::format_duration(std::time::Duration::from_millis(r.watchdog_timeout_ms.unwrap_or(0)))
                ),
            ),
            (None, None) => Fencing::new(FencingLevel::FenceProcess, "fence process"),
        }
    }

    /// While libvirt hangs neither the agent nor the fence process can destroy a domain:
    /// only a host watchdog still fences.
    pub fn with_libvirt_hung(self, why: &str) -> Fencing {
        let reason = format!("libvirt is not answering ({why}): while it hangs only the host watchdog can fence");
        match self.level {
            FencingLevel::HostWatchdog => Fencing::new(FencingLevel::HostWatchdog, reason),
            _ => Fencing::new(FencingLevel::None, reason),
        }
    }

    /// Weaker than a host watchdog.
    pub fn is_degraded(&self) -> bool {
        self.level != FencingLevel::HostWatchdog
    }

    /// The one-line text of node views: `ok: reason` or `degraded: reason`.
    pub fn text(&self) -> String {
        let head = if self.is_degraded() { "degraded" } else { "ok" };
        format!("{head}: {}", self.reason)
    }

    /// Decodes a heartbeat's report. An agent that sends no level (older than the typed
    /// report) is taken at its word only as far as the text goes: `ok` means a fence process,
    /// anything else only the agent-level fence.
    pub fn from_report(level: &str, text: &str) -> Fencing {
        let reason = text
            .split_once(": ")
            .map_or(
                text,
                |(head, rest)| if matches!(head, "ok" | "degraded") { rest } else { text },
            )
            .to_string();
        match FencingLevel::parse(level) {
            Some(l) => Fencing::new(l, reason),
            None if text.starts_with("ok") => Fencing::new(FencingLevel::FenceProcess, reason),
            None => Fencing::new(FencingLevel::AgentOnly, reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_without_watchdog_is_fence_process_only() {
        let r = Reply {
            degraded: Some("no host watchdog device".into()),
            ..Reply::default()
        };
        let f = Fencing::of_reply(&r);
        assert_eq!(f.level, FencingLevel::FenceProcess);
        assert!(f.is_degraded());
        assert_eq!(f.text(), "degraded: no host watchdog device");
        let r = Reply {
            watchdog: Some("/dev/watchdog".into()),
            watchdog_timeout_ms: Some(10_000),
            ..Reply::default()
        };
        let f = Fencing::of_reply(&r);
        assert_eq!(f.level, FencingLevel::HostWatchdog);
        assert!(
            f.text()
                .starts_with("ok: fence process and host watchdog /dev/watchdog")
        );
    }

    #[test]
    fn hung_libvirt_leaves_only_the_host_watchdog() {
        let f = Fencing::new(FencingLevel::FenceProcess, "x").with_libvirt_hung("list 5s");
        assert_eq!(f.level, FencingLevel::None);
        let f = Fencing::new(FencingLevel::HostWatchdog, "x").with_libvirt_hung("list 5s");
        assert_eq!(f.level, FencingLevel::HostWatchdog);
        assert!(f.reason.contains("list 5s"));
    }

    #[test]
    fn reports_round_trip_and_old_agents_are_not_trusted_beyond_their_text() {
        for l in [
            FencingLevel::HostWatchdog,
            FencingLevel::FenceProcess,
            FencingLevel::AgentOnly,
            FencingLevel::None,
        ] {
            let f = Fencing::new(l, "why");
            assert_eq!(Fencing::from_report(l.as_str(), &f.text()), f);
        }
        assert_eq!(
            Fencing::from_report("", "degraded: no fence process").level,
            FencingLevel::AgentOnly
        );
        assert_eq!(
            Fencing::from_report("", "ok: fence process").level,
            FencingLevel::FenceProcess
        );
    }
}
