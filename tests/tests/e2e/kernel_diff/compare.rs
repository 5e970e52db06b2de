//! Comparing what the kernel did with what podpath did, after the
//! normalisations named in `tests/kernel-diff/known-differences.md`.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use scenarios::Scenario;
use scenarios::load::CmdSource;
use sim_models::cmd::CommandKind;

use super::frames::{self, Summary};
use super::{DevInfo, Observed, known};

/// One difference, with both sides.
#[derive(Clone, Debug)]
pub struct Diff {
    pub kind: &'static str,
    pub what: String,
    pub body: String,
}

/// The comparison of one scenario.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub name: String,
    pub harness_error: Option<String>,
    pub diffs: Vec<Diff>,
    pub commands: usize,
    pub kernel_failures: usize,
    pub pings: usize,
    pub packets: usize,
    pub frames_kernel: usize,
    pub frames_podpath: usize,
    pub tables: usize,
    pub table_lines: usize,
    pub wall: Duration,
    pub notes: Vec<String>,
    /// How often each known difference's normalisation applied.
    pub known: BTreeMap<&'static str, u64>,
}

impl Report {
    pub fn harness_error(name: &str, e: String) -> Report {
        Report {
            name: name.to_string(),
            harness_error: Some(e),
            ..Default::default()
        }
    }

    pub fn clean(&self) -> bool {
        self.harness_error.is_none() && self.diffs.is_empty()
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        if let Some(e) = &self.harness_error {
            let _ = writeln!(s, "=== kernel-diff {}: NOT COMPARED: {e}\n", self.name);
            return s;
        }
        let verdict = if self.diffs.is_empty() {
            "agrees".to_string()
        } else {
            format!("{} differences", self.diffs.len())
        };
        let _ = writeln!(
            s,
            "=== kernel-diff {}: {verdict}\n    commands {} ({} failed on the kernel), pings {}, packets {} (frames: kernel {}, podpath {}), tables {} ({} lines); kernel run {:.1} s",
            self.name,
            self.commands,
            self.kernel_failures,
            self.pings,
            self.packets,
            self.frames_kernel,
            self.frames_podpath,
            self.tables,
            self.table_lines,
            self.wall.as_secs_f64()
        );
        for n in &self.notes {
            let _ = writeln!(s, "    note: {n}");
        }
        for (i, d) in self.diffs.iter().enumerate() {
            let _ = writeln!(
                s,
                "  --- {} difference {}: [{}] {}",
                self.name,
                i + 1,
                d.kind,
                d.what
            );
            for l in d.body.lines() {
                let _ = writeln!(s, "  {l}");
            }
        }
        s.push('\n');
        s
    }
}

/// The run's totals.
pub fn summary(reports: &[Report], skipped: &[String], elapsed: Duration) -> String {
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    for r in reports {
        for (k, n) in &r.known {
            *counts.entry(k).or_default() += n;
        }
    }
    let compared: Vec<&Report> = reports
        .iter()
        .filter(|r| r.harness_error.is_none())
        .collect();
    let sum = |f: &dyn Fn(&Report) -> usize| compared.iter().map(|r| f(r)).sum::<usize>();
    let diffs = sum(&|r| r.diffs.len());
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &compared {
        for d in &r.diffs {
            *by_kind.entry(d.kind).or_default() += 1;
        }
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "=== kernel-diff summary: {} scenarios compared, {} agree",
        compared.len(),
        compared.iter().filter(|r| r.diffs.is_empty()).count()
    );
    let not: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            r.harness_error
                .as_ref()
                .map(|e| format!("{} ({e})", r.name))
        })
        .collect();
    if !not.is_empty() {
        let _ = writeln!(s, "    NOT compared: {}", not.join("; "));
    }
    if !skipped.is_empty() {
        let _ = writeln!(s, "    not run: {}", skipped.join(", "));
    }
    let _ = writeln!(
        s,
        "    commands {} ({} failed on the kernel), pings {}, packets {} (frames: kernel {}, podpath {}), tables {} ({} lines)",
        sum(&|r| r.commands),
        sum(&|r| r.kernel_failures),
        sum(&|r| r.pings),
        sum(&|r| r.packets),
        sum(&|r| r.frames_kernel),
        sum(&|r| r.frames_podpath),
        sum(&|r| r.tables),
        sum(&|r| r.table_lines),
    );
    let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(
        s,
        "    differences: {diffs}{}",
        if kinds.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds.join(", "))
        }
    );
    let kd: Vec<String> = known::ALL
        .iter()
        .map(|id| format!("{id} {}", counts.get(id).copied().unwrap_or(0)))
        .collect();
    let _ = writeln!(s, "    known differences applied: {}", kd.join(", "));
    let _ = writeln!(s, "    run time {:.1} s", elapsed.as_secs_f64());
    s
}

