//! Calico's BGP resources, and their expansion into one speaker
//! configuration per node, as calico/node's confd renders BIRD's
//! configuration (`confd/etc/calico/confd/templates/bird.cfg.template`,
//! read in projectcalico/calico):
//!
//! - every node runs one speaker with `router id` = its IPv4 address, its
//!   AS (the node's, else the BGPConfiguration's, default 64512), BIRD's
//!   timers as the template sets them ([`Timers::calico`]) and graceful
//!   restart on with a 120 s restart time;
//! - node-to-node mesh (when enabled): a session to every other node that
//!   is not a route reflector (a node with a route reflector cluster id
//!   takes no part in the mesh), `passive on` toward nodes whose address is
//!   greater **as a string** (the template's `gt $onode_ip $node_ip` compares
//!   text: 10.0.0.10 < 10.0.0.9), so only one side connects;
//! - BGPPeer resources: for the node named in `node`, the nodes matching
//!   `node_selector`, or every node when neither is set; the peer is
//!   `peer_ip`/`as_number`, or every node matching `peer_selector` (with that
//!   node's address and AS); a node never peers with itself; a session to a
//!   peer in the same AS whose cluster id differs from this node's own
//!   (non-empty) cluster id makes the peer a route-reflector client (`rr
//!   client; rr cluster id`); `keep_original_next_hop` gives `next hop keep`
//!   on eBGP sessions; peerings made by a peer selector hold both ways
//!   (confd's client adds the reverse peering: from memory of its source,
//!   unverified here, but Calico's route-reflector guide, one BGPPeer with
//!   `nodeSelector: all()` and `peerSelector: route-reflector == 'true'`,
//!   only works that way);
//! - exports: only routes inside the IP pools (and the service cluster IP
//!   ranges, which every node originates when they are set): Calico's
//!   `calico_export_to_bgp_peers`; imports: everything.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use sim_core::net::Ipv4Net;

use super::config::{GracefulRestart, Neighbor, PrefixList, SpeakerConfig, Timers};

/// Calico's BGPConfiguration resource (the `default` one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BgpConfiguration {
    /// `spec.asNumber`: the default AS of the nodes (64512).
    pub as_number: u32,
    /// `spec.nodeToNodeMeshEnabled` (true).
    pub node_to_node_mesh_enabled: bool,
    /// `spec.serviceClusterIPs`: ranges every node advertises.
    pub service_cluster_ips: Vec<Ipv4Net>,
}

impl Default for BgpConfiguration {
    fn default() -> Self {
        BgpConfiguration {
            as_number: 64512,
            node_to_node_mesh_enabled: true,
            service_cluster_ips: Vec::new(),
        }
    }
}

/// A Calico Node: its BGP spec and labels, and the IPAM blocks it owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalicoNode {
    pub name: String,
    /// `spec.bgp.ipv4Address` (without the prefix length).
    pub address: Ipv4Addr,
    /// `spec.bgp.asNumber`; `None`: the BGPConfiguration's.
    pub as_number: Option<u32>,
    /// `spec.bgp.routeReflectorClusterID`: makes the node a route reflector.
    pub route_reflector_cluster_id: Option<Ipv4Addr>,
    pub labels: BTreeMap<String, String>,
    /// The node's IPAM blocks (/26 by default), which it originates.
    pub blocks: Vec<Ipv4Net>,
}

impl CalicoNode {
    pub fn new(name: &str, address: Ipv4Addr, blocks: Vec<Ipv4Net>) -> Self {
        CalicoNode {
            name: name.to_string(),
            address,
            as_number: None,
            route_reflector_cluster_id: None,
            labels: BTreeMap::new(),
            blocks,
        }
    }
}

/// A Calico BGPPeer resource.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BgpPeer {
    pub name: String,
    /// `spec.node`: the one node this applies to.
    pub node: Option<String>,
    /// `spec.nodeSelector`: the nodes this applies to.
    pub node_selector: Option<Selector>,
    /// `spec.peerIP` and `spec.asNumber`: one peer.
    pub peer_ip: Option<Ipv4Addr>,
    pub as_number: Option<u32>,
    /// `spec.peerSelector`: the peers are the nodes matching it.
    pub peer_selector: Option<Selector>,
    /// `spec.keepOriginalNextHop`.
    pub keep_original_next_hop: bool,
}

/// A Calico label selector, in the subset BGP peerings use: `all()`,
/// `has(k)`, `!has(k)`, `k == 'v'`, `k != 'v'`, joined with `&&`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    terms: Vec<Term>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Term {
    All,
    Has(String, bool),
    Eq(String, String, bool),
}

