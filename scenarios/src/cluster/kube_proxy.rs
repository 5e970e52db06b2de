//! kube-proxy in iptables mode: the jump rules it ensures at start, then the
//! filter and nat rules it restores (`syncProxyRules`), as `iptables`
//! command lines. Chain names are kube-proxy's: `KUBE-SVC-`/`KUBE-EXT-` +
//! base32(sha256(servicePortName + protocol))[:16], `KUBE-SEP-` + the same of
//! servicePortName + protocol + endpoint. Probabilities are
//! `fmt.Sprintf("%0.10f", 1.0/float64(n-i))`.

use super::hash::kube_proxy_hash;
use super::{Cluster, Node, Service, ServicePort};

/// kube-proxy's masquerade mark, `--masquerade-bit` 14.
const MARK: &str = "0x4000";

/// A service port's name as kube-proxy prints it: `namespace/name[:port]`.
pub fn port_name(s: &Service, p: &ServicePort) -> String {
    if p.name.is_empty() {
        format!("{}/{}", s.namespace, s.name)
    } else {
        format!("{}/{}:{}", s.namespace, s.name, p.name)
    }
}

pub fn svc_chain(s: &Service, p: &ServicePort) -> String {
    format!(
        "KUBE-SVC-{}",
        kube_proxy_hash(&format!("{}{}", port_name(s, p), p.protocol))
    )
}

pub fn ext_chain(s: &Service, p: &ServicePort) -> String {
    format!(
        "KUBE-EXT-{}",
        kube_proxy_hash(&format!("{}{}", port_name(s, p), p.protocol))
    )
}

pub fn sep_chain(s: &Service, p: &ServicePort, endpoint: &str) -> String {
    format!(
        "KUBE-SEP-{}",
        kube_proxy_hash(&format!("{}{}{endpoint}", port_name(s, p), p.protocol))
    )
}

/// `--comment X` as a shell word: quoted when it has spaces.
fn comment(text: &str) -> String {
    if text.contains(' ') {
        format!("-m comment --comment \"{text}\"")
    } else {
        format!("-m comment --comment {text}")
    }
}

