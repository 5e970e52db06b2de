//! Parsing `iptables` arguments as iptables v1.8.9 (nf_tables) parses them,
//! with its error messages.

use std::net::Ipv4Addr;
use std::sync::Arc;

use sim_core::net::Ipv4Net;

use super::rules::*;

/// An iptables error, printed by the caller for `iptables` or `iptables-restore`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IptError {
    /// A parameter problem: `iptables v1.8.9 (nf_tables): MSG`, then (if
    /// `try_line`) ``Try `iptables -h' ...``.
    Param { msg: String, try_line: bool },
    /// The ruleset's answer: `iptables: MSG` (`iptables-restore: line N failed: MSG`).
    Kernel {
        msg: String,
        cli_suffix: &'static str,
    },
    /// An nf_tables batch failure:
    /// `iptables v1.8.9 (nf_tables):  RULE_APPEND failed (Invalid argument): rule in chain X`.
    Batch {
        op: &'static str,
        errno: &'static str,
        what: String,
    },
    /// A message iptables prints without its name (`Bad argument `X'`),
    /// then the Try line.
    Plain(String),
}

impl IptError {
    pub fn param(msg: impl Into<String>) -> IptError {
        IptError::Param {
            msg: msg.into(),
            try_line: true,
        }
    }
    pub fn bare(msg: impl Into<String>) -> IptError {
        IptError::Param {
            msg: msg.into(),
            try_line: false,
        }
    }
    pub fn kernel(msg: impl Into<String>) -> IptError {
        IptError::Kernel {
            msg: msg.into(),
            cli_suffix: "",
        }
    }
    pub fn no_chain() -> IptError {
        IptError::kernel("No chain/target/match by that name.")
    }

    /// As `iptables` prints it.
    pub fn cli(&self) -> String {
        match self {
            IptError::Param { msg, try_line } => {
                let mut s = format!("iptables v1.8.9 (nf_tables): {msg}");
                if *try_line {
                    s.push_str("\nTry `iptables -h' or 'iptables --help' for more information.");
                }
                s
            }
            IptError::Kernel { msg, cli_suffix } => format!("iptables: {msg}{cli_suffix}"),
            IptError::Batch { op, errno, what } => {
                format!("iptables v1.8.9 (nf_tables):  {op} failed ({errno}): {what}")
            }
            IptError::Plain(msg) => {
                format!("{msg}\nTry `iptables -h' or 'iptables --help' for more information.")
            }
        }
    }

    /// As `iptables-restore` prints it for input line `line`.
    pub fn restore(&self, line: usize) -> String {
        match self {
            IptError::Param { msg, .. } => format!(
                "iptables-restore v1.8.9 (nf_tables): {msg}\nError occurred at line: {line}\nTry `iptables-restore -h' or 'iptables-restore --help' for more information."
            ),
            IptError::Kernel { msg, .. } => format!("iptables-restore: line {line} failed: {msg}"),
            IptError::Batch { errno, .. } => {
                format!("iptables-restore: line {line} failed: {errno}.")
            }
            IptError::Plain(msg) => format!(
                "{msg}\nError occurred at line: {line}\nTry `iptables-restore -h' or 'iptables-restore --help' for more information."
            ),
        }
    }
}

type PResult<T> = Result<T, IptError>;

/// The command of an iptables invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Append,
    Check,
    Delete,
    Insert,
    Replace,
    List,
    ListRules,
    Flush,
    Zero,
    NewChain,
    DeleteChain,
    Policy,
    Rename,
}

impl Op {
    fn letter(self) -> char {
        match self {
            Op::Append => 'A',
            Op::Check => 'C',
            Op::Delete => 'D',
            Op::Insert => 'I',
            Op::Replace => 'R',
            Op::List => 'L',
            Op::ListRules => 'S',
            Op::Flush => 'F',
            Op::Zero => 'Z',
            Op::NewChain => 'N',
            Op::DeleteChain => 'X',
            Op::Policy => 'P',
            Op::Rename => 'E',
        }
    }
    fn takes_rule(self) -> bool {
        matches!(
            self,
            Op::Append | Op::Check | Op::Delete | Op::Insert | Op::Replace
        )
    }
}

/// A rule's target before chain names are resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DraftTarget {
    None,
    /// ACCEPT, DROP, RETURN or an extension target.
    Builtin(Target),
    /// `-j NAME`: a user chain (resolved when the rule is added).
    Jump(String),
    /// `-g NAME`.
    Goto(String),
}

/// A parsed rule specification.
#[derive(Clone, Debug)]
pub struct Draft {
    /// Source and destination lists (`-s a,b` makes one rule per address).
    pub srcs: Vec<Ipv4Net>,
    pub dsts: Vec<Ipv4Net>,
    pub ip: IpSpec,
    pub matches: Vec<Match>,
    pub target: DraftTarget,
}

/// A parsed iptables command line.
#[derive(Clone, Debug)]
pub struct Cmd {
    pub table: TableKind,
    pub op: Op,
    pub chain: Option<String>,
    pub rulenum: Option<usize>,
    /// `-P CHAIN POLICY` / `-E OLD NEW`.
    pub arg2: Option<String>,
    pub rule: Option<Draft>,
    pub list: ListOpts,
    /// `-L -Z`: list, then zero.
    pub zero_too: bool,
    pub counters: Option<(u64, u64)>,
}

/// Targets podpath knows of but does not model.
const UNMODELLED_TARGETS: &[&str] = &[
    "AUDIT",
    "CHECKSUM",
    "CLASSIFY",
    "CLUSTERIP",
    "CONNSECMARK",
    "DSCP",
    "ECN",
    "HMARK",
    "IDLETIMER",
    "LED",
    "NETMAP",
    "NFLOG",
    "NFQUEUE",
    "QUEUE",
    "RATEEST",
    "SECMARK",
    "SET",
    "SYNPROXY",
    "TEE",
    "TOS",
    "TPROXY",
    "TTL",
    "ULOG",
];

/// Matches podpath knows of but does not model.
const UNMODELLED_MATCHES: &[&str] = &[
    "bpf",
    "cgroup",
    "cluster",
    "connbytes",
    "connlabel",
    "connlimit",
    "cpu",
    "dccp",
    "devgroup",
    "dscp",
    "ecn",
    "esp",
    "hashlimit",
    "helper",
    "iprange",
    "ipvs",
    "length",
    "limit",
    "mac",
    "nfacct",
    "osf",
    "owner",
    "physdev",
    "pkttype",
    "policy",
    "quota",
    "rateest",
    "realm",
    "recent",
    "rpfilter",
    "sctp",
    "set",
    "socket",
    "string",
    "tcpmss",
    "time",
    "tos",
    "ttl",
    "u32",
    "udplite",
];

