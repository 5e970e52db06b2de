//! Calico's BIRD configuration for one node, rendered from a
//! [`CalicoCluster`] as calico/node's confd renders its templates
//! (`confd/etc/calico/confd/templates/bird.cfg.template`,
//! `bird_aggr.cfg.template` and `bird_ipam.cfg.template` in
//! projectcalico/calico, read), in one file and in BIRD 2's syntax, so that
//! real BIRD 2 can run it next to podpath's speakers (the agreement test,
//! tests/tests/e2e/bird/, and benches/compare-bird.sh).
//!
//! This renderer is written from the templates, independently of
//! [`CalicoCluster::expand`], so that a mistake in either shows as a
//! disagreement between real BIRD and podpath.
//!
//! What is the template's, line for line: `router id` (the node's IPv4
//! address); `protocol kernel` with `learn`, `persist`, `scan time 2`,
//! `import all`, `export filter calico_kernel_programming`, `graceful
//! restart`, `merge paths on`; `protocol device` with `scan time 2`;
//! `protocol direct` on every interface but `cali*` and `kube-ipvs*`; the
//! `bgp_template` (`local as`, `multihop`, `gateway recursive`, `import all`,
//! `export filter calico_export_to_bgp_peers`, `add paths on`, `graceful
//! restart`, `connect delay time 2`, `connect retry time 5`, `error wait time
//! 5,30`, `debug { states }`); one `Mesh_<ip>` protocol per other node
//! without a route reflector cluster id (none on a reflector), `passive on`
//! toward a node whose address is greater *as text* (Go templates' `gt` on
//! strings), `graceful restart time 120` (the default
//! `nodeMeshMaxRestartTime`); `Global_<ip>` and `Node_<ip>` protocols for
//! BGPPeers with `source address` (the default `sourceAddress: UseNodeIP`),
//! `rr client; rr cluster id` when the peer is in our AS and we have a
//! cluster id that the peer does not share, `next hop keep` for
//! `keepOriginalNextHop` toward another AS; the static protocol with a
//! `blackhole` route per IPAM block, `calico_aggr` (export the block,
//! nothing beneath it) and the filters of the IP pools.
//!
//! What differs, all forced by BIRD 2 (Calico ships its own fork of BIRD
//! 1.6): import and export filters, `gateway recursive` and `add paths` move
//! into `ipv4 { }` channel blocks, and the static and direct protocols name
//! their `ipv4` channel; `krt_tunnel`, an attribute of Calico's fork that
//! native routing sets to "" anyway, is left out. The template's function
//! `apply_communities` (empty without prefix advertisements) and the BFD
//! protocol of recent versions are left out. Pools are native routing (no
//! IPIP, no VXLAN). The configuration is the classic template's (calico
//! v3.2x): recent versions add local-preference/metric filters for live
//! migration which change nothing for these routes.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use sim_core::net::Ipv4Net;

use super::calico::{CalicoCluster, CalicoNode};

/// One peer as confd's datastore lists it for a node (`/host/<node>/peer_v4`
/// or `/global/peer_v4`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PeerData {
    ip: Ipv4Addr,
    as_num: u32,
    rr_cluster_id: Option<Ipv4Addr>,
    keep_next_hop: bool,
}

fn id(a: Ipv4Addr) -> String {
    a.to_string().replace('.', "_")
}

impl CalicoCluster {
    fn as_of(&self, n: &CalicoNode) -> u32 {
        n.as_number.unwrap_or(self.bgp_configuration.as_number)
    }