// ---------------------------------------------------------------------------
// MAC addresses
// ---------------------------------------------------------------------------

/// Names MAC addresses by the device that owns them (KD-RANDOM-MAC): devices
/// not enslaved first (a bridge over the port it took its MAC from), then by
/// label. Zero, broadcast and multicast addresses, and addresses no device
/// owns, stay literal.
struct Macs {
    owners: BTreeMap<[u8; 6], Vec<(bool, String)>>,
    /// MACs of the harness's own devices only (segment bridges and ports).
    harness: Vec<[u8; 6]>,
    used: Cell<u64>,
}

impl Macs {
    fn new(devs: &[DevInfo]) -> Macs {
        let mut owners: BTreeMap<[u8; 6], Vec<(bool, String)>> = BTreeMap::new();
        let mut harness: Vec<[u8; 6]> = devs.iter().filter(|d| d.harness).map(|d| d.mac).collect();
        harness.retain(|m| !devs.iter().any(|d| !d.harness && d.mac == *m));
        for d in devs.iter().filter(|d| !d.harness) {
            owners
                .entry(d.mac)
                .or_default()
                .push((d.enslaved && !d.bridge, d.label.clone()));
        }
        for v in owners.values_mut() {
            v.sort();
        }
        Macs {
            owners,
            harness,
            used: Cell::new(0),
        }
    }

    fn special(m: [u8; 6]) -> bool {
        m == [0; 6] || m[0] & 1 == 1
    }

    fn name(&self, m: [u8; 6]) -> String {
        if !Self::special(m)
            && let Some(v) = self.owners.get(&m)
        {
            self.used.set(self.used.get() + 1);
            return format!("<{}>", v[0].1);
        }
        frames::mac_text(m)
    }

    /// In a table line about device `dev`: its own MAC is `<own>`.
    fn name_on(&self, m: [u8; 6], dev: &str) -> String {
        if !Self::special(m)
            && let Some(v) = self.owners.get(&m)
            && v.iter().any(|(_, l)| l == dev)
        {
            self.used.set(self.used.get() + 1);
            return "<own>".into();
        }
        self.name(m)
    }
}

// ---------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------

struct TableNorm<'a> {
    macs: &'a Macs,
    place: &'a str,
    nics: &'a [String],
    ipv6: u64,
    timing: u64,
    mcast: u64,
    topo: u64,
}

