//! The scenario's `bgp` section: Calico's BGP resources (BGPConfiguration,
//! Nodes' BGP specs, BGPPeers, IP pools) and plain routers configured by
//! neighbour lists; validated with positions, and turned into one BIRD
//! configuration per host ([`BirdSetup`]).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::Deserialize;
use sim_core::net::Ipv4Net;
use sim_models::bgp::{
    BgpConfiguration, BgpPeer, CalicoCluster, CalicoNode, GracefulRestart, Neighbor, PrefixList,
    Selector, SpeakerConfig, Timers,
};
use sim_models::linux::bird::{BirdSetup, IpipMode};

use crate::spans::PathSeg;

/// `bgp: (...)`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Bgp")]
pub struct BgpSpec {
    /// BGPConfiguration `spec.asNumber` (default 64512).
    #[serde(default)]
    pub as_number: Option<u32>,
    /// BGPConfiguration `spec.nodeToNodeMeshEnabled` (default true).
    #[serde(default)]
    pub node_to_node_mesh: Option<bool>,
    /// BGPConfiguration `spec.serviceClusterIPs`.
    #[serde(default)]
    pub service_cluster_ips: Vec<String>,
    /// IPPools: `cidr` and `ipip_mode` ("Always", "CrossSubnet", "Never").
    #[serde(default)]
    pub ip_pools: Vec<PoolSpec>,
    /// Calico nodes: each runs BIRD as calico/node configures it.
    #[serde(default)]
    pub nodes: Vec<BgpNodeSpec>,
    /// BGPPeer resources.
    #[serde(default)]
    pub peers: Vec<BgpPeerSpec>,
    /// Routers outside Kubernetes (top-of-rack, spine): BIRD with explicit neighbours.
    #[serde(default)]
    pub routers: Vec<RouterSpec>,
    /// Start the daemons at this time (default "0s", after the setup scripts).
    #[serde(default)]
    pub start: Option<String>,
    /// How BGP is computed: "bird" (default: a BIRD per host, sessions over
    /// simulated TCP port 179, every timeline event seen) or "fabric" (the
    /// same speakers over in-memory sessions, converged once from the cold
    /// start, their routes installed when BGP is quiescent; for clusters of
    /// thousands of nodes).
    #[serde(default)]
    pub engine: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Pool")]
pub struct PoolSpec {
    pub cidr: String,
    #[serde(default)]
    pub ipip_mode: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Node")]
pub struct BgpNodeSpec {
    /// The scenario host running this node.
    pub host: String,
    /// `spec.bgp.ipv4Address` (an address of the host; a prefix length is allowed and ignored).
    pub address: String,
    /// The node's IPAM blocks (e.g. "10.244.1.0/26").
    #[serde(default)]
    pub blocks: Vec<String>,
    #[serde(default)]
    pub as_number: Option<u32>,
    #[serde(default)]
    pub route_reflector_cluster_id: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Peer")]
pub struct BgpPeerSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub node_selector: Option<String>,
    #[serde(default)]
    pub peer_ip: Option<String>,
    #[serde(default)]
    pub as_number: Option<u32>,
    #[serde(default)]
    pub peer_selector: Option<String>,
    #[serde(default)]
    pub keep_original_next_hop: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Router")]
pub struct RouterSpec {
    pub host: String,
    pub as_number: u32,
    /// The router id and default source address.
    pub router_id: String,
    /// Networks it originates.
    #[serde(default)]
    pub originate: Vec<String>,
    pub neighbors: Vec<NeighborSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Neighbor")]
pub struct NeighborSpec {
    pub address: String,
    pub remote_as: u32,
    /// Our address on the session (default: the router id).
    #[serde(default)]
    pub local_address: Option<String>,
    #[serde(default)]
    pub rr_client: bool,
    #[serde(default)]
    pub next_hop_self: bool,
    #[serde(default)]
    pub passive: bool,
}

/// Collects diagnostics at paths below `bgp`.
pub(crate) trait Report {
    fn report(&mut self, path: &[PathSeg], msg: String);
}

fn net(s: &str) -> Result<Ipv4Net, String> {
    s.parse::<Ipv4Net>().map(|n| n.network()).map_err(|_| {
        format!("bad prefix \"{s}\": expected an IPv4 prefix such as \"10.244.1.0/26\"")
    })
}

fn addr(s: &str) -> Result<Ipv4Addr, String> {
    let a = s.split('/').next().unwrap_or(s);
    a.parse::<Ipv4Addr>().map_err(|_| {
        format!("bad address \"{s}\": expected an IPv4 address such as \"192.168.56.6\"")
    })
}

fn ipip(s: Option<&str>) -> Result<IpipMode, String> {
    match s {
        None | Some("Never") => Ok(IpipMode::Never),
        Some("Always") => Ok(IpipMode::Always),
        Some("CrossSubnet") => Ok(IpipMode::CrossSubnet),
        Some(o) => Err(format!(
            "bad ipip_mode \"{o}\": expected one of \"Always\", \"CrossSubnet\", \"Never\""
        )),
    }
}

/// Validates the section and builds each BGP host's BIRD setup, in the
/// order of the section (nodes, then routers). Errors go to `r`.
pub(crate) fn setups(
    spec: &BgpSpec,
    hosts: &[String],
    r: &mut dyn Report,
) -> Vec<(usize, BirdSetup)> {
    let f = PathSeg::Field;
    let mut counting = Counting { inner: r, n: 0 };
    let r: &mut dyn Report = &mut counting;
    let host_ix = |h: &str| hosts.iter().position(|x| x == h);
    let mut pools = Vec::new();
    for (i, p) in spec.ip_pools.iter().enumerate() {
        let path = [f("bgp"), f("ip_pools"), PathSeg::Index(i)];
        match (net(&p.cidr), ipip(p.ipip_mode.as_deref())) {
            (Ok(n), Ok(m)) => pools.push((n, m)),
            (Err(e), _) => r.report(&[&path[..], &[f("cidr")]].concat(), e),
            (_, Err(e)) => r.report(&[&path[..], &[f("ipip_mode")]].concat(), e),
        }
    }
    let mut service = Vec::new();
    for (i, s) in spec.service_cluster_ips.iter().enumerate() {
        match net(s) {
            Ok(n) => service.push(n),
            Err(e) => r.report(&[f("bgp"), f("service_cluster_ips"), PathSeg::Index(i)], e),
        }
    }
    let mut nodes = Vec::new();
    let mut node_hosts = Vec::new();
    let mut seen_hosts: Vec<&str> = Vec::new();
    for (i, n) in spec.nodes.iter().enumerate() {
        let p = |x: &'static str| [f("bgp"), f("nodes"), PathSeg::Index(i), f(x)];
        let hi = host_ix(&n.host);
        if hi.is_none() {
            r.report(
                &p("host"),
                format!("unknown host \"{}\": expected one of {:?}", n.host, hosts),
            );
        }
        if seen_hosts.contains(&n.host.as_str()) {
            r.report(
                &p("host"),
                format!("host \"{}\" runs a speaker already", n.host),
            );
        }
        seen_hosts.push(&n.host);
        let a = addr(&n.address);
        if let Err(e) = &a {
            r.report(&p("address"), e.clone());
        }
        let mut blocks = Vec::new();
        for (j, b) in n.blocks.iter().enumerate() {
            match net(b) {
                Ok(x) => blocks.push(x),
                Err(e) => r.report(
                    &[
                        f("bgp"),
                        f("nodes"),
                        PathSeg::Index(i),
                        f("blocks"),
                        PathSeg::Index(j),
                    ],
                    e,
                ),
            }
        }
        let rr = match n
            .route_reflector_cluster_id
            .as_deref()
            .map(addr)
            .transpose()
        {
            Ok(x) => x,
            Err(e) => {
                r.report(&p("route_reflector_cluster_id"), e);
                None
            }
        };
        if let (Some(h), Ok(a)) = (hi, a) {
            let mut cn = CalicoNode::new(&n.host, a, blocks);
            cn.as_number = n.as_number;
            cn.route_reflector_cluster_id = rr;
            cn.labels = n.labels.clone();
            nodes.push(cn);
            node_hosts.push(h);
        }
    }
    let mut peers = Vec::new();
    for (i, p) in spec.peers.iter().enumerate() {
        let path = |x: &'static str| [f("bgp"), f("peers"), PathSeg::Index(i), f(x)];
        let sel = |r: &mut dyn Report, s: &Option<String>, which: &'static str, ok: &mut u32| {
            s.as_deref().and_then(|s| match Selector::parse(s) {
                Ok(x) => Some(x),
                Err(e) => {
                    r.report(&path(which), format!("bad selector \"{s}\": {e}"));
                    *ok += 1;
                    None
                }
            })
        };
        let mut bad = 0u32;
        let node_selector = sel(r, &p.node_selector, "node_selector", &mut bad);
        let peer_selector = sel(r, &p.peer_selector, "peer_selector", &mut bad);
        let peer_ip = match p.peer_ip.as_deref().map(addr).transpose() {
            Ok(x) => x,
            Err(e) => {
                r.report(&path("peer_ip"), e);
                bad += 1;
                None
            }
        };
        if let Some(nn) = &p.node
            && !spec.nodes.iter().any(|x| &x.host == nn)
        {
            r.report(
                &path("node"),
                format!("unknown node \"{nn}\": expected the host of one of the bgp nodes"),
            );
            bad += 1;
        }
        if peer_ip.is_none() && peer_selector.is_none() && bad == 0 {
            r.report(
                &path("name"),
                "a peer needs peer_ip or peer_selector".to_string(),
            );
            bad += 1;
        }
        if bad > 0 {
            continue;
        }
        peers.push(BgpPeer {
            name: p.name.clone(),
            node: p.node.clone(),
            node_selector,
            peer_ip,
            as_number: p.as_number,
            peer_selector,
            keep_original_next_hop: p.keep_original_next_hop,
        });
    }
    let mut out = Vec::new();
    if !nodes.is_empty() {
        let cluster = CalicoCluster {
            bgp_configuration: BgpConfiguration {
                as_number: spec.as_number.unwrap_or(64512),
                node_to_node_mesh_enabled: spec.node_to_node_mesh.unwrap_or(true),
                service_cluster_ips: service,
            },
            ip_pools: pools.iter().map(|p| p.0).collect(),
            nodes: nodes.clone(),
            peers,
        };
        for (sp, (&h, n)) in cluster
            .expand()
            .into_iter()
            .zip(node_hosts.iter().zip(&nodes))
        {
            out.push((
                h,
                BirdSetup {
                    config: sp.config,
                    originate: sp.originate,
                    pools: pools.clone(),
                    blackholes: n.blocks.clone(),
                },
            ));
        }
    }
    for (i, rt) in spec.routers.iter().enumerate() {
        let p = |x: &'static str| [f("bgp"), f("routers"), PathSeg::Index(i), f(x)];
        let hi = host_ix(&rt.host);
        if hi.is_none() {
            r.report(
                &p("host"),
                format!("unknown host \"{}\": expected one of {:?}", rt.host, hosts),
            );
        }
        if seen_hosts.contains(&rt.host.as_str()) {
            r.report(
                &p("host"),
                format!("host \"{}\" runs a speaker already", rt.host),
            );
        }
        seen_hosts.push(&rt.host);
        let rid = addr(&rt.router_id);
        if let Err(e) = &rid {
            r.report(&p("router_id"), e.clone());
        }
        let mut originate = Vec::new();
        for (j, o) in rt.originate.iter().enumerate() {
            match net(o) {
                Ok(x) => originate.push(x),
                Err(e) => r.report(
                    &[
                        f("bgp"),
                        f("routers"),
                        PathSeg::Index(i),
                        f("originate"),
                        PathSeg::Index(j),
                    ],
                    e,
                ),
            }
        }
        let mut neighbors = Vec::new();
        for (j, nb) in rt.neighbors.iter().enumerate() {
            let np = |x: &'static str| {
                [
                    f("bgp"),
                    f("routers"),
                    PathSeg::Index(i),
                    f("neighbors"),
                    PathSeg::Index(j),
                    f(x),
                ]
            };
            let a = addr(&nb.address);
            let la = nb.local_address.as_deref().map(addr).transpose();
            match (a, la) {
                (Ok(a), Ok(la)) => {
                    let mut n = Neighbor::new(a, nb.remote_as);
                    n.local_address = la.or(rid.as_ref().ok().copied());
                    n.rr_client = nb.rr_client;
                    n.next_hop_self = nb.next_hop_self;
                    n.passive = nb.passive;
                    n.import = PrefixList::allow_all();
                    n.export = PrefixList::allow_all();
                    n.name = format!(
                        "{}_{}",
                        if nb.remote_as == rt.as_number {
                            "ibgp"
                        } else {
                            "ebgp"
                        },
                        a.to_string().replace('.', "_")
                    );
                    neighbors.push(n);
                }
                (Err(e), _) => r.report(&np("address"), e),
                (_, Err(e)) => r.report(&np("local_address"), e),
            }
        }
        if let (Some(h), Ok(rid)) = (hi, rid) {
            let mut cfg = SpeakerConfig::new(rid, rt.as_number);
            cfg.timers = Timers::calico();
            cfg.graceful_restart = GracefulRestart::Aware { restart_time: 120 };
            cfg.neighbors = neighbors;
            out.push((
                h,
                BirdSetup {
                    config: cfg,
                    originate: originate.clone(),
                    pools: pools.clone(),
                    blackholes: originate,
                },
            ));
        }
    }
    if counting.n > 0 {
        return Vec::new();
    }
    out
}

struct Counting<'a> {
    inner: &'a mut dyn Report,
    n: usize,
}

impl Report for Counting<'_> {
    fn report(&mut self, path: &[PathSeg], msg: String) {
        self.n += 1;
        self.inner.report(path, msg);
    }
}

fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn list(items: &[String]) -> String {
    format!(
        "[{}]",
        items.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ")
    )
}

impl BgpSpec {
    /// The section as RON, as a scenario file would hold it (`podpath
    /// expand` prints the one a calico-ipip or calico-bgp cluster implies).
    pub fn to_ron(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::from("bgp: (\n");
        if let Some(a) = self.as_number {
            let _ = writeln!(s, "    as_number: {a},");
        }
        if let Some(m) = self.node_to_node_mesh {
            let _ = writeln!(s, "    node_to_node_mesh: {m},");
        }
        if !self.service_cluster_ips.is_empty() {
            let _ = writeln!(
                s,
                "    service_cluster_ips: {},",
                list(&self.service_cluster_ips)
            );
        }
        s.push_str("    ip_pools: [\n");
        for p in &self.ip_pools {
            let mode = p
                .ipip_mode
                .as_deref()
                .map_or(String::new(), |m| format!(", ipip_mode: {}", q(m)));
            let _ = writeln!(s, "        Pool(cidr: {}{mode}),", q(&p.cidr));
        }
        s.push_str("    ],\n    nodes: [\n");
        for n in &self.nodes {
            let mut f = format!(
                "host: {}, address: {}, blocks: {}",
                q(&n.host),
                q(&n.address),
                list(&n.blocks)
            );
            if let Some(a) = n.as_number {
                let _ = write!(f, ", as_number: {a}");
            }
            if let Some(c) = &n.route_reflector_cluster_id {
                let _ = write!(f, ", route_reflector_cluster_id: {}", q(c));
            }
            if !n.labels.is_empty() {
                let l: Vec<String> = n
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{}: {}", q(k), q(v)))
                    .collect();
                let _ = write!(f, ", labels: {{{}}}", l.join(", "));
            }
            let _ = writeln!(s, "        Node({f}),");
        }
        s.push_str("    ],\n");
        if !self.peers.is_empty() {
            s.push_str("    peers: [\n");
            for p in &self.peers {
                let mut f = format!("name: {}", q(&p.name));
                for (k, v) in [
                    ("node", &p.node),
                    ("node_selector", &p.node_selector),
                    ("peer_ip", &p.peer_ip),
                    ("peer_selector", &p.peer_selector),
                ] {
                    if let Some(v) = v {
                        let _ = write!(f, ", {k}: {}", q(v));
                    }
                }
                if let Some(a) = p.as_number {
                    let _ = write!(f, ", as_number: {a}");
                }
                if p.keep_original_next_hop {
                    f.push_str(", keep_original_next_hop: true");
                }
                let _ = writeln!(s, "        Peer({f}),");
            }
            s.push_str("    ],\n");
        }
        if !self.routers.is_empty() {
            s.push_str("    routers: [\n");
            for r in &self.routers {
                let _ = writeln!(
                    s,
                    "        Router(host: {}, as_number: {}, router_id: {}, originate: {}, neighbors: [",
                    q(&r.host),
                    r.as_number,
                    q(&r.router_id),
                    list(&r.originate)
                );
                for n in &r.neighbors {
                    let mut f = format!("address: {}, remote_as: {}", q(&n.address), n.remote_as);
                    if let Some(l) = &n.local_address {
                        let _ = write!(f, ", local_address: {}", q(l));
                    }
                    for (k, v) in [
                        ("rr_client", n.rr_client),
                        ("next_hop_self", n.next_hop_self),
                        ("passive", n.passive),
                    ] {
                        if v {
                            let _ = write!(f, ", {k}: true");
                        }
                    }
                    let _ = writeln!(s, "            Neighbor({f}),");
                }
                s.push_str("        ]),\n");
            }
            s.push_str("    ],\n");
        }
        if let Some(e) = &self.engine {
            let _ = writeln!(s, "    engine: {},", q(e));
        }
        if let Some(t) = &self.start {
            let _ = writeln!(s, "    start: {},", q(t));
        }
        s.push_str("),\n");
        s
    }
}
