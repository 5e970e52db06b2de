//! Commands on the real machine, for the harnesses that compare podpath
//! with the kernel (`kernel_diff`) and with real BIRD (`bird`): running
//! tools, checking that namespaces can be made, and cleaning up the
//! namespaces a harness run left. Each harness names its namespaces
//! `<tag><pid>s...` (its tag, the test process id, `s`), so a later run can
//! tell which were left by a process that is gone.

use std::path::Path;
use std::process::{Command, Stdio};

/// What a command did.
pub struct Out {
    pub ok: bool,
    /// The exit code; -1 if it could not start (or was killed).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A command with the C locale (tools' output in the words parsed).
pub fn cmd(argv: &[&str]) -> Command {
    let mut c = Command::new(argv[0]);
    c.args(&argv[1..]).env("LC_ALL", "C");
    c
}

/// Runs a command to completion, no input.
pub fn run(argv: &[&str]) -> Out {
    match cmd(argv).stdin(Stdio::null()).output() {
        Ok(o) => Out {
            ok: o.status.success(),
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        },
        Err(e) => Out {
            ok: false,
            code: -1,
            stdout: String::new(),
            stderr: format!("{}: {e}", argv[0]),
        },
    }
}

/// Runs a harness command that must succeed; its output.
pub fn must(argv: &[&str]) -> Result<String, String> {
    let o = run(argv);
    if o.ok {
        Ok(o.stdout)
    } else {
        Err(format!(
            "harness command failed: {}: {}",
            argv.join(" "),
            o.stderr.trim()
        ))
    }
}

/// Why this process cannot make namespaces, if it cannot: not root, a
/// missing tool of `tools` (each `[program, args...]` run once), or the
/// kernel refusing a namespace (made and deleted under `tag`).
pub fn unavailable(tag: &str, tools: &[&[&str]]) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_string();
    if uid != "0" {
        return Some(format!("not running as root (effective uid {uid})"));
    }
    for argv in tools {
        let o = run(argv);
        if o.code == -1 {
            return Some(format!("`{}` is missing ({})", argv[0], o.stderr.trim()));
        }
    }
    let probe = format!("{tag}{}s-probe", std::process::id());
    let o = run(&["ip", "netns", "add", &probe]);
    if !o.ok {
        return Some(format!(
            "cannot create a network namespace: {}",
            o.stderr.trim()
        ));
    }
    let _ = run(&["ip", "netns", "del", &probe]);
    None
}

/// The namespaces on the machine (first word of `ip netns list`).
pub fn netns_list() -> Vec<String> {
    run(&["ip", "netns", "list"])
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Deletes the namespaces whose names start with `prefix`.
pub fn delete_namespaces(prefix: &str) {
    for n in netns_list() {
        if n.starts_with(prefix) {
            let _ = run(&["ip", "netns", "del", &n]);
        }
    }
}

/// Deletes namespaces left by runs of the harness `tag` whose process is
/// gone.
pub fn sweep_stale(tag: &str) {
    for n in netns_list() {
        let Some(rest) = n.strip_prefix(tag) else {
            continue;
        };
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if digits.is_empty() || !rest[digits.len()..].starts_with('s') {
            continue;
        }
        if !Path::new(&format!("/proc/{digits}")).exists() {
            let _ = run(&["ip", "netns", "del", &n]);
        }
    }
}

/// Prints a line to the test's output at once (`cargo test` shows it with
/// the test's result).
pub fn say(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Whether a skip is a failure (CI sets PODPATH_REQUIRE_KERNEL=1).
pub fn require_kernel() -> bool {
    // The harness's switches come from the environment; this is test
    // orchestration, not a simulation path.
    #[allow(clippy::disallowed_methods)]
    let v = std::env::var("PODPATH_REQUIRE_KERNEL");
    v.is_ok_and(|v| v == "1")
}

/// A harness's check of whether it can run here, made once per process
/// (the tests run concurrently).
pub struct Availability {
    checked: std::sync::Mutex<Option<Option<String>>>,
    check: fn() -> Option<String>,
    /// What the harness compares with ("kernel", "BIRD"), for messages.
    what: &'static str,
}

impl Availability {
    pub const fn new(what: &'static str, check: fn() -> Option<String>) -> Availability {
        Availability {
            checked: std::sync::Mutex::new(None),
            check,
            what,
        }
    }

    /// Ok(()) when the harness can run; otherwise prints why and returns
    /// Err (or panics when PODPATH_REQUIRE_KERNEL=1).
    pub fn or_skip(&self, test: &str) -> Result<(), ()> {
        let why = self
            .checked
            .lock()
            .unwrap()
            .get_or_insert_with(self.check)
            .clone();
        match why {
            None => Ok(()),
            Some(why) => {
                assert!(
                    !require_kernel(),
                    "{test}: PODPATH_REQUIRE_KERNEL=1 but the {} comparison cannot run: {why}",
                    self.what
                );
                say(&format!(
                    "{test}: skipped {} comparison: {why}\n",
                    self.what
                ));
                Err(())
            }
        }
    }
}
