//! The rule model: tables, chains, rules, matches and targets, and how
//! iptables (v1.8.9, nf_tables backend) prints them — `-S` and
//! `iptables-save` (the "save" form) and `-L` (the "list" form).

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::Arc;

use indexmap::IndexMap;
use sim_core::net::Ipv4Net;
use sim_core::trace::Hook;

// ================================================================ tables ==

/// The four IPv4 tables podpath models (`security` is not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableKind {
    Raw,
    Mangle,
    Nat,
    Filter,
}

impl TableKind {
    pub const ALL: [TableKind; 4] = [
        TableKind::Raw,
        TableKind::Mangle,
        TableKind::Nat,
        TableKind::Filter,
    ];
    /// The order `iptables-save` (nf_tables backend) prints tables in.
    pub const SAVE_ORDER: [TableKind; 4] = [
        TableKind::Mangle,
        TableKind::Raw,
        TableKind::Filter,
        TableKind::Nat,
    ];

    pub fn ix(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            TableKind::Raw => "raw",
            TableKind::Mangle => "mangle",
            TableKind::Nat => "nat",
            TableKind::Filter => "filter",
        }
    }

    pub fn parse(s: &str) -> Option<TableKind> {
        Some(match s {
            "raw" => TableKind::Raw,
            "mangle" => TableKind::Mangle,
            "nat" => TableKind::Nat,
            "filter" => TableKind::Filter,
            _ => return None,
        })
    }

    /// The built-in chains, in the order iptables lists them.
    pub fn builtins(self) -> &'static [Hook] {
        use Hook::*;
        match self {
            TableKind::Raw => &[Prerouting, Output],
            TableKind::Mangle => &[Prerouting, Input, Forward, Output, Postrouting],
            TableKind::Nat => &[Prerouting, Input, Output, Postrouting],
            TableKind::Filter => &[Input, Forward, Output],
        }
    }
}

pub fn hook_from_name(s: &str) -> Option<Hook> {
    Some(match s {
        "PREROUTING" => Hook::Prerouting,
        "INPUT" => Hook::Input,
        "FORWARD" => Hook::Forward,
        "OUTPUT" => Hook::Output,
        "POSTROUTING" => Hook::Postrouting,
        _ => return None,
    })
}

/// One table: its chains in a slab (a deleted chain leaves a hole, so the
/// slots rules jump to stay valid), the built-ins first, and a name index
/// that gives the listing order of user chains (sorted by name, as
/// iptables-nft lists them).
#[derive(Clone, Debug)]
pub struct Table {
    pub kind: TableKind,
    pub chains: Vec<Option<Chain>>,
    pub by_name: std::collections::BTreeMap<Arc<str>, usize>,
    /// Slots of deleted chains, reused by new ones.
    free: Vec<usize>,
}

impl Table {
    pub fn new(kind: TableKind) -> Table {
        let mut t = Table {
            kind,
            chains: Vec::new(),
            by_name: Default::default(),
            free: Vec::new(),
        };
        for &h in kind.builtins() {
            let name: Arc<str> = h.as_str().into();
            t.by_name.insert(name.clone(), t.chains.len());
            t.chains.push(Some(Chain {
                name,
                hook: Some(h),
                registered: false,
                policy: Policy::Accept,
                rules: Vec::new(),
                packets: 0,
                bytes: 0,
            }));
        }
        t
    }

    pub fn slot(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    pub fn chain(&self, slot: usize) -> &Chain {
        self.chains[slot].as_ref().expect("live chain slot")
    }

    pub fn chain_mut(&mut self, slot: usize) -> &mut Chain {
        self.chains[slot].as_mut().expect("live chain slot")
    }

    pub fn get(&self, name: &str) -> Option<&Chain> {
        self.slot(name).map(|s| self.chain(s))
    }

    /// The built-in chain of a hook, if this table has one.
    pub fn hook_slot(&self, hook: Hook) -> Option<usize> {
        self.kind.builtins().iter().position(|&h| h == hook)
    }

    /// Chains in listing order: built-ins in hook order, then user chains by name.
    pub fn list_order(&self) -> Vec<usize> {
        let n = self.kind.builtins().len();
        let mut v: Vec<usize> = (0..n).collect();
        v.extend(self.by_name.values().copied().filter(|&s| s >= n));
        v
    }

    /// Adds a user chain; its slot.
    pub fn add_chain(&mut self, name: &str) -> usize {
        let name: Arc<str> = name.into();
        let chain = Chain {
            name: name.clone(),
            hook: None,
            registered: true,
            policy: Policy::Accept,
            rules: Vec::new(),
            packets: 0,
            bytes: 0,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.chains[s] = Some(chain);
                s
            }
            None => {
                self.chains.push(Some(chain));
                self.chains.len() - 1
            }
        };
        self.by_name.insert(name, slot);
        slot
    }

    /// Rules jumping or going to the chain in `slot`.
    pub fn references(&self, slot: usize) -> usize {
        self.chains
            .iter()
            .flatten()
            .flat_map(|c| c.rules.iter())
            .filter(|r| r.target.chain_slot() == Some(slot))
            .count()
    }

    pub fn delete_chain(&mut self, slot: usize) {
        if let Some(c) = self.chains[slot].take() {
            self.by_name.remove(&c.name);
            self.free.push(slot);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Accept,
    Drop,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Accept => "ACCEPT",
            Policy::Drop => "DROP",
        }
    }

    /// `policy ACCEPT` / `policy DROP`, the trace's text for a policy step,
    /// shared rather than built for every packet.
    pub fn step_text(self) -> std::sync::Arc<str> {
        static ACCEPT: std::sync::OnceLock<std::sync::Arc<str>> = std::sync::OnceLock::new();
        static DROP: std::sync::OnceLock<std::sync::Arc<str>> = std::sync::OnceLock::new();
        let (cell, p) = match self {
            Policy::Accept => (&ACCEPT, "policy ACCEPT"),
            Policy::Drop => (&DROP, "policy DROP"),
        };
        cell.get_or_init(|| p.into()).clone()
    }
}

#[derive(Clone, Debug)]
pub struct Chain {
    pub name: Arc<str>,
    /// The hook of a built-in chain; None for user chains.
    pub hook: Option<Hook>,
    /// Whether the chain exists in the kernel. iptables-nft creates a
    /// built-in chain only when a rule, a policy or an explicit flush
    /// touches it (or iptables-restore declares it); until then the hook
    /// has no such chain: nothing traverses or counts it, though listings
    /// show it with policy ACCEPT.
    pub registered: bool,
    pub policy: Policy,
    pub rules: Vec<Rule>,
    /// Policy counters (packets the policy applied to).
    pub packets: u64,
    pub bytes: u64,
}

