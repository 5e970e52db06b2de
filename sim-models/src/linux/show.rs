//! Tables printed in the formats of iproute2, bridge and arp.
//!
//! The formats are copied from the real tools' output on Linux 6.x with
//! iproute2 6.x, trailing spaces included (iproute2 ends route and neighbour
//! lines with one). IPv6 is not modelled, so `inet6` lines are absent.

use std::fmt::Write as _;

use sim_core::trace::{RouteType, table_name};

use crate::cmd::{NudState, Scope, TABLE_LOCAL, TABLE_MAIN, TableId};
use crate::linux::fib::{PROTO_BOOT, Route, proto_name};
use crate::linux::{DevId, DevKind, NsId, World};

impl World {
    /// A route as `ip route` prints it (without the trailing space).
    pub fn route_text(&self, r: &Route) -> String {
        self.route_line(r, false)
    }

    /// [`route_text`](Self::route_text) as if every nexthop device had
    /// carrier (no `linkdown`): the text a route stores when installed.
    pub fn route_text_up(&self, r: &Route) -> String {
        self.route_line_as(r, false, true)
    }

    fn route_line(&self, r: &Route, show_table: bool) -> String {
        self.route_line_as(r, show_table, false)
    }

    fn route_line_as(&self, r: &Route, show_table: bool, all_up: bool) -> String {
        let carrier = |d: DevId| all_up || self.carrier(d);
        let mut s = String::new();
        if r.rtype != RouteType::Unicast {
            s.push_str(r.rtype.as_str());
            s.push(' ');
        }
        if r.prefix.len == 0 {
            s.push_str("default");
        } else if r.prefix.len == 32 {
            let _ = write!(s, "{}", r.prefix.addr);
        } else {
            let _ = write!(s, "{}", r.prefix);
        }
        let multipath = r.nexthops.len() > 1;
        if !multipath && let Some(nh) = r.nexthops.first() {
            if let Some(gw) = nh.gw {
                let _ = write!(s, " via {gw}");
            }
            let _ = write!(s, " dev {}", self.devices[nh.dev.ix()].name);
        }
        if show_table && r.table != TABLE_MAIN {
            let _ = write!(s, " table {}", table_name(r.table));
        }
        if r.proto != PROTO_BOOT {
            let _ = write!(s, " proto {}", proto_name(r.proto));
        }
        if r.scope != Scope::Global {
            let _ = write!(s, " scope {}", r.scope.as_str());
        }
        if let Some(src) = r.src {
            let _ = write!(s, " src {src}");
        }
        if r.metric != 0 {
            let _ = write!(s, " metric {}", r.metric);
        }
        if !multipath && let Some(nh) = r.nexthops.first() {
            if nh.onlink {
                s.push_str(" onlink");
            }
            if !carrier(nh.dev) {
                s.push_str(" linkdown");
            }
        }
        if let Some(mtu) = r.mtu {
            let _ = write!(s, " mtu {mtu}");
        }
        if multipath {
            for nh in &r.nexthops {
                s.push_str(" \n\tnexthop");
                if let Some(gw) = nh.gw {
                    let _ = write!(s, " via {gw}");
                }
                let _ = write!(
                    s,
                    " dev {} weight {}",
                    self.devices[nh.dev.ix()].name,
                    nh.weight
                );
                if nh.onlink {
                    s.push_str(" onlink");
                }
                if !carrier(nh.dev) {
                    s.push_str(" linkdown");
                }
            }
        }
        s
    }

    /// `ip route show [table T] [dev D]`; `table` 0 = all tables.
    pub fn show_routes(&self, ns: NsId, table: Option<TableId>, dev: Option<DevId>) -> String {
        let n = &self.namespaces[ns.ix()];
        let mut out = String::new();
        let tables: Vec<TableId> = match table {
            Some(0) => {
                // main first, then others, local last (as the kernel dumps: by table id
                // in the order main, then others ascending, then local)
                let mut t: Vec<TableId> = n
                    .fib
                    .tables
                    .keys()
                    .copied()
                    .filter(|t| *t != TABLE_LOCAL && *t != TABLE_MAIN)
                    .collect();
                t.insert(0, TABLE_MAIN);
                t.push(TABLE_LOCAL);
                t
            }
            Some(t) => vec![t],
            None => vec![TABLE_MAIN],
        };
        let all = table == Some(0);
        for t in tables {
            let Some(tab) = n.fib.table(t) else { continue };
            for r in tab.iter() {
                if dev.is_some_and(|d| !r.uses_dev(d)) {
                    continue;
                }
                let mut line = self.route_line(r, all);
                if dev.is_some() {
                    // iproute2 omits `dev X` when filtering by it.
                    if let Some(d) = dev {
                        line = line.replacen(&format!(" dev {}", self.devices[d.ix()].name), "", 1);
                    }
                }
                out.push_str(&line);
                out.push_str(" \n");
            }
        }
        out
    }

