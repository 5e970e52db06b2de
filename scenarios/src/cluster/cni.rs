//! One generator per CNI mode: each node's configuration as the CNI's
//! components program it (flanneld and the bridge plugin, calico-node/felix
//! and the Calico CNI plugin, kubenet), in the order they program it, as
//! lines of the command language. Steps podpath does not model are kept as
//! comments, so the script stays honest and copy-pasteable.
//!
//! The entries each node programs for every other node (a route, and for
//! VXLAN a neighbour and an FDB entry) grow with the square of the node
//! count: 75 million at 5,000 nodes. [`PeerBatch`] makes them on demand,
//! as typed commands or as their lines, from one table of the nodes shared
//! by every node's script; the loader runs them as one batch step instead
//! of keeping them as lines.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::Arc;

use sim_core::net::Ipv4Net;
use sim_core::trace::RouteType;
use sim_core::wire::MacAddr;
use sim_models::cmd::{
    Batch, BatchCmd, Command, CommandKind, FdbCmd, FdbState, NeighCmd, NudState, RouteCmd,
    RouteSpec,
};

use super::hash::{calico_veth_name, hex, sha1};
use super::{Cluster, Cni, Node, Pod, UnderlayKind, kube_proxy, mac_of};

struct Script<'a> {
    text: String,
    /// Lines written so far.
    lines: usize,
    /// Every node's peer entries (shared by the scripts of one cluster).
    peers: &'a Arc<PeerTable>,
    /// Write the peer entries as lines (`podpath expand`); else record
    /// where they run, as a batch.
    peer_lines: bool,
    batch: Option<(usize, BatchCmd)>,
}

impl Script<'_> {
    fn line(&mut self, l: impl AsRef<str>) {
        self.text.push_str(l.as_ref());
        self.text.push('\n');
        self.lines += 1;
    }
    fn comment(&mut self, l: impl AsRef<str>) {
        let _ = writeln!(self.text, "# {}", l.as_ref());
        self.lines += 1;
    }
    fn blank(&mut self) {
        self.text.push('\n');
        self.lines += 1;
    }
    /// Node `i`'s entries for every other node, in node order.
    fn peers(&mut self, i: usize) {
        let b = PeerBatch {
            table: self.peers.clone(),
            node: i,
        };
        if self.peer_lines {
            for k in 0..b.len() {
                self.line(b.line(k));
            }
        } else if !b.is_empty() {
            self.batch = Some((self.lines, BatchCmd(Arc::new(b))));
        }
    }
}

/// What every node programs for each other node: the other nodes' podCIDRs,
/// addresses and VTEP MACs, and the device the entries go on.
#[derive(Debug)]
pub(crate) struct PeerTable {
    /// `flannel.1` or `vxlan.calico` (VXLAN: neighbour, FDB entry and
    /// route per node), `eth0` (host-gw: a route), or none.
    dev: &'static str,
    vxlan: bool,
    nodes: Vec<(Ipv4Net, Ipv4Addr, MacAddr)>,
}

impl PeerTable {
    pub(crate) fn new(c: &Cluster) -> PeerTable {
        let (dev, vxlan) = match c.cni {
            Cni::FlannelVxlan => ("flannel.1", true),
            Cni::CalicoVxlan => ("vxlan.calico", true),
            Cni::FlannelHostGw => ("eth0", false),
            Cni::Kubenet | Cni::CalicoIpip | Cni::CalicoBgp => ("", false),
        };
        let nodes = if dev.is_empty() {
            Vec::new()
        } else {
            c.nodes
                .iter()
                .map(|n| (n.pod_cidr, n.ip, vtep_mac_addr(c, n)))
                .collect()
        };
        PeerTable { dev, vxlan, nodes }
    }
}

/// Node `node`'s entries for every other node, in node order: for VXLAN
/// (flanneld's lease handling, felix's VTEP programming) a permanent
/// neighbour entry for the other node's tunnel address, a permanent FDB
/// entry sending its VTEP MAC to its address, and the route to its podCIDR;
/// for host-gw the route via its address.
#[derive(Debug)]
pub(crate) struct PeerBatch {
    table: Arc<PeerTable>,
    node: usize,
}

