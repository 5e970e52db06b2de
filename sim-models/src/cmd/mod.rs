//! The command language: a strict subset of iproute2, bridge, arp, sysctl,
//! modprobe, iptables and the traffic tools, parsed as those tools parse.
//!
//! [`parse_line`] turns one line of a setup script or timeline into a [`Command`];
//! anything outside the subset is a [`ParseError`] naming the word and its
//! character column. Executing a command against the model is
//! `crate::linux::exec`.

use std::net::Ipv4Addr;

use sim_core::net::Ipv4Net;
use sim_core::trace::RouteType;
use sim_core::wire::MacAddr;

mod parse;
pub use parse::{ScriptCommand, Word, parse_line, parse_script, split_words};

/// A parse error: the 0-based character column of the offending word within
/// the line, and a message in the tool's own words where it has them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub col: usize,
    pub message: String,
}

/// One parsed line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// `ip netns exec NS ...` / `ip -n NS ...`: run inside that namespace.
    pub netns: Option<String>,
    pub kind: CommandKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandKind {
    /// Blank line, comment, `set -ux` and similar shell no-ops.
    Noop,
    Link(LinkCmd),
    Addr(AddrCmd),
    Route(RouteCmd),
    Rule(RuleCmd),
    Neigh(NeighCmd),
    Fdb(FdbCmd),
    Netns(NetnsCmd),
    Tunnel(TunnelCmd),
    /// `sysctl -w KEY=VALUE` (value Some) or `sysctl KEY` (read).
    Sysctl {
        key: String,
        value: Option<String>,
    },
    /// `modprobe MODULE`.
    Modprobe {
        module: String,
    },
    /// `iptables ...` arguments after the program name, kept as words for the
    /// netfilter model (which parses and validates them).
    Iptables {
        args: Vec<String>,
        args_cols: Vec<usize>,
    },
    Ping(PingCmd),
    Traceroute {
        dst: Ipv4Addr,
        numeric: bool,
    },
    Tcpdump {
        dev: Option<String>,
        write: Option<String>,
    },
    /// `nc` (OpenBSD netcat): a TCP or UDP listener or client.
    Nc(NcCmd),
    /// `iperf3 -s` / `iperf3 -c ADDR ...`: bulk TCP or paced UDP flows.
    Iperf3(Iperf3Cmd),
    /// `bird`, `birdc`, `pkill bird`: the BGP daemon calico/node runs.
    Bird(BirdCmd),
    /// `iptables-save [-c] [-t TABLE]`: the tables in iptables-save's format.
    IptablesSave {
        /// `-t TABLE`: one of iptables' tables (checked by the parser).
        table: Option<String>,
        /// `-c`: rule counters as `[packets:bytes]`.
        counters: bool,
    },
    /// `iptables-restore [-n|--noflush] [-c]`, its input given as a
    /// here-document (`iptables-restore <<EOF` ... `EOF`) in a script.
    IptablesRestore {
        noflush: bool,
        counters: bool,
        /// The here-document's lines, each ending in a newline.
        input: String,
    },
    /// `conntrack -L` (`--dump`): the connection tracking table.
    ConntrackList,
    /// A line the tools reject (kept only where a scenario expects the error):
    /// running it prints the message and fails, as the real tool would.
    Invalid {
        message: String,
    },
    /// Commands made on demand instead of kept as parsed lines (a generated
    /// cluster's per-peer entries): run one after the other, as if each
    /// were its own line.
    Batch(BatchCmd),
}

/// A run of commands produced on demand: a 5,000-node cluster programs 75
/// million neighbour, FDB and route entries, too many to keep as lines or
/// parsed commands. Each command equals what `parse_line` makes of its line.
pub trait Batch: Send + Sync + std::fmt::Debug {
    /// How many commands.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Command `k` (`k < len()`).
    fn command(&self, k: usize) -> Command;
    /// Command `k`'s line as written (for the command log and messages).
    fn line(&self, k: usize) -> String;
}

/// A shared [`Batch`]; two are equal when they are the same batch.
#[derive(Clone, Debug)]
pub struct BatchCmd(pub std::sync::Arc<dyn Batch>);