struct Args<'a> {
    v: &'a [String],
    i: usize,
}

impl<'a> Args<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let a = self.v.get(self.i).map(String::as_str);
        if a.is_some() {
            self.i += 1;
        }
        a
    }
    fn peek(&self) -> Option<&'a str> {
        self.v.get(self.i).map(String::as_str)
    }
    /// The option's argument.
    fn arg(&mut self, opt: &str) -> PResult<&'a str> {
        self.next()
            .ok_or_else(|| IptError::param(format!("option \"{opt}\" requires an argument")))
    }
    /// An optional argument: the next word if it does not look like an option.
    fn optional(&mut self) -> Option<&'a str> {
        match self.peek() {
            Some(w) if !w.starts_with('-') && w != "!" => self.next(),
            _ => None,
        }
    }
}

fn ext_err(ext: &str, msg: String) -> IptError {
    IptError::param(format!("{ext}: {msg}\n"))
}

/// `a.b.c.d[/len|/mask]`, the address masked to its network.
pub fn parse_net(s: &str) -> PResult<Ipv4Net> {
    let bad = || IptError::param(format!("host/network `{s}' not found"));
    let (a, m) = match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    };
    let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
    let len = match m {
        None => 32,
        Some(m) if m.contains('.') => {
            let mask: Ipv4Addr = m
                .parse()
                .map_err(|_| IptError::param(format!("invalid mask `{m}' specified")))?;
            let bits = u32::from(mask);
            let len = bits.leading_ones();
            if bits.checked_shl(len).unwrap_or(0) != 0 {
                return Err(IptError::param(format!(
                    "invalid mask `{m}' specified (podpath models contiguous masks only)"
                )));
            }
            len as u8
        }
        Some(m) => match m.parse::<u8>() {
            Ok(n) if n <= 32 => n,
            _ => return Err(IptError::param(format!("invalid mask `{m}' specified"))),
        },
    };
    Ok(Ipv4Net { addr, len }.network())
}

fn parse_proto(s: &str) -> PResult<u8> {
    let l = s.to_ascii_lowercase();
    if l == "all" {
        return Ok(0);
    }
    if let Ok(n) = l.parse::<u8>() {
        return Ok(n);
    }
    PROTOCOLS
        .iter()
        .find(|(n, _)| *n == l)
        .map(|(_, p)| *p)
        .ok_or_else(|| IptError::param(format!("unknown protocol \"{s}\" specified")))
}

fn parse_port(s: &str, proto: u8) -> PResult<u16> {
    if let Ok(n) = s.parse::<u32>() {
        if n <= 65535 {
            return Ok(n as u16);
        }
    } else if let Some(p) = service_port(s, proto) {
        return Ok(p);
    }
    Err(IptError::param(format!(
        "invalid port/service `{s}' specified"
    )))
}

fn parse_port_range(s: &str, proto: u8) -> PResult<PortRange> {
    match s.split_once(':') {
        None => {
            let p = parse_port(s, proto)?;
            Ok(PortRange { lo: p, hi: p })
        }
        Some((a, b)) => {
            let lo = if a.is_empty() {
                0
            } else {
                parse_port(a, proto)?
            };
            let hi = if b.is_empty() {
                65535
            } else {
                parse_port(b, proto)?
            };
            if lo > hi {
                return Err(IptError::param(format!(
                    "invalid portrange ({lo}:{hi}) specified"
                )));
            }
            Ok(PortRange { lo, hi })
        }
    }
}

/// strtoul with base 0 (0x.., 0.., decimal).
fn parse_u32(s: &str) -> Option<u32> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

fn parse_markmask(ext: &str, opt: &str, s: &str) -> PResult<(u32, u32)> {
    let bad = || {
        ext_err(
            ext,
            format!("bad integer value for option \"{opt}\", or out of range."),
        )
    };
    match s.split_once('/') {
        Some((v, m)) => Ok((parse_u32(v).ok_or_else(bad)?, parse_u32(m).ok_or_else(bad)?)),
        None => Ok((parse_u32(s).ok_or_else(bad)?, u32::MAX)),
    }
}

fn parse_tcp_flags(s: &str) -> PResult<u8> {
    let mut v = 0u8;
    for f in s.split(',') {
        v |= match f.to_ascii_uppercase().as_str() {
            "ALL" => 0x3f,
            "NONE" => 0,
            u => TCP_FLAGS
                .iter()
                .find(|(n, _)| *n == u)
                .map(|(_, b)| *b)
                .ok_or_else(|| IptError::param(format!("Unknown TCP flag `{f}'")))?,
        };
    }
    Ok(v)
}

fn parse_ct_states(s: &str, what: &str) -> PResult<u16> {
    let mut v = 0;
    for w in s.split(',') {
        v |= CT_STATES
            .iter()
            .find(|(n, _)| *n == w)
            .map(|(_, b)| *b)
            .ok_or_else(|| IptError::param(format!("Bad {what} \"{w}\"")))?;
    }
    Ok(v)
}

fn parse_addr_types(s: &str) -> PResult<u16> {
    let mut v = 0;
    for w in s.split(',') {
        let i = ADDR_TYPES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(w))
            .ok_or_else(|| IptError::param(format!("addrtype: bad type `{w}'")))?;
        v |= 1 << i;
    }
    Ok(v)
}

/// lround(2^31 * p) of a decimal probability in [0, 1].
fn parse_probability(s: &str) -> PResult<u32> {
    let bad = || {
        ext_err(
            "statistic",
            "bad value for option \"--probability\", or out of range (0-1).".into(),
        )
    };
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    if (i.is_empty() && f.is_empty())
        || !i.bytes().all(|b| b.is_ascii_digit())
        || !f.bytes().all(|b| b.is_ascii_digit())
        || f.len() > 30
    {
        return Err(bad());
    }
    let ip: u128 = if i.is_empty() {
        0
    } else {
        i.parse().map_err(|_| bad())?
    };
    if ip > 1 {
        return Err(bad());
    }
    let fp: u128 = if f.is_empty() {
        0
    } else {
        f.parse().map_err(|_| bad())?
    };
    let den = 10u128.pow(f.len() as u32);
    let num = ip * den + fp;
    if num > den {
        return Err(bad());
    }
    Ok((((num << 32) / den + 1) >> 1) as u32)
}

