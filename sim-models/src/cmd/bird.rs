//! Parsing BIRD's command line and its control client: `bird`, `birdc`,
//! and killing the daemon (`pkill bird`, `killall bird`). A child module
//! of `parse`, sharing its getopt.
//!
//! - `bird [-R] [-c FILE] [-s SOCKET] [-P PIDFILE] [-d] [-f]` starts the
//!   host's daemon with the configuration the scenario's `bgp` section gave
//!   it (the file names are accepted and ignored: there is one
//!   configuration per host). `-R` is calico/node's graceful-restart
//!   recovery.
//! - `birdc [-s SOCKET] show protocols [all] [NAME]`, `birdc show route
//!   [all] [for PREFIX|ADDR] [protocol NAME]`, `birdc restart NAME|all`,
//!   `birdc down`.
//! - `pkill [-9|-KILL|-TERM] bird`, `killall [-9] bird`: the daemon dies and
//!   the kernel closes its sockets (no NOTIFICATION).

use super::{Item, OptSpec, R, Word, getopt, perr};
use crate::cmd::{BirdCmd, BirdcCmd, Command, CommandKind};
use sim_core::net::Ipv4Net;

const BIRD_SPEC: OptSpec = OptSpec {
    prog: "bird",
    flags: "Rdfp",
    with_arg: "csPgl",
    known: "uD",
    long: &[],
    expected: "bird [-R] [-c FILE] [-s SOCKET] [-P PIDFILE] [-d] [-f]",
};

const BIRDC_SPEC: OptSpec = OptSpec {
    prog: "birdc",
    flags: "rvl",
    with_arg: "s",
    known: "",
    long: &[],
    expected: "birdc [-s SOCKET] show protocols [all] [NAME] | show route [all] [for PREFIX] [protocol NAME] | restart NAME|all | down",
};

const KILL_EXPECTED: &str = "pkill [-9|-KILL|-TERM] bird, or killall [-9] bird";

pub(super) fn parse_bird(w: &[Word], exec_ns: Option<String>) -> R<Command> {
    let mut recovering = false;
    for item in getopt(w, &BIRD_SPEC)? {
        match item {
            Item::Opt { c: 'R', .. } => recovering = true,
            Item::Opt { .. } => {}
            Item::Operand(x) => {
                return Err(perr(
                    x.col,
                    format!(
                        "bird: unexpected operand \"{}\": expected {}",
                        x.text, BIRD_SPEC.expected
                    ),
                ));
            }
        }
    }
    Ok(Command {
        netns: exec_ns,
        kind: CommandKind::Bird(BirdCmd::Start { recovering }),
    })
}

pub(super) fn parse_birdc(w: &[Word], exec_ns: Option<String>) -> R<Command> {
    let mut ops: Vec<&Word> = Vec::new();
    for item in getopt(w, &BIRDC_SPEC)? {
        if let Item::Operand(x) = item {
            ops.push(x);
        }
    }
    let exp = BIRDC_SPEC.expected;
    let syntax = |at: &Word, what: &str| {
        perr(
            at.col,
            format!(
                "birdc: syntax error, {what} \"{}\": expected {exp}",
                at.text
            ),
        )
    };
    let Some(first) = ops.first() else {
        return Err(perr(
            w[0].col,
            format!("birdc: the interactive client is not supported: expected {exp}"),
        ));
    };
    // BIRD's CLI accepts unambiguous abbreviations (`sh pro`, `s r`).
    let is = |x: &Word, full: &str| !x.text.is_empty() && full.starts_with(&*x.text);
    let cmd = if is(first, "show") {
        let Some(what) = ops.get(1) else {
            return Err(perr(
                first.col,
                format!("birdc: show what?: expected {exp}"),
            ));
        };
        if is(what, "protocols") {
            let mut all = false;
            let mut name = None;
            for x in &ops[2..] {
                if x.text == "all" && !all && name.is_none() {
                    all = true;
                } else if name.is_none() {
                    name = Some(x.text.to_string());
                } else {
                    return Err(syntax(x, "unexpected"));
                }
            }
            BirdcCmd::ShowProtocols { all, name }
        } else if is(what, "route") {
            let mut all = false;
            let mut for_addr = None;
            let mut protocol = None;
            let mut i = 2;
            while i < ops.len() {
                let x = ops[i];
                if x.text == "all" {
                    all = true;
                } else if x.text == "for" || x.text == "protocol" {
                    let Some(v) = ops.get(i + 1) else {
                        return Err(syntax(x, "missing a value after"));
                    };
                    if x.text == "for" {
                        let p: Ipv4Net = v.text.parse().map_err(|_| {
                            perr(
                                v.col,
                                format!(
                                    "birdc: syntax error, \"{}\" is not an IPv4 address or prefix: expected {exp}",
                                    v.text
                                ),
                            )
                        })?;
                        for_addr = Some(p);
                    } else {
                        protocol = Some(v.text.to_string());
                    }
                    i += 1;
                } else {
                    return Err(syntax(x, "unexpected"));
                }
                i += 1;
            }
            BirdcCmd::ShowRoute {
                all,
                for_addr,
                protocol,
            }
        } else {
            return Err(syntax(what, "unsupported show command"));
        }
    } else if is(first, "restart") {
        let Some(name) = ops.get(1) else {
            return Err(perr(
                first.col,
                format!("birdc: restart what?: expected {exp}"),
            ));
        };
        if let Some(x) = ops.get(2) {
            return Err(syntax(x, "unexpected"));
        }
        BirdcCmd::Restart {
            name: name.text.to_string(),
        }
    } else if is(first, "down") {
        if let Some(x) = ops.get(1) {
            return Err(syntax(x, "unexpected"));
        }
        BirdcCmd::Down
    } else {
        return Err(syntax(first, "unsupported command"));
    };
    Ok(Command {
        netns: exec_ns,
        kind: CommandKind::Bird(BirdCmd::Ctl(cmd)),
    })
}