    /// The global peers and each node's node-specific peers, as confd's
    /// client computes them from BGPPeer resources: a peer selector's
    /// peerings hold both ways; a node never lists itself.
    fn peer_data(&self) -> (BTreeSet<PeerData>, Vec<BTreeSet<PeerData>>) {
        let mut global = BTreeSet::new();
        let mut per_node = vec![BTreeSet::new(); self.nodes.len()];
        let data = |o: &CalicoNode, keep: bool| PeerData {
            ip: o.address,
            as_num: self.as_of(o),
            rr_cluster_id: o.route_reflector_cluster_id,
            keep_next_hop: keep,
        };
        for p in &self.peers {
            let is_global = p.node.is_none() && p.node_selector.is_none();
            for (i, n) in self.nodes.iter().enumerate() {
                let applies = match (&p.node, &p.node_selector) {
                    (Some(name), _) => *name == n.name,
                    (None, Some(sel)) => sel.matches(&n.labels),
                    (None, None) => true,
                };
                if !applies {
                    continue;
                }
                if let Some(sel) = &p.peer_selector {
                    for (j, o) in self.nodes.iter().enumerate() {
                        if i != j && sel.matches(&o.labels) {
                            per_node[i].insert(data(o, p.keep_original_next_hop));
                            per_node[j].insert(data(n, p.keep_original_next_hop));
                        }
                    }
                } else if let Some(ip) = p.peer_ip {
                    let d = PeerData {
                        ip,
                        as_num: p.as_number.unwrap_or(self.bgp_configuration.as_number),
                        rr_cluster_id: self
                            .nodes
                            .iter()
                            .find(|o| o.address == ip)
                            .and_then(|o| o.route_reflector_cluster_id),
                        keep_next_hop: p.keep_original_next_hop,
                    };
                    if is_global {
                        global.insert(d);
                    } else {
                        per_node[i].insert(d);
                    }
                }
            }
        }
        (global, per_node)
    }