fn parse_icmp_type(s: &str) -> PResult<(u8, (u8, u8))> {
    if let Some((_, t, lo, hi)) = ICMP_TYPES.iter().find(|(n, ..)| *n == s) {
        return Ok((*t, (*lo, *hi)));
    }
    let bad = || IptError::param(format!("Invalid ICMP type `{s}'\n"));
    let (t, c) = match s.split_once('/') {
        Some((t, c)) => (t, Some(c)),
        None => (s, None),
    };
    let t: u8 = t.parse().map_err(|_| bad())?;
    let code = match c {
        Some(c) => {
            let c: u8 = c.parse().map_err(|_| bad())?;
            (c, c)
        }
        None => (0, 255),
    };
    Ok((t, code))
}

fn parse_nat_range(s: &str, ext: &str, port_ok: bool) -> PResult<NatSpec> {
    let bad = |what: &str| IptError::param(format!("Bad IP address \"{what}\""));
    let (a, p) = match s.rsplit_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let mut n = NatSpec::default();
    if !a.is_empty() {
        let (lo, hi) = match a.split_once('-') {
            Some((lo, hi)) => (lo, hi),
            None => (a, a),
        };
        let lo: Ipv4Addr = lo.parse().map_err(|_| bad(lo))?;
        let hi: Ipv4Addr = hi.parse().map_err(|_| bad(hi))?;
        n.addrs = Some((lo, hi));
    }
    if let Some(p) = p {
        if !port_ok {
            return Err(IptError::param(
                "Need TCP, UDP, SCTP or DCCP with port specification",
            ));
        }
        let (lo, hi) = match p.split_once('-') {
            Some((lo, hi)) => (lo, hi),
            None => (p, p),
        };
        let bad_port = || IptError::param(format!("Port `{p}' not valid\n"));
        let lo: u16 = lo.parse().map_err(|_| bad_port())?;
        let hi: u16 = hi.parse().map_err(|_| bad_port())?;
        if lo == 0 || hi < lo {
            return Err(bad_port());
        }
        n.ports = Some((lo, hi));
    }
    if n.addrs.is_none() && n.ports.is_none() {
        return Err(ext_err(ext, format!("Bad IP address \"{s}\"")));
    }
    Ok(n)
}

fn parse_ports_opt(s: &str) -> PResult<(u16, u16)> {
    let bad = || IptError::param(format!("Port \"{s}\" not valid\n"));
    let (lo, hi) = match s.split_once('-') {
        Some((lo, hi)) => (lo, hi),
        None => (s, s),
    };
    let lo: u16 = lo.parse().map_err(|_| bad())?;
    let hi: u16 = hi.parse().map_err(|_| bad())?;
    if hi < lo {
        return Err(bad());
    }
    Ok((lo, hi))
}

