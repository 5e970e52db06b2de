//! The packet path through netfilter: the five hooks, the tables in the
//! kernel's priority order, connection tracking, NAT, and the targets that
//! act on packets (REJECT, TCPMSS, MARK, CONNMARK, NOTRACK).
//!
//! Per hook, in priority order:
//!
//! | hook | steps |
//! |---|---|
//! | PREROUTING | raw (-300), conntrack (-200), mangle (-150), nat DNAT (-100) |
//! | INPUT | mangle (-150), filter (0), nat SNAT (100), conntrack confirm |
//! | FORWARD | mangle (-150), filter (0) |
//! | OUTPUT | raw (-300), conntrack (-200), mangle (-150), nat DNAT (-100), filter (0) |
//! | POSTROUTING | mangle (-150), nat SNAT (100), conntrack confirm |
//!
//! The nat table is traversed only for a connection's first packet (ctstate
//! NEW, NAT not yet decided for that hook's manipulation); every packet then
//! has the connection's mapping applied, reversed for replies.
//!
//! Rule evaluation allocates nothing when tracing is off: matches read a
//! plain [`View`] of the packet, jumps use a fixed-size stack, and trace
//! events are built only when the sink wants them.

use std::net::Ipv4Addr;
use std::sync::Arc;

use sim_core::packet::{Header, Packet, PacketId, Payload};
use sim_core::rng::SimRng;
use sim_core::time::SimTime;
use sim_core::topo::NodeId;
use sim_core::trace::{DropReason, Hook, NfVerdict, TraceEvent, TraceRecord};
use sim_core::wire::{IcmpRepr, IpProtocol, TcpFlags, TcpOption, TcpRepr, checksum};

use super::conntrack::*;
use super::rules::*;
use super::{CtConn, CtState, Skb, SkbCt};
use crate::linux::fib::Fib;
use crate::linux::{Cx, DevId, DevKind, Device, NsId, World};

/// Jump depth (nf_tables allows 16 levels).
const STACK: usize = 16;

/// What matches see of a packet.
#[derive(Clone, Copy, Debug)]
pub struct View {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    /// A fragment other than the first (no transport header).
    pub frag: bool,
    pub ports: Option<(u16, u16)>,
    pub tcp_flags: u8,
    /// TCP option kinds present (bit per kind below 64).
    pub tcp_opts: u64,
    /// ICMP type and code.
    pub icmp: Option<(u8, u8)>,
    /// ICMP echo identifier.
    pub icmp_id: Option<u16>,
    /// The IP datagram's length (what counters count).
    pub len: u32,
}

/// The view of the IPv4 datagram at header `l3`.
pub fn view(pkt: &Packet, l3: usize) -> Option<View> {
    let Some(Header::Ipv4(h)) = pkt.headers.get(l3) else {
        return None;
    };
    let mut v = View {
        src: h.src,
        dst: h.dst,
        proto: u8::from(h.protocol),
        frag: h.frag_offset != 0,
        ports: None,
        tcp_flags: 0,
        tcp_opts: 0,
        icmp: None,
        icmp_id: None,
        len: pkt.len_from(l3) as u32,
    };
    if v.frag {
        return Some(v);
    }
    match pkt.headers.get(l3 + 1) {
        Some(Header::Tcp(t)) if v.proto == 6 => {
            v.ports = Some((t.src_port, t.dst_port));
            v.tcp_flags = (t.flags.bits() & 0x3f) as u8;
            for o in &t.options {
                let k = o.kind();
                if k < 64 {
                    v.tcp_opts |= 1 << k;
                }
            }
        }
        Some(Header::Udp(u)) if v.proto == 17 => v.ports = Some((u.src_port, u.dst_port)),
        Some(Header::Icmp(m)) if v.proto == 1 => {
            v.icmp = Some((m.ty(), m.code()));
            if let IcmpRepr::EchoRequest { ident, .. } | IcmpRepr::EchoReply { ident, .. } = *m {
                v.icmp_id = Some(ident);
            }
        }
        _ => {}
    }
    Some(v)
}

/// The connection tuple of a packet (None for a non-first fragment).
fn tuple_of(v: &View) -> Option<Tuple> {
    if v.frag {
        return None;
    }
    let (sport, dport) = match v.proto {
        6 | 17 => v.ports?,
        1 => {
            let (ty, code) = v.icmp?;
            (v.icmp_id.unwrap_or(0), (ty as u16) << 8 | code as u16)
        }
        _ => (0, 0),
    };
    Some(Tuple {
        src: v.src,
        dst: v.dst,
        proto: v.proto,
        sport,
        dport,
    })
}

/// The tuple of the datagram an ICMP error quotes.
fn quoted_tuple(pkt: &Packet, l3: usize) -> Option<Tuple> {
    let Payload::Data(q) = &pkt.payload else {
        return None;
    };
    if pkt.headers.len() != l3 + 2 || q.len() < 20 {
        return None;
    }
    let ihl = ((q[0] & 0x0f) as usize) * 4;
    let proto = q[9];
    let src = Ipv4Addr::new(q[12], q[13], q[14], q[15]);
    let dst = Ipv4Addr::new(q[16], q[17], q[18], q[19]);
    let (sport, dport) = match proto {
        6 | 17 => {
            let p = q.get(ihl..ihl + 4)?;
            (
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            )
        }
        1 => {
            let p = q.get(ihl..ihl + 8)?;
            (
                u16::from_be_bytes([p[4], p[5]]),
                (p[0] as u16) << 8 | p[1] as u16,
            )
        }
        _ => (0, 0),
    };
    Some(Tuple {
        src,
        dst,
        proto,
        sport,
        dport,
    })
}

/// What rules are evaluated against.
struct Env<'a> {
    v: View,
    iif: Option<&'a str>,
    oif: Option<&'a str>,
    in_dev: Option<DevId>,
    out_dev: Option<DevId>,
    mark: u32,
    /// xt_conntrack state bits (with SNAT/DNAT), INVALID or UNTRACKED.
    ct_bits: u16,
    /// A conntrack entry is attached.
    ct: Option<(u32, [Tuple; 2])>,
    ct_mark: u32,
    notrack: bool,
    fib: &'a Fib,
    rng: &'a mut SimRng,
}

/// The RTN type of an address (inet_dev_addr_type: the local table only).
fn addr_type(fib: &Fib, a: Ipv4Addr, dev: Option<DevId>) -> u16 {
    let o = a.octets();
    if o[0] == 0 || a.is_broadcast() {
        return AT_BROADCAST;
    }
    if a.is_multicast() {
        return AT_MULTICAST;
    }
    let Some(t) = fib.table(crate::cmd::TABLE_LOCAL) else {
        return AT_UNICAST;
    };
    match t.candidates(a).next() {
        Some(r) if dev.is_none_or(|d| r.nexthops.first().is_none_or(|n| n.dev == d)) => {
            use sim_core::trace::RouteType as T;
            match r.rtype {
                T::Local => AT_LOCAL,
                T::Broadcast => AT_BROADCAST,
                T::Unicast => AT_UNICAST,
                T::Blackhole => AT_BLACKHOLE,
                T::Unreachable => AT_UNREACHABLE,
                T::Prohibit => AT_PROHIBIT,
            }
        }
        _ => AT_UNICAST,
    }
}