impl PeerBatch {
    fn per_peer(&self) -> usize {
        if self.table.vxlan { 3 } else { 1 }
    }
    /// The other node command `k` is for, and which of its entries.
    fn entry(&self, k: usize) -> ((Ipv4Net, Ipv4Addr, MacAddr), usize) {
        let per = self.per_peer();
        let mut j = k / per;
        if j >= self.node {
            j += 1;
        }
        (self.table.nodes[j], k % per)
    }
}

impl Batch for PeerBatch {
    fn len(&self) -> usize {
        self.table.nodes.len().saturating_sub(1) * self.per_peer()
    }

    fn command(&self, k: usize) -> Command {
        let ((pod_cidr, ip, mac), e) = self.entry(k);
        let dev = self.table.dev.to_string();
        let route = |gateway, onlink| {
            CommandKind::Route(RouteCmd::Replace(RouteSpec {
                rtype: RouteType::Unicast,
                prefix: pod_cidr,
                gateway: Some(gateway),
                dev: Some(dev.clone()),
                src: None,
                onlink,
                table: None,
                metric: None,
                scope: None,
                proto: None,
                mtu: None,
                nexthops: Vec::new(),
            }))
        };
        let kind = match (self.table.vxlan, e) {
            (false, _) => route(ip, false),
            (true, 0) => CommandKind::Neigh(NeighCmd::Add {
                addr: pod_cidr.addr,
                lladdr: Some(mac),
                dev,
                state: NudState::Permanent,
                replace: true,
                proxy: false,
            }),
            (true, 1) => CommandKind::Fdb(FdbCmd::Add {
                mac,
                dev,
                dst: Some(ip),
                append: false,
                replace: true,
                master: false,
                self_: true,
                state: FdbState::Permanent,
                port: None,
                vni: None,
            }),
            (true, _) => route(pod_cidr.addr, true),
        };
        Command { netns: None, kind }
    }

    fn line(&self, k: usize) -> String {
        let ((pod_cidr, ip, mac), e) = self.entry(k);
        let dev = self.table.dev;
        match (self.table.vxlan, e) {
            (false, _) => format!("ip route replace {pod_cidr} via {ip} dev {dev}"),
            (true, 0) => format!(
                "ip neigh replace {} lladdr {mac} dev {dev} nud permanent",
                pod_cidr.addr
            ),
            (true, 1) => format!("bridge fdb replace {mac} dev {dev} dst {ip} self permanent"),
            (true, _) => format!(
                "ip route replace {pod_cidr} via {} dev {dev} onlink",
                pod_cidr.addr
            ),
        }
    }
}

/// Node `i`'s setup script: with `peer_lines`, every line (`podpath
/// expand`); without, the entries for other nodes left out, and where they
/// run (the number of lines before them) with their batch.
pub(super) fn node_script(
    c: &Cluster,
    i: usize,
    peers: &Arc<PeerTable>,
    peer_lines: bool,
) -> (String, Option<(usize, BatchCmd)>) {
    let node = &c.nodes[i];
    let mut s = Script {
        text: String::new(),
        lines: 0,
        peers,
        peer_lines,
        batch: None,
    };
    s.comment(format!(
        "{}: {} on {}, podCIDR {} ({})",
        node.name,
        node.ip,
        node.segment,
        node.pod_cidr,
        c.cni.name()
    ));
    s.comment("the node's own network configuration (DHCP) and kubelet's prerequisites");
    s.line(format!(
        "ip route add default via {} dev eth0",
        node.gateway
    ));
    s.line("sysctl -w net.ipv4.ip_forward=1");
    if matches!(c.cni, Cni::FlannelVxlan | Cni::FlannelHostGw | Cni::Kubenet) {
        s.line("modprobe br_netfilter");
        s.line("sysctl -w net.bridge.bridge-nf-call-iptables=1");
    }
    s.blank();
    match c.cni {
        Cni::FlannelVxlan | Cni::FlannelHostGw => flannel(c, i, &mut s),
        Cni::CalicoVxlan => calico_vxlan(c, i, &mut s),
        Cni::Kubenet => kubenet(c, i, &mut s),
        Cni::CalicoIpip | Cni::CalicoBgp => calico_bgp(c, i, &mut s),
    }
    if !c.services.is_empty() {
        s.blank();
        kube_proxy::node_rules(c, node, &mut |l| s.line(l));
    }
    (s.text, s.batch)
}