/// Offers option `opt` to match `m`: None if the match has no such option.
fn match_option(
    m: &mut Match,
    opt: &str,
    inv: bool,
    args: &mut Args,
    proto: u8,
) -> Option<PResult<()>> {
    let r = (|| -> PResult<bool> {
        match m {
            Match::Tcp(t) => match opt {
                "--sport" | "--source-port" => {
                    t.sport = Some((parse_port_range(args.arg(opt)?, 6)?, inv))
                }
                "--dport" | "--destination-port" => {
                    t.dport = Some((parse_port_range(args.arg(opt)?, 6)?, inv))
                }
                "--tcp-flags" => {
                    fn arg<'a>(args: &mut Args<'a>) -> Option<&'a str> {
                        match args.peek() {
                            Some(w) if !w.starts_with('-') && !w.starts_with('!') => args.next(),
                            _ => None,
                        }
                    }
                    let (Some(a), Some(b)) = (arg(args), arg(args)) else {
                        return Err(IptError::param("--tcp-flags requires two args."));
                    };
                    t.flags = Some((parse_tcp_flags(a)?, parse_tcp_flags(b)?, inv));
                }
                "--syn" => t.flags = Some((0x17, 0x02, inv)),
                "--tcp-option" => {
                    let v = args.arg(opt)?;
                    let n: u8 = v
                        .parse()
                        .map_err(|_| IptError::param(format!("Unknown TCP option `{v}'")))?;
                    t.option = Some((n, inv));
                }
                _ => return Ok(false),
            },
            Match::Udp(u) => match opt {
                "--sport" | "--source-port" => {
                    u.sport = Some((parse_port_range(args.arg(opt)?, 17)?, inv))
                }
                "--dport" | "--destination-port" => {
                    u.dport = Some((parse_port_range(args.arg(opt)?, 17)?, inv))
                }
                _ => return Ok(false),
            },
            Match::Icmp(c) => match opt {
                "--icmp-type" => {
                    let (t, code) = parse_icmp_type(args.arg(opt)?)?;
                    c.ty = t;
                    c.code = code;
                    c.inv = inv;
                }
                _ => return Ok(false),
            },
            Match::Conntrack(c) => match opt {
                "--ctstate" => c.state = Some((parse_ct_states(args.arg(opt)?, "ctstate")?, inv)),
                "--ctorigsrc" => c.origsrc = Some((parse_net(args.arg(opt)?)?, inv)),
                "--ctorigdst" => c.origdst = Some((parse_net(args.arg(opt)?)?, inv)),
                "--ctreplsrc" => c.replsrc = Some((parse_net(args.arg(opt)?)?, inv)),
                "--ctrepldst" => c.repldst = Some((parse_net(args.arg(opt)?)?, inv)),
                "--ctstatus" => {
                    let v = args.arg(opt)?;
                    let mut bits = 0;
                    for w in v.split(',') {
                        bits |= CT_STATUS
                            .iter()
                            .find(|(n, _)| *n == w)
                            .map(|(_, b)| *b)
                            .ok_or_else(|| IptError::param(format!("Bad ctstatus \"{w}\"")))?;
                    }
                    c.status = Some((bits, inv));
                }
                _ => return Ok(false),
            },
            Match::State { bits, inv: i } => match opt {
                "--state" => {
                    let v = args.arg(opt)?;
                    let b = parse_ct_states(v, "state")?;
                    if b & (ST_SNAT | ST_DNAT) != 0 {
                        return Err(IptError::param(format!("Bad state \"{v}\"")));
                    }
                    *bits = b;
                    *i = inv;
                }
                _ => return Ok(false),
            },
            Match::Comment(c) => match opt {
                "--comment" => {
                    let v = args.arg(opt)?;
                    if v.len() > 255 {
                        return Err(ext_err(
                            "comment",
                            "option \"--comment\" must not be longer than 256 characters".into(),
                        ));
                    }
                    *c = Arc::from(v);
                }
                _ => return Ok(false),
            },
            Match::Mark {
                value,
                mask,
                inv: i,
            } => match opt {
                "--mark" => {
                    (*value, *mask) = parse_markmask("mark", opt, args.arg(opt)?)?;
                    *i = inv;
                }
                _ => return Ok(false),
            },
            Match::Connmark {
                value,
                mask,
                inv: i,
            } => match opt {
                "--mark" => {
                    (*value, *mask) = parse_markmask("connmark", opt, args.arg(opt)?)?;
                    *i = inv;
                }
                _ => return Ok(false),
            },
            Match::Multiport(mp) => {
                let kind = match opt {
                    "--sports" | "--source-ports" => MpKind::Src,
                    "--dports" | "--destination-ports" => MpKind::Dst,
                    "--ports" => MpKind::Any,
                    _ => return Ok(false),
                };
                if proto != 6 && proto != 17 {
                    return Err(IptError::param(
                        "multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'",
                    ));
                }
                let v = args.arg(opt)?;
                let mut ports = Vec::new();
                let mut count = 0;
                for p in v.split(',') {
                    let r = parse_port_range(p, proto)?;
                    count += if r.lo == r.hi { 1 } else { 2 };
                    ports.push(r);
                }
                if count > 15 {
                    return Err(IptError::param("too many ports specified"));
                }
                mp.kind = kind;
                mp.ports = ports;
                mp.inv = inv;
            }
            Match::Addrtype(a) => match opt {
                "--src-type" => a.src = Some((parse_addr_types(args.arg(opt)?)?, inv)),
                "--dst-type" => a.dst = Some((parse_addr_types(args.arg(opt)?)?, inv)),
                "--limit-iface-in" => a.limit_in = true,
                "--limit-iface-out" => a.limit_out = true,
                _ => return Ok(false),
            },
            Match::Statistic(s) => match opt {
                "--mode" => {
                    let v = args.arg(opt)?;
                    let i = match s {
                        StatMatch::Random { inv, .. } | StatMatch::Nth { inv, .. } => *inv,
                    };
                    *s = match v {
                        "random" => StatMatch::Random { p: 0, inv: i },
                        "nth" => StatMatch::Nth {
                            every: u32::MAX,
                            packet: 0,
                            count: 0,
                            inv: i,
                        },
                        _ => {
                            return Err(IptError::param(format!("Bad mode \"{v}\"")));
                        }
                    };
                }
                "--probability" => {
                    let p = parse_probability(args.arg(opt)?)?;
                    match s {
                        StatMatch::Random { p: q, inv: i } => {
                            *q = p;
                            *i = inv;
                        }
                        StatMatch::Nth { .. } => {
                            return Err(IptError::param(
                                "--probability can only be used in random mode",
                            ));
                        }
                    }
                }
                "--every" | "--packet" => {
                    let v = args.arg(opt)?;
                    let n: u32 = v.parse().map_err(|_| {
                        ext_err(
                            "statistic",
                            format!("bad value for option \"{opt}\", or out of range."),
                        )
                    })?;
                    match s {
                        StatMatch::Nth {
                            every,
                            packet,
                            inv: i,
                            ..
                        } => {
                            if opt == "--every" {
                                if n == 0 {
                                    return Err(IptError::param("--every cannot be 0"));
                                }
                                *every = n - 1;
                                *i = inv;
                            } else {
                                *packet = n;
                            }
                        }
                        StatMatch::Random { .. } => {
                            return Err(IptError::param(format!(
                                "{opt} can only be used in nth mode"
                            )));
                        }
                    }
                }
                _ => return Ok(false),
            },
        }
        Ok(true)
    })();
    match r {
        Ok(true) => Some(Ok(())),
        Ok(false) => None,
        Err(e) => Some(Err(e)),
    }
}

/// Checks a match once the line is parsed (xtables' final_check).
fn match_final(m: &mut Match) -> PResult<()> {
    match m {
        Match::Comment(c) if c.is_empty() => Err(ext_err(
            "comment",
            "option \"--comment\" must be specified".into(),
        )),
        Match::State { bits: 0, .. } => Err(ext_err(
            "state",
            "option \"--state\" must be specified".into(),
        )),
        Match::Mark {
            mask: 0, value: 0, ..
        } => Err(ext_err(
            "mark",
            "option \"--mark\" must be specified".into(),
        )),
        Match::Multiport(mp) if mp.ports.is_empty() => Err(IptError::param(
            "multiport expection an option: --sports, --dports or --ports",
        )),
        Match::Statistic(StatMatch::Nth { every, packet, .. }) => {
            if *every == u32::MAX {
                return Err(IptError::param("no --every specified"));
            }
            if *packet > *every {
                return Err(IptError::param("the --packet p must be 0 <= p <= n-1"));
            }
            if let Match::Statistic(StatMatch::Nth { count, packet, .. }) = m {
                *count = *packet;
            }
            Ok(())
        }
        Match::Addrtype(a) if a.src.is_none() && a.dst.is_none() => Err(IptError::param(
            "addrtype: you must specify --src-type or --dst-type",
        )),
        _ => Ok(()),
    }
}

fn new_match(name: &str) -> PResult<Match> {
    Ok(match name {
        "tcp" => Match::Tcp(TcpMatch::default()),
        "udp" => Match::Udp(UdpMatch::default()),
        "icmp" => Match::Icmp(IcmpMatch {
            ty: 255,
            code: (0, 255),
            inv: false,
        }),
        "conntrack" => Match::Conntrack(CtMatch::default()),
        "state" => Match::State {
            bits: 0,
            inv: false,
        },
        "comment" => Match::Comment(Arc::from("")),
        "mark" => Match::Mark {
            value: 0,
            mask: 0,
            inv: false,
        },
        "connmark" => Match::Connmark {
            value: 0,
            mask: u32::MAX,
            inv: false,
        },
        "multiport" => Match::Multiport(MultiportMatch {
            kind: MpKind::Dst,
            ports: Vec::new(),
            inv: false,
        }),
        "addrtype" => Match::Addrtype(AddrtypeMatch::default()),
        "statistic" => Match::Statistic(StatMatch::Random { p: 0, inv: false }),
        other => {
            let _ = UNMODELLED_MATCHES.contains(&other);
            return Err(IptError::param(format!(
                "Couldn't load match `{other}':No such file or directory\n"
            )));
        }
    })
}