impl TableNorm<'_> {
    fn is_nic(&self, dev: &str) -> bool {
        self.nics
            .iter()
            .any(|n| *n == format!("{}:{dev}", self.place))
    }

    fn lines(&mut self, table: &str, text: &str) -> Vec<String> {
        match table {
            "links" => self.links(text),
            "addrs" => self.addrs(text),
            "routes" => {
                let mut out: Vec<String> = Vec::new();
                for l in text.lines() {
                    if l.starts_with(char::is_whitespace) && !out.is_empty() {
                        let last = out.last_mut().unwrap();
                        last.push(' ');
                        last.push_str(l.trim());
                    } else if !l.trim().is_empty() {
                        out.push(l.trim().to_string());
                    }
                }
                out
            }
            "neigh" => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| self.neigh(l))
                .collect(),
            "fdb" => text.lines().filter_map(|l| self.fdb(l)).collect(),
            _ => text
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect(),
        }
    }

    /// `N: NAME[@PEER]: <FLAGS> mtu M qdisc Q [master B] state S ...` and its
    /// `link/TYPE MAC brd B` line, as `N: NAME[@PEER] <FLAGS> mtu M qdisc Q
    /// [master B] state S link/TYPE MAC`.
    fn links(&mut self, text: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut dev = String::new();
        for l in text.lines() {
            if l.starts_with(|c: char| c.is_ascii_digit()) {
                let Some((idx, rest)) = l.split_once(": ") else {
                    out.push(l.to_string());
                    continue;
                };
                let Some((name, rest)) = rest.split_once(": ") else {
                    out.push(l.to_string());
                    continue;
                };
                let base = name.split('@').next().unwrap_or(name).to_string();
                let nic = self.is_nic(&base);
                dev = base.clone();
                let t: Vec<&str> = rest.split_whitespace().collect();
                let field = |k: &str| {
                    t.iter()
                        .position(|x| *x == k)
                        .and_then(|i| t.get(i + 1))
                        .copied()
                };
                let mut s = String::new();
                if nic {
                    // KD-HARNESS-TOPO: the NIC is a veth into the segment's bridge.
                    self.topo += 1;
                    let _ = write!(s, "{base} {}", t.first().unwrap_or(&""));
                } else {
                    let _ = write!(s, "{idx}: {name} {}", t.first().unwrap_or(&""));
                }
                if let Some(m) = field("mtu") {
                    let _ = write!(s, " mtu {m}");
                }
                if !nic && let Some(q) = field("qdisc") {
                    let _ = write!(s, " qdisc {q}");
                }
                if let Some(m) = field("master") {
                    let _ = write!(s, " master {m}");
                }
                if let Some(st) = field("state") {
                    let _ = write!(s, " state {st}");
                }
                out.push(s);
            } else if let Some(rest) = l.trim().strip_prefix("link/") {
                let t: Vec<&str> = rest.split_whitespace().collect();
                let Some(last) = out.last_mut() else { continue };
                let _ = write!(last, " link/{}", t.first().unwrap_or(&""));
                if let Some(m) = t.get(1).and_then(|m| super::kernel::parse_mac(m)) {
                    let label = format!("{}:{dev}", self.place);
                    let _ = write!(last, " {}", self.macs.name_on(m, &label));
                }
                if t.iter().any(|x| x.starts_with("link-netns")) {
                    // KD-HARNESS-TOPO: the host's own namespace is a named one on the machine.
                    self.topo += 1;
                }
            }
        }
        out
    }

    fn addrs(&mut self, text: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut dev = "";
        let mut last_v6 = false;
        for l in text.lines() {
            let t = l.trim();
            if l.starts_with(|c: char| c.is_ascii_digit()) {
                dev = l.split(": ").nth(1).unwrap_or("");
                dev = dev.split('@').next().unwrap_or(dev);
                last_v6 = false;
            } else if t.starts_with("inet6 ") {
                self.ipv6 += 1;
                last_v6 = true;
            } else if t.starts_with("inet ") {
                out.push(format!("{dev}: {t}"));
                last_v6 = false;
            } else if t.starts_with("valid_lft")
                && !last_v6
                && let Some(o) = out.last_mut()
            {
                o.push_str(" / ");
                o.push_str(t);
            }
        }
        out
    }

    fn neigh(&mut self, l: &str) -> String {
        let t: Vec<&str> = l.split_whitespace().collect();
        let dev = t
            .iter()
            .position(|x| *x == "dev")
            .and_then(|i| t.get(i + 1))
            .copied()
            .unwrap_or("");
        let mut out = Vec::new();
        let mut i = 0;
        while i < t.len() {
            let w = t[i];
            if w == "lladdr"
                && let Some(m) = t.get(i + 1).and_then(|m| super::kernel::parse_mac(m))
            {
                let _ = dev;
                out.push("lladdr".to_string());
                out.push(self.macs.name(m));
                i += 2;
                continue;
            }
            if i == t.len() - 1 && matches!(w, "REACHABLE" | "STALE" | "DELAY" | "PROBE") {
                // KD-TIMING: these states move with time.
                self.timing += 1;
                out.push("dynamic".into());
            } else {
                out.push(w.to_string());
            }
            i += 1;
        }
        out.join(" ")
    }

    fn fdb(&mut self, l: &str) -> Option<String> {
        let t: Vec<&str> = l.split_whitespace().collect();
        let mac = super::kernel::parse_mac(t.first()?)?;
        if mac[0] & 1 == 1 {
            // KD-MULTICAST: the devices' multicast lists are not modelled.
            self.mcast += 1;
            return None;
        }
        let dev = t
            .iter()
            .position(|x| *x == "dev")
            .and_then(|i| t.get(i + 1))
            .copied()
            .unwrap_or("");
        let label = format!("{}:{dev}", self.place);
        let mut s = self.macs.name_on(mac, &label);
        for w in &t[1..] {
            s.push(' ');
            s.push_str(w);
        }
        Some(s)
    }
}

