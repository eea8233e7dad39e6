//! The driver contract: one suite, run against the simulated hypervisor and (with feature
//! `libvirt`) against libvirt's test driver on a private `test:///<tmpfile>.xml` per test.
//!
//! `cargo test -p lqx-core --test driver_contract` (sim only);
//! `cargo test -p lqx-core --features libvirt --test driver_contract` (sim and libvirt).

use std::{sync::Arc, time::Duration};

use lqx_core::{
    driver::{
        CrashAction, DiskBus, DiskSpec, DomainSpec, DomainState, DriverErrorKind, Hypervisor, NicModel, NicSource,
        NicSpec,
        migrate::{ColdOptions, MigrationKind, MigrationMode, migrate},
        sim::{SimConfig, SimRegistry},
    },
    model::VmId,
};

fn spec(name: &str) -> DomainSpec {
    let mut s = DomainSpec::new(VmId::new(), name, 2, 512);
    s.disks.push(DiskSpec {
        name: "root".into(),
        size_mib: 64,
        pool: "default".into(),
        bus: DiskBus::Virtio,
    });
    s.nics.push(NicSpec {
        source: NicSource::Network("default".into()),
        mac: None,
        model: NicModel::Virtio,
    });
    s
}

/// What `domain_spec` must give back for `s`: MACs filled in.
fn expected(s: &DomainSpec) -> DomainSpec {
    let mut e = s.clone();
    for (i, n) in e.nics.iter_mut().enumerate() {
        n.mac = Some(n.effective_mac(s.id, i));
    }
    e
}

async fn kind_of<T: std::fmt::Debug>(
    f: impl std::future::Future<Output = Result<T, lqx_core::driver::DriverError>>,
) -> DriverErrorKind {
    f.await.expect_err("expected an error").kind()
}

/// The contract every backend keeps. `h` must be a fresh host with a `default` pool.
async fn contract(h: Arc<dyn Hypervisor>) {
    let info = h.node_info().await.unwrap();
    assert!(
        info.cpus > 0 && info.memory_mib > 0 && !info.hostname.is_empty(),
        "{info:?}"
    );
    assert!(h.list_domains().await.unwrap().is_empty());

    // define
    let s = spec("web-1");
    let id = s.id;
    h.define(s.clone()).await.unwrap();
    assert_eq!(kind_of(h.define(s.clone())).await, DriverErrorKind::AlreadyExists);
    let listed = h.list_domains().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].id,
            listed[0].name.as_str(),
            listed[0].state,
            listed[0].managed
        ),
        (id, "web-1", DomainState::Shutoff, true)
    );
    assert_eq!(h.domain_spec(id).await.unwrap(), expected(&s), "definition read back");
    let vols = h.list_volumes("default".into()).await.unwrap();
    assert!(
        vols.iter()
            .any(|v| v.name == format!("lqx-{id}-root.qcow2") && v.capacity_mib == 64),
        "{vols:?}"
    );

    // wrong-state calls on a shut-off domain
    assert_eq!(
        kind_of(h.shutdown(id, Duration::from_secs(1))).await,
        DriverErrorKind::InvalidState
    );
    assert_eq!(kind_of(h.destroy(id)).await, DriverErrorKind::InvalidState);
    assert_eq!(kind_of(h.reboot(id)).await, DriverErrorKind::InvalidState);
    assert_eq!(kind_of(h.resume(id)).await, DriverErrorKind::InvalidState);

    // power cycle
    h.start(id).await.unwrap();
    assert_eq!(h.domain_state(id).await.unwrap(), DomainState::Running);
    assert_eq!(kind_of(h.start(id)).await, DriverErrorKind::InvalidState);
    assert_eq!(kind_of(h.undefine(id, false)).await, DriverErrorKind::InvalidState);
    let st = h.domain_stats(id).await.unwrap();
    assert_eq!((st.state, st.vcpus, st.memory_mib), (DomainState::Running, 2, 512));
    assert!(st.memory_used_mib <= 512);
    let ns = h.node_stats().await.unwrap();
    assert_eq!(ns.memory_total_mib, info.memory_mib);
    assert!(ns.memory_used_mib <= ns.memory_total_mib);
    h.suspend(id).await.unwrap();
    assert_eq!(h.domain_state(id).await.unwrap(), DomainState::Paused);
    assert_eq!(
        kind_of(h.shutdown(id, Duration::from_secs(1))).await,
        DriverErrorKind::InvalidState
    );
    h.resume(id).await.unwrap();
    h.reboot(id).await.unwrap();
    assert_eq!(h.domain_state(id).await.unwrap(), DomainState::Running);
    h.shutdown(id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(h.domain_state(id).await.unwrap(), DomainState::Shutoff);
    h.start(id).await.unwrap();
    h.destroy(id).await.unwrap();
    assert_eq!(h.domain_state(id).await.unwrap(), DomainState::Shutoff);

    // update: new size and a new disk, effective in the definition
    let mut bigger = s.clone();
    bigger.vcpus = 4;
    bigger.memory_mib = 1024;
    bigger.disks.push(DiskSpec {
        name: "data".into(),
        size_mib: 32,
        pool: "default".into(),
        bus: DiskBus::Sata,
    });
    h.update(bigger.clone()).await.unwrap();
    assert_eq!(h.domain_spec(id).await.unwrap(), expected(&bigger));
    assert_eq!(h.list_volumes("default".into()).await.unwrap().len(), 2);

    // unknown ids, bad specs, missing pools
    let ghost = VmId::new();
    assert_eq!(kind_of(h.domain_state(ghost)).await, DriverErrorKind::NotFound);
    assert_eq!(kind_of(h.start(ghost)).await, DriverErrorKind::NotFound);
    assert_eq!(kind_of(h.domain_stats(ghost)).await, DriverErrorKind::NotFound);
    assert_eq!(kind_of(h.undefine(ghost, true)).await, DriverErrorKind::NotFound);
    assert_eq!(kind_of(h.update(spec("ghost"))).await, DriverErrorKind::NotFound);
    let mut bad = spec("bad");
    bad.vcpus = 0;
    assert_eq!(kind_of(h.define(bad)).await, DriverErrorKind::Invalid);
    let mut nopool = spec("nopool");
    nopool.disks[0].pool = "nope".into();
    assert_eq!(kind_of(h.define(nopool.clone())).await, DriverErrorKind::NotFound);
    assert_eq!(
        kind_of(h.domain_state(nopool.id)).await,
        DriverErrorKind::NotFound,
        "nothing half-defined"
    );
    assert_eq!(kind_of(h.list_volumes("nope".into())).await, DriverErrorKind::NotFound);

    // a hostile display name is stored and listed verbatim, nothing injected
    let evil = spec("a<b&\"c'</title><on_crash>restart</on_crash>");
    h.define(evil.clone()).await.unwrap();
    let got = h.domain_spec(evil.id).await.unwrap();
    assert_eq!(got.name, evil.name);
    assert_eq!(got.on_crash, CrashAction::Destroy);
    assert!(
        h.list_domains()
            .await
            .unwrap()
            .iter()
            .any(|d| d.id == evil.id && d.name == evil.name)
    );

    // live migration: either supported, or refused as Unsupported (callers go cold)
    if !h.supports_live_migration() {
        h.start(id).await.unwrap();
        let e = h
            .migrate_live(id, "test:///nowhere.xml".into(), Default::default(), None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), DriverErrorKind::Unsupported, "{e}");
        assert_eq!(h.domain_state(id).await.unwrap(), DomainState::Running, "untouched");
        h.destroy(id).await.unwrap();
    }

    // undefine, with and without volumes
    h.undefine(id, true).await.unwrap();
    assert_eq!(kind_of(h.domain_state(id)).await, DriverErrorKind::NotFound);
    h.undefine(evil.id, false).await.unwrap();
    let left: Vec<String> = h
        .list_volumes("default".into())
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(
        left,
        vec![format!("lqx-{}-root.qcow2", evil.id)],
        "only the kept volume is left"
    );
    assert!(h.list_domains().await.unwrap().is_empty());
}

