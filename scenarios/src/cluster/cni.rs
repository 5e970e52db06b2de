//! One generator per CNI mode: each node's configuration as the CNI's
//! components program it (flanneld and the bridge plugin, calico-node/felix
//! and the Calico CNI plugin, kubenet), in the order they program it, as
//! lines of the command language. Steps podpath does not model are kept as
//! comments, so the script stays honest and copy-pasteable.

use std::fmt::Write as _;

use super::hash::{calico_veth_name, hex, sha1};
use super::{Cluster, Cni, Node, Pod, UnderlayKind, kube_proxy, mac_of};

struct Script(String);

impl Script {
    fn line(&mut self, l: impl AsRef<str>) {
        self.0.push_str(l.as_ref());
        self.0.push('\n');
    }
    fn comment(&mut self, l: impl AsRef<str>) {
        let _ = writeln!(self.0, "# {}", l.as_ref());
    }
    fn blank(&mut self) {
        self.0.push('\n');
    }
}

/// The setup script of node `i`.
pub(super) fn node_script(c: &Cluster, i: usize) -> String {
    let node = &c.nodes[i];
    let mut s = Script(String::new());
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
    s.0
}

/// flanneld (VXLAN or host-gw backend) and the flannel CNI plugin, which
/// delegates to the bridge plugin.
fn flannel(c: &Cluster, i: usize, s: &mut Script) {
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
        for (j, o) in c.nodes.iter().enumerate() {
            if j == i {
                continue;
            }
            let mac = vtep_mac(c, o);
            s.line(format!(
                "ip neigh replace {} lladdr {mac} dev flannel.1 nud permanent",
                o.pod_cidr.addr
            ));
            s.line(format!(
                "bridge fdb replace {mac} dev flannel.1 dst {} self permanent",
                o.ip
            ));
            s.line(format!(
                "ip route replace {} via {} dev flannel.1 onlink",
                o.pod_cidr, o.pod_cidr.addr
            ));
        }
    } else {
        s.comment("flanneld, host-gw backend: each other node's podCIDR via its address");
        for (j, o) in c.nodes.iter().enumerate() {
            if j != i {
                s.line(format!(
                    "ip route replace {} via {} dev eth0",
                    o.pod_cidr, o.ip
                ));
            }
        }
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
fn bridge_pods(c: &Cluster, i: usize, bridge: &str, cluster_route: bool, s: &mut Script) {
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
fn calico_vxlan(c: &Cluster, i: usize, s: &mut Script) {
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
    for (j, o) in c.nodes.iter().enumerate() {
        if j == i {
            continue;
        }
        let mac = vtep_mac(c, o);
        s.line(format!(
            "ip neigh replace {} lladdr {mac} dev vxlan.calico nud permanent",
            o.pod_cidr.addr
        ));
        s.line(format!(
            "bridge fdb replace {mac} dev vxlan.calico dst {} self permanent",
            o.ip
        ));
        s.line(format!(
            "ip route replace {} via {} dev vxlan.calico onlink",
            o.pod_cidr, o.pod_cidr.addr
        ));
    }
    s.comment("felix: the node's own IPAM block is a blackhole but for its pods' routes");
    s.line(format!("ip route add blackhole {} proto 80", node.pod_cidr));
    s.comment("felix's iptables chains (cali-*) are not generated: no NetworkPolicy is modelled");
    calico_pods(c, i, s);
}

/// Calico's BGP modes: calico-node runs BIRD (from the scenario's generated
/// `bgp` section: see `super::bgp_section`), which announces the node's
/// block and installs the routes it learns; felix sets up `tunl0` in IPIP
/// mode and the pods' `cali*` veths.
fn calico_bgp(c: &Cluster, i: usize, s: &mut Script) {
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
fn calico_pods(c: &Cluster, i: usize, s: &mut Script) {
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
fn kubenet(c: &Cluster, i: usize, s: &mut Script) {
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
    let prefix = match c.cni {
        Cni::CalicoVxlan => [0x66, 0xca],
        _ => [0x0e, 0xfe],
    };
    mac_of(prefix, n.ip)
}

/// The bridge plugin names a pod's host-side veth `veth` + 8 random hex
/// digits; podpath takes them from SHA-1 of `namespace/name`.
fn bridge_veth_name(p: &Pod) -> String {
    let h = sha1(format!("{}/{}", p.namespace, p.name).as_bytes());
    format!("veth{}", &hex(&h)[..8])
}
