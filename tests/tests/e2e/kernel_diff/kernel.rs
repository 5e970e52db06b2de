//! Replaying a scenario on the real kernel.
//!
//! One namespace per simulated host (`ppk<pid>s<k>-<host>`), one per simulated
//! named namespace (`ppk<pid>s<k>-<host>-<ns>`), one per L2 segment holding a
//! bridge (`ppk<pid>s<k>-seg-<name>`, STP off, default ageing); each NIC is a
//! veth pair with one end in the host's namespace (the NIC's name and MAC)
//! and the other a port of the segment's bridge. `<k>` tells concurrent
//! scenarios apart. Then the hosts' setup commands, verbatim but for namespace
//! names, each inside its namespace; captures on every interface; the
//! timeline at its times; the tables after the run. Nothing is configured in
//! the machine's own namespace, and a guard deletes everything on the way
//! out, panics included.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use scenarios::Scenario;
use scenarios::load::CmdSource;
use sim_models::cmd::{CommandKind, NetnsCmd};

use super::frames::{self, Frame};
use super::{CmdResult, DevInfo, Observed, PingObs, known, rewrite};

use crate::host::{cmd, must, netns_list, run};

/// A command in a process group of its own, so the guard can end it and
/// whatever it started (`sh -c ping ...`) by that group's id.
fn grouped(argv: &[&str]) -> Command {
    let mut c = cmd(argv);
    c.process_group(0);
    c
}

/// Why the kernel comparison cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    crate::host::unavailable(
        "ppk",
        &[
            &["ip", "-V"],
            &["bridge", "-V"],
            &["tcpdump", "--version"],
            &["ping", "-V"],
            &["sysctl", "-V"],
            &["iptables", "-V"],
            &["arp", "-n"],
            &["nft", "-v"],
            &["sh", "-c", "true"],
        ],
    )
}

/// Deletes namespaces left by harness runs whose process is gone.
pub fn sweep_stale() {
    crate::host::sweep_stale("ppk");
}

/// Removes everything one run made, even when the test fails or panics:
/// its processes (by pid) and the namespaces named with its prefix.
pub struct Guard {
    pub prefix: String,
    pids: Mutex<Vec<u32>>,
}

impl Guard {
    pub fn new(prefix: String) -> Guard {
        let g = Guard {
            prefix,
            pids: Mutex::new(Vec::new()),
        };
        g.delete_namespaces();
        g
    }
    fn track(&self, pid: u32) {
        self.pids.lock().unwrap().push(pid);
    }
    fn untrack(&self, pid: u32) {
        self.pids.lock().unwrap().retain(|p| *p != pid);
    }
    fn delete_namespaces(&self) {
        crate::host::delete_namespaces(&self.prefix);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let pids: Vec<u32> = self.pids.lock().map(|p| p.clone()).unwrap_or_default();
        for pid in pids {
            // Each tracked child leads its own process group.
            let _ = run(&["kill", "-KILL", "--", &format!("-{pid}")]);
        }
        self.delete_namespaces();
    }
}

/// Stops a process with SIGTERM and waits for it (SIGKILL after `grace`).
fn terminate(child: &mut Child, guard: &Guard, grace: Duration) {
    let pid = child.id();
    if matches!(child.try_wait(), Ok(None)) {
        let _ = run(&["kill", "-TERM", &pid.to_string()]);
    }
    wait_for(child, grace);
    guard.untrack(pid);
}

/// Waits for a child at most `limit`, then kills it.
fn wait_for(child: &mut Child, limit: Duration) -> bool {
    let step = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        if waited >= limit {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(step);
        waited += step;
    }
}

/// A running capture.
struct Capture {
    place: String,
    file: PathBuf,
    child: Child,
    stderr: BufReader<ChildStderr>,
}

/// `/proc/net/stat/arp_cache`'s entries: the machine's ARP table, all namespaces.
fn arp_entries() -> u64 {
    let text = std::fs::read_to_string("/proc/net/stat/arp_cache").unwrap_or_default();
    text.lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| u64::from_str_radix(v, 16).ok())
        .unwrap_or(0)
}

/// `/proc/net/stat/arp_cache`'s table_fulls, summed over CPUs: the machine's
/// shared ARP table refusing entries (gc_thresh3 reached).
fn arp_table_fulls() -> u64 {
    let text = std::fs::read_to_string("/proc/net/stat/arp_cache").unwrap_or_default();
    let mut lines = text.lines();
    let Some(head) = lines.next() else { return 0 };
    let Some(col) = head.split_whitespace().position(|h| h == "table_fulls") else {
        return 0;
    };
    lines
        .filter_map(|l| l.split_whitespace().nth(col))
        .filter_map(|v| u64::from_str_radix(v, 16).ok())
        .sum()
}