    /// `ip rule show`.
    pub fn show_rules(&self, ns: NsId) -> String {
        let mut out = String::new();
        for r in &self.namespaces[ns.ix()].fib.rules {
            let _ = write!(out, "{}:\t", r.priority);
            if r.not {
                out.push_str("not ");
            }
            match r.from {
                Some(p) if p.len > 0 => {
                    let _ = write!(
                        out,
                        "from {}",
                        if p.len == 32 {
                            p.addr.to_string()
                        } else {
                            p.to_string()
                        }
                    );
                }
                _ => out.push_str("from all"),
            }
            if let Some(p) = r.to {
                let _ = write!(
                    out,
                    " to {}",
                    if p.len == 32 {
                        p.addr.to_string()
                    } else {
                        p.to_string()
                    }
                );
            }
            if let Some((m, mask)) = r.fwmark {
                if mask == u32::MAX {
                    let _ = write!(out, " fwmark {m:#x}");
                } else {
                    let _ = write!(out, " fwmark {m:#x}/{mask:#x}");
                }
            }
            if let Some(i) = &r.iif {
                let _ = write!(out, " iif {i}");
            }
            if let Some(o) = &r.oif {
                let _ = write!(out, " oif {o}");
            }
            match &r.action {
                crate::linux::fib::RuleAction::Lookup(t) => {
                    let _ = write!(out, " lookup {}", table_name(*t));
                }
                crate::linux::fib::RuleAction::Type(t) => {
                    let _ = write!(out, " {}", t.as_str());
                }
            }
            out.push('\n');
        }
        out
    }

    /// `ip neigh show [dev D]`.
    pub fn show_neigh(&self, ns: NsId, dev: Option<DevId>) -> String {
        let mut out = String::new();
        for ((d, addr), e) in &self.namespaces[ns.ix()].neigh.entries {
            if dev.is_some_and(|x| x != *d) {
                continue;
            }
            let _ = write!(out, "{addr} ");
            if dev.is_none() {
                let _ = write!(out, "dev {} ", self.devices[d.ix()].name);
            }
            if let Some(mac) = e
                .mac
                .filter(|_| e.state != NudState::Incomplete && e.state != NudState::Failed)
            {
                let _ = write!(out, "lladdr {mac} ");
            }
            let _ = writeln!(out, "{} ", e.state.as_str());
        }
        out
    }

    /// `arp -n`.
    pub fn show_arp(&self, ns: NsId) -> String {
        let mut out = String::from(
            "Address                  HWtype  HWaddress           Flags Mask            Iface\n",
        );
        for ((d, addr), e) in &self.namespaces[ns.ix()].neigh.entries {
            let dev = &self.devices[d.ix()].name;
            match e
                .mac
                .filter(|_| e.state != NudState::Incomplete && e.state != NudState::Failed)
            {
                Some(mac) => {
                    let flags = if e.state == NudState::Permanent {
                        "CM"
                    } else {
                        "C"
                    };
                    let _ = writeln!(
                        out,
                        "{:<25}{:<8}{:<20}{:<6}{:<16}{}",
                        addr.to_string(),
                        "ether",
                        mac.to_string(),
                        flags,
                        "",
                        dev
                    );
                }
                None => {
                    let _ = writeln!(out, "{:<33}{:<43}{}", addr.to_string(), "(incomplete)", dev);
                }
            }
        }
        out
    }

