//! Host power against real BMC protocol servers: the Redfish emulator `sushy-emulator`
//! (sushy-tools, fake driver, over HTTPS with basic authentication) and the IPMI BMC
//! `vbmcd` (virtualbmc) in front of a QEMU domain on a private libvirtd, driven through
//! `ipmitool`. scripts/setup-deps.sh installs them (venv at /opt/lqx-bmc, or $LQX_BMC_VENV).
//! A missing tool skips a test loudly; in CI (CI set) it fails it.

mod bmc;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use bmc::{PASSWORD, Proc, Sushy, USER, free_port, tool, wait_for};

use lqx_core::{
    ErrorKind,
    compute::{
        Compute, CreateVm, Hosts, NodeRegistration,
        agents::{AgentTiming, Agents},
        in_process::{InProcessNode, InProcessOptions},
    },
    driver::sim::{SimConfig, SimHypervisor, SimRegistry},
    events::{EventBus, EventBusConfig},
    model::{Node, ProjectId, ResourceType, SubscriptionFilter, VmSpec},
    power::{
        BmcConfig, BmcKind, NodePower, PowerConfig, PowerController, PowerError, PowerState, hosts::HostPower,
        ipmi::Ipmi, redfish::Redfish,
    },
    store::Store,
};

async fn until_state(ctl: &dyn PowerController, want: PowerState) -> Duration {
    // The fake driver applies a reset 1 to 11 s after accepting it, as real hardware lags.
    wait_for(&format!("BMC reports {want}"), Duration::from_secs(20), async || {
        ctl.status().await.unwrap() == want
    })
    .await
}

#[tokio::test]
async fn redfish_power_cycle_against_sushy() {
    let Some(bmc) = Sushy::start("Off").await else { return };
    let rf = Redfish::new(&bmc.config()).unwrap();
    // The system is discovered from /redfish/v1/Systems (none configured).
    assert_eq!(rf.status().await.unwrap(), PowerState::Standby);
    let t = Instant::now();
    rf.power_on().await.unwrap();
    let accepted = t.elapsed();
    until_state(&rf, PowerState::On).await;
    let on = t.elapsed();
    // ForceOff only when asked (graceful power-off: host_power_keeps_the_node_record_...).
    let t2 = Instant::now();
    rf.force_off().await.unwrap();
    until_state(&rf, PowerState::Standby).await;
    let off = t2.elapsed();
    eprintln!(
        "redfish (sushy fake driver, HTTPS): On accepted in {accepted:?}, on after {on:?}; ForceOff to off in {off:?}"
    );
}

#[tokio::test]
async fn redfish_checks_the_certificate_and_the_credentials() {
    let Some(bmc) = Sushy::start("Off").await else { return };
    // Verification is on by default: a self-signed BMC without its CA is refused.
    let mut c = bmc.config();
    c.ca_file = None;
    let e = Redfish::new(&c).unwrap().status().await.unwrap_err().to_string();
    assert!(e.contains("UnknownIssuer"), "{e}");
    // Lab mode skips it.
    c.insecure = true;
    assert_eq!(Redfish::new(&c).unwrap().status().await.unwrap(), PowerState::Standby);
    // A wrong password is a clear 401.
    let mut c = bmc.config();
    c.password_file = None;
    c.password = Some("wrong".into());
    let e = Redfish::new(&c).unwrap().power_on().await.unwrap_err();
    assert!(
        matches!(&e, PowerError::Controller(m) if m.contains("401") && m.contains("password")),
        "{e}"
    );
    // Plain http is refused unless insecure; an unknown system is named.
    let mut c = bmc.config();
    c.address = bmc.url.replace("https", "http");
    assert!(matches!(Redfish::new(&c), Err(PowerError::Unsupported(_))));
    let mut c = bmc.config();
    c.system = Some("no-such-system".into());
    let e = Redfish::new(&c).unwrap().status().await.unwrap_err().to_string();
    assert!(e.contains("404") && e.contains("no-such-system"), "{e}");
}

fn vm(name: &str) -> CreateVm {
    CreateVm {
        name: name.into(),
        project_id: ProjectId::DEFAULT,
        description: String::new(),
        labels: Default::default(),
        spec: VmSpec {
            cpu_cores: 1,
            memory_mib: 512,
            disks: vec![],
            nics: vec![],
            ha: Default::default(),
            placement: Default::default(),
        },
        node: None,
        start: true,
        request_id: None,
    }
}

