//! Executing commands against the model, with the kernel's and the tools'
//! own answers (error messages verified against Linux 6.x and iproute2 6.x).

use std::net::Ipv4Addr;

use sim_core::net::Ipv4Net;
use sim_core::time::SimDuration;
use sim_core::topo::EdgeKind;
use sim_core::trace::RouteType;
use sim_core::wire::MacAddr;

use crate::cmd::*;
use crate::linux::fib::{
    Flow, Nexthop, Nexthops, PROTO_BOOT, PROTO_KERNEL, Route, Rule, RuleAction,
};
use crate::linux::neigh::NeighEntry;
use crate::linux::{
    Bridge, BridgeFdb, CmdOutput, Cx, DevId, DevKind, HostId, IfAddr, Ipip, NsId, Vxlan, VxlanFdb,
    VxlanRdst, World,
};

type R = Result<String, String>;
type ParmSetter = Box<dyn FnOnce(&mut crate::linux::NeighParms, i64)>;

fn no_dev(name: &str) -> String {
    format!("Cannot find device \"{name}\"")
}

const KNOWN_MODULES: &[&str] = &[
    "ipip",
    "br_netfilter",
    "bridge",
    "veth",
    "vxlan",
    "dummy",
    "ip_tunnel",
    "tunnel4",
    "udp_tunnel",
    "ip6_udp_tunnel",
    "nf_conntrack",
    "iptable_filter",
    "iptable_nat",
    "iptable_mangle",
    "iptable_raw",
    "ip_tables",
    "x_tables",
    "xt_conntrack",
    "xt_comment",
    "xt_mark",
    "xt_multiport",
    "xt_addrtype",
    "xt_statistic",
    "xt_TCPMSS",
    "nf_nat",
    "overlay",
    "8021q",
];

impl World {
    /// Runs one parsed command on `host`.
    pub fn exec(&mut self, cx: &mut Cx, host: HostId, cmd: &Command) -> CmdOutput {
        // Commands change routes, rules and devices: no cached route
        // lookup of the host outlives one (see touch_host).
        self.fib_invalidate_host(host);
        let ns = match &cmd.netns {
            None => self.hosts[host.ix()].root,
            Some(name) => match self.hosts[host.ix()].namespaces.get(name) {
                Some(&n) if self.namespaces[n.ix()].alive => n,
                _ => {
                    return CmdOutput::err(format!(
                        "Cannot open network namespace \"{name}\": No such file or directory"
                    ));
                }
            },
        };
        let r: R = match &cmd.kind {
            CommandKind::Noop => Ok(String::new()),
            CommandKind::Invalid { message } => Err(message.clone()),
            CommandKind::Batch(b) => {
                // Each command in turn, stopping at the first that fails
                // (`Simulation` logs each; this is for commands run now).
                for k in 0..b.0.len() {
                    let out = self.exec(cx, host, &b.0.command(k));
                    if out.failed {
                        return out;
                    }
                }
                Ok(String::new())
            }
            CommandKind::Link(c) => self.exec_link(cx, host, ns, c),
            CommandKind::Addr(c) => self.exec_addr(ns, c),
            CommandKind::Route(c) => self.exec_route(ns, c),
            CommandKind::Rule(c) => self.exec_rule(ns, c),
            CommandKind::Neigh(c) => self.exec_neigh(cx, ns, c),
            CommandKind::Fdb(c) => self.exec_fdb(cx, ns, c),
            CommandKind::Netns(c) => self.exec_netns(host, c),
            CommandKind::Tunnel(c) => self.exec_tunnel(host, ns, c),
            CommandKind::Sysctl { key, value } => self.exec_sysctl(host, ns, key, value.as_deref()),
            CommandKind::Modprobe { module } => self.exec_modprobe(host, module),
            CommandKind::Iptables { args, .. } => self.exec_iptables(ns, args),
            CommandKind::IptablesSave { table, counters } => {
                Ok(self.iptables_save(ns, table.as_deref(), *counters))
            }
            CommandKind::IptablesRestore {
                noflush,
                counters,
                input,
            } => self
                .iptables_restore_counters(ns, input, *noflush, *counters)
                .map(|()| String::new()),
            CommandKind::ConntrackList => {
                self.touch_host(host);
                return self.conntrack_list_output(ns, cx.now);
            }
            CommandKind::Ping(p) => self.start_ping(cx, ns, p.clone()).map(|_| String::new()),
            CommandKind::Nc(c) => self.start_nc(cx, ns, c.clone()).map(|_| String::new()),
            CommandKind::Iperf3(c) => self.start_iperf3(cx, ns, c.clone()).map(|_| String::new()),
            CommandKind::Bird(c) => self.exec_bird(cx, host, ns, c),
            CommandKind::Traceroute { dst, numeric } => self
                .start_traceroute(cx, ns, *dst, *numeric)
                .map(|_| String::new()),
            CommandKind::Tcpdump { dev, write } => {
                // Without -i, tcpdump takes the first up, non-loopback device;
                // `-i any` captures on every device.
                let first_up = || {
                    self.namespaces[ns.ix()].devs.values().copied().find(|&id| {
                        self.devices[id.ix()].admin_up
                            && !matches!(self.devices[id.ix()].kind, DevKind::Loopback)
                    })
                };
                let d = match dev {
                    Some(d) if d == "any" => None,
                    None => Some(
                        first_up().ok_or_else(|| "tcpdump: no suitable device found".to_string()),
                    ),
                    Some(d) => Some(self.dev_by_name(ns, d).ok_or_else(|| {
                        format!(
                            "tcpdump: {d}: No such device exists\n(SIOCGIFHWADDR: No such device)"
                        )
                    })),
                };
                match d {
                    Some(Err(e)) => Err(e),
                    Some(Ok(id)) => {
                        self.devices[id.ix()].captured = true;
                        self.captures.taps.push((id, write.clone()));
                        Ok(String::new())
                    }
                    None => {
                        let devs: Vec<DevId> =
                            self.namespaces[ns.ix()].devs.values().copied().collect();
                        for id in devs {
                            self.captures.taps.push((id, write.clone()));
                        }
                        Ok(String::new())
                    }
                }
            }
        };
        self.touch_host(host);
        match r {
            Ok(s) => CmdOutput::ok(s),
            Err(e) => CmdOutput::err(e),
        }
    }

    /// Counts a change in every namespace of `host`: a command may change
    /// another namespace's tables (a veth peer going down marks its routes
    /// `linkdown`), and commands are rare next to packets.
    fn touch_host(&mut self, host: HostId) {
        let h = &self.hosts[host.ix()];
        for ns in std::iter::once(h.root).chain(h.namespaces.values().copied()) {
            let g = &mut self.namespaces[ns.ix()].generation;
            g.config += 1;
            g.neigh += 1;
            g.fdb += 1;
        }
        self.fib_invalidate_host(host);
    }

    /// Forgets the cached route lookups of every namespace of `host`.
    fn fib_invalidate_host(&mut self, host: HostId) {
        let h = &self.hosts[host.ix()];
        for ns in std::iter::once(h.root).chain(h.namespaces.values().copied()) {
            self.namespaces[ns.ix()].fib.invalidate();
        }
    }

    /// The device a `show` command is filtered by, with iproute2's error.
    fn show_filter_dev(&self, ns: NsId, dev: Option<&str>) -> Result<Option<DevId>, String> {
        dev.map(|n| {
            self.dev_by_name(ns, n)
                .ok_or_else(|| format!("Device \"{n}\" does not exist."))
        })
        .transpose()
    }

    fn dev_named(&self, ns: NsId, name: &str) -> Result<DevId, String> {
        self.dev_by_name(ns, name).ok_or_else(|| no_dev(name))
    }

    // ================================================================ link ==

    fn exec_link(&mut self, cx: &mut Cx, host: HostId, ns: NsId, c: &LinkCmd) -> R {
        match c {
            LinkCmd::Add {
                name,
                kind,
                mtu,
                address,
            } => self
                .link_add(host, ns, name, kind, *mtu, *address)
                .map(|w| {
                    if !w.is_empty() {
                        let now = cx.now;
                        self.warn(now, ns, w.clone());
                    }
                    String::new()
                }),
            LinkCmd::Set(s) => self.link_set(ns, s),
            LinkCmd::Del { dev } => {
                let d = self.dev_named(ns, dev)?;
                self.link_del(d);
                Ok(String::new())
            }
            LinkCmd::Show { dev } => {
                let d = self.show_filter_dev(ns, dev.as_deref())?;
                Ok(self.show_links(ns, d))
            }
        }
    }

