//! A fabric of speakers joined by an in-memory byte pipe: the quickest way to
//! run a whole cluster's BGP to convergence, and what the unit tests, the
//! agreement test against real BIRD and the scale benches drive.
//!
//! The pipe is not TCP (the Linux model binds speakers to simulated sockets
//! elsewhere): it is lossless and in order, with one latency per pair of
//! nodes, and runs in simulated time on [`sim_core::sched::Scheduler`].
//!
//! Pipe rules (what the adapter guarantees the speaker): at most one
//! connection per pair of addresses; a `Connect` is refused at once
//! (`TransportClosed` at the same instant) when a connection already exists
//! or the other side does not [`Speaker::accepts`] it, and hangs (no
//! answer: the speaker's ConnectRetry timer gives up) when the link is down,
//! the other node is dead or no node owns the address; both ends see
//! `TransportConnected` one latency later; bytes arrive one latency later,
//! in order; `Close` reaches the other end one latency later. A link that is
//! down delivers nothing and says nothing.
//!
//! [`converge`] starts every node, runs to quiescence and returns the
//! [`Converged`] state: per node, the installed routes (prefix -> next hop,
//! peer), the Loc-RIB and the session states, and [`Stats`] (the simulated
//! time of the last route change, UPDATE, announcement and withdrawal
//! counts, messages and bytes). [`Fabric`] is the same machinery step by
//! step, for timelines (cut a link, kill and revive a node, reset a
//! session).
//!
//! **Quiescence**: nothing is pending but periodic timers (keepalive, hold,
//! and connect retries toward addresses no node owns) and KEEPALIVE
//! deliveries; every session between two live nodes that configure each
//! other is Established; and no graceful-restart timer is running (stale
//! routes are still to go). A cold start that cannot get there (a wrong AS,
//! a cut link) runs into the time bound, which is an error naming it, as is
//! the event bound.
//!
//! **Deferred receipts** ([`FabricOptions::defer`]): a reflector sends each
//! UPDATE to thousands of clients in one go, and each client's tables are
//! elsewhere in memory: handing the UPDATE to each in turn touches a few
//! cold cache lines per client. A client that reflects nothing and has only
//! iBGP neighbours (a Calico node behind reflectors, or a member of a full
//! mesh) changes nothing but itself on such a receipt: its Loc-RIB, its
//! installed routes and its hold timer ([`Speaker::quiet_from`] says when).
//! So the fabric queues the receipt (per node, in arrival order, with its
//! arrival time) and hands the node its queue in one go later: before the
//! node's next event of any kind, when a second of simulated time has gone
//! by (a receipt's hold timer is set at least 2.25 s ahead), when 2^20
//! receipts are queued, and before a run returns or the timeline changes
//! (kill, revive, cut, mend). Each receipt is handled at its own arrival
//! time, and nothing else reads the node in between, so the tables,
//! installs and their times, uninstall times, message counts, events and
//! quiescence times are those of handing them over at once (a test runs
//! failure timelines both ways). Only the order of outputs of different
//! nodes changes, and with it, when a hold timer is set earlier than
//! planned, its event's order among others due at the same nanosecond.
//! With `log` or `digest` (which keep every output in order), or without
//! [`FabricOptions::lazy_hold`], nothing is deferred.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

use indexmap::IndexMap;
use sim_core::net::Ipv4Net;
use sim_core::rng::RootSeed;
use sim_core::sched::{EventId, LimitError, Limits, Scheduler};
use sim_core::time::{SimDuration, SimTime};

use super::calico::{CalicoCluster, NodeSpeaker};
use super::config::SpeakerConfig;
use super::pool::{AttrPool, Fx};
use super::rib::Source;
use super::speaker::{
    Input, LocRib, Output, PeerAddr, Prepared, Speaker, State, TimerKind, Wire, prefetch,
    prefetch_all,
};

/// One node to put in a fabric: its name, configuration and the prefixes it
/// originates at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub config: SpeakerConfig,
    pub originate: Vec<Ipv4Net>,
}

/// What [`converge`] and [`Fabric::new`] take: a Calico cluster (expanded
/// as calico/node would), its expansion, or plain `(name, config,
/// originate)` triples.
pub trait IntoNodes {
    fn into_nodes(self) -> Vec<NodeSpec>;
}

impl IntoNodes for Vec<NodeSpec> {
    fn into_nodes(self) -> Vec<NodeSpec> {
        self
    }
}

impl IntoNodes for &CalicoCluster {
    fn into_nodes(self) -> Vec<NodeSpec> {
        self.expand().into_nodes()
    }
}

impl IntoNodes for Vec<NodeSpeaker> {
    fn into_nodes(self) -> Vec<NodeSpec> {
        self.into_iter()
            .map(|n| NodeSpec {
                name: n.node,
                config: n.config,
                originate: n.originate,
            })
            .collect()
    }
}

impl IntoNodes for Vec<(String, SpeakerConfig, Vec<Ipv4Net>)> {
    fn into_nodes(self) -> Vec<NodeSpec> {
        self.into_iter()
            .map(|(name, config, originate)| NodeSpec {
                name,
                config,
                originate,
            })
            .collect()
    }
}

/// How a fabric runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FabricOptions {
    /// One-way latency of every pipe (default 100 µs).
    pub latency: SimDuration,
    /// Latency of particular pairs of nodes, by name (either order).
    pub pair_latency: Vec<(String, String, SimDuration)>,
    /// The simulated-time bound: [`converge`] fails if the fabric is not
    /// quiescent by then (default 600 s).
    pub until: SimTime,
    /// The most events a run may process (default 50M).
    pub max_events: u64,
    /// Keep the speakers' log lines (`Output::Log`), rendered with the time
    /// and node name, in [`Fabric::log`]. Off by default: formatting every
    /// message costs more than handling it.
    pub log: bool,
    /// Record every node's installed routes as `Install`/`Uninstall` outputs
    /// change them, and the uninstalls with their times. Off by default:
    /// without it, [`Fabric::installed`] reads the Loc-RIB (which is what
    /// the installs track; the tests check that they agree).
    pub record_fib: bool,
    /// Keep a digest of every speaker output (time, node, output, in
    /// order): [`Fabric::digest`]. Two builds that give equal digests on
    /// the same runs behaved the same (the `bgp_digest` example prints
    /// them for varied timelines: how the speaker's optimisations were
    /// checked against the code they replaced). Off by default.
    pub digest: bool,
    /// The speakers keep a hold timer moved later to themselves
    /// ([`Speaker::set_lazy_hold`]): a message received asks the fabric
    /// for nothing, and the pending timer event, when it comes, is set
    /// again for the deadline then in force. The same expiries as a timer
    /// set again on every message, for one output per hold time instead of
    /// one per message. On by default; off, every re-arm is an output (and
    /// a new timer event).
    pub lazy_hold: bool,
    /// Defer the UPDATEs a reflector sends its clients, per client, and
    /// hand each client its share in one go later (see "Deferred
    /// receipts" in the [module docs](self)): the same routes, timers and
    /// counts, with each client's memory touched once per batch instead of
    /// once per UPDATE. On by default; off with `log` or `digest` (which
    /// keep the order of every output) or without `lazy_hold`.
    pub defer: bool,
}

impl Default for FabricOptions {
    fn default() -> Self {
        FabricOptions {
            latency: SimDuration::from_micros(100),
            pair_latency: Vec::new(),
            until: SimTime::ZERO + SimDuration::from_secs(600),
            max_events: 50_000_000,
            log: false,
            record_fib: false,
            digest: false,
            lazy_hold: true,
            defer: true,
        }
    }
}

/// Why a run stopped short.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FabricError {
    /// The scheduler's bound: [`FabricOptions::max_events`] events.
    #[error(
        "event limit reached: {limit} events processed (at simulated time {at}); \
         raise the event bound (FabricOptions::max_events; a scenario's \
         limits.max_events or --max-events)"
    )]
    EventLimit { limit: u64, at: SimTime },
    /// [`FabricOptions::until`] passed before the fabric was quiescent.
    #[error("time limit reached: not quiescent by {limit} (FabricOptions::until): {why}")]
    TimeLimit { limit: SimTime, why: String },
    /// A node name that is not in the fabric.
    #[error("no node named {0:?} in the fabric")]
    NoSuchNode(String),
}

/// Counters over a run (all nodes together).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events the scheduler processed.
    pub events: u64,
    /// BGP messages sent, of each type, and their bytes.
    pub messages: u64,
    pub bytes: u64,
    pub opens: u64,
    pub updates: u64,
    pub keepalives: u64,
    pub notifications: u64,
    /// UPDATEs that withdraw something.
    pub withdraw_updates: u64,
    /// Prefixes announced (NLRI) and withdrawn, over all UPDATEs.
    pub announced: u64,
    pub withdrawn: u64,
    /// `Install` and `Uninstall` outputs (kernel route changes).
    pub installs: u64,
    pub uninstalls: u64,
    /// The simulated time of the last route change (an install or
    /// uninstall), if there was one.
    pub last_route_change: Option<SimTime>,
}

impl Stats {
    /// Adds another message's counts (see [`count`](Self::count)), `k`
    /// times.
    fn add_times(&mut self, o: &Stats, k: u64) {
        self.messages += k * o.messages;
        self.bytes += k * o.bytes;
        self.opens += k * o.opens;
        self.updates += k * o.updates;
        self.keepalives += k * o.keepalives;
        self.notifications += k * o.notifications;
        self.withdraw_updates += k * o.withdraw_updates;
        self.announced += k * o.announced;
        self.withdrawn += k * o.withdrawn;
    }