/// The rules of one node (every node gets the same Services).
pub(super) fn node_rules(c: &Cluster, _node: &Node, out: &mut dyn FnMut(String)) {
    let mut l = |s: String| out(s);
    l("# kube-proxy (iptables mode): the jumps into its chains, then its rules as it restores them".into());
    l(
        "# not modelled (NodePorts on 127.0.0.1): sysctl -w net.ipv4.conf.all.route_localnet=1"
            .into(),
    );
    // iptablesJumpChains, each ensured with -N and prepended with -I.
    let jumps: [(&str, &str, &str, &str, &str); 12] = [
        (
            "",
            "KUBE-EXTERNAL-SERVICES",
            "INPUT",
            "kubernetes externally-visible service portals",
            "-m conntrack --ctstate NEW ",
        ),
        (
            "",
            "KUBE-EXTERNAL-SERVICES",
            "FORWARD",
            "kubernetes externally-visible service portals",
            "-m conntrack --ctstate NEW ",
        ),
        (
            "",
            "KUBE-NODEPORTS",
            "INPUT",
            "kubernetes health check service ports",
            "",
        ),
        (
            "",
            "KUBE-SERVICES",
            "FORWARD",
            "kubernetes service portals",
            "-m conntrack --ctstate NEW ",
        ),
        (
            "",
            "KUBE-SERVICES",
            "OUTPUT",
            "kubernetes service portals",
            "-m conntrack --ctstate NEW ",
        ),
        (
            "",
            "KUBE-FORWARD",
            "FORWARD",
            "kubernetes forwarding rules",
            "",
        ),
        (
            "",
            "KUBE-PROXY-FIREWALL",
            "INPUT",
            "kubernetes load balancer firewall",
            "-m conntrack --ctstate NEW ",
        ),
        (
            "",
            "KUBE-PROXY-FIREWALL",
            "OUTPUT",
            "kubernetes load balancer firewall",
            "-m conntrack --ctstate NEW ",
        ),
        (
            "",
            "KUBE-PROXY-FIREWALL",
            "FORWARD",
            "kubernetes load balancer firewall",
            "-m conntrack --ctstate NEW ",
        ),
        (
            "-t nat ",
            "KUBE-SERVICES",
            "OUTPUT",
            "kubernetes service portals",
            "",
        ),
        (
            "-t nat ",
            "KUBE-SERVICES",
            "PREROUTING",
            "kubernetes service portals",
            "",
        ),
        (
            "-t nat ",
            "KUBE-POSTROUTING",
            "POSTROUTING",
            "kubernetes postrouting rules",
            "",
        ),
    ];
    let mut made: Vec<(String, String)> = Vec::new();
    let mut chain = |l: &mut dyn FnMut(String), t: &str, name: &str| {
        if !made.iter().any(|(a, b)| a == t && b == name) {
            made.push((t.to_string(), name.to_string()));
            l(format!("iptables {t}-N {name}"));
        }
    };
    for (t, dst, src, text, extra) in jumps {
        chain(&mut l, t, dst);
        l(format!(
            "iptables {t}-I {src} {extra}{} -j {dst}",
            comment(text)
        ));
    }
    chain(&mut l, "", "KUBE-FIREWALL");
    l("iptables -I INPUT -j KUBE-FIREWALL".into());
    l("iptables -I OUTPUT -j KUBE-FIREWALL".into());

    // The nat chains of every service port, declared before any rule.
    let mut ports: Vec<(&Service, &ServicePort)> = c
        .services
        .iter()
        .flat_map(|s| s.ports.iter().map(move |p| (s, p)))
        .collect();
    // kube-proxy walks a Go map (random order); podpath sorts by name.
    ports.sort_by_key(|(s, p)| port_name(s, p));
    let endpoints = |s: &Service, p: &ServicePort| -> Vec<String> {
        let mut v: Vec<String> = s
            .endpoints
            .iter()
            .map(|&e| format!("{}:{}", c.pods[e].ip, p.target_port))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let total: usize = ports.iter().map(|(s, p)| endpoints(s, p).len()).sum();
    // largeClusterEndpointsThreshold: past 1000 endpoints the per-endpoint comments go.
    let large = total > 1000;
    chain(&mut l, "-t nat ", "KUBE-NODEPORTS");
    chain(&mut l, "-t nat ", "KUBE-MARK-MASQ");
    for (s, p) in &ports {
        let eps = endpoints(s, p);
        if eps.is_empty() {
            continue;
        }
        if p.node_port.is_some() {
            chain(&mut l, "-t nat ", &ext_chain(s, p));
        }
        chain(&mut l, "-t nat ", &svc_chain(s, p));
        for e in &eps {
            chain(&mut l, "-t nat ", &sep_chain(s, p, e));
        }
    }

    // filter
    for (s, p) in &ports {
        if !endpoints(s, p).is_empty() {
            continue;
        }
        let name = port_name(s, p);
        let proto = p.protocol;
        l(format!(
            "iptables -A KUBE-SERVICES {} -m {proto} -p {proto} -d {} --dport {} -j REJECT",
            comment(&format!("{name} has no endpoints")),
            s.cluster_ip,
            p.port
        ));
        if let Some(np) = p.node_port {
            l(format!(
                "iptables -A KUBE-EXTERNAL-SERVICES {} -m addrtype --dst-type LOCAL -m {proto} -p {proto} --dport {np} -j REJECT",
                comment(&format!("{name} has no endpoints"))
            ));
        }
    }
    l("iptables -A KUBE-FIREWALL -m comment --comment \"block incoming localnet connections\" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP".into());
    l("iptables -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP".into());
    l(format!(
        "iptables -A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark {MARK}/{MARK} -j ACCEPT"
    ));
    l("iptables -A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".into());

    // nat
    l(format!(
        "iptables -t nat -A KUBE-POSTROUTING -m mark ! --mark {MARK}/{MARK} -j RETURN"
    ));
    l(format!(
        "iptables -t nat -A KUBE-POSTROUTING -j MARK --xor-mark {MARK}"
    ));
    l("iptables -t nat -A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully".into());
    l(format!(
        "iptables -t nat -A KUBE-MARK-MASQ -j MARK --or-mark {MARK}"
    ));
    for (s, p) in &ports {
        let eps = endpoints(s, p);
        if eps.is_empty() {
            continue;
        }
        let name = port_name(s, p);
        let proto = p.protocol;
        let svc = svc_chain(s, p);
        let cip = comment(&format!("{name} cluster IP"));
        l(format!(
            "iptables -t nat -A KUBE-SERVICES {cip} -m {proto} -p {proto} -d {} --dport {} -j {svc}",
            s.cluster_ip, p.port
        ));
        if let Some(np) = p.node_port {
            let ext = ext_chain(s, p);
            l(format!(
                "iptables -t nat -A KUBE-NODEPORTS {} -m {proto} -p {proto} --dport {np} -j {ext}",
                comment(&name)
            ));
            l(format!(
                "iptables -t nat -A {ext} {} -j KUBE-MARK-MASQ",
                comment(&format!(
                    "masquerade traffic for {name} external destinations"
                ))
            ));
            l(format!("iptables -t nat -A {ext} -j {svc}"));
        }
        l(format!(
            "iptables -t nat -A {svc} {cip} -m {proto} -p {proto} -d {} --dport {} ! -s {} -j KUBE-MARK-MASQ",
            s.cluster_ip, p.port, c.cidr
        ));
        let n = eps.len();
        for (i, e) in eps.iter().enumerate() {
            let mut r = format!("iptables -t nat -A {svc}");
            if !large {
                r.push(' ');
                r.push_str(&comment(&format!("{name} -> {e}")));
            }
            if i < n - 1 {
                r.push_str(&format!(
                    " -m statistic --mode random --probability {:.10}",
                    1.0 / (n - i) as f64
                ));
            }
            r.push_str(&format!(" -j {}", sep_chain(s, p, e)));
            l(r);
        }
        for e in &eps {
            let sep = sep_chain(s, p, e);
            let c_ = if large {
                String::new()
            } else {
                format!(" {}", comment(&name))
            };
            let ip = e.split(':').next().unwrap_or("");
            l(format!(
                "iptables -t nat -A {sep}{c_} -s {ip} -j KUBE-MARK-MASQ"
            ));
            l(format!(
                "iptables -t nat -A {sep}{c_} -m {proto} -p {proto} -j DNAT --to-destination {e}"
            ));
        }
    }
    l("iptables -t nat -A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS".into());
}