    /// Node `i`'s BIRD 2 configuration, as calico/node would render it (see
    /// the [module docs](crate::bgp::bird_cfg)).
    pub fn bird_config(&self, i: usize) -> String {
        let node = &self.nodes[i];
        let node_ip = node.address;
        let node_as = self.as_of(node);
        let cid = node.route_reflector_cluster_id;
        let mut s = String::new();
        let w = &mut s;
        let _ = writeln!(
            w,
            "# Calico's BIRD configuration for node {} (bird_aggr.cfg, bird_ipam.cfg and\n\
             # bird.cfg in one file), rendered by podpath in BIRD 2 syntax.\n",
            node.name
        );

        // ---- bird_aggr.cfg
        let mut statics: Vec<Ipv4Net> = node.blocks.iter().map(|b| b.network()).collect();
        statics.retain(|b| b.len != 32);
        let service: Vec<Ipv4Net> = self
            .bgp_configuration
            .service_cluster_ips
            .iter()
            .map(|b| b.network())
            .collect();
        if statics.is_empty() && service.is_empty() {
            let _ = writeln!(w, "# No IP blocks or static routes for this host.");
        } else {
            let _ = writeln!(w, "protocol static {{\n  ipv4;");
            if !statics.is_empty() {
                let _ = writeln!(w, "  # IP blocks for this host.");
            }
            for b in &statics {
                let _ = writeln!(w, "  route {b} blackhole;");
            }
            if !service.is_empty() {
                let _ = writeln!(w, "  # Static routes.");
            }
            for b in &service {
                let _ = writeln!(w, "  route {b} blackhole;");
            }
            let _ = writeln!(w, "}}");
        }
        let _ = writeln!(
            w,
            "\n# Aggregation of routes on this host; export the block, nothing beneath it.\n\
             function calico_aggr ()\n{{"
        );
        for b in &node.blocks {
            let b = b.network();
            let _ = writeln!(
                w,
                "  # Block {b} is confirmed\n  if ( net = {b} ) then {{ accept; }}\n  if ( net ~ {b} ) then {{ reject; }}"
            );
        }
        let _ = writeln!(w, "}}\n");

        // ---- bird_ipam.cfg
        let _ = writeln!(w, "filter calico_export_to_bgp_peers {{\n  calico_aggr();");
        if !service.is_empty() {
            let _ = writeln!(w, "\n  # Export static routes.");
            for b in &service {
                let _ = writeln!(w, "  if ( net ~ {b} ) then {{ accept; }}");
            }
        }
        for p in &self.ip_pools {
            let p = p.network();
            let _ = writeln!(w, "  if ( net ~ {p} ) then {{\n    accept;\n  }}");
        }
        let _ = writeln!(w, "  reject;\n}}\n");
        let _ = writeln!(w, "filter calico_kernel_programming {{");
        if !service.is_empty() {
            let _ = writeln!(w, "\n  # Don't program static routes into kernel.");
            for b in &service {
                let _ = writeln!(w, "  if ( net ~ {b} ) then {{ reject; }}");
            }
        }
        for p in &self.ip_pools {
            let p = p.network();
            // Native routing: the template sets krt_tunnel = "" (an
            // attribute of Calico's BIRD fork) and accepts.
            let _ = writeln!(w, "  if ( net ~ {p} ) then {{\n    accept;\n  }}");
        }
        let _ = writeln!(w, "  accept;\n}}\n");

        // ---- bird.cfg
        let _ = writeln!(w, "router id {node_ip};\n");
        let _ = writeln!(
            w,
            "# Configure synchronization between routing tables and kernel.\n\
             protocol kernel {{\n  learn;             # Learn all alien routes from the kernel\n  \
             persist;           # Don't remove routes on bird shutdown\n  \
             scan time 2;       # Scan kernel routing table every 2 seconds\n  \
             graceful restart;  # Turn on graceful restart to reduce potential flaps in\n  \
             merge paths on;    # Allow export multipath routes (ECMP)\n  \
             ipv4 {{\n    import all;\n    export filter calico_kernel_programming; # Default is export none\n  }};\n}}\n"
        );
        let _ = writeln!(
            w,
            "# Watch interface up/down events.\nprotocol device {{\n  debug {{ states }};\n  \
             scan time 2;    # Scan interfaces every 2 seconds\n}}\n"
        );
        let _ = writeln!(
            w,
            "protocol direct {{\n  debug {{ states }};\n  ipv4;\n  \
             interface -\"cali*\", -\"kube-ipvs*\", \"*\"; # Exclude cali* and kube-ipvs* but\n                                          \
             # include everything else.\n}}\n"
        );
        let _ = writeln!(
            w,
            "# Template for all BGP clients\ntemplate bgp bgp_template {{\n  debug {{ states }};\n  \
             description \"Connection to BGP peer\";\n  local as {node_as};\n  multihop;\n  \
             graceful restart;  # See comment in kernel section about graceful restart.\n  \
             connect delay time 2;\n  connect retry time 5;\n  error wait time 5,30;\n  \
             ipv4 {{\n    gateway recursive; # This should be the default, but just in case.\n    \
             import all;        # Import all routes, since we don't know what the upstream\n                       \
             # topology is and therefore have to trust the ToR/RR.\n    \
             export filter calico_export_to_bgp_peers;  # Only want to export routes for workloads.\n    \
             add paths on;\n  }};\n}}\n"
        );

        let _ = writeln!(w, "# ------------- Node-to-node mesh -------------");
        if let Some(c) = cid {
            let _ = writeln!(
                w,
                "# This node ({}) is configured as a route reflector with cluster ID {c};\n\
                 # ignore node-to-node mesh setting.",
                node.name
            );
        } else if self.bgp_configuration.node_to_node_mesh_enabled {
            let mut hosts: Vec<&CalicoNode> = self.nodes.iter().collect();
            hosts.sort_by(|a, b| a.name.cmp(&b.name)); // confd's lsdir
            for o in hosts {
                let onode_ip = o.address;
                if onode_ip == node_ip {
                    let _ = writeln!(w, "# Skipping ourselves ({node_ip})");
                    continue;
                }
                if let Some(oc) = o.route_reflector_cluster_id {
                    let _ = writeln!(
                        w,
                        "# Skipping {onode_ip} ({}) as it is a route reflector with cluster ID {oc}",
                        o.name
                    );
                    continue;
                }
                let _ = writeln!(
                    w,
                    "protocol bgp Mesh_{} from bgp_template {{\n  neighbor {onode_ip} as {};\n  \
                     source address {node_ip};  # The local address we use for the TCP connection",
                    id(onode_ip),
                    self.as_of(o)
                );
                if onode_ip.to_string() > node_ip.to_string() {
                    let _ = writeln!(
                        w,
                        "  passive on; # Mesh is unidirectional, peer will connect to us."
                    );
                }
                let _ = writeln!(w, "  graceful restart time 120;\n}}");
            }
        } else {
            let _ = writeln!(w, "# Node-to-node mesh disabled");
        }

        let (global, per_node) = self.peer_data();
        for (title, scope, peers) in [
            ("Global peers", "Global", &global),
            ("Node-specific peers", "Node", &per_node[i]),
        ] {
            let _ = writeln!(w, "\n# ------------- {title} -------------");
            if peers.is_empty() {
                let _ = writeln!(w, "# No {} peers configured.", scope.to_lowercase());
            }
            for d in peers {
                if d.ip == node_ip {
                    let _ = writeln!(w, "# Skipping ourselves ({node_ip})");
                    continue;
                }
                let _ = writeln!(
                    w,
                    "protocol bgp {scope}_{} from bgp_template {{\n  neighbor {} as {};\n  \
                     source address {node_ip};  # The local address we use for the TCP connection",
                    id(d.ip),
                    d.ip,
                    d.as_num
                );
                if d.as_num == node_as
                    && let Some(c) = cid
                    && d.rr_cluster_id != Some(c)
                {
                    let _ = writeln!(w, "  rr client;\n  rr cluster id {c};");
                }
                if d.as_num != node_as && d.keep_next_hop {
                    let _ = writeln!(w, "  ipv4 {{ next hop keep; }};");
                }
                let _ = writeln!(w, "}}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::super::calico::{BgpConfiguration, BgpPeer, Selector};
    use super::*;

    fn node(name: &str, last: u8) -> CalicoNode {
        CalicoNode::new(
            name,
            Ipv4Addr::new(10, 0, 0, last),
            vec![Ipv4Net::new(Ipv4Addr::new(10, 244, last, 0), 26).unwrap()],
        )
    }

    #[test]
    fn mesh_config_has_the_template_lines() {
        let c = CalicoCluster {
            nodes: vec![node("n2", 2), node("n9", 9), node("n10", 10)],
            ip_pools: vec!["10.244.0.0/16".parse().unwrap()],
            ..Default::default()
        };
        let cfg = c.bird_config(1);
        for line in [
            "router id 10.0.0.9;",
            "  route 10.244.9.0/26 blackhole;",
            "  if ( net = 10.244.9.0/26 ) then { accept; }",
            "  local as 64512;",
            "  multihop;",
            "  connect delay time 2;",
            "  connect retry time 5;",
            "  error wait time 5,30;",
            "    add paths on;",
            "  merge paths on;    # Allow export multipath routes (ECMP)",
            "protocol bgp Mesh_10_0_0_2 from bgp_template {",
            "protocol bgp Mesh_10_0_0_10 from bgp_template {",
            "  source address 10.0.0.9;  # The local address we use for the TCP connection",
            "  graceful restart time 120;",
        ] {
            assert!(cfg.lines().any(|l| l == line), "{line:?} missing:\n{cfg}");
        }
        // "10.0.0.10" < "10.0.0.9" as text: n9 connects to both.
        assert!(!cfg.contains("passive on"), "{cfg}");
        assert_eq!(c.bird_config(2).matches("passive on;").count(), 2);
    }

    #[test]
    fn reflector_config() {
        let mut rr = node("rr", 100);
        rr.blocks.clear();
        rr.route_reflector_cluster_id = Some(Ipv4Addr::new(244, 0, 0, 1));
        rr.labels.insert("route-reflector".into(), "true".into());
        let c = CalicoCluster {
            bgp_configuration: BgpConfiguration {
                node_to_node_mesh_enabled: false,
                ..Default::default()
            },
            nodes: vec![node("a", 1), node("b", 2), rr],
            peers: vec![BgpPeer {
                name: "rr".into(),
                node_selector: Some(Selector::parse("all()").unwrap()),
                peer_selector: Some(Selector::parse("route-reflector == 'true'").unwrap()),
                ..Default::default()
            }],
            ip_pools: vec!["10.244.0.0/16".parse().unwrap()],
        };
        let r = c.bird_config(2);
        assert!(r.contains("# No IP blocks or static routes for this host."));
        assert!(r.contains("ignore node-to-node mesh setting."));
        assert_eq!(
            r.matches("  rr client;\n  rr cluster id 244.0.0.1;")
                .count(),
            2
        );
        let a = c.bird_config(0);
        assert!(a.contains("protocol bgp Node_10_0_0_100 from bgp_template {"));
        assert!(!a.contains("rr client"));
        assert!(a.contains("# Node-to-node mesh disabled"));
    }
}