impl Chain {
    pub fn builtin(&self) -> bool {
        self.hook.is_some()
    }
}

// ================================================================= rules ==

/// An interface name in a rule: `eth0`, or `eth+` (a prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfName {
    pub name: Box<str>,
    pub wildcard: bool,
}

impl IfName {
    pub fn parse(s: &str) -> IfName {
        match s.strip_suffix('+') {
            Some(p) => IfName {
                name: p.into(),
                wildcard: true,
            },
            None => IfName {
                name: s.into(),
                wildcard: false,
            },
        }
    }
    #[inline]
    pub fn matches(&self, dev: &str) -> bool {
        if self.wildcard {
            dev.starts_with(&*self.name)
        } else {
            *self.name == *dev
        }
    }
}

impl std::fmt::Display for IfName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if self.wildcard {
            f.write_str("+")?;
        }
        Ok(())
    }
}

/// The IP header part of a rule (`-s -d -i -o -p -f`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpSpec {
    pub src: Ipv4Net,
    pub src_inv: bool,
    pub dst: Ipv4Net,
    pub dst_inv: bool,
    pub iif: Option<IfName>,
    pub iif_inv: bool,
    pub oif: Option<IfName>,
    pub oif_inv: bool,
    /// 0 = any protocol.
    pub proto: u8,
    pub proto_inv: bool,
    /// `-f` (Some(false)) or `! -f` (Some(true)).
    pub frag: Option<bool>,
}

impl Default for IpSpec {
    fn default() -> Self {
        IpSpec {
            src: Ipv4Net::DEFAULT,
            src_inv: false,
            dst: Ipv4Net::DEFAULT,
            dst_inv: false,
            iif: None,
            iif_inv: false,
            oif: None,
            oif_inv: false,
            proto: 0,
            proto_inv: false,
            frag: None,
        }
    }
}

/// An inclusive port range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    #[inline]
    pub fn contains(self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TcpMatch {
    pub sport: Option<(PortRange, bool)>,
    pub dport: Option<(PortRange, bool)>,
    /// (mask, comparison, inverted).
    pub flags: Option<(u8, u8, bool)>,
    /// `--tcp-option N`.
    pub option: Option<(u8, bool)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct UdpMatch {
    pub sport: Option<(PortRange, bool)>,
    pub dport: Option<(PortRange, bool)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcmpMatch {
    /// 255 = any.
    pub ty: u8,
    pub code: (u8, u8),
    pub inv: bool,
}

/// `-m conntrack` (the options podpath models).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CtMatch {
    pub state: Option<(u16, bool)>,
    pub origsrc: Option<(Ipv4Net, bool)>,
    pub origdst: Option<(Ipv4Net, bool)>,
    pub replsrc: Option<(Ipv4Net, bool)>,
    pub repldst: Option<(Ipv4Net, bool)>,
    pub status: Option<(u16, bool)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MpKind {
    Src,
    Dst,
    Any,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultiportMatch {
    pub kind: MpKind,
    pub ports: Vec<PortRange>,
    pub inv: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AddrtypeMatch {
    pub src: Option<(u16, bool)>,
    pub dst: Option<(u16, bool)>,
    pub limit_in: bool,
    pub limit_out: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatMatch {
    /// Matches when a 31-bit draw is below `p` (parts of 2^31).
    Random { p: u32, inv: bool },
    /// Every `every`-th packet (`every` stored minus one, as the kernel does).
    Nth {
        every: u32,
        packet: u32,
        count: u32,
        inv: bool,
    },
}

/// A match (`-m NAME ...`, or loaded implicitly by `-p tcp --dport`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Match {
    Tcp(TcpMatch),
    Udp(UdpMatch),
    Icmp(IcmpMatch),
    Conntrack(CtMatch),
    State { bits: u16, inv: bool },
    Comment(Arc<str>),
    Mark { value: u32, mask: u32, inv: bool },
    Connmark { value: u32, mask: u32, inv: bool },
    Multiport(MultiportMatch),
    Addrtype(AddrtypeMatch),
    Statistic(StatMatch),
}

impl Match {
    pub fn name(&self) -> &'static str {
        match self {
            Match::Tcp(_) => "tcp",
            Match::Udp(_) => "udp",
            Match::Icmp(_) => "icmp",
            Match::Conntrack(_) => "conntrack",
            Match::State { .. } => "state",
            Match::Comment(_) => "comment",
            Match::Mark { .. } => "mark",
            Match::Connmark { .. } => "connmark",
            Match::Multiport(_) => "multiport",
            Match::Addrtype(_) => "addrtype",
            Match::Statistic(_) => "statistic",
        }
    }

    /// Whether the match needs connection tracking in the namespace.
    pub fn needs_ct(&self) -> bool {
        matches!(
            self,
            Match::Conntrack(_) | Match::State { .. } | Match::Connmark { .. }
        )
    }
}

/// REJECT's `--reject-with`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectWith {
    /// Destination unreachable with this code.
    Icmp(u8),
    TcpReset,
}

pub const REJECT_TYPES: &[(&str, RejectWith)] = &[
    ("icmp-net-unreachable", RejectWith::Icmp(0)),
    ("icmp-host-unreachable", RejectWith::Icmp(1)),
    ("icmp-proto-unreachable", RejectWith::Icmp(2)),
    ("icmp-port-unreachable", RejectWith::Icmp(3)),
    ("icmp-net-prohibited", RejectWith::Icmp(9)),
    ("icmp-host-prohibited", RejectWith::Icmp(10)),
    ("icmp-admin-prohibited", RejectWith::Icmp(13)),
    ("tcp-reset", RejectWith::TcpReset),
];

/// Aliases iptables accepts for `--reject-with`.
pub const REJECT_ALIASES: &[(&str, &str)] = &[
    ("net-unreach", "icmp-net-unreachable"),
    ("host-unreach", "icmp-host-unreachable"),
    ("proto-unreach", "icmp-proto-unreachable"),
    ("port-unreach", "icmp-port-unreachable"),
    ("net-prohib", "icmp-net-prohibited"),
    ("host-prohib", "icmp-host-prohibited"),
    ("admin-prohib", "icmp-admin-prohibited"),
    ("tcp-rst", "tcp-reset"),
];

impl RejectWith {
    pub fn name(self) -> &'static str {
        REJECT_TYPES
            .iter()
            .find(|(_, r)| *r == self)
            .map(|(n, _)| *n)
            .unwrap_or("icmp-port-unreachable")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogOpts {
    pub prefix: Option<Arc<str>>,
    pub level: u8,
    pub flags: u8,
}

/// CONNMARK's operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnmarkOp {
    /// ctmark = (ctmark & ~mask) ^ value
    Set { value: u32, mask: u32 },
    /// ctmark = (ctmark & ~ctmask) ^ (mark & nfmask)
    Save { nfmask: u32, ctmask: u32 },
    /// mark = (mark & ~nfmask) ^ (ctmark & ctmask)
    Restore { nfmask: u32, ctmask: u32 },
}

/// A NAT target's range: addresses (None keeps the address) and ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NatSpec {
    pub addrs: Option<(Ipv4Addr, Ipv4Addr)>,
    pub ports: Option<(u16, u16)>,
    pub random: bool,
    pub random_fully: bool,
    pub persistent: bool,
}

/// A jump or goto destination: the chain's slot and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainRef {
    pub slot: usize,
    pub name: Arc<str>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// No `-j`: the rule only counts.
    None,
    Accept,
    Drop,
    Return,
    Jump(ChainRef),
    Goto(ChainRef),
    Reject(RejectWith),
    Log(LogOpts),
    Trace,
    /// MARK: mark = (mark & ~mask) ^ value.
    Mark {
        value: u32,
        mask: u32,
    },
    Connmark(ConnmarkOp),
    Snat(NatSpec),
    Dnat(NatSpec),
    Masquerade(NatSpec),
    Redirect(NatSpec),
    /// TCPMSS: `--set-mss N` (Some) or `--clamp-mss-to-pmtu` (None).
    Tcpmss(Option<u16>),
    /// `-j NOTRACK`
    Notrack,
    /// `-j CT --notrack`
    CtNotrack,
}

impl Target {
    pub fn chain_slot(&self) -> Option<usize> {
        match self {
            Target::Jump(c) | Target::Goto(c) => Some(c.slot),
            _ => None,
        }
    }

    /// The name in `-j NAME` (and the target column of `-L`).
    pub fn name(&self) -> &str {
        match self {
            Target::None => "",
            Target::Accept => "ACCEPT",
            Target::Drop => "DROP",
            Target::Return => "RETURN",
            Target::Jump(c) | Target::Goto(c) => &c.name,
            Target::Reject(_) => "REJECT",
            Target::Log(_) => "LOG",
            Target::Trace => "TRACE",
            Target::Mark { .. } => "MARK",
            Target::Connmark(_) => "CONNMARK",
            Target::Snat(_) => "SNAT",
            Target::Dnat(_) => "DNAT",
            Target::Masquerade(_) => "MASQUERADE",
            Target::Redirect(_) => "REDIRECT",
            Target::Tcpmss(_) => "TCPMSS",
            Target::Notrack => "NOTRACK",
            Target::CtNotrack => "CT",
        }
    }

    pub fn needs_ct(&self) -> bool {
        matches!(
            self,
            Target::Connmark(_)
                | Target::Snat(_)
                | Target::Dnat(_)
                | Target::Masquerade(_)
                | Target::Redirect(_)
        )
    }
}

/// One rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub ip: IpSpec,
    pub matches: Vec<Match>,
    pub target: Target,
    /// The rule as `iptables -S` prints it after `-A CHAIN ` (trace text).
    pub text: Arc<str>,
    pub packets: u64,
    pub bytes: u64,
}