/// A store in `dir` and one attached 8-core / 16 GiB simulated host, h-1 (`sim://h-1`).
async fn one_sim_host(dir: &Path) -> (Compute, SimRegistry, SimHypervisor, Node) {
    let store = Store::open(dir.join("db.sqlite").to_str().unwrap()).await.unwrap();
    let compute = Compute::new(store, Hosts::default(), EventBus::new(EventBusConfig::default()));
    let sims = SimRegistry::new();
    let sim = sims.create("sim://h-1", SimConfig::with_capacity(8, 16_384)).unwrap();
    let node = compute
        .attach_node(NodeRegistration::new("h-1", "sim://h-1"), Arc::new(sim.clone()))
        .await
        .unwrap();
    (compute, sims, sim, node)
}

/// The node record follows a real BMC: standby after a graceful power-off (refused while a VM
/// runs there), powering_on until the host is heard again, with an event at each change.
#[tokio::test]
async fn host_power_keeps_the_node_record_in_step_with_a_redfish_bmc() {
    // The BMC's host is on, as a running node's is.
    let Some(bmc) = Sushy::start("On").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (compute, _sims, _sim, node) = one_sim_host(dir.path()).await;
    let rf = Redfish::new(&bmc.config()).unwrap();
    assert_eq!(rf.status().await.unwrap(), PowerState::On);
    let cfg = PowerConfig {
        poll_interval: Duration::from_millis(200),
        nodes: [("h-1".to_string(), bmc.config())].into(),
        ..PowerConfig::default()
    };
    let power = HostPower::new(compute.clone(), &cfg).unwrap();
    let events_from = compute.events.last_sequence();

    compute.create_vm(vm("web-1")).await.unwrap();
    let e = power.power_off_node("h-1", false).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition);
    assert!(
        e.message.contains("web-1") && e.message.contains("maintenance enter h-1"),
        "{e}"
    );
    assert_eq!(compute.store.get_node(node.id).await.unwrap().power, PowerState::On);
    // Through the NodePower interface DPM uses, refused the same way.
    assert!(matches!(power.standby(node.id).await, Err(PowerError::Unsupported(m)) if m.contains("web-1")));

    compute.delete_vm("web-1", ProjectId::DEFAULT, true).await.unwrap();
    let n = power.power_off_node("h-1", false).await.unwrap();
    assert_eq!(n.power, PowerState::PoweringOff);
    let t = Instant::now();
    // Graceful: GracefulShutdown, then the record follows the BMC to standby.
    wait_for("record says standby", Duration::from_secs(20), async || {
        power.refresh().await.unwrap();
        power.power_state(node.id).await.unwrap() == PowerState::Standby
    })
    .await;
    eprintln!("node record powering_off -> standby in {:?}", t.elapsed());

    power.power_on(node.id).await.unwrap();
    assert_eq!(power.power_state(node.id).await.unwrap(), PowerState::PoweringOn);
    until_state(&rf, PowerState::On).await;
    // The BMC says on, but the host has not been heard: still powering on (HA keeps waiting).
    power.refresh().await.unwrap();
    assert_eq!(power.power_state(node.id).await.unwrap(), PowerState::PoweringOn);
    compute.record_agent_report(
        node.id,
        lqx_core::fence::Fencing::new(lqx_core::fence::FencingLevel::HostWatchdog, "test"),
    );
    power.refresh().await.unwrap();
    assert_eq!(power.power_state(node.id).await.unwrap(), PowerState::On);

    let states: Vec<String> = compute
        .events
        .recent(
            &SubscriptionFilter::all().resource_type(ResourceType::Node),
            events_from,
            100,
        )
        .iter()
        .map(|e| e.payload["power"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        states,
        ["powering_off", "standby", "powering_on", "on"],
        "one event per change"
    );
    let st = power.status_of("h-1").await.unwrap();
    assert_eq!((st.controller, st.bmc), (Some(BmcKind::Redfish), Some(PowerState::On)));
}

