//! The fence process: a Unix socket for the agent's pets, its own hypervisor connection for
//! the destroys, and the host watchdog. See [`super::timer`] for the rule.

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    time::Instant,
};
use tracing::{error, info, warn};

use super::{
    device::WatchdogDevice,
    protocol::{Reply, Request},
    timer::FenceTimer,
};
use crate::{driver::Hypervisor, model::VmId};

/// How the fence process runs.
#[derive(Debug, Clone)]
pub struct FenceOptions {
    /// The socket the agent pets (created mode 0600).
    pub socket: PathBuf,
    /// The host watchdog device; `None`: fencing is degraded (a hung fence process does not
    /// fence).
    pub watchdog_device: Option<PathBuf>,
    /// The device's timeout when the kernel does not report it.
    pub watchdog_timeout: Option<Duration>,
    /// How often the deadline and the host watchdog are looked at.
    pub tick: Duration,
    /// A hypervisor call that takes longer is given up (and retried at the next tick).
    pub call_timeout: Duration,
}

impl FenceOptions {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        FenceOptions {
            socket: socket.into(),
            watchdog_device: None,
            watchdog_timeout: None,
            tick: Duration::from_millis(200),
            call_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    #[error("Cannot listen on the fence socket {path}")]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Another fence process is listening on {0}")]
    AlreadyRunning(PathBuf),
    #[error("Cannot open the watchdog device {path}")]
    Watchdog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

struct Inner {
    timer: FenceTimer,
    /// Sent in every reply: the watchdog and why fencing is degraded.
    base: Reply,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Binds the socket (mode 0600), replacing a stale one.
async fn bind(path: &std::path::Path) -> Result<UnixListener, FenceError> {
    let err = |source| FenceError::Socket {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(FenceError::AlreadyRunning(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    let l = UnixListener::bind(path).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    Ok(l)
}

/// Runs the fence process until `shutdown` resolves. `hv` is its own connection.
pub async fn serve(
    opts: FenceOptions,
    hv: Arc<dyn Hypervisor>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), FenceError> {
    let mut device = match &opts.watchdog_device {
        Some(p) => Some(
            WatchdogDevice::open(p, opts.watchdog_timeout).map_err(|source| FenceError::Watchdog {
                path: p.clone(),
                source,
            })?,
        ),
        None => None,
    };
    let base = match &device {
        Some(d) => {
            info!(device = %d.path().display(), timeout = ?d.timeout(), "host watchdog armed");
            Reply {
                watchdog: Some(d.path().display().to_string()),
                watchdog_timeout_ms: Some(d.timeout().as_millis() as u64),
                ..Default::default()
            }
        }
        None => {
            error!(
                "FENCING DEGRADED: no host watchdog device (--watchdog-device): if this fence process hangs, \
                 or libvirt does not answer, nothing fences this host's HA-protected domains"
            );
            Reply {
                degraded: Some("no host watchdog device: a hung fence process or libvirtd does not fence".into()),
                ..Default::default()
            }
        }
    };
    let listener = bind(&opts.socket).await?;
    info!(socket = %opts.socket.display(), hypervisor = %hv.uri(), "fence process listening");
    let inner = Arc::new(Mutex::new(Inner {
        timer: FenceTimer::new(),
        base,
    }));
    let destroying = Arc::new(AtomicBool::new(false));
    let mut holding_back = false;
    let mut was_fired = false;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, inner.clone()));
                }
                Err(e) => warn!(error = %e, "accepting a connection on the fence socket failed"),
            },
            _ = tokio::time::sleep(opts.tick) => {}
            _ = &mut shutdown => break,
        }
        let now = Instant::now();
        let (fired, vms, may_pet) = {
            let mut s = lock(&inner);
            let f = s.timer.check(now);
            let may = device
                .as_ref()
                .is_none_or(|d| s.timer.may_pet_watchdog(now, d.timeout()));
            (f, s.timer.vms().clone(), may)
        };
        if fired && !was_fired {
            error!(
                domains = vms.len(),
                "FENCING: the agent's lease deadline passed without a pet; destroying its HA-protected domains"
            );
        } else if !fired && was_fired {
            info!("fence lifted: the agent renewed its lease");
        }
        was_fired = fired;
        if fired && !destroying.swap(true, Ordering::SeqCst) {
            let (hv, inner, flag, timeout) = (hv.clone(), inner.clone(), destroying.clone(), opts.call_timeout);
            tokio::spawn(async move {
                if destroy(hv.as_ref(), &vms, timeout).await {
                    lock(&inner).timer.all_gone();
                }
                flag.store(false, Ordering::SeqCst);
            });
        }
        if let Some(d) = device.as_mut() {
            if may_pet {
                if holding_back {
                    info!("petting the host watchdog again");
                    holding_back = false;
                }
                if let Err(e) = d.pet() {
                    error!(error = %e, "cannot pet the host watchdog");
                }
            } else if !holding_back {
                holding_back = true;
                warn!(
                    timeout = ?d.timeout(),
                    "not petting the host watchdog: the lease is about to end with HA domains not yet fenced; the host resets unless they are destroyed or the agent renews"
                );
            }
        }
    }
    let armed = {
        let s = lock(&inner);
        s.timer.is_armed() && !s.timer.vms().is_empty()
    };
    if armed {
        warn!(
            "fence process stopping while it guards HA-protected domains: only the agent's own watchdog fences them now"
        );
    }
    if let Some(d) = device.take()
        && let Err(e) = d.close_cleanly()
    {
        error!(error = %e, "cannot disarm the host watchdog");
    }
    let _ = std::fs::remove_file(&opts.socket);
    info!("fence process stopped");
    Ok(())
}