impl Rule {
    pub fn new(ip: IpSpec, matches: Vec<Match>, target: Target) -> Rule {
        let mut r = Rule {
            ip,
            matches,
            target,
            text: Arc::from(""),
            packets: 0,
            bytes: 0,
        };
        r.text = r.save_spec().into();
        r
    }

    pub fn needs_ct(&self) -> bool {
        self.target.needs_ct() || self.matches.iter().any(Match::needs_ct)
    }

    /// Same rule (what `-D`/`-C` by specification compare): the printed form.
    pub fn same_as(&self, other: &Rule) -> bool {
        self.text == other.text
    }

    /// The rule in save form, without `-A CHAIN`.
    pub fn save_spec(&self) -> String {
        let mut s = String::new();
        save_ip(&self.ip, &mut s);
        for m in &self.matches {
            save_match(m, &mut s);
        }
        save_target(&self.target, &mut s);
        if s.starts_with(' ') {
            s.remove(0);
        }
        s
    }
}

// ============================================================== names ==

/// Protocol names (as /etc/protocols of Debian's netbase names them).
pub const PROTOCOLS: &[(&str, u8)] = &[
    ("icmp", 1),
    ("igmp", 2),
    ("ggp", 3),
    ("ipencap", 4),
    ("st", 5),
    ("tcp", 6),
    ("egp", 8),
    ("igp", 9),
    ("pup", 12),
    ("udp", 17),
    ("hmp", 20),
    ("xns-idp", 22),
    ("rdp", 27),
    ("iso-tp4", 29),
    ("dccp", 33),
    ("xtp", 36),
    ("ddp", 37),
    ("idpr-cmtp", 38),
    ("ipv6", 41),
    ("ipv6-route", 43),
    ("ipv6-frag", 44),
    ("idrp", 45),
    ("rsvp", 46),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("skip", 57),
    ("ipv6-icmp", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("rspf", 73),
    ("vmtp", 81),
    ("eigrp", 88),
    ("ospf", 89),
    ("ax.25", 93),
    ("ipip", 94),
    ("etherip", 97),
    ("encap", 98),
    ("pim", 103),
    ("ipcomp", 108),
    ("vrrp", 112),
    ("l2tp", 115),
    ("isis", 124),
    ("sctp", 132),
    ("fc", 133),
    ("mobility-header", 135),
    ("udplite", 136),
    ("mpls-in-ip", 137),
    ("manet", 138),
    ("hip", 139),
    ("shim6", 140),
    ("wesp", 141),
    ("rohc", 142),
    ("ethernet", 143),
];

pub fn proto_name(p: u8) -> Option<&'static str> {
    PROTOCOLS.iter().find(|(_, n)| *n == p).map(|(s, _)| *s)
}

