//! Generated clusters at scale: building one (generating every node's
//! configuration, loading it, running setup) and tracing one pod-to-pod
//! probe in it. See docs/performance.md ("Clusters") for what is measured
//! and the figures.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use scenarios::RunOptions;
use scenarios::reach::{endpoints, probe};
use sim_core::time::SimTime;

fn scenario(cni: &str, nodes: u32) -> String {
    if cni == "calico-ipip" {
        // Two route reflectors, BGP converged by the fabric engine.
        return format!(
            "Scenario(name: \"bench\", cluster: Cluster(cni: \"calico-ipip\", cluster_cidr: \"10.0.0.0/8\", nodes: Nodes(count: {nodes}), underlay: L2(subnet: \"172.16.0.0/12\"), calico: Calico(route_reflectors: 2, bgp_engine: \"fabric\")))"
        );
    }
    let underlay = if cni == "kubenet" {
        format!("Vpc(cidr: \"172.16.0.0/12\", route_limit: {nodes})")
    } else {
        "L2(subnet: \"172.16.0.0/12\")".to_string()
    };
    format!(
        "Scenario(name: \"bench\", cluster: Cluster(cni: \"{cni}\", cluster_cidr: \"10.0.0.0/8\", nodes: Nodes(count: {nodes}), underlay: {underlay}))"
    )
}

fn setup(src: &str) -> (scenarios::Scenario, scenarios::RunResult) {
    let sc = scenarios::load_str("bench.ron", src).expect("loads");
    // As `podpath reach` sets up: no log line per command of a batch.
    let opts = RunOptions {
        until: Some(SimTime::ZERO),
        quiet_batches: true,
        ..Default::default()
    };
    let mut r = scenarios::run(&sc, &opts);
    assert_eq!(r.outcome, scenarios::Outcome::Passed);
    // A BGP-built cluster: until its routes are installed.
    if !sc.bird.is_empty() {
        scenarios::routes::settle(&mut r.sim, sc.bird_start, &Default::default()).unwrap();
    }
    (sc, r)
}

const MODES: &[&str] = &[
    "flannel-vxlan",
    "flannel-host-gw",
    "calico-vxlan",
    "kubenet",
];

fn build(c: &mut Criterion) {
    let mut g = c.benchmark_group("cluster_build");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    for cni in MODES {
        let src = scenario(cni, 100);
        g.bench_with_input(BenchmarkId::new(*cni, 100), &src, |b, src| {
            b.iter(|| black_box(setup(src)))
        });
    }
    for (cni, n) in [
        ("flannel-vxlan", 1000),
        ("flannel-host-gw", 1000),
        ("calico-vxlan", 1000),
        ("kubenet", 1000),
        ("calico-ipip", 100),
        ("calico-ipip", 1000),
    ] {
        let src = scenario(cni, n);
        g.bench_with_input(BenchmarkId::new(cni, n), &src, |b, src| {
            b.iter(|| black_box(setup(src)))
        });
    }
    g.finish();
}

/// One probe, node1's pod to another node's pod and back, on a set-up
/// cluster; each iteration probes the next destination node in turn.
fn trace(c: &mut Criterion) {
    let mut g = c.benchmark_group("cluster_trace");
    g.sample_size(50);
    let cases: Vec<(&str, u32)> = vec![
        ("flannel-vxlan", 100),
        ("flannel-vxlan", 1000),
        ("flannel-host-gw", 100),
        ("flannel-host-gw", 1000),
        ("calico-vxlan", 100),
        ("calico-vxlan", 1000),
        ("kubenet", 100),
        ("kubenet", 1000),
        ("kubenet", 5000),
        ("calico-ipip", 100),
        ("calico-ipip", 1000),
    ];
    for (cni, n) in cases {
        let (sc, mut r) = setup(&scenario(cni, n));
        let eps = endpoints(&sc, &r.sim);
        let ns = r.sim.world.find_ns(&eps[0].place).unwrap();
        let mut next = 1;
        // Check first: every destination answers.
        for e in eps.iter().skip(1).take(20) {
            let (ok, f, _) = probe(&mut r.sim, ns, e.ip, false).unwrap();
            assert!(ok, "{cni} {n}: {f:?}");
        }
        g.bench_function(BenchmarkId::new(cni, n), |b| {
            b.iter(|| {
                let dst = eps[next].ip;
                next = if next + 1 == eps.len() { 1 } else { next + 1 };
                black_box(probe(&mut r.sim, ns, dst, false).unwrap())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, build, trace);
criterion_main!(benches);