#[inline]
fn in_net(n: &Ipv4Net, a: Ipv4Addr) -> bool {
    n.contains(a)
}
use sim_core::net::Ipv4Net;

#[inline]
fn ip_matches(ip: &IpSpec, e: &Env) -> bool {
    if (ip.src.len > 0 || ip.src_inv) && in_net(&ip.src, e.v.src) == ip.src_inv {
        return false;
    }
    if (ip.dst.len > 0 || ip.dst_inv) && in_net(&ip.dst, e.v.dst) == ip.dst_inv {
        return false;
    }
    if let Some(i) = &ip.iif
        && e.iif.is_some_and(|n| i.matches(n)) == ip.iif_inv
    {
        return false;
    }
    if let Some(o) = &ip.oif
        && e.oif.is_some_and(|n| o.matches(n)) == ip.oif_inv
    {
        return false;
    }
    if ip.proto != 0 && (ip.proto == e.v.proto) == ip.proto_inv {
        return false;
    }
    if let Some(inv) = ip.frag
        && e.v.frag == inv
    {
        return false;
    }
    true
}

#[inline]
fn port_ok(r: &Option<(PortRange, bool)>, p: u16) -> bool {
    r.is_none_or(|(r, inv)| r.contains(p) != inv)
}

fn match_one(m: &mut Match, e: &mut Env) -> bool {
    match m {
        Match::Tcp(t) => {
            if e.v.proto != 6 || e.v.frag {
                return false;
            }
            let Some((sp, dp)) = e.v.ports else {
                return false;
            };
            port_ok(&t.sport, sp)
                && port_ok(&t.dport, dp)
                && t.flags
                    .is_none_or(|(mask, cmp, inv)| (e.v.tcp_flags & mask == cmp) != inv)
                && t.option
                    .is_none_or(|(k, inv)| (k < 64 && e.v.tcp_opts & (1 << k) != 0) != inv)
        }
        Match::Udp(u) => {
            if e.v.proto != 17 || e.v.frag {
                return false;
            }
            let Some((sp, dp)) = e.v.ports else {
                return false;
            };
            port_ok(&u.sport, sp) && port_ok(&u.dport, dp)
        }
        Match::Icmp(c) => {
            if e.v.proto != 1 || e.v.frag {
                return false;
            }
            let Some((ty, code)) = e.v.icmp else {
                return false;
            };
            let m = c.ty == 255 || (ty == c.ty && code >= c.code.0 && code <= c.code.1);
            m != c.inv
        }
        Match::Conntrack(c) => {
            if let Some((mask, inv)) = c.state
                && (mask & e.ct_bits != 0) == inv
            {
                return false;
            }
            let Some((status, t)) = &e.ct else {
                return c.state.is_some();
            };
            let net = |x: &Option<(Ipv4Net, bool)>, a: Ipv4Addr| {
                x.is_none_or(|(n, inv)| n.contains(a) != inv)
            };
            net(&c.origsrc, t[0].src)
                && net(&c.origdst, t[0].dst)
                && net(&c.replsrc, t[1].src)
                && net(&c.repldst, t[1].dst)
                && c.status.is_none_or(|(m, inv)| {
                    let hit = if m == 0 {
                        status & 0xf == 0
                    } else {
                        status & m as u32 != 0
                    };
                    hit != inv
                })
        }
        Match::State { bits, inv } => {
            let b = e.ct_bits & !(ST_SNAT | ST_DNAT);
            (*bits & b != 0) != *inv
        }
        Match::Comment(_) => true,
        Match::Mark { value, mask, inv } => (e.mark & *mask == *value) != *inv,
        Match::Connmark { value, mask, inv } => {
            e.ct.is_some() && ((e.ct_mark & *mask == *value) != *inv)
        }
        Match::Multiport(mp) => {
            if e.v.frag {
                return false;
            }
            let Some((sp, dp)) = e.v.ports else {
                return false;
            };
            let hit = mp.ports.iter().any(|r| match mp.kind {
                MpKind::Src => r.contains(sp),
                MpKind::Dst => r.contains(dp),
                MpKind::Any => r.contains(sp) || r.contains(dp),
            });
            hit != mp.inv
        }
        Match::Addrtype(a) => {
            let dev = if a.limit_in {
                e.in_dev
            } else if a.limit_out {
                e.out_dev
            } else {
                None
            };
            if let Some((mask, inv)) = a.src
                && (addr_type(e.fib, e.v.src, dev) & mask != 0) == inv
            {
                return false;
            }
            if let Some((mask, inv)) = a.dst
                && (addr_type(e.fib, e.v.dst, dev) & mask != 0) == inv
            {
                return false;
            }
            true
        }
        Match::Statistic(s) => match s {
            StatMatch::Random { p, inv } => ((e.rng.next_u32() & 0x7fff_ffff) < *p) != *inv,
            StatMatch::Nth {
                every, count, inv, ..
            } => {
                *count = if *count == *every { 0 } else { *count + 1 };
                (*count == 0) != *inv
            }
        },
    }
}

fn rule_matches(r: &mut Rule, e: &mut Env) -> bool {
    ip_matches(&r.ip, e) && r.matches.iter_mut().all(|m| match_one(m, e))
}

/// How a table traversal ended.
enum Outcome {
    Accept,
    Drop {
        chain: Arc<str>,
        rule: Option<u32>,
    },
    Reject {
        with: RejectWith,
        chain: Arc<str>,
        rule: u32,
    },
    /// A NAT target matched (its trace step is written once the mapping is known).
    Nat {
        target: Target,
        chain: Arc<str>,
        rule: u32,
        text: Arc<str>,
    },
}