/// A target being parsed, with the options seen.
struct TargetParse {
    name: String,
    target: DraftTarget,
    seen: Vec<&'static str>,
}

fn new_target(name: &str) -> PResult<DraftTarget> {
    Ok(DraftTarget::Builtin(match name {
        "ACCEPT" => Target::Accept,
        "DROP" => Target::Drop,
        "RETURN" => Target::Return,
        "REJECT" => Target::Reject(RejectWith::Icmp(3)),
        "LOG" => Target::Log(LogOpts {
            prefix: None,
            level: 4,
            flags: 0,
        }),
        "TRACE" => Target::Trace,
        "MARK" => Target::Mark { value: 0, mask: 0 },
        "CONNMARK" => Target::Connmark(ConnmarkOp::Set { value: 0, mask: 0 }),
        "SNAT" => Target::Snat(NatSpec::default()),
        "DNAT" => Target::Dnat(NatSpec::default()),
        "MASQUERADE" => Target::Masquerade(NatSpec::default()),
        "REDIRECT" => Target::Redirect(NatSpec::default()),
        "TCPMSS" => Target::Tcpmss(Some(0)),
        "NOTRACK" => Target::Notrack,
        "CT" => Target::CtNotrack,
        other if UNMODELLED_TARGETS.contains(&other) => {
            return Err(IptError::param(format!(
                "Couldn't load target `{other}':No such file or directory\n"
            )));
        }
        other => return Ok(DraftTarget::Jump(other.to_string())),
    }))
}

fn port_ok(proto: u8, proto_inv: bool) -> bool {
    !proto_inv && matches!(proto, 6 | 17 | 33 | 132 | 136)
}

fn target_option(
    t: &mut TargetParse,
    opt: &str,
    inv: bool,
    args: &mut Args,
    ip: &IpSpec,
) -> Option<PResult<()>> {
    let DraftTarget::Builtin(target) = &mut t.target else {
        return None;
    };
    let name = t.name.clone();
    let r = (|| -> PResult<Option<&'static str>> {
        let inv_err = || IptError::param(format!("{name}: unexpected `!' flag before --{opt}\n"));
        match target {
            Target::Reject(w) => match opt {
                "--reject-with" => {
                    let v = args.arg(opt)?;
                    let v = REJECT_ALIASES
                        .iter()
                        .find(|(a, _)| *a == v)
                        .map(|(_, n)| *n)
                        .unwrap_or(v);
                    *w = REJECT_TYPES
                        .iter()
                        .find(|(n, _)| *n == v)
                        .map(|(_, r)| *r)
                        .ok_or_else(|| IptError::param(format!("unknown reject type \"{v}\"")))?;
                    Ok(Some("reject-with"))
                }
                _ => Ok(None),
            },
            Target::Log(l) => match opt {
                "--log-prefix" => {
                    let v = args.arg(opt)?;
                    if v.len() > 29 {
                        return Err(IptError::param("Maximum prefix length 29 for --log-prefix"));
                    }
                    l.prefix = Some(Arc::from(v));
                    Ok(Some("log-prefix"))
                }
                "--log-level" => {
                    let v = args.arg(opt)?;
                    l.level = match v.parse::<u8>() {
                        Ok(n) if n <= 7 => n,
                        _ => LOG_LEVELS
                            .iter()
                            .find(|(n, _)| *n == v)
                            .map(|(_, l)| *l)
                            .ok_or_else(|| IptError::param(format!("log-level `{v}' unknown")))?,
                    };
                    Ok(Some("log-level"))
                }
                _ => match LOG_FLAGS
                    .iter()
                    .find(|(_, n)| opt.strip_prefix("--") == Some(n))
                {
                    Some((b, _)) => {
                        l.flags |= b;
                        Ok(Some("log-flag"))
                    }
                    None => Ok(None),
                },
            },
            Target::Mark { value, mask } | Target::Connmark(ConnmarkOp::Set { value, mask })
                if matches!(
                    opt,
                    "--set-mark" | "--set-xmark" | "--and-mark" | "--or-mark" | "--xor-mark"
                ) =>
            {
                if inv {
                    return Err(inv_err());
                }
                let ext = if name == "MARK" { "MARK" } else { "CONNMARK" };
                let v = args.arg(opt)?;
                match opt {
                    "--set-mark" => {
                        let (v, m) = parse_markmask(ext, opt, v)?;
                        *value = v;
                        *mask = m | v;
                    }
                    "--set-xmark" => {
                        let (v, m) = parse_markmask(ext, opt, v)?;
                        *value = v;
                        *mask = m;
                    }
                    _ => {
                        let (v, _) = parse_markmask(ext, opt, v)?;
                        (*value, *mask) = match opt {
                            "--and-mark" => (0, !v),
                            "--or-mark" => (v, v),
                            _ => (v, 0),
                        };
                    }
                }
                Ok(Some("mark"))
            }
            Target::Connmark(op) => match opt {
                "--save-mark" => {
                    *op = ConnmarkOp::Save {
                        nfmask: u32::MAX,
                        ctmask: u32::MAX,
                    };
                    Ok(Some("mark"))
                }
                "--restore-mark" => {
                    *op = ConnmarkOp::Restore {
                        nfmask: u32::MAX,
                        ctmask: u32::MAX,
                    };
                    Ok(Some("mark"))
                }
                "--mask" | "--nfmask" | "--ctmask" => {
                    let v = args.arg(opt)?;
                    let m = parse_u32(v).ok_or_else(|| {
                        ext_err(
                            "CONNMARK",
                            format!("bad integer value for option \"{opt}\", or out of range."),
                        )
                    })?;
                    match op {
                        ConnmarkOp::Save { nfmask, ctmask }
                        | ConnmarkOp::Restore { nfmask, ctmask } => {
                            if opt != "--ctmask" {
                                *nfmask = m;
                            }
                            if opt != "--nfmask" {
                                *ctmask = m;
                            }
                        }
                        ConnmarkOp::Set { .. } => {
                            return Err(IptError::param(format!(
                                "CONNMARK: {opt} requires --save-mark or --restore-mark"
                            )));
                        }
                    }
                    Ok(Some("mask"))
                }
                _ => Ok(None),
            },
            Target::Snat(n) | Target::Dnat(n) => {
                let want = if name == "SNAT" {
                    "--to-source"
                } else {
                    "--to-destination"
                };
                match opt {
                    o if o == want => {
                        let v = args.arg(opt)?;
                        let r = parse_nat_range(v, &name, port_ok(ip.proto, ip.proto_inv))?;
                        n.addrs = r.addrs;
                        n.ports = r.ports;
                        Ok(Some("to"))
                    }
                    "--random" => {
                        n.random = true;
                        Ok(Some("random"))
                    }
                    "--random-fully" => {
                        n.random_fully = true;
                        Ok(Some("random-fully"))
                    }
                    "--persistent" => {
                        n.persistent = true;
                        Ok(Some("persistent"))
                    }
                    _ => Ok(None),
                }
            }
            Target::Masquerade(n) | Target::Redirect(n) => match opt {
                "--to-ports" => {
                    let v = args.arg(opt)?;
                    if !port_ok(ip.proto, ip.proto_inv) {
                        return Err(IptError::param(
                            "Need TCP, UDP, SCTP or DCCP with port specification",
                        ));
                    }
                    n.ports = Some(parse_ports_opt(v)?);
                    Ok(Some("to-ports"))
                }
                "--random" => {
                    n.random = true;
                    Ok(Some("random"))
                }
                "--random-fully" if name == "MASQUERADE" => {
                    n.random_fully = true;
                    Ok(Some("random-fully"))
                }
                _ => Ok(None),
            },
            Target::Tcpmss(m) => match opt {
                "--set-mss" => {
                    let v = args.arg(opt)?;
                    let n: u16 = v
                        .parse()
                        .map_err(|_| IptError::param(format!("Bad TCPMSS value \"{v}\"")))?;
                    *m = Some(n);
                    Ok(Some("mss"))
                }
                "--clamp-mss-to-pmtu" => {
                    *m = None;
                    Ok(Some("mss"))
                }
                _ => Ok(None),
            },
            Target::CtNotrack => match opt {
                "--notrack" => Ok(Some("notrack")),
                _ => Ok(None),
            },
            _ => Ok(None),
        }
    })();
    match r {
        Ok(Some(k)) => {
            t.seen.push(k);
            Some(Ok(()))
        }
        Ok(None) => None,
        Err(e) => Some(Err(e)),
    }
}

