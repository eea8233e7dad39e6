//! The host watchdog device (`/dev/watchdog`: softdog or a hardware timer). Opening it arms
//! a host reset: it is opened only when asked for. Every write pets it; writing `V` before
//! closing disarms it ("magic close", ignored by drivers loaded with `nowayout`).

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

pub struct WatchdogDevice {
    file: std::fs::File,
    path: PathBuf,
    timeout: Duration,
}

impl std::fmt::Debug for WatchdogDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchdogDevice")
            .field("path", &self.path)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The timeout the kernel reports for the device at `path`
/// (`/sys/class/watchdog/<name>/timeout`; `/dev/watchdog` is `watchdog0`).
pub fn sysfs_timeout(path: &Path) -> Option<Duration> {
    let name = path.file_name()?.to_str()?;
    let name = if name == "watchdog" { "watchdog0" } else { name };
    let text = std::fs::read_to_string(format!("/sys/class/watchdog/{name}/timeout")).ok()?;
    text.trim().parse::<u64>().ok().map(Duration::from_secs)
}

impl WatchdogDevice {
    /// Opens (and so arms) the device. `timeout`: its timeout when the kernel does not say
    /// (required then: the timing check needs it).
    pub fn open(path: &Path, timeout: Option<Duration>) -> std::io::Result<Self> {
        let timeout = timeout.or_else(|| sysfs_timeout(path)).ok_or_else(|| {
            std::io::Error::other(format!(
                "cannot read the timeout of {} from /sys/class/watchdog; give it with --watchdog-timeout",
                path.display()
            ))
        })?;
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        Ok(WatchdogDevice {
            file,
            path: path.to_path_buf(),
            timeout,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn pet(&mut self) -> std::io::Result<()> {
        self.file.write_all(b"1")?;
        self.file.flush()
    }

    /// Disarms the device (magic close) and closes it.
    pub fn close_cleanly(mut self) -> std::io::Result<()> {
        self.file.write_all(b"V")?;
        self.file.flush()
    }
}
