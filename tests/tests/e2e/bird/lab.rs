//! Real BIRD in network namespaces: one per node on one bridge.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sim_core::net::Ipv4Net;
use sim_models::bgp::CalicoCluster;

use super::{Route, SUBNET};

/// What real BIRD converged to.
pub struct Real {
    /// Node name -> prefix -> route (`ip -j route show proto bird`).
    pub routes: BTreeMap<String, BTreeMap<Ipv4Net, Route>>,
    /// Node name -> prefix -> BIRD's table (`birdc show route`).
    pub table: BTreeMap<String, BTreeMap<Ipv4Net, TableEntry>>,
    /// BGP sessions Established (both ends counted).
    pub sessions: usize,
    /// Wall-clock time from starting the daemons to stable tables.
    pub wall: Duration,
}

use crate::host::{must, run as run_cmd};

/// Why real BIRD cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    crate::host::unavailable(
        "ppb",
        &[
            &["ip", "-V"],
            &["bird", "--version"],
            &["birdc", "--version"],
            &["kill", "-l"],
        ],
    )
}

/// Deletes namespaces left by runs of this harness whose process is gone.
pub fn sweep_stale() {
    crate::host::sweep_stale("ppb");
}

/// Stops the daemons this run started (by pid) and deletes its namespaces,
/// also when the test panics.
struct Guard {
    prefix: String,
    children: Vec<Child>,
    sockdir: PathBuf,
}

impl Guard {
    fn new(prefix: String, sockdir: PathBuf) -> Guard {
        let g = Guard {
            prefix,
            children: Vec::new(),
            sockdir,
        };
        g.delete_namespaces();
        g
    }

    fn delete_namespaces(&self) {
        crate::host::delete_namespaces(&self.prefix);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.children {
            if matches!(c.try_wait(), Ok(None)) {
                // Each daemon leads its own process group.
                let _ = run_cmd(&["kill", "-TERM", "--", &format!("-{}", c.id())]);
            }
        }
        for c in &mut self.children {
            for _ in 0..50 {
                if !matches!(c.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(c.try_wait(), Ok(None)) {
                let _ = run_cmd(&["kill", "-KILL", "--", &format!("-{}", c.id())]);
                let _ = c.wait();
            }
        }
        self.delete_namespaces();
        let _ = std::fs::remove_dir_all(&self.sockdir);
    }
}

/// Reads `ip -j route show proto bird` into routes.
pub fn parse_routes(json: &str) -> Result<BTreeMap<Ipv4Net, Route>, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("ip -j route: {e}: {json}"))?;
    let mut out = BTreeMap::new();
    for r in v.as_array().ok_or("ip -j route: not an array")? {
        let dst = r["dst"].as_str().ok_or("a route without dst")?;
        let dst: Ipv4Net = if dst == "default" {
            "0.0.0.0/0".parse().unwrap()
        } else if dst.contains('/') {
            dst.parse().map_err(|e| format!("{dst}: {e:?}"))?
        } else {
            format!("{dst}/32")
                .parse()
                .map_err(|e| format!("{dst}: {e:?}"))?
        };
        let hop = |h: &serde_json::Value| -> Option<(std::net::Ipv4Addr, String)> {
            Some((
                h["gateway"].as_str()?.parse().ok()?,
                h["dev"].as_str()?.to_string(),
            ))
        };
        let route = if r["type"].as_str() == Some("blackhole") {
            Route::Blackhole
        } else if let Some(hops) = r["nexthops"].as_array() {
            let mut v: Vec<_> = hops.iter().filter_map(hop).collect();
            v.sort();
            Route::Via(v)
        } else if let Some(h) = hop(r) {
            Route::Via(vec![h])
        } else if let (None, Some(dev)) = (r.get("gateway"), r["dev"].as_str()) {
            Route::Device(dev.to_string())
        } else {
            Route::Other(r.to_string())
        };
        out.insert(dst, route);
    }
    Ok(out)
}

/// A prefix in BIRD's table: the protocol of the best route (marked `*`)
/// and the protocols of all its routes.
pub type TableEntry = (Option<String>, BTreeSet<String>);

/// Reads `birdc show route`.
pub fn parse_table(text: &str) -> BTreeMap<Ipv4Net, TableEntry> {
    let mut out: BTreeMap<Ipv4Net, TableEntry> = BTreeMap::new();
    let mut current: Option<Ipv4Net> = None;
    for l in text.lines() {
        if l.starts_with(|c: char| c.is_ascii_digit()) {
            current = l.split_whitespace().next().and_then(|p| p.parse().ok());
        }
        if let (Some(p), Some(b)) = (current, l.find('[')) {
            let rest = &l[b + 1..];
            let proto = rest.split_whitespace().next().unwrap_or("").to_string();
            let e = out.entry(p).or_default();
            if rest.contains("] * ") {
                e.0 = Some(proto.clone());
            }
            e.1.insert(proto);
        }
    }
    out
}