/// A simulated host linked to its BMC is the machine behind it: once the BMC reports it off
/// its passes send nothing (no heartbeat, so the record stays standby), and once the BMC
/// reports it on again it reports, which brings the record from powering_on to on.
#[tokio::test]
async fn a_simulated_host_linked_to_its_bmc_is_silent_while_powered_off() {
    let Some(bmc) = Sushy::start("On").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (compute, sims, sim, node) = one_sim_host(dir.path()).await;
    let agents = Agents::new(compute.clone(), AgentTiming::default());
    let mut host = InProcessNode::new(
        compute.clone(),
        agents,
        node.id,
        Arc::new(sim.clone()),
        InProcessOptions::default(),
    )
    .await
    .unwrap();
    let cfg = PowerConfig {
        poll_interval: Duration::from_millis(200),
        nodes: [("h-1".to_string(), bmc.config())].into(),
        ..PowerConfig::default()
    };
    let power = HostPower::new(compute.clone(), &cfg).unwrap();
    assert_eq!(power.link_simulated_hosts(&sims).await.unwrap(), ["h-1"]);
    assert!(sim.is_powered(), "the BMC says on");
    assert!(host.pass().await.unwrap().heartbeat);

    power.power_off_node("h-1", false).await.unwrap();
    wait_for("record says standby", Duration::from_secs(20), async || {
        power.refresh().await.unwrap();
        host.pass().await.unwrap();
        power.power_state(node.id).await.unwrap() == PowerState::Standby
    })
    .await;
    assert!(!sim.is_powered());
    let silent_since = last_heard(&compute, node.id).await;
    for _ in 0..3 {
        assert!(
            !host.pass().await.unwrap().heartbeat,
            "a powered-off host reports nothing"
        );
        power.refresh().await.unwrap();
    }
    assert_eq!(last_heard(&compute, node.id).await, silent_since);
    assert_eq!(power.power_state(node.id).await.unwrap(), PowerState::Standby);

    power.power_on_node("h-1").await.unwrap();
    // Silent until its BMC says on (the emulator lags 1 to 11 s): still powering on.
    assert!(!host.pass().await.unwrap().heartbeat);
    power.refresh().await.unwrap();
    let t = Instant::now();
    wait_for("record says on", Duration::from_secs(20), async || {
        power.refresh().await.unwrap();
        let s = power.power_state(node.id).await.unwrap();
        assert!(matches!(s, PowerState::PoweringOn | PowerState::On), "{s}");
        host.pass().await.unwrap();
        power.refresh().await.unwrap();
        power.power_state(node.id).await.unwrap() == PowerState::On
    })
    .await;
    assert!(sim.is_powered());
    assert!(last_heard(&compute, node.id).await > silent_since);
    eprintln!("standby -> on, heard again, in {:?}", t.elapsed());
}

async fn last_heard(compute: &Compute, node: lqx_core::model::NodeId) -> Option<chrono::DateTime<chrono::Utc>> {
    compute.last_heard(&compute.store.get_node(node).await.unwrap())
}

/// A private libvirtd (scripts/isolated-libvirtd.sh) with one tiny QEMU domain, stopped (its
/// domains destroyed) when dropped.
struct Libvirtd {
    dir: tempfile::TempDir,
    uri: String,
}