    fn check_new_name(&self, ns: NsId, name: &str) -> Result<(), String> {
        if name.is_empty()
            || name.len() > 15
            || name.contains('/')
            || name.contains(char::is_whitespace)
        {
            return Err(format!(
                "Error: argument \"{name}\" is wrong: \"name\" not a valid ifname"
            ));
        }
        if self.dev_by_name(ns, name).is_some() {
            return Err("RTNETLINK answers: File exists".into());
        }
        Ok(())
    }

    /// Creates a link; returns a warning to print (iproute2's notes), if any.
    pub fn link_add(
        &mut self,
        host: HostId,
        ns: NsId,
        name: &str,
        kind: &LinkKind,
        mtu: Option<u32>,
        address: Option<MacAddr>,
    ) -> R {
        self.check_new_name(ns, name)?;
        let mut warning = String::new();
        let mac = address.unwrap_or_else(|| self.random_mac(host));
        match kind {
            LinkKind::Veth {
                peer,
                peer_mtu,
                peer_address,
                peer_netns,
            } => {
                let pns = match peer_netns {
                    None => ns,
                    Some(n) => self.hosts[host.ix()]
                        .namespaces
                        .get(n)
                        .copied()
                        .ok_or_else(|| {
                            format!("Error: argument \"{n}\" is wrong: Invalid \"netns\" value")
                        })?,
                };
                if peer == name && pns == ns {
                    return Err("RTNETLINK answers: File exists".into());
                }
                self.check_new_name(pns, peer)?;
                let pmac = peer_address.unwrap_or_else(|| self.random_mac(host));
                // veth_newlink registers the peer first: it gets the lower ifindex.
                let b = self.new_device(
                    pns,
                    peer,
                    DevKind::Veth { peer: None },
                    pmac,
                    peer_mtu.or(mtu).unwrap_or(1500),
                );
                let a = self.new_device(
                    ns,
                    name,
                    DevKind::Veth { peer: Some(b) },
                    mac,
                    mtu.unwrap_or(1500),
                );
                self.devices[b.ix()].kind = DevKind::Veth { peer: Some(a) };
                let (na, nb) = (self.devices[a.ix()].node, self.devices[b.ix()].node);
                self.topo.connect(na, nb, EdgeKind::VethPeer);
            }
            LinkKind::Bridge => {
                self.new_device(
                    ns,
                    name,
                    DevKind::Bridge(Box::new(Bridge {
                        ports: vec![],
                        fdb: Default::default(),
                        ageing_time: SimDuration::from_secs(300),
                        mac_fixed: address.is_some(),
                    })),
                    mac,
                    mtu.unwrap_or(1500),
                );
            }
            LinkKind::Dummy => {
                self.new_device(ns, name, DevKind::Dummy, mac, mtu.unwrap_or(1500));
            }
            LinkKind::Vxlan(v) => {
                let Some(vni) = v.vni else {
                    return Err(
                        "Error: Required attributes not provided to perform the operation.".into(),
                    );
                };
                if v.remote.is_some() && v.group.is_some() {
                    return Err("vxlan: both group and remote cannot be specified".into());
                }
                let lower = v
                    .dev
                    .as_deref()
                    .map(|d| self.dev_named(ns, d))
                    .transpose()?;
                let dstport = match v.dstport {
                    Some(0) | None => {
                        if v.dstport.is_none() {
                            warning = "vxlan: destination port not specified\nWill use Linux kernel default (non-standard value)\nUse 'dstport 4789' to get the IANA assigned value\nUse 'dstport 0' to get default and quiet this message".into();
                        }
                        8472
                    }
                    Some(p) => p,
                };
                let dup = self.namespaces[ns.ix()].devs.values().any(|&d| matches!(&self.devices[d.ix()].kind, DevKind::Vxlan(x) if x.vni == vni && x.dstport == dstport));
                if dup {
                    return Err(
                        "Error: A VXLAN device with the specified VNI already exists.".into(),
                    );
                }
                let dev_mtu = match lower {
                    Some(l) => self.devices[l.ix()].mtu.saturating_sub(50),
                    None => 1500,
                };
                let mut fdb = crate::linux::types::VxlanFdbTable::default();
                if let Some(r) = v.remote.or(v.group) {
                    fdb.push(VxlanFdb {
                        mac: MacAddr::ZERO,
                        rdsts: smallvec::smallvec![VxlanRdst {
                            dst: r,
                            port: None,
                            vni: None,
                        }],
                        permanent: true,
                        updated: sim_core::time::SimTime::ZERO,
                    });
                }
                let id = self.new_device(
                    ns,
                    name,
                    DevKind::Vxlan(Box::new(Vxlan {
                        vni,
                        dstport,
                        local: v.local,
                        remote: v.remote,
                        group: v.group,
                        lower,
                        ttl: v.ttl.unwrap_or(0),
                        srcport: v.srcport.unwrap_or((0, 0)),
                        learning: v.learning.unwrap_or(true),
                        proxy: v.proxy,
                        l2miss: v.l2miss,
                        l3miss: v.l3miss,
                        ageing: SimDuration::from_secs(300),
                        fdb,
                    })),
                    mac,
                    mtu.unwrap_or(dev_mtu),
                );
                if let Some(l) = lower {
                    let (a, b) = (self.devices[id.ix()].node, self.devices[l.ix()].node);
                    self.topo.connect(a, b, EdgeKind::TunnelUnderlay);
                }
            }
            LinkKind::Ipip(t) => {
                self.load_module(host, "ipip");
                self.check_new_name(ns, name)?;
                self.ipip_add(ns, name, t, mtu)?;
            }
        }
        Ok(warning)
    }

    fn ipip_add(
        &mut self,
        ns: NsId,
        name: &str,
        t: &TunnelArgs,
        mtu: Option<u32>,
    ) -> Result<DevId, String> {
        let lower = t
            .dev
            .as_deref()
            .map(|d| self.dev_named(ns, d))
            .transpose()?;
        let exists = self.namespaces[ns.ix()].devs.values().any(|&d| matches!(&self.devices[d.ix()].kind, DevKind::Ipip(x) if !x.fallback && x.local == t.local && x.remote == t.remote));
        if exists {
            return Err("add tunnel \"tunl0\" failed: File exists".replace("tunl0", name));
        }
        // ip_tunnel_bind_dev: the MTU follows the device towards the remote.
        let under = lower.or_else(|| {
            let r = t.remote?;
            self.fib_lookup(
                ns,
                &Flow {
                    dst: r,
                    ..Default::default()
                },
            )
            .ok()?
            .nexthop()
            .map(|n| n.dev)
        });
        let dev_mtu = under
            .map(|d| self.devices[d.ix()].mtu.saturating_sub(20))
            .unwrap_or(1480);
        let id = self.new_device(
            ns,
            name,
            DevKind::Ipip(Box::new(Ipip {
                local: t.local,
                remote: t.remote,
                ttl: t.ttl.unwrap_or(0),
                lower,
                fallback: false,
                pmtudisc: true,
            })),
            MacAddr::ZERO,
            mtu.unwrap_or(dev_mtu),
        );
        if let Some(l) = lower {
            let (a, b) = (self.devices[id.ix()].node, self.devices[l.ix()].node);
            self.topo.connect(a, b, EdgeKind::TunnelUnderlay);
        }
        Ok(id)
    }

    fn exec_tunnel(&mut self, host: HostId, ns: NsId, c: &TunnelCmd) -> R {
        match c {
            TunnelCmd::Add { name, args } => {
                self.load_module(host, "ipip");
                if self.dev_by_name(ns, name).is_some() {
                    return Err(format!("add tunnel \"{name}\" failed: File exists"));
                }
                self.ipip_add(ns, name, args, None).map(|_| String::new())
            }
            TunnelCmd::Del { name } => {
                let d = self
                    .dev_by_name(ns, name)
                    .ok_or_else(|| format!("delete tunnel \"{name}\" failed: No such device"))?;
                if matches!(&self.devices[d.ix()].kind, DevKind::Ipip(t) if t.fallback) {
                    return Err(format!(
                        "delete tunnel \"{name}\" failed: Operation not permitted"
                    ));
                }
                self.link_del(d);
                Ok(String::new())
            }
            TunnelCmd::Show { .. } => Ok(self.show_tunnels(ns)),
        }
    }

    /// `modprobe`: loading ipip creates the fallback `tunl0` in every namespace.
    fn exec_modprobe(&mut self, host: HostId, module: &str) -> R {
        let m = module.replace('-', "_");
        if !KNOWN_MODULES.contains(&m.as_str()) {
            return Err(format!(
                "modprobe: FATAL: Module {module} not found in directory /lib/modules/6.x"
            ));
        }
        self.load_module(host, &m);
        Ok(String::new())
    }

