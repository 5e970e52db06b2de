//! Rendering runs, traces and tables for the terminal (text or JSON lines).

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

use scenarios::run::{Outcome, RunResult, check, run as run_scenario, show_table};
use scenarios::{RunOptions, Scenario};
use sim_core::time::{SimDuration, SimTime};
use sim_core::trace::{TraceEvent, VecSink, render_json, render_text, sentence};
use sim_models::linux::apps::Probe;

use crate::CliOutput;
use crate::capture;
use crate::cli::Proto;

fn reproduce(sc: &Scenario, r: &RunResult) -> String {
    format!(
        "reproduce with: podpath run {} --seed {}\n",
        sc.path, r.seed
    )
}

/// `podpath run`; with `pcap`, capture files go to that directory.
pub fn run(
    sc: &Scenario,
    opts: &RunOptions,
    json: bool,
    with_trace: bool,
    pcap: Option<&str>,
) -> CliOutput {
    let bad = capture::check_names(sc, pcap.is_some());
    if !bad.is_empty() {
        return CliOutput::input_error(bad.iter().map(|d| format!("{d}\n")).collect());
    }
    let mut r = run_scenario(sc, opts);
    // What each tcpdump prints when it exits (before the checks, so
    // `Output` expectations see it).
    let counts = capture::tcpdump_counts(sc, &r.sim);
    r.sim.world.output.extend(counts);
    check(sc, &mut r);
    // Capture files: --pcap's per-host files, then `tcpdump -w` files.
    let mut files = Vec::new();
    if pcap.is_some() {
        files = capture::host_files(&r.sim.world);
    }
    files.extend(capture::tcpdump_files(sc, &r.sim));
    let written = if files.is_empty() {
        Ok(Vec::new())
    } else {
        capture::write_files(Path::new(pcap.unwrap_or(".")), &files)
    };
    let written: Result<Vec<(String, &capture::CaptureFile)>, String> =
        written.map(|paths| paths.into_iter().zip(&files).collect());
    let code = if written.is_err() { 2 } else { r.exit_code() };
    let w = &r.sim.world;
    let mut out = String::new();
    let mut err = String::new();
    if json {
        for l in &r.sim.log {
            let v = serde_json::json!({"type": "command", "time_ns": l.time.as_nanos(), "place": l.place, "line": &*l.line,
                "stdout": l.output.stdout, "stderr": l.output.stderr, "failed": l.output.failed});
            let _ = writeln!(out, "{v}");
        }
        if with_trace {
            for t in &r.trace {
                let _ = writeln!(
                    out,
                    "{}",
                    render_json(&w.topo, t).replacen('{', "{\"type\":\"trace\",", 1)
                );
            }
        }
        for o in &w.output {
            let v = serde_json::json!({"type": "output", "time_ns": o.time.as_nanos(), "place": o.place, "text": o.text});
            let _ = writeln!(out, "{v}");
        }
        for f in w.flows() {
            let v = serde_json::json!({"type": "flow", "proto": f.proto, "place": f.place, "app": f.app,
                "src": f.src.to_string(), "dst": f.dst.to_string(), "bytes_out": f.bytes_out, "bytes_in": f.bytes_in,
                "start_ns": f.start.as_nanos(), "connected_ns": f.connected.map(|c| c.as_nanos()), "duration_ns": f.duration().as_nanos(), "throughput_bps": f.throughput_bps(),
                "retransmissions": f.retransmissions, "srtt_ns": f.srtt.map(|d| d.as_nanos()), "state": f.state,
                "datagrams_out": f.datagrams_out, "datagrams_in": f.datagrams_in, "refused_sends": f.refused_sends,
                "error": f.error.map(|e| e.name())});
            let _ = writeln!(out, "{v}");
        }
        for e in &r.expectations {
            let v = serde_json::json!({"type": "expect", "index": e.index, "what": e.what, "passed": e.passed, "detail": e.detail});
            let _ = writeln!(out, "{v}");
        }
        for (path, f) in written.iter().flatten() {
            let v = serde_json::json!({"type": "capture", "file": path, "interfaces": f.interfaces, "packets": f.packets});
            let _ = writeln!(out, "{v}");
        }
        let v = serde_json::json!({"type": "summary", "scenario": sc.file.name, "seed": r.seed, "events": r.sim.sched.events_processed(),
            "time_ns": r.sim.now().as_nanos(), "exit": code,
            "outcome": match &r.outcome { Outcome::Passed => "passed".to_string(), Outcome::ExpectationFailed => "expectation-failed".into(),
                Outcome::InputError(d) => format!("error: {d}"), Outcome::Limit(m) => format!("limit: {m}") }});
        let _ = writeln!(out, "{v}");
    } else {
        let _ = writeln!(out, "scenario {} (seed {})", sc.file.name, r.seed);
        for wn in sc.cluster.iter().flat_map(|c| &c.warnings) {
            let _ = writeln!(out, "warning: {wn}");
        }
        let _ = writeln!(out, "--- commands ---");
        for l in &r.sim.log {
            if l.output.stdout.is_empty() && l.output.stderr.is_empty() {
                continue;
            }
            let _ = writeln!(out, "[{} {}] $ {}", l.time.fixed(), l.place, l.line);
            out.push_str(&l.output.stdout);
            for line in l.output.stderr.lines() {
                let _ = writeln!(out, "{line}");
            }
        }
        for wn in &w.warnings {
            let _ = writeln!(out, "[{} {}] {}", wn.time.fixed(), wn.place, wn.text);
        }
        if with_trace {
            let _ = writeln!(out, "--- trace ---");
            for t in &r.trace {
                let _ = writeln!(out, "{}", render_text(&w.topo, t));
            }
        }
        if !w.output.is_empty() {
            let _ = writeln!(out, "--- output ---");
            for o in &w.output {
                let _ = writeln!(out, "[{} {}]", o.time.fixed(), o.place);
                let _ = writeln!(out, "{}", o.text);
            }
        }
        let flows = w.flows();
        if !flows.is_empty() {
            let _ = writeln!(out, "--- flows ---");
            for f in &flows {
                let _ = writeln!(out, "{}", f.line());
            }
        }
        if !r.expectations.is_empty() {
            let _ = writeln!(out, "--- expectations ---");
            for e in &r.expectations {
                let pos = scenarios::run::expect_pos(sc, e.index);
                let _ = writeln!(
                    out,
                    "{} {}:{}:{}: {}",
                    if e.passed { "ok  " } else { "FAIL" },
                    sc.path,
                    pos.line,
                    pos.col,
                    e.what
                );
                for l in e.detail.lines() {
                    let _ = writeln!(out, "       {l}");
                }
            }
        }
        let drops = r
            .trace
            .iter()
            .filter(|t| matches!(t.event, TraceEvent::Drop { .. }))
            .count();
        let passed = r.expectations.iter().filter(|e| e.passed).count();
        if let Ok(list) = &written
            && !list.is_empty()
        {
            let _ = writeln!(out, "--- captures ---");
            for (path, f) in list {
                let _ = writeln!(
                    out,
                    "wrote {path}: {}, {}",
                    capture::plural(f.interfaces, "interface"),
                    capture::plural(f.packets, "packet")
                );
            }
        }
        let _ = writeln!(out, "--- summary ---");
        let _ = writeln!(
            out,
            "{} events, simulated time {}, {} trace steps, {} drops, expectations {passed} passed, {} failed",
            r.sim.sched.events_processed(),
            r.sim.now(),
            r.trace.len(),
            drops,
            r.expectations.len() - passed
        );
    }
    match &r.outcome {
        Outcome::Passed => {}
        Outcome::ExpectationFailed => {
            let _ = write!(err, "podpath: expectations failed\n{}", reproduce(sc, &r));
        }
        Outcome::InputError(d) => {
            let _ = write!(err, "{d}\n{}", reproduce(sc, &r));
        }
        Outcome::Limit(m) => {
            let _ = write!(err, "podpath: {m}\n{}", reproduce(sc, &r));
        }
    }
    if let Err(e) = written {
        let _ = writeln!(err, "podpath: capture: {e}");
    }
    CliOutput {
        stdout: out,
        stderr: err,
        code,
    }
}