    fn count(&mut self, msg: &[u8]) {
        self.messages += 1;
        self.bytes += msg.len() as u64;
        match msg.get(18) {
            Some(1) => self.opens += 1,
            Some(3) => self.notifications += 1,
            Some(4) => self.keepalives += 1,
            Some(2) => {
                self.updates += 1;
                let body = &msg[19.min(msg.len())..];
                let wlen = be16(body, 0);
                let withdrawn = count_prefixes(body.get(2..2 + wlen).unwrap_or(&[]));
                if withdrawn > 0 {
                    self.withdraw_updates += 1;
                }
                self.withdrawn += withdrawn;
                let alen = be16(body, 2 + wlen);
                self.announced += count_prefixes(body.get(4 + wlen + alen..).unwrap_or(&[]));
            }
            _ => {}
        }
    }
}

fn be16(b: &[u8], at: usize) -> usize {
    match b.get(at..at + 2) {
        Some(x) => u16::from_be_bytes([x[0], x[1]]) as usize,
        None => 0,
    }
}

/// The number of prefixes in an encoded NLRI (or withdrawn routes) field.
fn count_prefixes(mut b: &[u8]) -> u64 {
    let mut n = 0;
    while let Some((&len, rest)) = b.split_first() {
        let skip = (len as usize).div_ceil(8).min(rest.len());
        b = &rest[skip..];
        n += 1;
    }
    n
}

/// A route as the kernel got it from a speaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Installed {
    pub next_hop: Ipv4Addr,
    /// The neighbour the route was learned from.
    pub peer: PeerAddr,
}

/// A node of a fabric.
// Field order (repr(C)): what receiving an UPDATE reads comes first, in as few cache lines as can be.
#[repr(C)]
pub struct FabricNode {
    /// The neighbours' addresses (as numbers), sorted: the slots of
    /// `local` and `timers`.
    slots: Vec<u32>,
    /// Armed timers per neighbour and kind (see [`Armed`]).
    timers: Vec<[Option<Armed>; 5]>,
    speaker: Speaker,
    alive: bool,
    /// The local address of each neighbour's session.
    local: Vec<Ipv4Addr>,
    /// The last connection opened with each neighbour's address pair (see
    /// `Fabric::conn_state` for whether it still is).
    conn: Vec<Option<u64>>,
    /// The node that owns each neighbour's address.
    peer_node: Vec<Option<usize>>,
    pub name: String,
    pub config: SpeakerConfig,
    /// What it originates when it starts.
    pub originate: Vec<Ipv4Net>,
    /// The recorded installed routes (with [`FabricOptions::record_fib`]).
    fib: BTreeMap<Ipv4Net, Installed>,
    /// Recorded uninstalls and their times (with `record_fib`).
    uninstalls: Vec<(SimTime, Ipv4Net)>,
}

/// A timer the fabric runs for a speaker.
#[derive(Clone, Copy, Debug)]
struct Armed {
    /// Its scheduled event.
    id: EventId,
    /// Whether it counts as work.
    work: bool,
}

impl FabricNode {
    /// [`prefetch`]es the fields an arriving message reads.
    #[inline]
    fn prefetch(&self) {
        // The node's fields and its speaker's, up to the speaker's own
        // (see their field order), then the rest of what it reads.
        let p: *const u8 = (self as *const Self).cast();
        let hot = std::mem::offset_of!(FabricNode, speaker) + Speaker::HOT_BYTES;
        for off in (0..hot).step_by(64) {
            prefetch(p.wrapping_add(off));
        }
        prefetch(p.wrapping_add(hot - 1));
        self.speaker.prefetch_fields();
    }

    fn slot(&self, peer: PeerAddr) -> Option<usize> {
        self.slots.binary_search(&peer.to_bits()).ok()
    }
}

impl FabricNode {
    pub fn speaker(&self) -> &Speaker {
        &self.speaker
    }
    pub fn alive(&self) -> bool {
        self.alive
    }
    /// Uninstalls and their times (only with [`FabricOptions::record_fib`]).
    pub fn uninstalls(&self) -> &[(SimTime, Ipv4Net)] {
        &self.uninstalls
    }
}

impl fmt::Debug for FabricNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FabricNode")
            .field("name", &self.name)
            .field("alive", &self.alive)
            .field("speaker", &self.speaker)
            .finish_non_exhaustive()
    }
}

enum ConnEv {
    Connected,
    /// Messages sent one after another on the connection in one go (one
    /// event: they arrive together, and nothing else happens in between).
    Bytes(Batch),
    Closed,
}

/// One or more whole BGP messages.
enum Batch {
    One(Wire),
    Many(Vec<Wire>),
}

impl Batch {
    fn first(&self) -> &Wire {
        match self {
            Batch::One(w) => w,
            Batch::Many(v) => &v[0],
        }
    }

    fn push(&mut self, w: Wire) {
        match self {
            Batch::One(first) => {
                let first = first.clone();
                *self = Batch::Many(vec![first, w]);
            }
            Batch::Many(v) => v.push(w),
        }
    }

    fn messages(&self) -> &[Wire] {
        match self {
            Batch::One(w) => std::slice::from_ref(w),
            Batch::Many(v) => v,
        }
    }
}

/// Messages on one connection, delivered as one [`ConnEv::Bytes`].
struct Delivery {
    conn: u64,
    to: usize,
    key: u64,
    from: Ipv4Addr,
    batch: Batch,
}

impl Delivery {
    /// Its arrival event.
    fn arrive(self) -> Ev {
        Ev::Arrive {
            conn: self.conn,
            to: self.to,
            key: self.key,
            from: self.from,
            ev: ConnEv::Bytes(self.batch),
        }
    }
}

enum Ev {
    Input {
        node: usize,
        input: Input,
    },
    Timer {
        node: usize,
        peer: PeerAddr,
        kind: TimerKind,
    },
    Arrive {
        conn: u64,
        to: usize,
        /// The pair key of the connection.
        key: u64,
        /// The sender's address (the receiving speaker's peer key).
        from: Ipv4Addr,
        ev: ConnEv,
    },
    /// Messages sent at one time on several connections, one connection
    /// after another in one go (a reflector's UPDATE to its clients): the
    /// same as one `Arrive` event per connection, scheduled one after
    /// another (nothing can run between them: they are all work, so the
    /// fabric cannot be quiescent in between, and nothing was scheduled
    /// between them), delivered in that order by one event.
    Multi(Vec<Delivery>),
}

impl Ev {
    /// Whether this event is work toward convergence (anything but periodic
    /// timers and KEEPALIVE deliveries).
    fn is_work(&self) -> bool {
        match self {
            Ev::Input { .. } => true,
            // Decided when armed (see `output`).
            Ev::Timer { .. } => false,
            Ev::Arrive {
                ev: ConnEv::Bytes(b),
                ..
            } => b.first().get(18) != Some(&4),
            Ev::Arrive { .. } | Ev::Multi(_) => true,
        }
    }
}

/// Speakers joined by pipes, in simulated time; see the [module docs](self).
pub struct Fabric {
    sched: Scheduler<Ev>,
    nodes: Vec<FabricNode>,
    /// By address (as a number; hashed: only looked up).
    owner: IndexMap<u32, usize, Fx>,
    /// Whether a message's connection is found from the sender's neighbour
    /// slot (`FabricNode::conn`) rather than `conns`: unless two nodes
    /// claim one address (then a third node's slot could name another's
    /// connection).
    slot_conns: bool,
    /// Each connection's state, by id: `GONE`, `OPEN` or `CLOSING` (what
    /// `conns` says of it).
    conn_state: Vec<u8>,
    /// Open connections by address pair: (id, open). A connection one side
    /// closed stays until its close reaches the other side, so that what
    /// was sent before the close (a NOTIFICATION) arrives first, as over TCP.
    /// (Hashed: only looked up, never iterated in its order.)
    conns: IndexMap<u64, (u64, bool), Fx>,
    next_conn: u64,
    down: BTreeSet<(usize, usize)>,
    latency: SimDuration,
    pair_latency: BTreeMap<(usize, usize), SimDuration>,
    options: FabricOptions,
    seed: RootSeed,
    restarts: u32,
    log: Vec<String>,
    stats: Stats,
    digest: u64,
    /// Pending events that are work (see [`Ev::is_work`]).
    work: usize,
    /// Pending graceful-restart timers.
    gr_timers: usize,
    /// Session ends in Established, kept up to date around each input.
    established: usize,
    /// Decoded path attributes, shared by the speakers.
    pool: AttrPool,
    /// Messages sent in one go, not scheduled yet: more may follow (see
    /// [`ConnEv::Bytes`] and [`Ev::Multi`]). Their arrival time, whether
    /// they are KEEPALIVEs, and per connection.
    pending: Option<(SimTime, bool, Vec<Delivery>)>,
    /// Arrivals delivered within [`Ev::Multi`] events beyond one per event
    /// (counted in [`Stats::events`] as the events they stand for).
    extra_arrivals: u64,
    /// Scratch space for a speaker's outputs.
    outs: Vec<Output>,
    skip: Vec<bool>,
    seen: Vec<(PeerAddr, TimerKind)>,
    /// Each node's `alive` (kept here too: a reflector's message to all its
    /// clients reads it for each).
    live: Vec<bool>,
    /// Emptied `Ev::Multi` vectors, for the next ones.
    spare: Vec<Vec<Delivery>>,
    /// The last message sent and its counts.
    counted: Option<(Wire, Stats, u64)>,
    /// The node and neighbour slot of the last message sent.
    send_hint: (usize, usize),
    /// UPDATEs taken apart, by message (a reflector sends each of its
    /// UPDATEs to every client, in one event or in table dumps).
    prepared: PreparedCache,
    /// Deferred receipts (see the [module docs](self)).
    deferred: Deferred,
}