/// Well-known ports `iptables -L` (without `-n`) names: (port, tcp, udp, name).
const SERVICES: &[(u16, bool, bool, &str)] = &[
    (1, true, false, "tcpmux"),
    (7, true, true, "echo"),
    (20, true, false, "ftp-data"),
    (21, true, false, "ftp"),
    (22, true, false, "ssh"),
    (23, true, false, "telnet"),
    (25, true, false, "smtp"),
    (53, true, true, "domain"),
    (67, false, true, "bootps"),
    (68, false, true, "bootpc"),
    (69, false, true, "tftp"),
    (80, true, false, "http"),
    (88, true, true, "kerberos"),
    (110, true, false, "pop3"),
    (111, true, true, "sunrpc"),
    (123, false, true, "ntp"),
    (143, true, false, "imap2"),
    (161, true, true, "snmp"),
    (179, true, false, "bgp"),
    (389, true, true, "ldap"),
    (443, true, true, "https"),
    (636, true, true, "ldaps"),
    (873, true, false, "rsync"),
    (993, true, false, "imaps"),
    (995, true, false, "pop3s"),
    (2000, true, false, "cisco-sccp"),
    (2049, true, true, "nfs"),
    (3306, true, false, "mysql"),
    (5353, false, true, "mdns"),
    (5432, true, false, "postgresql"),
    (6379, true, false, "redis"),
    (8080, true, false, "http-alt"),
];

pub fn service_name(port: u16, proto: u8) -> Option<&'static str> {
    SERVICES
        .iter()
        .find(|(p, t, u, _)| *p == port && ((proto == 6 && *t) || (proto == 17 && *u)))
        .map(|s| s.3)
}

pub fn service_port(name: &str, proto: u8) -> Option<u16> {
    if name == "www" && proto == 6 {
        return Some(80);
    }
    SERVICES
        .iter()
        .find(|(_, t, u, n)| *n == name && ((proto == 6 && *t) || (proto == 17 && *u)))
        .map(|s| s.0)
}

/// ICMP type names (libxt_icmp's table): name, type, code range.
pub const ICMP_TYPES: &[(&str, u8, u8, u8)] = &[
    ("any", 255, 0, 255),
    ("echo-reply", 0, 0, 255),
    ("pong", 0, 0, 255),
    ("destination-unreachable", 3, 0, 255),
    ("network-unreachable", 3, 0, 0),
    ("host-unreachable", 3, 1, 1),
    ("protocol-unreachable", 3, 2, 2),
    ("port-unreachable", 3, 3, 3),
    ("fragmentation-needed", 3, 4, 4),
    ("source-route-failed", 3, 5, 5),
    ("network-unknown", 3, 6, 6),
    ("host-unknown", 3, 7, 7),
    ("network-prohibited", 3, 9, 9),
    ("host-prohibited", 3, 10, 10),
    ("TOS-network-unreachable", 3, 11, 11),
    ("TOS-host-unreachable", 3, 12, 12),
    ("communication-prohibited", 3, 13, 13),
    ("host-precedence-violation", 3, 14, 14),
    ("precedence-cutoff", 3, 15, 15),
    ("source-quench", 4, 0, 255),
    ("redirect", 5, 0, 255),
    ("network-redirect", 5, 0, 0),
    ("host-redirect", 5, 1, 1),
    ("TOS-network-redirect", 5, 2, 2),
    ("TOS-host-redirect", 5, 3, 3),
    ("echo-request", 8, 0, 255),
    ("ping", 8, 0, 255),
    ("router-advertisement", 9, 0, 255),
    ("router-solicitation", 10, 0, 255),
    ("time-exceeded", 11, 0, 255),
    ("ttl-exceeded", 11, 0, 255),
    ("ttl-zero-during-transit", 11, 0, 0),
    ("ttl-zero-during-reassembly", 11, 1, 1),
    ("parameter-problem", 12, 0, 255),
    ("ip-header-bad", 12, 0, 0),
    ("required-option-missing", 12, 1, 1),
    ("timestamp-request", 13, 0, 255),
    ("timestamp-reply", 14, 0, 255),
    ("address-mask-request", 17, 0, 255),
    ("address-mask-reply", 18, 0, 255),
];

/// Conntrack state bits (xt_conntrack's XT_CONNTRACK_STATE_*), in print order.
pub const CT_STATES: &[(&str, u16)] = &[
    ("INVALID", 1 << 0),
    ("NEW", 1 << 3),
    ("RELATED", 1 << 2),
    ("ESTABLISHED", 1 << 1),
    ("UNTRACKED", 1 << 8),
    ("SNAT", 1 << 9),
    ("DNAT", 1 << 10),
];
pub const ST_INVALID: u16 = 1 << 0;
pub const ST_ESTABLISHED: u16 = 1 << 1;
pub const ST_RELATED: u16 = 1 << 2;
pub const ST_NEW: u16 = 1 << 3;
pub const ST_UNTRACKED: u16 = 1 << 8;
pub const ST_SNAT: u16 = 1 << 9;
pub const ST_DNAT: u16 = 1 << 10;

/// `--ctstatus` names and the conntrack status bits they test.
pub const CT_STATUS: &[(&str, u16)] = &[
    ("NONE", 0),
    ("EXPECTED", 1 << 0),
    ("SEEN_REPLY", 1 << 1),
    ("ASSURED", 1 << 2),
    ("CONFIRMED", 1 << 3),
];

/// Address types (RTN_*), bit = 1 << type, in print order.
pub const ADDR_TYPES: &[&str] = &[
    "UNSPEC",
    "UNICAST",
    "LOCAL",
    "BROADCAST",
    "ANYCAST",
    "MULTICAST",
    "BLACKHOLE",
    "UNREACHABLE",
    "PROHIBIT",
    "THROW",
    "NAT",
    "XRESOLVE",
];
pub const AT_UNSPEC: u16 = 1 << 0;
pub const AT_UNICAST: u16 = 1 << 1;
pub const AT_LOCAL: u16 = 1 << 2;
pub const AT_BROADCAST: u16 = 1 << 3;
pub const AT_MULTICAST: u16 = 1 << 5;
pub const AT_BLACKHOLE: u16 = 1 << 6;
pub const AT_UNREACHABLE: u16 = 1 << 7;
pub const AT_PROHIBIT: u16 = 1 << 8;

/// TCP flag names in print order (libxt_tcp).
pub const TCP_FLAGS: &[(&str, u8)] = &[
    ("FIN", 0x01),
    ("SYN", 0x02),
    ("RST", 0x04),
    ("PSH", 0x08),
    ("ACK", 0x10),
    ("URG", 0x20),
];

