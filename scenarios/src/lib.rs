//! Scenario files: the RON format (the only crate that knows RON), loading
//! with positioned diagnostics, assembly into a simulation, running, and
//! checking expectations. The bundled scenarios live in `scenarios/files/`.

pub mod bgp;
pub mod build;
pub mod cluster;
pub mod format;
pub mod load;
pub mod progress;
pub mod reach;
pub mod routes;
pub mod run;
pub mod spans;

pub use build::RunOptions;
pub use load::{Diagnostic, Scenario, load_str};
pub use run::{Outcome, RunResult, check, run};

/// Reads and loads a scenario file.
pub fn load_file(path: &str) -> Result<Scenario, Vec<Diagnostic>> {
    match std::fs::read_to_string(path) {
        Ok(src) => load_str(path, &src),
        Err(e) => Err(vec![Diagnostic {
            file: path.to_string(),
            pos: spans::Pos { line: 1, col: 1 },
            message: format!("cannot read file: {e}"),
        }]),
    }
}
