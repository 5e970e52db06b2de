//! `iptables` commands applied to a namespace's tables, with the answers
//! iptables v1.8.9 (nf_tables) gives.

use std::fmt::Write as _;
use std::sync::Arc;

use sim_core::trace::Hook;

use super::Netfilter;
use super::parse::{Cmd, Draft, DraftTarget, IptError, Op, parse_cmd};
use super::rules::*;

type R = Result<String, IptError>;

/// Runs `iptables ARGS` (the words after the program name) against a
/// namespace's netfilter state: the output, or the error as iptables prints it.
pub fn exec_iptables(nf: &mut Netfilter, args: &[String]) -> Result<String, String> {
    let cmd = parse_cmd(args, None).map_err(|e| e.cli())?;
    apply(nf, &cmd).map_err(|e| e.cli())
}

/// Where a target may be used: its table and the built-in chains (hooks).
fn target_allowed(t: &Target, table: TableKind, hook: Hook, ip: &IpSpec) -> bool {
    use Hook::*;
    let tcp = ip.proto == 6 && !ip.proto_inv;
    match t {
        Target::Snat(_) => table == TableKind::Nat && matches!(hook, Postrouting | Input),
        Target::Dnat(_) | Target::Redirect(_) => {
            table == TableKind::Nat && matches!(hook, Prerouting | Output)
        }
        Target::Masquerade(_) => table == TableKind::Nat && hook == Postrouting,
        Target::Notrack | Target::CtNotrack | Target::Trace => table == TableKind::Raw,
        Target::Reject(w) => {
            matches!(hook, Input | Forward | Output) && (*w != RejectWith::TcpReset || tcp)
        }
        Target::Tcpmss(m) => tcp && (m.is_some() || matches!(hook, Forward | Output | Postrouting)),
        _ => true,
    }
}

/// Hooks of the built-in chains from which chain `slot` is reachable.
fn reaching_hooks(t: &Table, slot: usize) -> Vec<Hook> {
    let mut hooks = Vec::new();
    for (i, &h) in t.kind.builtins().iter().enumerate() {
        if reaches(t, i, slot, &mut Vec::new()) {
            hooks.push(h);
        }
    }
    hooks
}

/// Whether chain `from` reaches chain `to` through jumps and gotos.
fn reaches(t: &Table, from: usize, to: usize, seen: &mut Vec<usize>) -> bool {
    if from == to {
        return true;
    }
    if seen.contains(&from) {
        return false;
    }
    seen.push(from);
    let Some(c) = t.chains.get(from).and_then(Option::as_ref) else {
        return false;
    };
    c.rules
        .iter()
        .filter_map(|r| r.target.chain_slot())
        .any(|s| reaches(t, s, to, seen))
}

