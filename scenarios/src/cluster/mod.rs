//! Kubernetes clusters described in Kubernetes' terms (the scenario's
//! `cluster:` section), and each node's Linux configuration generated as its
//! CNI would program it, as plain lines of the command language.
//!
//! [`resolve`] checks the description and assigns what Kubernetes assigns
//! (node addresses on the underlay, podCIDRs in node order as the node IPAM
//! controller does, pod addresses as the CNI's IPAM does, Service IPs and
//! NodePorts); [`generate`] turns the result into hosts, segments and setup
//! scripts, one generator per [`Cni`] mode (`cni.rs`), plus kube-proxy's
//! iptables rules for Services (`kube_proxy.rs`). The scripts are loaded like
//! any hand-written setup script, so `podpath expand` can print them.

pub mod calico_bgp;
mod cni;
pub mod hash;
mod kube_proxy;
pub mod spec;

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use sim_core::net::Ipv4Net;

pub use spec::ClusterSpec;

use crate::format::{HostSpec, NicSpec, SegmentSpec};
use crate::spans::PathSeg;

/// The CNI modes podpath generates. (`calico-ipip` and `calico-bgp` need
/// BGP and slot in here with their own generators.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cni {
    /// flannel's VXLAN backend: `flannel.1` and a `cni0` bridge.
    FlannelVxlan,
    /// flannel's host-gw backend: routes via the other nodes' addresses.
    FlannelHostGw,
    /// Calico in VXLAN mode without BGP: `vxlan.calico`, `cali*` veths.
    CalicoVxlan,
    /// kubenet: a `cbr0` bridge; the cloud's route table routes podCIDRs.
    Kubenet,
    /// Calico with BGP (BIRD) and IPIP (`tunl0`), `Always` or `CrossSubnet`.
    CalicoIpip,
    /// Calico with BGP and native routing (no encapsulation).
    CalicoBgp,
}

impl Cni {
    pub const NAMES: &'static [&'static str] = &[
        "flannel-vxlan",
        "flannel-host-gw",
        "calico-vxlan",
        "kubenet",
        "calico-ipip",
        "calico-bgp",
    ];

    pub fn parse(s: &str) -> Option<Cni> {
        Some(match s {
            "flannel-vxlan" => Cni::FlannelVxlan,
            "flannel-host-gw" => Cni::FlannelHostGw,
            "calico-vxlan" => Cni::CalicoVxlan,
            "kubenet" => Cni::Kubenet,
            "calico-ipip" => Cni::CalicoIpip,
            "calico-bgp" => Cni::CalicoBgp,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Cni::FlannelVxlan => "flannel-vxlan",
            Cni::FlannelHostGw => "flannel-host-gw",
            Cni::CalicoVxlan => "calico-vxlan",
            Cni::Kubenet => "kubenet",
            Cni::CalicoIpip => "calico-ipip",
            Cni::CalicoBgp => "calico-bgp",
        }
    }

    /// The encapsulation overhead the CNI takes off the underlay MTU.
    fn overhead(self) -> u32 {
        match self {
            Cni::FlannelVxlan | Cni::CalicoVxlan => 50,
            Cni::CalicoIpip => 20,
            Cni::FlannelHostGw | Cni::Kubenet | Cni::CalicoBgp => 0,
        }
    }

    /// The first pod address in a podCIDR, after what the node itself takes
    /// (the bridge gateway at .1, or Calico's tunnel address at .0).
    fn first_pod_offset(self) -> u32 {
        match self {
            Cni::CalicoVxlan | Cni::CalicoIpip | Cni::CalicoBgp => 1,
            _ => 2,
        }
    }
}

/// The kind of underlay the nodes sit on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnderlayKind {
    L2,
    Racks { racks: u32 },
    Vpc { route_limit: u32 },
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub ip: Ipv4Addr,
    /// The node's L2 subnet.
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub segment: String,
    pub pod_cidr: Ipv4Net,
    /// 0-based rack (0 without racks).
    pub rack: u32,
}

