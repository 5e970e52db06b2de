//! Bad scenario files: exit 2 and a positioned message, never a panic.

use crate::{path, podpath};

fn check_bad(file: &str, want_pos: &str, want_text: &[&str]) {
    let p = path(&format!("tests/fixtures/bad/{file}"));
    for cmd in ["check", "run"] {
        let out = podpath(&[cmd, &p]);
        assert_eq!(
            out.code, 2,
            "{cmd} {file}: exit {} stdout {} stderr {}",
            out.code, out.stdout, out.stderr
        );
        let first = out.stderr.lines().next().unwrap_or("");
        assert!(
            first.starts_with(&format!("{p}:{want_pos}: error: ")),
            "{cmd} {file}: {first}"
        );
        for t in want_text {
            assert!(
                out.stderr.contains(t),
                "{cmd} {file}: missing {t:?} in {}",
                out.stderr
            );
        }
    }
}

#[test]
fn syntax_error_is_positioned() {
    check_bad("syntax.ron", "4:24", &["expected comma, found `setup`"]);
}

#[test]
fn unknown_field_is_positioned() {
    check_bad("unknown-field.ron", "4:25", &["setpu", "`setup`"]);
}

#[test]
fn wrong_type_is_positioned() {
    check_bad(
        "wrong-type.ron",
        "3:11",
        &["expected integer, found `\"seven\"`"],
    );
}

#[test]
fn bad_address_is_positioned_in_characters() {
    // Line 7 of the file is `ip addr add 10.0.0.300/24 dev v0`; the bad word starts at column 13.
    check_bad("bad-address.ron", "7:13", &["10.0.0.300/24"]);
}

#[test]
fn here_document_errors_are_positioned() {
    // Line 10 is `    -A INPUT -s $IP -j ACCEPT`: the `$` is at column 17.
    check_bad("heredoc-expands.ron", "10:17", &["(<<'EOF')", "$IP"]);
    // Line 7 is `ip netns exec b iptables-restore --noflush <<'END'`: `<<` at column 44.
    check_bad(
        "heredoc-unterminated.ron",
        "7:44",
        &["expected a line `END`"],
    );
}

#[test]
fn netfilter_tool_options_are_positioned() {
    // `setup: "iptables-save -c -t nats"` on line 4: `nats` is at column 53.
    check_bad(
        "iptables-save-table.ron",
        "4:53",
        &["iptables-save: Table `nats' does not exist"],
    );
}

#[test]
fn failing_setup_command_is_positioned_with_the_kernel_message() {
    // `check` validates statically; the kernel's answer comes when the command runs.
    let p = path("tests/fixtures/bad/failing-command.ron");
    assert_eq!(podpath(&["check", &p]).code, 0);
    let out = podpath(&["run", &p]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let first = out.stderr.lines().next().unwrap_or("");
    let want = format!(
        "{p}:5:1: error: command failed on a: `ip route add 10.0.0.0/8 via 192.168.1.1`: \
         Error: Nexthop has invalid gateway."
    );
    assert_eq!(first, want);
    assert!(out.stderr.contains("--seed 0"), "{}", out.stderr);
}

#[test]
fn runaway_run_names_the_bound() {
    let p = path("tests/fixtures/bad/runaway.ron");
    let out = podpath(&["run", &p, "--no-trace"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("event limit"), "{}", out.stderr);
    assert!(out.stderr.contains("--seed 0"), "{}", out.stderr);
}

#[test]
fn missing_file_and_bad_arguments() {
    let out = podpath(&["run", "/nonexistent/x.ron"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("cannot read file"), "{}", out.stderr);
    let out = podpath(&[
        "run",
        &path("scenarios/files/direct-routing.ron"),
        "--until",
        "soon",
    ]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--until"), "{}", out.stderr);
    let out = podpath(&["frobnicate"]);
    assert_eq!(out.code, 2);
}

#[test]
fn bad_bgp_section_is_positioned() {
    // The first error is the pool's mode; the others follow, each positioned.
    check_bad(
        "bgp-bad-section.ron",
        "6:59",
        &[
            "bad ipip_mode \"Sometimes\": expected one of \"Always\", \"CrossSubnet\", \"Never\"",
            ":9:24: error: unknown host \"node9\"",
            ":9:68: error: bad prefix \"10.244.300.0/26\"",
            ":11:73: error: bad selector \"route-reflector = 'true'\"",
        ],
    );
}