/// flanneld (VXLAN or host-gw backend) and the flannel CNI plugin, which
/// delegates to the bridge plugin.
fn flannel(c: &Cluster, i: usize, s: &mut Script<'_>) {
    let node = &c.nodes[i];
    let vxlan = c.cni == Cni::FlannelVxlan;
    if vxlan {
        s.comment(format!(
            "flanneld, VXLAN backend: flannel.1 (VNI 1, the kernel's default port 8472, learning off, MTU {} - 50)",
            c.mtu
        ));
        s.line(format!(
            "ip link add flannel.1 mtu {} type vxlan id 1 local {} dev eth0 nolearning dstport 8472",
            c.pod_mtu(),
            node.ip
        ));
        s.line(format!(
            "ip link set flannel.1 address {}",
            vtep_mac(c, node)
        ));
        s.line(format!(
            "ip addr add {}/32 dev flannel.1",
            node.pod_cidr.addr
        ));
        s.line("ip link set flannel.1 up");
        s.comment("each other node's lease: neighbour and FDB entries first, then the route");
        s.peers(i);
    } else {
        s.comment("flanneld, host-gw backend: each other node's podCIDR via its address");
        s.peers(i);
    }
    s.blank();
    s.comment("flanneld --ip-masq: FLANNEL-POSTRTG (nat) and FLANNEL-FWD (filter)");
    let (cidr, pod) = (c.cidr, node.pod_cidr);
    let m = "-m comment --comment \"flanneld masq\"";
    s.line("iptables -t nat -N FLANNEL-POSTRTG");
    s.line(format!(
        "iptables -t nat -A POSTROUTING {m} -j FLANNEL-POSTRTG"
    ));
    s.line(format!(
        "iptables -t nat -A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 {m} -j RETURN"
    ));
    s.line(format!(
        "iptables -t nat -A FLANNEL-POSTRTG -s {pod} -d {cidr} {m} -j RETURN"
    ));
    s.line(format!(
        "iptables -t nat -A FLANNEL-POSTRTG -s {cidr} -d {pod} {m} -j RETURN"
    ));
    s.line(format!(
        "iptables -t nat -A FLANNEL-POSTRTG ! -s {cidr} -d {pod} {m} -j RETURN"
    ));
    s.line(format!(
        "iptables -t nat -A FLANNEL-POSTRTG -s {cidr} ! -d 224.0.0.0/4 {m} -j MASQUERADE --random-fully"
    ));
    s.line(format!(
        "iptables -t nat -A FLANNEL-POSTRTG ! -s {cidr} -d {cidr} {m} -j MASQUERADE --random-fully"
    ));
    let f = "-m comment --comment \"flanneld forward\"";
    s.line("iptables -N FLANNEL-FWD");
    s.line(format!("iptables -A FORWARD {f} -j FLANNEL-FWD"));
    s.line(format!("iptables -A FLANNEL-FWD -s {cidr} {f} -j ACCEPT"));
    s.line(format!("iptables -A FLANNEL-FWD -d {cidr} {f} -j ACCEPT"));
    s.blank();
    bridge_pods(c, i, "cni0", true, s);
}