#[derive(Debug, Clone)]
pub struct Pod {
    pub name: String,
    pub namespace: String,
    /// Index into [`Cluster::nodes`].
    pub node: usize,
    pub ip: Ipv4Addr,
}

impl Pod {
    /// The pod's network namespace on its node (named after the pod).
    pub fn netns(&self) -> &str {
        &self.name
    }
}

#[derive(Debug, Clone)]
pub struct ServicePort {
    /// The port's name ("" when unnamed).
    pub name: String,
    pub port: u16,
    pub target_port: u16,
    /// "tcp" or "udp", as kube-proxy lower-cases it.
    pub protocol: &'static str,
    pub node_port: Option<u16>,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub namespace: String,
    pub node_port: bool,
    pub cluster_ip: Ipv4Addr,
    pub ports: Vec<ServicePort>,
    /// Indexes into [`Cluster::pods`].
    pub endpoints: Vec<usize>,
}

/// A resolved cluster: everything Kubernetes assigned.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub cni: Cni,
    pub cidr: Ipv4Net,
    pub node_mask: u8,
    pub service_cidr: Ipv4Net,
    pub underlay: UnderlayKind,
    /// The underlay MTU (the nodes' NICs).
    pub mtu: u32,
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    /// Segments of the underlay.
    pub segments: Vec<SegmentSpec>,
    /// Hosts that are not nodes: the VPC router, top-of-rack routers.
    pub routers: Vec<HostSpec>,
    /// What the control plane would log (a route-table limit reached).
    pub warnings: Vec<String>,
    /// Calico's BGP settings (the calico-ipip and calico-bgp modes).
    pub calico: Option<spec::CalicoSpec>,
}

