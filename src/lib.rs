//! podpath's command-line behaviour: each subcommand returns what to print
//! and the exit code (0 success, 1 an expectation failed, 2 invalid input or
//! a run bound reached). `src/main.rs` only parses arguments and prints.

pub mod cli;
mod render;

use std::fmt::Write as _;

use scenarios::{Diagnostic, RunOptions, Scenario};
use sim_core::time::SimTime;

use crate::cli::{Cli, Cmd, RunArgs};

/// What a subcommand prints, and its exit code.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CliOutput {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl CliOutput {
    fn input_error(text: String) -> CliOutput {
        CliOutput {
            stdout: String::new(),
            stderr: text,
            code: 2,
        }
    }
}

/// Runs one parsed command line.
pub fn execute(cli: &Cli) -> CliOutput {
    match &cli.command {
        Cmd::Run {
            scenario,
            run,
            json,
            no_trace,
        } => with_scenario(scenario, run, |sc, opts| {
            render::run(sc, opts, *json, !*no_trace)
        }),
        Cmd::Check { scenario } => match scenarios::load_file(scenario) {
            Ok(sc) => CliOutput {
                stdout: format!(
                    "{}: ok: {} hosts, {} segments, {} commands, {} expectations\n",
                    scenario,
                    sc.file.hosts.len(),
                    sc.file.segments.len(),
                    sc.commands.len(),
                    sc.file.expect.len()
                ),
                ..Default::default()
            },
            Err(d) => CliOutput::input_error(diags(&d)),
        },
        Cmd::Trace {
            scenario,
            from,
            to,
            proto,
            dport,
            size,
            run,
            json,
        } => with_scenario(scenario, run, |sc, opts| {
            render::trace(sc, opts, from, to, *proto, *dport, *size, *json)
        }),
        Cmd::Show {
            scenario,
            place,
            table,
            at,
            run,
        } => {
            let at = match at.as_deref().map(str::parse::<SimTime>).transpose() {
                Ok(a) => a,
                Err(e) => return CliOutput::input_error(format!("podpath: --at: {e}\n")),
            };
            with_scenario(scenario, run, |sc, opts| {
                render::show(sc, opts, place, table.as_str(), at)
            })
        }
    }
}

fn diags(d: &[Diagnostic]) -> String {
    let mut s = String::new();
    for x in d {
        let _ = writeln!(s, "{x}");
    }
    s
}

fn with_scenario(
    path: &str,
    run: &RunArgs,
    f: impl FnOnce(&Scenario, &RunOptions) -> CliOutput,
) -> CliOutput {
    let sc = match scenarios::load_file(path) {
        Ok(s) => s,
        Err(d) => return CliOutput::input_error(diags(&d)),
    };
    let until = match run.until.as_deref().map(str::parse::<SimTime>).transpose() {
        Ok(u) => u,
        Err(e) => return CliOutput::input_error(format!("podpath: --until: {e}\n")),
    };
    let opts = RunOptions {
        seed: run.seed,
        until,
        max_events: run.max_events,
    };
    f(&sc, &opts)
}