/// Receipts held back until their receiver is next looked at (see
/// "Deferred receipts" in the [module docs](self)).
#[derive(Default)]
struct Deferred {
    /// Whether receipts are deferred at all ([`FabricOptions::defer`] and
    /// `lazy_hold`, neither `log` nor `digest`).
    on: bool,
    /// Per node, in arrival order: (index in `msgs`, the sender's address).
    queues: Vec<Vec<(u32, u32)>>,
    /// The deferred UPDATEs and their arrival times (kept until every
    /// queue is empty).
    msgs: Vec<(SimTime, Prepared)>,
    /// Receipts deferred since every queue was last empty, and the arrival
    /// time of the first.
    pushed: usize,
    since: Option<SimTime>,
    /// Receipts deferred in all.
    total: u64,
    /// `MAX_PUSHED` (smaller in tests).
    max_pushed: usize,
    /// Per connection id: bit 1, its lower-address end's receipts may be
    /// deferred; bit 2, its higher-address end's (see `Fabric::requiet`).
    ends: Vec<u8>,
    /// Per node: its speaker is a quiet receiver ([`Speaker::quiet_receiver`]).
    nodes: Vec<bool>,
    /// Per node: the last `Ev::Multi` (by `epoch`) in which a delivery to it
    /// was not deferred (nor may any after it in that event be).
    kept: Vec<u64>,
    epoch: u64,
}

impl Deferred {
    /// The most receipts deferred before all are handed over (8 bytes
    /// each in a queue, plus one copy of each message): a bound on memory.
    /// Larger batches did not run faster at 5,000 clients (see
    /// docs/performance.md).
    const MAX_PUSHED: usize = 1 << 20;
    /// The longest (simulated) a receipt waits while other events run: a
    /// deferred receipt re-arms its hold timer at least 3/4 of the hold
    /// time (at least 3 s, RFC 4271 §4.2) after it arrived, which must
    /// still be ahead of the clock when it is handed over.
    const HORIZON: SimDuration = SimDuration::from_secs(1);

    /// The bit of `Deferred::ends` for the end `local` of a connection
    /// with `peer`.
    fn end_bit(local: Ipv4Addr, peer: Ipv4Addr) -> u8 {
        if local.to_bits() < peer.to_bits() {
            1
        } else {
            2
        }
    }
}

/// [`Prepared`] UPDATEs by the address of their bytes (two ways per set,
/// the last used first: a message's entry holds the message, so the
/// address is not reused while it is there).
struct PreparedCache {
    slots: Vec<Option<Prepared>>,
    /// How many slots it takes when first used (a power of two).
    size: usize,
}

impl PreparedCache {
    /// Room for about eight messages per node (each reflector holds one
    /// per prefix, and one per prefix and client group is sent).
    fn for_nodes(n: usize) -> PreparedCache {
        PreparedCache {
            slots: Vec::new(),
            size: (8 * n).next_power_of_two().clamp(1 << 8, 1 << 16),
        }
    }

    /// The message taken apart (from the cache, or now), if it is an
    /// UPDATE that can be.
    fn get<'a>(
        &'a mut self,
        w: &Wire,
        pool: &mut super::pool::AttrPool,
    ) -> Option<&'a mut Prepared> {
        if self.slots.is_empty() {
            self.slots.resize_with(self.size, || None);
        }
        let i = self.set(w);
        let slots = &mut self.slots;
        let is = |s: &Option<Prepared>| matches!(s, Some(p) if Wire::ptr_eq(p.frame(), w));
        if !is(&slots[i]) {
            if is(&slots[i + 1]) {
                slots.swap(i, i + 1);
            } else {
                // The older way goes.
                let p = Prepared::new(w, pool)?;
                slots.swap(i, i + 1);
                slots[i] = Some(p);
            }
        }
        slots[i].as_mut()
    }

    /// The first slot of the message's set.
    fn set(&self, w: &Wire) -> usize {
        // Fibonacci hashing of the address: allocations of one size lie at
        // regular strides, which a mask of the address alone maps onto a
        // few sets.
        let h = ((w.as_ptr() as usize >> 4) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> 32) as usize & (self.size - 2)
    }

    /// The message taken apart, if it is in the cache.
    fn peek(&self, w: &Wire) -> Option<&Prepared> {
        let i = self.set(w);
        self.slots
            .get(i..i + 2)?
            .iter()
            .flatten()
            .find(|p| Wire::ptr_eq(p.frame(), w))
    }

    /// [`prefetch`]es the message's cache set.
    fn prefetch(&self, w: &Wire) {
        let i = self.set(w);
        if let Some(s) = self.slots.get(i..i + 2)
            && let Ok(pair) = <&[Option<Prepared>; 2]>::try_from(s)
        {
            prefetch_all(pair);
        }
    }
}