/// Lines on one side only, as (kernel-only, podpath-only).
fn multiset_diff(k: &[String], p: &[String]) -> (Vec<String>, Vec<String>) {
    let mut count: BTreeMap<&str, i64> = BTreeMap::new();
    for l in k {
        *count.entry(l).or_default() += 1;
    }
    for l in p {
        *count.entry(l).or_default() -= 1;
    }
    let mut ko = Vec::new();
    let mut po = Vec::new();
    for (l, n) in count {
        for _ in 0..n.max(0) {
            ko.push(l.to_string());
        }
        for _ in 0..(-n).max(0) {
            po.push(l.to_string());
        }
    }
    (ko, po)
}

/// Both sides' lines, those on one side only marked `!`.
fn side_by_side(k: &[String], p: &[String], ko: &[String], po: &[String]) -> String {
    let mut s = String::new();
    let mark = |lines: &[String], only: &[String], s: &mut String| {
        let mut left: Vec<&String> = only.iter().collect();
        for l in lines {
            let m = if let Some(i) = left.iter().position(|x| *x == l) {
                left.remove(i);
                "!"
            } else {
                " "
            };
            let _ = writeln!(s, "   {m} {l}");
        }
    };
    s.push_str("  kernel:\n");
    mark(k, ko, &mut s);
    s.push_str("  podpath:\n");
    mark(p, po, &mut s);
    s
}

// ---------------------------------------------------------------------------
// The comparison
// ---------------------------------------------------------------------------

/// Where a command is: `node1 setup (file.ron:40)`, `timeline at 1s on node1:test3 (file.ron:97)`.
fn where_(sc: &Scenario, i: usize) -> String {
    let c = &sc.commands[i];
    let host = &sc.file.hosts[c.host].name;
    let file = std::path::Path::new(&sc.path)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let at = format!("({file}:{})", c.pos.line);
    match c.source {
        CmdSource::Setup { .. } => format!("{host} setup {at}"),
        CmdSource::Timeline { entry, .. } => {
            let t = &sc.file.timeline[entry];
            format!("timeline at {} on {} {at}", t.at, t.on)
        }
    }
}