    pub fn load_module(&mut self, host: HostId, m: &str) {
        if self.hosts[host.ix()].modules.iter().any(|x| x == m) {
            return;
        }
        self.hosts[host.ix()].modules.push(m.to_string());
        match m {
            "ipip" => {
                let mut nss = vec![self.hosts[host.ix()].root];
                nss.extend(self.hosts[host.ix()].namespaces.values().copied());
                for ns in nss {
                    self.add_fallback_tunnel(ns);
                }
            }
            "dummy" => {
                let root = self.hosts[host.ix()].root;
                if self.dev_by_name(root, "dummy0").is_none() {
                    let mac = self.random_mac(host);
                    self.new_device(root, "dummy0", DevKind::Dummy, mac, 1500);
                }
            }
            _ => {}
        }
    }

    pub fn add_fallback_tunnel(&mut self, ns: NsId) {
        if !self.namespaces[ns.ix()].alive || self.dev_by_name(ns, "tunl0").is_some() {
            return;
        }
        self.new_device(
            ns,
            "tunl0",
            DevKind::Ipip(Box::new(Ipip {
                local: None,
                remote: None,
                ttl: 0,
                lower: None,
                fallback: true,
                pmtudisc: false,
            })),
            MacAddr::ZERO,
            1480,
        );
    }

    fn link_set(&mut self, ns: NsId, s: &LinkSet) -> R {
        // iproute2 resolves `master` and `netns` while parsing its arguments
        // (iplink_parse: invarg), before it looks the device up.
        let master_dev = match &s.master {
            Some(Some(m)) => Some(self.dev_by_name(ns, m).ok_or_else(|| {
                format!("Error: argument \"{m}\" is wrong: Device does not exist")
            })?),
            _ => None,
        };
        let target_ns = match &s.netns {
            Some(n) => {
                let host = self.namespaces[ns.ix()].host;
                let t = self.hosts[host.ix()]
                    .namespaces
                    .get(n)
                    .copied()
                    .filter(|t| self.namespaces[t.ix()].alive);
                Some(t.ok_or_else(|| {
                    format!("Error: argument \"{n}\" is wrong: Invalid \"netns\" value")
                })?)
            }
            None => None,
        };
        let d = self.dev_named(ns, &s.dev)?;
        // Validate everything before changing anything.
        let master = match (&s.master, master_dev) {
            (Some(Some(_)), Some(b)) => {
                if !matches!(self.devices[b.ix()].kind, DevKind::Bridge(_)) {
                    return Err("RTNETLINK answers: Operation not supported".into());
                }
                if b == d {
                    return Err("Error: Can not enslave a bridge to itself.".into());
                }
                Some(Some(b))
            }
            (Some(None), _) => Some(None),
            _ => None,
        };
        if let Some(mtu) = s.mtu {
            let max = match self.devices[d.ix()].kind {
                DevKind::Loopback => u32::MAX,
                DevKind::Vxlan(ref v) => v
                    .lower
                    .map(|l| self.devices[l.ix()].mtu - 50)
                    .unwrap_or(65535),
                _ => 65535,
            };
            if mtu < 68 || mtu > max {
                return Err(if mtu < 68 {
                    "Error: mtu less than device minimum."
                } else {
                    "Error: mtu greater than device maximum."
                }
                .into());
            }
        }
        if let Some(name) = &s.name
            && name != &self.devices[d.ix()].name
        {
            self.check_new_name(ns, name)?;
        }
        if let Some(mac) = s.address {
            if !mac.is_unicast() || mac.is_zero() {
                return Err("RTNETLINK answers: Cannot assign requested address".into());
            }
            self.devices[d.ix()].mac = mac;
            self.bridge_refresh_mac_of_master(d);
        }
        if let Some(mtu) = s.mtu {
            self.devices[d.ix()].mtu = mtu;
        }
        if let Some(m) = master {
            self.set_master(d, m);
        }
        if let Some(name) = &s.name {
            let old = self.devices[d.ix()].name.clone();
            if *name != old {
                let n = &mut self.namespaces[ns.ix()];
                let pos = n.devs.get_index_of(&old).unwrap();
                n.devs.shift_remove(&old);
                n.devs.shift_insert(pos, name.clone(), d);
                self.devices[d.ix()].name = name.clone();
                let node = self.devices[d.ix()].node;
                let nsnode = self.namespaces[ns.ix()].node;
                self.topo.move_device(node, nsnode, name);
                // Cached lookups carry their routes' texts, which name devices.
                self.namespaces[ns.ix()].fib.invalidate();
            }
        }
        if let Some(t) = target_ns {
            if t != ns {
                self.move_to_ns(d, t);
            }
            if s.up.is_some() {
                return Ok(String::new());
            }
        }
        match s.up {
            Some(true) => self.link_up(d),
            Some(false) => self.link_down(d),
            None => {}
        }
        Ok(String::new())
    }

    fn set_master(&mut self, d: DevId, m: Option<DevId>) {
        if let Some(old) = self.devices[d.ix()].master.take() {
            if let DevKind::Bridge(b) = &mut self.devices[old.ix()].kind {
                b.ports.retain(|p| *p != d);
                b.fdb.retain(|_, e| e.port != d);
            }
            let (a, bn) = (self.devices[d.ix()].node, self.devices[old.ix()].node);
            self.topo.disconnect(a, bn, EdgeKind::BridgePort);
            self.bridge_refresh_mac(old);
        }
        if let Some(br) = m {
            self.devices[d.ix()].master = Some(br);
            let mac = self.devices[d.ix()].mac;
            let pmtu = self.devices[d.ix()].mtu;
            if let DevKind::Bridge(b) = &mut self.devices[br.ix()].kind {
                b.ports.push(d);
                b.fdb.insert(
                    mac,
                    BridgeFdb {
                        port: d,
                        is_local: true,
                        is_static: true,
                        updated: sim_core::time::SimTime::ZERO,
                    },
                );
            }
            // The bridge's MTU follows the smallest port MTU.
            let brd = &mut self.devices[br.ix()];
            if brd.mtu > pmtu || matches!(&brd.kind, DevKind::Bridge(b) if b.ports.len() == 1) {
                brd.mtu = pmtu;
            }
            let (a, bn) = (self.devices[d.ix()].node, self.devices[br.ix()].node);
            self.topo.connect(a, bn, EdgeKind::BridgePort);
            self.bridge_refresh_mac(br);
        }
    }

    fn bridge_refresh_mac_of_master(&mut self, port: DevId) {
        if let Some(br) = self.devices[port.ix()].master {
            self.bridge_refresh_mac(br);
        }
    }

    /// A bridge without a configured address takes the lowest port MAC.
    fn bridge_refresh_mac(&mut self, br: DevId) {
        let DevKind::Bridge(b) = &self.devices[br.ix()].kind else {
            return;
        };
        if b.mac_fixed {
            return;
        }
        if let Some(min) = b.ports.iter().map(|p| self.devices[p.ix()].mac).min() {
            let old = self.devices[br.ix()].mac;
            self.devices[br.ix()].mac = min;
            if let DevKind::Bridge(b) = &mut self.devices[br.ix()].kind
                && old != min
                && b.fdb.get(&old).is_some_and(|e| e.port == br)
            {
                b.fdb.remove(&old);
            }
        }
    }

    /// `ip link set DEV up`: routes for its addresses appear (fib_add_ifaddr).
    pub fn link_up(&mut self, d: DevId) {
        if self.devices[d.ix()].admin_up {
            return;
        }
        self.devices[d.ix()].admin_up = true;
        self.veth_link_event(d);
        self.namespaces[self.devices[d.ix()].ns.ix()]
            .fib
            .invalidate();
        let ns = self.devices[d.ix()].ns;
        // inetdev gives the loopback device 127.0.0.1/8 (scope host) when it comes up.
        if matches!(self.devices[d.ix()].kind, DevKind::Loopback)
            && !self.namespaces[ns.ix()]
                .addrs
                .iter()
                .any(|a| a.dev == d && a.local == Ipv4Addr::LOCALHOST)
        {
            self.namespaces[ns.ix()].addrs.insert(
                0,
                IfAddr {
                    dev: d,
                    local: Ipv4Addr::LOCALHOST,
                    plen: 8,
                    broadcast: None,
                    scope: Scope::Host,
                    secondary: false,
                },
            );
        }
        let addrs: Vec<IfAddr> = self.namespaces[ns.ix()]
            .addrs
            .iter()
            .filter(|a| a.dev == d)
            .cloned()
            .collect();
        for a in addrs {
            self.add_ifaddr_routes(ns, &a, true);
        }
    }

