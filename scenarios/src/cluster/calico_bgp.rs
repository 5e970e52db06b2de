//! The `bgp` section a `calico-ipip` or `calico-bgp` cluster implies: one
//! Calico Node per node (its address, its podCIDR as its IPAM block), the
//! IP pool (the cluster CIDR in the cluster's IPIP mode), and either
//! Calico's node-to-node mesh, route reflectors chosen among the nodes, or
//! the AS-per-rack model with the top-of-rack routers as peers.

use std::collections::BTreeMap;

use super::{Cluster, Cni};
use crate::bgp::{BgpNodeSpec, BgpPeerSpec, BgpSpec, NeighborSpec, PoolSpec, RouterSpec};

/// The cluster id Calico's route-reflector guide uses.
pub const RR_CLUSTER_ID: &str = "244.0.0.1";

/// The first AS of the AS-per-rack model (rack r gets 65000 + r).
pub const RACK_AS_BASE: u32 = 65000;

pub fn bgp_section(c: &Cluster) -> Option<BgpSpec> {
    let cs = c.calico.as_ref()?;
    let ipip_mode = match c.cni {
        Cni::CalicoIpip => cs.ipip_mode.clone().unwrap_or_else(|| "Always".into()),
        _ => "Never".into(),
    };
    let rr = cs.route_reflectors as usize;
    let mut nodes = Vec::new();
    for (i, n) in c.nodes.iter().enumerate() {
        let mut labels = BTreeMap::new();
        let mut cluster_id = None;
        if i < rr {
            labels.insert("route-reflector".to_string(), "true".to_string());
            cluster_id = Some(RR_CLUSTER_ID.to_string());
        }
        if cs.tor_peering {
            labels.insert("rack".to_string(), format!("r{}", n.rack + 1));
        }
        nodes.push(BgpNodeSpec {
            host: n.name.clone(),
            address: n.ip.to_string(),
            blocks: vec![n.pod_cidr.to_string()],
            as_number: cs.tor_peering.then_some(RACK_AS_BASE + n.rack + 1),
            route_reflector_cluster_id: cluster_id,
            labels,
        });
    }
    let mut peers = Vec::new();
    let mut routers = Vec::new();
    if rr > 0 {
        peers.push(BgpPeerSpec {
            name: "peer-with-route-reflectors".into(),
            node: None,
            node_selector: Some("all()".into()),
            peer_ip: None,
            as_number: None,
            peer_selector: Some("route-reflector == 'true'".into()),
            keep_original_next_hop: false,
        });
    }
    if cs.tor_peering {
        // Each rack's nodes peer with their top-of-rack router (its rack
        // address, the nodes' gateway); the routers peer over eBGP on the
        // spine segment.
        let racks: Vec<u32> = {
            let mut v: Vec<u32> = c.nodes.iter().map(|n| n.rack).collect();
            v.dedup();
            v
        };
        let tor_spine = |r: u32| -> Option<String> {
            let tor = c
                .routers
                .iter()
                .find(|h| h.name == format!("tor{}", r + 1))?;
            let a = tor
                .nics
                .iter()
                .find(|n| n.segment == "spine")?
                .address
                .clone()?;
            Some(a.split('/').next()?.to_string())
        };
        for &r in &racks {
            let Some(first) = c.nodes.iter().find(|n| n.rack == r) else {
                continue;
            };
            let asn = RACK_AS_BASE + r + 1;
            peers.push(BgpPeerSpec {
                name: format!("rack{}-tor", r + 1),
                node: None,
                node_selector: Some(format!("rack == 'r{}'", r + 1)),
                peer_ip: Some(first.gateway.to_string()),
                as_number: Some(asn),
                peer_selector: None,
                keep_original_next_hop: false,
            });
            let mut neighbors: Vec<NeighborSpec> = c
                .nodes
                .iter()
                .filter(|n| n.rack == r)
                .map(|n| NeighborSpec {
                    address: n.ip.to_string(),
                    remote_as: asn,
                    local_address: Some(first.gateway.to_string()),
                    rr_client: true,
                    next_hop_self: true,
                    passive: false,
                })
                .collect();
            let Some(my_spine) = tor_spine(r) else {
                continue;
            };
            for &o in &racks {
                if o != r
                    && let Some(addr) = tor_spine(o)
                {
                    neighbors.push(NeighborSpec {
                        address: addr,
                        remote_as: RACK_AS_BASE + o + 1,
                        local_address: Some(my_spine.clone()),
                        rr_client: false,
                        next_hop_self: false,
                        passive: false,
                    });
                }
            }
            routers.push(RouterSpec {
                host: format!("tor{}", r + 1),
                as_number: asn,
                router_id: first.gateway.to_string(),
                originate: Vec::new(),
                neighbors,
            });
        }
    }
    Some(BgpSpec {
        as_number: cs.as_number,
        node_to_node_mesh: Some(rr == 0 && !cs.tor_peering),
        service_cluster_ips: Vec::new(),
        ip_pools: vec![PoolSpec {
            cidr: c.cidr.to_string(),
            ipip_mode: Some(ipip_mode),
        }],
        nodes,
        peers,
        routers,
        start: None,
        engine: cs.bgp_engine.clone(),
    })
}