fn join_bits(bits: u16, names: &[(&str, u16)], out: &mut String) {
    let mut first = true;
    for (n, b) in names {
        if *b != 0 && bits & b != 0 {
            if !first {
                out.push(',');
            }
            out.push_str(n);
            first = false;
        }
    }
}

fn ct_states(bits: u16, out: &mut String) {
    join_bits(bits, CT_STATES, out);
}

fn ct_status(bits: u16, out: &mut String) {
    if bits == 0 {
        out.push_str("NONE");
    } else {
        join_bits(bits, CT_STATUS, out);
    }
}

fn addr_types(bits: u16, out: &mut String) {
    let mut first = true;
    for (i, n) in ADDR_TYPES.iter().enumerate() {
        if bits & (1 << i) != 0 {
            if !first {
                out.push(',');
            }
            out.push_str(n);
            first = false;
        }
    }
}

fn tcp_flag_names(bits: u8, out: &mut String) {
    if bits == 0 {
        out.push_str("NONE");
        return;
    }
    let mut first = true;
    for (n, b) in TCP_FLAGS {
        if bits & b != 0 {
            if !first {
                out.push(',');
            }
            out.push_str(n);
            first = false;
        }
    }
}

/// `xtables_save_string`: bare if only `[A-Za-z0-9_-]`, else double-quoted
/// with `"`, `\` and `'` escaped.
pub fn save_string(v: &str, out: &mut String) {
    out.push(' ');
    if !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        if matches!(c, '"' | '\\' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// `%.11f` of a statistic probability stored as parts of 2^31.
pub fn probability_text(p: u32) -> String {
    // Exactly: round(p * 10^11 / 2^31), ties to even (printf's exact decimal rounding).
    let num = (p as u128) * 100_000_000_000u128;
    let q = num >> 31;
    let r = num & ((1u128 << 31) - 1);
    let half = 1u128 << 30;
    let q = if r > half || (r == half && q & 1 == 1) {
        q + 1
    } else {
        q
    };
    format!("{}.{:011}", q / 100_000_000_000, q % 100_000_000_000)
}

fn save_net(n: &Ipv4Net, out: &mut String) {
    let _ = write!(out, "{}/{}", n.addr, n.len);
}

/// Addresses as conntrack's options print them: a host without `/32`.
fn ct_net(n: &Ipv4Net, out: &mut String) {
    if n.len == 32 {
        let _ = write!(out, "{}", n.addr);
    } else {
        let _ = write!(out, "{}/{}", n.addr, n.len);
    }
}

fn port_range_save(r: PortRange, out: &mut String) {
    if r.lo == r.hi {
        let _ = write!(out, "{}", r.lo);
    } else {
        let _ = write!(out, "{}:{}", r.lo, r.hi);
    }
}

// =========================================================== save form ==

fn inv(b: bool, out: &mut String) {
    if b {
        out.push_str(" !");
    }
}

pub fn save_ip(ip: &IpSpec, out: &mut String) {
    if ip.src.len > 0 || ip.src_inv {
        inv(ip.src_inv, out);
        out.push_str(" -s ");
        save_net(&ip.src, out);
    }
    if ip.dst.len > 0 || ip.dst_inv {
        inv(ip.dst_inv, out);
        out.push_str(" -d ");
        save_net(&ip.dst, out);
    }
    if let Some(i) = &ip.iif {
        inv(ip.iif_inv, out);
        let _ = write!(out, " -i {i}");
    }
    if let Some(o) = &ip.oif {
        inv(ip.oif_inv, out);
        let _ = write!(out, " -o {o}");
    }
    if ip.proto != 0 {
        inv(ip.proto_inv, out);
        match proto_name(ip.proto) {
            Some(n) => {
                let _ = write!(out, " -p {n}");
            }
            None => {
                let _ = write!(out, " -p {}", ip.proto);
            }
        }
    }
    if let Some(i) = ip.frag {
        inv(i, out);
        out.push_str(" -f");
    }
}

pub fn save_match(m: &Match, out: &mut String) {
    let _ = write!(out, " -m {}", m.name());
    match m {
        Match::Tcp(t) => {
            if let Some((r, i)) = t.sport {
                inv(i, out);
                out.push_str(" --sport ");
                port_range_save(r, out);
            }
            if let Some((r, i)) = t.dport {
                inv(i, out);
                out.push_str(" --dport ");
                port_range_save(r, out);
            }
            if let Some((o, i)) = t.option {
                inv(i, out);
                let _ = write!(out, " --tcp-option {o}");
            }
            if let Some((mask, cmp, i)) = t.flags {
                inv(i, out);
                out.push_str(" --tcp-flags ");
                tcp_flag_names(mask, out);
                out.push(' ');
                tcp_flag_names(cmp, out);
            }
        }
        Match::Udp(u) => {
            if let Some((r, i)) = u.sport {
                inv(i, out);
                out.push_str(" --sport ");
                port_range_save(r, out);
            }
            if let Some((r, i)) = u.dport {
                inv(i, out);
                out.push_str(" --dport ");
                port_range_save(r, out);
            }
        }
        Match::Icmp(c) => {
            inv(c.inv, out);
            if c.ty == 255 {
                out.push_str(" --icmp-type any");
            } else {
                let _ = write!(out, " --icmp-type {}", c.ty);
                if c.code != (0, 255) {
                    let _ = write!(out, "/{}", c.code.0);
                }
            }
        }
        Match::Conntrack(c) => {
            if let Some((s, i)) = c.state {
                inv(i, out);
                out.push_str(" --ctstate ");
                ct_states(s, out);
            }
            for (v, name) in [
                (&c.origsrc, "ctorigsrc"),
                (&c.origdst, "ctorigdst"),
                (&c.replsrc, "ctreplsrc"),
                (&c.repldst, "ctrepldst"),
            ] {
                if let Some((n, i)) = v {
                    inv(*i, out);
                    let _ = write!(out, " --{name} ");
                    ct_net(n, out);
                }
            }
            if let Some((s, i)) = c.status {
                inv(i, out);
                out.push_str(" --ctstatus ");
                ct_status(s, out);
            }
        }
        Match::State { bits, inv: i } => {
            inv(*i, out);
            out.push_str(" --state ");
            ct_states(*bits, out);
        }
        Match::Comment(c) => {
            out.push_str(" --comment");
            save_string(c, out);
        }
        Match::Mark {
            value,
            mask,
            inv: i,
        }
        | Match::Connmark {
            value,
            mask,
            inv: i,
        } => {
            inv(*i, out);
            let _ = write!(out, " --mark {value:#x}");
            if *mask != u32::MAX {
                let _ = write!(out, "/{mask:#x}");
            }
        }
        Match::Multiport(mp) => {
            inv(mp.inv, out);
            out.push_str(match mp.kind {
                MpKind::Src => " --sports ",
                MpKind::Dst => " --dports ",
                MpKind::Any => " --ports ",
            });
            for (k, r) in mp.ports.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                port_range_save(*r, out);
            }
        }
        Match::Addrtype(a) => {
            if let Some((t, i)) = a.src {
                inv(i, out);
                out.push_str(" --src-type ");
                addr_types(t, out);
            }
            if let Some((t, i)) = a.dst {
                inv(i, out);
                out.push_str(" --dst-type ");
                addr_types(t, out);
            }
            if a.limit_in {
                out.push_str(" --limit-iface-in");
            }
            if a.limit_out {
                out.push_str(" --limit-iface-out");
            }
        }
        Match::Statistic(s) => stat_text(s, "--", out),
    }
}

fn stat_text(s: &StatMatch, prefix: &str, out: &mut String) {
    match s {
        StatMatch::Random { p, inv } => {
            let _ = write!(
                out,
                " {prefix}mode random{} {prefix}probability {}",
                if *inv { " !" } else { "" },
                probability_text(*p)
            );
        }
        StatMatch::Nth {
            every, packet, inv, ..
        } => {
            let _ = write!(
                out,
                " {prefix}mode nth{} {prefix}every {}",
                if *inv { " !" } else { "" },
                every + 1
            );
            if *packet != 0 || !prefix.is_empty() {
                let _ = write!(out, " {prefix}packet {packet}");
            }
        }
    }
}

fn nat_range_text(n: &NatSpec, out: &mut String) {
    if let Some((lo, hi)) = n.addrs {
        let _ = write!(out, "{lo}");
        if hi != lo {
            let _ = write!(out, "-{hi}");
        }
    }
    if let Some((lo, hi)) = n.ports {
        let _ = write!(out, ":{lo}");
        if hi != lo {
            let _ = write!(out, "-{hi}");
        }
    }
}

fn ports_text(p: (u16, u16), out: &mut String) {
    let _ = write!(out, "{}", p.0);
    if p.1 != p.0 {
        let _ = write!(out, "-{}", p.1);
    }
}

fn nat_flags_save(n: &NatSpec, out: &mut String) {
    if n.random {
        out.push_str(" --random");
    }
    if n.random_fully {
        out.push_str(" --random-fully");
    }
    if n.persistent {
        out.push_str(" --persistent");
    }
}

fn nat_flags_list(n: &NatSpec, out: &mut String) {
    if n.random {
        out.push_str(" random");
    }
    if n.random_fully {
        out.push_str(" random-fully");
    }
    if n.persistent {
        out.push_str(" persistent");
    }
}

pub fn save_target(t: &Target, out: &mut String) {
    match t {
        Target::None => return,
        Target::Goto(c) => {
            let _ = write!(out, " -g {}", c.name);
            return;
        }
        _ => {
            let _ = write!(out, " -j {}", t.name());
        }
    }
    match t {
        Target::Reject(w) => {
            let _ = write!(out, " --reject-with {}", w.name());
        }
        Target::Log(l) => {
            if let Some(p) = &l.prefix {
                out.push_str(" --log-prefix");
                save_string(p, out);
            }
            if l.level != 4 {
                let _ = write!(out, " --log-level {}", l.level);
            }
            for (bit, name) in LOG_FLAGS {
                if l.flags & bit != 0 {
                    let _ = write!(out, " --{name}");
                }
            }
        }
        Target::Mark { value, mask } => {
            let _ = write!(out, " --set-xmark {value:#x}/{mask:#x}");
        }
        Target::Connmark(op) => match op {
            ConnmarkOp::Set { value, mask } => {
                let _ = write!(out, " --set-xmark {value:#x}/{mask:#x}");
            }
            ConnmarkOp::Save { nfmask, ctmask } => {
                let _ = write!(
                    out,
                    " --save-mark --nfmask {nfmask:#x} --ctmask {ctmask:#x}"
                );
            }
            ConnmarkOp::Restore { nfmask, ctmask } => {
                let _ = write!(
                    out,
                    " --restore-mark --nfmask {nfmask:#x} --ctmask {ctmask:#x}"
                );
            }
        },
        Target::Snat(n) | Target::Dnat(n) => {
            out.push_str(if matches!(t, Target::Snat(_)) {
                " --to-source "
            } else {
                " --to-destination "
            });
            nat_range_text(n, out);
            nat_flags_save(n, out);
        }
        Target::Masquerade(n) | Target::Redirect(n) => {
            if let Some(p) = n.ports {
                out.push_str(" --to-ports ");
                ports_text(p, out);
            }
            nat_flags_save(n, out);
        }
        Target::Tcpmss(Some(m)) => {
            let _ = write!(out, " --set-mss {m}");
        }
        Target::Tcpmss(None) => out.push_str(" --clamp-mss-to-pmtu"),
        Target::CtNotrack => out.push_str(" --notrack"),
        _ => {}
    }
}

pub const LOG_FLAGS: &[(u8, &str)] = &[
    (0x01, "log-tcp-sequence"),
    (0x02, "log-tcp-options"),
    (0x04, "log-ip-options"),
    (0x08, "log-uid"),
    (0x20, "log-macdecode"),
];

pub const LOG_LEVELS: &[(&str, u8)] = &[
    ("emerg", 0),
    ("panic", 0),
    ("alert", 1),
    ("crit", 2),
    ("err", 3),
    ("error", 3),
    ("warn", 4),
    ("warning", 4),
    ("notice", 5),
    ("info", 6),
    ("debug", 7),
];

// =========================================================== list form ==

/// How `-L` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListOpts {
    pub verbose: bool,
    pub numeric: bool,
    pub exact: bool,
    pub line_numbers: bool,
}