/// One agent connection: requests in, replies out, until it closes.
async fn connection(stream: UnixStream, inner: Arc<Mutex<Inner>>) {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    let mut disarmed = false;
    let mut petted = false;
    while let Ok(Some(line)) = lines.next_line().await {
        let reply = {
            let mut s = lock(&inner);
            let mut reply = match serde_json::from_str::<Request>(&line) {
                Ok(Request::Pet(p)) => {
                    if !petted {
                        info!(
                            domains = p.vms.len(),
                            fence_in_ms = p.fence_in_ms,
                            "agent connected and petting"
                        );
                    }
                    petted = true;
                    disarmed = false;
                    s.timer.pet(Instant::now(), &p);
                    s.base.clone()
                }
                Ok(Request::Disarm) => {
                    info!("agent disarmed the fence (clean stop without HA domains)");
                    s.timer.disarm();
                    disarmed = true;
                    s.base.clone()
                }
                Ok(Request::Status) => s.base.clone(),
                Err(e) => Reply {
                    error: Some(format!("not a fence request: {e}")),
                    ..s.base.clone()
                },
            };
            reply.armed = s.timer.is_armed();
            reply.fenced = s.timer.is_fired();
            reply.domains = s.timer.vms().len();
            reply
        };
        let mut text = serde_json::to_string(&reply).unwrap_or_default();
        text.push('\n');
        if w.write_all(text.as_bytes()).await.is_err() {
            break;
        }
    }
    if petted && !disarmed {
        let s = lock(&inner);
        if s.timer.is_armed() && !s.timer.vms().is_empty() {
            warn!(
                domains = s.timer.vms().len(),
                "the agent's connection closed without a disarm: its HA domains are fenced at the deadline unless it pets again"
            );
        }
    }
}

