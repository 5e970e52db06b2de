//! Every bundled scenario runs and meets its expectations.

use crate::{bundled, podpath};

#[test]
fn every_bundled_scenario_passes() {
    let files = bundled();
    assert!(
        files.len() >= 8,
        "expected the bundled scenarios, found {files:?}"
    );
    let mut failures = Vec::new();
    for f in &files {
        let out = podpath(&["run", f, "--no-trace"]);
        if out.code != 0 {
            failures.push(format!(
                "{f}: exit {}\n{}\n{}",
                out.code, out.stdout, out.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_bundled_scenario_checks() {
    for f in bundled() {
        let out = podpath(&["check", &f]);
        assert_eq!(out.code, 0, "{f}: {}", out.stderr);
        assert!(out.stdout.contains(": ok:"), "{}", out.stdout);
    }
}
