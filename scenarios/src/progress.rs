//! Progress of long runs (loading a large cluster, BGP settling, a
//! reachability matrix), reported to an observer the caller supplies.
//!
//! The library draws nothing: `podpath` passes an observer that draws an
//! indicatif bar on a terminal, and none when its output is piped, so
//! scripted runs print exactly what they printed before. An observer only
//! watches: what it is told never feeds back into a run, so a run's output
//! is the same with or without one (tests check this for sliced runs).

use std::fmt;
use std::sync::Arc;

/// What a phase's positions count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Things done (probes, commands).
    Items,
    /// Simulated time reached, in nanoseconds.
    SimNanos,
}

/// Something that shows progress. Called from the threads a run uses (the
/// reachability matrix probes in parallel chunks), hence `Sync`.
pub trait Observer: Send + Sync {
    /// A phase starts: `what` is shown, `total` positions if known.
    fn begin(&self, what: &str, total: Option<u64>, unit: Unit);
    /// The phase is at `pos` (absolute).
    fn set(&self, pos: u64);
    /// The phase moved on by `n`.
    fn inc(&self, n: u64);
    /// The phase is over; clear what was shown.
    fn end(&self);
}

/// A handle to an optional observer; the default observes nothing and costs
/// a branch per call.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<dyn Observer>>);

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(on)"
        } else {
            "Progress(off)"
        })
    }
}

impl Progress {
    pub fn new(o: Arc<dyn Observer>) -> Progress {
        Progress(Some(o))
    }

    /// Whether anything observes (callers may skip work done only to report).
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    pub fn begin(&self, what: &str, total: Option<u64>, unit: Unit) {
        if let Some(o) = &self.0 {
            o.begin(what, total, unit);
        }
    }

    pub fn set(&self, pos: u64) {
        if let Some(o) = &self.0 {
            o.set(pos);
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(o) = &self.0 {
            o.inc(n);
        }
    }

    pub fn end(&self) {
        if let Some(o) = &self.0 {
            o.end();
        }
    }
}

/// An observer that records what it was told, for tests.
#[derive(Debug, Default)]
pub struct Recorder {
    pub events: std::sync::Mutex<Vec<String>>,
}

impl Observer for Recorder {
    fn begin(&self, what: &str, total: Option<u64>, unit: Unit) {
        self.push(format!("begin {what} {total:?} {unit:?}"));
    }
    fn set(&self, pos: u64) {
        self.push(format!("set {pos}"));
    }
    fn inc(&self, n: u64) {
        self.push(format!("inc {n}"));
    }
    fn end(&self) {
        self.push("end".into());
    }
}

impl Recorder {
    fn push(&self, s: String) {
        if let Ok(mut v) = self.events.lock() {
            v.push(s);
        }
    }

    /// What was recorded so far.
    pub fn take(&self) -> Vec<String> {
        self.events
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}