impl PartialEq for BatchCmd {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::addr_eq(
            std::sync::Arc::as_ptr(&self.0),
            std::sync::Arc::as_ptr(&other.0),
        )
    }
}
impl Eq for BatchCmd {}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkCmd {
    Add {
        name: String,
        kind: LinkKind,
        mtu: Option<u32>,
        address: Option<MacAddr>,
    },
    Set(LinkSet),
    Del {
        dev: String,
    },
    Show {
        dev: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkKind {
    Veth {
        peer: String,
        peer_mtu: Option<u32>,
        peer_address: Option<MacAddr>,
        peer_netns: Option<String>,
    },
    Bridge,
    Dummy,
    Vxlan(VxlanArgs),
    Ipip(TunnelArgs),
}

/// `ip link add NAME type vxlan ...` arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VxlanArgs {
    pub vni: Option<u32>,
    pub dstport: Option<u16>,
    pub local: Option<Ipv4Addr>,
    pub remote: Option<Ipv4Addr>,
    pub group: Option<Ipv4Addr>,
    pub dev: Option<String>,
    pub ttl: Option<u8>,
    pub srcport: Option<(u16, u16)>,
    /// None = default (learning on).
    pub learning: Option<bool>,
    pub proxy: bool,
    pub l2miss: bool,
    pub l3miss: bool,
}

/// `ip tunnel add` / `ip link add type ipip` arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TunnelArgs {
    pub local: Option<Ipv4Addr>,
    pub remote: Option<Ipv4Addr>,
    pub ttl: Option<u8>,
    pub dev: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkSet {
    pub dev: String,
    pub up: Option<bool>,
    pub mtu: Option<u32>,
    pub address: Option<MacAddr>,
    /// Some(Some(br)) = `master br`, Some(None) = `nomaster`.
    pub master: Option<Option<String>>,
    pub netns: Option<String>,
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddrCmd {
    Add {
        addr: Ipv4Net,
        dev: String,
        broadcast: Option<Ipv4Addr>,
        scope: Option<Scope>,
    },
    Del {
        addr: Ipv4Net,
        dev: String,
    },
    Flush {
        dev: String,
    },
    Show {
        dev: Option<String>,
    },
}

/// Route/address scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Global,
    Site,
    Link,
    Host,
    Nowhere,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Site => "site",
            Scope::Link => "link",
            Scope::Host => "host",
            Scope::Nowhere => "nowhere",
        }
    }
    /// The kernel's numeric value (RT_SCOPE_*): larger is narrower.
    pub fn value(self) -> u8 {
        match self {
            Scope::Global => 0,
            Scope::Site => 200,
            Scope::Link => 253,
            Scope::Host => 254,
            Scope::Nowhere => 255,
        }
    }
}

/// Table selector: a number (main = 254, local = 255, default = 253).
pub type TableId = u32;
pub const TABLE_LOCAL: TableId = 255;
pub const TABLE_MAIN: TableId = 254;
pub const TABLE_DEFAULT: TableId = 253;

/// One nexthop of a multipath route (`nexthop via GW dev DEV weight N onlink`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NexthopSpec {
    pub gateway: Option<Ipv4Addr>,
    pub dev: Option<String>,
    /// 1..=256 (iproute2's `weight`), default 1.
    pub weight: u32,
    pub onlink: bool,
}