/// Builds the lab, runs BIRD to stable tables and reads them.
pub fn run(tag: &str, test: &str, cluster: &CalicoCluster) -> Result<Real, String> {
    let prefix = format!("ppb{}s{tag}-", std::process::id());
    let sockdir = std::env::temp_dir().join(format!("ppb{}s{tag}", std::process::id()));
    let artefacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("bird")
        .join(test);
    let _ = std::fs::remove_dir_all(&artefacts);
    std::fs::create_dir_all(&artefacts).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&sockdir).map_err(|e| e.to_string())?;
    let mut guard = Guard::new(prefix.clone(), sockdir.clone());
    let plen = SUBNET.split('/').nth(1).unwrap();

    let br = format!("{prefix}br");
    must(&["ip", "netns", "add", &br])?;
    must(&["ip", "-n", &br, "link", "set", "lo", "up"])?;
    must(&["ip", "-n", &br, "link", "add", "br0", "type", "bridge"])?;
    must(&["ip", "-n", &br, "link", "set", "br0", "up"])?;
    let mut names = Vec::new();
    for (i, n) in cluster.nodes.iter().enumerate() {
        let ns = format!("{prefix}n{i}");
        must(&["ip", "netns", "add", &ns])?;
        must(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        let port = format!("p{i}");
        // Both ends are created in their namespaces: nothing in the root one.
        must(&[
            "ip", "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port,
            "netns", &br,
        ])?;
        must(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/{plen}", n.address),
            "dev",
            "eth0",
        ])?;
        must(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
        must(&["ip", "-n", &br, "link", "set", &port, "master", "br0"])?;
        must(&["ip", "-n", &br, "link", "set", &port, "up"])?;
        names.push(ns);
    }

    #[allow(clippy::disallowed_methods)] // wall-clock time of the real daemons, for the report
    let started = std::time::Instant::now();
    for (i, ns) in names.iter().enumerate() {
        let cfg = artefacts.join(format!("{}.bird.cfg", cluster.nodes[i].name));
        std::fs::write(&cfg, cluster.bird_config(i)).map_err(|e| e.to_string())?;
        let sock = sockdir.join(format!("n{i}.sock"));
        let pid = sockdir.join(format!("n{i}.pid"));
        let log = std::fs::File::create(artefacts.join(format!("{}.log", cluster.nodes[i].name)))
            .map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "bird", "-f", "-c"])
            .arg(&cfg)
            .arg("-s")
            .arg(&sock)
            .arg("-P")
            .arg(&pid)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("bird: {e}"))?;
        guard.children.push(child);
    }

    // Wait for every BGP session, then for the tables to stop changing.
    let deadline = Duration::from_secs(120);
    let mut stable = 0;
    let mut last: Option<BTreeMap<String, BTreeMap<Ipv4Net, Route>>> = None;
    let mut sessions;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        for (i, c) in guard.children.iter_mut().enumerate() {
            if let Ok(Some(st)) = c.try_wait() {
                let log = std::fs::read_to_string(
                    artefacts.join(format!("{}.log", cluster.nodes[i].name)),
                )
                .unwrap_or_default();
                return Err(format!(
                    "bird of {} exited ({st}):\n{log}",
                    cluster.nodes[i].name
                ));
            }
        }
        let mut up = true;
        sessions = 0;
        let mut protocols = String::new();
        for i in 0..names.len() {
            let sock = sockdir.join(format!("n{i}.sock"));
            let o = run_cmd(&["birdc", "-s", &sock.to_string_lossy(), "show", "protocols"]);
            for l in o.stdout.lines().filter(|l| l.contains(" BGP ")) {
                if l.contains("Established") {
                    sessions += 1;
                } else {
                    up = false;
                }
            }
            if !o.ok || !o.stdout.contains(" BGP ") {
                up = false;
            }
            protocols.push_str(&format!("{}:\n{}", cluster.nodes[i].name, o.stdout));
        }
        let mut now = BTreeMap::new();
        for (i, ns) in names.iter().enumerate() {
            let json = must(&["ip", "-n", ns, "-j", "route", "show", "proto", "bird"])?;
            now.insert(cluster.nodes[i].name.clone(), parse_routes(&json)?);
        }
        if up && last.as_ref() == Some(&now) {
            stable += 1;
        } else {
            stable = 0;
        }
        last = Some(now);
        // Three unchanged reads over 1.5 s, more than the kernel protocol's
        // scan time would take to show a late change.
        if stable >= 3 {
            break;
        }
        if started.elapsed() > deadline {
            return Err(format!(
                "not converged after {deadline:?} (sessions up: {up}):\n{protocols}"
            ));
        }
    }
    let wall = started.elapsed();
    let routes = last.unwrap_or_default();
    let mut table = BTreeMap::new();
    for i in 0..names.len() {
        let sock = sockdir.join(format!("n{i}.sock"));
        let text = must(&["birdc", "-s", &sock.to_string_lossy(), "show", "route"])?;
        let name = &cluster.nodes[i].name;
        let _ = std::fs::write(artefacts.join(format!("{name}.show-route")), &text);
        table.insert(name.clone(), parse_table(&text));
    }
    for (name, r) in &routes {
        let text: String = r.iter().map(|(p, r)| format!("{p} {r}\n")).collect();
        let _ = std::fs::write(artefacts.join(format!("{name}.routes")), text);
    }
    drop(guard);
    Ok(Real {
        routes,
        table,
        sessions,
        wall,
    })
}
