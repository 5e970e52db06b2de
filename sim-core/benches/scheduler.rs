//! Scheduler throughput: the classic "hold" model.
//!
//! Prefill the queue with N events, then repeatedly pop the earliest event and
//! schedule a new one at its time plus a random increment, so the population
//! stays at N. Increments are drawn up front from a fixed-seed stream (RNG cost
//! is outside the timed loop) and cycled. The queue persists across criterion
//! iterations, so after an untimed warm-up every timed operation is in steady
//! state. One iteration = `OPS` hold operations; criterion reports elements/s,
//! i.e. events per second.
//!
//! Groups:
//! * `hold`: increments exponential with mean 100 ns, truncated to whole ns:
//!   the default distribution of ns-3's `utils/bench-scheduler`, so the figures
//!   compare with ns-3's;
//! * `hold_spread`: exponential with mean 1 ms, so that at every N equal
//!   timestamps are rare (a harder case for a radix heap than `hold`).
//!
//! Contenders per N: `podpath_pop` (`Scheduler::pop` + `schedule_at`),
//! `podpath_run_until` (the driver loop: `run_until` with a handler that
//! reschedules, stopped by the event limit) and `binary_heap`
//! (`std::collections::BinaryHeap<Reverse<(time, seq)>>`, the baseline).
//!
//! Run: `cargo bench -p sim-core --bench scheduler` (add `-- hold/` to run only
//! the ns-3-comparable group).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use sim_core::rng::RootSeed;
use sim_core::sched::{EventId, LimitError, Limits, Scheduler};
use sim_core::time::{SimDuration, SimTime};

/// Hold operations per criterion iteration.
const OPS: u64 = 1_000_000;
/// Precomputed increments (a power of two, cycled with a mask).
const INCS: usize = 1 << 20;
const POPULATIONS: [usize; 3] = [1, 10_000, 1_000_000];

/// `INCS` increments, exponential with the given mean, truncated to whole ns.
fn increments(mean_ns: f64) -> Vec<u64> {
    let mut rng = RootSeed(1).stream("bench");
    (0..INCS)
        .map(|_| {
            // Uniform in (0, 1] from 53 random bits.
            let u = ((rng.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64;
            (-u.ln() * mean_ns) as u64
        })
        .collect()
}

struct Inc<'a> {
    v: &'a [u64],
    i: usize,
}

impl Inc<'_> {
    #[inline(always)]
    fn next(&mut self) -> u64 {
        let d = self.v[self.i & (INCS - 1)];
        self.i = self.i.wrapping_add(1);
        d
    }
}

trait Hold {
    fn prefill(n: usize, inc: &mut Inc) -> Self;
    fn hold(&mut self, inc: &mut Inc, ops: u64);
}

/// `Scheduler::pop` + `schedule_at`.
struct PodpathPop(Scheduler<()>);

impl Hold for PodpathPop {
    fn prefill(n: usize, inc: &mut Inc) -> Self {
        let mut q = Scheduler::new();
        for _ in 0..n {
            q.schedule_at(SimTime::from_nanos(inc.next()), ());
        }
        PodpathPop(q)
    }
    #[inline(never)]
    fn hold(&mut self, inc: &mut Inc, ops: u64) {
        let q = &mut self.0;
        for _ in 0..ops {
            let (t, _, ()) = q.pop().expect("population is constant");
            q.schedule_at(t + SimDuration::from_nanos(inc.next()), ());
        }
    }
}

/// `Scheduler::run_until` with a rescheduling handler, stopped after `ops`
/// events by the event limit.
struct PodpathRunUntil(Scheduler<()>);

impl Hold for PodpathRunUntil {
    fn prefill(n: usize, inc: &mut Inc) -> Self {
        PodpathRunUntil(PodpathPop::prefill(n, inc).0)
    }
    #[inline(never)]
    fn hold(&mut self, inc: &mut Inc, ops: u64) {
        let q = &mut self.0;
        let max_events = q.events_processed() + ops;
        q.set_limits(Limits {
            max_events,
            ..Limits::default()
        });
        let r = q.run_until(SimTime::MAX, |q, t, _, ()| {
            q.schedule_at(t + SimDuration::from_nanos(inc.next()), ());
        });
        assert!(matches!(r, Err(LimitError::EventLimit { .. })));
    }
}