/// The bridge CNI plugin (isGateway, hairpinMode, host-local IPAM), as the
/// flannel plugin and kubenet configure it.
fn bridge_pods(c: &Cluster, i: usize, bridge: &str, cluster_route: bool, s: &mut Script<'_>) {
    let node = &c.nodes[i];
    let mtu = c.pod_mtu();
    let gw = super::nth(node.pod_cidr, 1).expect("validated");
    s.comment(format!(
        "the bridge CNI plugin: {bridge} (MTU {mtu}) holds the gateway {gw}, host-local IPAM from {}",
        node.pod_cidr
    ));
    s.line(format!("ip link add {bridge} mtu {mtu} type bridge"));
    s.line(format!(
        "ip addr add {gw}/{} dev {bridge}",
        node.pod_cidr.len
    ));
    s.line(format!("ip link set {bridge} up"));
    for (_, p) in c.pods_on(i) {
        s.blank();
        let veth = bridge_veth_name(p);
        let ns = p.netns();
        s.comment(format!("pod {}/{} ({})", p.namespace, p.name, p.ip));
        s.line(format!("ip netns add {ns}"));
        s.line(format!(
            "ip link add {veth} mtu {mtu} type veth peer name eth0 mtu {mtu} netns {ns}"
        ));
        s.line(format!("ip link set {veth} master {bridge}"));
        s.comment(format!(
            "not modelled: bridge link set dev {veth} hairpin on"
        ));
        s.line(format!("ip link set {veth} up"));
        s.line(format!("ip -n {ns} link set lo up"));
        s.line(format!(
            "ip -n {ns} link set eth0 address {}",
            mac_of([0x0a, 0x58], p.ip)
        ));
        s.line(format!(
            "ip -n {ns} addr add {}/{} dev eth0",
            p.ip, node.pod_cidr.len
        ));
        s.line(format!("ip -n {ns} link set eth0 up"));
        s.line(format!("ip -n {ns} route add default via {gw} dev eth0"));
        if cluster_route {
            s.line(format!("ip -n {ns} route add {} via {gw} dev eth0", c.cidr));
        }
    }
}

/// calico-node in VXLAN mode without BGP (felix programs the routes), and
/// the Calico CNI plugin's `cali*` veths.
fn calico_vxlan(c: &Cluster, i: usize, s: &mut Script<'_>) {
    let node = &c.nodes[i];
    let mtu = c.pod_mtu();
    s.comment(format!(
        "calico-node (felix): vxlan.calico (VNI 4096, port 4789, MTU {} - 50), tunnel address {} from the node's IPAM block",
        c.mtu, node.pod_cidr.addr
    ));
    s.line(format!(
        "ip link add vxlan.calico mtu {mtu} type vxlan id 4096 local {} dev eth0 dstport 4789 nolearning",
        node.ip
    ));
    s.line(format!(
        "ip link set vxlan.calico address {}",
        vtep_mac(c, node)
    ));
    s.line(format!(
        "ip addr add {}/32 dev vxlan.calico",
        node.pod_cidr.addr
    ));
    s.line("ip link set vxlan.calico up");
    s.comment("felix: each other node's VTEP (neighbour and FDB entry) and a route to its block");
    s.peers(i);
    s.comment("felix: the node's own IPAM block is a blackhole but for its pods' routes");
    s.line(format!("ip route add blackhole {} proto 80", node.pod_cidr));
    s.comment("felix's iptables chains (cali-*) are not generated: no NetworkPolicy is modelled");
    calico_pods(c, i, s);
}

/// Calico's BGP modes: calico-node runs BIRD (from the scenario's generated
/// `bgp` section: see `super::bgp_section`), which announces the node's
/// block and installs the routes it learns; felix sets up `tunl0` in IPIP
/// mode and the pods' `cali*` veths.
fn calico_bgp(c: &Cluster, i: usize, s: &mut Script<'_>) {
    let node = &c.nodes[i];
    let mtu = c.pod_mtu();
    if c.cni == Cni::CalicoIpip {
        s.comment(format!(
            "calico-node (felix): tunl0 (IPIP, MTU {} - 20), tunnel address {} from the node's IPAM block",
            c.mtu, node.pod_cidr.addr
        ));
        s.line("modprobe ipip");
        s.line(format!("ip link set tunl0 mtu {mtu}"));
        s.line(format!("ip addr add {}/32 dev tunl0", node.pod_cidr.addr));
        s.line("ip link set tunl0 up");
    }
    s.comment(format!(
        "calico-node: BIRD announces {} and installs what its peers announce (started after setup: podpath routes shows its tables)",
        node.pod_cidr
    ));
    s.comment("felix's iptables chains (cali-*) are not generated: no NetworkPolicy is modelled");
    calico_pods(c, i, s);
}

