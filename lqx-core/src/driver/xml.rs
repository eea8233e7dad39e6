//! libvirt XML: domain definitions written with a real XML writer (quick-xml; every text and
//! attribute value is escaped, so a VM named `a<b&"c'` cannot inject markup), a parser for the
//! subset lqx writes (roxmltree), storage volume/pool XML, and node files for libvirt's test
//! driver.
//!
//! Naming: the libvirt domain name is `lqx-<vm uuid>` (unique and shell/path-safe whatever the
//! display name); the display name goes into `<title>`. Disk volumes are
//! `lqx-<vm uuid>-<disk>.qcow2` in the disk's pool.

use std::io::Cursor;

use quick_xml::{Writer, events::BytesText};

use super::{
    CrashAction, DiskBus, DiskSpec, DomainSpec, DriverError, DriverResult, GuestCpu, NicModel, NicSource, NicSpec,
};
use crate::model::VmId;

/// Prefix of every domain lqx defines.
pub const DOMAIN_PREFIX: &str = "lqx-";

/// The libvirt domain name of a VM.
pub fn domain_name(id: VmId) -> String {
    format!("{DOMAIN_PREFIX}{id}")
}

/// The volume name of one of a VM's disks.
pub fn volume_name(id: VmId, disk: &str) -> String {
    format!("{DOMAIN_PREFIX}{id}-{disk}.qcow2")
}

/// The libvirt domain type (`<domain type=...>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainType {
    /// Hardware virtualization.
    Kvm,
    /// QEMU emulation (TCG), where /dev/kvm is missing.
    Qemu,
    /// libvirt's test driver.
    Test,
}

impl DomainType {
    pub fn as_str(self) -> &'static str {
        match self {
            DomainType::Kvm => "kvm",
            DomainType::Qemu => "qemu",
            DomainType::Test => "test",
        }
    }
}

type W = Writer<Cursor<Vec<u8>>>;
type IoResult = std::io::Result<()>;

fn text(w: &mut W, name: &str, value: &str) -> IoResult {
    w.create_element(name).write_text_content(BytesText::new(value))?;
    Ok(())
}

fn empty(w: &mut W, name: &str, attrs: &[(&str, &str)]) -> IoResult {
    w.create_element(name)
        .with_attributes(attrs.iter().copied())
        .write_empty()?;
    Ok(())
}

fn finish(w: W) -> String {
    // The writer only ever receives &str, so the bytes are UTF-8.
    String::from_utf8(w.into_inner().into_inner()).unwrap_or_default()
}

fn writer() -> W {
    Writer::new_with_indent(Cursor::new(Vec::new()), b' ', 2)
}

/// The domain XML for `spec`. The spec should have passed [`DomainSpec::validate`].
pub fn domain_xml(spec: &DomainSpec, ty: DomainType) -> String {
    let mut w = writer();
    // Writing into a Vec cannot fail.
    let _ = write_domain(&mut w, spec, ty);
    finish(w)
}