/// Destroys the active HA domains in `vms`. Returns whether none is left running.
pub async fn destroy(hv: &dyn Hypervisor, vms: &std::collections::BTreeSet<VmId>, timeout: Duration) -> bool {
    let domains = match tokio::time::timeout(timeout, hv.list_domains()).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            error!(error = %e, "fencing: cannot list the domains");
            return false;
        }
        Err(_) => {
            error!("fencing: the hypervisor did not answer; only the host watchdog can fence now");
            return false;
        }
    };
    let mut all = true;
    for d in domains
        .iter()
        .filter(|d| d.managed && vms.contains(&d.id) && d.state.is_active())
    {
        match tokio::time::timeout(timeout, hv.destroy(d.id)).await {
            Ok(Ok(())) => warn!(vm = %d.id, name = %d.name, "fenced: HA-protected domain destroyed"),
            Ok(Err(e)) => {
                all = false;
                error!(vm = %d.id, error = %e, "fencing could not destroy a domain");
            }
            Err(_) => {
                all = false;
                error!(vm = %d.id, "fencing: destroy did not finish in time");
            }
        }
    }
    all
}

#[cfg(test)]
mod tests {
    //! The fence process alone, over its real Unix socket, on a simulated host (the pets
    //! come from a [`super::super::FenceClient`], as from the agent), on tokio's paused clock:
    //! deadlines are exact and no test waits in real time.
    use super::*;
    use crate::{
        driver::{DomainSpec, DomainState, sim::SimHypervisor},
        fence::{FenceClient, PetSource},
    };

    struct Rig {
        _dir: tempfile::TempDir,
        sock: PathBuf,
        hv: SimHypervisor,
        ha: VmId,
        plain: VmId,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<Result<(), FenceError>>,
    }

    async fn rig(device: Option<(&str, Duration)>) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("run/fence.sock");
        let hv = SimHypervisor::new("sim://fence-test", Default::default()).unwrap();
        let (ha, plain) = (VmId::new(), VmId::new());
        for id in [ha, plain] {
            hv.define(DomainSpec::new(id, "vm", 1, 64)).await.unwrap();
            hv.start(id).await.unwrap();
        }
        let mut opts = FenceOptions::new(&sock);
        opts.tick = Duration::from_millis(20);
        if let Some((name, timeout)) = device {
            let p = dir.path().join(name);
            std::fs::write(&p, b"").unwrap();
            opts.watchdog_device = Some(p);
            opts.watchdog_timeout = Some(timeout);
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(opts, Arc::new(hv.clone()), async {
            let _ = rx.await;
        }));
        // Ready when the socket answers.
        let c = FenceClient::new(&sock);
        for _ in 0..200 {
            if c.request(&Request::Status).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Rig {
            _dir: dir,
            sock,
            hv,
            ha,
            plain,
            stop: Some(tx),
            task,
        }
    }

    impl Rig {
        fn pet(&self, fence_in_ms: u64) -> PetSource {
            PetSource {
                fence_in: Duration::from_millis(fence_in_ms),
                lease_left: Duration::from_millis(fence_in_ms + 200),
                vms: vec![self.ha],
                renewed: true,
            }
        }

        async fn state(&self, id: VmId) -> DomainState {
            let d = self.hv.list_domains().await.unwrap();
            d.iter().find(|d| d.id == id).unwrap().state
        }

        /// Stops the fence process; the directory lives on for the caller.
        async fn stop(mut self) -> tempfile::TempDir {
            let _ = self.stop.take().unwrap().send(());
            self.task.await.unwrap().unwrap();
            assert!(!self.sock.exists(), "the socket is removed at exit");
            self._dir
        }
    }

