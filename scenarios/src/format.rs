//! The scenario file format (RON), as serde types. Documented in
//! `docs/scenario-format.md`; every struct rejects unknown fields.

use serde::Deserialize;

/// A scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Scenario")]
pub struct ScenarioFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The root seed (overridden by `--seed`).
    #[serde(default)]
    pub seed: u64,
    /// L2 networks joining the hosts' NICs.
    #[serde(default)]
    pub segments: Vec<SegmentSpec>,
    #[serde(default)]
    pub hosts: Vec<HostSpec>,
    /// Commands at simulated times after setup.
    #[serde(default)]
    pub timeline: Vec<TimedSpec>,
    #[serde(default)]
    pub expect: Vec<ExpectSpec>,
    /// How long the run may go on, and how many events it may take.
    #[serde(default)]
    pub limits: Option<LimitsSpec>,
    /// BGP speakers: Calico's resources and plain routers (see `crate::bgp`).
    #[serde(default)]
    pub bgp: Option<crate::bgp::BgpSpec>,
    /// A Kubernetes cluster whose nodes podpath generates (`crate::cluster`).
    #[serde(default)]
    pub cluster: Option<crate::cluster::ClusterSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Segment")]
pub struct SegmentSpec {
    pub name: String,
    /// One-way latency, e.g. "100us" (default "50us").
    #[serde(default)]
    pub latency: Option<String>,
    /// e.g. "1Gbit", "10Gbit", "100Mbit" (default "1Gbit").
    #[serde(default)]
    pub bandwidth: Option<String>,
    /// Default 1500.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Random loss probability, e.g. "0.01" (default none).
    #[serde(default)]
    pub loss: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Host")]
pub struct HostSpec {
    pub name: String,
    #[serde(default)]
    pub nics: Vec<NicSpec>,
    /// The setup script: one command per line, run in order at time 0 in the
    /// host's root namespace.
    #[serde(default)]
    pub setup: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Nic")]
pub struct NicSpec {
    pub name: String,
    pub segment: String,
    #[serde(default)]
    pub mac: Option<String>,
    /// An address the machine's own network configuration gives the NIC
    /// (e.g. "192.168.56.6/24"): the NIC is up with it before setup runs.
    /// Without it the NIC is present and down, as in a fresh kernel.
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Timed")]
pub struct TimedSpec {
    /// When, e.g. "1s", "250ms".
    pub at: String,
    /// `node1` or `node1:test3`.
    pub on: String,
    /// One command line (or several, one per line).
    pub run: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Limits")]
pub struct LimitsSpec {
    #[serde(default)]
    pub until: Option<String>,
    #[serde(default)]
    pub max_events: Option<u64>,
}

/// What the run must show. A failed expectation exits 1.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ExpectSpec {
    /// Pings from `from` to `to` got (`ok: true`) or did not get (`ok: false`) replies.
    #[serde(rename = "Reach")]
    Reach {
        from: String,
        to: String,
        #[serde(default = "yes")]
        ok: bool,
    },
    /// The first packet from `from` to `to` crossed these devices, in this
    /// order (other devices may come between).
    #[serde(rename = "Path")]
    Path {
        from: String,
        to: String,
        through: Vec<String>,
    },
    /// A packet was dropped for `reason` (a drop code such as "rp-filter"),
    /// at a place whose path starts with `at`.
    #[serde(rename = "Drop")]
    Drop {
        reason: String,
        #[serde(default)]
        at: Option<String>,
    },
    /// After the run, a table printed as the real tool prints it contains a
    /// line (compared with surrounding whitespace trimmed).
    #[serde(rename = "Table")]
    Table {
        on: String,
        table: String,
        contains: String,
    },
    /// The output of commands run on `on` contains this text.
    #[serde(rename = "Output")]
    Output { on: String, contains: String },
    /// After setup, every selected pod reaches every other selected pod: an
    /// ICMP echo and its reply (`podpath reach`). Selectors as `--from`/`--to`;
    /// default every pod.
    #[serde(rename = "FullReach")]
    FullReach {
        #[serde(default)]
        from: Option<String>,
        #[serde(default)]
        to: Option<String>,
    },
    /// A setup or timeline command fails with this error (the run goes on).
    #[serde(rename = "CommandError")]
    CommandError {
        on: String,
        command: String,
        error: String,
    },
}

fn yes() -> bool {
    true
}
