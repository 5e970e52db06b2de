//! A runnable simulation: the Linux world, its scheduler, and the commands
//! to run at given simulated times (setup scripts at time 0, then the
//! timeline). Setup and timeline commands are events like any other, so
//! equal-time commands run in the order they were given.

use std::sync::Arc;

use sim_core::rng::RootSeed;
use sim_core::sched::{LimitError, Limits, RunEnd, Scheduler};
use sim_core::time::SimTime;
use sim_core::trace::TraceSink;

use crate::cmd::{Command, CommandKind};
use crate::linux::{CmdOutput, Cx, Event, HostId, World};

/// A command scheduled to run on a host.
#[derive(Debug, Clone)]
pub struct Step {
    pub at: SimTime,
    pub host: HostId,
    /// Shared with the caller's copy (a million-line scenario keeps one).
    pub cmd: Arc<Command>,
    /// The command line as written (for logs).
    pub line: Arc<str>,
    /// The caller's reference (e.g. an index into its source positions).
    pub origin: usize,
    /// The command is expected to fail; with Some(text), with that error text.
    pub expect_error: Option<Option<String>>,
}

/// What one command printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdLog {
    pub time: SimTime,
    pub place: String,
    pub line: Arc<str>,
    pub origin: usize,
    pub output: CmdOutput,
}

#[derive(Debug)]
pub enum RunError {
    /// A command failed that was not expected to (or an expected failure did not happen).
    Command {
        origin: usize,
        log: Box<CmdLog>,
        expected: Option<Option<String>>,
    },
    Limit(LimitError),
}

pub struct Simulation {
    pub world: World,
    pub sched: Scheduler<Event>,
    pub steps: Vec<Step>,
    pub log: Vec<CmdLog>,
    /// Log each command of a batch step (`CommandKind::Batch`) as its own
    /// line, as if it had been one (the default). Off, only a failing one is
    /// logged: a generated 5,000-node cluster runs 75 million of them.
    pub log_batches: bool,
    scheduled: usize,
}

impl Simulation {
    pub fn new(seed: RootSeed, limits: Limits) -> Simulation {
        Simulation {
            world: World::new(seed),
            sched: Scheduler::with_limits(limits),
            steps: Vec::new(),
            log: Vec::new(),
            log_batches: true,
            scheduled: 0,
        }
    }

    pub fn add_step(&mut self, step: Step) {
        self.steps.push(step);
    }

    pub fn now(&self) -> SimTime {
        self.sched.now()
    }

    fn schedule_steps(&mut self) {
        while self.scheduled < self.steps.len() {
            let i = self.scheduled;
            let at = self.steps[i].at.max(self.sched.now());
            self.sched.schedule_at(at, Event::Command { index: i });
            self.scheduled += 1;
        }
    }

    /// Runs until `until` (inclusive) or until nothing is left to do.
    pub fn run_until(
        &mut self,
        until: SimTime,
        sink: &mut dyn TraceSink,
    ) -> Result<RunEnd, RunError> {
        self.schedule_steps();
        let world = &mut self.world;
        let steps = &self.steps;
        let log = &mut self.log;
        let log_batches = self.log_batches;
        let mut failure: Option<RunError> = None;
        let r = self.sched.run_until(until, |sched, now, _id, ev| {
            if failure.is_some() {
                return;
            }
            let mut cx = Cx::new(now, sched, &mut *sink);
            failure = handle_event(world, steps, log, log_batches, &mut cx, ev);
        });
        if let Some(f) = failure {
            return Err(f);
        }
        r.map_err(RunError::Limit)
    }

    /// Handles the next event, if there is one due by `until`: `Ok(false)`
    /// when there is none (the queue is empty or its next event is later).
    /// For callers that stop as soon as something happened (`podpath reach`).
    pub fn step_until(
        &mut self,
        until: SimTime,
        sink: &mut dyn TraceSink,
    ) -> Result<bool, RunError> {
        self.schedule_steps();
        match self.sched.peek_time() {
            Some(t) if t <= until => {}
            _ => return Ok(false),
        }
        let Some((now, _id, ev)) = self.sched.step().map_err(RunError::Limit)? else {
            return Ok(false);
        };
        let mut cx = Cx::new(now, &mut self.sched, sink);
        match handle_event(
            &mut self.world,
            &self.steps,
            &mut self.log,
            self.log_batches,
            &mut cx,
            ev,
        ) {
            Some(f) => Err(f),
            None => Ok(true),
        }
    }

    /// Runs one command right now, outside the script (used by `podpath trace`
    /// and the TUI).
    pub fn exec_now(&mut self, host: HostId, cmd: &Command, sink: &mut dyn TraceSink) -> CmdOutput {
        let now = self.sched.now();
        let mut cx = Cx::new(now, &mut self.sched, sink);
        self.world.exec(&mut cx, host, cmd)
    }
}

/// One event: the world handles it, and a command step runs and is logged.
fn handle_event(
    world: &mut World,
    steps: &[Step],
    log: &mut Vec<CmdLog>,
    log_batches: bool,
    cx: &mut Cx,
    ev: crate::linux::Event,
) -> Option<RunError> {
    let index = world.handle(cx, ev)?;
    let step = &steps[index];
    if let CommandKind::Batch(b) = &step.cmd.kind {
        // Each command as if it were its own step (and event: the first
        // is this one); a batch expects no error.
        for k in 0..b.0.len() {
            if k > 0
                && let Err(e) = cx.sched.count_event()
            {
                return Some(RunError::Limit(e));
            }
            let cmd = b.0.command(k);
            let out = world.exec(cx, step.host, &cmd);
            if !log_batches && !out.failed {
                continue;
            }
            let failed = out.failed;
            let entry = CmdLog {
                time: cx.now,
                place: place_of(world, step.host, &cmd),
                line: b.0.line(k).into(),
                origin: step.origin,
                output: out,
            };
            let failure = failed.then(|| RunError::Command {
                origin: step.origin,
                log: Box::new(entry.clone()),
                expected: None,
            });
            log.push(entry);
            if failure.is_some() {
                return failure;
            }
        }
        return None;
    }
    let out = world.exec(cx, step.host, &step.cmd);
    let entry = CmdLog {
        time: cx.now,
        place: place_of(world, step.host, &step.cmd),
        line: step.line.clone(),
        origin: step.origin,
        output: out,
    };
    let ok = match &step.expect_error {
        None => !entry.output.failed,
        Some(None) => entry.output.failed,
        Some(Some(text)) => entry.output.failed && error_matches(&entry.output.stderr, text),
    };
    let failure = (!ok).then(|| RunError::Command {
        origin: step.origin,
        log: Box::new(entry.clone()),
        expected: step.expect_error.clone(),
    });
    log.push(entry);
    failure
}

/// Where a command runs, as logs name it: `HOST` or `HOST:NETNS`.
fn place_of(world: &World, host: HostId, cmd: &Command) -> String {
    match &cmd.netns {
        Some(n) => format!("{}:{n}", world.hosts[host.ix()].name),
        None => world.hosts[host.ix()].name.clone(),
    }
}

/// Convenience for callers that only need an output.
pub fn ok(o: &CmdOutput) -> bool {
    !o.failed
}

/// Whether a command's stderr matches an expected error: equal, or containing
/// it (so the real tool's wording can be expected where podpath adds context).
pub fn error_matches(stderr: &str, want: &str) -> bool {
    let (s, w) = (stderr.trim(), want.trim());
    !w.is_empty() && (s == w || s.contains(w))
}