fn norm_msg(s: &str) -> String {
    s.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A command's standard output, with the fields the known differences
/// set aside: iptables-save's dates (KD-SAVE-DATE); in `conntrack -L`,
/// ICMP ids (KD-RANDOM-FIELDS) and the seconds an entry has left
/// (KD-TIMING).
fn norm_output(kind: &CommandKind, s: &str) -> String {
    let s = norm_msg(s);
    match kind {
        CommandKind::IptablesSave { .. } => s
            .lines()
            .map(|l| {
                let comment =
                    l.starts_with("# Generated by iptables-save") || l.starts_with("# Completed");
                match l.find(" on ") {
                    Some(i) if comment => {
                        known::applied(known::KD_SAVE_DATE, 1);
                        &l[..i]
                    }
                    _ => l,
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
        CommandKind::ConntrackList => s
            .lines()
            .map(|l| {
                let mut w: Vec<String> = l.split_whitespace().map(str::to_string).collect();
                if let Some(t) = w.get_mut(2)
                    && t.chars().all(|c| c.is_ascii_digit())
                {
                    known::applied(known::KD_TIMING, 1);
                    *t = "*".into();
                }
                for x in &mut w {
                    if x.starts_with("id=") {
                        known::applied(known::KD_RANDOM_FIELDS, 1);
                        *x = "id=*".into();
                    }
                }
                w.join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => s,
    }
}

/// ping's transcript without timings (KD-TIMING).
fn norm_ping(s: &str, timing: &mut u64) -> Vec<String> {
    let mut out = Vec::new();
    for l in s.lines() {
        let l = l.trim();
        if l.is_empty() {
            continue;
        }
        if l.starts_with("rtt ") {
            *timing += 1;
            continue;
        }
        let mut l = l.to_string();
        if let Some(i) = l.find(" time=") {
            *timing += 1;
            l.truncate(i);
        }
        if let Some(i) = l.find(", time ") {
            *timing += 1;
            l.truncate(i);
        }
        out.push(l);
    }
    out
}

fn show_cmd(r: &Option<super::CmdResult>) -> String {
    match r {
        None => "(not run)".into(),
        Some(r) => {
            let mut s = if r.failed { "failed" } else { "succeeded" }.to_string();
            if !r.stderr.trim().is_empty() {
                let _ = write!(
                    s,
                    ", stderr:\n      {}",
                    norm_msg(&r.stderr).replace('\n', "\n      ")
                );
            }
            if !r.stdout.trim().is_empty() {
                let _ = write!(
                    s,
                    "\n    stdout:\n      {}",
                    norm_msg(&r.stdout).replace('\n', "\n      ")
                );
            }
            s
        }
    }
}

pub fn compare(sc: &Scenario, name: &str, k: &Observed, p: &Observed) -> Report {
    let mut r = Report {
        name: name.to_string(),
        ..Default::default()
    };
    let mut timing = 0u64;
    if let Some(s) = &p.stopped {
        r.diffs.push(Diff {
            kind: "podpath stopped",
            what: s.clone(),
            body: "  (podpath runs each command expecting the kernel's success or failure; the first disagreement ends its run, so later results are missing)".into(),
        });
    }

    // (1) Commands: which failed, and the messages.
    for (i, c) in sc.commands.iter().enumerate() {
        let Some(Some(kr)) = k.commands.get(i) else {
            continue;
        };
        let Some(Some(pr)) = p.commands.get(i) else {
            if p.stopped.is_none() {
                r.diffs.push(Diff {
                    kind: "command",
                    what: format!("{}: `{}`", where_(sc, i), c.text),
                    body: format!(
                        "  kernel : {}\n  podpath: (did not run it)",
                        show_cmd(&Some(kr.clone()))
                    ),
                });
            }
            continue;
        };
        r.commands += 1;
        if kr.failed {
            r.kernel_failures += 1;
        }
        let ping = matches!(
            c.cmd.kind,
            CommandKind::Ping(_) | CommandKind::Traceroute { .. }
        );
        let same = if matches!(c.cmd.kind, CommandKind::Invalid { .. }) {
            // KD-PARSE-MESSAGES: podpath's parser quotes the tool's message
            // with context; the tool's first line must be in it.
            let said = format!("{}\n{}", kr.stdout, kr.stderr);
            let first = said.lines().map(str::trim).find(|l| !l.is_empty());
            known::applied(known::KD_PARSE_MESSAGES, 1);
            kr.failed && pr.failed && first.is_some_and(|f| pr.stderr.contains(f))
        } else {
            kr.failed == pr.failed
                && norm_msg(&kr.stderr) == norm_msg(&pr.stderr)
                && (ping
                    || norm_output(&c.cmd.kind, &kr.stdout) == norm_output(&c.cmd.kind, &pr.stdout))
        };
        if !same {
            r.diffs.push(Diff {
                kind: if kr.failed == pr.failed {
                    "command output"
                } else {
                    "command failure"
                },
                what: format!("{}: `{}`", where_(sc, i), c.text),
                body: format!(
                    "  kernel : {}\n  podpath: {}",
                    show_cmd(&Some(kr.clone())),
                    show_cmd(&Some(pr.clone()))
                ),
            });
        }
    }

    // (2) Pings: reachability, and what ping printed.
    for kp in &k.pings {
        r.pings += 1;
        let what = format!("{}: `{}`", where_(sc, kp.cmd), sc.commands[kp.cmd].text);
        let Some(pp) = p.pings.iter().find(|x| x.cmd == kp.cmd) else {
            if p.stopped.is_none() {
                r.diffs.push(Diff {
                    kind: "ping",
                    what,
                    body: "  podpath ran no such ping".into(),
                });
            }
            continue;
        };
        if (kp.received > 0) != (pp.received > 0) {
            r.diffs.push(Diff {
                kind: "reachability",
                what: what.clone(),
                body: format!(
                    "  kernel : {} of {} answered\n  podpath: {} of {} answered",
                    kp.received, kp.transmitted, pp.received, pp.transmitted
                ),
            });
        }
        let (kt, pt) = (
            norm_ping(&kp.transcript, &mut timing),
            norm_ping(&pp.transcript, &mut timing),
        );
        if kt != pt {
            let (ko, po) = multiset_diff(&kt, &pt);
            r.diffs.push(Diff {
                kind: "ping output",
                what,
                body: side_by_side(&kt, &pt, &ko, &po),
            });
        }
    }

    // (3) Packets: per packet, the interfaces it crossed and its headers there.
    let kmacs = Macs::new(&k.devices);
    let pmacs = Macs::new(&p.devices);
    type Groups = BTreeMap<String, Vec<(i128, String)>>;
    let group = |obs: &Observed, macs: &Macs| -> (Groups, usize) {
        let mut g: Groups = BTreeMap::new();
        let mut n = 0;
        for f in &obs.frames {
            if f.linktype == 1
                && f.bytes.len() >= 12
                && macs.harness.iter().any(|m| f.bytes[6..12] == m[..])
            {
                // KD-HARNESS-TOPO: sent by a segment's bridge (its own IGMP reports).
                known::applied(known::KD_HARNESS_TOPO, 1);
                continue;
            }
            match frames::summarize(f.linktype, &f.bytes, &|m| macs.name(m)) {
                Summary::Frame { key, text } => {
                    n += 1;
                    g.entry(key)
                        .or_default()
                        .push((f.time_ns, format!("{:<28} {text}", f.place)));
                }
                Summary::Ignored(id) => known::applied(id, 1),
            }
        }
        (g, n)
    };
    let (kg, kn) = group(k, &kmacs);
    let (pg, pn) = group(p, &pmacs);
    r.frames_kernel = kn;
    r.frames_podpath = pn;
    let mut keys: Vec<&String> = kg.keys().chain(pg.keys()).collect();
    keys.sort();
    keys.dedup();
    let empty = Vec::new();
    for key in keys {
        r.packets += 1;
        let ks = kg.get(key).unwrap_or(&empty);
        let ps = pg.get(key).unwrap_or(&empty);
        let kl: Vec<String> = ks.iter().map(|(_, t)| t.clone()).collect();
        let pl: Vec<String> = ps.iter().map(|(_, t)| t.clone()).collect();
        let (ko, po) = multiset_diff(&kl, &pl);
        if ko.is_empty() && po.is_empty() {
            continue;
        }
        let fmt = |v: &[(i128, String)]| -> Vec<String> {
            v.iter()
                .map(|(t, l)| format!("{:>9.4}s {l}", *t as f64 / 1e9))
                .collect()
        };
        let (kf, pf) = (fmt(ks), fmt(ps));
        let body = {
            // Mark by content, ignoring the time column.
            let mut s = String::from("  kernel (time from the timeline's start):\n");
            let mut left = ko.clone();
            for (l, (_, t)) in kf.iter().zip(ks) {
                let m = match left.iter().position(|x| x == t) {
                    Some(i) => {
                        left.remove(i);
                        "!"
                    }
                    None => " ",
                };
                let _ = writeln!(s, "   {m} {l}");
            }
            s.push_str("  podpath:\n");
            let mut left = po.clone();
            for (l, (_, t)) in pf.iter().zip(ps) {
                let m = match left.iter().position(|x| x == t) {
                    Some(i) => {
                        left.remove(i);
                        "!"
                    }
                    None => " ",
                };
                let _ = writeln!(s, "   {m} {l}");
            }
            s
        };
        r.diffs.push(Diff {
            kind: "packet",
            what: key.clone(),
            body,
        });
    }

    // (4) Tables after the run.
    let nics: Vec<String> = sc
        .file
        .hosts
        .iter()
        .flat_map(|h| h.nics.iter().map(move |n| format!("{}:{}", h.name, n.name)))
        .collect();
    let mut places: Vec<&String> = k.tables.keys().chain(p.tables.keys()).collect();
    places.sort();
    places.dedup();
    let (mut ipv6, mut mcast, mut topo) = (0, 0, 0);
    for place in places {
        for table in [
            "links", "addrs", "routes", "rules", "neigh", "fdb", "iptables",
        ] {
            let kt = k.tables.get(place).and_then(|t| t.get(table));
            let pt = p.tables.get(place).and_then(|t| t.get(table));
            let mut kn = TableNorm {
                macs: &kmacs,
                place,
                nics: &nics,
                ipv6: 0,
                timing: 0,
                mcast: 0,
                topo: 0,
            };
            let mut pnorm = TableNorm {
                macs: &pmacs,
                place,
                nics: &nics,
                ipv6: 0,
                timing: 0,
                mcast: 0,
                topo: 0,
            };
            let kl = kt.map(|t| kn.lines(table, t)).unwrap_or_default();
            let pl = pt.map(|t| pnorm.lines(table, t)).unwrap_or_default();
            for n in [&kn, &pnorm] {
                ipv6 += n.ipv6;
                timing += n.timing;
                mcast += n.mcast;
                topo += n.topo;
            }
            r.tables += 1;
            r.table_lines += kl.len().max(pl.len());
            let (ko, po) = multiset_diff(&kl, &pl);
            if kt.is_none() || pt.is_none() || !ko.is_empty() || !po.is_empty() {
                let mut body = side_by_side(&kl, &pl, &ko, &po);
                if kt.is_none() {
                    body.push_str("  (no such namespace on the kernel)\n");
                }
                if pt.is_none() {
                    body.push_str("  (no such namespace in podpath)\n");
                }
                r.diffs.push(Diff {
                    kind: "table",
                    what: format!("{place} {table}"),
                    body,
                });
            }
        }
    }
    known::applied(known::KD_IPV6, ipv6);
    known::applied(known::KD_TIMING, timing);
    known::applied(known::KD_MULTICAST, mcast);
    known::applied(known::KD_HARNESS_TOPO, topo);
    known::applied(known::KD_RANDOM_MAC, kmacs.used.get() + pmacs.used.get());
    known::applied(known::KD_RANDOM_FIELDS, (kn + pn) as u64);
    known::applied(known::KD_CSUM_OFFLOAD, (kn + pn) as u64);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_links() {
        let macs = Macs::new(&[]);
        let nics = vec!["a:eth0".to_string()];
        let mut n = TableNorm {
            macs: &macs,
            place: "a",
            nics: &nics,
            ipv6: 0,
            timing: 0,
            mcast: 0,
            topo: 0,
        };
        let text = "1: lo: <LOOPBACK> mtu 65536 qdisc noop state DOWN mode DEFAULT group default qlen 1000\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n2: eth0@if3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\n    link/ether 6a:96:92:e1:1e:f7 brd ff:ff:ff:ff:ff:ff link-netns ppk5206serr-seg-lan\n";
        assert_eq!(
            n.lines("links", text),
            [
                "1: lo <LOOPBACK> mtu 65536 qdisc noop state DOWN link/loopback 00:00:00:00:00:00",
                "eth0 <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 state UP link/ether 6a:96:92:e1:1e:f7"
            ]
        );
    }
}