impl Selector {
    pub fn parse(s: &str) -> Result<Selector, String> {
        let mut terms = Vec::new();
        for t in s.split("&&") {
            let t = t.trim();
            let unquote = |v: &str| {
                let v = v.trim();
                for q in ['\'', '"'] {
                    if let Some(x) = v.strip_prefix(q).and_then(|x| x.strip_suffix(q)) {
                        return Ok(x.to_string());
                    }
                }
                Err(format!("expected a quoted value, found {v:?}"))
            };
            let term = if t == "all()" {
                Term::All
            } else if let Some(k) = t.strip_prefix("has(").and_then(|x| x.strip_suffix(')')) {
                Term::Has(k.trim().to_string(), true)
            } else if let Some(k) = t.strip_prefix("!has(").and_then(|x| x.strip_suffix(')')) {
                Term::Has(k.trim().to_string(), false)
            } else if let Some((k, v)) = t.split_once("==") {
                Term::Eq(k.trim().to_string(), unquote(v)?, true)
            } else if let Some((k, v)) = t.split_once("!=") {
                Term::Eq(k.trim().to_string(), unquote(v)?, false)
            } else {
                return Err(format!("unsupported selector term {t:?}"));
            };
            terms.push(term);
        }
        Ok(Selector { terms })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|t| match t {
            Term::All => true,
            Term::Has(k, want) => labels.contains_key(k) == *want,
            Term::Eq(k, v, want) => (labels.get(k) == Some(v)) == *want,
        })
    }
}

/// A cluster's BGP description.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CalicoCluster {
    pub bgp_configuration: BgpConfiguration,
    /// The IP pools' CIDRs (exported routes must lie inside one).
    pub ip_pools: Vec<Ipv4Net>,
    pub nodes: Vec<CalicoNode>,
    pub peers: Vec<BgpPeer>,
}

#[derive(Clone, Debug)]
struct Peering {
    addr: Ipv4Addr,
    as_num: u32,
    cluster_id: Option<Ipv4Addr>,
    scope: &'static str,
    keep_next_hop: bool,
}

/// One node's speaker: its configuration and what it originates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpeaker {
    pub node: String,
    pub config: SpeakerConfig,
    pub originate: Vec<Ipv4Net>,
}

impl CalicoCluster {
    fn node_as(&self, n: &CalicoNode) -> u32 {
        n.as_number.unwrap_or(self.bgp_configuration.as_number)
    }

    /// Every node's speaker configuration, in node order.
    pub fn expand(&self) -> Vec<NodeSpeaker> {
        // The BGPPeer peerings of each node: (peer address, AS, the peer's
        // cluster id, scope, keep next hop). Peerings made by a peer
        // selector hold both ways (confd's client computes the reverse
        // peering too: that is how reflectors selected by
        // `peerSelector: route-reflector == 'true'` learn their clients).
        let mut peerings: Vec<Vec<Peering>> = vec![Vec::new(); self.nodes.len()];
        for peer in &self.peers {
            let scope = if peer.node.is_some() || peer.node_selector.is_some() {
                "Node"
            } else {
                "Global"
            };
            for (i, node) in self.nodes.iter().enumerate() {
                let applies = match (&peer.node, &peer.node_selector) {
                    (Some(name), _) => *name == node.name,
                    (None, Some(sel)) => sel.matches(&node.labels),
                    (None, None) => true,
                };
                if !applies {
                    continue;
                }
                if let Some(sel) = &peer.peer_selector {
                    for (j, o) in self.nodes.iter().enumerate() {
                        if i == j || !sel.matches(&o.labels) {
                            continue;
                        }
                        peerings[i].push(Peering {
                            addr: o.address,
                            as_num: self.node_as(o),
                            cluster_id: o.route_reflector_cluster_id,
                            scope,
                            keep_next_hop: peer.keep_original_next_hop,
                        });
                        peerings[j].push(Peering {
                            addr: node.address,
                            as_num: self.node_as(node),
                            cluster_id: node.route_reflector_cluster_id,
                            scope,
                            keep_next_hop: peer.keep_original_next_hop,
                        });
                    }
                } else if let Some(ip) = peer.peer_ip {
                    peerings[i].push(Peering {
                        addr: ip,
                        as_num: peer.as_number.unwrap_or(self.bgp_configuration.as_number),
                        cluster_id: self
                            .nodes
                            .iter()
                            .find(|o| o.address == ip)
                            .and_then(|o| o.route_reflector_cluster_id),
                        scope,
                        keep_next_hop: peer.keep_original_next_hop,
                    });
                }
            }
        }
        self.nodes
            .iter()
            .zip(peerings)
            .map(|(n, p)| self.expand_node(n, &p))
            .collect()
    }