/// An error in the `cluster:` section: where (a path below `cluster`) and what.
pub type ClusterError = (Vec<PathSeg<'static>>, String);

fn err(path: &[PathSeg<'static>], msg: impl Into<String>) -> ClusterError {
    let mut p = vec![PathSeg::Field("cluster")];
    p.extend_from_slice(path);
    (p, msg.into())
}

fn nth(net: Ipv4Net, i: u64) -> Option<Ipv4Addr> {
    let base = u32::from(net.network().addr) as u64;
    let size = 1u64 << (32 - net.len as u32);
    (i < size).then(|| Ipv4Addr::from((base + i) as u32))
}

fn parse_net(
    v: Option<&str>,
    default: &str,
    path: &[PathSeg<'static>],
    errs: &mut Vec<ClusterError>,
) -> Ipv4Net {
    let s = v.unwrap_or(default);
    match s.parse::<Ipv4Net>() {
        Ok(n) if n.is_network() => n,
        Ok(n) => {
            errs.push(err(
                path,
                format!(
                    "\"{s}\" has host bits set: expected a network such as \"{}\"",
                    n.network()
                ),
            ));
            n.network()
        }
        Err(e) => {
            errs.push(err(path, format!("bad prefix: {e}")));
            Ipv4Net::DEFAULT
        }
    }
}

/// A DNS-1123 label, as the API server validates namespaces: lower-case
/// letters, digits and `-`, at most 63, starting and ending with a letter
/// or digit.
fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 subdomain (pod and node names): labels joined by dots, at
/// most 253 characters.
fn dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(dns_label)
}

/// A locally administered MAC made of a two-byte prefix and an IPv4 address.
pub fn mac_of(prefix: [u8; 2], ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        prefix[0], prefix[1], o[0], o[1], o[2], o[3]
    )
}

/// Checks the description and assigns addresses. Errors are positioned by
/// their path below the scenario's root.
pub fn resolve(spec: &ClusterSpec) -> Result<Cluster, Vec<ClusterError>> {
    use PathSeg::{Field, Index};
    let mut errs = Vec::new();
    let cni = match Cni::parse(&spec.cni) {
        Some(c) => c,
        None => {
            let hint = "";
            errs.push(err(
                &[Field("cni")],
                format!(
                    "unknown CNI mode \"{}\"{hint}: expected one of {}",
                    spec.cni,
                    Cni::NAMES.join(", ")
                ),
            ));
            Cni::FlannelVxlan
        }
    };
    let cidr = parse_net(
        spec.cluster_cidr.as_deref(),
        "10.244.0.0/16",
        &[Field("cluster_cidr")],
        &mut errs,
    );
    let node_mask = spec.node_mask.unwrap_or(24);
    if node_mask > 30 || node_mask < cidr.len {
        errs.push(err(
            &[Field("node_mask")],
            format!(
                "node mask /{node_mask} does not fit the cluster CIDR {cidr}: expected {}..30",
                cidr.len
            ),
        ));
    }
    let service_cidr = parse_net(
        spec.service_cidr.as_deref(),
        "10.96.0.0/12",
        &[Field("service_cidr")],
        &mut errs,
    );

    // Node names.
    let n = &spec.nodes;
    let names: Vec<String> = match (&n.count, &n.names) {
        (Some(c), None) => {
            let pat = n.name.as_deref().unwrap_or("node{}");
            if !pat.contains("{}") {
                errs.push(err(
                    &[Field("nodes"), Field("name")],
                    format!("name pattern \"{pat}\" has no `{{}}` for the node's number"),
                ));
            }
            (1..=*c)
                .map(|i| pat.replace("{}", &i.to_string()))
                .collect()
        }
        (None, Some(list)) => {
            if n.name.is_some() {
                errs.push(err(
                    &[Field("nodes"), Field("name")],
                    "`name` is a pattern for `count`; with `names` give each name",
                ));
            }
            list.clone()
        }
        _ => {
            errs.push(err(&[Field("nodes")], "expected `count` (with an optional `name` pattern) or `names`, not both or neither"));
            Vec::new()
        }
    };
    for (i, name) in names.iter().enumerate() {
        if !dns_subdomain(name) {
            errs.push(err(
                &[Field("nodes")],
                format!("bad node name \"{name}\": expected a DNS-1123 subdomain (lower-case letters, digits, '-' and '.')"),
            ));
        }
        if names[..i].contains(name) {
            errs.push(err(
                &[Field("nodes")],
                format!("duplicate node name \"{name}\""),
            ));
        }
    }
    if names.is_empty() && errs.is_empty() {
        errs.push(err(&[Field("nodes")], "a cluster needs at least one node"));
    }

    // podCIDRs: the node IPAM controller hands out blocks in order.
    let blocks = if node_mask >= cidr.len && node_mask <= 30 {
        1u64 << (node_mask - cidr.len)
    } else {
        0
    };
    if names.len() as u64 > blocks && blocks > 0 {
        errs.push(err(
            &[Field("node_mask")],
            format!(
                "the node IPAM controller has no podCIDR left for node {} of {}: {cidr} holds {blocks} /{node_mask} blocks (CIDRNotAvailable)",
                blocks + 1,
                names.len()
            ),
        ));
    }

    // Underlay.
    let default_ul = spec::UnderlaySpec::L2 {
        subnet: "10.0.0.0/16".into(),
        link: None,
    };
    let ul = spec.underlay.as_ref().unwrap_or(&default_ul);
    let link = match ul {
        spec::UnderlaySpec::L2 { link, .. }
        | spec::UnderlaySpec::Racks { link, .. }
        | spec::UnderlaySpec::Vpc { link, .. } => link.clone(),
    };
    let link = link.unwrap_or(spec::LinkSpec {
        latency: None,
        bandwidth: None,
        mtu: None,
    });
    let mtu = link.mtu.unwrap_or(1500);
    let seg = |name: &str| SegmentSpec {
        name: name.to_string(),
        latency: link.latency.clone(),
        bandwidth: link.bandwidth.clone(),
        mtu: link.mtu,
        loss: None,
    };
    let mut segments = Vec::new();
    let mut routers = Vec::new();
    let mut nodes = Vec::new();
    let ul_path = [Field("underlay")];
    let kind;
    let node_addr_err = |count: usize, net: Ipv4Net| {
        err(
            &ul_path,
            format!("{count} nodes do not fit {net} (nodes start at its 11th address)"),
        )
    };
    match ul {
        spec::UnderlaySpec::L2 { subnet, .. } | spec::UnderlaySpec::Vpc { cidr: subnet, .. } => {
            let net = parse_net(Some(subnet), "", &[Field("underlay")], &mut errs);
            let (seg_name, has_router) = match ul {
                spec::UnderlaySpec::Vpc { route_limit, .. } => {
                    kind = UnderlayKind::Vpc {
                        route_limit: route_limit.unwrap_or(50),
                    };
                    ("vpc", true)
                }
                _ => {
                    kind = UnderlayKind::L2;
                    ("lan", false)
                }
            };
            segments.push(seg(seg_name));
            let gw = nth(net, 1).unwrap_or(Ipv4Addr::UNSPECIFIED);
            if names.len() as u64 + 11 >= (1u64 << (32 - net.len as u32)) {
                errs.push(node_addr_err(names.len(), net));
            }
            for (i, name) in names.iter().enumerate() {
                nodes.push(Node {
                    name: name.clone(),
                    ip: nth(net, 11 + i as u64).unwrap_or(Ipv4Addr::UNSPECIFIED),
                    subnet: net,
                    gateway: gw,
                    segment: seg_name.into(),
                    pod_cidr: Ipv4Net::DEFAULT,
                    rack: 0,
                });
            }
            if has_router {
                routers.push(HostSpec {
                    name: "vpc-router".into(),
                    nics: vec![NicSpec {
                        name: "eth0".into(),
                        segment: seg_name.into(),
                        mac: Some(mac_of([0x02, 0x00], gw)),
                        address: Some(format!("{gw}/{}", net.len)),
                    }],
                    setup: String::new(),
                });
            }
        }
        spec::UnderlaySpec::Racks {
            racks,
            subnet,
            rack_mask,
            ..
        } => {
            let net = parse_net(
                Some(subnet),
                "",
                &[Field("underlay"), Field("subnet")],
                &mut errs,
            );
            let rm = rack_mask.unwrap_or(24);
            kind = UnderlayKind::Racks { racks: *racks };
            if *racks == 0
                || rm < net.len
                || rm > 29
                || ((*racks as u64) + 1) > (1u64 << (rm - net.len).min(32))
            {
                errs.push(err(
                    &[Field("underlay")],
                    format!("{racks} racks of /{rm} (and the spine's block) do not fit {net}"),
                ));
            } else {
                let block = |r: u32| Ipv4Net {
                    addr: nth(
                        Ipv4Net {
                            addr: net.addr,
                            len: net.len,
                        },
                        (r as u64) << (32 - rm as u32),
                    )
                    .unwrap_or(Ipv4Addr::UNSPECIFIED),
                    len: rm,
                };
                let spine = block(0);
                segments.push(seg("spine"));
                let per_rack = names.len().div_ceil(*racks as usize).max(1);
                if per_rack as u64 + 11 >= (1u64 << (32 - rm as u32)) {
                    errs.push(node_addr_err(per_rack, block(1)));
                }
                for r in 1..=*racks {
                    let b = block(r);
                    segments.push(seg(&format!("rack{r}")));
                    let gw = nth(b, 1).unwrap_or(Ipv4Addr::UNSPECIFIED);
                    let spine_ip = nth(spine, 10 + r as u64).unwrap_or(Ipv4Addr::UNSPECIFIED);
                    let mut setup = String::from(
                        "# a top-of-rack router: its rack's gateway, the other racks via the spine\nsysctl -w net.ipv4.ip_forward=1\n",
                    );
                    for s in 1..=*racks {
                        if s != r {
                            let _ = writeln!(
                                setup,
                                "ip route add {} via {} dev eth1",
                                block(s),
                                nth(spine, 10 + s as u64).unwrap_or(Ipv4Addr::UNSPECIFIED)
                            );
                        }
                    }
                    routers.push(HostSpec {
                        name: format!("tor{r}"),
                        nics: vec![
                            NicSpec {
                                name: "eth0".into(),
                                segment: format!("rack{r}"),
                                mac: Some(mac_of([0x02, 0x00], gw)),
                                address: Some(format!("{gw}/{rm}")),
                            },
                            NicSpec {
                                name: "eth1".into(),
                                segment: "spine".into(),
                                mac: Some(mac_of([0x02, 0x00], spine_ip)),
                                address: Some(format!("{spine_ip}/{rm}")),
                            },
                        ],
                        setup,
                    });
                }
                for (i, name) in names.iter().enumerate() {
                    let r = (i / per_rack) as u32 + 1;
                    let b = block(r);
                    nodes.push(Node {
                        name: name.clone(),
                        ip: nth(b, 11 + (i % per_rack) as u64).unwrap_or(Ipv4Addr::UNSPECIFIED),
                        subnet: b,
                        gateway: nth(b, 1).unwrap_or(Ipv4Addr::UNSPECIFIED),
                        segment: format!("rack{r}"),
                        pod_cidr: Ipv4Net::DEFAULT,
                        rack: r - 1,
                    });
                }
            }
        }
    }
    for (i, node) in nodes.iter_mut().enumerate() {
        if (i as u64) < blocks {
            node.pod_cidr = Ipv4Net {
                addr: nth(cidr, (i as u64) << (32 - node_mask as u32))
                    .unwrap_or(Ipv4Addr::UNSPECIFIED),
                len: node_mask,
            };
        }
    }

    // Mode-specific refusals, as the real components refuse.
    match (cni, &kind) {
        (Cni::FlannelHostGw, _) => {
            if let Some(first) = nodes.first()
                && let Some(other) = nodes.iter().find(|n| n.subnet != first.subnet)
            {
                errs.push(err(
                    &[Field("cni")],
                    format!(
                        "flannel-host-gw needs every node on one L2 subnet: {} ({}) is not on {}'s subnet {}; the kernel refuses the route `ip route replace {} via {} dev eth0` (Error: Nexthop has invalid gateway.) and flanneld logs \"Error adding route to {}\": use flannel-vxlan across subnets",
                        other.name, other.ip, first.name, first.subnet, other.pod_cidr, other.ip, other.pod_cidr
                    ),
                ));
            }
        }
        (Cni::CalicoIpip | Cni::CalicoBgp, UnderlayKind::Vpc { .. }) => errs.push(err(
            &[Field("cni")],
            "Calico's BGP modes need an L2 or Racks underlay (a cloud VPC drops traffic to pod addresses it has no route for): use `L2(...)` or `Racks(...)`",
        )),
        (Cni::Kubenet, UnderlayKind::Vpc { .. }) => {}
        (Cni::Kubenet, _) => errs.push(err(
            &[Field("cni")],
            "kubenet routes podCIDRs through the cloud's route table: it needs `underlay: Vpc(...)`",
        )),
        _ => {}
    }

    // Pods.
    let mut pods: Vec<Pod> = Vec::new();
    let mut per_node = vec![0u32; nodes.len()];
    let pod_ip = |node: &Node, k: u32| -> Option<Ipv4Addr> {
        let off = cni.first_pod_offset() as u64 + k as u64;
        let size = 1u64 << (32 - node.pod_cidr.len as u32);
        (off + 1 < size).then(|| nth(node.pod_cidr, off)).flatten()
    };
    let pods_spec = spec.pods.clone().unwrap_or(spec::PodsSpec {
        per_node: Some(1),
        name: None,
        namespace: None,
        list: None,
    });
    let pods_path = [Field("pods")];
    match (&pods_spec.per_node, &pods_spec.list) {
        (per, None) => {
            let per = per.unwrap_or(1);
            let pat = pods_spec.name.as_deref().unwrap_or("{node}-pod{}");
            let ns = pods_spec.namespace.as_deref().unwrap_or("default");
            for (ni, node) in nodes.iter().enumerate() {
                for k in 0..per {
                    let name = pat
                        .replace("{node}", &node.name)
                        .replace("{}", &(k + 1).to_string());
                    match pod_ip(node, k) {
                        Some(ip) => pods.push(Pod {
                            name,
                            namespace: ns.into(),
                            node: ni,
                            ip,
                        }),
                        None => {
                            errs.push(err(
                                &pods_path,
                                format!(
                                    "{per} pods do not fit {}'s podCIDR {}",
                                    node.name, node.pod_cidr
                                ),
                            ));
                            break;
                        }
                    }
                }
                per_node[ni] = per;
            }
            if nodes.len() > 1 && per > 1 && !pat.contains("{}") {
                errs.push(err(
                    &pods_path,
                    format!("pod name pattern \"{pat}\" needs `{{}}` for several pods per node"),
                ));
            }
            if nodes.len() > 1 && !pat.contains("{node}") {
                errs.push(err(&pods_path, format!("pod name pattern \"{pat}\" needs `{{node}}`: pod names are unique in a namespace")));
            }
        }
        (None, Some(list)) => {
            for (i, p) in list.iter().enumerate() {
                let Some(ni) = nodes.iter().position(|n| n.name == p.node) else {
                    errs.push(err(
                        &[Field("pods"), Field("list"), Index(i), Field("node")],
                        format!("unknown node \"{}\"", p.node),
                    ));
                    continue;
                };
                match pod_ip(&nodes[ni], per_node[ni]) {
                    Some(ip) => pods.push(Pod {
                        name: p.name.clone(),
                        namespace: p.namespace.clone().unwrap_or_else(|| "default".into()),
                        node: ni,
                        ip,
                    }),
                    None => errs.push(err(
                        &[Field("pods"), Field("list"), Index(i)],
                        format!("{}'s podCIDR {} is full", p.node, nodes[ni].pod_cidr),
                    )),
                }
                per_node[ni] += 1;
            }
        }
        (Some(_), Some(_)) => errs.push(err(&pods_path, "expected `per_node` or `list`, not both")),
    }
    for (i, p) in pods.iter().enumerate() {
        if !dns_subdomain(&p.name) {
            errs.push(err(
                &pods_path,
                format!(
                    "bad pod name \"{}\": expected a DNS-1123 subdomain (lower-case letters, digits, '-' and '.')",
                    p.name
                ),
            ));
        }
        if !dns_label(&p.namespace) {
            errs.push(err(
                &pods_path,
                format!(
                    "bad namespace \"{}\": expected a DNS-1123 label",
                    p.namespace
                ),
            ));
        }
        if pods[..i]
            .iter()
            .any(|o| o.name == p.name && (o.namespace == p.namespace || o.node == p.node))
        {
            errs.push(err(
                &pods_path,
                format!("duplicate pod name \"{}\" (each pod's network namespace on its node is named after it)", p.name),
            ));
        }
    }

    // Services.
    let mut services = Vec::new();
    let mut next_ip = 10u64;
    let mut next_node_port = 30000u16;
    for (si, s) in spec.services.iter().enumerate() {
        let sp = |f: &'static str| vec![Field("services"), Index(si), Field(f)];
        let namespace = s.namespace.clone().unwrap_or_else(|| "default".into());
        if !dns_label(&s.name) || s.name.starts_with(|c: char| c.is_ascii_digit()) {
            errs.push(err(
                &sp("name"),
                format!("bad Service name \"{}\": expected a DNS-1035 label (a lower-case letter, then letters, digits and '-')", s.name),
            ));
        }
        if !dns_label(&namespace) {
            errs.push(err(
                &sp("namespace"),
                format!("bad namespace \"{namespace}\": expected a DNS-1123 label"),
            ));
        }
        let node_port = match s.kind.as_deref().unwrap_or("ClusterIP") {
            "ClusterIP" => false,
            "NodePort" => true,
            other => {
                errs.push(err(
                    &sp("type"),
                    format!("unknown Service type \"{other}\": expected ClusterIP or NodePort"),
                ));
                false
            }
        };
        let cluster_ip = match &s.cluster_ip {
            Some(ip) => match ip.parse::<Ipv4Addr>() {
                Ok(a) if service_cidr.contains(a) => a,
                Ok(a) => {
                    errs.push(err(
                        &sp("cluster_ip"),
                        format!("{a} is not in the Service CIDR {service_cidr}"),
                    ));
                    a
                }
                Err(_) => {
                    errs.push(err(
                        &sp("cluster_ip"),
                        format!("bad address \"{ip}\": expected an IPv4 address"),
                    ));
                    Ipv4Addr::UNSPECIFIED
                }
            },
            None => loop {
                let a = nth(service_cidr, next_ip).unwrap_or(Ipv4Addr::UNSPECIFIED);
                next_ip += 1;
                let taken = spec
                    .services
                    .iter()
                    .any(|o| o.cluster_ip.as_deref() == Some(&a.to_string()));
                if !taken {
                    break a;
                }
            },
        };
        let mut ports = Vec::new();
        for (pi, p) in s.ports.iter().enumerate() {
            let pp = |f: &'static str| {
                vec![
                    Field("services"),
                    Index(si),
                    Field("ports"),
                    Index(pi),
                    Field(f),
                ]
            };
            let protocol = match p.protocol.as_deref().unwrap_or("TCP") {
                "TCP" => "tcp",
                "UDP" => "udp",
                other => {
                    errs.push(err(
                        &pp("protocol"),
                        format!("unsupported protocol \"{other}\": expected TCP or UDP"),
                    ));
                    "tcp"
                }
            };
            let np =
                if node_port {
                    Some(match p.node_port {
                        Some(n) if (30000..=32767).contains(&n) => n,
                        Some(n) => {
                            errs.push(err(
                                &pp("node_port"),
                                format!("node port {n} is outside the NodePort range 30000-32767"),
                            ));
                            n
                        }
                        None => {
                            while spec.services.iter().any(|o| {
                                o.ports.iter().any(|q| q.node_port == Some(next_node_port))
                            }) {
                                next_node_port += 1;
                            }
                            next_node_port += 1;
                            next_node_port - 1
                        }
                    })
                } else {
                    if p.node_port.is_some() {
                        errs.push(err(
                            &pp("node_port"),
                            "a node port needs `type: \"NodePort\"`",
                        ));
                    }
                    None
                };
            if let Some(n) = &p.name
                && (!dns_label(n) || n.len() > 15)
            {
                errs.push(err(
                    &pp("name"),
                    format!("bad port name \"{n}\": expected at most 15 lower-case letters, digits and '-'"),
                ));
            }
            if s.ports.len() > 1 && p.name.is_none() {
                errs.push(err(
                    &pp("port"),
                    "a Service with several ports must name each (spec.ports[].name)",
                ));
            }
            ports.push(ServicePort {
                name: p.name.clone().unwrap_or_default(),
                port: p.port,
                target_port: p.target_port.unwrap_or(p.port),
                protocol,
                node_port: np,
            });
        }
        if ports.is_empty() {
            errs.push(err(&sp("ports"), "a Service needs at least one port"));
        }
        let mut endpoints = Vec::new();
        for e in &s.endpoints {
            let (ns, name) = e
                .split_once('/')
                .unwrap_or((namespace.as_str(), e.as_str()));
            match pods
                .iter()
                .position(|p| p.name == name && p.namespace == ns)
            {
                Some(i) => endpoints.push(i),
                None => errs.push(err(
                    &sp("endpoints"),
                    format!("no pod \"{name}\" in namespace \"{ns}\""),
                )),
            }
        }
        services.push(Service {
            name: s.name.clone(),
            namespace,
            node_port,
            cluster_ip,
            ports,
            endpoints,
        });
    }

    // Calico's BGP settings.
    let calico = spec.calico.clone();
    match (&calico, cni) {
        (Some(_), Cni::CalicoIpip | Cni::CalicoBgp) | (None, _) => {}
        (Some(_), _) => errs.push(err(
            &[Field("calico")],
            format!(
                "`calico` settings apply to calico-ipip and calico-bgp, not {}",
                cni.name()
            ),
        )),
    }
    if let Some(cs) = &calico {
        match (cs.ipip_mode.as_deref(), cni) {
            (None, _) | (Some("Always" | "CrossSubnet"), Cni::CalicoIpip) => {}
            (Some(m), Cni::CalicoIpip) => errs.push(err(
                &[Field("calico"), Field("ipip_mode")],
                format!("bad ipip_mode \"{m}\": expected \"Always\" or \"CrossSubnet\" (\"Never\" is calico-bgp)"),
            )),
            (Some(_), _) => errs.push(err(
                &[Field("calico"), Field("ipip_mode")],
                "ipip_mode applies to calico-ipip only",
            )),
        }
        if cs.route_reflectors as usize > nodes.len() {
            errs.push(err(
                &[Field("calico"), Field("route_reflectors")],
                format!(
                    "{} route reflectors but {} nodes",
                    cs.route_reflectors,
                    nodes.len()
                ),
            ));
        }
        if cs.tor_peering && !matches!(kind, UnderlayKind::Racks { .. }) {
            errs.push(err(
                &[Field("calico"), Field("tor_peering")],
                "tor_peering needs a `Racks(...)` underlay (its top-of-rack routers are the peers)",
            ));
        }
        if cs.tor_peering && cs.route_reflectors > 0 {
            errs.push(err(
                &[Field("calico"), Field("tor_peering")],
                "with tor_peering the top-of-rack routers reflect their racks' routes: route_reflectors must be 0",
            ));
        }
    }

    if !errs.is_empty() {
        return Err(errs);
    }
    let mut c = Cluster {
        calico: matches!(cni, Cni::CalicoIpip | Cni::CalicoBgp).then(|| calico.unwrap_or_default()),
        cni,
        cidr,
        node_mask,
        service_cidr,
        underlay: kind,
        mtu,
        nodes,
        pods,
        services,
        segments,
        routers,
        warnings: Vec::new(),
    };
    cni::program_routers(&mut c);
    Ok(c)
}

