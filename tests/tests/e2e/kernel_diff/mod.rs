//! Differential testing against the real Linux kernel (issue 7).
//!
//! Each bundled scenario that uses only devices this kernel has is replayed
//! on the machine's kernel (`kernel.rs`: a namespace per host, per named
//! namespace and per L2 segment, the scenario's own commands, a tcpdump
//! capture on every interface) and run in podpath (`podpath.rs`: the model's
//! capture hook on every device), and the two are compared (`compare.rs`):
//! command failures and messages, each ping's reachability and output, every
//! frame seen on every interface (grouped per packet), and the neighbour,
//! FDB, route, rule, link, address and iptables tables after the run.
//!
//! Deliberate differences are normalised in code that names their entry in
//! `tests/kernel-diff/known-differences.md` (`known.rs`). Anything else is a
//! difference, printed with both sides, and fails the test.
//!
//! Without root, `ip`, `tcpdump` or namespaces the tests print
//! "skipped kernel comparison: <why>" and pass, unless
//! `PODPATH_REQUIRE_KERNEL=1`. `PODPATH_KERNEL_DIFF_ONLY=NAME[,NAME]` runs
//! only those scenarios. Captures and table dumps of the last run are kept
//! under `$CARGO_TARGET_TMPDIR/kernel-diff/`.

mod compare;
mod frames;
mod kernel;
mod known;
mod podpath;
mod rewrite;

use crate::host::say;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use scenarios::Scenario;
use sim_core::time::SimTime;
use sim_models::cmd::{CommandKind, LinkCmd, LinkKind};

use self::compare::Report;

/// One command's result.
#[derive(Clone, Debug, Default)]
pub struct CmdResult {
    pub failed: bool,
    /// The exit status (kernel side).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// One ping's result.
#[derive(Clone, Debug)]
pub struct PingObs {
    /// Index into the scenario's commands.
    pub cmd: usize,
    pub transmitted: u32,
    pub received: u32,
    pub transcript: String,
}

impl PingObs {
    /// Reads iputils ping's summary line.
    pub fn from_transcript(cmd: usize, stdout: &str, stderr: &str) -> PingObs {
        let (mut transmitted, mut received) = (0, 0);
        for l in stdout.lines() {
            if let Some((a, rest)) = l.split_once(" packets transmitted, ") {
                transmitted = a.trim().parse().unwrap_or(0);
                received = rest
                    .split_whitespace()
                    .next()
                    .and_then(|x| x.parse().ok())
                    .unwrap_or(0);
            }
        }
        let mut transcript = stdout.to_string();
        transcript.push_str(stderr);
        PingObs {
            cmd,
            transmitted,
            received,
            transcript,
        }
    }
}

/// A device and its MAC, for naming MACs.
#[derive(Clone, Debug)]
pub struct DevInfo {
    /// `node1:test3:veth3`.
    pub label: String,
    pub mac: [u8; 6],
    pub enslaved: bool,
    pub bridge: bool,
    /// A device of the harness itself (a segment's bridge or port), not of the scenario.
    pub harness: bool,
}

/// What one side saw.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Per scenario command; None = not run (or not reached).
    pub commands: Vec<Option<CmdResult>>,
    pub pings: Vec<PingObs>,
    pub frames: Vec<frames::Frame>,
    /// Place -> table name -> text as the tool prints it.
    pub tables: BTreeMap<String, BTreeMap<&'static str, String>>,
    pub devices: Vec<DevInfo>,
    /// podpath stopped early (a command disagreed, or a bound).
    pub stopped: Option<String>,
}

fn only_filter() -> Option<Vec<String>> {
    #[allow(clippy::disallowed_methods)] // test orchestration, not a simulation path
    let v = std::env::var("PODPATH_KERNEL_DIFF_ONLY").ok()?;
    Some(v.split(',').map(|s| s.trim().to_string()).collect())
}

/// Ok(()) when the kernel comparison can run here; otherwise prints why
/// and returns Err (or panics when PODPATH_REQUIRE_KERNEL=1).
fn kernel_or_skip(test: &str) -> Result<(), ()> {
    static CHECK: crate::host::Availability =
        crate::host::Availability::new("kernel", kernel::unavailable);
    CHECK.or_skip(test)
}