/// The pods of node `i` as the Calico CNI plugin and felix set them up.
fn calico_pods(c: &Cluster, i: usize, s: &mut Script<'_>) {
    let mtu = c.pod_mtu();
    for (_, p) in c.pods_on(i) {
        s.blank();
        let veth = calico_veth_name(&p.namespace, &p.name);
        let ns = p.netns();
        s.comment(format!(
            "pod {}/{} ({}): the Calico CNI plugin, then felix's interface settings",
            p.namespace, p.name, p.ip
        ));
        s.line(format!("ip netns add {ns}"));
        s.line(format!(
            "ip link add {veth} mtu {mtu} type veth peer name eth0 mtu {mtu} netns {ns}"
        ));
        s.line(format!("ip link set {veth} address ee:ee:ee:ee:ee:ee"));
        s.line(format!("ip link set {veth} up"));
        s.line(format!("ip -n {ns} link set lo up"));
        s.line(format!("ip -n {ns} addr add {}/32 dev eth0", p.ip));
        s.line(format!("ip -n {ns} link set eth0 up"));
        s.line(format!(
            "ip -n {ns} route add 169.254.1.1 dev eth0 scope link"
        ));
        s.line(format!(
            "ip -n {ns} route add default via 169.254.1.1 dev eth0"
        ));
        s.line(format!("ip route add {} dev {veth} scope link", p.ip));
        s.line(format!("sysctl -w net.ipv4.conf.{veth}.rp_filter=1"));
        s.comment(format!(
            "not modelled: sysctl -w net.ipv4.conf.{veth}.route_localnet=1"
        ));
        s.line(format!("sysctl -w net.ipv4.conf.{veth}.proxy_arp=1"));
        s.line(format!("sysctl -w net.ipv4.neigh.{veth}.proxy_delay=0"));
        s.line(format!("sysctl -w net.ipv4.conf.{veth}.forwarding=1"));
    }
}

/// kubenet: the bridge plugin on `cbr0`, and kubenet's masquerade rule
/// (`--non-masquerade-cidr` 10.0.0.0/8).
fn kubenet(c: &Cluster, i: usize, s: &mut Script<'_>) {
    s.comment("kubenet: outbound traffic leaving 10.0.0.0/8 is masqueraded");
    s.line("iptables -t nat -A POSTROUTING ! -d 10.0.0.0/8 -m comment --comment \"kubenet: SNAT for outbound traffic from cluster\" -m addrtype ! --dst-type LOCAL -j MASQUERADE");
    s.blank();
    bridge_pods(c, i, "cbr0", false, s);
}