#[tokio::test]
async fn sim_keeps_the_contract() {
    let reg = SimRegistry::new();
    let h = reg.create("sim://contract", SimConfig::default()).unwrap();
    contract(Arc::new(h)).await;
}

#[tokio::test]
async fn sim_selected_by_uri_keeps_the_contract() {
    let reg = SimRegistry::new();
    let h = lqx_core::driver::connect_with("sim://by-uri", &reg).await.unwrap();
    contract(h).await;
}

#[tokio::test]
async fn cold_migration_across_backends_via_the_trait() {
    // Two simulated hosts without live migration: Auto falls back to cold.
    let reg = SimRegistry::new();
    let cfg = SimConfig {
        live_migration: false,
        ..SimConfig::default()
    };
    let a: Arc<dyn Hypervisor> = Arc::new(reg.create("sim://a", cfg.clone()).unwrap());
    let b: Arc<dyn Hypervisor> = Arc::new(reg.create("sim://b", cfg).unwrap());
    let s = spec("mover");
    a.define(s.clone()).await.unwrap();
    a.start(s.id).await.unwrap();
    let kind = migrate(
        a.as_ref(),
        b.as_ref(),
        s.id,
        MigrationMode::Auto,
        ColdOptions::default(),
        None,
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!(kind, MigrationKind::Cold);
    assert_eq!(b.domain_state(s.id).await.unwrap(), DomainState::Running);
    assert_eq!(kind_of(a.domain_state(s.id)).await, DriverErrorKind::NotFound);
}

#[cfg(feature = "libvirt")]
mod libvirt {
    use super::*;
    use lqx_core::driver::{
        libvirt::LibvirtHypervisor,
        xml::{TestNode, parse_domain_xml, test_node_xml},
    };

    /// A private test-driver host: its own node file (never `test:///default`).
    struct TestHost {
        _dir: tempfile::TempDir,
        uri: String,
    }

    fn test_host(node: TestNode) -> TestHost {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.xml");
        std::fs::write(&path, test_node_xml(&node)).unwrap();
        let uri = format!("test://{}", path.display());
        TestHost { _dir: dir, uri }
    }

    #[tokio::test]
    async fn libvirt_test_driver_keeps_the_contract() {
        let host = test_host(TestNode::default());
        let h = LibvirtHypervisor::connect(&host.uri).await.unwrap();
        assert!(!h.supports_live_migration(), "the test driver cannot migrate");
        let info = h.node_info().await.unwrap();
        assert_eq!(
            (info.cpus, info.memory_mib),
            (16, 64 * 1024),
            "capacity from the node file"
        );
        contract(Arc::new(h)).await;
    }

    #[tokio::test]
    async fn libvirt_selected_by_uri_keeps_the_contract() {
        let host = test_host(TestNode {
            cpus: 4,
            memory_mib: 8192,
            pool_capacity_gib: 10,
        });
        let h = lqx_core::driver::connect(&host.uri).await.unwrap();
        assert_eq!(h.uri(), host.uri);
        contract(h).await;
    }

    #[tokio::test]
    async fn unreachable_uri_is_unavailable() {
        let e = LibvirtHypervisor::connect("test:///no/such/dir/node.xml")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), DriverErrorKind::Unavailable, "{e}");
    }

    /// Round trip through libvirt: the XML lqx writes, defined by libvirt, read back with
    /// XMLDesc and parsed, matches the spec.
    #[tokio::test]
    async fn domain_xml_round_trips_through_libvirt() {
        let host = test_host(TestNode::default());
        let h = LibvirtHypervisor::connect(&host.uri).await.unwrap();
        let mut s = DomainSpec::new(VmId::new(), "a<b&\"c'", 3, 768);
        s.disks.push(DiskSpec {
            name: "root".into(),
            size_mib: 100,
            pool: "default".into(),
            bus: DiskBus::Virtio,
        });
        s.disks.push(DiskSpec {
            name: "scratch_1".into(),
            size_mib: 10,
            pool: "default".into(),
            bus: DiskBus::Scsi,
        });
        s.nics.push(NicSpec {
            source: NicSource::Bridge("br0".into()),
            mac: Some("52:54:00:12:34:56".into()),
            model: NicModel::E1000,
        });
        s.nics.push(NicSpec {
            source: NicSource::Network("default".into()),
            mac: None,
            model: NicModel::Virtio,
        });
        s.on_crash = CrashAction::Restart;
        h.define(s.clone()).await.unwrap();

        // libvirt's XMLDesc, parsed here (not the driver's own read path).
        let raw = h.domain_xml(s.id).await.unwrap();
        assert!(raw.contains("<title>a&lt;b&amp;&quot;c&apos;</title>"), "{raw}");
        assert!(raw.contains(&format!("<name>lqx-{}</name>", s.id)));
        let parsed = parse_domain_xml(&raw).unwrap();
        let mut want = expected(&s);
        for d in &mut want.disks {
            d.size_mib = 0; // sizes live in the volumes, not in domain XML
        }
        assert_eq!(parsed.spec, want);
        // And through the driver, sizes included.
        assert_eq!(h.domain_spec(s.id).await.unwrap(), expected(&s));
    }

    #[tokio::test]
    async fn cold_migration_between_two_test_driver_hosts() {
        let (ha, hb) = (test_host(TestNode::default()), test_host(TestNode::default()));
        let a = LibvirtHypervisor::connect(&ha.uri).await.unwrap();
        let b = LibvirtHypervisor::connect(&hb.uri).await.unwrap();
        let s = spec("mover");
        a.define(s.clone()).await.unwrap();
        a.start(s.id).await.unwrap();
        let mut steps = Vec::new();
        let kind = migrate(
            &a,
            &b,
            s.id,
            MigrationMode::Auto,
            ColdOptions::default(),
            None,
            &mut |m| steps.push(m.step),
        )
        .await
        .unwrap();
        assert_eq!(kind, MigrationKind::Cold, "live is unsupported on the test driver");
        assert_eq!(steps.len(), 5);
        assert_eq!(b.domain_state(s.id).await.unwrap(), DomainState::Running);
        assert_eq!(b.domain_spec(s.id).await.unwrap(), expected(&s));
        assert_eq!(kind_of(a.domain_state(s.id)).await, DriverErrorKind::NotFound);
    }

    #[tokio::test]
    async fn capacity_comes_from_the_node_file_and_stats_follow_domains() {
        let host = test_host(TestNode {
            cpus: 2,
            memory_mib: 4096,
            pool_capacity_gib: 1,
        });
        let h = LibvirtHypervisor::connect(&host.uri).await.unwrap();
        let before = h.node_stats().await.unwrap();
        assert_eq!((before.memory_total_mib, before.memory_used_mib), (4096, 0));
        let s = spec("stat");
        h.define(s.clone()).await.unwrap();
        h.start(s.id).await.unwrap();
        let after = h.node_stats().await.unwrap();
        assert_eq!(after.memory_used_mib, 512);
        assert!(h.domain_stats(s.id).await.unwrap().cpu_time_ns > 0);
    }
}