    #[tokio::test(start_paused = true)]
    async fn pets_stop_and_the_ha_domains_are_destroyed() {
        let r = rig(None).await;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&r.sock).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let c = FenceClient::new(&r.sock);
        let reply = c.pet(r.pet(300)).await.unwrap();
        assert!(reply.armed && !reply.fenced);
        assert_eq!(c.status().level, crate::fence::FencingLevel::FenceProcess);
        assert!(
            c.status().text().starts_with("degraded: no host watchdog"),
            "{:?}",
            c.status()
        );
        // The agent stops petting (its connection stays open, as a SIGSTOPped agent's does).
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(r.state(r.ha).await, DomainState::Running, "not before the deadline");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(r.state(r.ha).await, DomainState::Shutoff, "fenced at the deadline");
        assert_eq!(
            r.state(r.plain).await,
            DomainState::Running,
            "other domains are left alone"
        );
        assert!(c.request(&Request::Status).await.unwrap().fenced);
        drop(c);
        r.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_closed_without_disarm_keeps_the_deadline() {
        let r = rig(None).await;
        let c = FenceClient::new(&r.sock);
        c.pet(r.pet(300)).await.unwrap();
        drop(c); // the agent crashed
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(r.state(r.ha).await, DomainState::Shutoff);
        r.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_healthy_agent_is_never_fenced_and_a_disarm_stops_watching() {
        let r = rig(None).await;
        let c = FenceClient::new(&r.sock);
        for _ in 0..12 {
            c.pet(r.pet(200)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(r.state(r.ha).await, DomainState::Running);
        c.disarm().await.unwrap();
        drop(c);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(r.state(r.ha).await, DomainState::Running, "disarmed: nothing fences");
        r.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_restarted_agent_cannot_push_the_deadline_back() {
        let r = rig(None).await;
        let c = FenceClient::new(&r.sock);
        c.pet(r.pet(300)).await.unwrap();
        drop(c);
        // The restarted agent has no answer yet: its 10 s start-up deadline does not count.
        let c = FenceClient::new(&r.sock);
        let mut p = r.pet(10_000);
        p.renewed = false;
        c.pet(p).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(r.state(r.ha).await, DomainState::Shutoff);
        r.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_host_watchdog_is_petted_until_the_lease_ends_and_closed_cleanly() {
        let r = rig(Some(("watchdog", Duration::from_millis(100)))).await;
        let dev = r._dir.path().join("watchdog");
        let c = FenceClient::new(&r.sock);
        let reply = c.pet(r.pet(10_000)).await.unwrap();
        assert_eq!(reply.watchdog_timeout_ms, Some(100));
        assert_eq!(c.status().level, crate::fence::FencingLevel::HostWatchdog);
        assert!(
            c.status().text().starts_with("ok: fence process and host watchdog"),
            "{:?}",
            c.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let petted = std::fs::read(&dev).unwrap().len();
        assert!(petted >= 3, "petted {petted} times");
        // A lease ending in 50 ms: a reset 100 ms after the next pet would come too late.
        c.request(&Request::Pet(crate::fence::Pet {
            fence_in_ms: 5_000,
            lease_left_ms: 5_000,
            vms: vec![r.ha],
            renewed: true,
        }))
        .await
        .unwrap();
        let p = PetSource {
            fence_in: Duration::from_millis(40),
            lease_left: Duration::from_millis(50),
            vms: vec![r.ha],
            renewed: true,
        };
        c.pet(p).await.unwrap();
        let before = std::fs::read(&dev).unwrap().len();
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(
            std::fs::read(&dev).unwrap().len(),
            before,
            "not petted near the lease end"
        );
        // Fenced and the domain gone: the host is safe, petting resumes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(r.state(r.ha).await, DomainState::Shutoff);
        assert!(std::fs::read(&dev).unwrap().len() > before);
        drop(c);
        let _dir = r.stop().await;
        assert!(std::fs::read(&dev).unwrap().ends_with(b"V"), "magic close on exit");
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_fence_process_on_the_same_socket_is_refused() {
        let r = rig(None).await;
        let hv = SimHypervisor::new("sim://fence-test-2", Default::default()).unwrap();
        let e = serve(FenceOptions::new(&r.sock), Arc::new(hv), async {}).await;
        assert!(matches!(e, Err(FenceError::AlreadyRunning(_))), "{e:?}");
        r.stop().await;
    }
}