fn target_final(t: &TargetParse) -> PResult<()> {
    let has = |k: &str| t.seen.contains(&k);
    match &t.target {
        DraftTarget::Builtin(Target::Mark { .. }) if !has("mark") => Err(IptError::param(
            "MARK target: Parameter --set/and/or/xor-mark is required",
        )),
        DraftTarget::Builtin(Target::Connmark(_)) if !has("mark") => {
            Err(IptError::param("CONNMARK target: No operation specified"))
        }
        DraftTarget::Builtin(Target::Snat(_)) if !has("to") => Err(ext_err(
            "SNAT",
            "option \"--to-source\" must be specified".into(),
        )),
        DraftTarget::Builtin(Target::Dnat(_)) if !has("to") => Err(ext_err(
            "DNAT",
            "option \"--to-destination\" must be specified".into(),
        )),
        DraftTarget::Builtin(Target::Tcpmss(_)) if !has("mss") => Err(IptError::param(
            "TCPMSS target: At least one parameter is required",
        )),
        DraftTarget::Builtin(Target::CtNotrack) if !has("notrack") => {
            Err(IptError::param("CT: podpath models only `-j CT --notrack'"))
        }
        _ => Ok(()),
    }
}

fn set_cmd(cur: &mut Option<Op>, op: Op) -> PResult<()> {
    match *cur {
        None => {
            *cur = Some(op);
            Ok(())
        }
        Some(Op::List) if op == Op::Zero => {
            *cur = Some(Op::List);
            Ok(())
        }
        Some(Op::Zero) if op == Op::List => {
            *cur = Some(Op::List);
            Ok(())
        }
        Some(prev) => Err(IptError::param(format!(
            "Cannot use -{} with -{}\n",
            op.letter(),
            prev.letter()
        ))),
    }
}