/// Routers' scripts that depend on the cluster: the VPC route table, which
/// the route controller fills with one route per node podCIDR.
pub(super) fn program_routers(c: &mut Cluster) {
    let UnderlayKind::Vpc { route_limit } = c.underlay else {
        return;
    };
    if c.cni != Cni::Kubenet {
        let r = &mut c.routers[0];
        r.setup = "# the VPC router: the subnet's gateway\nsysctl -w net.ipv4.ip_forward=1\nsysctl -w net.ipv4.conf.all.send_redirects=0\nsysctl -w net.ipv4.conf.eth0.send_redirects=0\n".into();
        return;
    }
    let mut setup = String::from(
        "# the VPC router: the subnet's gateway; a cloud router sends no ICMP redirects\nsysctl -w net.ipv4.ip_forward=1\nsysctl -w net.ipv4.conf.all.send_redirects=0\nsysctl -w net.ipv4.conf.eth0.send_redirects=0\n",
    );
    let _ = writeln!(
        setup,
        "# the route controller: one route per node podCIDR (route table limit {route_limit})"
    );
    for (k, n) in c.nodes.iter().enumerate() {
        if (k as u32) < route_limit {
            let _ = writeln!(setup, "ip route add {} via {} dev eth0", n.pod_cidr, n.ip);
        } else {
            let _ = writeln!(
                setup,
                "# RouteLimitExceeded, not created: ip route add {} via {} dev eth0",
                n.pod_cidr, n.ip
            );
        }
    }
    let over = c.nodes.len().saturating_sub(route_limit as usize);
    if over > 0 {
        let first = &c.nodes[route_limit as usize].name;
        let last = &c.nodes[c.nodes.len() - 1].name;
        let which = if over == 1 {
            first.clone()
        } else {
            format!("{first} .. {last}")
        };
        c.warnings.push(format!(
            "VPC route table limit of {route_limit} routes reached (RouteLimitExceeded; AWS's default is 50 routes per route table): the route controller created no route for the podCIDRs of {over} node{} ({which}); their pods are unreachable from other nodes",
            if over == 1 { "" } else { "s" }
        ));
    }
    c.routers[0].setup = setup;
}

/// The VTEP MAC of a node's VXLAN device. flanneld and calico-node draw a
/// random one; podpath derives it from the node's address so runs and
/// generated scripts are reproducible.
fn vtep_mac(c: &Cluster, n: &Node) -> String {
    vtep_mac_addr(c, n).to_string()
}

fn vtep_mac_addr(c: &Cluster, n: &Node) -> MacAddr {
    let prefix = match c.cni {
        Cni::CalicoVxlan => [0x66, 0xca],
        _ => [0x0e, 0xfe],
    };
    let o = n.ip.octets();
    MacAddr([prefix[0], prefix[1], o[0], o[1], o[2], o[3]])
}

/// The bridge plugin names a pod's host-side veth `veth` + 8 random hex
/// digits; podpath takes them from SHA-1 of `namespace/name`.
fn bridge_veth_name(p: &Pod) -> String {
    let h = sha1(format!("{}/{}", p.namespace, p.name).as_bytes());
    format!("veth{}", &hex(&h)[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each batched command is what the parser makes of its line, and the
    /// loader's script with the batch's lines put back where it runs is
    /// the script `podpath expand` prints.
    #[test]
    fn batch_commands_are_their_lines_parsed() {
        for cni in ["flannel-vxlan", "flannel-host-gw", "calico-vxlan"] {
            for n in [3, 20] {
                let src = format!(
                    "Scenario(name: \"b\", cluster: Cluster(cni: \"{cni}\", nodes: Nodes(count: {n})))"
                );
                let sc = crate::load_str("b.ron", &src).expect("loads");
                let c = sc.cluster.as_ref().expect("a cluster");
                let peers = Arc::new(PeerTable::new(c));
                for i in 0..n {
                    let (full, none) = node_script(c, i, &peers, true);
                    assert!(none.is_none());
                    let (part, batch) = node_script(c, i, &peers, false);
                    let (at, b) = batch.expect("a batch");
                    assert_eq!(
                        b.0.len(),
                        (n - 1) * if cni.contains("vxlan") { 3 } else { 1 }
                    );
                    let mut lines: Vec<String> =
                        part.split_inclusive('\n').map(String::from).collect();
                    let batch_lines: Vec<String> = (0..b.0.len())
                        .map(|k| format!("{}\n", b.0.line(k)))
                        .collect();
                    lines.splice(at..at, batch_lines);
                    assert_eq!(lines.concat(), full, "{cni} {n} node {i}");
                    for k in 0..b.0.len() {
                        let parsed = sim_models::cmd::parse_line(&b.0.line(k)).expect("parses");
                        assert_eq!(
                            parsed,
                            b.0.command(k),
                            "{cni} {n} node {i}: {}",
                            b.0.line(k)
                        );
                    }
                }
            }
        }
    }
}