/// Names of one run's namespaces.
pub struct Names {
    pub prefix: String,
}

impl Names {
    pub fn host(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }
    pub fn netns(&self, host: &str, ns: &str) -> String {
        format!("{}{host}-{ns}", self.prefix)
    }
    pub fn segment(&self, seg: &str) -> String {
        format!("{}seg-{seg}", self.prefix)
    }
    /// `node1` / `node1:test3` for one of the run's namespaces.
    pub fn label(&self, sc: &Scenario, real: &str) -> Option<String> {
        let rest = real.strip_prefix(&self.prefix)?;
        let mut best: Option<String> = None;
        for h in &sc.file.hosts {
            if rest == h.name {
                return Some(h.name.clone());
            }
            if let Some(ns) = rest.strip_prefix(&format!("{}-", h.name))
                && best.is_none()
            {
                best = Some(format!("{}:{ns}", h.name));
            }
        }
        best
    }
    /// Real namespace names in the kernel's words put back as the scenario's.
    pub fn unmap(&self, sc: &Scenario, text: &str) -> String {
        let mut t = text.to_string();
        for h in &sc.file.hosts {
            t = t.replace(&format!("{}{}-", self.prefix, h.name), "");
        }
        t
    }
}

/// Keeps a harness namespace quiet about what podpath does not model: IPv6 off
/// (KD-IPV6) and locally sent IGMP dropped (KD-MULTICAST), so neither their
/// frames nor what they leave behind (learned FDB entries, ARP for tunnel
/// peers) reach the comparison. The nftables table is the harness's own and
/// invisible to `iptables -S`.
fn quiet(ns: &str) -> Result<(), String> {
    must(&[
        "ip",
        "netns",
        "exec",
        ns,
        "sysctl",
        "-qw",
        "net.ipv6.conf.all.disable_ipv6=1",
        "net.ipv6.conf.default.disable_ipv6=1",
    ])?;
    must(&[
        "ip",
        "netns",
        "exec",
        ns,
        "nft",
        "add table ip ppk_harness; \
         add chain ip ppk_harness out { type filter hook output priority -300; policy accept; }; \
         add rule ip ppk_harness out ip protocol igmp drop",
    ])?;
    known::applied(known::KD_IPV6, 1);
    known::applied(known::KD_MULTICAST, 1);
    Ok(())
}

/// Options of one kernel run.
pub struct RunSpec<'a> {
    pub sc: &'a Scenario,
    pub names: Names,
    pub guard: &'a Guard,
    /// NIC MACs to use: (host, nic) -> MAC (the scenario's, else podpath's draw).
    pub nic_macs: BTreeMap<(String, String), String>,
    pub until: Duration,
    pub artefacts: PathBuf,
}

/// What a kernel run saw, plus whether the machine's ARP table overflowed.
pub struct KernelRun {
    pub obs: Observed,
    /// Conditions of the machine worth knowing when reading a difference.
    pub notes: Vec<String>,
    pub arp_overflow: Option<String>,
    pub wall: Duration,
}

fn is_ping(kind: &CommandKind) -> bool {
    matches!(kind, CommandKind::Ping(_) | CommandKind::Traceroute { .. })
}