/// The arguments of `ip route add|del|replace`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    pub rtype: RouteType,
    pub prefix: Ipv4Net,
    pub gateway: Option<Ipv4Addr>,
    pub dev: Option<String>,
    pub src: Option<Ipv4Addr>,
    pub onlink: bool,
    pub table: Option<TableId>,
    pub metric: Option<u32>,
    pub scope: Option<Scope>,
    /// `proto` number (boot = 3, static = 4, kernel = 2, bird = 12); None = boot.
    pub proto: Option<u8>,
    pub mtu: Option<u32>,
    pub nexthops: Vec<NexthopSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteCmd {
    Add(RouteSpec),
    Replace(RouteSpec),
    /// `ip route del` may name only part of the route; unspecified fields match anything.
    Del(RouteSpec),
    /// `ip route show [table T] [dev D]`; table None = main, Some(0) = all.
    Show {
        table: Option<TableId>,
        dev: Option<String>,
    },
    Get {
        dst: Ipv4Addr,
        from: Option<Ipv4Addr>,
        iif: Option<String>,
        oif: Option<String>,
        mark: Option<u32>,
    },
    Flush {
        table: Option<TableId>,
        dev: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSpec {
    pub priority: Option<u32>,
    pub from: Option<Ipv4Net>,
    pub to: Option<Ipv4Net>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    /// (mark, mask); mask defaults to 0xffffffff.
    pub fwmark: Option<(u32, u32)>,
    pub table: Option<TableId>,
    /// `blackhole`/`unreachable`/`prohibit` rule actions.
    pub action: Option<RouteType>,
    pub not: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleCmd {
    Add(RuleSpec),
    Del(RuleSpec),
    Show,
}

/// Neighbour states as `nud` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NudState {
    Permanent,
    Noarp,
    Reachable,
    Stale,
    Delay,
    Probe,
    Incomplete,
    Failed,
}

impl NudState {
    pub fn as_str(self) -> &'static str {
        match self {
            NudState::Permanent => "PERMANENT",
            NudState::Noarp => "NOARP",
            NudState::Reachable => "REACHABLE",
            NudState::Stale => "STALE",
            NudState::Delay => "DELAY",
            NudState::Probe => "PROBE",
            NudState::Incomplete => "INCOMPLETE",
            NudState::Failed => "FAILED",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NeighCmd {
    /// `ip neigh add|replace ADDR lladdr MAC dev DEV [nud STATE]`, `arp -s ADDR MAC -i DEV`
    /// (arp -s makes a PERMANENT entry).
    Add {
        addr: Ipv4Addr,
        lladdr: Option<MacAddr>,
        dev: String,
        state: NudState,
        replace: bool,
        proxy: bool,
    },
    Del {
        addr: Ipv4Addr,
        dev: String,
    },
    Show {
        dev: Option<String>,
    },
    Flush {
        dev: Option<String>,
    },
    /// `arp -n` / `arp -a`: print the table in arp's format.
    ArpShow,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FdbCmd {
    /// `bridge fdb add|append|replace MAC dev DEV [dst IP] [master|self] [permanent|static|dynamic] [port P] [vni N]`.
    Add {
        mac: MacAddr,
        dev: String,
        dst: Option<Ipv4Addr>,
        append: bool,
        replace: bool,
        master: bool,
        self_: bool,
        state: FdbState,
        port: Option<u16>,
        vni: Option<u32>,
    },
    Del {
        mac: MacAddr,
        dev: String,
        dst: Option<Ipv4Addr>,
        master: bool,
        self_: bool,
    },
    Show {
        dev: Option<String>,
        br: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum FdbState {
    /// `permanent` (the default for `bridge fdb add`).
    #[default]
    Permanent,
    Static,
    Dynamic,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetnsCmd {
    Add(String),
    Del(String),
    List,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TunnelCmd {
    /// `ip tunnel add NAME mode ipip [local A] [remote A] [ttl N] [dev D]`.
    Add {
        name: String,
        args: TunnelArgs,
    },
    Del {
        name: String,
    },
    Show {
        name: Option<String>,
    },
}

/// `ping [-c N] [-s SIZE] [-M do|dont|want] [-I SRC|DEV] [-i INTERVAL] [-W TIMEOUT] [-t TTL] DEST`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PingCmd {
    pub dst: Ipv4Addr,
    pub count: u32,
    pub size: u32,
    /// `-M do` sets DF (`dont` clears it; default `want` = DF set, as Linux ping does for PMTU discovery).
    pub pmtu: PmtuMode,
    pub source: Option<PingSource>,
    /// -i, in milliseconds (default 1000).
    pub interval_ms: u64,
    /// -W, in milliseconds (default 10000 when -c given).
    pub timeout_ms: u64,
    pub ttl: Option<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PmtuMode {
    Do,
    Dont,
    Want,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PingSource {
    Addr(Ipv4Addr),
    Dev(String),
}

/// BIRD's daemon and control client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BirdCmd {
    /// `bird [-R]`.
    Start {
        recovering: bool,
    },
    /// `pkill bird`: the daemon dies; the kernel closes its sockets.
    Kill,
    Ctl(BirdcCmd),
    /// Not a command a person types: with the scenario's BGP engine
    /// `fabric`, the routes this host's BIRD would have installed once BGP
    /// converged (computed by `bgp::fabric`), installed as BIRD installs
    /// them.
    FabricInstall,
}

/// `birdc` commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BirdcCmd {
    ShowProtocols {
        all: bool,
        name: Option<String>,
    },
    ShowRoute {
        all: bool,
        for_addr: Option<sim_core::net::Ipv4Net>,
        protocol: Option<String>,
    },
    Restart {
        name: String,
    },
    /// Shut the daemon down: a Cease NOTIFICATION to every peer.
    Down,
}

/// `nc` as OpenBSD netcat parses it, plus podpath's `--send`, `--bytes` and
/// `--reply` (data to send: there is no stdin to pipe into it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NcCmd {
    /// `-l`: listen instead of connecting.
    pub listen: bool,
    /// `-k`: keep listening after a connection ends.
    pub keep: bool,
    /// `-u`: UDP.
    pub udp: bool,
    /// `-v`: report connections on stderr.
    pub verbose: bool,
    /// `-z`: connect (TCP) and close at once, sending nothing.
    pub zero_io: bool,
    /// `-N`: shut the connection down (send FIN) once the data is sent.
    pub shutdown: bool,
    /// `-s ADDR` (client: source address; listener: address to listen on).
    pub source: Option<Ipv4Addr>,
    /// `-p PORT` (client: source port; listener: port to listen on).
    pub source_port: Option<u16>,
    /// Client: the destination; listener: the address operand, if any.
    pub addr: Option<Ipv4Addr>,
    /// The port operand (the destination port, or the port to listen on).
    pub port: Option<u16>,
    /// `-w SECS`: connect and idle timeout, in milliseconds.
    pub wait_ms: Option<u64>,
    /// `-q SECS`: quit this long after the data is sent, in milliseconds.
    pub quit_ms: Option<u64>,
    /// `-i SECS`: delay between writes, in milliseconds.
    pub interval_ms: u64,
    /// The writes to make after connecting, in order.
    pub send: Vec<NcData>,
    /// Listener: what to answer each connection (or datagram) with.
    pub reply: Option<NcData>,
}

/// One write of `nc`: a line of text (sent with a newline, as `echo TEXT | nc`
/// would) or a number of zero bytes (as `head -c N /dev/zero | nc`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NcData {
    Text(String),
    Bytes(u64),
}

/// `iperf3` (3.x): server or client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iperf3Cmd {
    /// None: server (`-s`); Some: client of that server (`-c ADDR`).
    pub client: Option<Ipv4Addr>,
    /// `-p`, default 5201.
    pub port: u16,
    /// `-1`: the server handles one test and exits.
    pub one_off: bool,
    /// `-t SECS` in milliseconds (default 10 s unless `-n` is given).
    pub time_ms: Option<u64>,
    /// `-n BYTES` (K/M/G suffixes are powers of 1024).
    pub bytes: Option<u64>,
    /// `-i SECS` in milliseconds (default 1 s; 0 = no interval reports).
    pub interval_ms: u64,
    /// `-u`: UDP.
    pub udp: bool,
    /// `-b RATE` in bits per second (K/M/G suffixes are powers of 1000);
    /// default 1 Mbit/s for UDP, unlimited for TCP.
    pub bitrate: Option<u64>,
    /// `-l LEN`: bytes per write (UDP: per datagram; default 1460).
    pub length: Option<u32>,
    /// `-w SIZE`: socket buffer (the receive window), bytes.
    pub window: Option<u32>,
    /// `-B ADDR`: bind to this local address.
    pub bind: Option<Ipv4Addr>,
    /// `--cport PORT`: the client's source port.
    pub cport: Option<u16>,
    /// `-M MSS`: TCP maximum segment size (TCP_MAXSEG).
    pub mss: Option<u16>,
}