/// Hold with cancellation, shaped like N TCP flows with retransmission
/// timers: each work event carries the id of its flow's armed timer; popping
/// it schedules the flow's next work event, cancels that timer and arms a new
/// one `REARM_FACTOR` mean increments later. Timers (payload `None`) almost
/// never fire, so each operation is a pop, two schedules and a cancel, and
/// about N tombstones are always present.
struct PodpathRearm {
    q: Scheduler<Option<EventId>>,
    rto: SimDuration,
}

const REARM_FACTOR: u64 = 1000;

impl Hold for PodpathRearm {
    fn prefill(n: usize, inc: &mut Inc) -> Self {
        let mut q = Scheduler::new();
        let rto = SimDuration::from_nanos(100 * REARM_FACTOR);
        for _ in 0..n {
            let timer = q.schedule_at(SimTime::ZERO + rto, None);
            q.schedule_at(SimTime::from_nanos(inc.next()), Some(timer));
        }
        PodpathRearm { q, rto }
    }
    #[inline(never)]
    fn hold(&mut self, inc: &mut Inc, ops: u64) {
        let q = &mut self.q;
        for _ in 0..ops {
            let (t, _, timer) = q.pop().expect("population is constant");
            let Some(timer) = timer else {
                continue; // a timer fired (rare)
            };
            q.cancel(timer);
            let timer = q.schedule_at(t + self.rto, None);
            q.schedule_at(t + SimDuration::from_nanos(inc.next()), Some(timer));
        }
    }
}

/// The baseline: a binary heap of (time, insertion sequence).
struct Heap {
    h: BinaryHeap<Reverse<(u64, u64)>>,
    seq: u64,
}

impl Hold for Heap {
    fn prefill(n: usize, inc: &mut Inc) -> Self {
        let mut h = BinaryHeap::new();
        for seq in 0..n as u64 {
            h.push(Reverse((inc.next(), seq)));
        }
        Heap { h, seq: n as u64 }
    }
    #[inline(never)]
    fn hold(&mut self, inc: &mut Inc, ops: u64) {
        for _ in 0..ops {
            let Reverse((t, _)) = self.h.pop().expect("population is constant");
            self.h.push(Reverse((t + inc.next(), self.seq)));
            self.seq += 1;
        }
    }
}

fn bench_one<H: Hold>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    n: usize,
    incs: &[u64],
) {
    // Built on first use (so a filtered-out benchmark costs nothing) and kept
    // across criterion's calls, so every timed operation is in steady state.
    let mut state: Option<(H, Inc)> = None;
    g.bench_function(BenchmarkId::new(name, n), |b| {
        let (q, inc) = state.get_or_insert_with(|| {
            let mut inc = Inc { v: incs, i: 0 };
            let mut q = H::prefill(n, &mut inc);
            // Untimed warm-up into the steady state.
            q.hold(&mut inc, (2 * n as u64).max(OPS));
            (q, inc)
        });
        b.iter(|| q.hold(inc, black_box(OPS)));
    });
    black_box(&state);
}

fn configure(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.throughput(Throughput::Elements(OPS))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
}

fn group(c: &mut Criterion, group_name: &str, mean_ns: f64) {
    let incs = increments(mean_ns);
    let mut g = c.benchmark_group(group_name);
    configure(&mut g);
    for n in POPULATIONS {
        bench_one::<PodpathPop>(&mut g, "podpath_pop", n, &incs);
        bench_one::<PodpathRunUntil>(&mut g, "podpath_run_until", n, &incs);
        bench_one::<Heap>(&mut g, "binary_heap", n, &incs);
    }
    g.finish();
}

fn hold(c: &mut Criterion) {
    group(c, "hold", 100.0);
    group(c, "hold_spread", 1_000_000.0);
    let incs = increments(100.0);
    let mut g = c.benchmark_group("hold_rearm");
    configure(&mut g);
    for n in POPULATIONS {
        bench_one::<PodpathRearm>(&mut g, "podpath_pop", n, &incs);
    }
    g.finish();
}

criterion_group!(benches, hold);
criterion_main!(benches);