/// `podpath trace`: setup, then one packet, numbered steps.
#[allow(clippy::too_many_arguments)]
pub fn trace(
    sc: &Scenario,
    opts: &RunOptions,
    from: &str,
    to: &str,
    proto: Proto,
    dport: Option<u16>,
    size: u32,
    json: bool,
    at: Option<SimTime>,
) -> CliOutput {
    let Ok(dst) = to.parse::<Ipv4Addr>() else {
        return CliOutput::input_error(format!("podpath: --to: \"{to}\" is not an IPv4 address\n"));
    };
    // Setup: everything scheduled at time 0 (commands, and what they set off).
    let mut setup_opts = opts.clone();
    setup_opts.until = Some(SimTime::ZERO);
    setup_opts.quiet_batches = true;
    let mut r = run_scenario(sc, &setup_opts);
    match &r.outcome {
        Outcome::InputError(d) => return CliOutput::input_error(format!("{d}\n")),
        Outcome::Limit(m) => return CliOutput::input_error(format!("podpath: {m}\n")),
        _ => {}
    }
    // Inject at `at`; in a BGP-built cluster by default once BGP has
    // converged, so that the packet meets the routes BIRD installs.
    let at = match at {
        Some(t) => Some(t),
        None if !sc.bird.is_empty() => {
            match scenarios::routes::settle(&mut r.sim, sc.bird_start, &opts.progress) {
                Ok(t) => Some(t),
                Err(e) => return CliOutput::input_error(format!("podpath: {e}\n")),
            }
        }
        None => None,
    };
    if let Some(t) = at
        && let Err(e) = r.sim.run_until(t, &mut sim_core::trace::NullSink)
    {
        return CliOutput::input_error(format!("podpath: {e:?}\n"));
    }
    let Some(ns) = r.sim.world.find_ns(from) else {
        return CliOutput::input_error(format!(
            "podpath: --from: no host or namespace \"{from}\" after setup\n"
        ));
    };
    let probe = match proto {
        Proto::Icmp => Probe::Icmp,
        Proto::Udp => Probe::Udp(dport.unwrap_or(33434)),
        Proto::Tcp => Probe::Tcp(dport.unwrap_or(80)),
    };
    let src = r.sim.world.select_source(ns, dst, None);
    let mut sink = VecSink::default();
    let id = {
        let sim = &mut r.sim;
        let now = sim.now();
        let mut cx = sim_models::linux::Cx::new(now, &mut sim.sched, &mut sink);
        match sim.world.inject_probe(&mut cx, ns, dst, probe, size) {
            Ok(id) => id,
            Err(e) => return CliOutput::input_error(format!("podpath: {e}\n")),
        }
    };
    let until = r.sim.now() + SimDuration::from_secs(10);
    if let Err(e) = r.sim.run_until(until, &mut sink) {
        return CliOutput::input_error(format!("podpath: {e:?}\n"));
    }
    let w = &r.sim.world;
    let mut out = String::new();
    let steps: Vec<_> = sink.records.iter().filter(|t| t.packet == id).collect();
    // The reply the packet drew (an echo reply, a RST), followed the same way.
    let mut reply = steps.iter().find_map(|t| match &t.event {
        TraceEvent::Reply { reply, what } => Some((*reply, what.clone())),
        _ => None,
    });
    // A socket's answer (a listener's SYN-ACK) is a new packet from the
    // place the probe was delivered to, back to the probe's source.
    if reply.is_none()
        && let Some(d) = steps
            .iter()
            .rev()
            .find(|t| matches!(t.event, TraceEvent::Deliver { .. }))
    {
        reply = sink.records.iter().find_map(|t| match &t.event {
            TraceEvent::Originate { by, dst, summary }
                if w.topo.path(t.place) == w.topo.path(d.place)
                    && t.time >= d.time
                    && src.is_some_and(|s| {
                        *dst == Some(s) || summary.contains(&format!(" > {s}."))
                    }) =>
            {
                Some((t.packet, format!("sent by {by}").into()))
            }
            _ => None,
        });
    }
    let reply_steps: Vec<_> = reply
        .as_ref()
        .map(|(r, _)| sink.records.iter().filter(|t| t.packet == *r).collect())
        .unwrap_or_default();
    if json {
        for t in steps.iter().chain(&reply_steps) {
            let _ = writeln!(out, "{}", render_json(&w.topo, t));
        }
    } else {
        let _ = writeln!(
            out,
            "packet #{} from {from} to {to} ({})",
            id.0,
            format!("{proto:?}").to_lowercase()
        );
        trace_steps(&mut out, w, &steps);
        if let Some((r, what)) = &reply {
            let _ = writeln!(out, "\nreply: packet #{} ({what})", r.0);
            trace_steps(&mut out, w, &reply_steps);
        }
    }
    CliOutput {
        stdout: out,
        stderr: String::new(),
        code: 0,
    }
}