impl fmt::Debug for Fabric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fabric")
            .field("now", &self.sched.now())
            .field("nodes", &self.nodes.len())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn pair(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

/// `Fabric::conn_state`.
const GONE: u8 = 0;
const OPEN: u8 = 1;
const CLOSING: u8 = 2;

/// A connection's key: its two addresses, the lower first, as one number.
fn key(a: Ipv4Addr, b: Ipv4Addr) -> u64 {
    let (a, b) = (a.to_bits(), b.to_bits());
    (u64::from(a.min(b)) << 32) | u64::from(a.max(b))
}

fn unkey(k: u64) -> (Ipv4Addr, Ipv4Addr) {
    (
        Ipv4Addr::from_bits((k >> 32) as u32),
        Ipv4Addr::from_bits(k as u32),
    )
}

/// The address of a connection's other end than `a`.
fn other_end(k: u64, a: Ipv4Addr) -> Ipv4Addr {
    let (lo, hi) = unkey(k);
    if a == lo { hi } else { lo }
}

impl Fabric {
    /// A fabric of these nodes; each speaker's jitter comes from the stream
    /// `bgp:<name>` of `seed`. Nothing runs until [`start_all`](Self::start_all).
    pub fn new(nodes: impl IntoNodes, seed: u64, options: FabricOptions) -> Fabric {
        let seed = RootSeed(seed);
        let mut owner: IndexMap<u32, usize, Fx> = IndexMap::default();
        let mut shared_addresses = false;
        let nodes: Vec<FabricNode> = nodes
            .into_nodes()
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                let mut own = |a: Ipv4Addr| {
                    if owner.insert(a.to_bits(), i).is_some_and(|j| j != i) {
                        shared_addresses = true;
                    }
                };
                own(n.config.address);
                for nb in &n.config.neighbors {
                    if let Some(a) = nb.local_address {
                        own(a);
                    }
                }
                let mut speaker =
                    Speaker::new(n.config.clone(), seed.stream(&format!("bgp:{}", n.name)));
                speaker.set_logging(options.log);
                speaker.set_lazy_hold(options.lazy_hold);
                let mut slots: Vec<u32> = n
                    .config
                    .neighbors
                    .iter()
                    .map(|nb| nb.address.to_bits())
                    .collect();
                slots.sort_unstable();
                slots.dedup();
                let local = slots
                    .iter()
                    .map(|&a| {
                        let a = Ipv4Addr::from_bits(a);
                        n.config
                            .neighbor(a)
                            .and_then(|nb| nb.local_address)
                            .unwrap_or(n.config.address)
                    })
                    .collect();
                FabricNode {
                    speaker,
                    name: n.name,
                    config: n.config,
                    originate: n.originate,
                    alive: true,
                    fib: BTreeMap::new(),
                    uninstalls: Vec::new(),
                    timers: vec![[None; 5]; slots.len()],
                    peer_node: Vec::new(),
                    conn: vec![None; slots.len()],
                    slots,
                    local,
                }
            })
            .collect();
        let mut pair_latency = BTreeMap::new();
        for (a, b, d) in &options.pair_latency {
            let ia = nodes.iter().position(|n| n.name == *a);
            let ib = nodes.iter().position(|n| n.name == *b);
            if let (Some(ia), Some(ib)) = (ia, ib) {
                pair_latency.insert(pair(ia, ib), *d);
            }
        }
        let mut nodes = nodes;
        for n in &mut nodes {
            n.peer_node = n.slots.iter().map(|a| owner.get(a).copied()).collect();
        }
        let n_nodes = nodes.len();
        // Every prefix a node will originate is numbered now: a speaker's
        // table takes room for all the prefixes numbered when it first
        // grows, so each is sized once (not grown a quarter at a time, with
        // copies and up to a quarter unused). The numbering's order is
        // never used where order matters.
        let mut pool = AttrPool::new();
        for n in &nodes {
            for p in &n.originate {
                pool.intern(p.network());
            }
        }
        let options_defer = options.defer && options.lazy_hold && !options.log && !options.digest;
        let sched = Scheduler::with_limits(Limits {
            max_events: options.max_events,
            max_time: SimTime::MAX,
        });
        Fabric {
            sched,
            nodes,
            owner,
            slot_conns: !shared_addresses,
            conn_state: Vec::new(),
            conns: IndexMap::default(),
            next_conn: 0,
            down: BTreeSet::new(),
            latency: options.latency,
            pair_latency,
            options,
            seed,
            restarts: 0,
            log: Vec::new(),
            stats: Stats::default(),
            digest: 0,
            work: 0,
            gr_timers: 0,
            established: 0,
            pool,
            pending: None,
            extra_arrivals: 0,
            outs: Vec::new(),
            skip: Vec::new(),
            seen: Vec::new(),
            live: vec![true; n_nodes],
            spare: Vec::new(),
            counted: None,
            send_hint: (usize::MAX, 0),
            prepared: PreparedCache::for_nodes(n_nodes),
            deferred: Deferred {
                on: options_defer,
                queues: vec![Vec::new(); n_nodes],
                nodes: vec![false; n_nodes],
                kept: vec![0; n_nodes],
                max_pushed: Deferred::MAX_PUSHED,
                ..Deferred::default()
            },
        }
    }

    /// The node's index.
    pub fn index(&self, name: &str) -> Result<usize, FabricError> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| FabricError::NoSuchNode(name.to_string()))
    }

    /// The node that owns an address (its speaker's address, or a
    /// neighbour's local address).
    pub fn owner_of(&self, addr: Ipv4Addr) -> Option<usize> {
        self.owner.get(&addr.to_bits()).copied()
    }

    pub fn nodes(&self) -> &[FabricNode] {
        &self.nodes
    }

    /// The node named so; panics if there is none (see [`index`](Self::index)).
    pub fn node(&self, name: &str) -> &FabricNode {
        match self.index(name) {
            Ok(i) => &self.nodes[i],
            Err(e) => panic!("{e}"),
        }
    }

    pub fn speaker(&self, name: &str) -> &Speaker {
        &self.node(name).speaker
    }

    pub fn now(&self) -> SimTime {
        self.sched.now()
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        if let Some((_, c, k)) = &self.counted {
            s.add_times(c, *k);
        }
        Stats {
            events: self.sched.events_processed() + self.extra_arrivals,
            ..s
        }
    }

    /// Every node's speaker state as text, for comparing runs: per node,
    /// its Loc-RIB, and per neighbour the session state, Adj-RIB-In and
    /// Adj-RIB-Out.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            s += &format!("{} {:?}\n", n.name, n.speaker.loc_rib());
            for nb in &n.config.neighbors {
                s += &format!(
                    " {} {:?} {:?} {:?}\n",
                    nb.address,
                    n.speaker.state(nb.address),
                    n.speaker.adj_rib_in(nb.address),
                    n.speaker.adj_rib_out(nb.address)
                );
            }
        }
        s
    }

    /// How many UPDATE receipts were deferred (see [`FabricOptions::defer`]).
    pub fn deferred_receipts(&self) -> u64 {
        self.deferred.total
    }

    /// The digest of every output so far (with [`FabricOptions::digest`]).
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The speakers' log lines (with [`FabricOptions::log`]).
    pub fn log(&self) -> &[String] {
        &self.log
    }

    /// The node's installed routes: recorded (with
    /// [`FabricOptions::record_fib`]) or read from its Loc-RIB.
    pub fn installed(&self, node: usize) -> BTreeMap<Ipv4Net, Installed> {
        let n = &self.nodes[node];
        if self.options.record_fib {
            return n.fib.clone();
        }
        if !n.alive {
            return BTreeMap::new();
        }
        installed_from(n.speaker.loc_rib())
    }

    /// The recorded installed routes of a node (with `record_fib`).
    pub fn fib(&self, name: &str) -> &BTreeMap<Ipv4Net, Installed> {
        &self.node(name).fib
    }

    fn schedule(&mut self, at: SimTime, ev: Ev) -> EventId {
        self.flush();
        if ev.is_work() {
            self.work += 1;
        }
        self.sched.schedule_at(at, ev)
    }

    /// Schedules the messages held back in `pending`.
    fn flush(&mut self) {
        if let Some((at, _, mut v)) = self.pending.take() {
            // Work unless KEEPALIVEs (which are never sent to several
            // connections in one event: see `send`).
            let ev = if v.len() == 1 {
                let ev = v.pop().expect("one").arrive();
                self.put_spare(v);
                ev
            } else {
                Ev::Multi(v)
            };
            if ev.is_work() {
                self.work += 1;
            }
            self.sched.schedule_at(at, ev);
        }
    }

    /// Keeps an emptied delivery vector for reuse (a few: several
    /// reflectors' messages to all their clients can be in flight at once,
    /// each vector as long as the clients are many).
    fn put_spare(&mut self, v: Vec<Delivery>) {
        if v.capacity() > 0 && self.spare.len() < 8 {
            self.spare.push(v);
        }
    }

    /// Sends a message on a connection: with the previous ones if they
    /// were the last thing scheduled, at the same time, and of the same
    /// kind (work or a KEEPALIVE: quiescence is checked between events,
    /// and must come at the same points); KEEPALIVEs only with others on
    /// the same connection.
    fn send(&mut self, at: SimTime, conn: u64, to: usize, key: u64, from: Ipv4Addr, w: Wire) {
        let keepalive = w.get(18) == Some(&4);
        let d = Delivery {
            conn,
            to,
            key,
            from,
            batch: Batch::One(w),
        };
        if let Some((t, k, v)) = &mut self.pending
            && *t == at
            && *k == keepalive
        {
            let last = v.last_mut().expect("not empty");
            if last.conn == conn && last.to == to {
                let Batch::One(w) = d.batch else {
                    unreachable!("one message")
                };
                last.batch.push(w);
                return;
            }
            if !keepalive {
                v.push(d);
                return;
            }
        }
        self.flush();
        let mut v = self.spare.pop().unwrap_or_default();
        v.push(d);
        self.pending = Some((at, keepalive, v));
    }

    /// Hands the node an input now.
    pub fn input(&mut self, node: usize, input: Input) {
        let now = self.now();
        self.schedule(now, Ev::Input { node, input });
    }

    pub fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i);
        }
    }

    /// Starts the node's speaker and its originations.
    pub fn start(&mut self, i: usize) {
        self.input(i, Input::Start);
        for p in self.nodes[i].originate.clone() {
            self.input(i, Input::Originate(p));
        }
    }

    /// Runs every event up to `until`, then moves the clock there.
    pub fn run_until(&mut self, until: SimTime) -> Result<(), FabricError> {
        let run = self.run_events_until(until);
        self.hand_over_all();
        run?;
        // Nothing is left up to `until`: this only moves the clock there.
        self.sched
            .run_until(until, |_, _, _, _| {
                unreachable!("every event up to `until` ran")
            })
            .map_err(limit)?;
        Ok(())
    }

    fn run_events_until(&mut self, until: SimTime) -> Result<(), FabricError> {
        while let Some(t) = self.sched.peek_time() {
            if t > until {
                break;
            }
            self.step()?;
        }
        Ok(())
    }

    fn step(&mut self) -> Result<(), FabricError> {
        self.flush();
        if let Some(since) = self.deferred.since
            && (self.deferred.pushed >= self.deferred.max_pushed
                || self
                    .sched
                    .peek_time()
                    .is_some_and(|t| t > since + Deferred::HORIZON))
        {
            // Before the clock moves too far (or memory grows too much).
            self.hand_over_all();
        }
        let Some((now, _, ev)) = self.sched.step().map_err(limit)? else {
            return Ok(());
        };
        match ev {
            // A timer's work flag is decided when it is armed.
            Ev::Timer { node, peer, kind } => {
                if let Some(Armed { work: true, .. }) =
                    self.timer_slot(node, peer, kind).and_then(|t| *t)
                {
                    self.work -= 1;
                }
            }
            ref e if e.is_work() => self.work -= 1,
            _ => {}
        }
        self.dispatch(now, ev);
        Ok(())
    }

    /// Session ends that must be Established for quiescence: both nodes
    /// alive and configuring each other.
    fn expected_established(&self) -> usize {
        let mut n = 0;
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.alive {
                continue;
            }
            for nb in &node.config.neighbors {
                let Some(&j) = self.owner.get(&nb.address.to_bits()) else {
                    continue;
                };
                let local = nb.local_address.unwrap_or(node.config.address);
                if j != i && self.link_up(i, j) && self.nodes[j].config.neighbor(local).is_some() {
                    n += 1;
                }
            }
        }
        n
    }

    fn count_established(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.alive)
            .map(|n| {
                n.config
                    .neighbors
                    .iter()
                    .filter(|nb| n.speaker.state(nb.address) == Some(State::Established))
                    .count()
            })
            .sum()
    }

    fn quiet(&self, expected: usize) -> bool {
        self.work == 0 && self.gr_timers == 0 && self.established == expected
    }

    /// Runs until the fabric is quiescent (see the [module docs](self)) and
    /// returns the time it became so, or fails at `until` or the event bound.
    pub fn run_to_quiescence(&mut self, until: SimTime) -> Result<SimTime, FabricError> {
        let run = self.run_events_to_quiescence(until);
        self.hand_over_all();
        run
    }

    fn run_events_to_quiescence(&mut self, until: SimTime) -> Result<SimTime, FabricError> {
        let expected = self.expected_established();
        self.established = self.count_established();
        loop {
            if self.quiet(expected) {
                return Ok(self.now());
            }
            match self.sched.peek_time() {
                Some(t) if t <= until => self.step()?,
                _ => {
                    let why = format!(
                        "{} of {expected} session ends established, {} events of work \
                         pending, {} graceful-restart timers running",
                        self.established, self.work, self.gr_timers
                    );
                    return Err(FabricError::TimeLimit { limit: until, why });
                }
            }
        }
    }

    fn local_addr(&self, node: usize, peer: PeerAddr) -> Ipv4Addr {
        let n = &self.nodes[node];
        match n.slot(peer) {
            Some(i) => n.local[i],
            None => n.config.address,
        }
    }

    fn timer_slot(
        &mut self,
        node: usize,
        peer: PeerAddr,
        kind: TimerKind,
    ) -> Option<&mut Option<Armed>> {
        let n = &mut self.nodes[node];
        let i = n.slot(peer)?;
        Some(&mut n.timers[i][kind.index()])
    }

    fn link_up(&self, a: usize, b: usize) -> bool {
        self.live[a] && self.live[b] && (self.down.is_empty() || !self.down.contains(&pair(a, b)))
    }

    fn latency(&self, a: usize, b: usize) -> SimDuration {
        if self.pair_latency.is_empty() {
            return self.latency;
        }
        self.pair_latency
            .get(&pair(a, b))
            .copied()
            .unwrap_or(self.latency)
    }

    fn dispatch(&mut self, now: SimTime, ev: Ev) {
        // What arrived for the node before this comes first.
        match &ev {
            Ev::Input { node, .. } | Ev::Timer { node, .. } | Ev::Arrive { to: node, .. } => {
                self.hand_over(*node);
            }
            Ev::Multi(_) => {}
        }
        let mut batch = None;
        let (node, input) = match ev {
            Ev::Multi(v) => return self.multi(now, v),
            Ev::Input { node, input } => (node, input),
            Ev::Timer { node, peer, kind } => {
                if let Some(t) = self.timer_slot(node, peer, kind) {
                    *t = None;
                }
                if kind == TimerKind::GracefulRestart {
                    self.gr_timers -= 1;
                }
                (node, Input::Timer(peer, kind))
            }
            Ev::Arrive {
                conn,
                to,
                key,
                from,
                ev,
            } => {
                let input = match ev {
                    ConnEv::Bytes(b) => {
                        // `conns` has this connection (open or closing).
                        if self.conn_state[conn as usize] == GONE {
                            return;
                        }
                        batch = Some(b);
                        Input::TransportBytes(from, Vec::new())
                    }
                    ev => match (ev, self.conns.get(&key).copied()) {
                        (ConnEv::Connected, Some((id, true))) if id == conn => {
                            Input::TransportConnected(from)
                        }
                        (ConnEv::Closed, Some((id, _))) if id == conn => {
                            self.conn_remove(key);
                            Input::TransportClosed(from)
                        }
                        // Reset by a node that died.
                        (ConnEv::Closed, None) => Input::TransportClosed(from),
                        _ => return,
                    },
                };
                (to, input)
            }
        };
        if !self.nodes[node].alive {
            return;
        }
        let peer = match &input {
            Input::TransportConnected(p)
            | Input::TransportBytes(p, _)
            | Input::TransportClosed(p)
            | Input::Timer(p, _)
            | Input::AdminReset(p) => Some(*p),
            _ => None,
        };
        let sp = &mut self.nodes[node].speaker;
        // Only the input's peer changes state: the speaker's count says.
        let was = sp.established_sessions();
        let mut outs = std::mem::take(&mut self.outs);
        match batch {
            Some(b) => {
                let from = peer.expect("a connection's peer");
                let ms = b.messages();
                for (k, m) in ms.iter().enumerate() {
                    // A table dump: the prefix slots a few messages on
                    // (each its own, cold) are fetched ahead.
                    if let Some(w) = ms.get(k + 4) {
                        self.prepared.prefetch(w);
                    }
                    if let Some(p) = ms.get(k + 2).and_then(|w| self.prepared.peek(w)) {
                        p.prefetch();
                        if let Some(id) = p.first_id() {
                            sp.prefetch_slot(id, &self.pool);
                        }
                    }
                    // (The cache knows a message by its address: its bytes,
                    // cold in a dump, are read only the first time.)
                    if !self.options.log
                        && let Some(p) = self.prepared.get(m, &mut self.pool)
                        && sp.receive_prepared(now, from, p, &mut self.pool, &mut outs)
                    {
                        continue;
                    }
                    self.pool.set_message(Some(m.clone()));
                    sp.receive_with(now, from, m, &mut self.pool, &mut outs);
                    self.pool.set_message(None);
                }
            }
            None => sp.handle_with(now, input, &mut self.pool, &mut outs),
        }
        self.finish(now, node, was, outs);
        self.requiet(node, peer);
    }

    /// After a node handled an input for `peer` (or for no peer): whether
    /// it may now have UPDATEs deferred, as a whole and from `peer`.
    fn requiet(&mut self, x: usize, peer: Option<PeerAddr>) {
        if !self.deferred.on {
            return;
        }
        let n = &self.nodes[x];
        let quiet = n.alive && n.speaker.quiet_receiver(&self.pool);
        self.deferred.nodes[x] = quiet;
        let Some(p) = peer else { return };
        let Some(i) = n.slot(p) else { return };
        let Some(id) = n.conn[i] else { return };
        let bit = Deferred::end_bit(n.local[i], p);
        let e = &mut self.deferred.ends[id as usize];
        if quiet && n.speaker.quiet_from(p, &self.pool) {
            *e |= bit;
        } else {
            *e &= !bit;
        }
    }

    /// Hands a node the UPDATEs deferred for it, in the order they came,
    /// each at its arrival time.
    fn hand_over(&mut self, x: usize) {
        if self.deferred.queues[x].is_empty() {
            return;
        }
        let mut q = std::mem::take(&mut self.deferred.queues[x]);
        for k in 0..q.len() {
            // The messages (shared, but not all in cache) a few receipts
            // on are fetched ahead, then what they will touch: their parts
            // and the receiver's table slots (each cold).
            if let Some(&(m, _)) = q.get(k + 8) {
                prefetch_all(&self.deferred.msgs[m as usize]);
            }
            if let Some(&(m, _)) = q.get(k + 4) {
                let p = &self.deferred.msgs[m as usize].1;
                p.prefetch();
                if let Some(id) = p.first_id() {
                    self.nodes[x].speaker.prefetch_slot(id, &self.pool);
                }
            }
            let (m, from) = q[k];
            let from = Ipv4Addr::from_bits(from);
            let (t, prep) = &mut self.deferred.msgs[m as usize];
            let t = *t;
            let sp = &mut self.nodes[x].speaker;
            let was = sp.established_sessions();
            let mut outs = std::mem::take(&mut self.outs);
            if !sp.receive_prepared(t, from, prep, &mut self.pool, &mut outs) {
                // (Never: it was quiet when it came, and nothing for the
                // node ran since.) The general way has the same effect.
                debug_assert!(false, "a deferred UPDATE was not taken");
                let w = prep.frame().clone();
                self.pool.set_message(Some(w.clone()));
                sp.receive_with(t, from, &w, &mut self.pool, &mut outs);
                self.pool.set_message(None);
            }
            debug_assert!(
                outs.iter().all(|o| matches!(
                    o,
                    Output::SetTimer(_, TimerKind::Hold, _)
                        | Output::Install { .. }
                        | Output::Uninstall { .. }
                )),
                "a deferred UPDATE did more than change its receiver: {outs:?}"
            );
            self.finish(t, x, was, outs);
        }
        q.clear();
        self.deferred.queues[x] = q;
    }

    /// Hands every node its deferred UPDATEs.
    fn hand_over_all(&mut self) {
        if self.deferred.since.is_none() {
            return;
        }
        for x in 0..self.nodes.len() {
            self.hand_over(x);
        }
        self.deferred.msgs.clear();
        self.deferred.pushed = 0;
        self.deferred.since = None;
    }

    /// An [`Ev::Multi`]: each delivery in turn, as its own `Arrive` event
    /// would be. A single UPDATE sent to all (a reflector's to its
    /// clients) is taken apart once ([`Prepared`]) and handed to each
    /// receiver so.
    fn multi(&mut self, now: SimTime, mut v: Vec<Delivery>) {
        self.extra_arrivals += v.len() as u64 - 1;
        let first = v[0].batch.first().clone();
        let prepare = !self.options.log && first.get(18) == Some(&2);
        let slot = if prepare {
            self.prepared
                .get(&first, &mut self.pool)
                .and_then(|p| p.first_id())
        } else {
            None
        };
        if prepare && self.deferred.on {
            v = self.defer(now, v);
        }
        self.deliver(now, prepare, slot, &mut v);
        v.clear();
        self.put_spare(v);
    }

    /// Deliveries of an [`Ev::Multi`] in turn.
    fn deliver(&mut self, now: SimTime, prepare: bool, slot: Option<usize>, v: &mut [Delivery]) {
        // The receivers' memory is fetched a few receivers ahead (each is
        // cold by its turn): their nodes, then what the message will touch
        // in them.
        const NODE_AHEAD: usize = 8;
        const DEEP_AHEAD: usize = 4;
        for d in v.iter().take(NODE_AHEAD) {
            self.nodes[d.to].prefetch();
        }
        for k in 0..v.len() {
            if let Some(d) = v.get(k + NODE_AHEAD) {
                self.nodes[d.to].prefetch();
            }
            if let Some(d) = v.get(k + DEEP_AHEAD) {
                let n = &self.nodes[d.to];
                prefetch(n.slots.as_ptr());
                // The hold timers (what a received UPDATE sets again).
                for t in n.timers.iter().take(4) {
                    prefetch(&t[TimerKind::Hold.index()]);
                }
                n.speaker.prefetch_for(slot, &self.pool);
            }
            self.hand_over(v[k].to);
            let d = &v[k];
            if prepare
                && let Batch::One(w) = &d.batch
                && let Some(p) = self.prepared.get(w, &mut self.pool)
            {
                if self.conn_state[d.conn as usize] == GONE || !self.live[d.to] {
                    continue;
                }
                let (to, from) = (d.to, d.from);
                let sp = &mut self.nodes[to].speaker;
                let was = sp.established_sessions();
                let mut outs = std::mem::take(&mut self.outs);
                if sp.receive_prepared(now, from, p, &mut self.pool, &mut outs) {
                    self.finish(now, to, was, outs);
                    continue;
                }
                self.outs = outs;
            }
            let d = std::mem::replace(
                &mut v[k],
                Delivery {
                    conn: 0,
                    to: 0,
                    key: 0,
                    from: Ipv4Addr::UNSPECIFIED,
                    batch: Batch::Many(Vec::new()),
                },
            );
            self.dispatch(now, d.arrive());
        }
    }

    /// Takes out of `v` the deliveries that can be deferred: of a
    /// [`Prepared::quiet`] UPDATE to a live quiet receiver
    /// ([`Speaker::quiet_from`] its sender, as `Deferred::ends` and
    /// `Deferred::nodes` keep) on an open connection, after no delivery to
    /// that node that is not. Returns the others, in order, but for those
    /// handled on the way: the first quiet receiver of an UPDATE whose
    /// attributes the pool has not seen takes it at once, the general way
    /// (after the others before it), and the pool learns them.
    fn defer(&mut self, now: SimTime, mut v: Vec<Delivery>) -> Vec<Delivery> {
        self.deferred.epoch += 1;
        let epoch = self.deferred.epoch;
        let mut kept = self.spare.pop().unwrap_or_default();
        // The last message looked at, and its number in `msgs` if it can be
        // deferred.
        let mut last: Option<(Wire, Option<u32>)> = None;
        for x in v.drain(..) {
            let d = &self.deferred;
            let eligible = self.conn_state[x.conn as usize] != GONE
                && self.live[x.to]
                && d.nodes[x.to]
                && d.kept[x.to] != epoch
                && d.ends[x.conn as usize] & Deferred::end_bit(other_end(x.key, x.from), x.from)
                    != 0;
            let w = match &x.batch {
                Batch::One(w) if eligible => w,
                _ => {
                    self.deferred.kept[x.to] = epoch;
                    kept.push(x);
                    continue;
                }
            };
            let m = match &last {
                Some((lw, m)) if Wire::ptr_eq(lw, w) => *m,
                _ => {
                    let w = w.clone();
                    let m = self.quiet_message(now, &w);
                    if m.is_none() && self.prepared.get(&w, &mut self.pool).is_some() {
                        // This receiver teaches the pool the attributes,
                        // after what came before it.
                        kept.push(x);
                        self.deliver(now, true, None, &mut kept);
                        kept.clear();
                        last = Some((w.clone(), self.quiet_message(now, &w)));
                        continue;
                    }
                    last = Some((w, m));
                    m
                }
            };
            let d = &mut self.deferred;
            match m {
                Some(m) => {
                    d.queues[x.to].push((m, x.from.to_bits()));
                    d.pushed += 1;
                    d.total += 1;
                    d.since.get_or_insert(now);
                }
                None => {
                    d.kept[x.to] = epoch;
                    kept.push(x);
                }
            }
        }
        self.put_spare(v);
        kept
    }

    /// The number in `Deferred::msgs` of a [`Prepared::quiet`] UPDATE
    /// (taken apart and kept now), if it is one.
    fn quiet_message(&mut self, now: SimTime, w: &Wire) -> Option<u32> {
        let p = self.prepared.get(w, &mut self.pool)?;
        if !p.quiet(&mut self.pool) {
            return None;
        }
        let d = &mut self.deferred;
        d.msgs.push((now, p.clone()));
        Some((d.msgs.len() - 1) as u32)
    }

    /// After a node's speaker handled an input (its established sessions
    /// were `was` before): its outputs, in order.
    fn finish(&mut self, now: SimTime, node: usize, was: usize, mut outs: Vec<Output>) {
        let is = self.nodes[node].speaker.established_sessions();
        if self.options.digest {
            for o in &outs {
                use std::hash::{Hash, Hasher};
                // SipHash with fixed keys: the same in every run of one build.
                let mut h = std::hash::DefaultHasher::new();
                format!("{now} {node} {o:?}").hash(&mut h);
                self.digest = self.digest.rotate_left(7) ^ h.finish();
            }
        }
        self.established = self.established + is - was;
        // A timer set again (or cancelled) later in the same outputs is
        // never set: only the last setting is scheduled, where it was.
        if outs.len() <= 4 {
            // A receipt's few outputs (a hold timer, an install): looked
            // over in place.
            for i in 0..outs.len() {
                let again = match &outs[i] {
                    Output::SetTimer(p, k, _) => outs[i + 1..].iter().any(|o| {
                        matches!(o, Output::SetTimer(q, l, _) | Output::CancelTimer(q, l)
                            if q == p && l == k)
                    }),
                    _ => false,
                };
                if !again {
                    let o = std::mem::replace(&mut outs[i], Output::Listen);
                    self.output(now, node, o);
                }
            }
        } else {
            let mut skip = std::mem::take(&mut self.skip);
            skip.clear();
            skip.resize(outs.len(), false);
            let mut seen = std::mem::take(&mut self.seen);
            seen.clear();
            for (i, o) in outs.iter().enumerate().rev() {
                let (Output::SetTimer(p, k, _) | Output::CancelTimer(p, k)) = o else {
                    continue;
                };
                if seen.contains(&(*p, *k)) {
                    skip[i] = matches!(o, Output::SetTimer(..));
                } else {
                    seen.push((*p, *k));
                }
            }
            for i in 0..outs.len() {
                // A reflector's table dump sends messages built long ago
                // (cold by now): their bytes are fetched a few sends ahead.
                if let Some(Output::Send(_, w)) = outs.get(i + 8) {
                    prefetch(w.as_ptr());
                    prefetch(w.as_ptr().wrapping_add(63));
                }
                let o = std::mem::replace(&mut outs[i], Output::Listen);
                if !skip[i] {
                    self.output(now, node, o);
                }
            }
            self.skip = skip;
            self.seen = seen;
        }
        outs.clear();
        self.flush();
        self.outs = outs;
    }

    /// One output of an input node `x` handled at `at` (now, or when a
    /// deferred UPDATE arrived: then only its route changes and hold timer).
    /// The two that come by the million (a reflector's sends, a receipt's
    /// install) go to small functions; the rest to [`other_output`].
    ///
    /// [`other_output`]: Self::other_output
    #[inline(always)]
    fn output(&mut self, at: SimTime, x: usize, o: Output) {
        match o {
            Output::Send(peer, bytes) => self.output_send(x, peer, bytes),
            Output::Install {
                prefix,
                next_hop,
                peer,
                ..
            } => self.install(at, x, prefix, Installed { next_hop, peer }),
            o => self.other_output(at, x, o),
        }
    }

    /// A route installed on node `x` at `at`.
    #[inline]
    fn install(&mut self, at: SimTime, x: usize, prefix: Ipv4Net, route: Installed) {
        self.stats.installs += 1;
        self.stats.last_route_change = self.stats.last_route_change.max(Some(at));
        if self.options.record_fib {
            self.nodes[x].fib.insert(prefix, route);
        }
    }

    /// [`output`](Self::output) of the rest.
    #[inline(never)]
    fn other_output(&mut self, at: SimTime, x: usize, o: Output) {
        let now = self.now();
        match o {
            Output::Listen => {}
            Output::Connect(peer) => {
                let local = self.local_addr(x, peer);
                let k = key(local, peer);
                let Some(&y) = self.owner.get(&peer.to_bits()) else {
                    return; // nobody there: the SYN goes unanswered
                };
                if !self.link_up(x, y) {
                    return;
                }
                if self.conns.contains_key(&k) || !self.nodes[y].speaker.accepts(local) {
                    self.schedule(
                        now,
                        Ev::Input {
                            node: x,
                            input: Input::TransportClosed(peer),
                        },
                    );
                    return;
                }
                let id = self.next_conn;
                self.next_conn += 1;
                self.conns.insert(k, (id, true));
                debug_assert_eq!(self.conn_state.len() as u64, id);
                self.conn_state.push(OPEN);
                self.deferred.ends.push(0);
                // The slots whose address pair this is: the connection to
                // send on from now on.
                for (n, a, b) in [(x, peer, local), (y, local, peer)] {
                    let node = &mut self.nodes[n];
                    if let Some(i) = node.slot(a)
                        && node.local[i] == b
                    {
                        node.conn[i] = Some(id);
                    }
                }
                let at = now + self.latency(x, y);
                for (to, from) in [(y, local), (x, peer)] {
                    self.schedule(
                        at,
                        Ev::Arrive {
                            conn: id,
                            to,
                            key: k,
                            from,
                            ev: ConnEv::Connected,
                        },
                    );
                }
            }
            // (Not sent here by `output`.)
            o @ (Output::Send(..) | Output::Install { .. }) => self.output(at, x, o),
            Output::Close(peer) => {
                let local = self.local_addr(x, peer);
                let k = key(local, peer);
                let Some(&(id, true)) = self.conns.get(&k) else {
                    return;
                };
                let y = self.owner[&peer.to_bits()];
                if !self.link_up(x, y) {
                    // Nobody will hear of it.
                    self.conn_remove(k);
                } else {
                    self.conns.insert(k, (id, false));
                    self.conn_state[id as usize] = CLOSING;
                    let at = now + self.latency(x, y);
                    self.schedule(
                        at,
                        Ev::Arrive {
                            conn: id,
                            to: y,
                            key: k,
                            from: local,
                            ev: ConnEv::Closed,
                        },
                    );
                }
            }
            Output::SetTimer(peer, kind, at) => {
                // (A hold timer moved later stays in a lazy speaker: see
                // `FabricOptions::lazy_hold`.)
                self.cancel_timer(x, peer, kind);
                // Keepalive and hold timers are periodic; so is a connect
                // retry toward an address no node owns, a dead node or
                // across a cut pipe. The rest is work.
                let work = match kind {
                    TimerKind::Keepalive | TimerKind::Hold => false,
                    TimerKind::ConnectRetry => self
                        .owner
                        .get(&peer.to_bits())
                        .is_some_and(|&y| self.link_up(x, y)),
                    _ => true,
                };
                self.flush();
                if work {
                    self.work += 1;
                }
                let id = self.sched.schedule_at(
                    at,
                    Ev::Timer {
                        node: x,
                        peer,
                        kind,
                    },
                );
                if kind == TimerKind::GracefulRestart {
                    self.gr_timers += 1;
                }
                if let Some(t) = self.timer_slot(x, peer, kind) {
                    *t = Some(Armed { id, work });
                }
            }
            Output::CancelTimer(peer, kind) => self.cancel_timer(x, peer, kind),
            Output::Uninstall { prefix } => {
                self.stats.uninstalls += 1;
                self.stats.last_route_change = self.stats.last_route_change.max(Some(at));
                if self.options.record_fib {
                    self.nodes[x].fib.remove(&prefix);
                    self.nodes[x].uninstalls.push((at, prefix));
                }
            }
            Output::Log(l) => {
                if self.options.log {
                    let line = format!("{} {}: {l}", at.fixed(), self.nodes[x].name);
                    self.log.push(line);
                }
            }
        }
    }

    /// An `Output::Send` of node `x` (a reflector's thousands in a row:
    /// kept out of the large `other_output`).
    #[inline(never)]
    fn output_send(&mut self, x: usize, peer: PeerAddr, bytes: Wire) {
        let now = self.now();
        // A message sent to several peers in a row is counted once,
        // and added as many times when another comes (or the
        // stats are read).
        match &mut self.counted {
            Some((w, _, k)) if Wire::ptr_eq(w, &bytes) => *k += 1,
            _ => {
                let mut c = Stats::default();
                c.count(&bytes);
                if let Some((_, c, k)) = self.counted.replace((bytes.clone(), c, 1)) {
                    self.stats.add_times(&c, k);
                }
            }
        }
        let n = &self.nodes[x];
        // A speaker sends to its peers in address order (its
        // slots' order): the slot after the last one is tried first.
        let (hx, hs) = self.send_hint;
        let slot = if hx == x && n.slots.get(hs + 1) == Some(&peer.to_bits()) {
            Some(hs + 1)
        } else if hx == x && n.slots.get(hs) == Some(&peer.to_bits()) {
            // A table dump: many messages to one peer.
            Some(hs)
        } else {
            n.slot(peer)
        };
        if let Some(i) = slot {
            self.send_hint = (x, i);
        }
        // The open connection with the peer, and the peer's node.
        let (local, open) = match slot {
            Some(i) if self.slot_conns => (
                n.local[i],
                n.conn[i]
                    .filter(|&id| self.conn_state[id as usize] == OPEN)
                    .zip(n.peer_node[i]),
            ),
            _ => {
                let local = self.local_addr(x, peer);
                let open = match (self.conns.get(&key(local, peer)), self.owner_of(peer)) {
                    (Some(&(id, true)), Some(y)) => Some((id, y)),
                    _ => None,
                };
                (local, open)
            }
        };
        if let Some((id, y)) = open
            && self.link_up(x, y)
        {
            let at = now + self.latency(x, y);
            self.send(at, id, y, key(local, peer), local, bytes);
        }
    }

    /// Forgets a connection (closed, reset or dropped).
    fn conn_remove(&mut self, k: u64) {
        if let Some((id, _)) = self.conns.swap_remove(&k) {
            self.conn_state[id as usize] = GONE;
        }
    }

    fn cancel_timer(&mut self, x: usize, peer: PeerAddr, kind: TimerKind) {
        if let Some(Armed { id: old, work, .. }) =
            self.timer_slot(x, peer, kind).and_then(|t| t.take())
        {
            self.sched.cancel(old);
            if work {
                self.work -= 1;
            }
            if kind == TimerKind::GracefulRestart {
                self.gr_timers -= 1;
            }
        }
    }

    /// The pipe between two nodes stops delivering (and stops saying so).
    pub fn cut(&mut self, a: &str, b: &str) -> Result<(), FabricError> {
        self.hand_over_all();
        let (a, b) = (self.index(a)?, self.index(b)?);
        self.down.insert(pair(a, b));
        Ok(())
    }

    pub fn mend(&mut self, a: &str, b: &str) -> Result<(), FabricError> {
        self.hand_over_all();
        let (a, b) = (self.index(a)?, self.index(b)?);
        self.down.remove(&pair(a, b));
        Ok(())
    }

    /// The node dies: it answers nothing more. With `reset`, its peers see
    /// its connections close one latency later (the kernel survives and
    /// resets them: a crashed or restarted BIRD); without, they hear
    /// nothing (power loss).
    pub fn kill(&mut self, name: &str, reset: bool) -> Result<(), FabricError> {
        self.hand_over_all();
        let i = self.index(name)?;
        let now = self.now();
        let mut mine: Vec<(u64, (u64, bool))> = self
            .conns
            .iter()
            .filter(|(k, _)| {
                let (a, b) = unkey(**k);
                self.owner_of(a) == Some(i) || self.owner_of(b) == Some(i)
            })
            .map(|(k, v)| (*k, *v))
            .collect();
        // In address order (the order the resets are scheduled in).
        mine.sort_unstable_by_key(|(k, _)| *k);
        for (k, (id, _)) in mine {
            self.conn_remove(k);
            if !reset {
                continue;
            }
            let (a, b) = unkey(k);
            let (me, other) = if self.owner_of(a) == Some(i) {
                (a, b)
            } else {
                (b, a)
            };
            let y = self.owner[&other.to_bits()];
            if !self.down.contains(&pair(i, y)) {
                let at = now + self.latency(i, y);
                self.schedule(
                    at,
                    Ev::Arrive {
                        conn: id,
                        to: y,
                        key: k,
                        from: me,
                        ev: ConnEv::Closed,
                    },
                );
            }
        }
        for s in 0..self.nodes[i].slots.len() {
            let peer = Ipv4Addr::from_bits(self.nodes[i].slots[s]);
            for kind in TimerKind::ALL {
                self.cancel_timer(i, peer, kind);
            }
        }
        let n = &mut self.nodes[i];
        self.established -= n
            .config
            .neighbors
            .iter()
            .filter(|nb| n.speaker.state(nb.address) == Some(State::Established))
            .count();
        n.alive = false;
        n.fib.clear();
        self.live[i] = false;
        self.deferred.nodes[i] = false;
        Ok(())
    }

    /// The node comes back with a fresh speaker (restarting with its
    /// forwarding state if `recovering`: BIRD's `-R`), and starts; its
    /// jitter comes from the stream `bgp:<name>:restart<k>`.
    pub fn revive(&mut self, name: &str, recovering: bool) -> Result<(), FabricError> {
        self.hand_over_all();
        let i = self.index(name)?;
        self.restarts += 1;
        let rng = self
            .seed
            .stream(&format!("bgp:{name}:restart{}", self.restarts));
        let cfg = self.nodes[i].config.clone();
        let mut sp = if recovering {
            Speaker::restarting(cfg, rng)
        } else {
            Speaker::new(cfg, rng)
        };
        sp.set_logging(self.options.log);
        sp.set_lazy_hold(self.options.lazy_hold);
        self.nodes[i].speaker = sp;
        self.nodes[i].alive = true;
        self.live[i] = true;
        self.start(i);
        Ok(())
    }

    /// Whether every live node's every session is Established.
    pub fn all_established(&self) -> bool {
        self.nodes.iter().filter(|n| n.alive).all(|n| {
            n.config
                .neighbors
                .iter()
                .all(|nb| n.speaker.state(nb.address) == Some(State::Established))
        })
    }
}