    /// `ip link set DEV down`: routes through it go (local routes stay), its
    /// neighbour entries go, permanent ones included (arp_ifdown).
    pub fn link_down(&mut self, d: DevId) {
        if !self.devices[d.ix()].admin_up {
            return;
        }
        self.devices[d.ix()].admin_up = false;
        self.veth_link_event(d);
        self.namespaces[self.devices[d.ix()].ns.ix()]
            .fib
            .invalidate();
        let ns = self.devices[d.ix()].ns;
        self.flush_dev_routes(ns, d, false);
        self.flush_dev_neigh(ns, d);
    }

    /// A veth going up or down changes its own state and its peer's carrier
    /// (veth_open/veth_close): the kernel recomputes both devices' stored
    /// operational state then (linkwatch).
    fn veth_link_event(&mut self, d: DevId) {
        if let DevKind::Veth { peer } = self.devices[d.ix()].kind {
            self.store_operstate(d);
            if let Some(p) = peer {
                self.store_operstate(p);
            }
        }
    }

    /// default_operstate for a device without carrier: LOWERLAYERDOWN when
    /// the device of its own namespace whose ifindex is its IFLA_LINK has no
    /// carrier either; DOWN when IFLA_LINK is its own index or names no
    /// device there. For a veth whose peer is in another namespace, the
    /// kernel looks the peer's index up in the veth's own namespace, so the
    /// answer depends on whatever device holds that number there.
    fn store_operstate(&mut self, d: DevId) {
        let dv = &self.devices[d.ix()];
        let iflink = match dv.kind {
            DevKind::Veth { peer: Some(p) } if self.devices[p.ix()].alive => {
                self.devices[p.ix()].ifindex
            }
            _ => dv.ifindex,
        };
        let lower = if iflink == dv.ifindex {
            None
        } else {
            self.namespaces[dv.ns.ix()]
                .devs
                .values()
                .copied()
                .find(|&o| self.devices[o.ix()].ifindex == iflink)
        };
        let lld = lower.is_some_and(|l| !self.carrier_ok(l));
        self.devices[d.ix()].lower_layer_down = lld;
    }

    fn flush_dev_routes(&mut self, ns: NsId, d: DevId, including_local: bool) {
        self.namespaces[ns.ix()].fib.invalidate();
        for (_, t) in self.namespaces[ns.ix()].fib.tables.iter_mut() {
            t.retain(|r| !(r.uses_dev(d) && (including_local || r.rtype != RouteType::Local)));
        }
    }

    fn flush_dev_neigh(&mut self, ns: NsId, d: DevId) {
        let host = self.namespaces[ns.ix()].host;
        let mut removed = 0;
        self.namespaces[ns.ix()]
            .neigh
            .entries
            .retain(|(dev, _), e| {
                let gone = *dev == d;
                removed += (gone && e.state != NudState::Permanent) as usize;
                !gone
            });
        let h = &mut self.hosts[host.ix()];
        h.neigh_entries = h.neigh_entries.saturating_sub(removed as u32);
    }

    /// Moves a device to another namespace: it goes down and loses its IPv4 configuration.
    fn move_to_ns(&mut self, d: DevId, to: NsId) {
        let from = self.devices[d.ix()].ns;
        self.link_down(d);
        self.set_master(d, None);
        self.flush_dev_routes(from, d, true);
        self.namespaces[from.ix()].addrs.retain(|a| a.dev != d);
        let name = self.devices[d.ix()].name.clone();
        self.namespaces[from.ix()].devs.shift_remove(&name);
        // The ifindex is kept when free in the target namespace, else a new
        // one is allocated (dev_change_net_namespace); keeping it does not
        // move the namespace's allocation cursor.
        let want = self.devices[d.ix()].ifindex;
        let taken = self.namespaces[to.ix()]
            .devs
            .values()
            .any(|&o| self.devices[o.ix()].ifindex == want);
        if taken {
            self.devices[d.ix()].ifindex = self.alloc_ifindex(to);
        }
        let ifindex = self.devices[d.ix()].ifindex;
        self.insert_dev(to, &name, d, ifindex);
        self.namespaces[from.ix()].fib.invalidate();
        self.namespaces[to.ix()].fib.invalidate();
        let conf = self.namespaces[to.ix()].sysctl.conf_default;
        self.devices[d.ix()].ns = to;
        self.devices[d.ix()].conf = conf;
        let node = self.devices[d.ix()].node;
        let nsnode = self.namespaces[to.ix()].node;
        self.topo.move_device(node, nsnode, &name);
    }

    pub fn link_del(&mut self, d: DevId) {
        let peer = match &self.devices[d.ix()].kind {
            DevKind::Veth { peer } => *peer,
            _ => None,
        };
        self.delete_one(d);
        if let Some(p) = peer {
            self.delete_one(p);
        }
    }

    fn delete_one(&mut self, d: DevId) {
        if !self.devices[d.ix()].alive {
            return;
        }
        let ns = self.devices[d.ix()].ns;
        self.link_down(d);
        self.set_master(d, None);
        // Ports of a deleted bridge are released.
        if let DevKind::Bridge(b) = &self.devices[d.ix()].kind {
            for p in b.ports.clone() {
                self.devices[p.ix()].master = None;
            }
        }
        self.flush_dev_routes(ns, d, true);
        self.namespaces[ns.ix()].addrs.retain(|a| a.dev != d);
        let name = self.devices[d.ix()].name.clone();
        self.namespaces[ns.ix()].devs.shift_remove(&name);
        self.devices[d.ix()].alive = false;
        self.namespaces[ns.ix()].fib.invalidate();
        let node = self.devices[d.ix()].node;
        self.topo.remove(node);
    }

    // ================================================================ addr ==

    fn exec_addr(&mut self, ns: NsId, c: &AddrCmd) -> R {
        match c {
            AddrCmd::Add {
                addr,
                dev,
                broadcast,
                scope,
            } => {
                let d = self.dev_named(ns, dev)?;
                if self.namespaces[ns.ix()]
                    .addrs
                    .iter()
                    .any(|a| a.dev == d && a.local == addr.addr)
                {
                    return Err("Error: ipv4: Address already assigned.".into());
                }
                let scope = scope.unwrap_or(if addr.addr.is_loopback() {
                    Scope::Host
                } else {
                    Scope::Global
                });
                let secondary = self.namespaces[ns.ix()].addrs.iter().any(|a| {
                    a.dev == d && a.plen == addr.len && a.net().network() == addr.network()
                });
                let a = IfAddr {
                    dev: d,
                    local: addr.addr,
                    plen: addr.len,
                    broadcast: *broadcast,
                    scope,
                    secondary,
                };
                self.namespaces[ns.ix()].addrs.push(a.clone());
                let up = self.devices[d.ix()].admin_up;
                self.add_ifaddr_routes(ns, &a, up);
                Ok(String::new())
            }
            AddrCmd::Del { addr, dev } => {
                let d = self.dev_named(ns, dev)?;
                let n = &mut self.namespaces[ns.ix()];
                let Some(pos) = n.addrs.iter().position(|a| {
                    a.dev == d && a.local == addr.addr && (addr.len == 32 || a.plen == addr.len)
                }) else {
                    return Err("Error: ipv4: Address not found.".into());
                };
                let a = n.addrs.remove(pos);
                self.del_ifaddr_routes(ns, &a);
                Ok(String::new())
            }
            AddrCmd::Flush { dev } => {
                let d = self.dev_named(ns, dev)?;
                let gone: Vec<IfAddr> = self.namespaces[ns.ix()]
                    .addrs
                    .iter()
                    .filter(|a| a.dev == d)
                    .cloned()
                    .collect();
                self.namespaces[ns.ix()].addrs.retain(|a| a.dev != d);
                for a in gone {
                    self.del_ifaddr_routes(ns, &a);
                }
                Ok(String::new())
            }
            AddrCmd::Show { dev } => {
                let d = self.show_filter_dev(ns, dev.as_deref())?;
                Ok(self.show_addrs(ns, d))
            }
        }
    }

    fn kernel_route(
        &self,
        table: TableId,
        rtype: RouteType,
        prefix: Ipv4Net,
        scope: Scope,
        src: Ipv4Addr,
        dev: DevId,
    ) -> Route {
        Route {
            table,
            rtype,
            prefix,
            metric: 0,
            proto: PROTO_KERNEL,
            scope,
            src: Some(src),
            nexthops: smallvec::smallvec![Nexthop {
                gw: None,
                dev,
                weight: 1,
                onlink: false,
            }],
            mtu: None,
            origin: None,
        }
    }

