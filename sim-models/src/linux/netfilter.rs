//! Netfilter (iptables) — a minimal filter table for now.
//!
//! Chains of the filter table with policies and `-A`/`-I`/`-P` rules
//! matching `-s`, `-d`, `-i`, `-o`, `-p` with ACCEPT/DROP/RETURN targets.
//! Hooks are only traversed in a namespace whose tables have been touched by
//! an iptables command, as in the kernel, where a table exists in a
//! namespace only once something uses it.

use std::net::Ipv4Addr;
use std::sync::Arc;

use indexmap::IndexMap;
use sim_core::net::Ipv4Net;
use sim_core::packet::{Header, Packet};
use sim_core::trace::{DropReason, Hook, NfVerdict, TraceEvent};

use crate::linux::{Cx, DevId, NsId, World};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Accept,
    Drop,
    Return,
    Jump(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NfRule {
    pub src: Option<(Ipv4Net, bool)>,
    pub dst: Option<(Ipv4Net, bool)>,
    pub iif: Option<(String, bool)>,
    pub oif: Option<(String, bool)>,
    pub proto: Option<(u8, bool)>,
    pub target: Target,
    /// The rule as `iptables -S` prints it (without `-A CHAIN`).
    pub text: Arc<str>,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug)]
pub struct Chain {
    /// None for user chains.
    pub policy: Option<Target>,
    pub rules: Vec<NfRule>,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Netfilter {
    /// The filter table, once instantiated.
    pub filter: Option<IndexMap<String, Chain>>,
}

/// What a packet looks like to the matcher.
pub struct NfPacket<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub iif: Option<&'a str>,
    pub oif: Option<&'a str>,
    pub len: u32,
}

impl Netfilter {
    pub fn filter_mut(&mut self) -> &mut IndexMap<String, Chain> {
        self.filter.get_or_insert_with(|| {
            let mut m = IndexMap::new();
            for c in ["INPUT", "FORWARD", "OUTPUT"] {
                m.insert(
                    c.to_string(),
                    Chain {
                        policy: Some(Target::Accept),
                        rules: vec![],
                        packets: 0,
                        bytes: 0,
                    },
                );
            }
            m
        })
    }

    pub fn hook_chain(hook: Hook) -> Option<&'static str> {
        match hook {
            Hook::Input => Some("INPUT"),
            Hook::Forward => Some("FORWARD"),
            Hook::Output => Some("OUTPUT"),
            _ => None,
        }
    }
}

impl NfRule {
    pub fn matches(&self, p: &NfPacket) -> bool {
        let neg = |m: bool, n: bool| m != n;
        self.src.is_none_or(|(net, n)| neg(net.contains(p.src), n))
            && self.dst.is_none_or(|(net, n)| neg(net.contains(p.dst), n))
            && self
                .iif
                .as_ref()
                .is_none_or(|(i, n)| neg(p.iif.is_some_and(|x| iface_match(i, x)), *n))
            && self
                .oif
                .as_ref()
                .is_none_or(|(o, n)| neg(p.oif.is_some_and(|x| iface_match(o, x)), *n))
            && self.proto.is_none_or(|(pr, n)| neg(pr == p.proto, n))
    }
}

/// iptables interface match: a trailing `+` is a prefix wildcard.
pub fn iface_match(pat: &str, name: &str) -> bool {
    match pat.strip_suffix('+') {
        Some(prefix) => name.starts_with(prefix),
        None => pat == name,
    }
}

fn ipt_err(msg: impl Into<String>) -> String {
    format!(
        "iptables v1.8.9 (nf_tables): {}\nTry `iptables -h' or 'iptables --help' for more information.",
        msg.into()
    )
}

fn parse_target(name: &str) -> Result<Target, String> {
    Ok(match name {
        "ACCEPT" => Target::Accept,
        "DROP" => Target::Drop,
        "RETURN" => Target::Return,
        other => Target::Jump(other.to_string()),
    })
}

fn proto_number(p: &str) -> Result<u8, String> {
    Ok(match p {
        "icmp" => 1,
        "tcp" => 6,
        "udp" => 17,
        "ipip" | "ipencap" => 4,
        "all" => 0,
        n => n
            .parse()
            .map_err(|_| ipt_err(format!("unknown protocol \"{n}\" specified")))?,
    })
}