    /// `bridge fdb show [dev D] [br B]`.
    pub fn show_fdb(&self, ns: NsId, dev: Option<DevId>, br: Option<DevId>) -> String {
        let mut out = String::new();
        let n = &self.namespaces[ns.ix()];
        for (_, &d) in n.devs.iter() {
            let dv = &self.devices[d.ix()];
            if dev.is_some_and(|x| x != d) {
                continue;
            }
            match &dv.kind {
                DevKind::Bridge(b) => {
                    if br.is_some_and(|x| x != d) {
                        continue;
                    }
                    for (mac, e) in &b.fdb {
                        let port = &self.devices[e.port.ix()].name;
                        let state = if e.is_local {
                            " permanent"
                        } else if e.is_static {
                            " static"
                        } else {
                            ""
                        };
                        if e.port == d {
                            let _ = writeln!(
                                out,
                                "{mac} dev {} vlan 1 master {}{state}",
                                dv.name, dv.name
                            );
                        } else {
                            let _ = writeln!(out, "{mac} dev {port} master {}{state}", dv.name);
                        }
                    }
                }
                DevKind::Vxlan(v) => {
                    for f in &v.fdb {
                        for r in &f.rdsts {
                            let _ = write!(out, "{} dev {} dst {}", f.mac, dv.name, r.dst);
                            if let Some(p) = r.port {
                                let _ = write!(out, " port {p}");
                            }
                            if let Some(vni) = r.vni {
                                let _ = write!(out, " vni {vni}");
                            }
                            let _ = writeln!(
                                out,
                                " self{}",
                                if f.permanent { " permanent" } else { "" }
                            );
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The device's IFLA_LINK (dev_get_iflink) when it names another device
    /// of the same namespace: a veth's peer, a tunnel's lower device.
    fn iflink_same_ns(&self, d: DevId) -> Option<DevId> {
        let dv = &self.devices[d.ix()];
        let l = match &dv.kind {
            DevKind::Veth { peer } => (*peer)?,
            DevKind::Ipip(t) if !t.fallback => t.lower?,
            _ => return None,
        };
        let ld = &self.devices[l.ix()];
        (ld.alive && ld.ns == dv.ns).then_some(l)
    }

    /// iproute2 prints `M-DOWN` when the device has an IFLA_LINK without a
    /// link-netnsid (print_linkinfo) and that device is not administratively
    /// up (`!(ll_index_to_flags(iflink) & IFF_UP)`), whatever the device's own
    /// state. A peer in another namespace comes with a link-netnsid: no M-DOWN.
    fn m_down(&self, d: DevId) -> bool {
        self.iflink_same_ns(d)
            .is_some_and(|l| !self.devices[l.ix()].admin_up)
    }

    fn link_flags(&self, d: DevId) -> (String, &'static str) {
        let dv = &self.devices[d.ix()];
        let carrier = self.carrier(d);
        let mut f: Vec<&str> = Vec::new();
        if dv.admin_up && !carrier {
            f.push("NO-CARRIER");
        }
        match dv.kind {
            DevKind::Loopback => f.push("LOOPBACK"),
            DevKind::Ipip(_) => f.push("NOARP"),
            DevKind::Dummy => {
                f.push("BROADCAST");
                f.push("NOARP");
            }
            _ => {
                f.push("BROADCAST");
                f.push("MULTICAST");
            }
        }
        if dv.admin_up {
            f.push("UP");
            if carrier {
                f.push("LOWER_UP");
            }
        }
        if self.m_down(d) {
            f.push("M-DOWN");
        }
        let state = if !dv.admin_up {
            "DOWN"
        } else {
            match &dv.kind {
                DevKind::Veth { .. } => {
                    if carrier {
                        "UP"
                    } else if dv.lower_layer_down {
                        "LOWERLAYERDOWN"
                    } else {
                        "DOWN"
                    }
                }
                DevKind::Nic { .. } => {
                    if carrier {
                        "UP"
                    } else {
                        "DOWN"
                    }
                }
                DevKind::Bridge(b) => {
                    if b.ports.is_empty() {
                        "UNKNOWN"
                    } else if carrier {
                        "UP"
                    } else {
                        "DOWN"
                    }
                }
                _ => "UNKNOWN",
            }
        };
        (f.join(","), state)
    }

    fn link_head(&self, d: DevId, with_mode: bool) -> String {
        let dv = &self.devices[d.ix()];
        let (flags, state) = self.link_flags(d);
        let mut name = dv.name.clone();
        if let DevKind::Veth { peer: Some(p) } = &dv.kind {
            let pd = &self.devices[p.ix()];
            if pd.ns == dv.ns {
                name = format!("{}@{}", dv.name, pd.name);
            } else {
                name = format!("{}@if{}", dv.name, pd.ifindex);
            }
        }
        if let DevKind::Ipip(t) = &dv.kind {
            if t.fallback {
                name = format!("{}@NONE", dv.name);
            } else if let Some(l) = t.lower {
                name = format!("{}@{}", dv.name, self.devices[l.ix()].name);
            } else {
                name = format!("{}@NONE", dv.name);
            }
        }
        let qdisc = if !dv.admin_up {
            "noop"
        } else if matches!(dv.kind, DevKind::Nic { .. }) {
            "fq_codel"
        } else {
            "noqueue"
        };
        let master = dv
            .master
            .map(|m| format!(" master {}", self.devices[m.ix()].name))
            .unwrap_or_default();
        let mode = if with_mode { " mode DEFAULT" } else { "" };
        format!(
            "{}: {name}: <{flags}> mtu {} qdisc {qdisc}{master} state {state}{mode} group default qlen 1000",
            dv.ifindex, dv.mtu
        )
    }

    fn link_l2(&self, d: DevId) -> String {
        let dv = &self.devices[d.ix()];
        let mut s = match &dv.kind {
            DevKind::Loopback => {
                "    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00".to_string()
            }
            DevKind::Ipip(t) => format!(
                "    link/ipip {} brd {}",
                t.local.map(|a| a.to_string()).unwrap_or("0.0.0.0".into()),
                t.remote.map(|a| a.to_string()).unwrap_or("0.0.0.0".into())
            ),
            _ => format!("    link/ether {} brd ff:ff:ff:ff:ff:ff", dv.mac),
        };
        if let DevKind::Veth { peer: Some(p) } = &dv.kind {
            let pd = &self.devices[p.ix()];
            if pd.ns != dv.ns {
                let pn = &self.namespaces[pd.ns.ix()];
                if pn.name.is_empty() {
                    s.push_str(" link-netnsid 0");
                } else {
                    let _ = write!(s, " link-netns {}", pn.name);
                }
            }
        }
        s
    }

    /// `ip link show [DEV]`.
    pub fn show_links(&self, ns: NsId, dev: Option<DevId>) -> String {
        let mut out = String::new();
        for (_, &d) in self.namespaces[ns.ix()].devs.iter() {
            if dev.is_some_and(|x| x != d) {
                continue;
            }
            let _ = writeln!(out, "{}", self.link_head(d, true));
            let _ = writeln!(out, "{}", self.link_l2(d));
        }
        out
    }

    /// `ip addr show [DEV]`.
    pub fn show_addrs(&self, ns: NsId, dev: Option<DevId>) -> String {
        let mut out = String::new();
        let n = &self.namespaces[ns.ix()];
        for (_, &d) in n.devs.iter() {
            if dev.is_some_and(|x| x != d) {
                continue;
            }
            let _ = writeln!(out, "{}", self.link_head(d, false));
            let _ = writeln!(out, "{}", self.link_l2(d));
            for a in n.addrs.iter().filter(|a| a.dev == d) {
                let _ = write!(out, "    inet {}/{}", a.local, a.plen);
                if let Some(b) = a.broadcast {
                    let _ = write!(out, " brd {b}");
                }
                let _ = write!(out, " scope {}", a.scope.as_str());
                if a.secondary {
                    out.push_str(" secondary");
                }
                let _ = writeln!(out, " {}", self.devices[d.ix()].name);
                out.push_str("       valid_lft forever preferred_lft forever\n");
            }
        }
        out
    }

    /// `ip tunnel show`.
    pub fn show_tunnels(&self, ns: NsId) -> String {
        let mut out = String::new();
        for (_, &d) in self.namespaces[ns.ix()].devs.iter() {
            let dv = &self.devices[d.ix()];
            if let DevKind::Ipip(t) = &dv.kind {
                let _ = write!(
                    out,
                    "{}: ip/ip remote {} local {}",
                    dv.name,
                    t.remote.map(|a| a.to_string()).unwrap_or("any".into()),
                    t.local.map(|a| a.to_string()).unwrap_or("any".into())
                );
                if let Some(l) = t.lower {
                    let _ = write!(out, " dev {}", self.devices[l.ix()].name);
                }
                if t.ttl == 0 {
                    out.push_str(" ttl inherit");
                } else {
                    let _ = write!(out, " ttl {}", t.ttl);
                }
                out.push_str(if t.pmtudisc { "\n" } else { " nopmtudisc\n" });
            }
        }
        out
    }
}