    fn put_route_once(&mut self, ns: NsId, r: Route) {
        let t = self.namespaces[ns.ix()].fib.table_mut(r.table);
        if !t
            .exact(r.prefix)
            .iter()
            .any(|o| o.rtype == r.rtype && o.nexthops == r.nexthops && o.metric == r.metric)
        {
            t.insert(r);
        }
    }

    /// fib_add_ifaddr: the local route always; the prefix and broadcast routes when the device is up.
    fn add_ifaddr_routes(&mut self, ns: NsId, a: &IfAddr, up: bool) {
        let local = self.kernel_route(
            TABLE_LOCAL,
            RouteType::Local,
            Ipv4Net::host(a.local),
            Scope::Host,
            a.local,
            a.dev,
        );
        self.put_route_once(ns, local);
        if !up {
            return;
        }
        if let Some(b) = a.broadcast.filter(|b| !b.is_broadcast()) {
            let r = self.kernel_route(
                TABLE_LOCAL,
                RouteType::Broadcast,
                Ipv4Net::host(b),
                Scope::Link,
                a.local,
                a.dev,
            );
            self.put_route_once(ns, r);
        }
        let prefix = a.net().network();
        if a.secondary
            || prefix.addr.is_unspecified() && a.plen > 0
            || (prefix.addr == a.local && a.plen == 32)
        {
            return;
        }
        let is_lo = matches!(self.devices[a.dev.ix()].kind, DevKind::Loopback);
        let r = self.kernel_route(
            if is_lo { TABLE_LOCAL } else { TABLE_MAIN },
            if is_lo {
                RouteType::Local
            } else {
                RouteType::Unicast
            },
            prefix,
            if is_lo { Scope::Host } else { Scope::Link },
            a.local,
            a.dev,
        );
        self.put_route_once(ns, r);
        if a.plen < 31 {
            let r = self.kernel_route(
                TABLE_LOCAL,
                RouteType::Broadcast,
                Ipv4Net::host(prefix.broadcast()),
                Scope::Link,
                a.local,
                a.dev,
            );
            self.put_route_once(ns, r);
        }
    }

    fn del_ifaddr_routes(&mut self, ns: NsId, a: &IfAddr) {
        let still_local = self.namespaces[ns.ix()]
            .addrs
            .iter()
            .any(|o| o.local == a.local);
        self.namespaces[ns.ix()].fib.invalidate();
        let fib = &mut self.namespaces[ns.ix()].fib;
        for (_, t) in fib.tables.iter_mut() {
            t.retain(|r| {
                !(r.proto == PROTO_KERNEL
                    && r.uses_dev(a.dev)
                    && r.src == Some(a.local)
                    && !(still_local
                        && r.rtype == RouteType::Local
                        && r.prefix.addr == a.local
                        && r.prefix.len == 32))
            });
        }
    }

    // =============================================================== route ==

    fn resolve_route(&self, ns: NsId, spec: &RouteSpec) -> Result<Route, String> {
        let dev = spec
            .dev
            .as_deref()
            .map(|d| self.dev_named(ns, d))
            .transpose()?;
        let mut nh_devs = Vec::new();
        for nh in &spec.nexthops {
            nh_devs.push(
                nh.dev
                    .as_deref()
                    .map(|d| self.dev_named(ns, d))
                    .transpose()?,
            );
        }
        if !spec.prefix.is_network() {
            return Err("Error: Invalid prefix for given prefix length.".into());
        }
        let table = spec.table.unwrap_or(
            if matches!(spec.rtype, RouteType::Local | RouteType::Broadcast) {
                TABLE_LOCAL
            } else {
                TABLE_MAIN
            },
        );
        let has_gw = spec.gateway.is_some() || !spec.nexthops.is_empty();
        let scope = spec.scope.unwrap_or(match spec.rtype {
            RouteType::Local => Scope::Host,
            RouteType::Broadcast => Scope::Link,
            RouteType::Unicast if !has_gw => Scope::Link,
            _ => Scope::Global,
        });
        let mut nexthops = Nexthops::new();
        if spec.rtype == RouteType::Unicast
            || spec.rtype == RouteType::Local
            || spec.rtype == RouteType::Broadcast
        {
            if spec.nexthops.is_empty() {
                nexthops.push(self.check_nexthop(
                    ns,
                    spec.gateway,
                    dev,
                    spec.onlink,
                    scope,
                    table,
                )?);
            } else {
                for (nh, d) in spec.nexthops.iter().zip(nh_devs) {
                    let mut n = self.check_nexthop(ns, nh.gateway, d, nh.onlink, scope, table)?;
                    n.weight = nh.weight;
                    nexthops.push(n);
                }
            }
        }
        if let Some(src) = spec.src {
            let ok = (spec.rtype == RouteType::Local && src == spec.prefix.addr)
                || self.is_local_addr(ns, src);
            if !ok {
                return Err("Error: Invalid prefsrc address.".into());
            }
        }
        Ok(Route {
            table,
            rtype: spec.rtype,
            prefix: spec.prefix,
            metric: spec.metric.unwrap_or(0),
            proto: spec.proto.unwrap_or(PROTO_BOOT),
            scope,
            src: spec.src,
            nexthops,
            mtu: spec.mtu,
            origin: None,
        })
    }

