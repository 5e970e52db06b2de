//! Same scenario and seed: byte-identical output. Another seed: a randomized
//! run changes.

use crate::{bundled, path, podpath};

#[test]
fn same_seed_same_bytes() {
    for f in bundled() {
        let a = podpath(&["run", &f]);
        let b = podpath(&["run", &f]);
        assert_eq!(a, b, "{f} is not deterministic");
        let a = podpath(&["run", &f, "--json"]);
        let b = podpath(&["run", &f, "--json"]);
        assert_eq!(a, b, "{f} --json is not deterministic");
    }
}

#[test]
fn seed_changes_a_randomized_run() {
    // Proxy ARP replies to broadcast requests are delayed by a random time
    // drawn from the run's seed, so the ping's timing depends on the seed.
    let f = path("scenarios/files/seed-vxlan-routed.ron");
    let a = podpath(&["run", &f, "--seed", "1"]);
    let b = podpath(&["run", &f, "--seed", "2"]);
    assert_eq!(a.code, 0, "{}", a.stderr);
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert_ne!(a.stdout, b.stdout, "seed 1 and seed 2 gave the same run");
    assert!(a.stdout.contains("(seed 1)") && b.stdout.contains("(seed 2)"));
}