/// Why the scenario cannot be replayed here, if it cannot: it needs a device
/// this kernel lacks (no ipip, no dummy), or it runs nc or iperf3 (the
/// harness runs every line to completion, so a listener would block it, and
/// podpath's `nc --send` has no counterpart in the real nc).
fn not_replayable(sc: &Scenario) -> Option<&'static str> {
    if !sc.bird.is_empty() {
        return Some("runs BIRD: BGP is compared with real BIRD by the `bird` tests");
    }
    sc.commands.iter().find_map(|c| match &c.cmd.kind {
        CommandKind::Modprobe { module }
            if module == "br_netfilter"
                && !std::path::Path::new("/proc/sys/net/bridge").exists() =>
        {
            Some("needs br_netfilter, which is not loaded (the harness loads no module)")
        }
        CommandKind::Link(LinkCmd::Add {
            kind: LinkKind::Ipip(_),
            ..
        })
        | CommandKind::Tunnel(_) => Some("needs ipip devices"),
        CommandKind::Modprobe { module } if module == "ipip" => Some("needs ipip devices"),
        CommandKind::Link(LinkCmd::Add {
            kind: LinkKind::Dummy,
            ..
        }) => Some("needs dummy devices"),
        CommandKind::Nc(_) | CommandKind::Iperf3(_) => Some("runs nc or iperf3"),
        _ => None,
    })
}

/// Unique per process and per concurrent run: `ppk<pid>s<tag>-`.
fn prefix(tag: &str) -> String {
    format!("ppk{}s{tag}-", std::process::id())
}

/// Longest the kernel side waits for a scenario's timeline (scenarios without
/// a short `until` are cut here, on both sides).
const MAX_UNTIL: SimTime = SimTime::from_nanos(30_000_000_000);

/// Replays one scenario on the kernel (retrying when the machine's shared ARP
/// table overflows) and in podpath, and compares them.
fn compare_scenario(sc: &Scenario, name: &str, tag: &str) -> Report {
    let until = sc.until(&Default::default()).min(MAX_UNTIL);
    let _ = known::take();
    let artefacts = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("kernel-diff")
        .join(name);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let guard = kernel::Guard::new(prefix(tag));
        let spec = kernel::RunSpec {
            sc,
            names: kernel::Names {
                prefix: prefix(tag),
            },
            guard: &guard,
            nic_macs: podpath::nic_macs(sc),
            until: Duration::from_nanos(until.as_nanos()),
            artefacts: artefacts.clone(),
        };
        let k = kernel::replay(&spec);
        drop(guard);
        let k = match k {
            Ok(k) => k,
            Err(e) => return Report::harness_error(name, e),
        };
        if let Some(why) = &k.arp_overflow {
            say(&format!(
                "kernel-diff {name}: attempt {attempt}: {why} (the kernel's ARP table is shared by every namespace on the machine and capped by gc_thresh3; another workload filled it): retrying\n"
            ));
            if attempt < 4 {
                std::thread::sleep(Duration::from_secs(5 * attempt));
                continue;
            }
            return Report::harness_error(
                name,
                format!("{why}, {attempt} times: no comparison made"),
            );
        }
        let failed: Vec<Option<bool>> = k
            .obs
            .commands
            .iter()
            .map(|c| c.as_ref().map(|c| c.failed))
            .collect();
        let p = podpath::run(sc, until, &failed);
        let mut r = compare::compare(sc, name, &k.obs, &p);
        r.wall = k.wall;
        r.notes = k.notes;
        r.known = known::take();
        return r;
    }
}

/// The bundled scenarios, with those this kernel cannot run set aside.
fn bundled_scenarios() -> (Vec<(String, Scenario)>, Vec<String>) {
    let mut run = Vec::new();
    let mut skipped = Vec::new();
    let only = only_filter();
    for f in crate::bundled() {
        let name = std::path::Path::new(&f)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if only.as_ref().is_some_and(|o| !o.contains(&name)) {
            continue;
        }
        let mut sc = scenarios::load_file(&f).unwrap_or_else(|d| panic!("{f}: {d:?}"));
        // Every line, as the kernel runs them (a cluster's entries for the
        // other nodes are loaded as batches).
        sc.expand_batches();
        match not_replayable(&sc) {
            Some(why) => skipped.push(format!("{name} ({why})")),
            None => run.push((name, sc)),
        }
    }
    (run, skipped)
}

/// A job for [`in_parallel`].
type Job<'a, T> = Box<dyn FnOnce() -> T + Send + 'a>;