/// The rules a draft stands for (one per source × destination).
fn build_rules(
    t: &Table,
    chain: usize,
    d: &Draft,
    op: Op,
    checks: bool,
) -> Result<Vec<Rule>, IptError> {
    let target = match &d.target {
        DraftTarget::None => Target::None,
        DraftTarget::Builtin(t) => t.clone(),
        DraftTarget::Jump(n) | DraftTarget::Goto(n) => {
            let slot = t
                .slot(n)
                .filter(|&s| !t.chain(s).builtin())
                .ok_or_else(|| IptError::param(format!("Chain '{n}' does not exist")))?;
            let r = ChainRef {
                slot,
                name: t.chain(slot).name.clone(),
            };
            if matches!(d.target, DraftTarget::Goto(_)) {
                Target::Goto(r)
            } else {
                Target::Jump(r)
            }
        }
    };
    let opname = match op {
        Op::Insert => "RULE_INSERT",
        Op::Replace => "RULE_REPLACE",
        _ => "RULE_APPEND",
    };
    let cname = t.chain(chain).name.clone();
    let batch = |errno: &'static str| IptError::Batch {
        op: opname,
        errno,
        what: format!("rule in chain {cname}"),
    };
    if checks && matches!(op, Op::Append | Op::Insert | Op::Replace) {
        let hooks = match t.chain(chain).hook {
            Some(h) => vec![h],
            None => reaching_hooks(t, chain),
        };
        if hooks
            .iter()
            .any(|&h| !target_allowed(&target, t.kind, h, &d.ip))
            || (t.chain(chain).hook.is_none() && !target_allowed_somewhere(&target, t.kind, &d.ip))
        {
            return Err(batch("Invalid argument"));
        }
        if let Some(s) = target.chain_slot() {
            // nf_tables refuses a loop only where a base chain reaches it.
            let reachable = t.chain(chain).builtin() || !hooks.is_empty();
            if reachable
                && (reaches(t, s, chain, &mut Vec::new()) || has_cycle(t, s, &mut Vec::new()))
            {
                return Err(batch("Too many links"));
            }
            // Rules in the chain jumped to must suit this chain's hooks.
            for h in &hooks {
                if !chain_suits(t, s, *h, &mut Vec::new()) {
                    return Err(batch("Invalid argument"));
                }
            }
        }
    }
    let mut out = Vec::new();
    for s in &d.srcs {
        for dst in &d.dsts {
            let mut ip = d.ip.clone();
            ip.src = *s;
            ip.dst = *dst;
            out.push(Rule::new(ip, d.matches.clone(), target.clone()));
        }
    }
    Ok(out)
}

fn target_allowed_somewhere(t: &Target, table: TableKind, ip: &IpSpec) -> bool {
    table
        .builtins()
        .iter()
        .any(|&h| target_allowed(t, table, h, ip))
}

/// Whether every rule reachable from chain `slot` may run at `hook`.
fn chain_suits(t: &Table, slot: usize, hook: Hook, seen: &mut Vec<usize>) -> bool {
    if seen.contains(&slot) {
        return true;
    }
    seen.push(slot);
    let Some(c) = t.chains.get(slot).and_then(Option::as_ref) else {
        return true;
    };
    c.rules.iter().all(|r| {
        target_allowed(&r.target, t.kind, hook, &r.ip)
            && r.target
                .chain_slot()
                .is_none_or(|s| chain_suits(t, s, hook, seen))
    })
}

/// Whether a jump cycle is reachable from chain `slot`.
fn has_cycle(t: &Table, slot: usize, path: &mut Vec<usize>) -> bool {
    if path.contains(&slot) {
        return true;
    }
    let Some(c) = t.chains.get(slot).and_then(Option::as_ref) else {
        return false;
    };
    path.push(slot);
    let found = c
        .rules
        .iter()
        .filter_map(|r| r.target.chain_slot())
        .any(|s| has_cycle(t, s, path));
    path.pop();
    found
}

fn user_chain_slot(t: &Table, name: &str) -> Option<usize> {
    t.slot(name).filter(|&s| !t.chain(s).builtin())
}

/// Applies a parsed command.
pub(crate) fn apply(nf: &mut Netfilter, cmd: &Cmd) -> R {
    let listing = matches!(cmd.op, Op::List | Op::ListRules) && !cmd.zero_too;
    if listing {
        let tmp;
        let t = match nf.table(cmd.table) {
            Some(t) => t,
            None => {
                tmp = Table::new(cmd.table);
                &tmp
            }
        };
        return if cmd.op == Op::List {
            list(t, cmd)
        } else {
            list_rules(t, cmd)
        };
    }
    // Only these create the table (and the chain they name); the others
    // act on a table that does not exist as on an empty one.
    let creates = match cmd.op {
        Op::Append | Op::Insert | Op::Replace | Op::Policy | Op::NewChain => true,
        Op::Flush => cmd.chain.is_some(),
        _ => false,
    };
    if nf.table(cmd.table).is_none() && !creates {
        return apply_write(&mut Table::new(cmd.table), cmd);
    }
    let out = apply_write(nf.table_mut(cmd.table), cmd)?;
    match cmd.op {
        Op::Append | Op::Insert | Op::Replace
            if cmd.rule.as_ref().is_some_and(|d| {
                d.matches.iter().any(Match::needs_ct)
                    || matches!(&d.target, DraftTarget::Builtin(t) if t.needs_ct())
            }) =>
        {
            nf.ct_enabled = true;
        }
        Op::Delete | Op::Flush | Op::DeleteChain => nf.refresh_ct(),
        _ => {}
    }
    Ok(out)
}