/// `pkill bird` and `killall bird`.
pub(super) fn parse_kill(w: &[Word], exec_ns: Option<String>) -> R<Command> {
    let prog = &w[0].text;
    let mut names = Vec::new();
    for x in &w[1..] {
        match &*x.text {
            "-9" | "-KILL" | "-SIGKILL" | "-15" | "-TERM" | "-SIGTERM" => {}
            t if t.starts_with('-') => {
                return Err(perr(
                    x.col,
                    format!(
                        "{prog}: option {t} is not supported by the simulator: expected {KILL_EXPECTED}"
                    ),
                ));
            }
            _ => names.push(x),
        }
    }
    match names.as_slice() {
        [n] if n.text == "bird" => {}
        [n] => {
            return Err(perr(
                n.col,
                format!(
                    "{prog}: the simulator runs no process \"{}\" that can be killed: expected {KILL_EXPECTED}",
                    n.text
                ),
            ));
        }
        [] => {
            return Err(perr(
                w[0].col,
                format!("{prog}: no process name: expected {KILL_EXPECTED}"),
            ));
        }
        [_, x, ..] => {
            return Err(perr(
                x.col,
                format!("{prog}: one process name: expected {KILL_EXPECTED}"),
            ));
        }
    }
    Ok(Command {
        netns: exec_ns,
        kind: CommandKind::Bird(BirdCmd::Kill),
    })
}

#[cfg(test)]
mod tests {
    // Columns are 0-based (the loader adds the line's position).
    use crate::cmd::{BirdCmd, BirdcCmd, CommandKind, parse_line};

    fn kind(line: &str) -> CommandKind {
        parse_line(line).unwrap().kind
    }

    fn err(line: &str) -> (usize, String) {
        let e = parse_line(line).unwrap_err();
        (e.col, e.message)
    }

    #[test]
    fn daemon_and_client_lines() {
        assert_eq!(
            kind("bird -R -s /var/run/calico/bird.ctl -d -c /etc/calico/confd/config/bird.cfg"),
            CommandKind::Bird(BirdCmd::Start { recovering: true })
        );
        assert_eq!(
            kind("bird"),
            CommandKind::Bird(BirdCmd::Start { recovering: false })
        );
        assert_eq!(
            kind("birdc -s /var/run/calico/bird.ctl show protocols"),
            CommandKind::Bird(BirdCmd::Ctl(BirdcCmd::ShowProtocols {
                all: false,
                name: None
            }))
        );
        // BIRD's CLI takes abbreviations.
        assert_eq!(
            kind("birdc sh ro for 10.244.1.5 all"),
            CommandKind::Bird(BirdCmd::Ctl(BirdcCmd::ShowRoute {
                all: true,
                for_addr: Some("10.244.1.5/32".parse().unwrap()),
                protocol: None
            }))
        );
        assert_eq!(
            kind("birdc show protocols all Mesh_10_0_0_2"),
            CommandKind::Bird(BirdCmd::Ctl(BirdcCmd::ShowProtocols {
                all: true,
                name: Some("Mesh_10_0_0_2".into())
            }))
        );
        assert_eq!(
            kind("birdc restart all"),
            CommandKind::Bird(BirdCmd::Ctl(BirdcCmd::Restart { name: "all".into() }))
        );
        assert_eq!(kind("pkill -9 bird"), CommandKind::Bird(BirdCmd::Kill));
        assert_eq!(kind("killall bird"), CommandKind::Bird(BirdCmd::Kill));
    }

    #[test]
    fn bad_lines_are_positioned() {
        let (col, m) = err("pkill -9 nginx");
        assert_eq!(col, 9);
        assert!(m.contains("no process \"nginx\""), "{m}");
        let (col, m) = err("birdc show bfd sessions");
        assert_eq!(col, 11);
        assert!(m.contains("unsupported show command"), "{m}");
        let (col, m) = err("birdc show route for 10.244.1");
        assert_eq!(col, 21);
        assert!(m.contains("not an IPv4 address or prefix"), "{m}");
        let (col, m) = err("bird extra");
        assert_eq!(col, 5);
        assert!(m.contains("unexpected operand"), "{m}");
        let (_, m) = err("birdc");
        assert!(m.contains("interactive client is not supported"), "{m}");
    }
}
