use proptest::prelude::*;

use super::testutil::*;
use super::*;
use crate::ErrorKind;

#[test]
fn picks_the_emptier_node_and_breaks_ties_by_name() {
    let s = snapshot(
        vec![node(2, 8, 16384), node(1, 8, 16384), node(3, 8, 16384)],
        vec![vm(1, Some(2), 4, 4096)],
    );
    let req = PlacementRequest {
        cpu_cores: 2,
        memory_mib: 2048,
        ..Default::default()
    };
    // node-1 and node-3 are equally empty; node-1 wins by name.
    assert_eq!(place(&s, &req).unwrap(), node_id(1));
}

#[test]
fn balances_the_fuller_resource() {
    // node-1 has lots of free CPU but little memory; node-2 the opposite but less so.
    let s = snapshot(
        vec![node(1, 16, 16384), node(2, 16, 16384)],
        vec![vm(1, Some(1), 1, 12288), vm(2, Some(2), 32, 2048)],
    );
    let req = PlacementRequest {
        cpu_cores: 2,
        memory_mib: 2048,
        ..Default::default()
    };
    // After placing: node-1 memory 14336/16384 = 0.875; node-2 cpu 34/64 = 0.53.
    assert_eq!(place(&s, &req).unwrap(), node_id(2));
}

#[test]
fn overcommit_is_the_capacity_limit() {
    let s = snapshot(vec![node(1, 4, 8192)], vec![vm(1, Some(1), 14, 1024)]);
    // 4 cores x 4.0 = 16 vCPUs: 2 more fit, 3 do not.
    let fits = PlacementRequest {
        cpu_cores: 2,
        memory_mib: 1024,
        ..Default::default()
    };
    assert_eq!(place(&s, &fits).unwrap(), node_id(1));
    let too_big = PlacementRequest {
        cpu_cores: 3,
        memory_mib: 1024,
        ..Default::default()
    };
    let err = place(&s, &too_big).unwrap_err();
    assert!(
        matches!(err, PlacementError::NoCapacity { best_free_cpu: 2, .. }),
        "{err:?}"
    );
    assert_eq!(crate::Error::from(err).kind, ErrorKind::ResourceExhausted);
    // Memory is not overcommitted.
    let mem = PlacementRequest {
        cpu_cores: 1,
        memory_mib: 7169,
        ..Default::default()
    };
    assert!(matches!(
        place(&s, &mem),
        Err(PlacementError::NoCapacity {
            best_free_memory_mib: 7168,
            ..
        })
    ));
}

#[test]
fn stopped_vms_still_hold_their_allocation() {
    let mut v = vm(1, Some(1), 1, 8192);
    v.running = false;
    let s = snapshot(vec![node(1, 4, 8192)], vec![v]);
    let req = PlacementRequest {
        cpu_cores: 1,
        memory_mib: 1024,
        ..Default::default()
    };
    assert!(matches!(place(&s, &req), Err(PlacementError::NoCapacity { .. })));
}