fn limit(e: LimitError) -> FabricError {
    match e {
        LimitError::EventLimit { limit, at } => FabricError::EventLimit { limit, at },
        LimitError::TimeLimit { limit, .. } => FabricError::TimeLimit {
            limit,
            why: "the scheduler's time bound".into(),
        },
    }
}

/// The routes a Loc-RIB installs: its BGP bests.
pub fn installed_from(loc_rib: LocRib<'_>) -> BTreeMap<Ipv4Net, Installed> {
    loc_rib
        .iter()
        .filter_map(|(p, b)| match b.source {
            Source::Peer(peer) => Some((
                p,
                Installed {
                    next_hop: b.attrs.next_hop,
                    peer,
                },
            )),
            Source::Local => None,
        })
        .collect()
}

/// A converged fabric: [`converge`]'s answer.
#[derive(Debug)]
pub struct Converged {
    /// The fabric, stopped at quiescence (its speakers hold the Loc-RIBs
    /// and sessions).
    pub fabric: Fabric,
    /// When it became quiescent.
    pub at: SimTime,
    pub stats: Stats,
}

/// A route in a node's kernel table, as Calico's BIRD leaves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KernelRoute {
    /// `PREFIX via NEXT_HOP proto bird`, learned from `peer`.
    Via { next_hop: Ipv4Addr, peer: PeerAddr },
    /// `blackhole PREFIX proto bird`: a prefix the node originates (Calico's
    /// `protocol static { route BLOCK blackhole; }` for its IPAM blocks).
    Blackhole,
}

