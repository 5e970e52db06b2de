//! The terminal's progress bar (indicatif) for long runs: loading a large
//! cluster, BGP settling, the reachability matrix, simulated time.
//! `main` installs it only when stderr is a terminal, so piped output is
//! exactly what it was without it.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use scenarios::progress::{Observer, Unit};

/// One bar at a time, replaced at each phase.
pub struct TerminalBar {
    bar: Mutex<Option<ProgressBar>>,
}

impl TerminalBar {
    pub fn new() -> TerminalBar {
        TerminalBar {
            bar: Mutex::new(None),
        }
    }

    fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if let Ok(g) = self.bar.lock()
            && let Some(b) = g.as_ref()
        {
            f(b);
        }
    }
}

impl Default for TerminalBar {
    fn default() -> Self {
        TerminalBar::new()
    }
}

/// Simulated nanoseconds as seconds, for `{sim}` and `{simlen}`.
fn secs(ns: u64) -> String {
    format!("{:.1} s", ns as f64 / 1e9)
}

fn style(total: Option<u64>, unit: Unit) -> ProgressStyle {
    let template = match (total, unit) {
        (None, _) => "{spinner} {msg} {elapsed}",
        (Some(_), Unit::Items) => "{msg} [{bar:30}] {pos}/{len} {elapsed} (eta {eta})",
        (Some(_), Unit::SimNanos) => "{msg} [{bar:30}] {sim} of {simlen} simulated, {elapsed}",
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("sim", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&secs(s.pos()));
        })
        .with_key(
            "simlen",
            |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&secs(s.len().unwrap_or(0)));
            },
        )
        .progress_chars("=> ")
}

impl Observer for TerminalBar {
    fn begin(&self, what: &str, total: Option<u64>, unit: Unit) {
        let bar = match total {
            Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
        };
        bar.set_style(style(total, unit));
        bar.set_message(what.to_string());
        // A spinner moves on its own (indicatif's ticker thread, outside
        // the simulation); a bar moves when told.
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Ok(mut g) = self.bar.lock()
            && let Some(old) = g.replace(bar)
        {
            old.finish_and_clear();
        }
    }

    fn set(&self, pos: u64) {
        self.with(|b| b.set_position(pos));
    }

    fn inc(&self, n: u64) {
        self.with(|b| b.inc(n));
    }

    fn end(&self) {
        if let Ok(mut g) = self.bar.lock()
            && let Some(b) = g.take()
        {
            b.finish_and_clear();
        }
    }
}