/// Runs the scenario on the kernel.
pub fn replay(spec: &RunSpec) -> Result<KernelRun, String> {
    // Wall-clock timing of the real kernel run, not a simulation path.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let sc = spec.sc;
    let n = &spec.names;
    let g = spec.guard;
    let fulls_before = arp_table_fulls();
    std::fs::create_dir_all(&spec.artefacts).map_err(|e| e.to_string())?;

    // Hosts and segments.
    let mut all_names = Vec::new();
    for h in &sc.file.hosts {
        all_names.push(n.host(&h.name));
    }
    for s in &sc.file.segments {
        all_names.push(n.segment(&s.name));
    }
    for (i, a) in all_names.iter().enumerate() {
        if all_names[..i].contains(a) {
            return Err(format!("two of the scenario's namespaces map to {a}"));
        }
    }
    for h in &sc.file.hosts {
        must(&["ip", "netns", "add", &n.host(&h.name)])?;
        quiet(&n.host(&h.name))?;
    }
    for s in &sc.segments {
        let sn = n.segment(&s.name);
        must(&["ip", "netns", "add", &sn])?;
        quiet(&sn)?;
        must(&[
            "ip",
            "-n",
            &sn,
            "link",
            "add",
            "name",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
        ])?;
        must(&["ip", "-n", &sn, "link", "set", "br0", "up"])?;
    }
    for (hi, h) in sc.file.hosts.iter().enumerate() {
        let hn = n.host(&h.name);
        for (ni, nic) in h.nics.iter().enumerate() {
            let seg = sc
                .segments
                .iter()
                .find(|s| s.name == nic.segment)
                .ok_or("unknown segment")?;
            let sn = n.segment(&seg.name);
            let port = format!("h{hi}n{ni}");
            let mtu = seg.mtu.to_string();
            let mac = spec
                .nic_macs
                .get(&(h.name.clone(), nic.name.clone()))
                .cloned()
                .ok_or("no MAC for a NIC")?;
            must(&[
                "ip", "-n", &sn, "link", "add", &port, "mtu", &mtu, "type", "veth", "peer", "name",
                &nic.name, "address", &mac, "mtu", &mtu, "netns", &hn,
            ])?;
            must(&["ip", "-n", &sn, "link", "set", &port, "master", "br0", "up"])?;
            if let Some(a) = &nic.address {
                must(&["ip", "-n", &hn, "addr", "add", a, "dev", &nic.name])?;
                must(&["ip", "-n", &hn, "link", "set", &nic.name, "up"])?;
            }
        }
    }

    let mut obs = Observed {
        commands: vec![None; sc.commands.len()],
        ..Default::default()
    };
    let mut overflow: Option<String> = None;
    let mut note_overflow = |text: &str, what: &str| {
        if text.contains("No buffer space available") && overflow.is_none() {
            overflow = Some(format!("{what}: No buffer space available"));
        }
    };

    // One scenario line, in its namespace: None when a known difference skips it.
    let run_line = |i: usize| -> Result<Option<Child>, String> {
        let c = &sc.commands[i];
        let host = &sc.file.hosts[c.host].name;
        let on = match c.source {
            CmdSource::Timeline { entry, .. } => sc.file.timeline[entry]
                .on
                .split_once(':')
                .map(|(_, ns)| ns.to_string())
                .filter(|s| !s.is_empty()),
            CmdSource::Setup { .. } => None,
        };
        if matches!(c.cmd.kind, CommandKind::Tcpdump { .. }) {
            known::applied(known::KD_TCPDUMP, 1);
            return Ok(None);
        }
        if matches!(&c.cmd.kind, CommandKind::Modprobe { module } if module == "br_netfilter") {
            known::applied(known::KD_MODULES, 1);
            return Ok(None);
        }
        if let CommandKind::Sysctl { key, .. } = &c.cmd.kind
            && key.contains("gc_thresh")
        {
            known::applied(known::KD_GC_THRESH, 1);
            return Ok(None);
        }
        let text = rewrite::rewrite(&c.text, &|ns| n.netns(host, ns))?;
        let init_ns = on.is_none()
            && c.cmd.netns.is_none()
            && matches!(
                c.cmd.kind,
                CommandKind::Netns(NetnsCmd::Add(_) | NetnsCmd::Del(_))
            );
        let target = match &on {
            Some(ns) => n.netns(host, ns),
            None => n.host(host),
        };
        let mut argv: Vec<&str> = Vec::new();
        if !init_ns {
            argv.extend(["ip", "netns", "exec", &target]);
        }
        argv.extend(["sh", "-c", &text]);
        let child = grouped(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run sh: {e}"))?;
        g.track(child.id());
        Ok(Some(child))
    };
    let finish = |child: Child| -> CmdResult {
        let pid = child.id();
        let o = child.wait_with_output();
        g.untrack(pid);
        match o {
            Ok(o) => CmdResult {
                failed: !o.status.success(),
                code: o.status.code(),
                stdout: n.unmap(sc, &String::from_utf8_lossy(&o.stdout)),
                stderr: n.unmap(sc, &String::from_utf8_lossy(&o.stderr)),
            },
            Err(e) => CmdResult {
                failed: true,
                code: None,
                stdout: String::new(),
                stderr: e.to_string(),
            },
        }
    };
    // Setup scripts, in file order.
    let setup: Vec<usize> = (0..sc.commands.len())
        .filter(|&i| matches!(sc.commands[i].source, CmdSource::Setup { .. }))
        .collect();
    // A namespace the scenario adds is quietened as soon as it exists.
    let added = |i: usize, r: &CmdResult| -> Result<(), String> {
        let c = &sc.commands[i];
        if let (CommandKind::Netns(NetnsCmd::Add(ns)), false) = (&c.cmd.kind, r.failed) {
            quiet(&n.netns(&sc.file.hosts[c.host].name, ns))?;
        }
        Ok(())
    };
    for i in setup {
        if let Some(child) = run_line(i)? {
            let r = finish(child);
            note_overflow(&r.stderr, &sc.commands[i].text);
            added(i, &r)?;
            obs.commands[i] = Some(r);
        }
    }

    // Captures on every interface of every host namespace.
    let mut places: Vec<(String, String)> = Vec::new(); // (label, real name)
    for real in netns_list() {
        if real.starts_with(&n.prefix)
            && !real.starts_with(&n.segment(""))
            && let Some(l) = n.label(sc, &real)
        {
            places.push((l, real));
        }
    }
    places.sort();
    let mut caps: Vec<Capture> = Vec::new();
    let capdir = spec.artefacts.join("pcap");
    let _ = std::fs::remove_dir_all(&capdir);
    std::fs::create_dir_all(&capdir).map_err(|e| e.to_string())?;
    for (label, real) in &places {
        let links = must(&["ip", "-n", real, "-j", "link", "show"])?;
        let v: serde_json::Value = serde_json::from_str(&links).map_err(|e| e.to_string())?;
        for l in v.as_array().into_iter().flatten() {
            let Some(ifname) = l["ifname"].as_str() else {
                continue;
            };
            // tcpdump cannot open a device that is down, and a down device carries nothing.
            let up = l["flags"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x.as_str() == Some("UP")));
            if !up {
                continue;
            }
            let place = format!("{label}:{ifname}");
            let file = capdir.join(format!("{}.pcap", place.replace(':', "_")));
            let fs = file.to_string_lossy().into_owned();
            let mut child = grouped(&[
                "ip",
                "netns",
                "exec",
                real,
                "tcpdump",
                "-p",
                "--immediate-mode",
                "-U",
                "-Z",
                "root",
                "-n",
                "-i",
                ifname,
                "-w",
                &fs,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start tcpdump: {e}"))?;
            g.track(child.id());
            let stderr = BufReader::new(child.stderr.take().unwrap());
            caps.push(Capture {
                place,
                file,
                child,
                stderr,
            });
        }
    }
    for c in &mut caps {
        let mut line = String::new();
        let mut said = String::new();
        loop {
            line.clear();
            match c.stderr.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    return Err(format!(
                        "tcpdump on {} did not start: {}",
                        c.place,
                        said.trim()
                    ));
                }
                Ok(_) if line.contains("listening on") => break,
                Ok(_) => said.push_str(&line),
            }
        }
    }

    // The timeline, at its times: pings run in the background, other commands to completion.
    let mut timeline: Vec<usize> = (0..sc.commands.len())
        .filter(|&i| matches!(sc.commands[i].source, CmdSource::Timeline { .. }))
        .collect();
    timeline.sort_by_key(|&i| sc.commands[i].at);
    #[allow(clippy::disallowed_methods)] // wall clock of the real run
    let t0 = std::time::Instant::now();
    #[allow(clippy::disallowed_methods)] // pcap timestamps are wall-clock
    let t0_wall = SystemTime::now();
    let mut background: Vec<(usize, Child)> = Vec::new();
    for i in timeline {
        let at = Duration::from_nanos(sc.commands[i].at.as_nanos());
        let now = t0.elapsed();
        if at > now {
            std::thread::sleep(at - now);
        }
        if let Some(child) = run_line(i)? {
            if is_ping(&sc.commands[i].cmd.kind) {
                background.push((i, child));
            } else {
                let r = finish(child);
                note_overflow(&r.stderr, &sc.commands[i].text);
                added(i, &r)?;
                obs.commands[i] = Some(r);
            }
        }
    }
    let left = spec.until.saturating_sub(t0.elapsed());
    std::thread::sleep(left);
    for (i, mut child) in background {
        let done = wait_for(&mut child, Duration::from_secs(30));
        let mut r = finish(child);
        // ping exits 1 when no reply came: that is its result, not a failure
        // to run (podpath's ping, too, "succeeds" and reports the loss).
        if r.failed && r.code == Some(1) {
            r.failed = false;
        }
        if !done {
            r.stderr.push_str("\n(killed by the harness after 30 s)");
        }
        note_overflow(&r.stdout, &sc.commands[i].text);
        note_overflow(&r.stderr, &sc.commands[i].text);
        if let CommandKind::Ping(_) = &sc.commands[i].cmd.kind {
            obs.pings
                .push(PingObs::from_transcript(i, &r.stdout, &r.stderr));
        }
        obs.commands[i] = Some(r);
    }
    obs.pings.sort_by_key(|p| (sc.commands[p.cmd].at, p.cmd));

    // Stop the captures, then read them.
    for c in &mut caps {
        terminate(&mut c.child, g, Duration::from_secs(5));
        let mut rest = String::new();
        let _ = c.stderr.read_to_string(&mut rest);
    }
    let t0_ns = t0_wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    for c in &caps {
        let bytes = std::fs::read(&c.file).map_err(|e| format!("{}: {e}", c.file.display()))?;
        let (linktype, recs) =
            frames::read_pcap(&bytes).map_err(|e| format!("{}: {e}", c.file.display()))?;
        for (ts, b) in recs {
            obs.frames.push(Frame {
                place: c.place.clone(),
                time_ns: ts - t0_ns,
                linktype,
                bytes: b,
            });
        }
    }
    obs.frames
        .sort_by(|a, b| (a.time_ns, &a.place).cmp(&(b.time_ns, &b.place)));

    // Tables, as the tools print them, and the devices' MACs.
    const SEP: &str = "@@ppk-dump@@";
    let script = [
        "ip link show",
        "ip addr show",
        "ip -4 route show table all",
        "ip -4 rule show",
        "ip -4 neigh show",
        "bridge fdb show",
        "iptables -S",
        "ip -d -j link show",
        "ip -j addr show",
        "ip -j route show table all",
        "ip -j neigh show",
        "bridge -j fdb show",
    ]
    .join(&format!("; echo {SEP}; "));
    let dumps = spec.artefacts.join("tables");
    let _ = std::fs::remove_dir_all(&dumps);
    std::fs::create_dir_all(&dumps).map_err(|e| e.to_string())?;
    for (label, real) in &places {
        let out = must(&["ip", "netns", "exec", real, "sh", "-c", &script])?;
        let _ = std::fs::write(dumps.join(format!("{}.txt", label.replace(':', "_"))), &out);
        let parts: Vec<String> = out
            .split(&format!("{SEP}\n"))
            .map(|s| n.unmap(sc, s))
            .collect();
        if parts.len() != 12 {
            return Err(format!("unexpected dump from {real}"));
        }
        let mut t = BTreeMap::new();
        for (k, name) in [
            "links", "addrs", "routes", "rules", "neigh", "fdb", "iptables",
        ]
        .iter()
        .enumerate()
        {
            t.insert(*name, parts[k].clone());
        }
        obs.tables.insert(label.clone(), t);
        let v: serde_json::Value = serde_json::from_str(&parts[7]).map_err(|e| e.to_string())?;
        for l in v.as_array().into_iter().flatten() {
            let (Some(ifname), Some(addr)) = (l["ifname"].as_str(), l["address"].as_str()) else {
                continue;
            };
            let Some(mac) = parse_mac(addr) else { continue };
            obs.devices.push(DevInfo {
                label: format!("{label}:{ifname}"),
                mac,
                enslaved: l.get("master").is_some(),
                bridge: l["linkinfo"]["info_kind"].as_str() == Some("bridge"),
                harness: false,
            });
        }
    }
    // The segments' bridges and ports: frames they send themselves are the harness's.
    for s in &sc.segments {
        let links = must(&["ip", "-n", &n.segment(&s.name), "-j", "link", "show"])?;
        let v: serde_json::Value = serde_json::from_str(&links).map_err(|e| e.to_string())?;
        for l in v.as_array().into_iter().flatten() {
            let (Some(ifname), Some(addr)) = (l["ifname"].as_str(), l["address"].as_str()) else {
                continue;
            };
            let Some(mac) = parse_mac(addr) else { continue };
            obs.devices.push(DevInfo {
                label: format!("harness:seg-{}:{ifname}", s.name),
                mac,
                enslaved: true,
                bridge: false,
                harness: true,
            });
        }
    }

    if overflow.is_none() && arp_table_fulls() > fulls_before {
        overflow = Some(
            "the machine's ARP table was full during the run (/proc/net/stat/arp_cache table_fulls rose)"
                .into(),
        );
    }
    let mut notes = Vec::new();
    let entries = arp_entries();
    if entries >= 128 {
        notes.push(format!(
            "the machine's ARP table held {entries} entries (all namespaces), at or above gc_thresh1 (128): the kernel's periodic GC may have removed FAILED or stale entries that podpath, counting only this scenario's, keeps"
        ));
    }
    Ok(KernelRun {
        obs,
        notes,
        arp_overflow: overflow,
        wall: started.elapsed(),
    })
}

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let v: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    v.try_into().ok()
}
