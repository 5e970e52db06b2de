//! podpath's command-line behaviour: each subcommand returns what to print
//! and the exit code (0 success, 1 an expectation failed, 2 invalid input or
//! a run bound reached). `src/main.rs` only parses arguments and prints.

pub mod capture;
pub mod cli;
mod k8s;
pub mod progress;
mod render;

use std::fmt::Write as _;

use scenarios::progress::{Progress, Unit};
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
    execute_with(cli, &Progress::default())
}

/// Runs one parsed command line, showing long phases to `progress` (which
/// never changes what is printed or the exit code).
pub fn execute_with(cli: &Cli, progress: &Progress) -> CliOutput {
    match &cli.command {
        Cmd::Run {
            scenario,
            run,
            json,
            no_trace,
            pcap,
        } => with_scenario(scenario, run, progress, |sc, opts| {
            let opts = RunOptions {
                capture_all: pcap.is_some(),
                ..opts.clone()
            };
            render::run(sc, &opts, *json, !*no_trace, pcap.as_deref())
        }),
        Cmd::Check { scenario } => match scenarios::load_file(scenario) {
            Ok(sc) if !capture::check_names(&sc, false).is_empty() => {
                CliOutput::input_error(diags(&capture::check_names(&sc, false)))
            }
            Ok(sc) => {
                let mut stdout = format!(
                    "{}: ok: {} hosts, {} segments, {} commands, {} expectations\n",
                    scenario,
                    sc.file.hosts.len(),
                    sc.file.segments.len(),
                    sc.command_lines(),
                    sc.file.expect.len()
                );
                for w in sc.cluster.iter().flat_map(|c| &c.warnings) {
                    let _ = writeln!(stdout, "warning: {w}");
                }
                CliOutput {
                    stdout,
                    ..Default::default()
                }
            }
            Err(d) => CliOutput::input_error(diags(&d)),
        },
        Cmd::Trace {
            scenario,
            from,
            to,
            proto,
            dport,
            size,
            at,
            run,
            json,
        } => {
            let at = match at.as_deref().map(str::parse::<SimTime>).transpose() {
                Ok(a) => a,
                Err(e) => return CliOutput::input_error(format!("podpath: --at: {e}\n")),
            };
            with_scenario(scenario, run, progress, |sc, opts| {
                render::trace(sc, opts, from, to, *proto, *dport, *size, *json, at)
            })
        }
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
            with_scenario(scenario, run, progress, |sc, opts| {
                render::show(sc, opts, place, table.as_str(), at)
            })
        }
        Cmd::Tui {
            scenario,
            step,
            packet,
            run,
        } => with_scenario(scenario, run, progress, |sc, opts| {
            let session = if *step {
                tui::Session::new(sc, opts)
            } else {
                tui::Session::run(sc, opts)
            };
            match tui::run_terminal(session, *packet) {
                Ok(()) => CliOutput::default(),
                Err(e) => CliOutput::input_error(format!("podpath: tui: {e}\n")),
            }
        }),
        Cmd::Routes {
            scenario,
            at,
            node,
            run,
        } => {
            let at = match at.as_deref().map(str::parse::<SimTime>).transpose() {
                Ok(a) => a,
                Err(e) => return CliOutput::input_error(format!("podpath: --at: {e}\n")),
            };
            with_scenario(scenario, run, progress, |sc, opts| {
                if sc.bird.is_empty() {
                    return CliOutput::input_error(format!(
                        "podpath: routes: {scenario} has no bgp section: no host runs BIRD\n"
                    ));
                }
                let r = match scenarios::routes::routes(sc, opts, at) {
                    Ok(r) => r,
                    Err(e) => {
                        return CliOutput::input_error(format!(
                            "podpath: routes: {e}\nreproduce with: podpath routes {scenario} --seed {}\n",
                            sc.seed(opts)
                        ));
                    }
                };
                match scenarios::routes::render(&r, node.as_deref()) {
                    Ok(stdout) => CliOutput {
                        stdout,
                        ..Default::default()
                    },
                    Err(e) => CliOutput::input_error(format!("podpath: routes: --node: {e}\n")),
                }
            })
        }
        Cmd::Expand {
            scenario,
            node,
            ron,
        } => match scenarios::load_file(scenario) {
            Ok(sc) => k8s::expand(&sc, node.as_deref(), *ron),
            Err(d) => CliOutput::input_error(diags(&d)),
        },
        Cmd::Reach {
            scenario,
            from,
            to,
            run,
        } => with_scenario(scenario, run, progress, |sc, opts| {
            k8s::reach(sc, opts, from.as_deref(), to.as_deref())
        }),
        Cmd::Diff {
            a,
            b,
            from,
            to,
            run,
        } => with_scenario(a, run, progress, |sa, opts| match scenarios::load_file(b) {
            Ok(sb) => k8s::diff(sa, &sb, opts, from.as_deref(), to.as_deref()),
            Err(d) => CliOutput::input_error(diags(&d)),
        }),
        Cmd::Graph {
            scenario,
            packet,
            format,
            run,
        } => with_scenario(scenario, run, progress, |sc, opts| {
            let svg = *format == cli::GraphFormat::Svg;
            match tui::graph::scenario_graph(sc, opts, *packet, svg) {
                Ok(text) => CliOutput {
                    stdout: text,
                    ..Default::default()
                },
                Err(e) => CliOutput::input_error(format!("podpath: graph: {e}\n")),
            }
        }),
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
    progress: &Progress,
    f: impl FnOnce(&Scenario, &RunOptions) -> CliOutput,
) -> CliOutput {
    progress.begin(&format!("loading {path}"), None, Unit::Items);
    let loaded = scenarios::load_file(path);
    progress.end();
    let sc = match loaded {
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
        capture_all: false,
        quiet_batches: false,
        progress: progress.clone(),
    };
    f(&sc, &opts)
}