impl Libvirtd {
    fn start() -> Option<Libvirtd> {
        for t in ["libvirtd", "virsh", "qemu-system-x86_64", "unshare"] {
            tool(t)?;
        }
        let isolated = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "true"])
            .status()
            .is_ok_and(|s| s.success());
        if !isolated {
            let msg = "a private libvirtd needs root (a private mount namespace)";
            assert!(std::env::var_os("CI").is_none(), "{msg}");
            eprintln!("\n*** SKIPPED: {msg} ***\n");
            return None;
        }
        let dir = tempfile::Builder::new().prefix("lqx-libvirtd").tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/isolated-libvirtd.sh");
        let out = Command::new("bash").arg(script).arg(dir.path()).output().unwrap();
        assert!(
            out.status.success(),
            "private libvirtd did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let uri = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let lv = Libvirtd { dir, uri };
        let xml = lv.dir.path().join("host-1.xml");
        std::fs::write(
            &xml,
            "<domain type='qemu'><name>host-1</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>\
             <os><type arch='x86_64'>hvm</type></os></domain>",
        )
        .unwrap();
        let out = Command::new("virsh")
            .arg("-c")
            .arg(&lv.uri)
            .args(["define", &xml.display().to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "virsh define: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(lv.virsh(&["domstate", "host-1"]), "shut off");
        Some(lv)
    }

    fn virsh(&self, args: &[&str]) -> String {
        let out = Command::new("virsh")
            .arg("-c")
            .arg(&self.uri)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Libvirtd {
    fn drop(&mut self) {
        for name in self.virsh(&["list", "--name"]).lines().filter(|l| !l.is_empty()) {
            self.virsh(&["destroy", name]);
        }
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("libvirtd.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// vbmcd with its own config (control port, state dir) in a temporary directory.
struct Vbmc {
    dir: tempfile::TempDir,
    vbmc: PathBuf,
    _daemon: Proc,
}

impl Vbmc {
    fn start() -> Option<Vbmc> {
        let vbmcd = tool("vbmcd")?;
        let vbmc = vbmcd.with_file_name("vbmc");
        let dir = tempfile::Builder::new().prefix("lqx-vbmc").tempdir().unwrap();
        let conf = dir.path().join("virtualbmc.conf");
        std::fs::create_dir(dir.path().join("bmcs")).unwrap();
        std::fs::write(
            &conf,
            format!(
                "[default]\nconfig_dir = {}\nserver_port = {}\npid_file = {}\n",
                dir.path().join("bmcs").display(),
                free_port(),
                dir.path().join("vbmcd.pid").display()
            ),
        )
        .unwrap();
        let daemon = Proc::spawn(
            Command::new(&vbmcd)
                .arg("--foreground")
                .env("VIRTUALBMC_CONFIG", &conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        Some(Vbmc {
            dir,
            vbmc,
            _daemon: daemon,
        })
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.vbmc)
            .args(args)
            .env("VIRTUALBMC_CONFIG", self.dir.path().join("virtualbmc.conf"))
            .output()
            .unwrap()
    }
}

#[tokio::test]
async fn ipmi_power_control_against_virtualbmc() {
    let Some(_ipmitool) = tool("ipmitool") else { return };
    let Some(bmcd) = Vbmc::start() else { return };
    let Some(lv) = Libvirtd::start() else { return };
    let port = free_port();
    // vbmcd takes a moment to open its control port.
    let start = Instant::now();
    loop {
        let o = bmcd.run(&[
            "add",
            "host-1",
            "--address",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--username",
            USER,
            "--password",
            PASSWORD,
            "--libvirt-uri",
            &lv.uri,
        ]);
        if o.status.success() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "vbmc add: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let o = bmcd.run(&["start", "host-1"]);
    assert!(o.status.success(), "vbmc start: {}", String::from_utf8_lossy(&o.stderr));

    let pw = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pw.path(), format!("{PASSWORD}\n")).unwrap();
    let mut c = BmcConfig::new(BmcKind::Ipmi, format!("127.0.0.1:{port}"));
    c.username = Some(USER.into());
    c.password_file = Some(pw.path().to_path_buf());
    c.timeout = Duration::from_secs(10);
    let ipmi = Ipmi::new(&c).unwrap();
    wait_for("the IPMI BMC answers", Duration::from_secs(30), async || {
        ipmi.status().await.is_ok()
    })
    .await;
    assert_eq!(ipmi.status().await.unwrap(), PowerState::Standby);
    let t = Instant::now();
    ipmi.power_on().await.unwrap();
    let on = wait_for("domain running", Duration::from_secs(30), async || {
        ipmi.status().await.unwrap() == PowerState::On
    })
    .await;
    assert_eq!(lv.virsh(&["domstate", "host-1"]), "running");
    eprintln!(
        "ipmi (vbmc + QEMU): chassis power on -> on in {on:?} ({:?} with the first status)",
        t.elapsed()
    );
    // Graceful: the BMC accepts the ACPI request (this guest has no OS to act on it).
    ipmi.power_off().await.unwrap();
    // Forced off, only when asked.
    let t = Instant::now();
    ipmi.force_off().await.unwrap();
    let off = wait_for("domain off", Duration::from_secs(30), async || {
        ipmi.status().await.unwrap() == PowerState::Standby
    })
    .await;
    eprintln!("ipmi: chassis power off -> off in {off:?} ({:?})", t.elapsed());
    assert_eq!(lv.virsh(&["domstate", "host-1"]), "shut off");

    // The password from the environment (-E) works too; a wrong one is a clear failure.
    let mut c2 = c.clone();
    c2.password_file = None;
    c2.password = Some(PASSWORD.into());
    assert_eq!(Ipmi::new(&c2).unwrap().status().await.unwrap(), PowerState::Standby);
    c2.password = Some("wrong".into());
    c2.timeout = Duration::from_secs(5);
    let e = Ipmi::new(&c2).unwrap().status().await.unwrap_err();
    assert!(matches!(e, PowerError::Controller(_)), "{e}");
}
