//! Cold-start BGP convergence at scale, for benches/compare-bird.sh and
//! docs/performance.md: converges a synthetic Calico cluster in podpath and
//! prints wall time, CPU time, peak RSS and the convergence figures; or
//! writes each node's bird.cfg for real BIRD.
//!
//! ```text
//! bgp_scale converge mesh N [--repeat K]
//! bgp_scale converge rr CLIENTS [REFLECTORS] [--repeat K]   # K runs; CPU time is per run
//! bgp_scale bird-configs rr CLIENTS [REFLECTORS] DIR   # DIR/<node>.cfg, DIR/nodes (name address)
//! ```

use sim_models::bgp::{CalicoCluster, FabricOptions, converge};

fn cluster(args: &[String]) -> CalicoCluster {
    let n = |i: usize, d: u32| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    match args.first().map(String::as_str) {
        Some("mesh") => CalicoCluster::synthetic_mesh(n(1, 100)),
        Some("rr") => CalicoCluster::synthetic_reflectors(n(1, 100), n(2, 1)),
        _ => panic!("usage: bgp_scale converge|bird-configs mesh N | rr CLIENTS [REFLECTORS]"),
    }
}

/// utime + stime of this process, in seconds, and VmHWM in KiB.
fn usage() -> (f64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after ")".
    let ticks: u64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    (ticks as f64 / 100.0, hwm)
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut repeat = 1u32;
    if let Some(i) = args.iter().position(|a| a == "--repeat") {
        repeat = args
            .get(i + 1)
            .and_then(|k| k.parse().ok())
            .unwrap_or(1)
            .max(1);
        args.drain(i..(i + 2).min(args.len()));
    }
    match args.first().map(String::as_str) {
        Some("converge") => {
            let c = cluster(&args[1..]);
            let nodes = c.nodes.len();
            let (cpu0, _) = usage();
            // Wall-clock time of the whole run: a measurement, not a simulation path.
            #[allow(clippy::disallowed_methods)]
            let t = std::time::Instant::now();
            let mut conv = converge(&c, 1, FabricOptions::default()).expect("converges");
            for _ in 1..repeat {
                drop(conv);
                conv = converge(&c, 1, FabricOptions::default()).expect("converges");
            }
            let wall = t.elapsed().as_secs_f64() / repeat as f64;
            let (cpu1, hwm) = usage();
            let routes: usize = (0..nodes).map(|i| conv.loc_rib(i).len()).sum();
            let s = conv.stats;
            println!(
                "nodes {nodes} wall_s {wall:.3} cpu_s {:.3} peak_rss_mib {:.1} loc_rib_routes {routes} \
                 quiescent_at {} last_route_change {} events {} messages {} updates {} announced {} withdrawn {} installs {} \
                 deferred {}",
                (cpu1 - cpu0) / repeat as f64,
                hwm as f64 / 1024.0,
                conv.at,
                s.last_route_change.map_or("-".into(), |t| t.to_string()),
                s.events,
                s.messages,
                s.updates,
                s.announced,
                s.withdrawn,
                s.installs,
                conv.fabric.deferred_receipts(),
            );
        }
        Some("bird-configs") => {
            let dir = std::path::PathBuf::from(args.last().expect("a directory"));
            let c = cluster(&args[1..args.len() - 1]);
            std::fs::create_dir_all(&dir).expect("mkdir");
            let mut list = String::new();
            for (i, n) in c.nodes.iter().enumerate() {
                std::fs::write(dir.join(format!("{}.cfg", n.name)), c.bird_config(i))
                    .expect("write");
                list.push_str(&format!("{} {}\n", n.name, n.address));
            }
            std::fs::write(dir.join("nodes"), list).expect("write");
        }
        _ => panic!("usage: bgp_scale converge|bird-configs ..."),
    }
}