/// `iptables` for the filter table: -A, -I, -D (by number), -P, -N, -X, -F, -S, -L.
/// Other tables and extensions are refused with a message naming them.
pub fn exec_iptables(nf: &mut Netfilter, args: &[String]) -> Result<String, String> {
    let mut table = "filter".to_string();
    let mut i = 0;
    let mut op: Option<(String, String)> = None;
    let mut pos: Option<usize> = None;
    let mut policy: Option<String> = None;
    let mut rule = NfRule {
        src: None,
        dst: None,
        iif: None,
        oif: None,
        proto: None,
        target: Target::Accept,
        text: "".into(),
        packets: 0,
        bytes: 0,
    };
    let mut target: Option<String> = None;
    let mut text: Vec<String> = Vec::new();
    let mut neg = false;
    while i < args.len() {
        let a = args[i].as_str();
        let next = |i: usize| {
            args.get(i + 1)
                .cloned()
                .ok_or_else(|| ipt_err(format!("option \"{a}\" requires an argument")))
        };
        match a {
            "!" => {
                neg = true;
                i += 1;
                continue;
            }
            "-t" | "--table" => {
                table = next(i)?;
                i += 1;
            }
            "-A" | "--append" | "-I" | "--insert" | "-D" | "--delete" | "-N" | "--new-chain"
            | "-X" | "--delete-chain" | "-F" | "--flush" | "-S" | "--list-rules" | "-L"
            | "--list" | "-P" | "--policy" => {
                let short = match a {
                    "--append" => "-A",
                    "--insert" => "-I",
                    "--delete" => "-D",
                    "--new-chain" => "-N",
                    "--delete-chain" => "-X",
                    "--flush" => "-F",
                    "--list-rules" => "-S",
                    "--list" => "-L",
                    "--policy" => "-P",
                    s => s,
                };
                let chain = args
                    .get(i + 1)
                    .filter(|c| !c.starts_with('-'))
                    .cloned()
                    .unwrap_or_default();
                if !chain.is_empty() {
                    i += 1;
                }
                if short == "-P" {
                    policy = Some(next(i)?);
                    i += 1;
                }
                if (short == "-I" || short == "-D")
                    && let Some(n) = args.get(i + 1).and_then(|n| n.parse::<usize>().ok())
                {
                    pos = Some(n);
                    i += 1;
                }
                op = Some((short.to_string(), chain));
            }
            "-s" | "--source" | "-d" | "--destination" => {
                let v = next(i)?;
                let net: Ipv4Net = v
                    .parse()
                    .map_err(|_| ipt_err(format!("host/network `{v}' not found")))?;
                let net = Ipv4Net {
                    addr: net.network().addr,
                    len: net.len,
                };
                let flag = if a.starts_with("-s") || a == "--source" {
                    "-s"
                } else {
                    "-d"
                };
                text.push(format!("{}{flag} {}", if neg { "! " } else { "" }, net));
                if flag == "-s" {
                    rule.src = Some((net, neg))
                } else {
                    rule.dst = Some((net, neg))
                }
                neg = false;
                i += 1;
            }
            "-i" | "--in-interface" | "-o" | "--out-interface" => {
                let v = next(i)?;
                let flag = if a == "-i" || a == "--in-interface" {
                    "-i"
                } else {
                    "-o"
                };
                text.push(format!("{}{flag} {v}", if neg { "! " } else { "" }));
                if flag == "-i" {
                    rule.iif = Some((v, neg))
                } else {
                    rule.oif = Some((v, neg))
                }
                neg = false;
                i += 1;
            }
            "-p" | "--protocol" => {
                let v = next(i)?;
                let n = proto_number(&v)?;
                text.push(format!("{}-p {v}", if neg { "! " } else { "" }));
                if n != 0 {
                    rule.proto = Some((n, neg));
                }
                neg = false;
                i += 1;
            }
            "-j" | "--jump" => {
                target = Some(next(i)?);
                i += 1;
            }
            other => {
                return Err(ipt_err(format!(
                    "option or extension \"{other}\" is not supported by podpath yet (filter table: -s -d -i -o -p -j ACCEPT|DROP|RETURN|CHAIN)"
                )));
            }
        }
        i += 1;
    }
    if table != "filter" {
        return Err(ipt_err(format!(
            "table \"{table}\" is not supported by podpath yet (only filter)"
        )));
    }
    let Some((op, chain)) = op else {
        return Err(ipt_err("no command specified"));
    };
    let tab = nf.filter_mut();
    match op.as_str() {
        "-A" | "-I" => {
            let t = target.ok_or_else(|| ipt_err("no target (-j) given"))?;
            rule.target = parse_target(&t)?;
            if let Target::Jump(c) = &rule.target
                && !tab.contains_key(c)
            {
                return Err(format!(
                    "iptables v1.8.9 (nf_tables): Couldn't load target `{c}':No such file or directory\n\nTry `iptables -h' or 'iptables --help' for more information."
                ));
            }
            text.push(format!("-j {t}"));
            rule.text = text.join(" ").into();
            let c = tab
                .get_mut(&chain)
                .ok_or_else(|| "iptables: No chain/target/match by that name.".to_string())?;
            if op == "-A" {
                c.rules.push(rule);
            } else {
                let p = pos.unwrap_or(1);
                if p == 0 || p > c.rules.len() + 1 {
                    return Err("iptables: Index of insertion too big.".into());
                }
                c.rules.insert(p - 1, rule);
            }
            Ok(String::new())
        }
        "-D" => {
            let c = tab
                .get_mut(&chain)
                .ok_or_else(|| "iptables: No chain/target/match by that name.".to_string())?;
            match pos {
                Some(p) if p >= 1 && p <= c.rules.len() => {
                    c.rules.remove(p - 1);
                    Ok(String::new())
                }
                Some(_) => Err("iptables: Index of deletion too big.".into()),
                None => {
                    text.push(format!("-j {}", target.unwrap_or_default()));
                    let t = text.join(" ");
                    match c.rules.iter().position(|r| *r.text == t) {
                        Some(p) => {
                            c.rules.remove(p);
                            Ok(String::new())
                        }
                        None => Err(
                            "iptables: Bad rule (does a matching rule exist in that chain?)."
                                .into(),
                        ),
                    }
                }
            }
        }
        "-P" => {
            let p = policy.unwrap_or_default();
            let c = tab
                .get_mut(&chain)
                .ok_or_else(|| "iptables: Bad built-in chain name.".to_string())?;
            if c.policy.is_none() {
                return Err("iptables: Bad built-in chain name.".into());
            }
            c.policy = Some(match p.as_str() {
                "ACCEPT" => Target::Accept,
                "DROP" => Target::Drop,
                _ => {
                    return Err(
                        "iptables: Bad policy name. Run `dmesg' for more information.".into(),
                    );
                }
            });
            Ok(String::new())
        }
        "-N" => {
            if tab.contains_key(&chain) {
                return Err("iptables: Chain already exists.".into());
            }
            tab.insert(
                chain,
                Chain {
                    policy: None,
                    rules: vec![],
                    packets: 0,
                    bytes: 0,
                },
            );
            Ok(String::new())
        }
        "-X" => match tab.get(&chain) {
            Some(c) if c.policy.is_none() => {
                tab.shift_remove(&chain);
                Ok(String::new())
            }
            _ => Err("iptables: No chain/target/match by that name.".into()),
        },
        "-F" => {
            for (name, c) in tab.iter_mut() {
                if chain.is_empty() || *name == chain {
                    c.rules.clear();
                }
            }
            Ok(String::new())
        }
        "-S" | "-L" => {
            let mut out = String::new();
            use std::fmt::Write as _;
            for (name, c) in tab.iter() {
                if !chain.is_empty() && *name != chain {
                    continue;
                }
                match &c.policy {
                    Some(p) => {
                        let _ = writeln!(
                            out,
                            "-P {name} {}",
                            match p {
                                Target::Drop => "DROP",
                                _ => "ACCEPT",
                            }
                        );
                    }
                    None => {
                        let _ = writeln!(out, "-N {name}");
                    }
                }
            }
            for (name, c) in tab.iter() {
                if !chain.is_empty() && *name != chain {
                    continue;
                }
                for r in &c.rules {
                    let _ = writeln!(out, "-A {name} {}", r.text);
                }
            }
            Ok(out)
        }
        _ => unreachable!(),
    }
}