    /// fib_check_nh: validate a gateway and derive the device.
    fn check_nexthop(
        &self,
        ns: NsId,
        gw: Option<Ipv4Addr>,
        dev: Option<DevId>,
        onlink: bool,
        scope: Scope,
        _table: TableId,
    ) -> Result<Nexthop, String> {
        match gw {
            None => {
                let Some(d) = dev else {
                    return Err("RTNETLINK answers: No such device".into());
                };
                if onlink {
                    return Err(
                        "Error: Invalid flags for nexthop - PERVASIVE and ONLINK can not be set."
                            .into(),
                    );
                }
                if !self.devices[d.ix()].admin_up {
                    return Err("Error: Device for nexthop is not up.".into());
                }
                Ok(Nexthop {
                    gw: None,
                    dev: d,
                    weight: 1,
                    onlink: false,
                })
            }
            Some(g) => {
                if onlink {
                    let Some(d) = dev else {
                        return Err("Error: Nexthop device required for onlink.".into());
                    };
                    if !self.devices[d.ix()].admin_up {
                        return Err("Error: Nexthop device is not up.".into());
                    }
                    if self.is_local_addr(ns, g)
                        || g.is_broadcast()
                        || g.is_multicast()
                        || g.is_unspecified()
                    {
                        return Err("Error: Nexthop has invalid gateway.".into());
                    }
                    return Ok(Nexthop {
                        gw: Some(g),
                        dev: d,
                        weight: 1,
                        onlink: true,
                    });
                }
                // The gateway must be reachable by a link- or host-scope route.
                let n = &self.namespaces[ns.ix()];
                let min_scope = if scope.value() < Scope::Link.value() {
                    Scope::Link.value()
                } else {
                    scope.value() + 1
                };
                let mut found = None;
                'rules: for rule in &n.fib.rules {
                    let RuleAction::Lookup(t) = rule.action else {
                        continue;
                    };
                    let Some(tab) = n.fib.table(t) else { continue };
                    for r in tab.candidates(g) {
                        if r.scope.value() < min_scope {
                            continue;
                        }
                        if let Some(d) = dev
                            && !r.uses_dev(d)
                        {
                            continue;
                        }
                        found = Some(r.clone());
                        break 'rules;
                    }
                }
                let Some(r) = found else {
                    return Err("Error: Nexthop has invalid gateway.".into());
                };
                if r.rtype != RouteType::Unicast && r.rtype != RouteType::Local {
                    return Err("Error: Nexthop has invalid gateway.".into());
                }
                let d = dev
                    .or(r.dev())
                    .ok_or("Error: No egress device for nexthop gateway.")?;
                if !self.devices[d.ix()].admin_up {
                    return Err("RTNETLINK answers: Network is down".into());
                }
                Ok(Nexthop {
                    gw: Some(g),
                    dev: d,
                    weight: 1,
                    onlink: false,
                })
            }
        }
    }

    fn exec_route(&mut self, ns: NsId, c: &RouteCmd) -> R {
        match c {
            RouteCmd::Add(spec) | RouteCmd::Replace(spec) => {
                let r = self.resolve_route(ns, spec)?;
                let replace = matches!(c, RouteCmd::Replace(_));
                let t = self.namespaces[ns.ix()].fib.table_mut(r.table);
                let clash = t.exact(r.prefix).iter().any(|o| o.metric == r.metric);
                if clash {
                    if !replace {
                        return Err("RTNETLINK answers: File exists".into());
                    }
                    let mut done = false;
                    t.remove_where(r.prefix, |o| {
                        let hit = !done && o.metric == r.metric;
                        done |= hit;
                        hit
                    });
                }
                t.insert(r);
                Ok(String::new())
            }
            RouteCmd::Del(spec) => {
                let dev = spec
                    .dev
                    .as_deref()
                    .map(|d| self.dev_named(ns, d))
                    .transpose()?;
                let table = spec.table.unwrap_or(TABLE_MAIN);
                let t = self.namespaces[ns.ix()].fib.table_mut(table);
                let mut done = false;
                let n = t.remove_where(spec.prefix, |o| {
                    let hit = !done
                        && (spec.rtype == RouteType::Unicast || o.rtype == spec.rtype)
                        && spec.metric.is_none_or(|m| m == o.metric)
                        && spec.gateway.is_none_or(|g| o.gw() == Some(g))
                        && dev.is_none_or(|d| o.uses_dev(d))
                        && spec.proto.is_none_or(|p| p == o.proto)
                        && spec.scope.is_none_or(|s| s == o.scope);
                    done |= hit;
                    hit
                });
                if n == 0 {
                    return Err("RTNETLINK answers: No such process".into());
                }
                Ok(String::new())
            }
            RouteCmd::Show { table, dev } => {
                let d = dev.as_deref().map(|n| self.dev_named(ns, n)).transpose()?;
                Ok(self.show_routes(ns, *table, d))
            }
            RouteCmd::Flush { table, dev } => {
                let d = dev.as_deref().map(|n| self.dev_named(ns, n)).transpose()?;
                let tid = table.unwrap_or(TABLE_MAIN);
                self.namespaces[ns.ix()].fib.invalidate();
                for (id, t) in self.namespaces[ns.ix()].fib.tables.iter_mut() {
                    if tid == 0 || *id == tid {
                        t.retain(|r| !d.is_none_or(|d| r.uses_dev(d)));
                    }
                }
                Ok(String::new())
            }
            RouteCmd::Get {
                dst,
                from,
                iif,
                oif,
                mark,
            } => self.route_get(
                ns,
                *dst,
                *from,
                iif.as_deref(),
                oif.as_deref(),
                mark.unwrap_or(0),
            ),
        }
    }

    /// `ip route get`: the route decision, printed as iproute2 prints it.
    pub fn route_get(
        &self,
        ns: NsId,
        dst: Ipv4Addr,
        from: Option<Ipv4Addr>,
        iif: Option<&str>,
        oif: Option<&str>,
        mark: u32,
    ) -> R {
        let iif_dev = iif.map(|n| self.dev_named(ns, n)).transpose()?;
        let oif_dev = oif.map(|n| self.dev_named(ns, n)).transpose()?;
        let flow = Flow {
            dst,
            src: from,
            iif,
            oif: oif_dev,
            oif_name: oif,
            mark,
            hash: crate::linux::fib::l3_hash(from.unwrap_or(Ipv4Addr::UNSPECIFIED), dst),
        };
        let res = self.fib_lookup(ns, &flow);
        let res = match (res, iif_dev) {
            (Ok(r), Some(d))
                if r.route.rtype == RouteType::Unicast && !self.devices[d.ix()].conf.forwarding =>
            {
                let _ = r;
                return Err("RTNETLINK answers: No route to host".into());
            }
            (Ok(r), _) => r,
            (Err(_), Some(d)) if !self.devices[d.ix()].conf.forwarding => {
                return Err("RTNETLINK answers: No route to host".into());
            }
            (Err(_), _) => return Err("RTNETLINK answers: Network is unreachable".into()),
        };
        let mut s = String::new();
        use std::fmt::Write as _;
        match res.route.rtype {
            RouteType::Local => {
                let _ = write!(s, "local {dst}");
                if let Some(f) = from.filter(|_| iif.is_some()) {
                    let _ = write!(s, " from {f}");
                }
                let _ = write!(s, " dev lo");
                if iif.is_none() {
                    let _ = write!(s, " src {}", from.unwrap_or(dst));
                }
                if let Some(i) = iif {
                    let _ = write!(s, " table local \n    cache <local> iif {i} ");
                    let _ = writeln!(s);
                } else {
                    let _ = writeln!(s, " uid 0 \n    cache <local> ");
                }
            }
            RouteType::Unicast => {
                let nh = res.nexthop().unwrap();
                let _ = write!(s, "{dst}");
                if let Some(f) = from {
                    let _ = write!(s, " from {f}");
                }
                if let Some(g) = nh.gw {
                    let _ = write!(s, " via {g}");
                }
                let _ = write!(s, " dev {}", self.devices[nh.dev.ix()].name);
                if res.route.table != TABLE_MAIN {
                    let _ = write!(s, " table {}", sim_core::trace::table_name(res.route.table));
                }
                if let Some(i) = iif {
                    let _ = write!(s, " \n    cache iif {i} ");
                } else {
                    let src = from.or(res.route.src).or_else(|| {
                        self.inet_select_addr(
                            ns,
                            Some(nh.dev),
                            nh.gw.unwrap_or(dst),
                            res.route.scope,
                        )
                    });
                    if let Some(src) = src {
                        let _ = write!(s, " src {src}");
                    }
                    let _ = write!(s, " uid 0 \n    cache ");
                }
                s.push('\n');
            }
            RouteType::Broadcast => {
                let _ = writeln!(
                    s,
                    "broadcast {dst} dev {} src {} uid 0 \n    cache <local,brd> ",
                    res.nexthop()
                        .map(|n| self.devices[n.dev.ix()].name.as_str())
                        .unwrap_or("lo"),
                    res.route.src.unwrap_or(dst)
                );
            }
            RouteType::Unreachable => return Err("RTNETLINK answers: No route to host".into()),
            RouteType::Prohibit => return Err("RTNETLINK answers: Permission denied".into()),
            RouteType::Blackhole => return Err("RTNETLINK answers: Invalid argument".into()),
        }
        Ok(s)
    }

    // ================================================================ rule ==

    fn exec_rule(&mut self, ns: NsId, c: &RuleCmd) -> R {
        match c {
            RuleCmd::Show => Ok(self.show_rules(ns)),
            RuleCmd::Add(s) => {
                let action = match (s.action, s.table) {
                    (Some(t), _) => RuleAction::Type(t),
                    (None, Some(t)) => RuleAction::Lookup(t),
                    (None, None) => RuleAction::Lookup(TABLE_MAIN),
                };
                self.namespaces[ns.ix()].fib.invalidate();
                let rules = &mut self.namespaces[ns.ix()].fib.rules;
                // Without a priority, the kernel picks one below the first non-zero rule.
                let prio = s.priority.unwrap_or_else(|| {
                    let first = rules
                        .iter()
                        .map(|r| r.priority)
                        .find(|&p| p != 0)
                        .unwrap_or(32766);
                    first.saturating_sub(1)
                });
                let rule = Rule {
                    priority: prio,
                    from: s.from,
                    to: s.to,
                    iif: s.iif.clone(),
                    oif: s.oif.clone(),
                    fwmark: s.fwmark,
                    not: s.not,
                    action,
                };
                if rules.contains(&rule) {
                    return Err("RTNETLINK answers: File exists".into());
                }
                let pos = rules
                    .iter()
                    .position(|r| r.priority > prio)
                    .unwrap_or(rules.len());
                rules.insert(pos, rule);
                Ok(String::new())
            }
            RuleCmd::Del(s) => {
                self.namespaces[ns.ix()].fib.invalidate();
                let rules = &mut self.namespaces[ns.ix()].fib.rules;
                let pos = rules.iter().position(|r| {
                    s.priority.is_none_or(|p| p == r.priority)
                        && s.from.is_none_or(|f| r.from == Some(f))
                        && s.to.is_none_or(|f| r.to == Some(f))
                        && s.table.is_none_or(|t| r.action == RuleAction::Lookup(t))
                        && s.fwmark.is_none_or(|m| r.fwmark == Some(m))
                        && s.iif.as_ref().is_none_or(|i| r.iif.as_ref() == Some(i))
                });
                match pos {
                    Some(p) => {
                        rules.remove(p);
                        Ok(String::new())
                    }
                    None => Err("RTNETLINK answers: No such file or directory".into()),
                }
            }
        }
    }

    // =============================================================== neigh ==

    fn exec_neigh(&mut self, cx: &mut Cx, ns: NsId, c: &NeighCmd) -> R {
        match c {
            NeighCmd::Add {
                addr,
                lladdr,
                dev,
                state,
                replace,
                proxy,
            } => {
                let d = self.dev_named(ns, dev)?;
                if *proxy {
                    return Err("ip neigh ... proxy: not supported yet".into());
                }
                let host = self.namespaces[ns.ix()].host;
                let exists = self.namespaces[ns.ix()].neigh.get(d, *addr).is_some();
                if exists && !replace {
                    return Err("RTNETLINK answers: File exists".into());
                }
                if lladdr.is_none() && !matches!(state, NudState::Noarp) {
                    return Err("Error: No link layer address given.".replace(
                        "Error: No link layer address given.",
                        "RTNETLINK answers: Invalid argument",
                    ));
                }
                let now = cx.now;
                let old = self.namespaces[ns.ix()]
                    .neigh
                    .entries
                    .insert((d, *addr), NeighEntry::new(*state, *lladdr, now));
                // PERMANENT entries made by netlink are exempt from garbage
                // collection and not counted against gc_thresh3 (neigh_alloc's
                // exempt_from_gc, Linux 4.19 on); a replace that changes the
                // state moves the entry in or out of the count.
                let counted = |s: NudState| s != NudState::Permanent;
                let h = &mut self.hosts[host.ix()];
                if old.as_ref().is_none_or(|o| !counted(o.state)) && counted(*state) {
                    h.neigh_entries += 1;
                } else if old.as_ref().is_some_and(|o| counted(o.state)) && !counted(*state) {
                    h.neigh_entries -= 1;
                }
                if let Some(mut o) = old {
                    if let Some(t) = o.take_timer() {
                        cx.sched.cancel(t);
                    }
                    // Packets waiting for this neighbour go out now.
                    if let Some(mac) = lladdr {
                        for p in o.take_queue() {
                            let src = self.devices[d.ix()].mac;
                            let mut p = p;
                            p.headers.insert(
                                0,
                                sim_core::packet::Header::Ethernet(sim_core::wire::EthernetRepr {
                                    dst: *mac,
                                    src,
                                    ethertype: sim_core::wire::EtherType::Ipv4,
                                }),
                            );
                            self.dev_xmit(cx, d, p);
                        }
                    }
                }
                Ok(String::new())
            }
            NeighCmd::Del { addr, dev } => {
                let d = self.dev_named(ns, dev)?;
                match self.namespaces[ns.ix()].neigh.entries.remove(&(d, *addr)) {
                    Some(e) => {
                        if e.state != NudState::Permanent {
                            let host = self.namespaces[ns.ix()].host;
                            self.hosts[host.ix()].neigh_entries -= 1;
                        }
                        Ok(String::new())
                    }
                    None => Err("RTNETLINK answers: No such file or directory".into()),
                }
            }
            NeighCmd::Show { dev } => {
                let d = dev.as_deref().map(|n| self.dev_named(ns, n)).transpose()?;
                Ok(self.show_neigh(ns, d))
            }
            NeighCmd::Flush { dev } => {
                let d = dev.as_deref().map(|n| self.dev_named(ns, n)).transpose()?;
                let host = self.namespaces[ns.ix()].host;
                let t = &mut self.namespaces[ns.ix()].neigh.entries;
                let before = t.len();
                t.retain(|(dd, _), e| {
                    e.state == NudState::Permanent || d.is_some_and(|x| x != *dd)
                });
                let n = before - t.len();
                self.hosts[host.ix()].neigh_entries -= n as u32;
                Ok(String::new())
            }
            NeighCmd::ArpShow => Ok(self.show_arp(ns)),
        }
    }

    // ================================================================= fdb ==

    fn exec_fdb(&mut self, cx: &mut Cx, ns: NsId, c: &FdbCmd) -> R {
        match c {
            FdbCmd::Add {
                mac,
                dev,
                dst,
                append,
                replace,
                master,
                self_: _,
                state,
                port,
                vni,
            } => {
                let d = self.dev_named(ns, dev)?;
                let now = cx.now;
                if *master
                    || (self.devices[d.ix()].master.is_some()
                        && !matches!(self.devices[d.ix()].kind, DevKind::Vxlan(_)))
                {
                    let Some(br) = self.devices[d.ix()].master else {
                        return Err("RTNETLINK answers: Operation not supported".into());
                    };
                    let DevKind::Bridge(b) = &mut self.devices[br.ix()].kind else {
                        unreachable!()
                    };
                    if b.fdb.contains_key(mac) && !replace {
                        return Err("RTNETLINK answers: File exists".into());
                    }
                    b.fdb.insert(
                        *mac,
                        BridgeFdb {
                            port: d,
                            is_local: false,
                            is_static: *state != FdbState::Dynamic,
                            updated: now,
                        },
                    );
                    return Ok(String::new());
                }
                match &mut self.devices[d.ix()].kind {
                    DevKind::Vxlan(v) => {
                        let Some(dst) = dst else {
                            return Err("RTNETLINK answers: Invalid argument".into());
                        };
                        let rd = VxlanRdst {
                            dst: *dst,
                            port: *port,
                            vni: *vni,
                        };
                        let permanent = *state == FdbState::Permanent || *state == FdbState::Static;
                        match v.fdb.get_mut(*mac) {
                            Some(f) => {
                                if *append {
                                    if f.rdsts.contains(&rd) {
                                        return Err("RTNETLINK answers: File exists".into());
                                    }
                                    f.rdsts.push(rd);
                                } else if *replace {
                                    f.rdsts = smallvec::smallvec![rd];
                                    f.permanent = permanent;
                                } else {
                                    return Err("RTNETLINK answers: File exists".into());
                                }
                            }
                            None => v.fdb.push(VxlanFdb {
                                mac: *mac,
                                rdsts: smallvec::smallvec![rd],
                                permanent,
                                updated: now,
                            }),
                        }
                        Ok(String::new())
                    }
                    DevKind::Bridge(b) => {
                        if b.fdb.contains_key(mac) && !replace {
                            return Err("RTNETLINK answers: File exists".into());
                        }
                        b.fdb.insert(
                            *mac,
                            BridgeFdb {
                                port: d,
                                is_local: true,
                                is_static: true,
                                updated: now,
                            },
                        );
                        Ok(String::new())
                    }
                    _ => Err(format!(
                        "bridge fdb: {dev} is neither a VXLAN device nor a bridge port: not supported"
                    )),
                }
            }
            FdbCmd::Del {
                mac,
                dev,
                dst,
                master,
                ..
            } => {
                let d = self.dev_named(ns, dev)?;
                if *master
                    || self.devices[d.ix()].master.is_some()
                        && !matches!(self.devices[d.ix()].kind, DevKind::Vxlan(_))
                {
                    if let Some(br) = self.devices[d.ix()].master
                        && let DevKind::Bridge(b) = &mut self.devices[br.ix()].kind
                        && b.fdb.remove(mac).is_some()
                    {
                        return Ok(String::new());
                    }
                    return Err("RTNETLINK answers: No such file or directory".into());
                }
                if let DevKind::Vxlan(v) = &mut self.devices[d.ix()].kind
                    && let Some(f) = v.fdb.get_mut(*mac)
                {
                    match dst {
                        Some(ip) => {
                            let before = f.rdsts.len();
                            f.rdsts.retain(|r| r.dst != *ip);
                            if f.rdsts.len() == before {
                                return Err("RTNETLINK answers: No such file or directory".into());
                            }
                            if f.rdsts.is_empty() {
                                v.fdb.remove(*mac);
                            }
                        }
                        None => {
                            v.fdb.remove(*mac);
                        }
                    }
                    return Ok(String::new());
                }
                Err("RTNETLINK answers: No such file or directory".into())
            }
            FdbCmd::Show { dev, br } => {
                let d = dev.as_deref().map(|n| self.dev_named(ns, n)).transpose()?;
                let b = br.as_deref().map(|n| self.dev_named(ns, n)).transpose()?;
                Ok(self.show_fdb(ns, d, b))
            }
        }
    }

    // =============================================================== netns ==

    fn exec_netns(&mut self, host: HostId, c: &NetnsCmd) -> R {
        match c {
            NetnsCmd::Add(name) => {
                if self.hosts[host.ix()]
                    .namespaces
                    .get(name)
                    .is_some_and(|n| self.namespaces[n.ix()].alive)
                {
                    return Err(format!(
                        "Cannot create namespace file \"/run/netns/{name}\": File exists"
                    ));
                }
                let ns = self.new_namespace(host, name);
                if self.hosts[host.ix()].modules.iter().any(|m| m == "ipip") {
                    self.add_fallback_tunnel(ns);
                }
                Ok(String::new())
            }
            NetnsCmd::Del(name) => {
                let Some(&ns) = self.hosts[host.ix()]
                    .namespaces
                    .get(name)
                    .filter(|n| self.namespaces[n.ix()].alive)
                else {
                    return Err(format!(
                        "Cannot remove namespace file \"/run/netns/{name}\": No such file or directory"
                    ));
                };
                // Devices die with the namespace (veth peers elsewhere with them).
                let devs: Vec<DevId> = self.namespaces[ns.ix()].devs.values().copied().collect();
                for d in devs {
                    self.link_del(d);
                }
                self.namespaces[ns.ix()].alive = false;
                self.hosts[host.ix()].namespaces.shift_remove(name);
                let node = self.namespaces[ns.ix()].node;
                self.topo.remove(node);
                Ok(String::new())
            }
            NetnsCmd::List => {
                let mut s = String::new();
                for (name, _) in self.hosts[host.ix()].namespaces.iter().rev() {
                    s.push_str(name);
                    s.push('\n');
                }
                Ok(s)
            }
        }
    }

    // ============================================================== sysctl ==

    fn exec_sysctl(&mut self, host: HostId, ns: NsId, key: &str, value: Option<&str>) -> R {
        let parts: Vec<&str> = key.split('/').collect();
        let dotted = parts.join(".");
        let missing = || {
            format!(
                "sysctl: cannot stat /proc/sys/{}: No such file or directory",
                parts.join("/")
            )
        };
        let invalid = || format!("sysctl: setting key \"{dotted}\": Invalid argument");
        let int = |v: &str| v.trim().parse::<i64>().map_err(|_| invalid());
        let is_root = self.hosts[host.ix()].root == ns;
        let show = |v: String| format!("{dotted} = {v}\n");
        match parts.as_slice() {
            ["net", "ipv4", "ip_forward"] | ["net", "ipv4", "conf", "all", "forwarding"] => {
                if let Some(v) = value {
                    let on = int(v)? != 0;
                    self.set_forwarding_all(ns, on);
                    Ok(show(v.trim().to_string()))
                } else {
                    Ok(show(
                        (self.namespaces[ns.ix()].sysctl.conf_all.forwarding as u8).to_string(),
                    ))
                }
            }
            ["net", "ipv4", "ip_default_ttl"] => {
                if let Some(v) = value {
                    let t = int(v)?;
                    if !(1..=255).contains(&t) {
                        return Err(invalid());
                    }
                    self.namespaces[ns.ix()].sysctl.default_ttl = t as u8;
                    Ok(show(t.to_string()))
                } else {
                    Ok(show(
                        self.namespaces[ns.ix()].sysctl.default_ttl.to_string(),
                    ))
                }
            }
            ["net", "ipv4", "conf", which, knob] => {
                let knob = *knob;
                if ![
                    "forwarding",
                    "proxy_arp",
                    "rp_filter",
                    "accept_local",
                    "send_redirects",
                ]
                .contains(&knob)
                {
                    return Err(missing());
                }
                let target: Option<DevId> = match *which {
                    "all" | "default" => None,
                    d => Some(self.dev_by_name(ns, d).ok_or_else(missing)?),
                };
                let n = &mut self.namespaces[ns.ix()];
                let conf = match (*which, target) {
                    ("all", _) => &mut n.sysctl.conf_all,
                    ("default", _) => &mut n.sysctl.conf_default,
                    (_, Some(d)) => &mut self.devices[d.ix()].conf,
                    _ => unreachable!(),
                };
                let Some(v) = value else {
                    let cur = match knob {
                        "forwarding" => conf.forwarding as i64,
                        "proxy_arp" => conf.proxy_arp as i64,
                        "rp_filter" => conf.rp_filter as i64,
                        "accept_local" => conf.accept_local as i64,
                        _ => conf.send_redirects as i64,
                    };
                    return Ok(show(cur.to_string()));
                };
                let x = int(v)?;
                match knob {
                    "forwarding" => conf.forwarding = x != 0,
                    "proxy_arp" => conf.proxy_arp = x != 0,
                    "rp_filter" => {
                        if !(0..=2).contains(&x) {
                            return Err(invalid());
                        }
                        conf.rp_filter = x as u8
                    }
                    "accept_local" => conf.accept_local = x != 0,
                    _ => conf.send_redirects = x != 0,
                }
                Ok(show(v.trim().to_string()))
            }
            [
                "net",
                "ipv4",
                "neigh",
                "default",
                k @ ("gc_thresh1" | "gc_thresh2" | "gc_thresh3"),
            ] => {
                if !is_root {
                    return Err(missing());
                }
                let i = (k.as_bytes()[9] - b'1') as usize;
                match value {
                    Some(v) => {
                        let x = int(v)?;
                        if x < 0 {
                            return Err(invalid());
                        }
                        self.hosts[host.ix()].gc_thresh[i] = x as u32;
                        Ok(show(x.to_string()))
                    }
                    None => Ok(show(self.hosts[host.ix()].gc_thresh[i].to_string())),
                }
            }
            ["net", "ipv4", "neigh", which, knob] => {
                if *which == "default" && !is_root {
                    return Err(missing());
                }
                let parms = if *which == "default" {
                    &mut self.namespaces[ns.ix()].sysctl.neigh_default
                } else {
                    let d = self.dev_by_name(ns, which).ok_or_else(missing)?;
                    &mut self.devices[d.ix()].neigh
                };
                // proxy_delay is in USER_HZ (centiseconds); *_ms in milliseconds.
                let (get, set): (i64, ParmSetter) = match *knob {
                    "proxy_delay" => (
                        parms.proxy_delay.as_nanos() as i64 / 10_000_000,
                        Box::new(|p, x| p.proxy_delay = SimDuration::from_millis(x as u64 * 10)),
                    ),
                    "retrans_time_ms" => (
                        parms.retrans_time.as_nanos() as i64 / 1_000_000,
                        Box::new(|p, x| p.retrans_time = SimDuration::from_millis(x as u64)),
                    ),
                    "base_reachable_time_ms" => (
                        parms.base_reachable_time.as_nanos() as i64 / 1_000_000,
                        Box::new(|p, x| p.base_reachable_time = SimDuration::from_millis(x as u64)),
                    ),
                    "delay_first_probe_time" => (
                        parms.delay_first_probe_time.as_nanos() as i64 / 1_000_000_000,
                        Box::new(|p, x| {
                            p.delay_first_probe_time = SimDuration::from_secs(x as u64)
                        }),
                    ),
                    "mcast_solicit" => (
                        parms.mcast_solicit as i64,
                        Box::new(|p, x| p.mcast_solicit = x as u32),
                    ),
                    "ucast_solicit" => (
                        parms.ucast_solicit as i64,
                        Box::new(|p, x| p.ucast_solicit = x as u32),
                    ),
                    "unres_qlen_bytes" => (
                        parms.unres_qlen_bytes as i64,
                        Box::new(|p, x| p.unres_qlen_bytes = x as u32),
                    ),
                    _ => return Err(missing()),
                };
                match value {
                    Some(v) => {
                        let x = int(v)?;
                        if x < 0 {
                            return Err(invalid());
                        }
                        set(parms, x);
                        Ok(show(x.to_string()))
                    }
                    None => Ok(show(get.to_string())),
                }
            }
            ["net", "bridge", "bridge-nf-call-iptables"] => {
                if !self.hosts[host.ix()]
                    .modules
                    .iter()
                    .any(|m| m == "br_netfilter")
                {
                    return Err(missing());
                }
                match value {
                    Some(v) => {
                        let x = int(v)?;
                        self.namespaces[ns.ix()].sysctl.bridge_nf_call_iptables = x != 0;
                        Ok(show(x.to_string()))
                    }
                    None => Ok(show(
                        (self.namespaces[ns.ix()].sysctl.bridge_nf_call_iptables as u8).to_string(),
                    )),
                }
            }
            _ => Err(missing()),
        }
    }

    /// devinet's forwarding change: `all` propagates to `default` and every device.
    fn set_forwarding_all(&mut self, ns: NsId, on: bool) {
        let n = &mut self.namespaces[ns.ix()];
        n.sysctl.conf_all.forwarding = on;
        n.sysctl.conf_default.forwarding = on;
        let devs: Vec<DevId> = n.devs.values().copied().collect();
        for d in devs {
            self.devices[d.ix()].conf.forwarding = on;
        }
    }

    // ============================================================ iptables ==

    fn exec_iptables(&mut self, ns: NsId, args: &[String]) -> R {
        crate::linux::netfilter::exec_iptables(&mut self.namespaces[ns.ix()].nf, args)
    }
}
