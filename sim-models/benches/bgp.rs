//! Cold-start BGP convergence of synthetic Calico clusters over the
//! in-memory fabric (`sim_models::bgp::converge`), simulated timers
//! included: one route reflector with 100, 300 and 500 clients (the cases
//! benches/compare-bird.sh runs on real BIRD too), a 100-node full mesh,
//! and growth with node count behind two reflectors. Figures and how they
//! compare are in docs/performance.md.
//!
//! `PODPATH_BGP_BENCH_BIG=1` adds 1,000 and 5,000 nodes behind two
//! reflectors (slow: seconds to minutes per iteration).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sim_models::bgp::{CalicoCluster, FabricOptions, converge};

fn run(c: &CalicoCluster) -> u64 {
    let conv = converge(c, 1, FabricOptions::default()).expect("converges");
    conv.stats.installs
}

fn benches(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("bgp_rr1");
    g.sample_size(10);
    for n in [100u32, 300, 500] {
        let c = CalicoCluster::synthetic_reflectors(n, 1);
        g.bench_with_input(BenchmarkId::from_parameter(n), &c, |b, c| b.iter(|| run(c)));
    }
    g.finish();

    let mut g = cr.benchmark_group("bgp_mesh");
    g.sample_size(10);
    let c = CalicoCluster::synthetic_mesh(100);
    g.bench_with_input(BenchmarkId::from_parameter(100), &c, |b, c| {
        b.iter(|| run(c))
    });
    g.finish();

    let mut g = cr.benchmark_group("bgp_rr2_growth");
    g.sample_size(10);
    // Bench harness switch, not a simulation path.
    #[allow(clippy::disallowed_methods)]
    let big = std::env::var("PODPATH_BGP_BENCH_BIG").is_ok_and(|v| v == "1");
    let sizes: &[u32] = if big { &[100, 1000, 5000] } else { &[100] };
    for &n in sizes {
        let c = CalicoCluster::synthetic_reflectors(n, 2);
        g.bench_with_input(BenchmarkId::from_parameter(n), &c, |b, c| b.iter(|| run(c)));
    }
    g.finish();
}

criterion_group!(bgp, benches);
criterion_main!(bgp);