#[test]
fn phases_and_cordons_are_filtered_and_counted() {
    let mut n2 = node(2, 8, 8192);
    n2.phase = NodePhase::Maintenance;
    let mut n3 = node(3, 8, 8192);
    n3.phase = NodePhase::Maintenance;
    let mut n4 = node(4, 8, 8192);
    n4.schedulable = false;
    let s = snapshot(vec![node(1, 8, 1024), n2, n3, n4], vec![]);
    let req = PlacementRequest {
        cpu_cores: 1,
        memory_mib: 2048,
        ..Default::default()
    };
    let err = place(&s, &req).unwrap_err();
    // node-1 lacks memory, but it is not the only reason: capacity is still the blocker on
    // the one eligible node, so this is a capacity error that also lists the others.
    match &err {
        PlacementError::NoCapacity { filtered, .. } => {
            assert_eq!(filtered.maintenance, 2);
            assert_eq!(filtered.unschedulable, 1);
            assert_eq!(filtered.lacks_memory, 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    // Without node-1 nothing is eligible at all: a precondition naming why.
    let s2 = snapshot(s.nodes[1..].to_vec(), vec![]);
    let err = place(&s2, &req).unwrap_err();
    assert_eq!(err.to_string(), "No node fits: 2 in maintenance, 1 unschedulable");
    assert_eq!(crate::Error::from(err).kind, ErrorKind::FailedPrecondition);
}

#[test]
fn required_excluded_and_anti_affinity() {
    let mut a = vm(1, Some(1), 1, 1024);
    a.placement.anti_affinity_group = Some("web".into());
    let s = snapshot(vec![node(1, 8, 8192), node(2, 8, 8192), node(3, 8, 8192)], vec![a]);
    let req = PlacementRequest {
        cpu_cores: 1,
        memory_mib: 1024,
        anti_affinity_group: Some("web".into()),
        excluded_nodes: vec![node_id(2)],
        ..Default::default()
    };
    assert_eq!(place(&s, &req).unwrap(), node_id(3));
    let req2 = PlacementRequest {
        required_nodes: vec![node_id(1), node_id(2)],
        ..req.clone()
    };
    let err = place(&s, &req2).unwrap_err();
    assert_eq!(
        err.to_string(),
        "No node fits: 1 not a required node, 1 excluded, 1 holds a VM of the same anti-affinity group"
    );
    let contradictory = PlacementRequest {
        required_nodes: vec![node_id(2)],
        ..req
    };
    let err = place(&s, &contradictory).unwrap_err();
    assert!(matches!(err, PlacementError::Constraints(_)));
    assert_eq!(crate::Error::from(err).kind, ErrorKind::InvalidArgument);
}

#[test]
fn replacing_a_vm_does_not_count_itself() {
    let mut a = vm(1, Some(1), 4, 8192);
    a.placement.anti_affinity_group = Some("db".into());
    let s = snapshot(vec![node(1, 1, 8192)], vec![a.clone()]);
    // Without skipping itself, node-1 would be full and hold a "db" member.
    assert_eq!(place(&s, &PlacementRequest::for_vm(&a)).unwrap(), node_id(1));
}

#[test]
fn no_nodes_is_a_precondition() {
    let err = place(&ClusterSnapshot::default(), &PlacementRequest::default()).unwrap_err();
    assert_eq!(err, PlacementError::NoNodes);
    assert_eq!(crate::Error::from(err).kind, ErrorKind::FailedPrecondition);
}

#[test]
fn place_many_sees_earlier_placements() {
    let mut failed = node(9, 8, 65536);
    failed.phase = NodePhase::NotReady;
    let vms: Vec<_> = (0..3)
        .map(|i| {
            let mut v = vm(i, Some(9), 2, 4096);
            v.placement.anti_affinity_group = Some("g".into());
            v
        })
        .collect();
    let s = snapshot(vec![failed, node(1, 8, 8192), node(2, 8, 8192)], vms.clone());
    let reqs: Vec<_> = vms.iter().map(PlacementRequest::for_vm).collect();
    let out = place_many(&s, &reqs);
    assert_eq!(out[0], Ok(node_id(1)));
    assert_eq!(out[1], Ok(node_id(2)));
    // Both live nodes now hold a "g" member.
    assert!(matches!(&out[2], Err(PlacementError::AllFiltered(c)) if c.anti_affinity == 2 && c.not_ready == 1));
}

fn arb_cluster() -> impl Strategy<Value = (ClusterSnapshot, Vec<PlacementRequest>)> {
    let nodes = prop::collection::vec((1u32..16, 1u64..16, 0u8..10, any::<bool>()), 1..8);
    let reqs = prop::collection::vec((1u32..16, 1u64..16, 0u8..6, prop::option::of(0u8..3)), 1..40);
    (nodes, reqs).prop_map(|(nodes, reqs)| {
        let n = nodes.len();
        let nodes = nodes
            .into_iter()
            .enumerate()
            .map(|(i, (c, m, phase, sched))| {
                let mut nd = node(i, c, m * 1024);
                nd.cpu_overcommit = if i % 2 == 0 { 1.0 } else { 2.5 };
                nd.phase = match phase {
                    0 => NodePhase::Maintenance,
                    1 => NodePhase::NotReady,
                    _ => NodePhase::Ready,
                };
                nd.schedulable = sched || phase > 5;
                nd
            })
            .collect();
        let reqs = reqs
            .into_iter()
            .map(|(c, m, k, g)| PlacementRequest {
                cpu_cores: c,
                memory_mib: m * 512,
                required_nodes: if k == 0 {
                    vec![node_id(0), node_id(n / 2)]
                } else {
                    vec![]
                },
                excluded_nodes: if k == 1 { vec![node_id(n - 1)] } else { vec![] },
                anti_affinity_group: g.map(|g| format!("g{g}")),
                vm: None,
            })
            .collect();
        (snapshot(nodes, vec![]), reqs)
    })
}

proptest! {
    #[test]
    fn placements_keep_capacity_and_constraints((s, reqs) in arb_cluster()) {
        let out = place_many(&s, &reqs);
        let mut cpu = vec![0.0; s.nodes.len()];
        let mut mem = vec![0.0; s.nodes.len()];
        let mut groups: std::collections::HashSet<(usize, String)> = Default::default();
        for (req, res) in reqs.iter().zip(&out) {
            let Ok(id) = res else { continue };
            let i = s.nodes.iter().position(|n| n.id == *id).unwrap();
            let n = &s.nodes[i];
            prop_assert!(n.accepts_vms());
            prop_assert!(req.required_nodes.is_empty() || req.required_nodes.contains(id));
            prop_assert!(!req.excluded_nodes.contains(id));
            if let Some(g) = &req.anti_affinity_group {
                prop_assert!(groups.insert((i, g.clone())), "two {} members on {}", g, n.name);
            }
            cpu[i] += req.cpu_cores as f64;
            mem[i] += req.memory_mib as f64;
            prop_assert!(cpu[i] <= n.cpu_limit() + 1e-9);
            prop_assert!(mem[i] <= n.memory_limit_mib() + 1e-9);
        }
        // A request fails only when no node could have taken it at that point.
        for (k, res) in out.iter().enumerate() {
            if res.is_err() {
                let mut partial = s.clone();
                for (j, r) in out.iter().enumerate().take(k) {
                    if let Ok(id) = r {
                        let mut v = vm(1000 + j, None, reqs[j].cpu_cores, reqs[j].memory_mib);
                        v.node = Some(*id);
                        v.placement.anti_affinity_group = reqs[j].anti_affinity_group.clone();
                        partial.vms.push(v);
                    }
                }
                let occ = Occupancy::new(&partial, &[]);
                for i in 0..partial.nodes.len() {
                    prop_assert!(occ.check(&partial, i, &reqs[k].view()).is_some());
                }
            }
        }
    }

    #[test]
    fn totals_give_the_same_answer_as_every_vm((s, reqs) in arb_cluster()) {
        // Fill the cluster with the first half, then place the rest both ways.
        let (first, rest) = reqs.split_at(reqs.len() / 2);
        let mut full = s.clone();
        for (j, (req, res)) in first.iter().zip(place_many(&s, first)).enumerate() {
            if let Ok(id) = res {
                let mut v = vm(1000 + j, None, req.cpu_cores, req.memory_mib);
                v.node = Some(id);
                v.placement.anti_affinity_group = req.anti_affinity_group.clone();
                full.vms.push(v);
            }
        }
        let mut totals: HashMap<NodeId, NodeAllocation> = HashMap::new();
        for v in &full.vms {
            let n = v.node.unwrap();
            let a = totals.entry(n).or_insert(NodeAllocation { node: n, cpu_cores: 0, memory_mib: 0 });
            a.cpu_cores += v.cpu_cores as u64;
            a.memory_mib += v.memory_mib;
        }
        let totals: Vec<NodeAllocation> = totals.into_values().collect();
        for req in rest {
            let group_nodes: Vec<NodeId> = full
                .vms
                .iter()
                .filter(|v| v.placement.anti_affinity_group.is_some() && v.placement.anti_affinity_group == req.anti_affinity_group)
                .filter_map(|v| v.node)
                .collect();
            let nodes_only = ClusterSnapshot { nodes: full.nodes.clone(), vms: vec![] };
            prop_assert_eq!(place(&full, req), place_on(&nodes_only, &totals, &group_nodes, req));
        }
    }
}