/// Numbered steps of one packet, grouped by place, and how it ended.
fn trace_steps(
    out: &mut String,
    w: &sim_models::linux::World,
    steps: &[&sim_core::trace::TraceRecord],
) {
    let mut last_place = None;
    for (i, t) in steps.iter().enumerate() {
        if last_place != Some(t.place) {
            let _ = writeln!(out, "[{}]", w.topo.path(t.place));
            last_place = Some(t.place);
        }
        let _ = writeln!(
            out,
            "{:>3}. {} {}",
            i + 1,
            t.time.fixed(),
            sentence(&w.topo, &t.event)
        );
    }
    let end = steps.iter().rev().find_map(|t| match &t.event {
        TraceEvent::Drop { reason } => Some(format!(
            "dropped at {}: {}",
            w.topo.path(t.place),
            sim_core::trace::drop_text(reason)
        )),
        TraceEvent::Deliver { to } => {
            Some(format!("delivered at {} to {to}", w.topo.path(t.place)))
        }
        _ => None,
    });
    let _ = writeln!(
        out,
        "=> {}",
        end.unwrap_or_else(|| "still in flight at the end of the trace window".into())
    );
}

/// `podpath show`.
pub fn show(
    sc: &Scenario,
    opts: &RunOptions,
    place: &str,
    table: &str,
    at: Option<SimTime>,
) -> CliOutput {
    let mut o = opts.clone();
    o.quiet_batches = true;
    if at.is_some() {
        o.until = at;
    }
    let r = run_scenario(sc, &o);
    if let Outcome::InputError(d) = &r.outcome {
        return CliOutput::input_error(format!("{d}\n"));
    }
    match show_table(&r.sim, place, table) {
        Ok(t) => CliOutput {
            stdout: t,
            stderr: String::new(),
            code: 0,
        },
        Err(e) => CliOutput::input_error(format!("podpath: {e}\n")),
    }
}