/// `xtables_print_num`: counters, `K`/`M`/`G`/`T`-scaled unless exact.
pub fn print_num(n: u64, o: &ListOpts, table: bool, out: &mut String) {
    if o.exact {
        if table {
            let _ = write!(out, "{n:8} ");
        } else {
            let _ = write!(out, "{n} ");
        }
        return;
    }
    if n <= 99999 {
        if table {
            let _ = write!(out, "{n:5} ");
        } else {
            let _ = write!(out, "{n} ");
        }
        return;
    }
    let mut v = n;
    for unit in ['K', 'M', 'G'] {
        v = (v + 500) / 1000;
        if v <= 9999 {
            if table {
                let _ = write!(out, "{v:4}{unit} ");
            } else {
                let _ = write!(out, "{v}{unit} ");
            }
            return;
        }
    }
    v = (v + 500) / 1000;
    if table {
        let _ = write!(out, "{v:4}T ");
    } else {
        let _ = write!(out, "{v}T ");
    }
}

/// The `Chain X (...)` line and the column header.
pub fn list_header(chain: &Chain, refs: usize, o: &ListOpts, out: &mut String) {
    let _ = write!(out, "Chain {}", chain.name);
    if chain.builtin() {
        let _ = write!(out, " (policy {}", chain.policy.as_str());
        if o.verbose {
            out.push(' ');
            print_num(chain.packets, o, false, out);
            out.push_str("packets, ");
            print_num(chain.bytes, o, false, out);
            out.push_str("bytes");
        }
        out.push_str(")\n");
    } else {
        let _ = writeln!(out, " ({refs} references)");
    }
    if o.line_numbers {
        out.push_str("num  ");
    }
    if o.verbose {
        if o.exact {
            out.push_str("    pkts      bytes ");
        } else {
            out.push_str(" pkts bytes ");
        }
    }
    out.push_str("target     prot opt ");
    if o.verbose {
        out.push_str("in     out     ");
    }
    out.push_str("source               destination         \n");
}

