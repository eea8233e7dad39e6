//! VMService requests decoded into the compute layer's commands (apart from
//! `compute.rs`, which the compute layer itself uses to encode: no import loop).

use super::compute::{VmField, ha_in, placement_in, vm_spec_in};
use crate::api::compute::v1 as pb;
use crate::api::convert::{labels_in, mask, request_id_in};
use crate::compute::{CreateVm, MigrateOptions, VmUpdate};
use crate::model::{NodeId, ProjectId};
use crate::{Error, Result};
use std::time::Duration;

/// A CreateVM request in `project`; `resolve` maps a node name or id to its id.
pub fn create_in(
    r: pb::CreateVmRequest,
    project_id: ProjectId,
    resolve: &dyn Fn(&str) -> Option<NodeId>,
) -> Result<CreateVm> {
    let node = match r.node.as_str() {
        "" => None,
        n => Some(resolve(n).ok_or_else(|| Error::not_found("node", n))?),
    };
    Ok(CreateVm {
        spec: vm_spec_in(r.spec.as_ref(), resolve)?,
        request_id: request_id_in(&r.request_id)?,
        name: r.name,
        project_id,
        description: r.description,
        labels: labels_in(&r.labels),
        node,
        start: r.start,
    })
}

/// The change an UpdateVM request asks for (the mask rule is [`mask::resolve`]'s).
pub fn update_in(r: &pb::UpdateVmRequest, resolve: &dyn Fn(&str) -> Option<NodeId>) -> Result<VmUpdate> {
    use VmField as F;
    let spec = r.spec.clone().unwrap_or_default();
    let populated = |f: F| match f {
        F::Description => !r.description.is_empty(),
        F::Labels => !r.labels.is_empty(),
        F::CpuCores => spec.cpu_cores != 0,
        F::MemoryMib => spec.memory_mib != 0,
        F::Ha => spec.ha.is_some(),
        F::Placement => spec.placement.is_some(),
    };
    let mut upd = VmUpdate {
        expected_resource_version: (r.expected_resource_version != 0).then_some(r.expected_resource_version),
        ..Default::default()
    };
    for f in mask::resolve("VM", &r.update_mask, &super::compute::VM_FIELDS, populated)? {
        match f {
            F::Description => upd.description = Some(r.description.clone()),
            F::Labels => upd.labels = Some(labels_in(&r.labels)),
            F::CpuCores => upd.cpu_cores = Some(spec.cpu_cores),
            F::MemoryMib => upd.memory_mib = Some(spec.memory_mib),
            F::Ha => upd.ha = Some(ha_in(&spec.ha.unwrap_or_default())?),
            F::Placement => upd.placement = Some(placement_in(&spec.placement.clone().unwrap_or_default(), resolve)?),
        }
    }
    Ok(upd)
}

pub fn migrate_in(r: &pb::MigrateVmRequest) -> MigrateOptions {
    MigrateOptions {
        target: (!r.target_node.is_empty()).then(|| r.target_node.clone()),
        cold: r.cold,
        live: crate::driver::LiveOptions {
            bandwidth_mib_per_sec: r.bandwidth_mib_per_second,
            timeout: (r.timeout_seconds > 0).then(|| Duration::from_secs(u64::from(r.timeout_seconds))),
            auto_converge: r.auto_converge,
            post_copy: r.post_copy,
            tunnelled: r.tunnelled,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_takes_the_masked_fields_and_an_empty_mask_the_given_ones() {
        let none = |_: &str| None;
        let r = pb::UpdateVmRequest {
            id: "vm".into(),
            description: "new".into(),
            spec: Some(pb::VmSpec {
                cpu_cores: 4,
                ..Default::default()
            }),
            update_mask: vec!["spec.cpuCores".into(), "labels".into()],
            ..Default::default()
        };
        let u = update_in(&r, &none).unwrap();
        assert_eq!((u.cpu_cores, u.labels.as_ref().map(|l| l.len())), (Some(4), Some(0)));
        assert_eq!((u.description, u.memory_mib), (None, None));
        let u = update_in(
            &pb::UpdateVmRequest {
                update_mask: vec![],
                ..r.clone()
            },
            &none,
        )
        .unwrap();
        assert_eq!(
            (u.cpu_cores, u.description.as_deref(), u.labels),
            (Some(4), Some("new"), None)
        );
        let e = update_in(
            &pb::UpdateVmRequest {
                update_mask: vec!["name".into()],
                ..r
            },
            &none,
        )
        .unwrap_err();
        assert!(e.message.contains("\"name\""), "{}", e.message);
    }
}
