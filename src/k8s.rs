//! `podpath expand`, `podpath reach` and `podpath diff`: the generated
//! configuration of a `cluster:` scenario, and all-pairs reachability.

use std::fmt::Write as _;

use scenarios::format::ExpectSpec;
use scenarios::reach::{Endpoint, Leg, PairResult, Report, reach as run_reach, select};
use scenarios::{RunOptions, Scenario};

use crate::CliOutput;

/// `podpath expand SCENARIO [--node NODE] [--ron]`.
pub fn expand(sc: &Scenario, node: Option<&str>, ron: bool) -> CliOutput {
    let Some(c) = &sc.cluster else {
        return CliOutput::input_error(format!(
            "podpath: {}: the scenario has no `cluster:` to expand\n",
            sc.path
        ));
    };
    // Every line of the generated scripts (the loaded ones leave out the
    // entries for other nodes, run as batches).
    let hosts = c.hosts();
    if let Some(n) = node
        && !hosts.iter().any(|h| h.name == n)
    {
        return CliOutput::input_error(format!(
            "podpath: --node: no node or router \"{n}\" in the cluster\n"
        ));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {}: {} nodes, {}, cluster CIDR {} (node mask /{}), {} pods, {} services",
        sc.file.name,
        c.nodes.len(),
        c.cni.name(),
        c.cidr,
        c.node_mask,
        c.pods.len(),
        c.services.len()
    );
    for w in &c.warnings {
        let _ = writeln!(out, "# warning: {w}");
    }
    let n0 = sc.file.segments.len() - c.segments.len();
    if ron {
        if node.is_none() {
            out.push_str("segments: [\n");
            for s in &sc.file.segments[n0..] {
                let mut f = format!("name: \"{}\"", s.name);
                if let Some(l) = &s.latency {
                    let _ = write!(f, ", latency: \"{l}\"");
                }
                if let Some(b) = &s.bandwidth {
                    let _ = write!(f, ", bandwidth: \"{b}\"");
                }
                if let Some(m) = s.mtu {
                    let _ = write!(f, ", mtu: {m}");
                }
                let _ = writeln!(out, "    Segment({f}),");
            }
            out.push_str("],\nhosts: [\n");
        }
        for h in hosts.iter().filter(|h| node.is_none_or(|n| n == h.name)) {
            let nics: Vec<String> = h
                .nics
                .iter()
                .map(|n| {
                    format!(
                        "Nic(name: \"{}\", segment: \"{}\", mac: \"{}\", address: \"{}\")",
                        n.name,
                        n.segment,
                        n.mac.as_deref().unwrap_or(""),
                        n.address.as_deref().unwrap_or("")
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "    Host(\n        name: \"{}\",\n        nics: [{}],\n        setup: r#\"\n{}\"#,\n    ),",
                h.name,
                nics.join(", "),
                h.setup
            );
        }
        if node.is_none() {
            out.push_str("],\n");
            if let Some(b) = scenarios::cluster::calico_bgp::bgp_section(c) {
                out.push_str(&b.to_ron());
            }
        }
    } else {
        for h in hosts.iter().filter(|h| node.is_none_or(|n| n == h.name)) {
            let _ = writeln!(out, "\n# ===== {} =====", h.name);
            for n in &h.nics {
                let _ = writeln!(
                    out,
                    "# {}: {} {} on segment {} (the machine's own configuration, set before setup)",
                    n.name,
                    n.mac.as_deref().unwrap_or("-"),
                    n.address.as_deref().unwrap_or("-"),
                    n.segment
                );
            }
            out.push_str(&h.setup);
        }
        if node.is_none()
            && let Some(b) = scenarios::cluster::calico_bgp::bgp_section(c)
        {
            out.push_str("\n# ===== BIRD (calico-node) =====\n# Each node runs `bird` after setup with the configuration calico/node renders from\n# these resources (the scenario's generated bgp section):\n");
            for l in b.to_ron().lines() {
                let _ = writeln!(out, "# {l}");
            }
        }
    }
    CliOutput {
        stdout: out,
        ..Default::default()
    }
}

fn failure_line(r: &Report, p: &PairResult) -> String {
    let (f, t) = (&r.endpoints[p.from], &r.endpoints[p.to]);
    let mut s = format!("{} -> {} ({})", f.place, t.place, t.ip);
    if let Some(x) = &p.failure {
        let leg = match x.leg {
            Leg::Request => "request",
            Leg::Reply => "reply",
        };
        let _ = write!(
            s,
            ": {leg} dropped at {}: {} [{}]",
            x.place, x.text, x.reason
        );
        if x.reason == "no-answer" {
            s = format!(
                "{} -> {} ({}): {leg} unanswered: {}",
                f.place, t.place, t.ip, x.text
            );
        }
    }
    s
}

/// The report as text: a matrix of node pairs (pairs reachable / pairs)
/// and, per failing node pair, its first failure.
pub fn render_report(r: &Report) -> String {
    let mut out = String::new();
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let mut nodes: Vec<&str> = Vec::new();
    for e in &r.endpoints {
        if !nodes.contains(&e.node.as_str()) {
            nodes.push(&e.node);
        }
    }
    let node_of: Vec<usize> = r
        .endpoints
        .iter()
        .map(|e| nodes.iter().position(|n| *n == e.node).unwrap_or(0))
        .collect();
    let n = nodes.len();
    let mut ok = vec![0u32; n * n];
    let mut all = vec![0u32; n * n];
    let mut first: Vec<Option<usize>> = vec![None; n * n];
    for (k, p) in r.pairs.iter().enumerate() {
        let cell = node_of[p.from] * n + node_of[p.to];
        all[cell] += 1;
        if p.ok {
            ok[cell] += 1;
        } else if first[cell].is_none() {
            first[cell] = Some(k);
        }
    }
    let used_from: Vec<usize> = (0..n)
        .filter(|i| (0..n).any(|j| all[i * n + j] > 0))
        .collect();
    let used_to: Vec<usize> = (0..n)
        .filter(|j| (0..n).any(|i| all[i * n + j] > 0))
        .collect();
    let good = r.pairs.iter().filter(|p| p.ok).count();
    let pods: Vec<&Endpoint> = r.endpoints.iter().filter(|e| e.port.is_none()).collect();
    let pod_nodes = nodes
        .iter()
        .filter(|n| pods.iter().any(|e| e.node == **n))
        .count();
    let services = r
        .pairs
        .iter()
        .filter_map(|p| r.endpoints[p.to].port.map(|_| p.to))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let what = if services == 0 {
        format!(
            "{} pods on {pod_nodes} nodes (ICMP echo request and reply)",
            pods.len()
        )
    } else {
        format!(
            "{} pods on {pod_nodes} nodes, {services} Service ports (ICMP echo request and reply; to a Service, a TCP SYN to its ClusterIP and the endpoint's answer)",
            pods.len()
        )
    };
    let _ = writeln!(
        out,
        "{} pairs of {what}: {good} reachable, {} not",
        r.pairs.len(),
        r.pairs.len() - good
    );
    if used_to.len() <= 24 && !r.pairs.is_empty() {
        let w = used_to
            .iter()
            .map(|j| nodes[*j].len())
            .chain(std::iter::once(5))
            .max()
            .unwrap_or(5);
        let lw = used_from
            .iter()
            .map(|i| nodes[*i].len())
            .max()
            .unwrap_or(4)
            .max(9);
        let _ = write!(out, "\n{:lw$}", "from \\ to");
        for j in &used_to {
            let _ = write!(out, "  {:>w$}", nodes[*j]);
        }
        out.push('\n');
        for i in &used_from {
            let _ = write!(out, "{:lw$}", nodes[*i]);
            for j in &used_to {
                let c = i * n + j;
                let cell = if all[c] == 0 {
                    "-".to_string()
                } else if ok[c] == all[c] {
                    "ok".to_string()
                } else {
                    format!("{}/{}", ok[c], all[c])
                };
                let _ = write!(out, "  {cell:>w$}");
            }
            out.push('\n');
        }
    }
    let failing: Vec<usize> = (0..n * n).filter(|c| first[*c].is_some()).collect();
    if !failing.is_empty() {
        let _ = writeln!(
            out,
            "\nfailures (node pair: pairs failing, the first failure):"
        );
        for c in failing.iter().take(50) {
            let k = first[*c].unwrap_or(0);
            let _ = writeln!(
                out,
                "{} -> {}: {} of {}; {}",
                nodes[c / n],
                nodes[c % n],
                all[*c] - ok[*c],
                all[*c],
                failure_line(r, &r.pairs[k])
            );
        }
        if failing.len() > 50 {
            let _ = writeln!(out, "... and {} more node pairs", failing.len() - 50);
        }
    }
    out
}

/// Full-reachability expectations of the scenario: (from, to) selectors.
fn full_reach_expectations(sc: &Scenario) -> Vec<(Option<String>, Option<String>)> {
    sc.file
        .expect
        .iter()
        .filter_map(|e| match e {
            ExpectSpec::FullReach { from, to } => Some((from.clone(), to.clone())),
            _ => None,
        })
        .collect()
}

/// Whether an expectation's selection holds every failing pair's ends.
pub fn expectation_failures(r: &Report, from: Option<&str>, to: Option<&str>) -> usize {
    let (Ok(f), Ok(t)) = (select(&r.endpoints, from), select(&r.endpoints, to)) else {
        return 0;
    };
    let mut in_f = vec![false; r.endpoints.len()];
    let mut in_t = vec![false; r.endpoints.len()];
    f.iter().for_each(|&i| in_f[i] = true);
    t.iter().for_each(|&i| in_t[i] = true);
    r.pairs
        .iter()
        .filter(|p| !p.ok && in_f[p.from] && in_t[p.to])
        .count()
}

/// `podpath reach`.
pub fn reach(sc: &Scenario, opts: &RunOptions, from: Option<&str>, to: Option<&str>) -> CliOutput {
    let r = match run_reach(sc, opts, from, to, false) {
        Ok(r) => r,
        Err(e) => return CliOutput::input_error(format!("podpath: {e}\n")),
    };
    let mut out = render_report(&r);
    let mut code = 0;
    let exp = full_reach_expectations(sc);
    if !exp.is_empty() {
        let _ = writeln!(out, "\nexpectations:");
        for (f, t) in &exp {
            let bad = expectation_failures(&r, f.as_deref(), t.as_deref());
            let what = format!(
                "FullReach from {} to {}",
                f.as_deref().unwrap_or("every pod"),
                t.as_deref().unwrap_or("every pod")
            );
            if bad == 0 {
                let _ = writeln!(out, "ok   {what}");
            } else {
                code = 1;
                let _ = writeln!(out, "FAIL {what}: {bad} pairs unreachable");
            }
        }
    }
    CliOutput {
        stdout: out,
        stderr: if code == 1 {
            "podpath: expectations failed\n".into()
        } else {
            String::new()
        },
        code,
    }
}

/// `podpath diff A B`: exit 0 when every pair behaves the same, 1 when some differ.
pub fn diff(
    a: &Scenario,
    b: &Scenario,
    opts: &RunOptions,
    from: Option<&str>,
    to: Option<&str>,
) -> CliOutput {
    let ra = match run_reach(a, opts, from, to, true) {
        Ok(r) => r,
        Err(e) => return CliOutput::input_error(format!("podpath: {}: {e}\n", a.path)),
    };
    let rb = match run_reach(b, opts, from, to, true) {
        Ok(r) => r,
        Err(e) => return CliOutput::input_error(format!("podpath: {}: {e}\n", b.path)),
    };
    let key = |r: &Report, p: &PairResult| {
        (
            r.endpoints[p.from].place.clone(),
            r.endpoints[p.to].place.clone(),
        )
    };
    let mut out = String::new();
    let mut differ = 0usize;
    let mut compared = 0usize;
    let mut lines = String::new();
    let verdict = |r: &Report, p: &PairResult| {
        if p.ok {
            "reachable".to_string()
        } else {
            let l = failure_line(r, p);
            format!(
                "unreachable ({})",
                l.split_once(": ").map(|x| x.1).unwrap_or(&l)
            )
        }
    };
    for pa in &ra.pairs {
        let k = key(&ra, pa);
        let Some(pb) = rb.pairs.iter().find(|p| key(&rb, p) == k) else {
            differ += 1;
            let _ = writeln!(
                lines,
                "{} -> {}: only in A ({})",
                k.0,
                k.1,
                verdict(&ra, pa)
            );
            continue;
        };
        compared += 1;
        if pa.ok != pb.ok || pa.failure != pb.failure {
            differ += 1;
            let _ = writeln!(
                lines,
                "{} -> {}:\n  A: {}\n  B: {}",
                k.0,
                k.1,
                verdict(&ra, pa),
                verdict(&rb, pb)
            );
        } else if pa.path != pb.path {
            differ += 1;
            let _ = writeln!(
                lines,
                "{} -> {}: {} in both, by another path\n  A: {}\n  B: {}",
                k.0,
                k.1,
                if pa.ok { "reachable" } else { "unreachable" },
                pa.path.join(" > "),
                pb.path.join(" > ")
            );
        }
    }
    for pb in &rb.pairs {
        let k = key(&rb, pb);
        if !ra.pairs.iter().any(|p| key(&ra, p) == k) {
            differ += 1;
            let _ = writeln!(
                lines,
                "{} -> {}: only in B ({})",
                k.0,
                k.1,
                verdict(&rb, pb)
            );
        }
    }
    let _ = writeln!(
        out,
        "A: {} ({} of {} pairs reachable)\nB: {} ({} of {} pairs reachable)\n{compared} pairs in both; {differ} differ",
        a.path,
        ra.pairs.iter().filter(|p| p.ok).count(),
        ra.pairs.len(),
        b.path,
        rb.pairs.iter().filter(|p| p.ok).count(),
        rb.pairs.len()
    );
    if differ > 0 {
        out.push('\n');
        out.push_str(&lines);
    }
    CliOutput {
        stdout: out,
        stderr: String::new(),
        code: if differ > 0 { 1 } else { 0 },
    }
}