fn list_addr(n: &Ipv4Net, inverted: bool, numeric: bool, out: &mut String) {
    out.push(if inverted { '!' } else { ' ' });
    let s = if n.len == 0 {
        if numeric {
            "0.0.0.0/0".to_string()
        } else {
            "anywhere".to_string()
        }
    } else if n.len == 32 {
        n.addr.to_string()
    } else {
        format!("{}/{}", n.addr, n.len)
    };
    let _ = write!(out, "{s:<19} ");
}

fn list_port(p: u16, proto: u8, numeric: bool, out: &mut String) {
    match (numeric, service_name(p, proto)) {
        (false, Some(n)) => out.push_str(n),
        _ => {
            let _ = write!(out, "{p}");
        }
    }
}

fn list_ports(label: &str, r: PortRange, i: bool, proto: u8, numeric: bool, out: &mut String) {
    if r.lo == r.hi {
        let _ = write!(out, " {label}pt:{}", if i { "!" } else { "" });
        list_port(r.lo, proto, numeric, out);
    } else {
        let _ = write!(out, " {label}pts:{}", if i { "!" } else { "" });
        list_port(r.lo, proto, numeric, out);
        out.push(':');
        list_port(r.hi, proto, numeric, out);
    }
}

pub fn list_match(m: &Match, numeric: bool, out: &mut String) {
    match m {
        Match::Tcp(t) => {
            out.push_str(" tcp");
            if let Some((r, i)) = t.sport {
                list_ports("s", r, i, 6, numeric, out);
            }
            if let Some((r, i)) = t.dport {
                list_ports("d", r, i, 6, numeric, out);
            }
            if let Some((o, i)) = t.option {
                let _ = write!(out, " option={}{o}", if i { "!" } else { "" });
            }
            if let Some((mask, cmp, i)) = t.flags {
                out.push_str(" flags:");
                if i {
                    out.push('!');
                }
                if numeric {
                    let _ = write!(out, "0x{mask:02X}/0x{cmp:02X}");
                } else {
                    tcp_flag_names(mask, out);
                    out.push('/');
                    tcp_flag_names(cmp, out);
                }
            }
        }
        Match::Udp(u) => {
            out.push_str(" udp");
            if let Some((r, i)) = u.sport {
                list_ports("s", r, i, 17, numeric, out);
            }
            if let Some((r, i)) = u.dport {
                list_ports("d", r, i, 17, numeric, out);
            }
        }
        Match::Icmp(c) => {
            out.push_str(" icmp");
            if !numeric
                && let Some((n, ..)) = ICMP_TYPES
                    .iter()
                    .find(|(_, t, lo, hi)| *t == c.ty && (*lo, *hi) == c.code)
            {
                let _ = write!(out, " {}{n}", if c.inv { "!" } else { "" });
                return;
            }
            if c.inv {
                out.push_str(" !");
            }
            let _ = write!(out, "type {}", c.ty);
            if c.code.0 == c.code.1 {
                let _ = write!(out, " code {}", c.code.0);
            } else if c.code != (0, 255) {
                let _ = write!(out, " codes {}-{}", c.code.0, c.code.1);
            }
        }
        Match::Conntrack(c) => {
            if let Some((s, i)) = c.state {
                inv(i, out);
                out.push_str(" ctstate ");
                ct_states(s, out);
            }
            for (v, name) in [
                (&c.origsrc, "ctorigsrc"),
                (&c.origdst, "ctorigdst"),
                (&c.replsrc, "ctreplsrc"),
                (&c.repldst, "ctrepldst"),
            ] {
                if let Some((n, i)) = v {
                    inv(*i, out);
                    let _ = write!(out, " {name} ");
                    ct_net(n, out);
                }
            }
            if let Some((s, i)) = c.status {
                inv(i, out);
                out.push_str(" ctstatus ");
                ct_status(s, out);
            }
        }
        Match::State { bits, inv: i } => {
            inv(*i, out);
            out.push_str(" state ");
            ct_states(*bits, out);
        }
        Match::Comment(c) => {
            let _ = write!(out, " /* {c} */");
        }
        Match::Mark {
            value,
            mask,
            inv: i,
        } => {
            out.push_str(" mark match");
            inv(*i, out);
            let _ = write!(out, " {value:#x}");
            if *mask != u32::MAX {
                let _ = write!(out, "/{mask:#x}");
            }
        }
        Match::Connmark {
            value,
            mask,
            inv: i,
        } => {
            out.push_str(" connmark match ");
            if *i {
                out.push('!');
            }
            let _ = write!(out, " {value:#x}");
            if *mask != u32::MAX {
                let _ = write!(out, "/{mask:#x}");
            }
        }
        Match::Multiport(mp) => {
            out.push_str(match mp.kind {
                MpKind::Src => " multiport sports ",
                MpKind::Dst => " multiport dports ",
                MpKind::Any => " multiport ports ",
            });
            if mp.inv {
                out.push_str(" !");
            }
            for (k, r) in mp.ports.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                // multiport prints service names for the rule's protocol; the
                // protocol is not known here, tcp's names are used.
                list_port(r.lo, 6, numeric, out);
                if r.hi != r.lo {
                    out.push(':');
                    list_port(r.hi, 6, numeric, out);
                }
            }
        }
        Match::Addrtype(a) => {
            out.push_str(" ADDRTYPE match");
            if let Some((t, i)) = a.src {
                out.push_str(" src-type ");
                if i {
                    out.push('!');
                }
                addr_types(t, out);
            }
            if let Some((t, i)) = a.dst {
                out.push_str(" dst-type ");
                if i {
                    out.push('!');
                }
                addr_types(t, out);
            }
            if a.limit_in {
                out.push_str(" limit-in");
            }
            if a.limit_out {
                out.push_str(" limit-out");
            }
        }
        Match::Statistic(s) => {
            out.push_str(" statistic");
            stat_text(s, "", out);
        }
    }
}