impl Converged {
    pub fn nodes(&self) -> &[FabricNode] {
        self.fabric.nodes()
    }

    /// A node's installed BGP routes (prefix -> next hop, peer).
    pub fn installed(&self, node: usize) -> BTreeMap<Ipv4Net, Installed> {
        self.fabric.installed(node)
    }

    /// A node's Loc-RIB.
    pub fn loc_rib(&self, node: usize) -> LocRib<'_> {
        self.fabric.nodes[node].speaker.loc_rib()
    }

    /// A node's sessions: (neighbour name, address, state).
    pub fn sessions(&self, node: usize) -> Vec<(String, PeerAddr, State)> {
        let n = &self.fabric.nodes[node];
        n.config
            .neighbors
            .iter()
            .map(|nb| {
                let st = n.speaker.state(nb.address).unwrap_or(State::Idle);
                (nb.name.clone(), nb.address, st)
            })
            .collect()
    }

    /// A node's kernel routes from BGP, Calico style: the blackholes of
    /// what it originates, and its installed routes.
    pub fn kernel_routes(&self, node: usize) -> BTreeMap<Ipv4Net, KernelRoute> {
        let mut out: BTreeMap<Ipv4Net, KernelRoute> = self
            .installed(node)
            .into_iter()
            .map(|(p, i)| {
                (
                    p,
                    KernelRoute::Via {
                        next_hop: i.next_hop,
                        peer: i.peer,
                    },
                )
            })
            .collect();
        for p in self.fabric.nodes[node].speaker.originated() {
            out.insert(*p, KernelRoute::Blackhole);
        }
        out
    }
}

