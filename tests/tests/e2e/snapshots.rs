//! Snapshots of each bundled scenario's full run (commands, trace, output,
//! expectations) and of every namespace's tables after the run, in the real
//! tools' formats. Review changes with `cargo insta review`.

use crate::{bundled, podpath};

fn stem(path: &str) -> String {
    std::path::Path::new(path)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The path as the tests' working directory (the crate dir) sees it, so
/// snapshots do not depend on where the checkout lives.
fn rel(path: &str) -> String {
    format!("../scenarios/files/{}.ron", stem(path))
}

#[test]
fn run_output_of_every_bundled_scenario() {
    for f in bundled() {
        // The BGP scenarios' traces are minutes of keepalives and ARP: their
        // snapshots hold commands, output and expectations, and `bgp.rs`
        // snapshots their converged tables.
        let out = if stem(&f).starts_with("bgp-") {
            podpath(&["run", &rel(&f), "--no-trace"])
        } else {
            podpath(&["run", &rel(&f)])
        };
        insta::assert_snapshot!(
            format!("run-{}", stem(&f)),
            format!("exit {}\n{}{}", out.code, out.stdout, out.stderr)
        );
    }
}

#[test]
fn final_tables_of_every_bundled_scenario() {
    for f in bundled() {
        let sc = scenarios::load_file(&rel(&f)).unwrap();
        let r = scenarios::run(&sc, &Default::default());
        let w = &r.sim.world;
        let mut text = String::new();
        let mut places = Vec::new();
        for h in &w.hosts {
            places.push(h.name.clone());
            for ns in h.namespaces.keys() {
                places.push(format!("{}:{ns}", h.name));
            }
        }
        for p in places {
            for table in ["links", "addrs", "routes", "rules", "neigh", "fdb"] {
                let t = scenarios::run::show_table(&r.sim, &p, table).unwrap();
                if table == "rules" && t.lines().count() == 3 {
                    continue; // the default rules, everywhere
                }
                text.push_str(&format!("=== {p} {table}\n{t}"));
            }
        }
        insta::assert_snapshot!(format!("tables-{}", stem(&f)), text);
    }
}