/// Parses the words after `iptables`. `table` is the default table (the
/// `*table` of an iptables-restore section, where `-t` is refused).
pub fn parse_cmd(words: &[String], table: Option<TableKind>) -> PResult<Cmd> {
    let mut args = Args { v: words, i: 0 };
    let mut tname: Option<String> = None;
    let mut op: Option<Op> = None;
    let mut zero_too = false;
    let mut chain: Option<String> = None;
    let mut rulenum: Option<usize> = None;
    let mut arg2: Option<String> = None;
    let mut list = ListOpts::default();
    let mut counters = None;
    let mut ip = IpSpec::default();
    let mut srcs: Vec<Ipv4Net> = Vec::new();
    let mut dsts: Vec<Ipv4Net> = Vec::new();
    let mut seen_ip: Vec<&'static str> = Vec::new();
    let mut matches: Vec<Match> = Vec::new();
    // Matches loaded implicitly by a protocol option (their index).
    let mut implicit: Vec<usize> = Vec::new();
    let mut target: Option<TargetParse> = None;
    let mut neg = false;
    while let Some(a) = args.next() {
        if a == "!" {
            if neg {
                return Err(IptError::param("multiple consecutive ! not allowed"));
            }
            neg = true;
            continue;
        }
        let inv = std::mem::take(&mut neg);
        let short = match a {
            "--append" => "-A",
            "--check" => "-C",
            "--delete" => "-D",
            "--insert" => "-I",
            "--replace" => "-R",
            "--list" => "-L",
            "--list-rules" => "-S",
            "--flush" => "-F",
            "--zero" => "-Z",
            "--new-chain" | "--new" => "-N",
            "--delete-chain" => "-X",
            "--policy" => "-P",
            "--rename-chain" => "-E",
            "--table" => "-t",
            "--source" | "--src" => "-s",
            "--destination" | "--dst" => "-d",
            "--in-interface" => "-i",
            "--out-interface" => "-o",
            "--protocol" => "-p",
            "--fragment" => "-f",
            "--jump" => "-j",
            "--goto" => "-g",
            "--match" => "-m",
            "--verbose" => "-v",
            "--numeric" => "-n",
            "--exact" => "-x",
            "--set-counters" => "-c",
            "--wait" => "-w",
            "--wait-interval" => "-W",
            "--ipv4" => "-4",
            s => s,
        };
        let cmd_op = match short {
            "-A" => Some(Op::Append),
            "-C" => Some(Op::Check),
            "-D" => Some(Op::Delete),
            "-I" => Some(Op::Insert),
            "-R" => Some(Op::Replace),
            "-L" => Some(Op::List),
            "-S" => Some(Op::ListRules),
            "-F" => Some(Op::Flush),
            "-Z" => Some(Op::Zero),
            "-N" => Some(Op::NewChain),
            "-X" => Some(Op::DeleteChain),
            "-P" => Some(Op::Policy),
            "-E" => Some(Op::Rename),
            _ => None,
        };
        if let Some(o) = cmd_op {
            if inv {
                return Err(IptError::param(format!(
                    "cannot have ! before -{}",
                    o.letter()
                )));
            }
            if op == Some(Op::List) && o == Op::Zero || op == Some(Op::Zero) && o == Op::List {
                zero_too = true;
            }
            set_cmd(&mut op, o)?;
            if zero_too && o == Op::Zero {
                continue;
            }
            match o {
                Op::Append
                | Op::Check
                | Op::Insert
                | Op::Replace
                | Op::NewChain
                | Op::Policy
                | Op::Rename => {
                    chain = Some(args.arg(a)?.to_string());
                }
                Op::Delete => chain = Some(args.arg(a)?.to_string()),
                Op::List | Op::ListRules | Op::Flush | Op::Zero | Op::DeleteChain => {
                    chain = args.optional().map(str::to_string);
                }
            }
            let num = |args: &mut Args, need: bool| -> PResult<Option<usize>> {
                match args.peek() {
                    Some(w) if w.bytes().all(|b| b.is_ascii_digit()) && !w.is_empty() => {
                        args.next();
                        let n: usize = w
                            .parse()
                            .map_err(|_| IptError::param(format!("Invalid rule number `{w}'")))?;
                        if n == 0 {
                            return Err(IptError::param(format!("Invalid rule number `{w}'")));
                        }
                        Ok(Some(n))
                    }
                    _ if need => Err(IptError::param(format!(
                        "-{} requires a rule number",
                        o.letter()
                    ))),
                    _ => Ok(None),
                }
            };
            match o {
                Op::Insert | Op::Delete => rulenum = num(&mut args, false)?,
                Op::Replace => rulenum = num(&mut args, true)?,
                Op::List | Op::ListRules | Op::Zero if chain.is_some() => {
                    rulenum = num(&mut args, false)?
                }
                Op::Policy | Op::Rename => arg2 = Some(args.arg(a)?.to_string()),
                _ => {}
            }
            continue;
        }
        match short {
            "-t" => {
                if table.is_some() {
                    return Err(IptError::param(
                        "The -t option cannot be used in iptables-restore.\n",
                    ));
                }
                if tname.is_some() {
                    return Err(IptError::param(
                        "The -t option cannot be used more than once",
                    ));
                }
                tname = Some(args.arg(a)?.to_string());
            }
            "-v" => list.verbose = true,
            "-n" => list.numeric = true,
            "-x" => list.exact = true,
            "--line-numbers" => list.line_numbers = true,
            "-4" => {}
            "-6" | "--ipv6" => {
                return Err(IptError::param("This is the IPv4 version of iptables."));
            }
            "-w" => {
                args.optional();
            }
            "-W" => {
                args.optional();
            }
            "-c" => {
                let (Some(p), Some(b)) = (args.next(), args.next()) else {
                    return Err(IptError::param("-c requires packet and byte counter"));
                };
                let p: u64 = p
                    .parse()
                    .map_err(|_| IptError::param("-c packet counter not numeric"))?;
                let b: u64 = b
                    .parse()
                    .map_err(|_| IptError::param("-c byte counter not numeric"))?;
                counters = Some((p, b));
            }
            "-s" | "-d" => {
                let flag = if short == "-s" { "-s" } else { "-d" };
                if seen_ip.contains(&flag) {
                    return Err(IptError::param(format!(
                        "multiple {flag} flags not allowed"
                    )));
                }
                seen_ip.push(flag);
                let v = args.arg(a)?;
                if v == "!" {
                    return Err(IptError::Plain(format!(
                        "Bad argument `{}'",
                        args.peek().unwrap_or("")
                    )));
                }
                let nets = v.split(',').map(parse_net).collect::<PResult<Vec<_>>>()?;
                if flag == "-s" {
                    srcs = nets;
                    ip.src_inv = inv;
                } else {
                    dsts = nets;
                    ip.dst_inv = inv;
                }
            }
            "-i" | "-o" => {
                let flag = if short == "-i" { "-i" } else { "-o" };
                if seen_ip.contains(&flag) {
                    return Err(IptError::param(format!(
                        "multiple {flag} flags not allowed"
                    )));
                }
                seen_ip.push(flag);
                let v = args.arg(a)?;
                if v.len() > 15 {
                    return Err(IptError::param(format!(
                        "interface name `{v}' must be shorter than IFNAMSIZ (15)"
                    )));
                }
                if flag == "-i" {
                    ip.iif = Some(IfName::parse(v));
                    ip.iif_inv = inv;
                } else {
                    ip.oif = Some(IfName::parse(v));
                    ip.oif_inv = inv;
                }
            }
            "-p" => {
                if seen_ip.contains(&"-p") {
                    return Err(IptError::param("multiple -p flags not allowed"));
                }
                seen_ip.push("-p");
                let v = args.arg(a)?;
                ip.proto = parse_proto(v)?;
                ip.proto_inv = inv;
                if ip.proto == 0 && inv {
                    return Err(IptError::param("rule would never match protocol"));
                }
            }
            "-f" => {
                if seen_ip.contains(&"-f") {
                    return Err(IptError::param("multiple -f flags not allowed"));
                }
                seen_ip.push("-f");
                ip.frag = Some(inv);
            }
            "-m" => {
                if inv {
                    return Err(IptError::param("unexpected ! flag before --match"));
                }
                let name = args.arg(a)?;
                // `-m tcp` after `--dport` loaded tcp implicitly reuses that match.
                if let Some(&k) = implicit.iter().find(|&&k| matches[k].name() == name) {
                    implicit.retain(|&x| x != k);
                    continue;
                }
                // Whether `-p` agrees is checked once the rule is complete,
                // as iptables-nft does when it builds the rule (`add_nft_tcp`):
                // `-m tcp -p tcp --dport 80`, kube-proxy's order, is valid.
                matches.push(new_match(name)?);
            }
            "-j" | "-g" => {
                if target.is_some() {
                    return Err(IptError::param(format!(
                        "multiple {} flags not allowed",
                        if short == "-j" { "-j" } else { "-g" }
                    )));
                }
                if inv {
                    return Err(IptError::param(format!("cannot have ! before {short}")));
                }
                let name = args.arg(a)?;
                let t = if short == "-g" {
                    DraftTarget::Goto(name.to_string())
                } else {
                    new_target(name)?
                };
                target = Some(TargetParse {
                    name: name.to_string(),
                    target: t,
                    seen: Vec::new(),
                });
            }
            opt if opt.starts_with('-') && opt.len() > 1 => {
                // Target options, then the loaded matches (latest first), then
                // the protocol's match loaded implicitly.
                if let Some(t) = target.as_mut()
                    && let Some(r) = target_option(t, opt, inv, &mut args, &ip)
                {
                    r?;
                    continue;
                }
                let mut done = false;
                for m in matches.iter_mut().rev() {
                    if let Some(r) = match_option(m, opt, inv, &mut args, ip.proto) {
                        r?;
                        done = true;
                        break;
                    }
                }
                if done {
                    continue;
                }
                let proto_match = match (ip.proto, ip.proto_inv) {
                    (6, false) => Some("tcp"),
                    (17, false) => Some("udp"),
                    (1, false) => Some("icmp"),
                    _ => None,
                };
                if let Some(pm) = proto_match
                    && !matches.iter().any(|m| m.name() == pm)
                {
                    let mut m = new_match(pm)?;
                    if let Some(r) = match_option(&mut m, opt, inv, &mut args, ip.proto) {
                        r?;
                        implicit.push(matches.len());
                        matches.push(m);
                        continue;
                    }
                }
                return Err(IptError::param(format!("unknown option \"{a}\"")));
            }
            other => {
                return Err(IptError::Plain(format!("Bad argument `{other}'")));
            }
        }
    }
    if neg {
        return Err(IptError::param("no command specified"));
    }
    let Some(op) = op else {
        return Err(IptError::param("no command specified"));
    };
    let table = match (table, tname) {
        (Some(t), _) => t,
        (None, None) => TableKind::Filter,
        (None, Some(n)) => TableKind::parse(&n).ok_or_else(|| {
            IptError::bare(format!(
                "table '{n}' does not exist\nPerhaps iptables or your kernel needs to be upgraded."
            ))
        })?,
    };
    for m in &mut matches {
        match_final(m)?;
    }
    if let Some(t) = &target {
        target_final(t)?;
    }
    for m in &matches {
        let need = match m {
            Match::Tcp(_) => Some((6, "TCP", "tcp")),
            Match::Udp(_) => Some((17, "UDP", "udp")),
            Match::Icmp(_) => Some((1, "ICMP", "icmp")),
            _ => None,
        };
        if let Some((p, n, l)) = need
            && (ip.proto != p || ip.proto_inv)
        {
            return Err(IptError::param(format!("{n} match requires '-p {l}'")));
        }
    }
    // Options that make no sense for the command.
    let has_rule_opts = !seen_ip.is_empty() || !matches.is_empty() || target.is_some();
    if has_rule_opts && !op.takes_rule() {
        let o = if !seen_ip.is_empty() {
            seen_ip[0].to_string()
        } else if !matches.is_empty() {
            "-m".into()
        } else {
            "-j".into()
        };
        return Err(IptError::param(format!(
            "Illegal option `{o}' with this command\n"
        )));
    }
    if let Some(c) = &chain {
        if c.len() > 28 {
            return Err(IptError::param(format!(
                "chain name `{c}' too long (must be under 29 chars)"
            )));
        }
        if matches!(c.as_str(), "PREROUTING" | "INPUT") && ip.oif.is_some() {
            return Err(IptError::param(format!("Can't use -o with {c}\n")));
        }
        if matches!(c.as_str(), "POSTROUTING" | "OUTPUT") && ip.iif.is_some() {
            return Err(IptError::param(format!("Can't use -i with {c}\n")));
        }
    }
    let rule = if op.takes_rule() && !(op == Op::Delete && rulenum.is_some()) {
        if srcs.is_empty() {
            srcs.push(Ipv4Net::DEFAULT);
        }
        if dsts.is_empty() {
            dsts.push(Ipv4Net::DEFAULT);
        }
        Some(Draft {
            srcs,
            dsts,
            ip,
            matches,
            target: target.map(|t| t.target).unwrap_or(DraftTarget::None),
        })
    } else {
        None
    };
    Ok(Cmd {
        table,
        op,
        chain,
        rulenum,
        arg2,
        rule,
        list,
        zero_too,
        counters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probability_round_trip() {
        // kube-proxy's 1/3 and 1/2, as iptables stores and prints them.
        let p = parse_probability("0.33333333349").unwrap();
        assert_eq!(p, 715_827_883);
        assert_eq!(probability_text(p), "0.33333333349");
        assert_eq!(
            probability_text(parse_probability("0.5").unwrap()),
            "0.50000000000"
        );
        assert_eq!(
            probability_text(parse_probability("1").unwrap()),
            "1.00000000000"
        );
        assert_eq!(
            probability_text(parse_probability("0.25").unwrap()),
            "0.25000000000"
        );
        assert!(parse_probability("2").is_err());
        assert!(parse_probability("x").is_err());
    }

    #[test]
    fn nets() {
        assert_eq!(parse_net("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(
            parse_net("10.1.2.3/255.255.0.0").unwrap().to_string(),
            "10.1.0.0/16"
        );
        assert_eq!(parse_net("1.2.3.4").unwrap().len, 32);
        assert!(parse_net("1.2.3.400").is_err());
    }
}