/// Runs `jobs` at most `width` at a time.
fn in_parallel<T: Send>(jobs: Vec<Job<'_, T>>, width: usize) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Job<'_, T>>>> =
        jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
    let results: Vec<Mutex<Option<T>>> = slots.iter().map(|_| Mutex::new(None)).collect();
    // Scenario replays mostly wait on the kernel's timers; a few at a time
    // keep the test well under its time budget. Threads are test
    // orchestration here, outside any simulation path.
    #[allow(clippy::disallowed_methods)]
    std::thread::scope(|s| {
        for _ in 0..width.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(slot) = slots.get(i) else { break };
                    let job = slot.lock().unwrap().take().unwrap();
                    let r = job();
                    *results[i].lock().unwrap() = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| m.into_inner().unwrap().unwrap())
        .collect()
}

#[test]
fn bundled_scenarios_agree_with_the_kernel() {
    let test = "bundled_scenarios_agree_with_the_kernel";
    if kernel_or_skip(test).is_err() {
        return;
    }
    kernel::sweep_stale();
    #[allow(clippy::disallowed_methods)] // wall-clock run time of the test, for the report
    let started = std::time::Instant::now();
    let (scs, skipped) = bundled_scenarios();
    let jobs: Vec<Job<'_, Report>> = scs
        .iter()
        .enumerate()
        .map(|(k, (name, sc))| {
            Box::new(move || compare_scenario(sc, name, &k.to_string())) as Job<'_, Report>
        })
        .collect();
    let reports = in_parallel(jobs, 4);
    let mut text = String::new();
    for r in &reports {
        text.push_str(&r.render());
    }
    text.push_str(&compare::summary(&reports, &skipped, started.elapsed()));
    say(&text);
    let bad: Vec<&str> = reports
        .iter()
        .filter(|r| !r.clean())
        .map(|r| r.name.as_str())
        .collect();
    assert!(
        bad.is_empty(),
        "podpath and the kernel disagree on {}: see the report above",
        bad.join(", ")
    );
}

/// iproute2's and the kernel's messages for common mistakes, which podpath
/// must reproduce exactly.
const ERRORS_SCENARIO: &str = r#"Scenario(
    name: "kernel-errors",
    segments: [Segment(name: "lan")],
    hosts: [
        Host(
            name: "a",
            nics: [Nic(name: "eth0", segment: "lan", address: "192.168.1.2/24")],
            setup: r"
ip link add v0 type veth peer name v1
ip route add 10.0.0.0/8 via 10.9.9.9
ip route add 10.1.0.0/16 dev nosuch
ip route add 10.2.0.0/16 dev eth0 src 192.168.1.99
ip route add 10.3.0.0/16 via 192.168.1.1 dev eth0 src 192.168.1.99
ip link set nosuch up
ip addr add 10.3.0.1/24 dev nosuch
ip route add 192.168.1.0/24 dev eth0
ip route add 10.4.0.0/16 via 10.4.0.1 dev v0 onlink
ip route add 10.5.0.0/16 dev v0
ip route add 10.5.0.0/16 via 192.168.1.1 dev v0
ip netns exec nosuchns ip link set lo up
ip neigh add 10.6.0.1 lladdr 02:00:00:00:00:09 dev nosuch
ip route del 10.7.0.0/16
ip addr add 192.168.1.2/24 dev eth0
ip link add v0 type veth peer name v2
ip link add name x type veth mtu 1450 peer name y
ip link set eth0 master nosuch
bridge fdb add 02:00:00:00:00:01 dev nosuch
",
        ),
    ],
    expect: [
        CommandError(on: "a", command: "ip link add name x type veth mtu 1450 peer name y", error: "Usage: ip link <options> type veth [peer <options>]"),
    ],
    limits: Limits(until: "1s"),
)"#;

#[test]
fn iproute2_error_messages_match_the_kernel() {
    let test = "iproute2_error_messages_match_the_kernel";
    if kernel_or_skip(test).is_err() {
        return;
    }
    let sc = scenarios::load_str("kernel-errors.ron", ERRORS_SCENARIO)
        .unwrap_or_else(|d| panic!("{d:?}"));
    let r = compare_scenario(&sc, "kernel-errors", "err");
    say(&r.render());
    assert!(
        r.harness_error.is_none(),
        "no comparison was made: see above"
    );
    let failing = r.kernel_failures;
    assert!(
        failing >= 15,
        "expected most lines to fail on the kernel, {failing} did"
    );
    assert!(
        r.clean(),
        "podpath's messages differ from the kernel's: see above"
    );
}