    fn expand_node(&self, node: &CalicoNode, peerings: &[Peering]) -> NodeSpeaker {
        let my_as = self.node_as(node);
        let mut exportable = self.ip_pools.clone();
        exportable.extend(self.bgp_configuration.service_cluster_ips.iter().copied());
        let export = PrefixList::allow_within(&exportable);
        let base = |addr: Ipv4Addr, remote_as: u32, name: String| Neighbor {
            local_address: Some(node.address),
            export: export.clone(),
            name,
            ..Neighbor::new(addr, remote_as)
        };
        let id = |a: Ipv4Addr| a.to_string().replace('.', "_");
        let mut neighbors: Vec<Neighbor> = Vec::new();

        // Node-to-node mesh.
        if self.bgp_configuration.node_to_node_mesh_enabled
            && node.route_reflector_cluster_id.is_none()
        {
            for o in &self.nodes {
                if o.address == node.address || o.route_reflector_cluster_id.is_some() {
                    continue;
                }
                let mut n = base(
                    o.address,
                    self.node_as(o),
                    format!("Mesh_{}", id(o.address)),
                );
                n.passive = o.address.to_string() > node.address.to_string();
                neighbors.push(n);
            }
        }

        // BGPPeer resources.
        for p in peerings {
            if p.addr == node.address || neighbors.iter().any(|n| n.address == p.addr) {
                continue;
            }
            let mut n = base(p.addr, p.as_num, format!("{}_{}", p.scope, id(p.addr)));
            if p.as_num == my_as
                && let Some(mine) = node.route_reflector_cluster_id
                && p.cluster_id != Some(mine)
            {
                n.rr_client = true;
            }
            n.next_hop_keep = p.as_num != my_as && p.keep_next_hop;
            neighbors.push(n);
        }

        let mut originate = node.blocks.clone();
        originate.extend(self.bgp_configuration.service_cluster_ips.iter().copied());
        NodeSpeaker {
            node: node.name.clone(),
            config: SpeakerConfig {
                router_id: node.address,
                local_as: my_as,
                address: node.address,
                cluster_id: node.route_reflector_cluster_id,
                timers: Timers::calico(),
                graceful_restart: GracefulRestart::On { restart_time: 120 },
                default_local_pref: 100,
                neighbors,
            },
            originate,
        }
    }
}

