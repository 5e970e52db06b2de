//! podpath's end-to-end tests: one binary, run in process through the same
//! code the `podpath` binary calls.

mod bad_input;
mod bgp;
mod bird;
mod bundled;
mod captures;
mod determinism;
mod fuzz;
mod host;
mod k8s;
mod kernel_diff;
mod snapshots;
mod tui;

use podpath::CliOutput;
use podpath::cli::Cli;

/// The workspace root (tests run with the crate dir as cwd).
pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn path(rel: &str) -> String {
    root().join(rel).to_string_lossy().into_owned()
}

/// Runs `podpath ARGS...` in process.
pub fn podpath(args: &[&str]) -> CliOutput {
    use clap::Parser;
    let mut v = vec!["podpath"];
    v.extend_from_slice(args);
    match Cli::try_parse_from(v) {
        Ok(cli) => podpath::execute(&cli),
        Err(e) => CliOutput {
            stdout: String::new(),
            stderr: e.to_string(),
            code: e.exit_code(),
        },
    }
}

/// Every bundled scenario file.
pub fn bundled() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("scenarios/files"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