impl Cluster {
    /// The MTU the CNI gives pods (the underlay's less the encapsulation).
    pub fn pod_mtu(&self) -> u32 {
        self.mtu - self.cni.overhead()
    }

    /// Every host the cluster adds: the nodes (NIC and generated setup
    /// script, every line), then the routers.
    pub fn hosts(&self) -> Vec<HostSpec> {
        let peers = std::sync::Arc::new(cni::PeerTable::new(self));
        let mut out: Vec<HostSpec> = (0..self.nodes.len())
            .map(|i| self.node_host(i, cni::node_script(self, i, &peers, true).0))
            .collect();
        out.extend(self.routers.iter().cloned());
        out
    }

    /// The hosts as the loader takes them: each node's script without its
    /// entries for the other nodes, which come as a batch to run before the
    /// script's line it names (the number of lines before it).
    pub fn load_hosts(&self) -> Vec<(HostSpec, Option<(usize, sim_models::cmd::BatchCmd)>)> {
        let peers = std::sync::Arc::new(cni::PeerTable::new(self));
        let mut out: Vec<_> = (0..self.nodes.len())
            .map(|i| {
                let (setup, batch) = cni::node_script(self, i, &peers, false);
                (self.node_host(i, setup), batch)
            })
            .collect();
        out.extend(self.routers.iter().map(|r| (r.clone(), None)));
        out
    }

    fn node_host(&self, i: usize, setup: String) -> HostSpec {
        let n = &self.nodes[i];
        HostSpec {
            name: n.name.clone(),
            nics: vec![NicSpec {
                name: "eth0".into(),
                segment: n.segment.clone(),
                mac: Some(mac_of([0x02, 0x00], n.ip)),
                address: Some(format!("{}/{}", n.ip, n.subnet.len)),
            }],
            setup,
        }
    }

    /// The pods on node `i`.
    pub fn pods_on(&self, node: usize) -> impl Iterator<Item = (usize, &Pod)> {
        self.pods
            .iter()
            .enumerate()
            .filter(move |(_, p)| p.node == node)
    }
}