/// Synthetic clusters for tests, benches and the comparison with real BIRD:
/// node `i` (from 0) has address `10.1.0.0 + i + 1` (so all nodes share one
/// /16, `10.1.0.0/16`) and IPAM block `10.128.0.0 + 64 i`/26, in one pool,
/// `10.128.0.0/9` (room for 131,072 nodes).
impl CalicoCluster {
    fn synthetic_node(i: u32) -> CalicoNode {
        let addr = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 1, 0, 0)) + i + 1);
        let block = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + 64 * i);
        CalicoNode::new(
            &format!("node{}", i + 1),
            addr,
            vec![Ipv4Net::new(block, 26).expect("a /26")],
        )
    }

    /// `n` nodes in Calico's default full mesh.
    pub fn synthetic_mesh(n: u32) -> CalicoCluster {
        CalicoCluster {
            ip_pools: vec![Ipv4Net::new(Ipv4Addr::new(10, 128, 0, 0), 9).expect("a /9")],
            nodes: (0..n).map(CalicoCluster::synthetic_node).collect(),
            ..Default::default()
        }
    }

    /// `clients` nodes and `rrs` route reflectors (the last nodes, without
    /// blocks, labelled `route-reflector: true`, cluster id 244.0.0.1), mesh
    /// off, and Calico's documented BGPPeer peering every node with the
    /// reflectors.
    pub fn synthetic_reflectors(clients: u32, rrs: u32) -> CalicoCluster {
        let mut c = CalicoCluster::synthetic_mesh(clients);
        c.bgp_configuration.node_to_node_mesh_enabled = false;
        for r in 0..rrs {
            let mut n = CalicoCluster::synthetic_node(clients + r);
            n.name = format!("rr{}", r + 1);
            n.blocks.clear();
            n.route_reflector_cluster_id = Some(Ipv4Addr::new(244, 0, 0, 1));
            n.labels.insert("route-reflector".into(), "true".into());
            c.nodes.push(n);
        }
        c.peers.push(BgpPeer {
            name: "peer-with-route-reflectors".into(),
            node_selector: Some(Selector::parse("all()").expect("a selector")),
            peer_selector: Some(Selector::parse("route-reflector == 'true'").expect("a selector")),
            ..Default::default()
        });
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, last: u8) -> CalicoNode {
        CalicoNode::new(
            name,
            Ipv4Addr::new(10, 0, 0, last),
            vec![Ipv4Net::new(Ipv4Addr::new(10, 244, last, 0), 26).unwrap()],
        )
    }

    #[test]
    fn mesh_is_full_and_one_sided_by_string_order() {
        let c = CalicoCluster {
            nodes: vec![node("n2", 2), node("n9", 9), node("n10", 10)],
            ip_pools: vec!["10.244.0.0/16".parse().unwrap()],
            ..Default::default()
        };
        let s = c.expand();
        let n9 = &s[1].config;
        assert_eq!(n9.local_as, 64512);
        assert_eq!(n9.router_id, Ipv4Addr::new(10, 0, 0, 9));
        let peers: Vec<(String, bool)> = n9
            .neighbors
            .iter()
            .map(|n| (n.name.clone(), n.passive))
            .collect();
        // "10.0.0.2" > "10.0.0.9"? no; "10.0.0.10" > "10.0.0.9"? no (text).
        assert_eq!(
            peers,
            vec![
                ("Mesh_10_0_0_2".to_string(), false),
                ("Mesh_10_0_0_10".to_string(), false)
            ]
        );
        // So n10 is passive toward both ("10.0.0.2" > "10.0.0.10" too), and
        // n2 toward n9 only.
        assert!(s[2].config.neighbors.iter().all(|n| n.passive));
        let n2: Vec<bool> = s[0].config.neighbors.iter().map(|n| n.passive).collect();
        assert_eq!(n2, vec![true, false]);
        for sp in &s {
            assert_eq!(sp.config.neighbors.len(), 2);
            for n in &sp.config.neighbors {
                // Each pair: exactly one side passive.
                let other = s.iter().find(|o| o.config.address == n.address).unwrap();
                let back = other.config.neighbor(sp.config.address).unwrap();
                assert_ne!(n.passive, back.passive);
                assert!(n.export.allows("10.244.9.0/26".parse().unwrap()));
                assert!(!n.export.allows("192.168.0.0/24".parse().unwrap()));
            }
        }
    }

    #[test]
    fn route_reflectors_by_selector() {
        let mut rr1 = node("rr1", 100);
        rr1.route_reflector_cluster_id = Some(Ipv4Addr::new(244, 0, 0, 1));
        rr1.labels.insert("route-reflector".into(), "true".into());
        let mut rr2 = node("rr2", 101);
        rr2.route_reflector_cluster_id = Some(Ipv4Addr::new(244, 0, 0, 1));
        rr2.labels.insert("route-reflector".into(), "true".into());
        let c = CalicoCluster {
            bgp_configuration: BgpConfiguration {
                node_to_node_mesh_enabled: false,
                ..Default::default()
            },
            nodes: vec![node("a", 1), node("b", 2), rr1, rr2],
            peers: vec![BgpPeer {
                name: "peer-with-route-reflectors".into(),
                node_selector: Some(Selector::parse("all()").unwrap()),
                peer_selector: Some(Selector::parse("route-reflector == 'true'").unwrap()),
                ..Default::default()
            }],
            ip_pools: vec!["10.244.0.0/16".parse().unwrap()],
        };
        let s = c.expand();
        let names = |i: usize| -> Vec<(String, bool)> {
            s[i].config
                .neighbors
                .iter()
                .map(|n| (n.name.clone(), n.rr_client))
                .collect()
        };
        // Clients peer with both reflectors, as non-clients of theirs.
        assert_eq!(
            names(0),
            vec![
                ("Node_10_0_0_100".to_string(), false),
                ("Node_10_0_0_101".to_string(), false)
            ]
        );
        // A reflector: its clients (the reverse of their peerings) and the
        // other reflector, which has the same cluster id: not a client.
        assert_eq!(
            names(2),
            vec![
                ("Node_10_0_0_1".to_string(), true),
                ("Node_10_0_0_2".to_string(), true),
                ("Node_10_0_0_101".to_string(), false),
            ]
        );
        assert_eq!(s[2].config.cluster_id, Some(Ipv4Addr::new(244, 0, 0, 1)));
    }

    #[test]
    fn selectors() {
        let l: BTreeMap<String, String> = [("rack".to_string(), "r1".to_string())].into();
        assert!(Selector::parse("rack == 'r1'").unwrap().matches(&l));
        assert!(
            Selector::parse("rack != \"r2\" && has(rack)")
                .unwrap()
                .matches(&l)
        );
        assert!(!Selector::parse("!has(rack)").unwrap().matches(&l));
        assert!(Selector::parse("rack = r1").is_err());
    }
}
