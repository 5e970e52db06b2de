//! The command-line interface (clap), shared by the binary and the tests.

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "podpath", version, about = "Deterministic simulator of Kubernetes cluster networking: watch every packet take every step", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run a scenario: print its commands' output, the trace, and the expectations.
    Run {
        scenario: String,
        #[command(flatten)]
        run: RunArgs,
        /// Print JSON lines instead of text.
        #[arg(long)]
        json: bool,
        /// Do not print the trace (commands, output and expectations only).
        #[arg(long)]
        no_trace: bool,
        /// Capture every device and write one pcapng file per host, DIR/HOST.pcapng
        /// (and `tcpdump -w FILE` files under DIR).
        #[arg(long, value_name = "DIR")]
        pcap: Option<String>,
    },
    /// Validate a scenario (syntax, names, every command line) without running it.
    Check { scenario: String },
    /// Inject one packet after setup and print its numbered steps.
    Trace {
        scenario: String,
        /// Where the packet starts: HOST or HOST:NETNS.
        #[arg(long)]
        from: String,
        /// Destination address.
        #[arg(long)]
        to: String,
        #[arg(long, value_enum, default_value_t = Proto::Icmp)]
        proto: Proto,
        /// Destination port (udp, tcp).
        #[arg(long)]
        dport: Option<u16>,
        /// Payload bytes (ICMP data or UDP/TCP payload).
        #[arg(long, default_value_t = 56)]
        size: u32,
        /// Inject at this simulated time (default: right after setup; in a
        /// scenario with a bgp section, once BGP has converged).
        #[arg(long)]
        at: Option<String>,
        #[command(flatten)]
        run: RunArgs,
        #[arg(long)]
        json: bool,
    },
    /// Print a table of HOST[:NETNS] as the real tool prints it.
    Show {
        scenario: String,
        /// HOST or HOST:NETNS.
        place: String,
        #[arg(value_enum)]
        table: Table,
        /// Show the table as it was at this simulated time (default: the end of the run).
        #[arg(long)]
        at: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Open the terminal UI: step through each packet's path, forward and back, with the tables it consulted.
    Tui {
        scenario: String,
        /// Open before time 0: play the simulation forward with space and watch packets appear.
        #[arg(long)]
        step: bool,
        /// Select this packet first.
        #[arg(long)]
        packet: Option<u64>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// BGP: each node's kernel routing table (`ip route`), BIRD's sessions
    /// (`birdc show protocols`) and BGP table (`birdc show route`), and the
    /// convergence report for the cold start and each timeline event.
    Routes {
        scenario: String,
        /// Show the tables at this simulated time (default: the end of the run).
        #[arg(long)]
        at: Option<String>,
        /// Only this node's tables.
        #[arg(long)]
        node: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Print the commands a `cluster:` scenario generates, node by node, as
    /// they would be pasted into a hand-written scenario.
    Expand {
        scenario: String,
        /// Only this node (or router).
        #[arg(long)]
        node: Option<String>,
        /// Print RON `segments` and `hosts` entries instead of plain commands.
        #[arg(long)]
        ron: bool,
    },
    /// All-pairs pod-to-pod reachability after setup: one ICMP echo per pair,
    /// a matrix per node pair and the first failing step of each failure.
    Reach {
        scenario: String,
        /// Sources: nodes, pods, namespace/pod, HOST:NETNS or addresses, comma-separated, `*` globs (default all).
        #[arg(long)]
        from: Option<String>,
        /// Destinations, as --from (default all).
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Pairs whose reachability or path differs between two scenarios.
    Diff {
        a: String,
        b: String,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Draw the topology as Graphviz DOT or SVG, with a packet's path over it.
    Graph {
        scenario: String,
        /// Draw this packet's path (ids as in the trace).
        #[arg(long)]
        packet: Option<u64>,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
        #[command(flatten)]
        run: RunArgs,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphFormat {
    Dot,
    /// SVG through Graphviz's `dot`.
    Svg,
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// Root seed (overrides the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop at this simulated time (e.g. "2s", "500ms").
    #[arg(long)]
    pub until: Option<String>,
    /// Stop with an error after this many events.
    #[arg(long)]
    pub max_events: Option<u64>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Icmp,
    Udp,
    Tcp,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Routes,
    Rules,
    Neigh,
    Fdb,
    Links,
    Addrs,
    Iptables,
}

impl Table {
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Routes => "routes",
            Table::Rules => "rules",
            Table::Neigh => "neigh",
            Table::Fdb => "fdb",
            Table::Links => "links",
            Table::Addrs => "addrs",
            Table::Iptables => "iptables",
        }
    }
}