pub(crate) fn apply_write(t: &mut Table, cmd: &Cmd) -> R {
    apply_write_checked(t, cmd, true)
}

/// Whether every rule may run where its chain is reached from, and no jump
/// cycle is reachable from a built-in chain (iptables-restore checks the
/// whole table at COMMIT, as nf_tables validates a transaction): otherwise
/// the offending chain's slot, the rule's index and the error.
pub(crate) fn validate(t: &Table) -> Result<(), (usize, usize, &'static str)> {
    let adj: Vec<Vec<usize>> = t
        .chains
        .iter()
        .map(|c| {
            c.as_ref()
                .map(|c| {
                    c.rules
                        .iter()
                        .filter_map(|r| r.target.chain_slot())
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    // Hooks reaching each chain, by a walk from each built-in chain.
    let mut hooks: Vec<Vec<Hook>> = vec![Vec::new(); t.chains.len()];
    for (i, &h) in t.kind.builtins().iter().enumerate() {
        let mut stack = vec![i];
        while let Some(s) = stack.pop() {
            if hooks[s].contains(&h) {
                continue;
            }
            hooks[s].push(h);
            stack.extend(adj[s].iter().copied());
        }
    }
    for (s, c) in t.chains.iter().enumerate() {
        let Some(c) = c else { continue };
        for (k, r) in c.rules.iter().enumerate() {
            if hooks[s]
                .iter()
                .any(|&h| !target_allowed(&r.target, t.kind, h, &r.ip))
                || !target_allowed_somewhere(&r.target, t.kind, &r.ip)
            {
                return Err((s, k, "Invalid argument"));
            }
        }
    }
    // A cycle reachable from a built-in chain (iterative colouring DFS).
    let mut color = vec![0u8; t.chains.len()];
    for root in 0..t.kind.builtins().len() {
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some((s, k)) = stack.pop() {
            if k == 0 {
                if color[s] == 2 {
                    continue;
                }
                color[s] = 1;
            }
            if let Some(&n) = adj[s].get(k) {
                stack.push((s, k + 1));
                if color[n] == 1 {
                    let rule = t
                        .chain(s)
                        .rules
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.target.chain_slot().is_some())
                        .nth(k)
                        .map_or(0, |(i, _)| i);
                    return Err((s, rule, "Too many links"));
                }
                if color[n] == 0 {
                    stack.push((n, 0));
                }
            } else {
                color[s] = 2;
            }
        }
    }
    Ok(())
}

/// [`apply_write`]; `checks`: validate rule placement and loops now (the
/// CLI) rather than at COMMIT (iptables-restore).
pub(crate) fn apply_write_checked(t: &mut Table, cmd: &Cmd, checks: bool) -> R {
    let chain_name = cmd.chain.as_deref().unwrap_or("");
    match cmd.op {
        Op::Append | Op::Insert | Op::Replace | Op::Check | Op::Delete => {
            // The jump target is checked before the chain itself.
            if let Some(d) = &cmd.rule
                && let DraftTarget::Jump(n) | DraftTarget::Goto(n) = &d.target
                && user_chain_slot(t, n).is_none()
            {
                return Err(IptError::param(format!("Chain '{n}' does not exist")));
            }
            let slot = t.slot(chain_name).ok_or_else(IptError::no_chain)?;
            if !t.chain(slot).registered && matches!(cmd.op, Op::Delete | Op::Replace) {
                return Err(IptError::no_chain());
            }
            if cmd.op == Op::Delete
                && let Some(n) = cmd.rulenum
            {
                let c = t.chain_mut(slot);
                if n > c.rules.len() {
                    return Err(IptError::kernel("Index of deletion too big."));
                }
                c.rules.remove(n - 1);
                return Ok(String::new());
            }
            let d = cmd.rule.as_ref().expect("rule for a rule command");
            let mut rules = build_rules(t, slot, d, cmd.op, checks)?;
            if let Some((p, b)) = cmd.counters {
                for r in &mut rules {
                    r.packets = p;
                    r.bytes = b;
                }
            }
            let c = t.chain_mut(slot);
            if matches!(cmd.op, Op::Append | Op::Insert | Op::Replace) {
                c.registered = true;
            }
            match cmd.op {
                Op::Append => c.rules.extend(rules),
                Op::Insert => {
                    let n = cmd.rulenum.unwrap_or(1);
                    if n > c.rules.len() + 1 {
                        return Err(IptError::kernel("Index of insertion too big."));
                    }
                    for (k, r) in rules.into_iter().enumerate() {
                        c.rules.insert(n - 1 + k, r);
                    }
                }
                Op::Replace => {
                    let n = cmd.rulenum.unwrap_or(1);
                    if n > c.rules.len() {
                        return Err(IptError::kernel("Index of replacement too big."));
                    }
                    if rules.len() != 1 {
                        return Err(IptError::param(
                            "Replacement rule does not specify a unique address",
                        ));
                    }
                    c.rules[n - 1] = rules.pop().unwrap();
                }
                Op::Check | Op::Delete => {
                    for r in &rules {
                        match c.rules.iter().position(|x| x.same_as(r)) {
                            Some(p) => {
                                if cmd.op == Op::Delete {
                                    c.rules.remove(p);
                                }
                            }
                            None => {
                                return Err(IptError::kernel(
                                    "Bad rule (does a matching rule exist in that chain?).",
                                ));
                            }
                        }
                    }
                }
                _ => unreachable!(),
            }
            Ok(String::new())
        }
        Op::NewChain => {
            if t.slot(chain_name).is_some() {
                return Err(IptError::kernel("Chain already exists."));
            }
            if chain_name.is_empty() || chain_name.starts_with('-') || chain_name.contains(' ') {
                return Err(IptError::param(format!(
                    "Invalid chain name `{chain_name}'"
                )));
            }
            t.add_chain(chain_name);
            Ok(String::new())
        }
        Op::DeleteChain => {
            let victims: Vec<usize> = match &cmd.chain {
                Some(n) if t.slot(n).is_some_and(|s| t.chain(s).builtin()) => {
                    // iptables-nft deletes an empty built-in chain from the
                    // kernel (it comes back, policy ACCEPT, when next used).
                    let s = t.slot(n).unwrap();
                    let c = t.chain_mut(s);
                    if !c.registered {
                        return Err(IptError::no_chain());
                    }
                    if !c.rules.is_empty() {
                        return Err(IptError::Batch {
                            op: "CHAIN_DEL",
                            errno: "Device or resource busy",
                            what: format!("chain {n}"),
                        });
                    }
                    c.registered = false;
                    c.policy = Policy::Accept;
                    c.packets = 0;
                    c.bytes = 0;
                    return Ok(String::new());
                }
                Some(n) => vec![user_chain_slot(t, n).ok_or_else(IptError::no_chain)?],
                None => t
                    .list_order()
                    .into_iter()
                    .filter(|&s| !t.chain(s).builtin())
                    .collect(),
            };
            // Chains jumped to from a chain that stays.
            let mut victim = vec![false; t.chains.len()];
            for &v in &victims {
                victim[v] = true;
            }
            let mut busy = vec![false; t.chains.len()];
            for (i, c) in t.chains.iter().enumerate() {
                if let Some(c) = c
                    && !victim[i]
                {
                    for s in c.rules.iter().filter_map(|r| r.target.chain_slot()) {
                        busy[s] = true;
                    }
                }
            }
            if let Some(&v) = victims.iter().find(|&&v| busy[v]) {
                return Err(IptError::Batch {
                    op: "CHAIN_DEL",
                    errno: "Device or resource busy",
                    what: format!("chain {}", t.chain(v).name),
                });
            }
            for v in victims {
                t.delete_chain(v);
            }
            if cmd.chain.is_none() {
                // iptables-nft also deletes the built-in chains left empty
                // with policy ACCEPT.
                for c in t.chains.iter_mut().flatten() {
                    if c.builtin() && c.rules.is_empty() && c.policy == Policy::Accept {
                        c.registered = false;
                        c.packets = 0;
                        c.bytes = 0;
                    }
                }
            }
            Ok(String::new())
        }
        Op::Flush => {
            match &cmd.chain {
                Some(n) => {
                    let s = t.slot(n).ok_or_else(IptError::no_chain)?;
                    let c = t.chain_mut(s);
                    c.rules.clear();
                    c.registered = true;
                }
                None => {
                    for c in t.chains.iter_mut().flatten() {
                        c.rules.clear();
                    }
                }
            }
            Ok(String::new())
        }
        Op::Zero | Op::List | Op::ListRules => {
            let mut out = if cmd.op == Op::List {
                list(t, cmd)?
            } else if cmd.op == Op::ListRules {
                list_rules(t, cmd)?
            } else {
                String::new()
            };
            if cmd.op == Op::List {
                let zeroed: Vec<usize> = match &cmd.chain {
                    Some(n) => t.slot(n).into_iter().collect(),
                    None => t.list_order(),
                };
                for s in zeroed {
                    let _ = writeln!(out, "Zeroing chain `{}'", t.chain(s).name);
                }
            }
            match &cmd.chain {
                Some(n) => {
                    let s = t
                        .slot(n)
                        .filter(|&s| t.chain(s).registered)
                        .ok_or_else(IptError::no_chain)?;
                    let c = t.chain_mut(s);
                    match cmd.rulenum {
                        Some(k) => {
                            let r = c.rules.get_mut(k - 1).ok_or_else(IptError::no_chain)?;
                            r.packets = 0;
                            r.bytes = 0;
                        }
                        None => zero_chain(c),
                    }
                }
                None => t.chains.iter_mut().flatten().for_each(zero_chain),
            }
            Ok(out)
        }
        Op::Policy => {
            let s = t
                .slot(chain_name)
                .filter(|&s| t.chain(s).builtin())
                .ok_or_else(|| IptError::kernel("Bad built-in chain name."))?;
            let p = match cmd.arg2.as_deref() {
                Some("ACCEPT") => Policy::Accept,
                Some("DROP") => Policy::Drop,
                _ => {
                    return Err(IptError::Kernel {
                        msg: "Bad policy name.".into(),
                        cli_suffix: " Run `dmesg' for more information.",
                    });
                }
            };
            t.chain_mut(s).policy = p;
            t.chain_mut(s).registered = true;
            if let Some((pk, b)) = cmd.counters {
                let c = t.chain_mut(s);
                c.packets = pk;
                c.bytes = b;
            }
            Ok(String::new())
        }
        Op::Rename => {
            let new = cmd.arg2.clone().unwrap_or_default();
            let s = user_chain_slot(t, chain_name).ok_or_else(IptError::no_chain)?;
            if t.slot(&new).is_some() {
                return Err(IptError::kernel("File exists."));
            }
            rename_chain(t, s, &new);
            Ok(String::new())
        }
    }
}

fn zero_chain(c: &mut Chain) {
    c.packets = 0;
    c.bytes = 0;
    for r in &mut c.rules {
        r.packets = 0;
        r.bytes = 0;
    }
}

pub(crate) fn rename_chain(t: &mut Table, slot: usize, new: &str) {
    let name: Arc<str> = new.into();
    let old = std::mem::replace(&mut t.chain_mut(slot).name, name.clone());
    t.by_name.remove(&old);
    t.by_name.insert(name.clone(), slot);
    for c in t.chains.iter_mut().flatten() {
        for r in &mut c.rules {
            if let Target::Jump(cr) | Target::Goto(cr) = &mut r.target
                && cr.slot == slot
            {
                cr.name = name.clone();
                r.text = r.save_spec().into();
            }
        }
    }
}

/// `iptables -L`.
fn list(t: &Table, cmd: &Cmd) -> R {
    let chains: Vec<usize> = match &cmd.chain {
        Some(n) => vec![t.slot(n).ok_or_else(|| {
            IptError::bare(format!(
                "chain `{n}' in table `{}' is incompatible, use 'nft' tool.",
                t.kind.name()
            ))
        })?],
        None => t.list_order(),
    };
    let mut out = String::new();
    if let (Some(k), Some(&s)) = (cmd.rulenum, chains.first()) {
        if let Some(r) = t.chain(s).rules.get(k - 1) {
            list_rule(r, k, &cmd.list, &mut out);
        }
        return Ok(out);
    }
    let mut refs = vec![0usize; t.chains.len()];
    for c in t.chains.iter().flatten() {
        for r in &c.rules {
            if let Some(s) = r.target.chain_slot() {
                refs[s] += 1;
            }
        }
    }
    for (i, &s) in chains.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let c = t.chain(s);
        list_header(c, refs[s], &cmd.list, &mut out);
        for (k, r) in c.rules.iter().enumerate() {
            list_rule(r, k + 1, &cmd.list, &mut out);
        }
    }
    Ok(out)
}

fn counters_suffix(verbose: bool, p: u64, b: u64, out: &mut String) {
    if verbose {
        let _ = write!(out, " -c {p} {b}");
    }
}

/// `iptables -S`.
fn list_rules(t: &Table, cmd: &Cmd) -> R {
    let chains: Vec<usize> = match &cmd.chain {
        Some(n) => vec![t.slot(n).ok_or_else(|| {
            IptError::bare(format!(
                "chain `{n}' in table `{}' is incompatible, use 'nft' tool.",
                t.kind.name()
            ))
        })?],
        None => t.list_order(),
    };
    let v = cmd.list.verbose;
    let mut out = String::new();
    if let (Some(k), Some(&s)) = (cmd.rulenum, chains.first()) {
        let c = t.chain(s);
        if let Some(r) = c.rules.get(k - 1) {
            rule_line(&c.name, r, &mut out);
            counters_suffix(v, r.packets, r.bytes, &mut out);
            out.push('\n');
        }
        return Ok(out);
    }
    for &s in &chains {
        let c = t.chain(s);
        if c.builtin() {
            let _ = write!(out, "-P {} {}", c.name, c.policy.as_str());
            counters_suffix(v, c.packets, c.bytes, &mut out);
            out.push('\n');
        } else {
            let _ = writeln!(out, "-N {}", c.name);
        }
    }
    for &s in &chains {
        let c = t.chain(s);
        for r in &c.rules {
            rule_line(&c.name, r, &mut out);
            counters_suffix(v, r.packets, r.bytes, &mut out);
            out.push('\n');
        }
    }
    Ok(out)
}

/// `-A CHAIN SPEC` (no newline).
pub(crate) fn rule_line(chain: &str, r: &Rule, out: &mut String) {
    let _ = write!(out, "-A {chain}");
    if !r.text.is_empty() {
        out.push(' ');
        out.push_str(&r.text);
    }
}