/// The verdict of a hook.
enum Verdict {
    Accept,
    Drop {
        table: &'static str,
        chain: Arc<str>,
        rule: Option<u32>,
    },
    Reject {
        table: &'static str,
        chain: Arc<str>,
        rule: u32,
        with: RejectWith,
    },
    /// Dropped by conntrack or NAT (a clash, no address to masquerade with).
    Other(&'static str),
}

struct TraceCx {
    place: NodeId,
    pid: PacketId,
    hook: Hook,
    table: &'static str,
}

impl TraceCx {
    fn step(
        &self,
        cx: &mut Cx,
        chain: &Arc<str>,
        rule: Option<u32>,
        text: Arc<str>,
        verdict: NfVerdict,
    ) {
        cx.sink.record(TraceRecord {
            time: cx.now,
            place: self.place,
            packet: self.pid,
            event: TraceEvent::Netfilter {
                hook: self.hook,
                table: self.table,
                chain: chain.clone(),
                rule,
                text,
                verdict,
            },
        });
    }
}

fn nat_verdict(before: String, after: String) -> NfVerdict {
    NfVerdict::Nat {
        before: before.into(),
        after: after.into(),
    }
}

/// TCPMSS: lowers the MSS option of a SYN (adds one when missing), as
/// xt_TCPMSS does. Returns (old, new) when it changed the segment.
fn tcpmss(pkt: &mut Packet, l3: usize, newmss: u16) -> Option<(Option<u16>, u16)> {
    let no_payload = pkt.payload.is_empty();
    let Some(Header::Tcp(t)) = pkt.headers.get_mut(l3 + 1) else {
        return None;
    };
    if let Some(o) = t
        .options
        .iter_mut()
        .find(|o| matches!(o, TcpOption::Mss(_)))
    {
        let TcpOption::Mss(old) = *o else {
            return None;
        };
        // Never increases the MSS.
        if old <= newmss {
            return None;
        }
        *o = TcpOption::Mss(newmss);
        return Some((Some(old), newmss));
    }
    if !no_payload || t.header_len() + 4 > 60 {
        return None;
    }
    // RFC 1122's default MSS when the SYN had none.
    let m = newmss.min(536);
    t.options.insert(0, TcpOption::Mss(m));
    Some((None, m))
}

/// Runs one table's chain for `hook`.
#[allow(clippy::too_many_arguments)]
fn traverse(
    cx: &mut Cx,
    tc: &TraceCx,
    t: &mut Table,
    e: &mut Env,
    pkt: &mut Packet,
    l3: usize,
    devices: &[Device],
) -> Outcome {
    let Some(start) = t.hook_slot(tc.hook) else {
        return Outcome::Accept;
    };
    if !t.chain(start).registered {
        return Outcome::Accept;
    }
    let tracing = cx.detail(tc.pid);
    let len = e.v.len as u64;
    let mut stack = [(0usize, 0usize); STACK];
    let mut depth = 0usize;
    let mut slot = start;
    let mut idx = 0usize;
    loop {
        let chain = t.chains[slot].as_mut().expect("live chain");
        if idx >= chain.rules.len() {
            if chain.hook.is_some() {
                chain.packets += 1;
                chain.bytes += len;
                let p = chain.policy;
                if tracing {
                    tc.step(
                        cx,
                        &chain.name,
                        None,
                        p.step_text(),
                        if p == Policy::Accept {
                            NfVerdict::Accept
                        } else {
                            NfVerdict::Drop
                        },
                    );
                }
                return match p {
                    Policy::Accept => Outcome::Accept,
                    Policy::Drop => Outcome::Drop {
                        chain: chain.name.clone(),
                        rule: None,
                    },
                };
            }
            if tracing {
                tc.step(
                    cx,
                    &chain.name,
                    None,
                    "end of chain, return".into(),
                    NfVerdict::Return,
                );
            }
            if depth == 0 {
                slot = start;
                idx = usize::MAX;
            } else {
                depth -= 1;
                (slot, idx) = stack[depth];
            }
            continue;
        }
        let num = idx as u32 + 1;
        idx += 1;
        let r = &mut chain.rules[idx - 1];
        if !rule_matches(r, e) {
            if tracing {
                tc.step(
                    cx,
                    &chain.name,
                    Some(num),
                    r.text.clone(),
                    NfVerdict::NoMatch,
                );
            }
            continue;
        }
        r.packets += 1;
        r.bytes += len;
        let step = |cx: &mut Cx, v: NfVerdict| {
            if tracing {
                tc.step(cx, &chain.name, Some(num), r.text.clone(), v);
            }
        };
        match &r.target {
            Target::None | Target::Log(_) | Target::Trace => step(cx, NfVerdict::Continue),
            Target::Accept => {
                step(cx, NfVerdict::Accept);
                return Outcome::Accept;
            }
            Target::Drop => {
                step(cx, NfVerdict::Drop);
                return Outcome::Drop {
                    chain: chain.name.clone(),
                    rule: Some(num),
                };
            }
            Target::Reject(w) => {
                step(cx, NfVerdict::Reject);
                return Outcome::Reject {
                    with: *w,
                    chain: chain.name.clone(),
                    rule: num,
                };
            }
            Target::Return => {
                step(cx, NfVerdict::Return);
                if depth == 0 {
                    slot = start;
                    idx = usize::MAX;
                } else {
                    depth -= 1;
                    (slot, idx) = stack[depth];
                }
            }
            Target::Jump(c) => {
                step(cx, NfVerdict::Jump(c.name.clone()));
                if depth == STACK {
                    // Deeper than nf_tables allows: the packet is dropped.
                    return Outcome::Drop {
                        chain: chain.name.clone(),
                        rule: Some(num),
                    };
                }
                stack[depth] = (slot, idx);
                depth += 1;
                slot = c.slot;
                idx = 0;
            }
            Target::Goto(c) => {
                step(cx, NfVerdict::Goto(c.name.clone()));
                slot = c.slot;
                idx = 0;
            }
            Target::Mark { value, mask } => {
                let old = e.mark;
                e.mark = (old & !mask) ^ value;
                step(
                    cx,
                    nat_verdict(format!("mark {old:#x}"), format!("mark {:#x}", e.mark)),
                );
            }
            Target::Connmark(op) => {
                if e.ct.is_some() {
                    match *op {
                        ConnmarkOp::Set { value, mask } => e.ct_mark = (e.ct_mark & !mask) ^ value,
                        ConnmarkOp::Save { nfmask, ctmask } => {
                            e.ct_mark = (e.ct_mark & !ctmask) ^ (e.mark & nfmask)
                        }
                        ConnmarkOp::Restore { nfmask, ctmask } => {
                            e.mark = (e.mark & !nfmask) ^ (e.ct_mark & ctmask)
                        }
                    }
                }
                step(
                    cx,
                    nat_verdict(
                        "".into(),
                        format!("mark {:#x}, ctmark {:#x}", e.mark, e.ct_mark),
                    ),
                );
            }
            Target::Snat(_) | Target::Dnat(_) | Target::Masquerade(_) | Target::Redirect(_) => {
                return Outcome::Nat {
                    target: r.target.clone(),
                    chain: chain.name.clone(),
                    rule: num,
                    text: r.text.clone(),
                };
            }
            Target::Tcpmss(m) => {
                let newmss = match *m {
                    Some(m) => Some(m),
                    None => {
                        let out = e.out_dev.map(|d| devices[d.ix()].mtu);
                        let inm = e.in_dev.map(|d| devices[d.ix()].mtu);
                        match (out, inm) {
                            (Some(o), Some(i)) => Some(o.min(i).saturating_sub(40) as u16),
                            (Some(o), None) => Some(o.saturating_sub(40) as u16),
                            _ => None,
                        }
                    }
                };
                let changed = newmss.and_then(|n| tcpmss(pkt, l3, n));
                match changed {
                    Some((old, new)) => step(
                        cx,
                        nat_verdict(
                            old.map_or("no mss".into(), |o| format!("mss {o}")),
                            format!("mss {new}"),
                        ),
                    ),
                    None => step(cx, NfVerdict::Continue),
                }
            }
            Target::Notrack | Target::CtNotrack => {
                e.notrack = true;
                step(cx, NfVerdict::Continue);
            }
        }
    }
}

/// A NAT range (nf_nat_range): addresses and ports to map into.
#[derive(Clone, Copy, Debug)]
struct NatRange {
    ips: Option<(u32, u32)>,
    ports: Option<(u16, u16)>,
    random: bool,
    persistent: bool,
}

fn set_key(t: &mut Tuple, src: bool, key: u16) {
    if t.proto == 1 || src {
        t.sport = key;
    } else {
        t.dport = key;
    }
}

fn get_key(t: &Tuple, src: bool) -> u16 {
    if t.proto == 1 || src {
        t.sport
    } else {
        t.dport
    }
}

fn in_range(t: &Tuple, r: &NatRange, src: bool) -> bool {
    let ip = u32::from(if src { t.src } else { t.dst });
    r.ips.is_none_or(|(lo, hi)| lo <= ip && ip <= hi)
        && r.ports.is_none_or(|(lo, hi)| {
            !matches!(t.proto, 1 | 6 | 17) || {
                let k = get_key(t, src);
                lo <= k && k <= hi
            }
        })
}

/// get_unique_tuple: the tuple a new connection's packets are rewritten to.
fn unique_tuple(
    ct: &Conntrack,
    curr: &Tuple,
    r: &NatRange,
    src: bool,
    rng: &mut SimRng,
    now: SimTime,
) -> Tuple {
    let used = |t: &Tuple| ct.taken(&t.invert(), 0, now);
    if src && !r.random {
        if in_range(curr, r, src) {
            if !used(curr) {
                return *curr;
            }
        } else {
            // find_appropriate_src: reuse the mapping this source already has.
            for c in ct.entries.values() {
                let o = &c.tuple[0];
                if c.status & S_SRC_NAT != 0
                    && c.expires > now
                    && o.proto == curr.proto
                    && o.src == curr.src
                    && o.sport == curr.sport
                {
                    let m = c.tuple[1].invert();
                    let mut t = *curr;
                    t.src = m.src;
                    t.sport = m.sport;
                    if in_range(&t, r, src) && !used(&t) {
                        return t;
                    }
                }
            }
        }
    }
    let mut t = *curr;
    // find_best_ips_proto
    if let Some((lo, hi)) = r.ips {
        let ip = if lo == hi {
            lo
        } else {
            let mut key = Vec::with_capacity(8);
            key.extend_from_slice(&curr.src.octets());
            if !r.persistent {
                key.extend_from_slice(&curr.dst.octets());
            }
            let h = sim_core::rng::stable_hash(&key);
            lo + (h % (hi as u64 - lo as u64 + 1)) as u32
        };
        if src {
            t.src = Ipv4Addr::from(ip);
        } else {
            t.dst = Ipv4Addr::from(ip);
        }
    }
    if !r.random {
        match r.ports {
            Some((lo, hi)) => {
                let k = get_key(&t, src);
                if !matches!(t.proto, 1 | 6 | 17) || (lo <= k && k <= hi && (lo == hi || !used(&t)))
                {
                    return t;
                }
            }
            None => {
                if !used(&t) {
                    return t;
                }
            }
        }
    }
    // nf_nat_l4proto_unique_tuple
    let (min, size): (u32, u32) = match (t.proto, r.ports) {
        (6 | 17, None) => {
            if !src {
                return t;
            }
            let k = get_key(&t, src);
            if k < 512 {
                (1, 511)
            } else if k < 1024 {
                (600, 424)
            } else {
                (1024, 64512)
            }
        }
        (1, None) => (0, 65536),
        (1 | 6 | 17, Some((lo, hi))) => (lo as u32, hi as u32 - lo as u32 + 1),
        _ => return t,
    };
    let mut off: u16 = if r.random || src {
        rng.next_u32() as u16
    } else {
        0
    };
    let mut attempts = size.min(128);
    loop {
        for _ in 0..attempts {
            set_key(&mut t, src, (min + off as u32 % size) as u16);
            if !used(&t) {
                return t;
            }
            off = off.wrapping_add(1);
        }
        if attempts >= size || attempts < 16 {
            return t;
        }
        attempts /= 2;
        off = rng.next_u32() as u16;
    }
}

/// Rewrites the packet's addresses and ports (nf_nat_ipv4_manip_pkt).
fn manip_pkt(pkt: &mut Packet, l3: usize, target: &Tuple, src: bool) {
    let frag = match pkt.headers.get_mut(l3) {
        Some(Header::Ipv4(h)) => {
            if src {
                h.src = target.src;
            } else {
                h.dst = target.dst;
            }
            h.frag_offset != 0
        }
        _ => return,
    };
    if frag {
        return;
    }
    match pkt.headers.get_mut(l3 + 1) {
        Some(Header::Tcp(t)) => {
            if src {
                t.src_port = target.sport;
            } else {
                t.dst_port = target.dport;
            }
        }
        Some(Header::Udp(u)) => {
            if src {
                u.src_port = target.sport;
            } else {
                u.dst_port = target.dport;
            }
        }
        Some(Header::Icmp(IcmpRepr::EchoRequest { ident, .. }))
        | Some(Header::Icmp(IcmpRepr::EchoReply { ident, .. })) => *ident = target.sport,
        _ => {}
    }
}

fn get16(q: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([q[at], q[at + 1]])
}

fn put16(q: &mut [u8], at: usize, v: u16) {
    q[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Rewrites the datagram an ICMP error quotes (its header checksum
/// recomputed, its transport checksum updated incrementally).
fn manip_quoted(q: &mut [u8], target: &Tuple, src: bool) {
    if q.len() < 20 {
        return;
    }
    let ihl = ((q[0] & 0x0f) as usize) * 4;
    if q.len() < ihl {
        return;
    }
    let proto = q[9];
    let at = if src { 12 } else { 16 };
    let old = Ipv4Addr::new(q[at], q[at + 1], q[at + 2], q[at + 3]);
    let new = if src { target.src } else { target.dst };
    q[at..at + 4].copy_from_slice(&new.octets());
    put16(q, 10, 0);
    let c = checksum::checksum(&q[..ihl]);
    put16(q, 10, c);
    let l4 = &mut q[ihl..];
    match proto {
        6 | 17 if l4.len() >= 4 => {
            let pat = if src { 0 } else { 2 };
            let oldp = get16(l4, pat);
            let newp = if src { target.sport } else { target.dport };
            put16(l4, pat, newp);
            let cat = if proto == 6 { 16 } else { 6 };
            if l4.len() >= cat + 2 {
                let c = get16(l4, cat);
                if proto == 6 || c != 0 {
                    let c = checksum::update_addr(c, old, new);
                    let c = checksum::update16(c, oldp, newp);
                    put16(l4, cat, c);
                }
            }
        }
        1 if l4.len() >= 8 => {
            let oldid = get16(l4, 4);
            put16(l4, 4, target.sport);
            let c = checksum::update16(get16(l4, 2), oldid, target.sport);
            put16(l4, 2, c);
        }
        _ => {}
    }
}

impl World {
    /// Runs a netfilter hook on the IPv4 datagram at the start of `pkt`;
    /// false if it was dropped (the drop is traced, REJECT answered).
    pub fn nf_hook(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        hook: Hook,
        pkt: &mut Packet,
        in_dev: Option<DevId>,
        out_dev: Option<DevId>,
    ) -> bool {
        self.nf_hook_l3(cx, ns, hook, pkt, 0, in_dev, out_dev)
    }

    /// [`nf_hook`](Self::nf_hook) on the IPv4 datagram at header `l3` (1
    /// for a bridged Ethernet frame).
    pub fn nf_hook_l3(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        hook: Hook,
        pkt: &mut Packet,
        l3: usize,
        in_dev: Option<DevId>,
        out_dev: Option<DevId>,
    ) -> bool {
        let nf = &self.namespaces[ns.ix()].nf;
        if !nf.active() {
            return true;
        }
        // Nothing to do at this hook: conntrack off, no packet state kept
        // from earlier hooks, and no table with this hook's chain in use
        // (iptables-nft registers a base chain only when a rule, policy or
        // flush touches it). Running the hook would change nothing.
        if !nf.ct_enabled && nf.skbs.is_empty() && !nf.hook_in_use(hook) {
            return true;
        }
        if !matches!(pkt.headers.get(l3), Some(Header::Ipv4(_))) {
            return true;
        }
        if self.namespaces[ns.ix()].nf.stat_rng.is_none() {
            let label = self.ns_label(ns);
            let stat = self.seed.stream(&format!("netfilter:{label}:statistic"));
            let nat = self.seed.stream(&format!("netfilter:{label}:nat"));
            let nf = &mut self.namespaces[ns.ix()].nf;
            nf.stat_rng = Some(stat);
            nf.nat_rng = Some(nat);
        }
        let mut skb = self.skb_take(ns, hook, pkt.id, in_dev);
        let v = self.nf_run(cx, ns, hook, pkt, l3, in_dev, out_dev, &mut skb);
        let place = self.namespaces[ns.ix()].node;
        match v {
            Verdict::Accept => {
                let last = hook == Hook::Input
                    || (hook == Hook::Postrouting
                        && !out_dev.is_some_and(|d| {
                            matches!(self.devices[d.ix()].kind, DevKind::Loopback)
                        }));
                if last {
                    skb.ct = CtState::None;
                    skb.notrack = false;
                }
                self.namespaces[ns.ix()].nf.skb_store(pkt.id, skb);
                true
            }
            Verdict::Drop { table, chain, rule } => {
                self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                    reason: DropReason::Netfilter {
                        hook,
                        table,
                        chain,
                        rule,
                    },
                });
                false
            }
            Verdict::Reject {
                table,
                chain,
                rule,
                with,
            } => {
                self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                    reason: DropReason::Netfilter {
                        hook,
                        table,
                        chain,
                        rule: Some(rule),
                    },
                });
                self.nf_reject(cx, ns, pkt, l3, in_dev, with);
                false
            }
            Verdict::Other(why) => {
                self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                    reason: DropReason::Other(why.into()),
                });
                false
            }
        }
    }

    /// The packet's state from earlier hooks in this namespace. A packet
    /// arriving from outside the namespace starts afresh (the kernel scrubs
    /// the mark and conntrack reference crossing namespaces); one looped
    /// back keeps both, and one decapsulated keeps its mark.
    fn skb_take(&mut self, ns: NsId, hook: Hook, id: PacketId, in_dev: Option<DevId>) -> Skb {
        let nf = &mut self.namespaces[ns.ix()].nf;
        if nf.skbs.is_empty() {
            return Skb::default();
        }
        let s = nf.skbs.remove(&id);
        if hook != Hook::Prerouting {
            return s.unwrap_or_default();
        }
        match in_dev.map(|d| &self.devices[d.ix()].kind) {
            Some(DevKind::Loopback) => s.unwrap_or_default(),
            Some(DevKind::Ipip(_)) | Some(DevKind::Vxlan(_)) => Skb {
                mark: s.map_or(0, |s| s.mark),
                ..Default::default()
            },
            _ => Skb::default(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn nf_run(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        hook: Hook,
        pkt: &mut Packet,
        l3: usize,
        in_dev: Option<DevId>,
        out_dev: Option<DevId>,
        skb: &mut Skb,
    ) -> Verdict {
        #[derive(Clone, Copy)]
        enum Step {
            T(TableKind),
            Ct,
            Translate,
            Confirm,
        }
        use Step::*;
        use TableKind::*;
        let steps: &[Step] = match hook {
            Hook::Prerouting => &[T(Raw), Ct, T(Mangle), Translate],
            Hook::Input => &[T(Mangle), T(Filter), Translate, Confirm],
            Hook::Forward => &[T(Mangle), T(Filter)],
            Hook::Output => &[T(Raw), Ct, T(Mangle), Translate, T(Filter)],
            Hook::Postrouting => &[T(Mangle), Translate, Confirm],
        };
        let ct_on = self.namespaces[ns.ix()].nf.ct_enabled;
        for s in steps {
            let v = match *s {
                T(k) => match self.nf_table(cx, ns, hook, k, pkt, l3, in_dev, out_dev, skb) {
                    Outcome::Accept | Outcome::Nat { .. } => Verdict::Accept,
                    Outcome::Drop { chain, rule } => Verdict::Drop {
                        table: k.name(),
                        chain,
                        rule,
                    },
                    Outcome::Reject { with, chain, rule } => Verdict::Reject {
                        table: k.name(),
                        chain,
                        rule,
                        with,
                    },
                },
                Ct if ct_on => {
                    self.nf_conntrack_in(cx, ns, hook, pkt, l3, skb);
                    Verdict::Accept
                }
                Translate if ct_on => self.nf_nat(cx, ns, hook, pkt, l3, in_dev, out_dev, skb),
                Confirm if ct_on => self.nf_confirm(cx, ns, hook, pkt.id, skb),
                _ => Verdict::Accept,
            };
            if !matches!(v, Verdict::Accept) {
                return v;
            }
        }
        Verdict::Accept
    }

    /// Traverses table `k`'s chain for `hook`.
    #[allow(clippy::too_many_arguments)]
    fn nf_table(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        hook: Hook,
        k: TableKind,
        pkt: &mut Packet,
        l3: usize,
        in_dev: Option<DevId>,
        out_dev: Option<DevId>,
        skb: &mut Skb,
    ) -> Outcome {
        let World {
            namespaces,
            devices,
            ..
        } = self;
        let n = &mut namespaces[ns.ix()];
        let place = n.node;
        let fib = &n.fib;
        let nf = &mut n.nf;
        let Some(table) = nf.tables[k.ix()].as_mut() else {
            return Outcome::Accept;
        };
        let Some(v) = view(pkt, l3) else {
            return Outcome::Accept;
        };
        let (ct_bits, ct, ct_mark) = ct_info(&nf.conntrack, skb);
        let rng = nf.stat_rng.as_mut().expect("rng set up");
        let mut e = Env {
            v,
            iif: in_dev.map(|d| devices[d.ix()].name.as_str()),
            oif: out_dev.map(|d| devices[d.ix()].name.as_str()),
            in_dev,
            out_dev,
            mark: skb.mark,
            ct_bits,
            ct,
            ct_mark,
            notrack: skb.notrack,
            fib,
            rng,
        };
        let tc = TraceCx {
            place,
            pid: pkt.id,
            hook,
            table: k.name(),
        };
        let out = traverse(cx, &tc, table, &mut e, pkt, l3, devices);
        skb.mark = e.mark;
        skb.notrack = e.notrack;
        if e.ct_mark != ct_mark
            && let CtState::Tracked(s) = &mut skb.ct
        {
            match &mut s.conn {
                CtConn::Confirmed(id) => {
                    if let Some(c) = nf.conntrack.get_mut(*id) {
                        c.mark = e.ct_mark;
                    }
                }
                CtConn::Unconfirmed(c) => c.mark = e.ct_mark,
            }
        }
        out
    }

    /// nf_conntrack_in: find or create the packet's connection.
    fn nf_conntrack_in(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        hook: Hook,
        pkt: &Packet,
        l3: usize,
        skb: &mut Skb,
    ) {
        let place = self.namespaces[ns.ix()].node;
        let now = cx.now;
        let tc = TraceCx {
            place,
            pid: pkt.id,
            hook,
            table: "conntrack",
        };
        let tracing = cx.detail(pkt.id);
        let note = |cx: &mut Cx, state: &str, text: String| {
            if tracing {
                tc.step(
                    cx,
                    &Arc::from(state),
                    None,
                    text.into(),
                    NfVerdict::Continue,
                );
            }
        };
        if skb.notrack {
            skb.ct = CtState::Untracked;
            note(cx, "UNTRACKED", "NOTRACK: not tracked".into());
            return;
        }
        if !matches!(skb.ct, CtState::None) {
            // Looped back: the connection is already attached.
            return;
        }
        let Some(v) = view(pkt, l3) else { return };
        let ct = &mut self.namespaces[ns.ix()].nf.conntrack;
        let Some(tuple) = tuple_of(&v) else {
            skb.ct = CtState::Invalid;
            note(
                cx,
                "INVALID",
                "a fragment other than the first (conntrack's defragmentation is not modelled)"
                    .into(),
            );
            return;
        };
        let mut text = String::new();
        // An ICMP error is RELATED to the connection it quotes.
        if let Some((ty, _)) = v.icmp
            && matches!(ty, 3 | 4 | 5 | 11 | 12)
        {
            let found = quoted_tuple(pkt, l3).and_then(|q| ct.lookup(&q.invert(), now));
            match found {
                Some((id, dir)) => {
                    skb.ct = CtState::Tracked(SkbCt {
                        conn: CtConn::Confirmed(id),
                        dir,
                        info: ST_RELATED,
                    });
                    if tracing {
                        text.push_str("ICMP error about ");
                        if let Some(c) = ct.get(id) {
                            c.tuple[0].ct_text(&mut text);
                        }
                    }
                    note(cx, "RELATED", text.trim_end().to_string());
                }
                None => {
                    skb.ct = CtState::Invalid;
                    note(
                        cx,
                        "INVALID",
                        "ICMP error about no tracked connection".into(),
                    );
                }
            }
            return;
        }
        match ct.lookup(&tuple, now) {
            Some((id, dir)) => {
                let c = ct.get_mut(id).expect("live entry");
                let info = if dir == Dir::Reply || c.status & S_SEEN_REPLY != 0 {
                    ST_ESTABLISHED
                } else {
                    ST_NEW
                };
                if !c.update(dir, v.tcp_flags, now) {
                    skb.ct = CtState::Invalid;
                    note(cx, "INVALID", "TCP flags not valid in this state".into());
                    return;
                }
                skb.ct = CtState::Tracked(SkbCt {
                    conn: CtConn::Confirmed(id),
                    dir,
                    info,
                });
                if tracing {
                    let name = match info {
                        ST_NEW => "NEW",
                        _ => "ESTABLISHED",
                    };
                    c.tuple[0].ct_text(&mut text);
                    text.push_str(if dir == Dir::Reply {
                        "(reply direction)"
                    } else {
                        "(original direction)"
                    });
                    note(cx, name, text);
                }
            }
            None => {
                let valid = match v.proto {
                    1 => v.icmp.is_some_and(|(t, _)| icmp_valid_new(t)),
                    6 => tcp_new_state(v.tcp_flags).is_some(),
                    _ => true,
                };
                if !valid {
                    skb.ct = CtState::Invalid;
                    note(
                        cx,
                        "INVALID",
                        format!(
                            "{} cannot start a connection",
                            if v.proto == 1 {
                                "this ICMP type"
                            } else {
                                "a TCP segment with these flags"
                            }
                        ),
                    );
                    return;
                }
                let mut c = Conn::new(tuple, now);
                c.update(Dir::Orig, v.tcp_flags, now);
                if tracing {
                    c.tuple[0].ct_text(&mut text);
                    text.push_str("(new connection)");
                }
                skb.ct = CtState::Tracked(SkbCt {
                    conn: CtConn::Unconfirmed(Box::new(c)),
                    dir: Dir::Orig,
                    info: ST_NEW,
                });
                note(cx, "NEW", text);
            }
        }
    }

    /// The nat step of a hook: for a new connection, traverse the nat
    /// chain and decide the mapping; then rewrite the packet.
    #[allow(clippy::too_many_arguments)]
    fn nf_nat(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        hook: Hook,
        pkt: &mut Packet,
        l3: usize,
        in_dev: Option<DevId>,
        out_dev: Option<DevId>,
        skb: &mut Skb,
    ) -> Verdict {
        let src = matches!(hook, Hook::Postrouting | Hook::Input);
        let (dir, info, unconfirmed) = match &skb.ct {
            CtState::Tracked(s) => (s.dir, s.info, matches!(s.conn, CtConn::Unconfirmed(_))),
            _ => return Verdict::Accept,
        };
        let place = self.namespaces[ns.ix()].node;
        let tc = TraceCx {
            place,
            pid: pkt.id,
            hook,
            table: "nat",
        };
        if info == ST_RELATED {
            self.nat_icmp_reply(cx, ns, hook, pkt, l3, skb, src);
            return Verdict::Accept;
        }
        let done = if src { S_SRC_NAT_DONE } else { S_DST_NAT_DONE };
        let mut traced = false;
        if info == ST_NEW && unconfirmed {
            let status = match &skb.ct {
                CtState::Tracked(SkbCt {
                    conn: CtConn::Unconfirmed(c),
                    ..
                }) => c.status,
                _ => 0,
            };
            if status & done == 0 {
                let out =
                    self.nf_table(cx, ns, hook, TableKind::Nat, pkt, l3, in_dev, out_dev, skb);
                let (range, step) = match out {
                    Outcome::Drop { chain, rule } => {
                        return Verdict::Drop {
                            table: "nat",
                            chain,
                            rule,
                        };
                    }
                    Outcome::Reject { with, chain, rule } => {
                        return Verdict::Reject {
                            table: "nat",
                            chain,
                            rule,
                            with,
                        };
                    }
                    Outcome::Accept => {
                        // The null binding: the addresses stay; a source
                        // port may still change to keep the tuple unique.
                        let cur = match &skb.ct {
                            CtState::Tracked(SkbCt {
                                conn: CtConn::Unconfirmed(c),
                                ..
                            }) => c.tuple[1].invert(),
                            _ => return Verdict::Accept,
                        };
                        let a = u32::from(if src { cur.src } else { cur.dst });
                        (
                            NatRange {
                                ips: Some((a, a)),
                                ports: None,
                                random: false,
                                persistent: false,
                            },
                            None,
                        )
                    }
                    Outcome::Nat {
                        target,
                        chain,
                        rule,
                        text,
                    } => match self.nat_range(ns, hook, &target, in_dev, out_dev, pkt, l3) {
                        Some(r) => (r, Some((chain, rule, text))),
                        None => {
                            if cx.tracing() {
                                tc.step(cx, &chain, Some(rule), text, NfVerdict::Drop);
                            }
                            return Verdict::Other(
                                "nat: no address to map to (MASQUERADE/REDIRECT on a device without an IPv4 address)",
                            );
                        }
                    },
                };
                let nf = &mut self.namespaces[ns.ix()].nf;
                let rng = nf.nat_rng.as_mut().expect("rng set up");
                let CtState::Tracked(SkbCt {
                    conn: CtConn::Unconfirmed(c),
                    ..
                }) = &mut skb.ct
                else {
                    return Verdict::Accept;
                };
                let curr = c.tuple[1].invert();
                let new = unique_tuple(&nf.conntrack, &curr, &range, src, rng, cx.now);
                if new != curr {
                    c.tuple[1] = new.invert();
                    c.status |= if src { S_SRC_NAT } else { S_DST_NAT };
                }
                c.status |= done;
                if let Some((chain, rule, text)) = step {
                    if cx.tracing() {
                        tc.step(
                            cx,
                            &chain,
                            Some(rule),
                            text,
                            nat_verdict(curr.short(), new.short()),
                        );
                    }
                    traced = true;
                }
            }
        }
        // nf_nat_packet: apply the mapping for this hook's manipulation.
        let nf = &self.namespaces[ns.ix()].nf;
        let conn = match &skb.ct {
            CtState::Tracked(s) => match &s.conn {
                CtConn::Confirmed(id) => nf.conntrack.get(*id),
                CtConn::Unconfirmed(c) => Some(&**c),
            },
            _ => None,
        };
        let Some(conn) = conn else {
            return Verdict::Accept;
        };
        let mut bit = if src { S_SRC_NAT } else { S_DST_NAT };
        if dir == Dir::Reply {
            bit ^= S_NAT_MASK;
        }
        if conn.status & bit == 0 {
            return Verdict::Accept;
        }
        let target = conn.tuple[dir.other().ix()].invert();
        let before = view(pkt, l3).and_then(|v| tuple_of(&v));
        manip_pkt(pkt, l3, &target, src);
        if !traced && cx.tracing() {
            let after = view(pkt, l3).and_then(|v| tuple_of(&v));
            let what = match (src, dir) {
                (true, Dir::Orig) => "SNAT",
                (false, Dir::Orig) => "DNAT",
                (true, Dir::Reply) => "un-DNAT",
                (false, Dir::Reply) => "un-SNAT",
            };
            let (b, a) = (
                before.map(|t| t.short()).unwrap_or_default(),
                after.map(|t| t.short()).unwrap_or_default(),
            );
            let tc = TraceCx {
                table: "conntrack",
                ..tc
            };
            tc.step(
                cx,
                &Arc::from(what),
                None,
                format!("{b} => {a}").into(),
                nat_verdict(b, a),
            );
        }
        Verdict::Accept
    }

    /// The range a NAT target maps into; None when there is no address
    /// (MASQUERADE out of, or REDIRECT into, a device without one).
    #[allow(clippy::too_many_arguments)]
    fn nat_range(
        &self,
        ns: NsId,
        hook: Hook,
        t: &Target,
        in_dev: Option<DevId>,
        out_dev: Option<DevId>,
        pkt: &Packet,
        l3: usize,
    ) -> Option<NatRange> {
        let one = |a: Ipv4Addr, s: &NatSpec| NatRange {
            ips: Some((u32::from(a), u32::from(a))),
            ports: s.ports,
            random: s.random || s.random_fully,
            persistent: s.persistent,
        };
        Some(match t {
            Target::Snat(s) | Target::Dnat(s) => NatRange {
                ips: s.addrs.map(|(a, b)| (u32::from(a), u32::from(b))),
                ports: s.ports,
                random: s.random || s.random_fully,
                persistent: s.persistent,
            },
            Target::Masquerade(s) => {
                // The out device's address for the route's next hop.
                let dev = out_dev?;
                let dst = view(pkt, l3)?.dst;
                let flow = crate::linux::fib::Flow {
                    dst,
                    oif: Some(dev),
                    oif_name: Some(self.devices[dev.ix()].name.as_str()),
                    mark: self.namespaces[ns.ix()].nf.skb_mark(pkt.id),
                    ..Default::default()
                };
                let nh = self
                    .fib_lookup(ns, &flow)
                    .ok()
                    .and_then(|r| r.nexthop().and_then(|n| n.gw))
                    .unwrap_or(dst);
                // inet_select_addr: the device's address, or, on a device
                // without one (a Calico `cali` veth), the first global
                // address of another device; none at all drops the packet
                // ("ate my IP address").
                let a = self.inet_select_addr(ns, Some(dev), nh, crate::cmd::Scope::Global)?;
                one(a, s)
            }
            Target::Redirect(s) => {
                let a = if hook == Hook::Output {
                    Ipv4Addr::LOCALHOST
                } else {
                    let dev = in_dev?;
                    self.namespaces[ns.ix()]
                        .addrs
                        .iter()
                        .find(|x| x.dev == dev && !x.secondary)?
                        .local
                };
                one(a, s)
            }
            _ => return None,
        })
    }

    /// nf_nat_icmp_reply_translation: an ICMP error RELATED to a NATed
    /// connection gets the quoted datagram and its own addresses mapped back.
    #[allow(clippy::too_many_arguments)]
    fn nat_icmp_reply(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        hook: Hook,
        pkt: &mut Packet,
        l3: usize,
        skb: &Skb,
        src: bool,
    ) {
        let CtState::Tracked(s) = &skb.ct else { return };
        let CtConn::Confirmed(id) = s.conn else {
            return;
        };
        let nf = &self.namespaces[ns.ix()].nf;
        let Some(c) = nf.conntrack.get(id) else {
            return;
        };
        let dir = s.dir;
        let mut bit = if src { S_SRC_NAT } else { S_DST_NAT };
        if dir == Dir::Reply {
            bit ^= S_NAT_MASK;
        }
        if c.status & bit == 0 {
            return;
        }
        let inner_target = c.tuple[dir.other().ix()];
        let outer_target = inner_target.invert();
        let before = view(pkt, l3).map(|v| (v.src, v.dst));
        if let Payload::Data(q) = &mut pkt.payload {
            manip_quoted(q, &inner_target, !src);
        }
        if let Some(Header::Ipv4(h)) = pkt.headers.get_mut(l3) {
            if src {
                h.src = outer_target.src;
            } else {
                h.dst = outer_target.dst;
            }
        }
        if cx.tracing()
            && let (Some((bs, bd)), Some(v)) = (before, view(pkt, l3))
        {
            let place = self.namespaces[ns.ix()].node;
            let tc = TraceCx {
                place,
                pid: pkt.id,
                hook,
                table: "conntrack",
            };
            let b = format!("{bs} > {bd}");
            let a = format!("{} > {}", v.src, v.dst);
            tc.step(
                cx,
                &Arc::from("RELATED"),
                None,
                format!("ICMP error and the datagram it quotes mapped back: {b} => {a}").into(),
                nat_verdict(b, a),
            );
        }
    }

    /// Confirms a new connection at the last hook.
    fn nf_confirm(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        hook: Hook,
        pid: PacketId,
        skb: &mut Skb,
    ) -> Verdict {
        let CtState::Tracked(s) = &mut skb.ct else {
            return Verdict::Accept;
        };
        if !matches!(s.conn, CtConn::Unconfirmed(_)) {
            return Verdict::Accept;
        }
        let CtConn::Unconfirmed(c) = std::mem::replace(&mut s.conn, CtConn::Confirmed(0)) else {
            return Verdict::Accept;
        };
        let nf = &mut self.namespaces[ns.ix()].nf;
        let mut text = String::new();
        let detail = cx.detail(pid);
        if detail {
            c.tuple[0].ct_text(&mut text);
            c.tuple[1].ct_text(&mut text);
        }
        match nf.conntrack.confirm(*c, cx.now) {
            Some(id) => {
                s.conn = CtConn::Confirmed(id);
                if detail {
                    let place = self.namespaces[ns.ix()].node;
                    let tc = TraceCx {
                        place,
                        pid,
                        hook,
                        table: "conntrack",
                    };
                    tc.step(
                        cx,
                        &Arc::from("confirm"),
                        None,
                        text.trim_end().to_string().into(),
                        NfVerdict::Continue,
                    );
                }
                Verdict::Accept
            }
            None => Verdict::Other(
                "conntrack: insert failed (the tuple clashes with another connection)",
            ),
        }
    }

    /// REJECT: answers the rejected packet.
    fn nf_reject(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        pkt: &Packet,
        l3: usize,
        in_dev: Option<DevId>,
        with: RejectWith,
    ) {
        let orig = if l3 == 0 {
            pkt.clone()
        } else {
            Packet::new(pkt.id, pkt.headers[l3..].to_vec(), pkt.payload.clone())
        };
        match with {
            RejectWith::Icmp(code) => self.icmp_send(
                cx,
                ns,
                &orig,
                crate::linux::stack::icmp::DEST_UNREACH,
                code,
                0,
                in_dev,
            ),
            RejectWith::TcpReset => self.send_reset(cx, ns, &orig),
        }
    }

    /// nf_send_reset: a TCP RST answering `orig`, sent from its destination.
    pub fn send_reset(&mut self, cx: &mut Cx, ns: NsId, orig: &Packet) {
        let (Some(Header::Ipv4(oh)), Some(Header::Tcp(ot))) =
            (orig.headers.first(), orig.headers.get(1))
        else {
            return;
        };
        if ot.flags.rst() || oh.frag_offset != 0 || oh.dst.is_broadcast() || oh.dst.is_multicast() {
            return;
        }
        let (seq, ack, flags) = if ot.flags.ack() {
            (ot.ack, 0, TcpFlags::RST)
        } else {
            let len =
                orig.payload.len() as u32 + u32::from(ot.flags.syn()) + u32::from(ot.flags.fin());
            (0, ot.seq.wrapping_add(len), TcpFlags::RST | TcpFlags::ACK)
        };
        let (src, dst) = (oh.dst, oh.src);
        let tcp = TcpRepr {
            src_port: ot.dst_port,
            dst_port: ot.src_port,
            seq,
            ack,
            flags,
            window: 0,
            urgent: 0,
            options: Vec::new(),
        };
        let id = self.next_packet_id();
        let iph = self.new_ip(ns, src, dst, IpProtocol::Tcp, true, None);
        let rst = Packet::new(
            id,
            vec![Header::Ipv4(iph), Header::Tcp(tcp)],
            Payload::Filler(0),
        );
        let place = self.namespaces[ns.ix()].node;
        self.trace(cx, place, orig.id, || TraceEvent::Reply {
            reply: id,
            what: "TCP RST (REJECT --reject-with tcp-reset)".into(),
        });
        let summary = if cx.detail(rst.id) {
            rst.summary()
        } else {
            String::new()
        };
        self.trace(cx, place, id, || TraceEvent::Originate {
            by: "kernel (REJECT)".into(),
            summary: summary.into(),
            dst: Some(dst),
        });
        let _ = self.ip_send(cx, ns, rst, None);
    }

    /// Whether OUTPUT changed what the route depends on (the destination,
    /// or the mark): the packet must be routed again (ip_route_me_harder).
    pub fn nf_output_rerouted(&self, ns: NsId, pkt: &Packet, dst: Ipv4Addr) -> bool {
        let nf = &self.namespaces[ns.ix()].nf;
        if !nf.active() {
            return false;
        }
        matches!(pkt.headers.first(), Some(Header::Ipv4(h)) if h.dst != dst)
            || nf.skb_mark(pkt.id) != 0
    }

    /// Whether bridged IPv4 traffic on bridge `br` goes through iptables:
    /// br_netfilter loaded on the host and `net.bridge.bridge-nf-call-iptables=1`.
    pub fn br_nf_enabled(&self, br: DevId) -> bool {
        let ns = self.devices[br.ix()].ns;
        let n = &self.namespaces[ns.ix()];
        n.nf.active()
            && n.sysctl.bridge_nf_call_iptables
            && self.hosts[n.host.ix()]
                .modules
                .iter()
                .any(|m| m == "br_netfilter")
    }

    fn bridged_ipv4(pkt: &Packet) -> bool {
        matches!(
            (pkt.headers.first(), pkt.headers.get(1)),
            (Some(Header::Ethernet(_)), Some(Header::Ipv4(_)))
        )
    }

    /// br_netfilter's PREROUTING for a frame a bridge is about to forward
    /// (as in the kernel, `-i` sees the bridge; the port is physdev's).
    pub fn br_nf_pre_routing(&mut self, cx: &mut Cx, br: DevId, pkt: &mut Packet) -> bool {
        if !Self::bridged_ipv4(pkt) || !self.br_nf_enabled(br) {
            return true;
        }
        let ns = self.devices[br.ix()].ns;
        self.nf_hook_l3(cx, ns, Hook::Prerouting, pkt, 1, Some(br), None)
    }

    /// br_netfilter for a frame the bridge forwards: PREROUTING, FORWARD,
    /// POSTROUTING; false if one of them dropped it.
    pub fn br_nf_bridged(&mut self, cx: &mut Cx, br: DevId, pkt: &mut Packet) -> bool {
        self.br_nf_pre_routing(cx, br, pkt) && self.br_nf_forward(cx, br, pkt)
    }

    /// br_netfilter's FORWARD then POSTROUTING for a bridged frame (`-i`
    /// and `-o` see the bridge device).
    pub fn br_nf_forward(&mut self, cx: &mut Cx, br: DevId, pkt: &mut Packet) -> bool {
        if !Self::bridged_ipv4(pkt) || !self.br_nf_enabled(br) {
            return true;
        }
        let ns = self.devices[br.ix()].ns;
        self.nf_hook_l3(cx, ns, Hook::Forward, pkt, 1, Some(br), Some(br))
            && self.nf_hook_l3(cx, ns, Hook::Postrouting, pkt, 1, None, Some(br))
    }
}

/// The conntrack facts rules see: state bits, the entry's status and
/// tuples, and its mark.
fn ct_info(ct: &Conntrack, skb: &Skb) -> (u16, Option<(u32, [Tuple; 2])>, u32) {
    if skb.notrack {
        return (ST_UNTRACKED, None, 0);
    }
    match &skb.ct {
        CtState::None | CtState::Invalid => (ST_INVALID, None, 0),
        CtState::Untracked => (ST_UNTRACKED, None, 0),
        CtState::Tracked(s) => {
            let c = match &s.conn {
                CtConn::Confirmed(id) => ct.get(*id),
                CtConn::Unconfirmed(c) => Some(&**c),
            };
            match c {
                Some(c) => {
                    let mut bits = s.info;
                    if c.status & S_SRC_NAT != 0 {
                        bits |= ST_SNAT;
                    }
                    if c.status & S_DST_NAT != 0 {
                        bits |= ST_DNAT;
                    }
                    (bits, Some((c.status, c.tuple)), c.mark)
                }
                None => (ST_INVALID, None, 0),
            }
        }
    }
}
