//! The deliberate differences between podpath and the kernel, by the ids of
//! their entries in `tests/kernel-diff/known-differences.md`. Each
//! normalisation in the harness names the entry that justifies it, and counts
//! how often it applied.

use std::cell::RefCell;
use std::collections::BTreeMap;

/// IPv6 is not modelled: IPv6 frames, `inet6` addresses, IPv6 routes.
pub const KD_IPV6: &str = "KD-IPV6";
/// Multicast group membership: IGMP frames, multicast entries in `bridge fdb show`.
pub const KD_MULTICAST: &str = "KD-MULTICAST";
/// MAC addresses drawn at random (by the kernel or by podpath's seed) are named by their device.
pub const KD_RANDOM_MAC: &str = "KD-RANDOM-MAC";
/// IP ids, ICMP echo ids and the VXLAN source port are random or per-socket.
pub const KD_RANDOM_FIELDS: &str = "KD-RANDOM-FIELDS";
/// Checksums are not compared (veth offloads the outer UDP checksum).
pub const KD_CSUM_OFFLOAD: &str = "KD-CSUM-OFFLOAD";
/// Timing: neighbour states that move with time are "dynamic"; ping times left out.
pub const KD_TIMING: &str = "KD-TIMING";
/// Hosts are namespaces of one machine and NICs veth pairs into a bridge:
/// a NIC's qdisc and `@ifN`, `link-netns` names.
pub const KD_HARNESS_TOPO: &str = "KD-HARNESS-TOPO";
/// `gc_thresh*` exist only in the machine's init namespace: not written.
pub const KD_GC_THRESH: &str = "KD-GC-THRESH";
/// Lines podpath's parser rejects: its message quotes the tool's with context.
pub const KD_PARSE_MESSAGES: &str = "KD-PARSE-MESSAGES";
/// `tcpdump` lines in a scenario are not run (the harness captures every interface).
pub const KD_TCPDUMP: &str = "KD-TCPDUMP";
/// `modprobe br_netfilter` is the machine's business: not run (the module must be loaded already).
pub const KD_MODULES: &str = "KD-MODULES";
/// iptables-save's comment lines end with ` on DATE` (the wall clock); podpath's do not.
pub const KD_SAVE_DATE: &str = "KD-SAVE-DATE";

/// Every id, in the file's order.
pub const ALL: &[&str] = &[
    KD_IPV6,
    KD_MULTICAST,
    KD_RANDOM_MAC,
    KD_RANDOM_FIELDS,
    KD_CSUM_OFFLOAD,
    KD_TIMING,
    KD_HARNESS_TOPO,
    KD_GC_THRESH,
    KD_PARSE_MESSAGES,
    KD_TCPDUMP,
    KD_MODULES,
    KD_SAVE_DATE,
];

thread_local! {
    /// How many times each normalisation applied, in this thread (a scenario's
    /// replay, podpath run and comparison all happen on one thread).
    static APPLIED: RefCell<BTreeMap<&'static str, u64>> = const { RefCell::new(BTreeMap::new()) };
}

pub fn applied(id: &'static str, n: u64) {
    if n > 0 {
        APPLIED.with(|a| *a.borrow_mut().entry(id).or_default() += n);
    }
}

/// The counts so far on this thread, which start again from zero.
pub fn take() -> BTreeMap<&'static str, u64> {
    APPLIED.with(|a| std::mem::take(&mut *a.borrow_mut()))
}

#[test]
fn every_known_difference_is_documented() {
    let path = crate::path("tests/kernel-diff/known-differences.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let documented: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.starts_with("KD-"))
        .collect();
    assert_eq!(
        documented, ALL,
        "the entries of {path} and the ids the harness uses differ"
    );
}