/// Starts every node at time 0 and runs to quiescence, within
/// `options.until` and `options.max_events`.
pub fn converge(
    nodes: impl IntoNodes,
    seed: u64,
    options: FabricOptions,
) -> Result<Converged, FabricError> {
    let until = options.until;
    let mut fabric = Fabric::new(nodes, seed, options);
    fabric.start_all();
    let at = fabric.run_to_quiescence(until)?;
    let stats = fabric.stats();
    Ok(Converged { fabric, at, stats })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything a run leaves, as text: [`Fabric::describe`], the recorded
    /// installed routes and the uninstalls with their times.
    fn state(f: &Fabric) -> String {
        let mut s = f.describe();
        for n in f.nodes() {
            s += &format!(
                "{} fib {:?}\n uninstalls {:?}\n",
                n.name, n.fib, n.uninstalls
            );
        }
        s
    }

    /// Deferring a reflector's UPDATEs to its clients (and a mesh's to
    /// its members) changes nothing a run leaves: at every step of a
    /// timeline of failures, restarts with and without graceful restart,
    /// cut links, resets, withdrawals and new originations, the tables,
    /// sessions, installed routes, uninstall times, every count (events
    /// included) and the quiescence times are those of a run without.
    #[test]
    fn deferred_receipts_change_nothing() {
        let secs = |s: u64| SimTime::ZERO + SimDuration::from_secs(s);
        // `max_pushed`: hand every receipt over after so many were deferred
        // (the memory bound), besides at the time horizon.
        let run = |c: &CalicoCluster, seed: u64, defer: bool, max_pushed: usize| {
            let options = FabricOptions {
                record_fib: true,
                defer,
                ..FabricOptions::default()
            };
            let mut f = Fabric::new(c, seed, options);
            f.deferred.max_pushed = max_pushed;
            let names: Vec<String> = f.nodes().iter().map(|n| n.name.clone()).collect();
            let last = names.len() - 1;
            let mut steps = Vec::new();
            let step = |f: &mut Fabric, t: u64, steps: &mut Vec<String>| {
                let q = f.run_to_quiescence(secs(t));
                f.run_until(secs(t)).unwrap();
                steps.push(format!("{q:?} {:?}\n{}", f.stats(), state(f)));
            };
            f.start_all();
            step(&mut f, 20, &mut steps);
            f.kill(&names[1], true).unwrap();
            step(&mut f, 40, &mut steps);
            f.revive(&names[1], true).unwrap();
            step(&mut f, 80, &mut steps);
            f.kill(&names[last], false).unwrap();
            step(&mut f, 400, &mut steps);
            f.revive(&names[last], false).unwrap();
            step(&mut f, 500, &mut steps);
            f.cut(&names[0], &names[last - 1]).unwrap();
            step(&mut f, 800, &mut steps);
            f.mend(&names[0], &names[last - 1]).unwrap();
            step(&mut f, 900, &mut steps);
            let b4 = f.nodes()[4].originate.clone();
            for p in &b4 {
                f.input(4, Input::WithdrawOrigin(*p));
            }
            step(&mut f, 910, &mut steps);
            for p in &b4 {
                f.input(4, Input::Originate(*p));
            }
            f.input(5, Input::Originate("10.200.0.0/24".parse().unwrap()));
            step(&mut f, 920, &mut steps);
            let nb0 = f.nodes()[0].config.neighbors[0].address;
            f.input(0, Input::AdminReset(nb0));
            step(&mut f, 1000, &mut steps);
            f.kill(&names[last - 1], true).unwrap();
            step(&mut f, 1020, &mut steps);
            f.revive(&names[last - 1], false).unwrap();
            step(&mut f, 1100, &mut steps);
            (steps, f.deferred_receipts(), f.stats().updates)
        };
        // Reflectors at the lowest addresses (as a scenario's node1 and
        // node2 are): a reflector sends its UPDATEs to its peers in address
        // order, so the other reflector (a receiver that is not quiet, sent
        // other bytes) comes first in each event.
        let mut first = CalicoCluster::synthetic_reflectors(20, 2);
        let n = first.nodes.len();
        for (a, b) in [(0, n - 2), (1, n - 1)] {
            let x = first.nodes[a].address;
            first.nodes[a].address = first.nodes[b].address;
            first.nodes[b].address = x;
        }
        for (c, seed) in [
            (CalicoCluster::synthetic_reflectors(30, 2), 4),
            (first, 6),
            (CalicoCluster::synthetic_reflectors(8, 1), 5),
            (CalicoCluster::synthetic_mesh(12), 3),
        ] {
            let (plain, none, _) = run(&c, seed, false, Deferred::MAX_PUSHED);
            assert_eq!(none, 0);
            for max_pushed in [Deferred::MAX_PUSHED, 7] {
                let (deferring, deferred, updates) = run(&c, seed, true, max_pushed);
                // What is compared was exercised: some of the UPDATEs sent
                // (in a mesh, most go in table dumps, one peer at a time)
                // were deferred on receipt.
                assert!(deferred * 20 > updates, "{deferred} of {updates} deferred");
                for (k, (a, b)) in plain.iter().zip(&deferring).enumerate() {
                    assert_eq!(a, b, "step {k} differs (max_pushed {max_pushed})");
                }
            }
        }
    }

    #[test]
    fn counts_prefixes_of_an_update() {
        use crate::bgp::rib::PathAttrs;
        use sim_core::wire::bgp::{BgpContext, BgpMessage, UpdateRepr};
        let net = |s: &str| -> Ipv4Net { s.parse().unwrap() };
        let u = UpdateRepr {
            withdrawn: vec![net("10.0.0.0/8")],
            attributes: PathAttrs::local(Ipv4Addr::new(1, 2, 3, 4)).to_attributes(),
            nlri: vec![net("10.244.1.0/26"), net("0.0.0.0/0"), net("1.2.3.4/32")],
        };
        let b = BgpMessage::Update(u).to_bytes(BgpContext::FOUR_OCTET);
        let mut s = Stats::default();
        s.count(&b);
        assert_eq!((s.updates, s.withdrawn, s.announced), (1, 1, 3));
        assert_eq!(s.withdraw_updates, 1);
    }

    /// The prepared-UPDATE cache keeps two messages per set, the one used
    /// last first: a third evicts the one used longer ago; what is not an
    /// UPDATE is not taken apart and evicts nothing.
    #[test]
    fn the_prepared_cache_keeps_two_ways_per_set() {
        use crate::bgp::rib::PathAttrs;
        use sim_core::wire::bgp::{BgpContext, BgpMessage, UpdateRepr};
        let update = |last: u8| -> Wire {
            let u = UpdateRepr {
                withdrawn: vec![],
                attributes: PathAttrs::local(Ipv4Addr::new(10, 0, 0, last)).to_attributes(),
                nlri: vec![Ipv4Net::new(Ipv4Addr::new(10, 244, last, 0), 26).unwrap()],
            };
            BgpMessage::Update(u)
                .to_bytes(BgpContext::FOUR_OCTET)
                .into()
        };
        let (a, b, c) = (update(1), update(2), update(3));
        let keepalive: Wire = BgpMessage::Keepalive
            .to_bytes(BgpContext::FOUR_OCTET)
            .into();
        let mut pool = AttrPool::new();
        // One set of two ways.
        let mut cache = PreparedCache {
            slots: Vec::new(),
            size: 2,
        };
        for w in [&a, &b] {
            let p = cache.get(w, &mut pool).expect("an UPDATE");
            assert!(Wire::ptr_eq(p.frame(), w));
        }
        assert!(cache.peek(&a).is_some() && cache.peek(&b).is_some());
        assert!(cache.get(&keepalive, &mut pool).is_none());
        assert!(cache.peek(&a).is_some() && cache.peek(&b).is_some());
        // `a` used again: `b` is the older, and goes for `c`.
        cache.get(&a, &mut pool).expect("cached");
        cache.get(&c, &mut pool).expect("an UPDATE");
        assert!(cache.peek(&a).is_some());
        assert!(cache.peek(&b).is_none());
        assert!(Wire::ptr_eq(cache.peek(&c).expect("cached").frame(), &c));
    }

    /// A hold timer moved later inside the speaker
    /// ([`FabricOptions::lazy_hold`]) behaves as one re-armed through the
    /// fabric on every message: the same log (with every expiry and its
    /// time), quiescence times, tables, uninstalls and message counts
    /// through a timeline of failures whose hold timers expire. Only the
    /// count of events differs: the eager speaker's every re-arm is a new
    /// timer event.
    #[test]
    fn lazy_hold_timers_change_nothing_but_outputs() {
        let run = |eager: bool| {
            let c = CalicoCluster::synthetic_reflectors(6, 2);
            let options = FabricOptions {
                log: true,
                record_fib: true,
                lazy_hold: !eager,
                ..FabricOptions::default()
            };
            let mut f = Fabric::new(&c, 7, options);
            let secs = |s: u64| SimTime::ZERO + SimDuration::from_secs(s);
            f.start_all();
            let mut marks = vec![f.run_to_quiescence(secs(600)).expect("converges")];
            // A reflector loses power (its clients' hold timers expire), a
            // client's link is cut (both ends' expire), both come back.
            f.kill("rr1", false).unwrap();
            f.run_until(secs(400)).unwrap();
            f.cut("node2", "rr2").unwrap();
            f.run_until(secs(800)).unwrap();
            f.revive("rr1", false).unwrap();
            f.mend("node2", "rr2").unwrap();
            marks.push(f.run_to_quiescence(secs(2000)).expect("converges again"));
            let tables: Vec<_> = (0..f.nodes().len()).map(|i| f.installed(i)).collect();
            let expired = f
                .log()
                .iter()
                .filter(|l| l.contains("hold timer expired"))
                .count();
            let uninstalls: Vec<_> = f.nodes().iter().map(|n| n.uninstalls().to_vec()).collect();
            (
                marks,
                f.stats(),
                tables,
                f.log().to_vec(),
                expired,
                uninstalls,
            )
        };
        let (eager, lazy) = (run(true), run(false));
        // Hold timers did expire: the lazy path's expiry is exercised.
        assert!(lazy.4 >= 6, "{} hold timer expiries", lazy.4);
        assert_eq!(eager.0, lazy.0, "quiescence times");
        let events = |s: &Stats| Stats { events: 0, ..*s };
        assert_eq!(events(&eager.1), events(&lazy.1), "stats");
        assert_eq!(eager.2, lazy.2, "installed routes");
        assert_eq!(eager.5, lazy.5, "uninstalls and their times");
        assert_eq!(eager.3, lazy.3, "logs");
    }

    /// What a receiver reads first sits in the first few cache lines of
    /// its node (the field orders of `FabricNode` and `Speaker`).
    #[test]
    fn a_receivers_hot_fields_are_compact() {
        let hot = std::mem::offset_of!(FabricNode, speaker) + Speaker::HOT_BYTES;
        assert!(hot <= 7 * 64, "{hot} bytes");
    }
}