fn write_domain(w: &mut W, spec: &DomainSpec, ty: DomainType) -> IoResult {
    let kib = (spec.memory_mib * 1024).to_string();
    let vcpus = spec.vcpus.to_string();
    let hw = ty != DomainType::Test;
    w.create_element("domain")
        .with_attribute(("type", ty.as_str()))
        .write_inner_content(|w| {
            text(w, "name", &domain_name(spec.id))?;
            text(w, "uuid", &spec.id.to_string())?;
            text(w, "title", &spec.name)?;
            text(w, "description", "Managed by lqx")?;
            w.create_element("memory")
                .with_attribute(("unit", "KiB"))
                .write_text_content(BytesText::new(&kib))?;
            w.create_element("currentMemory")
                .with_attribute(("unit", "KiB"))
                .write_text_content(BytesText::new(&kib))?;
            w.create_element("vcpu")
                .with_attribute(("placement", "static"))
                .write_text_content(BytesText::new(&vcpus))?;
            w.create_element("os").write_inner_content(|w| {
                text(w, "type", "hvm")?;
                empty(w, "boot", &[("dev", "hd")])
            })?;
            w.create_element("features").write_inner_content(|w| {
                empty(w, "acpi", &[])?;
                empty(w, "apic", &[])
            })?;
            match &spec.cpu {
                // host-model, not passthrough: the definition moves to hosts of the same model.
                GuestCpu::HostModel if ty == DomainType::Kvm => empty(w, "cpu", &[("mode", "host-model")])?,
                GuestCpu::HostModel => {}
                GuestCpu::Model(m) if hw => {
                    w.create_element("cpu")
                        .with_attributes([("mode", "custom"), ("match", "exact"), ("check", "partial")])
                        .write_inner_content(|w| {
                            w.create_element("model")
                                .with_attribute(("fallback", "forbid"))
                                .write_text_content(BytesText::new(m))?;
                            Ok(())
                        })?;
                }
                GuestCpu::Model(_) => {}
            }
            empty(w, "clock", &[("offset", "utc")])?;
            text(w, "on_poweroff", "destroy")?;
            text(w, "on_reboot", "restart")?;
            text(w, "on_crash", spec.on_crash.as_str())?;
            w.create_element("devices").write_inner_content(|w| {
                let mut vd = 0u8;
                let mut sd = 0u8;
                for d in &spec.disks {
                    let counter = if d.bus == DiskBus::Virtio { &mut vd } else { &mut sd };
                    let dev = format!(
                        "{}{}",
                        if d.bus == DiskBus::Virtio { "vd" } else { "sd" },
                        (b'a' + *counter) as char
                    );
                    *counter += 1;
                    write_disk(w, spec.id, d, &dev)?;
                }
                if hw && spec.disks.iter().any(|d| d.bus == DiskBus::Scsi) {
                    empty(
                        w,
                        "controller",
                        &[("type", "scsi"), ("index", "0"), ("model", "virtio-scsi")],
                    )?;
                }
                for (i, n) in spec.nics.iter().enumerate() {
                    write_nic(w, spec.id, i, n)?;
                }
                if spec.serial_console {
                    w.create_element("serial")
                        .with_attribute(("type", "pty"))
                        .write_inner_content(|w| empty(w, "target", &[("port", "0")]))?;
                    w.create_element("console")
                        .with_attribute(("type", "pty"))
                        .write_inner_content(|w| empty(w, "target", &[("type", "serial"), ("port", "0")]))?;
                }
                if hw {
                    w.create_element("channel")
                        .with_attribute(("type", "unix"))
                        .write_inner_content(|w| {
                            empty(w, "target", &[("type", "virtio"), ("name", "org.qemu.guest_agent.0")])
                        })?;
                    // The balloon reports guest memory use (per-domain stats).
                    empty(w, "memballoon", &[("model", "virtio")])?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
    Ok(())
}

fn write_disk(w: &mut W, id: VmId, d: &DiskSpec, dev: &str) -> IoResult {
    let vol = volume_name(id, &d.name);
    w.create_element("disk")
        .with_attributes([("type", "volume"), ("device", "disk")])
        .write_inner_content(|w| {
            empty(w, "driver", &[("name", "qemu"), ("type", "qcow2")])?;
            empty(w, "source", &[("pool", d.pool.as_str()), ("volume", vol.as_str())])?;
            empty(w, "target", &[("dev", dev), ("bus", d.bus.as_str())])
        })?;
    Ok(())
}

fn write_nic(w: &mut W, id: VmId, index: usize, n: &NicSpec) -> IoResult {
    let (ty, key, name) = match &n.source {
        NicSource::Network(s) => ("network", "network", s.as_str()),
        NicSource::Bridge(s) => ("bridge", "bridge", s.as_str()),
    };
    let mac = n.effective_mac(id, index);
    w.create_element("interface")
        .with_attribute(("type", ty))
        .write_inner_content(|w| {
            empty(w, "mac", &[("address", mac.as_str())])?;
            empty(w, "source", &[(key, name)])?;
            empty(w, "model", &[("type", n.model.as_str())])
        })?;
    Ok(())
}

/// XML for a qcow2 volume of `size_mib`.
pub fn volume_xml(name: &str, size_mib: u64) -> String {
    let mut w = writer();
    let cap = size_mib.to_string();
    let _ = w.create_element("volume").write_inner_content(|w| {
        text(w, "name", name)?;
        w.create_element("capacity")
            .with_attribute(("unit", "MiB"))
            .write_text_content(BytesText::new(&cap))?;
        w.create_element("allocation")
            .with_attribute(("unit", "MiB"))
            .write_text_content(BytesText::new("0"))?;
        w.create_element("target")
            .write_inner_content(|w| empty(w, "format", &[("type", "qcow2")]))?;
        Ok(())
    });
    finish(w)
}

/// XML for a directory storage pool at `path`.
pub fn dir_pool_xml(name: &str, path: &str) -> String {
    let mut w = writer();
    let _ = w
        .create_element("pool")
        .with_attribute(("type", "dir"))
        .write_inner_content(|w| {
            text(w, "name", name)?;
            w.create_element("target")
                .write_inner_content(|w| text(w, "path", path))?;
            Ok(())
        });
    finish(w)
}

/// A host for libvirt's test driver: the content of the file behind `test:///<file>.xml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestNode {
    pub cpus: u32,
    pub memory_mib: u64,
    /// Capacity of the `default` directory pool (the test driver keeps volumes in memory).
    pub pool_capacity_gib: u64,
}

impl Default for TestNode {
    fn default() -> Self {
        TestNode {
            cpus: 16,
            memory_mib: 64 * 1024,
            pool_capacity_gib: 1024,
        }
    }
}

/// The node file for libvirt's test driver: CPUs, memory, a `default` NAT network and a
/// `default` directory pool, no domains.
pub fn test_node_xml(node: &TestNode) -> String {
    let mut w = writer();
    let cpus = node.cpus.max(1);
    let kib = (node.memory_mib * 1024).to_string();
    let gib = node.pool_capacity_gib.to_string();
    let _ = w.create_element("node").write_inner_content(|w| {
        w.create_element("cpu").write_inner_content(|w| {
            text(w, "mhz", "2400")?;
            text(w, "model", "lqx-test")?;
            text(w, "active", &cpus.to_string())?;
            text(w, "nodes", "1")?;
            text(w, "sockets", "1")?;
            text(w, "cores", &cpus.to_string())?;
            text(w, "threads", "1")
        })?;
        text(w, "memory", &kib)?;
        w.create_element("network").write_inner_content(|w| {
            text(w, "name", "default")?;
            empty(w, "bridge", &[("name", "virbr0")])?;
            empty(w, "forward", &[("mode", "nat")])?;
            w.create_element("ip")
                .with_attributes([("address", "192.168.122.1"), ("netmask", "255.255.255.0")])
                .write_inner_content(|w| {
                    w.create_element("dhcp").write_inner_content(|w| {
                        empty(w, "range", &[("start", "192.168.122.2"), ("end", "192.168.122.254")])
                    })?;
                    Ok(())
                })?;
            Ok(())
        })?;
        w.create_element("pool")
            .with_attribute(("type", "dir"))
            .write_inner_content(|w| {
                text(w, "name", "default")?;
                w.create_element("capacity")
                    .with_attribute(("unit", "GiB"))
                    .write_text_content(BytesText::new(&gib))?;
                text(w, "allocation", "0")?;
                w.create_element("available")
                    .with_attribute(("unit", "GiB"))
                    .write_text_content(BytesText::new(&gib))?;
                w.create_element("target")
                    .write_inner_content(|w| text(w, "path", "/var/lib/libvirt/images"))?;
                Ok(())
            })?;
        Ok(())
    });
    finish(w)
}

/// A domain read back from libvirt. Disk sizes are not in domain XML: `spec.disks[].size_mib`
/// is 0 until the caller fills it in from the volumes (`volumes` has the same order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedDomain {
    pub spec: DomainSpec,
    /// The libvirt domain name.
    pub domain_name: String,
    /// `(pool, volume)` of each disk, in `spec.disks` order.
    pub volumes: Vec<(String, String)>,
    /// The domain has a `<title>`.
    pub has_title: bool,
}

fn xml_err(why: impl std::fmt::Display) -> DriverError {
    DriverError::Other(format!("Unreadable domain XML: {why}"))
}

/// Parses what [`domain_xml`] writes (and what libvirt's `XMLDesc` returns for it). Devices
/// lqx does not write (cdroms, file disks, other interfaces) are ignored.
pub fn parse_domain_xml(xml: &str) -> DriverResult<ParsedDomain> {
    let doc = roxmltree::Document::parse(xml).map_err(xml_err)?;
    let root = doc.root_element();
    if root.tag_name().name() != "domain" {
        return Err(xml_err("root element is not <domain>"));
    }
    let child_text = |name: &str| child(root, name).map(|n| n.text().unwrap_or("").to_string());

    let uuid = child_text("uuid").ok_or_else(|| xml_err("no <uuid>"))?;
    let id: VmId = uuid.trim().parse().map_err(|_| xml_err(format!("bad uuid {uuid:?}")))?;
    let domain_name = child_text("name").ok_or_else(|| xml_err("no <name>"))?;
    let title = child_text("title");
    let vcpus: u32 = child_text("vcpu")
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| xml_err("no or bad <vcpu>"))?;
    let mem = child(root, "memory").ok_or_else(|| xml_err("no <memory>"))?;
    let memory_mib = parse_size_mib(mem.text().unwrap_or(""), mem.attribute("unit").unwrap_or("KiB"))
        .ok_or_else(|| xml_err("bad <memory>"))?;
    let on_crash = child_text("on_crash")
        .and_then(|s| CrashAction::parse(s.trim()))
        .unwrap_or_default();

    let mut spec = DomainSpec::new(
        id,
        title.clone().unwrap_or_else(|| domain_name.clone()),
        vcpus,
        memory_mib,
    );
    spec.on_crash = on_crash;
    spec.serial_console = false;
    if let Some(cpu) = child(root, "cpu")
        && cpu.attribute("mode") == Some("custom")
        && let Some(m) = child(cpu, "model").and_then(|m| m.text())
    {
        spec.cpu = GuestCpu::Model(m.trim().to_string());
    }
    let mut volumes = Vec::new();
    let vol_prefix = format!("{DOMAIN_PREFIX}{id}-");
    if let Some(devices) = child(root, "devices") {
        for dev in devices.children().filter(|c| c.is_element()) {
            match dev.tag_name().name() {
                "disk"
                    if dev.attribute("type") == Some("volume")
                        && dev.attribute("device").unwrap_or("disk") == "disk" =>
                {
                    let Some(src) = child(dev, "source") else {
                        continue;
                    };
                    let (Some(pool), Some(vol)) = (src.attribute("pool"), src.attribute("volume")) else {
                        continue;
                    };
                    let bus = child(dev, "target")
                        .and_then(|t| t.attribute("bus"))
                        .and_then(DiskBus::parse)
                        .unwrap_or_default();
                    let name = vol
                        .strip_prefix(&vol_prefix)
                        .and_then(|v| v.strip_suffix(".qcow2"))
                        .unwrap_or(vol)
                        .to_string();
                    spec.disks.push(DiskSpec {
                        name,
                        size_mib: 0,
                        pool: pool.to_string(),
                        bus,
                    });
                    volumes.push((pool.to_string(), vol.to_string()));
                }
                "interface" => {
                    let Some(src) = child(dev, "source") else {
                        continue;
                    };
                    let source = match dev.attribute("type") {
                        Some("network") => src.attribute("network").map(|s| NicSource::Network(s.into())),
                        Some("bridge") => src.attribute("bridge").map(|s| NicSource::Bridge(s.into())),
                        _ => None,
                    };
                    let Some(source) = source else { continue };
                    let mac = child(dev, "mac")
                        .and_then(|m| m.attribute("address"))
                        .map(str::to_ascii_lowercase);
                    let model = child(dev, "model")
                        .and_then(|m| m.attribute("type"))
                        .and_then(NicModel::parse)
                        .unwrap_or_default();
                    spec.nics.push(NicSpec { source, mac, model });
                }
                "serial" if dev.attribute("type") == Some("pty") => spec.serial_console = true,
                _ => {}
            }
        }
    }
    Ok(ParsedDomain {
        spec,
        domain_name,
        volumes,
        has_title: title.is_some(),
    })
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.is_element() && c.tag_name().name() == name)
}

/// libvirt sizes: a number with a unit (b, KiB, MiB, GiB, TiB, and their SI/short spellings).
fn parse_size_mib(value: &str, unit: &str) -> Option<u64> {
    let v: u64 = value.trim().parse().ok()?;
    let bytes: u128 = match unit {
        "b" | "bytes" => 1,
        "KB" => 1000,
        "k" | "KiB" => 1024,
        "MB" => 1000 * 1000,
        "M" | "MiB" => 1024 * 1024,
        "GB" => 1000 * 1000 * 1000,
        "G" | "GiB" => 1024 * 1024 * 1024,
        "T" | "TiB" => 1024u128.pow(4),
        _ => return None,
    };
    Some(((v as u128 * bytes) / (1024 * 1024)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::default_pool;

    fn spec(name: &str) -> DomainSpec {
        let mut s = DomainSpec::new(VmId::new(), name, 2, 512);
        s.disks.push(DiskSpec {
            name: "root".into(),
            size_mib: 2048,
            pool: default_pool(),
            bus: DiskBus::Virtio,
        });
        s.disks.push(DiskSpec {
            name: "data".into(),
            size_mib: 100,
            pool: default_pool(),
            bus: DiskBus::Scsi,
        });
        s.nics.push(NicSpec {
            source: NicSource::Network("default".into()),
            mac: Some("52:54:00:aa:bb:cc".into()),
            model: NicModel::Virtio,
        });
        s.nics.push(NicSpec {
            source: NicSource::Bridge("br0".into()),
            mac: None,
            model: NicModel::E1000,
        });
        s.on_crash = CrashAction::Restart;
        s
    }

    #[test]
    fn hostile_name_is_escaped_not_injected() {
        let evil = "a<b&\"c'</title><devices><disk type='file'><source file='/etc/shadow'/></disk></devices><title>";
        let s = spec(evil);
        let xml = domain_xml(&s, DomainType::Kvm);
        assert!(!xml.contains("/etc/shadow'/>"), "{xml}");
        assert!(xml.contains("a&lt;b&amp;&quot;c&apos;&lt;/title&gt;"), "{xml}");
        // Exactly the elements lqx wrote, and the name comes back verbatim.
        let doc = roxmltree::Document::parse(&xml).unwrap();
        assert_eq!(doc.descendants().filter(|n| n.has_tag_name("title")).count(), 1);
        assert_eq!(doc.descendants().filter(|n| n.has_tag_name("disk")).count(), 2);
        let parsed = parse_domain_xml(&xml).unwrap();
        assert_eq!(parsed.spec.name, evil);
        assert_eq!(parsed.domain_name, domain_name(s.id));
    }

    #[test]
    fn small_hostile_name_round_trips() {
        let s = spec("a<b&\"c'");
        let xml = domain_xml(&s, DomainType::Test);
        assert!(xml.contains("<title>a&lt;b&amp;&quot;c&apos;</title>"), "{xml}");
        assert_eq!(parse_domain_xml(&xml).unwrap().spec.name, "a<b&\"c'");
    }

    #[test]
    fn a_named_cpu_model_is_written_for_kvm_and_tcg_and_read_back() {
        let mut s = spec("web-1");
        s.cpu = GuestCpu::Model("Haswell-noTSX".into());
        for ty in [DomainType::Kvm, DomainType::Qemu] {
            let xml = domain_xml(&s, ty);
            assert!(
                xml.contains("<cpu mode=\"custom\" match=\"exact\" check=\"partial\">"),
                "{xml}"
            );
            assert!(
                xml.contains("<model fallback=\"forbid\">Haswell-noTSX</model>"),
                "{xml}"
            );
            assert_eq!(parse_domain_xml(&xml).unwrap().spec.cpu, s.cpu);
        }
        s.cpu = GuestCpu::HostModel;
        assert!(domain_xml(&s, DomainType::Kvm).contains("<cpu mode=\"host-model\"/>"));
        assert!(!domain_xml(&s, DomainType::Qemu).contains("<cpu"));
        assert!(GuestCpu::parse("x86-64-v2").is_ok());
        assert!(GuestCpu::parse("a b").is_err());
        assert!(GuestCpu::parse("").is_err());
    }

    #[test]
    fn generated_xml_parses_back_to_the_spec() {
        for ty in [DomainType::Kvm, DomainType::Qemu, DomainType::Test] {
            let s = spec("web-1");
            let xml = domain_xml(&s, ty);
            let p = parse_domain_xml(&xml).unwrap();
            let mut want = s.clone();
            for d in &mut want.disks {
                d.size_mib = 0;
            }
            want.nics[1].mac = Some(s.nics[1].effective_mac(s.id, 1));
            assert_eq!(p.spec, want, "{ty:?}");
            assert_eq!(p.volumes[0], ("default".to_string(), volume_name(s.id, "root")));
        }
    }

    #[test]
    fn devices_and_units() {
        let s = spec("x");
        let xml = domain_xml(&s, DomainType::Kvm);
        assert!(xml.contains("<domain type=\"kvm\">"));
        assert!(xml.contains("<memory unit=\"KiB\">524288</memory>"));
        assert!(xml.contains("<target dev=\"vda\" bus=\"virtio\"/>"));
        assert!(xml.contains("<target dev=\"sda\" bus=\"scsi\"/>"));
        assert!(xml.contains("model=\"virtio-scsi\""));
        assert!(xml.contains("<source pool=\"default\" volume=\"lqx-"));
        assert!(xml.contains("<console type=\"pty\">"));
        assert!(xml.contains("<on_crash>restart</on_crash>"));
        let test = domain_xml(&s, DomainType::Test);
        assert!(!test.contains("memballoon") && !test.contains("host-model"));
    }

    #[test]
    fn sizes_in_libvirt_units() {
        assert_eq!(parse_size_mib("1048576", "KiB"), Some(1024));
        assert_eq!(parse_size_mib("2", "GiB"), Some(2048));
        assert_eq!(parse_size_mib("10485760", "bytes"), Some(10));
        assert_eq!(parse_size_mib("x", "KiB"), None);
        assert_eq!(parse_size_mib("1", "parsecs"), None);
    }

    #[test]
    fn parse_rejects_garbage() {
        assert!(parse_domain_xml("<domain><name>x</name></domain>").is_err());
        assert!(parse_domain_xml("not xml").is_err());
        assert!(parse_domain_xml("<network/>").is_err());
    }

    #[test]
    fn volume_and_node_files_are_well_formed() {
        let v = volume_xml("lqx-x-root.qcow2", 10);
        let d = roxmltree::Document::parse(&v).unwrap();
        assert_eq!(
            d.descendants()
                .find(|n| n.has_tag_name("format"))
                .unwrap()
                .attribute("type"),
            Some("qcow2")
        );
        let n = test_node_xml(&TestNode {
            cpus: 4,
            memory_mib: 8192,
            pool_capacity_gib: 10,
        });
        let d = roxmltree::Document::parse(&n).unwrap();
        assert_eq!(
            d.descendants().find(|n| n.has_tag_name("memory")).unwrap().text(),
            Some("8388608")
        );
        assert_eq!(
            d.descendants().find(|n| n.has_tag_name("active")).unwrap().text(),
            Some("4")
        );
        let p = dir_pool_xml("default", "/var/lib/libvirt/images");
        assert!(roxmltree::Document::parse(&p).is_ok());
    }
}