impl World {
    /// Runs a netfilter hook; false if the packet was dropped.
    pub fn nf_hook(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        hook: Hook,
        pkt: &mut Packet,
        in_dev: Option<DevId>,
        out_dev: Option<DevId>,
    ) -> bool {
        let Some(chain_name) = Netfilter::hook_chain(hook) else {
            return true;
        };
        if self.namespaces[ns.ix()].nf.filter.is_none() {
            return true;
        }
        let place = self.namespaces[ns.ix()].node;
        let Some(Header::Ipv4(h)) = pkt.headers.first() else {
            return true;
        };
        let iif = in_dev.map(|d| self.devices[d.ix()].name.clone());
        let oif = out_dev.map(|d| self.devices[d.ix()].name.clone());
        let np = NfPacket {
            src: h.src,
            dst: h.dst,
            proto: u8::from(h.protocol),
            iif: iif.as_deref(),
            oif: oif.as_deref(),
            len: pkt.buffer_len() as u32,
        };
        let filter = self.namespaces[ns.ix()].nf.filter.as_mut().unwrap();
        let mut steps = Vec::new();
        let mut chain = chain_name.to_string();
        let mut stack: Vec<(String, usize)> = Vec::new();
        let mut idx = 0usize;
        let verdict = loop {
            let Some(c) = filter.get_mut(&chain) else {
                break Target::Accept;
            };
            if idx >= c.rules.len() {
                if let Some((prev, at)) = stack.pop() {
                    chain = prev;
                    idx = at;
                    continue;
                }
                let pol = c.policy.clone().unwrap_or(Target::Accept);
                c.packets += 1;
                c.bytes += np.len as u64;
                steps.push((
                    chain.clone(),
                    None,
                    format!("policy {}", target_name(&pol)),
                    nf_verdict(&pol),
                ));
                break pol;
            }
            let r = &mut c.rules[idx];
            idx += 1;
            if !r.matches(&np) {
                steps.push((
                    chain.clone(),
                    Some(idx as u32),
                    r.text.to_string(),
                    NfVerdict::NoMatch,
                ));
                continue;
            }
            r.packets += 1;
            r.bytes += np.len as u64;
            steps.push((
                chain.clone(),
                Some(idx as u32),
                r.text.to_string(),
                nf_verdict(&r.target),
            ));
            match r.target.clone() {
                Target::Return => {
                    if let Some((prev, at)) = stack.pop() {
                        chain = prev;
                        idx = at;
                        continue;
                    }
                    idx = usize::MAX;
                    let c = filter.get_mut(&chain).unwrap();
                    let pol = c.policy.clone().unwrap_or(Target::Accept);
                    break pol;
                }
                Target::Jump(to) => {
                    stack.push((chain.clone(), idx));
                    chain = to;
                    idx = 0;
                }
                t => break t,
            }
        };
        for (c, rule, text, v) in steps {
            let c: std::sync::Arc<str> = c.into();
            self.trace(cx, place, pkt.id, || TraceEvent::Netfilter {
                hook,
                table: "filter",
                chain: c.clone(),
                rule,
                text: text.into(),
                verdict: v,
            });
        }
        if verdict == Target::Drop {
            let c: std::sync::Arc<str> = chain.into();
            let rule = if idx == usize::MAX {
                None
            } else {
                Some(idx as u32)
            };
            let rule = self.namespaces[ns.ix()]
                .nf
                .filter
                .as_ref()
                .and_then(|f| f.get(&*c))
                .and_then(|ch| if idx > ch.rules.len() { None } else { rule });
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::Netfilter {
                    hook,
                    table: "filter",
                    chain: c,
                    rule,
                },
            });
            return false;
        }
        true
    }
}

fn target_name(t: &Target) -> String {
    match t {
        Target::Accept => "ACCEPT".into(),
        Target::Drop => "DROP".into(),
        Target::Return => "RETURN".into(),
        Target::Jump(c) => c.clone(),
    }
}

fn nf_verdict(t: &Target) -> NfVerdict {
    match t {
        Target::Accept => NfVerdict::Accept,
        Target::Drop => NfVerdict::Drop,
        Target::Return => NfVerdict::Return,
        Target::Jump(c) => NfVerdict::Jump(c.as_str().into()),
    }
}