fn xmark_list(what: &str, value: u32, mask: u32, out: &mut String) {
    if value == 0 {
        let _ = write!(out, " {what} and {:#x}", !mask);
    } else if value == mask {
        let _ = write!(out, " {what} or {value:#x}");
    } else if mask == 0 {
        let _ = write!(out, " {what} xor {value:#x}");
    } else if mask == u32::MAX {
        let _ = write!(out, " {what} set {value:#x}");
    } else {
        let _ = write!(out, " {what} xset {value:#x}/{mask:#x}");
    }
}

pub fn list_target(t: &Target, numeric: bool, out: &mut String) {
    match t {
        Target::Reject(w) => {
            let _ = write!(out, " reject-with {}", w.name());
        }
        Target::Log(l) => {
            if numeric {
                let _ = write!(out, " LOG flags {} level {}", l.flags, l.level);
            } else {
                const NAMES: [&str; 8] = [
                    "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
                ];
                let _ = write!(out, " LOG level {}", NAMES[(l.level & 7) as usize]);
                for (bit, name) in LOG_FLAGS {
                    if l.flags & bit != 0 {
                        let _ = write!(out, " {}", name.trim_start_matches("log-"));
                    }
                }
            }
            if let Some(p) = &l.prefix {
                let _ = write!(out, " prefix \"{p}\"");
            }
        }
        Target::Mark { value, mask } => xmark_list("MARK", *value, *mask, out),
        Target::Connmark(op) => match *op {
            ConnmarkOp::Set { value, mask } => xmark_list("CONNMARK", value, mask, out),
            ConnmarkOp::Save { nfmask, ctmask } => {
                if nfmask == u32::MAX && ctmask == u32::MAX {
                    out.push_str(" CONNMARK save");
                } else if nfmask == ctmask {
                    let _ = write!(out, " CONNMARK save mask {nfmask:#x}");
                } else {
                    let _ = write!(out, " CONNMARK save nfmask {nfmask:#x} ctmask ~{ctmask:#x}");
                }
            }
            ConnmarkOp::Restore { nfmask, ctmask } => {
                if nfmask == u32::MAX && ctmask == u32::MAX {
                    out.push_str(" CONNMARK restore");
                } else if nfmask == ctmask {
                    let _ = write!(out, " CONNMARK restore mask {ctmask:#x}");
                } else {
                    let _ = write!(
                        out,
                        " CONNMARK restore ctmask {ctmask:#x} nfmask ~{nfmask:#x}"
                    );
                }
            }
        },
        Target::Snat(n) | Target::Dnat(n) => {
            out.push_str(" to:");
            nat_range_text(n, out);
            nat_flags_list(n, out);
        }
        Target::Masquerade(n) => {
            if let Some(p) = n.ports {
                out.push_str(" masq ports: ");
                ports_text(p, out);
            }
            nat_flags_list(n, out);
        }
        Target::Redirect(n) => {
            if let Some(p) = n.ports {
                out.push_str(" redir ports ");
                ports_text(p, out);
            }
            nat_flags_list(n, out);
        }
        Target::Tcpmss(Some(m)) => {
            let _ = write!(out, " TCPMSS set {m}");
        }
        Target::Tcpmss(None) => out.push_str(" TCPMSS clamp to PMTU"),
        Target::Notrack => out.push_str(" NOTRACK"),
        Target::CtNotrack => out.push_str(" CT notrack"),
        _ => {}
    }
}

/// One rule as a line of `iptables -L`.
pub fn list_rule(r: &Rule, num: usize, o: &ListOpts, out: &mut String) {
    if o.line_numbers {
        let _ = write!(out, "{num:<4} ");
    }
    if o.verbose {
        print_num(r.packets, o, true, out);
        print_num(r.bytes, o, true, out);
    }
    // nf_tables lists NOTRACK as the CT expression it becomes.
    let tname = match &r.target {
        Target::Notrack => "CT",
        t => t.name(),
    };
    let _ = write!(out, "{tname:<9} ");
    out.push(if r.ip.proto_inv { '!' } else { ' ' });
    if o.numeric {
        let _ = write!(out, "{:<4} ", r.ip.proto);
    } else {
        let n = if r.ip.proto == 0 {
            "all".to_string()
        } else {
            proto_name(r.ip.proto)
                .map(str::to_string)
                .unwrap_or_else(|| r.ip.proto.to_string())
        };
        let _ = write!(out, "{n:<4} ");
    }
    out.push_str(match r.ip.frag {
        None => "-- ",
        Some(false) => "-f ",
        Some(true) => "!f ",
    });
    if o.verbose {
        let iface = |i: &Option<IfName>, inv: bool| match i {
            None => "*".to_string(),
            Some(n) => format!("{}{n}", if inv { "!" } else { "" }),
        };
        let _ = write!(out, " {:<6} ", iface(&r.ip.iif, r.ip.iif_inv));
        let _ = write!(out, "{:<6} ", iface(&r.ip.oif, r.ip.oif_inv));
    }
    list_addr(&r.ip.src, r.ip.src_inv, o.numeric, out);
    list_addr(&r.ip.dst, r.ip.dst_inv, o.numeric, out);
    if matches!(r.target, Target::Goto(_)) {
        out.push_str("[goto] ");
    }
    for m in &r.matches {
        list_match(m, o.numeric, out);
    }
    list_target(&r.target, o.numeric, out);
    out.push('\n');
}

/// Chains of a table by name, for callers that want a map view.
pub fn chain_map(t: &Table) -> IndexMap<String, &Chain> {
    t.list_order()
        .into_iter()
        .map(|s| (t.chain(s).name.to_string(), t.chain(s)))
        .collect()
}
