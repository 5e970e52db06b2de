//! The `podpath` binary: argument parsing and output only.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use scenarios::progress::Progress;

fn main() -> ExitCode {
    let cli = podpath::cli::Cli::parse();
    // A progress bar only for a person watching: nothing when stderr is
    // piped or redirected.
    let progress = if std::io::stderr().is_terminal() {
        Progress::new(Arc::new(podpath::progress::TerminalBar::new()))
    } else {
        Progress::default()
    };
    let out = podpath::execute_with(&cli, &progress);
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.stdout.as_bytes());
    let _ = stdout.flush();
    let _ = std::io::stderr().write_all(out.stderr.as_bytes());
    ExitCode::from(out.code as u8)
}
