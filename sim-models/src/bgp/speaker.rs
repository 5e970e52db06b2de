//! The speaker: one BGP process (a BIRD daemon's `protocol bgp` instances
//! and its routing table), sans IO.
//!
//! [`Speaker::handle`] takes one [`Input`] at a simulated time and returns
//! what the speaker does about it as [`Output`]s. It never reads a clock,
//! opens a socket or schedules anything itself: the caller owns the
//! transport (a byte stream per peer) and the timers (`SetTimer` asks to be
//! handed `Input::Timer` back at that time; a new `SetTimer` of the same
//! peer and kind replaces the old one).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

use sim_core::net::Ipv4Net;
use sim_core::rng::SimRng;
use sim_core::time::{SimDuration, SimTime};
use sim_core::wire::bgp::{
    AFI_IPV4, AsSegment, BgpContext, BgpError, BgpMessage, Capability, GrFamily,
    GracefulRestartCap, HEADER_LEN, MAX_MESSAGE_LEN, NotificationRepr, OpenRepr, OptParam,
    SAFI_UNICAST, UpdateRepr, prefix_len_on_wire,
};

use super::config::{GracefulRestart, Neighbor, SpeakerConfig};
use super::rib::{Candidate, PathAttrs, Source, best};

/// A neighbour, by its address (the key of every input and output).
pub type PeerAddr = Ipv4Addr;

/// The timers a speaker asks its host to run, per peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// RFC 4271's ConnectRetry timer (also BIRD's initial connect delay).
    ConnectRetry,
    /// The hold timer: the peer said nothing for the hold time.
    Hold,
    /// Time to send a KEEPALIVE.
    Keepalive,
    /// The wait after an error before starting again (BIRD's `error wait
    /// time`; RFC 4271's IdleHoldTimer, §8.1.1).
    IdleHold,
    /// RFC 4724's restart timer: a restarting peer's stale routes go when
    /// it fires.
    GracefulRestart,
}

/// What happens to a speaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Start every session (BIRD starting up).
    Start,
    /// A transport connection with this peer is open (ours, asked for by
    /// `Output::Connect`, or one the peer opened to our `Listen`). Offer at
    /// most one per peer: see [`Speaker::accepts`].
    TransportConnected(PeerAddr),
    /// Bytes from the peer's connection, in order; any split.
    TransportBytes(PeerAddr, Vec<u8>),
    /// The connection closed or failed (a refused or failed connect too).
    /// Not reported for connections the speaker closed itself.
    TransportClosed(PeerAddr),
    /// A timer set with `Output::SetTimer` fired.
    Timer(PeerAddr, TimerKind),
    /// Originate a route (Calico: a block of this node's pod addresses).
    Originate(Ipv4Net),
    /// Stop originating it.
    WithdrawOrigin(Ipv4Net),
    /// Reset the session (`birdc restart`): Cease, Administrative Reset.
    AdminReset(PeerAddr),
}

/// A log line: a peer's session event, a message sent or received, a
/// route decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub peer: Option<PeerAddr>,
    pub text: String,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.peer {
            Some(p) => write!(f, "{p}: {}", self.text),
            None => f.write_str(&self.text),
        }
    }
}

/// What a speaker does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Accept connections on port 179 (once, on `Start`).
    Listen,
    /// Open a connection to the peer, from the neighbour's local address.
    Connect(PeerAddr),
    /// Send these bytes (one whole BGP message) on the peer's connection.
    Send(PeerAddr, Vec<u8>),
    /// Close the peer's connection (or abandon a pending connect).
    Close(PeerAddr),
    /// Hand `Input::Timer(peer, kind)` back at this time, replacing any
    /// pending timer of the same peer and kind.
    SetTimer(PeerAddr, TimerKind, SimTime),
    CancelTimer(PeerAddr, TimerKind),
    /// The best route to `prefix` is now this BGP route: install it in the
    /// kernel (BIRD's kernel protocol; `proto bird`).
    Install {
        prefix: Ipv4Net,
        next_hop: Ipv4Addr,
        peer: PeerAddr,
        as_path: Vec<AsSegment>,
    },
    /// No BGP route to `prefix` is best any more: remove it.
    Uninstall {
        prefix: Ipv4Net,
    },
    Log(LogLine),
}

/// RFC 4271 §8.2.2's session states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

/// What was negotiated with a peer's OPEN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The hold time in force: the smaller of the two offers (0: none).
    pub hold_time: u16,
    pub keepalive: Option<SimDuration>,
    pub cx: BgpContext,
    pub peer_id: Ipv4Addr,
    /// The peer's graceful restart capability, if it announced one.
    pub peer_gr: Option<GracefulRestartCap>,
    pub route_refresh: bool,
}

/// A route in an Adj-RIB-In.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InRoute {
    pub attrs: Arc<PathAttrs>,
    /// Kept from a session that went down, awaiting the restart (RFC 4724).
    pub stale: bool,
}

/// A Loc-RIB entry: the best route for a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Best {
    pub source: Source,
    pub attrs: Arc<PathAttrs>,
}

#[derive(Clone)]
struct Peer {
    cfg: Neighbor,
    ibgp: bool,
    state: State,
    transport: bool,
    rx: Vec<u8>,
    session: Option<Session>,
    /// The last BGP identifier the peer sent (kept for tie-breaking its stale routes).
    peer_id: Ipv4Addr,
    adj_in: BTreeMap<Ipv4Net, InRoute>,
    adj_out: BTreeMap<Ipv4Net, Arc<PathAttrs>>,
    /// Deadlines of the armed timers (a `Timer` input for another time is stale).
    timers: BTreeMap<TimerKind, SimTime>,
    /// BIRD's startup delay after errors (0: none).
    startup_delay: SimDuration,
    last_error: Option<SimTime>,
    /// Stale routes are held for a restarting peer.
    gr_pending: bool,
    /// We are restarting (BIRD started with `-R`, as calico/node runs it):
    /// the next OPEN to this peer sets the Restart State bit, and the
    /// Forwarding State bit for IPv4 unicast.
    recovering: bool,
}

/// Why a session ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Down {
    /// The transport failed without a NOTIFICATION: a graceful restart
    /// keeps the peer's routes (RFC 4724 §4.2).
    graceful: bool,
    /// Counts as an error for BIRD's error wait.
    error: bool,
}

/// One BGP speaker; see the [module docs](self).
#[derive(Clone)]
pub struct Speaker {
    cfg: SpeakerConfig,
    rng: SimRng,
    peers: BTreeMap<PeerAddr, Peer>,
    local: BTreeSet<Ipv4Net>,
    loc_rib: BTreeMap<Ipv4Net, Best>,
    started: bool,
    now: SimTime,
    out: Vec<Output>,
    /// Whether to emit `Output::Log` lines (see [`Speaker::set_logging`]).
    logging: bool,
}

impl fmt::Debug for Speaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Speaker")
            .field("router_id", &self.cfg.router_id)
            .field("local_as", &self.cfg.local_as)
            .field("peers", &self.peers.len())
            .field("loc_rib", &self.loc_rib.len())
            .finish_non_exhaustive()
    }
}

impl Speaker {
    /// A speaker with this configuration; `rng` draws the timers' jitter
    /// (give it a named stream of the run's seed, e.g. `bgp:node1`).
    pub fn new(cfg: SpeakerConfig, rng: SimRng) -> Self {
        let peers = cfg
            .neighbors
            .iter()
            .map(|n| {
                (
                    n.address,
                    Peer {
                        ibgp: n.remote_as == cfg.local_as,
                        cfg: n.clone(),
                        state: State::Idle,
                        transport: false,
                        rx: Vec::new(),
                        session: None,
                        peer_id: Ipv4Addr::UNSPECIFIED,
                        adj_in: BTreeMap::new(),
                        adj_out: BTreeMap::new(),
                        timers: BTreeMap::new(),
                        startup_delay: SimDuration::ZERO,
                        last_error: None,
                        gr_pending: false,
                        recovering: false,
                    },
                )
            })
            .collect();
        Speaker {
            cfg,
            rng,
            peers,
            local: BTreeSet::new(),
            loc_rib: BTreeMap::new(),
            started: false,
            now: SimTime::ZERO,
            out: Vec::new(),
            logging: true,
        }
    }

    /// A speaker that is restarting with its forwarding state preserved
    /// (graceful restart, RFC 4724 §4.1; BIRD's `-R`): with
    /// [`GracefulRestart::On`], its first OPEN to each peer sets the R bit
    /// and the F bit for IPv4 unicast, so that peers keep its routes until
    /// its End-of-RIB. (Deferring its own route selection until the peers'
    /// End-of-RIB is not modelled.)
    pub fn restarting(cfg: SpeakerConfig, rng: SimRng) -> Self {
        let mut s = Speaker::new(cfg, rng);
        for p in s.peers.values_mut() {
            p.recovering = true;
        }
        s
    }

    /// Whether the speaker emits `Output::Log` lines (on by default).
    /// Formatting every message sent and received is most of the cost of a
    /// large run: fabrics that do not keep the log turn it off. Only the
    /// log changes; the speaker behaves the same.
    pub fn set_logging(&mut self, on: bool) {
        self.logging = on;
    }

    pub fn config(&self) -> &SpeakerConfig {
        &self.cfg
    }

    /// The session state with a peer (`None` for an unknown address).
    pub fn state(&self, peer: PeerAddr) -> Option<State> {
        self.peers.get(&peer).map(|p| p.state)
    }

    /// What was negotiated with an established (or opening) peer.
    pub fn session(&self, peer: PeerAddr) -> Option<&Session> {
        self.peers.get(&peer)?.session.as_ref()
    }

    /// Whether the speaker takes a new connection from this peer now (it is
    /// waiting for one: Active or Connect). A transport binding refuses the
    /// others: one connection per peer (RFC 4271 §6.8's collision
    /// resolution is not modelled).
    pub fn accepts(&self, peer: PeerAddr) -> bool {
        self.started
            && self
                .peers
                .get(&peer)
                .is_some_and(|p| matches!(p.state, State::Active | State::Connect))
    }

    /// The Loc-RIB: the best route for each prefix.
    pub fn loc_rib(&self) -> &BTreeMap<Ipv4Net, Best> {
        &self.loc_rib
    }

    /// A peer's Adj-RIB-In (after import policy and loop checks).
    pub fn adj_rib_in(&self, peer: PeerAddr) -> Option<&BTreeMap<Ipv4Net, InRoute>> {
        self.peers.get(&peer).map(|p| &p.adj_in)
    }

    /// A peer's Adj-RIB-Out: what was last advertised to it.
    pub fn adj_rib_out(&self, peer: PeerAddr) -> Option<&BTreeMap<Ipv4Net, Arc<PathAttrs>>> {
        self.peers.get(&peer).map(|p| &p.adj_out)
    }

    /// The prefixes this speaker originates.
    pub fn originated(&self) -> &BTreeSet<Ipv4Net> {
        &self.local
    }

    /// Processes one input at `now`.
    pub fn handle(&mut self, now: SimTime, input: Input) -> Vec<Output> {
        self.now = now;
        match input {
            Input::Start => self.start(),
            Input::TransportConnected(p) => self.connected(p),
            Input::TransportBytes(p, bytes) => self.bytes(p, bytes),
            Input::TransportClosed(p) => self.closed(p),
            Input::Timer(p, kind) => self.timer(p, kind),
            Input::Originate(prefix) => {
                let prefix = prefix.network();
                if self.local.insert(prefix) {
                    self.log(None, format!("originate {prefix}"));
                    self.decide(BTreeSet::from([prefix]));
                }
            }
            Input::WithdrawOrigin(prefix) => {
                let prefix = prefix.network();
                if self.local.remove(&prefix) {
                    self.log(None, format!("stop originating {prefix}"));
                    self.decide(BTreeSet::from([prefix]));
                }
            }
            Input::AdminReset(p) => self.admin_reset(p),
        }
        std::mem::take(&mut self.out)
    }

    // ---- helpers ----------------------------------------------------------

    fn log(&mut self, peer: Option<PeerAddr>, text: String) {
        if self.logging {
            self.out.push(Output::Log(LogLine { peer, text }));
        }
    }

    fn peer(&mut self, addr: PeerAddr) -> &mut Peer {
        self.peers.get_mut(&addr).expect("a configured peer")
    }

    fn set_state(&mut self, addr: PeerAddr, state: State) {
        let p = self.peer(addr);
        let old = std::mem::replace(&mut p.state, state);
        if old != state && self.logging {
            self.log(Some(addr), format!("{old:?} -> {state:?}"));
        }
    }

    /// Arms a timer `d` from now, shortened by up to a quarter at random
    /// when `jitter` (BIRD's `bgp_start_timer`, RFC 4271 §10).
    fn arm(&mut self, addr: PeerAddr, kind: TimerKind, d: SimDuration, jitter: bool) {
        let cut = if jitter {
            self.rng.below(d.as_nanos() / 4 + 1)
        } else {
            0
        };
        let at = self.now + SimDuration::from_nanos(d.as_nanos() - cut);
        self.peer(addr).timers.insert(kind, at);
        self.out.push(Output::SetTimer(addr, kind, at));
    }

    fn disarm(&mut self, addr: PeerAddr, kind: TimerKind) {
        if self.peer(addr).timers.remove(&kind).is_some() {
            self.out.push(Output::CancelTimer(addr, kind));
        }
    }

    fn send(&mut self, addr: PeerAddr, msg: &BgpMessage) {
        let cx = self
            .peers
            .get(&addr)
            .and_then(|p| p.session.as_ref())
            .map_or(BgpContext::FOUR_OCTET, |s| s.cx);
        let bytes = msg.to_bytes(cx);
        if self.logging {
            self.log(Some(addr), format!("sent {msg}"));
        }
        self.out.push(Output::Send(addr, bytes));
    }

    fn local_address(&self, addr: PeerAddr) -> Ipv4Addr {
        self.peers[&addr]
            .cfg
            .local_address
            .unwrap_or(self.cfg.address)
    }

    fn our_open(&self, addr: PeerAddr) -> OpenRepr {
        let recovering = self.peers[&addr].recovering;
        let mut caps = vec![
            Capability::Multiprotocol {
                afi: AFI_IPV4,
                reserved: 0,
                safi: SAFI_UNICAST,
            },
            Capability::RouteRefresh,
        ];
        match self.cfg.graceful_restart {
            GracefulRestart::Off => {}
            GracefulRestart::Aware { restart_time } => {
                caps.push(Capability::GracefulRestart(GracefulRestartCap {
                    flags: 0,
                    restart_time,
                    families: Vec::new(),
                }))
            }
            GracefulRestart::On { restart_time } => {
                caps.push(Capability::GracefulRestart(GracefulRestartCap {
                    flags: if recovering {
                        GracefulRestartCap::RESTARTING
                    } else {
                        0
                    },
                    restart_time,
                    families: vec![GrFamily {
                        afi: AFI_IPV4,
                        safi: SAFI_UNICAST,
                        flags: if recovering { 0x80 } else { 0 },
                    }],
                }))
            }
        }
        caps.push(Capability::FourOctetAs(self.cfg.local_as));
        let hold = (self.cfg.timers.hold.as_nanos() / 1_000_000_000).min(u16::MAX as u64) as u16;
        OpenRepr::new(self.cfg.local_as, hold, self.cfg.router_id, caps)
    }

    // ---- the FSM ----------------------------------------------------------

    fn start(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        self.out.push(Output::Listen);
        let addrs: Vec<PeerAddr> = self.peers.keys().copied().collect();
        for a in addrs {
            self.start_peer(a);
        }
    }

    /// Idle -> Active: wait for the peer, and (unless passive) connect
    /// after the connect delay (BIRD's `bgp_active`).
    fn start_peer(&mut self, addr: PeerAddr) {
        self.set_state(addr, State::Active);
        if !self.peers[&addr].cfg.passive {
            let delay = self.cfg.timers.connect_delay.max(SimDuration::from_secs(1));
            self.arm(addr, TimerKind::ConnectRetry, delay, true);
        }
    }

    fn connected(&mut self, addr: PeerAddr) {
        let Some(p) = self.peers.get(&addr) else {
            self.log(
                Some(addr),
                "connection from an unconfigured address: closed".into(),
            );
            self.out.push(Output::Close(addr));
            return;
        };
        match p.state {
            State::Active | State::Connect if self.started => {
                let p = self.peer(addr);
                p.transport = true;
                p.rx.clear();
                self.disarm(addr, TimerKind::ConnectRetry);
                let open = BgpMessage::Open(self.our_open(addr));
                self.send(addr, &open);
                let hold = self.cfg.timers.startup_hold;
                self.arm(addr, TimerKind::Hold, hold, true);
                self.set_state(addr, State::OpenSent);
            }
            State::Idle | State::Active | State::Connect => {
                self.log(Some(addr), "connection refused while idle".into());
                self.out.push(Output::Close(addr));
            }
            _ => {
                self.log(
                    Some(addr),
                    "a second connection: ignored (one connection per peer)".into(),
                );
            }
        }
    }

    fn closed(&mut self, addr: PeerAddr) {
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        p.transport = false;
        match p.state {
            State::Connect => {
                // The connect failed; ConnectRetry will try again.
                self.log(Some(addr), "connection failed".into());
                self.set_state(addr, State::Active);
            }
            State::OpenSent => {
                self.log(Some(addr), "connection closed in OpenSent".into());
                self.disarm(addr, TimerKind::Hold);
                self.set_state(addr, State::Active);
                if !self.peers[&addr].cfg.passive {
                    let d = self.cfg.timers.connect_retry;
                    self.arm(addr, TimerKind::ConnectRetry, d, true);
                }
            }
            State::OpenConfirm | State::Established => {
                self.log(Some(addr), "connection closed".into());
                self.session_down(
                    addr,
                    Down {
                        graceful: true,
                        error: true,
                    },
                );
            }
            State::Idle | State::Active => {}
        }
    }

    fn timer(&mut self, addr: PeerAddr, kind: TimerKind) {
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        match p.timers.get(&kind) {
            Some(&at) if at <= self.now => {
                p.timers.remove(&kind);
            }
            _ => return, // cancelled or re-armed: a stale timer
        }
        let state = p.state;
        match (kind, state) {
            (TimerKind::ConnectRetry, State::Active | State::Connect) => {
                if state == State::Connect {
                    self.log(Some(addr), "connect timed out".into());
                    self.out.push(Output::Close(addr));
                }
                self.set_state(addr, State::Connect);
                self.out.push(Output::Connect(addr));
                let d = self.cfg.timers.connect_retry;
                self.arm(addr, TimerKind::ConnectRetry, d, true);
            }
            (TimerKind::Hold, State::OpenSent | State::OpenConfirm | State::Established) => {
                self.log(Some(addr), "hold timer expired".into());
                self.send(
                    addr,
                    &BgpMessage::Notification(NotificationRepr::hold_timer_expired()),
                );
                self.session_down(
                    addr,
                    Down {
                        graceful: false,
                        error: true,
                    },
                );
            }
            (TimerKind::Keepalive, State::OpenConfirm | State::Established) => {
                self.send(addr, &BgpMessage::Keepalive);
                if let Some(k) = self.peers[&addr].session.as_ref().and_then(|s| s.keepalive) {
                    self.arm(addr, TimerKind::Keepalive, k, true);
                }
            }
            (TimerKind::IdleHold, State::Idle) => self.start_peer(addr),
            (TimerKind::GracefulRestart, _) => {
                self.log(Some(addr), "restart timer expired".into());
                self.flush_stale(addr);
            }
            _ => {}
        }
    }

    fn admin_reset(&mut self, addr: PeerAddr) {
        let Some(p) = self.peers.get(&addr) else {
            return;
        };
        if !self.started {
            return;
        }
        if matches!(
            p.state,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            self.send(addr, &BgpMessage::Notification(NotificationRepr::cease(4)));
        }
        self.session_down(
            addr,
            Down {
                graceful: false,
                error: false,
            },
        );
    }

    /// Ends the session: close, drop (or, for a graceful restart, keep as
    /// stale) the peer's routes, and start again after the error wait.
    fn session_down(&mut self, addr: PeerAddr, why: Down) {
        for k in [
            TimerKind::Hold,
            TimerKind::Keepalive,
            TimerKind::ConnectRetry,
        ] {
            self.disarm(addr, k);
        }
        let gr_local = self.cfg.graceful_restart;
        let now = self.now;
        let forget = self.cfg.timers.error_forget;
        let (wmin, wmax) = (
            self.cfg.timers.error_wait_min,
            self.cfg.timers.error_wait_max,
        );
        let p = self.peer(addr);
        let was_established = p.state == State::Established;
        let close = std::mem::replace(&mut p.transport, false);
        p.rx.clear();
        p.adj_out.clear();
        let session = p.session.take();
        let restart_time = session
            .as_ref()
            .and_then(|s| s.peer_gr.as_ref())
            .map(|g| g.restart_time)
            .filter(|_| gr_local.enabled());
        let mut changed = BTreeSet::new();
        let mut arm_gr = None;
        match restart_time {
            Some(t) if was_established && why.graceful && t > 0 && !p.adj_in.is_empty() => {
                for r in p.adj_in.values_mut() {
                    r.stale = true;
                }
                p.gr_pending = true;
                arm_gr = Some((p.adj_in.len(), t));
            }
            _ => {
                p.gr_pending = false;
                changed.extend(p.adj_in.keys().copied());
                p.adj_in.clear();
            }
        }
        if why.error {
            // BIRD's bgp_update_startup_delay.
            if p.last_error
                .is_some_and(|t| now.saturating_since(t) >= forget)
            {
                p.startup_delay = SimDuration::ZERO;
            }
            p.last_error = Some(now);
            p.startup_delay = if p.startup_delay == SimDuration::ZERO {
                wmin
            } else {
                (p.startup_delay + p.startup_delay).min(wmax)
            };
        }
        let delay = p.startup_delay;
        if close {
            self.out.push(Output::Close(addr));
        }
        match arm_gr {
            Some((n, t)) => {
                self.log(
                    Some(addr),
                    format!("graceful restart: keeping {n} routes as stale for {t}s"),
                );
                self.arm(
                    addr,
                    TimerKind::GracefulRestart,
                    SimDuration::from_secs(t as u64),
                    false,
                );
            }
            None => self.disarm(addr, TimerKind::GracefulRestart),
        }
        self.set_state(addr, State::Idle);
        if delay > SimDuration::ZERO {
            self.arm(addr, TimerKind::IdleHold, delay, true);
        } else {
            self.start_peer(addr);
        }
        self.decide(changed);
    }

    /// Drops a peer's stale routes (restart timer, End-of-RIB, or a new
    /// session without graceful restart for IPv4 unicast).
    fn flush_stale(&mut self, addr: PeerAddr) {
        self.disarm(addr, TimerKind::GracefulRestart);
        let p = self.peer(addr);
        p.gr_pending = false;
        let stale: Vec<Ipv4Net> = p
            .adj_in
            .iter()
            .filter(|(_, r)| r.stale)
            .map(|(k, _)| *k)
            .collect();
        for k in &stale {
            p.adj_in.remove(k);
        }
        if !stale.is_empty() {
            self.log(Some(addr), format!("dropped {} stale routes", stale.len()));
        }
        self.decide(stale.into_iter().collect());
    }

    fn protocol_error(&mut self, addr: PeerAddr, e: &BgpError) {
        self.log(Some(addr), format!("error: {e}"));
        self.send(addr, &BgpMessage::Notification(e.notification()));
        self.session_down(
            addr,
            Down {
                graceful: false,
                error: true,
            },
        );
    }

    fn fsm_error(&mut self, addr: PeerAddr, state: State, msg: &BgpMessage) {
        // RFC 6608 subcodes: unexpected message in OpenSent, OpenConfirm, Established.
        let subcode = match state {
            State::OpenSent => 1,
            State::OpenConfirm => 2,
            _ => 3,
        };
        self.log(Some(addr), format!("unexpected {msg} in {state:?}"));
        self.send(
            addr,
            &BgpMessage::Notification(NotificationRepr {
                code: 5,
                subcode,
                data: Vec::new(),
            }),
        );
        self.session_down(
            addr,
            Down {
                graceful: false,
                error: true,
            },
        );
    }

    fn bytes(&mut self, addr: PeerAddr, bytes: Vec<u8>) {
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        if !p.transport {
            return;
        }
        p.rx.extend_from_slice(&bytes);
        loop {
            let p = self.peer(addr);
            if !p.transport {
                return;
            }
            let len = match BgpMessage::frame_len(&p.rx) {
                Ok(Some(len)) => len,
                Ok(None) => return,
                Err(e) => return self.protocol_error(addr, &e),
            };
            let frame: Vec<u8> = p.rx.drain(..len).collect();
            let cx = p.session.as_ref().map_or(BgpContext::FOUR_OCTET, |s| s.cx);
            match BgpMessage::parse(&frame, cx) {
                Ok((m, _)) => self.receive(addr, m),
                Err(e) => return self.protocol_error(addr, &e),
            }
        }
    }

    fn receive(&mut self, addr: PeerAddr, msg: BgpMessage) {
        if self.logging {
            self.log(Some(addr), format!("received {msg}"));
        }
        let state = self.peers[&addr].state;
        if let BgpMessage::Notification(n) = &msg {
            let error = n.code != 6;
            return self.session_down(
                addr,
                Down {
                    graceful: false,
                    error,
                },
            );
        }
        match (state, msg) {
            (State::OpenSent, BgpMessage::Open(o)) => match self.check_open(addr, &o) {
                Ok(s) => {
                    let (hold, keepalive) = (s.hold_time, s.keepalive);
                    let p = self.peer(addr);
                    p.peer_id = s.peer_id;
                    p.session = Some(s);
                    self.send(addr, &BgpMessage::Keepalive);
                    if hold > 0 {
                        self.arm(
                            addr,
                            TimerKind::Hold,
                            SimDuration::from_secs(hold as u64),
                            true,
                        );
                    } else {
                        self.disarm(addr, TimerKind::Hold);
                    }
                    if let Some(k) = keepalive {
                        self.arm(addr, TimerKind::Keepalive, k, true);
                    }
                    self.set_state(addr, State::OpenConfirm);
                }
                Err(e) => self.protocol_error(addr, &e),
            },
            (State::OpenConfirm, BgpMessage::Keepalive) => {
                self.restart_hold(addr);
                self.set_state(addr, State::Established);
                self.established(addr);
            }
            (State::Established, BgpMessage::Keepalive) => self.restart_hold(addr),
            (State::Established, BgpMessage::Update(u)) => {
                self.restart_hold(addr);
                self.import(addr, u);
            }
            (State::Established, BgpMessage::RouteRefresh(r)) => {
                self.restart_hold(addr);
                if (r.afi, r.safi, r.subtype) == (AFI_IPV4, SAFI_UNICAST, 0) {
                    self.peer(addr).adj_out.clear();
                    let all: Vec<Ipv4Net> = self.loc_rib.keys().copied().collect();
                    self.export_to(addr, &all);
                }
            }
            (State::OpenSent | State::OpenConfirm | State::Established, m) => {
                self.fsm_error(addr, state, &m)
            }
            _ => {}
        }
    }

    fn restart_hold(&mut self, addr: PeerAddr) {
        let hold = self.peers[&addr]
            .session
            .as_ref()
            .map_or(0, |s| s.hold_time);
        if hold > 0 {
            self.arm(
                addr,
                TimerKind::Hold,
                SimDuration::from_secs(hold as u64),
                true,
            );
        }
    }

    /// RFC 4271 §6.2's checks, in its order.
    fn check_open(&self, addr: PeerAddr, o: &OpenRepr) -> Result<Session, BgpError> {
        let p = &self.peers[&addr];
        if o.version != 4 {
            return Err(BgpError::UnsupportedVersion { version: o.version });
        }
        if o.peer_as() != p.cfg.remote_as {
            return Err(BgpError::BadPeerAs { asn: o.peer_as() });
        }
        if matches!(o.hold_time, 1 | 2) {
            return Err(BgpError::UnacceptableHoldTime {
                hold_time: o.hold_time,
            });
        }
        if o.bgp_id.is_unspecified() || (p.ibgp && o.bgp_id == self.cfg.router_id) {
            return Err(BgpError::BadBgpIdentifier { id: o.bgp_id });
        }
        if let Some(OptParam::Unknown { param_type, .. }) = o
            .params
            .iter()
            .find(|p| matches!(p, OptParam::Unknown { .. }))
        {
            return Err(BgpError::UnsupportedOptionalParameter {
                param_type: *param_type,
            });
        }
        let ours = self.our_open(addr).hold_time;
        let hold_time = ours.min(o.hold_time);
        let keepalive = (hold_time > 0).then(|| {
            self.cfg
                .timers
                .keepalive
                .unwrap_or(SimDuration::from_secs(hold_time as u64 / 3))
        });
        Ok(Session {
            hold_time,
            keepalive,
            cx: BgpContext {
                four_octet_as: o.four_octet_as().is_some(),
            },
            peer_id: o.bgp_id,
            peer_gr: o.graceful_restart().cloned(),
            route_refresh: o.route_refresh(),
        })
    }

    /// OpenConfirm -> Established: the whole table to the peer, then
    /// End-of-RIB if it does graceful restart.
    fn established(&mut self, addr: PeerAddr) {
        self.peer(addr).recovering = false;
        let p = &self.peers[&addr];
        if p.gr_pending {
            // RFC 4724 §4.2: stale routes stay only if the new session
            // keeps IPv4 unicast with forwarding preserved (F bit).
            let keeps = p
                .session
                .as_ref()
                .and_then(|s| s.peer_gr.as_ref())
                .is_some_and(|g| {
                    g.families
                        .iter()
                        .any(|f| f.afi == AFI_IPV4 && f.safi == SAFI_UNICAST && f.flags & 0x80 != 0)
                });
            if !keeps {
                self.flush_stale(addr);
            }
        }
        let all: Vec<Ipv4Net> = self.loc_rib.keys().copied().collect();
        self.export_to(addr, &all);
        if self.peers[&addr]
            .session
            .as_ref()
            .is_some_and(|s| s.peer_gr.is_some())
        {
            self.send(addr, &BgpMessage::Update(UpdateRepr::end_of_rib()));
        }
    }

    // ---- routes -----------------------------------------------------------

    fn import(&mut self, addr: PeerAddr, u: UpdateRepr) {
        if u.is_end_of_rib() {
            if self.peers[&addr].gr_pending {
                self.flush_stale(addr);
            }
            return;
        }
        if let Err(e) = u.validate() {
            return self.protocol_error(addr, &e);
        }
        let local_as = self.cfg.local_as;
        let router_id = self.cfg.router_id;
        let cluster_id = self.cfg.effective_cluster_id();
        let logging = self.logging;
        let mut changed = BTreeSet::new();
        let mut notes = Vec::new();
        let p = self.peer(addr);
        for w in &u.withdrawn {
            let w = w.network();
            if p.adj_in.remove(&w).is_some() {
                changed.insert(w);
            }
        }
        if !u.nlri.is_empty() {
            let attrs = PathAttrs::from_update(&u).expect("validated");
            let reject = if !p.ibgp && attrs.path_contains(local_as) {
                Some(format!("AS_PATH loop (contains {local_as})"))
            } else if p.ibgp && attrs.originator_id == Some(router_id) {
                Some("ORIGINATOR_ID is our router id".to_string())
            } else if p.ibgp && p.cfg.rr_client && attrs.cluster_list.contains(&cluster_id) {
                // BIRD checks the CLUSTER_LIST on receipt only on `rr
                // client` sessions, against that session's `rr cluster
                // id` (proto/bgp/attrs.c, bgp_decode_attrs): a reflector
                // keeps what a fellow reflector of its cluster reflects to
                // it (as real BIRD did in the agreement test), and drops it
                // only on export (below).
                Some(format!("CLUSTER_LIST loop (contains {cluster_id})"))
            } else {
                None
            };
            let attrs = Arc::new(attrs);
            for n in &u.nlri {
                let n = n.network();
                let refused = reject.clone().or_else(|| {
                    (!p.cfg.import.allows(n)).then(|| "denied by import policy".to_string())
                });
                match refused {
                    Some(why) => {
                        if logging {
                            notes.push(format!("ignored {n}: {why}"));
                        }
                        if p.adj_in.remove(&n).is_some() {
                            changed.insert(n);
                        }
                    }
                    None => {
                        p.adj_in.insert(
                            n,
                            InRoute {
                                attrs: attrs.clone(),
                                stale: false,
                            },
                        );
                        changed.insert(n);
                    }
                }
            }
        }
        for n in notes {
            self.log(Some(addr), n);
        }
        self.decide(changed);
    }

    fn candidates(&self, prefix: Ipv4Net) -> Vec<Candidate> {
        let mut c = Vec::new();
        if self.local.contains(&prefix) {
            c.push(Candidate {
                source: Source::Local,
                attrs: Arc::new(PathAttrs::local(self.cfg.address)),
                ibgp: false,
                peer_id: self.cfg.router_id,
                stale: false,
            });
        }
        for (addr, p) in &self.peers {
            if let Some(r) = p.adj_in.get(&prefix) {
                c.push(Candidate {
                    source: Source::Peer(*addr),
                    attrs: r.attrs.clone(),
                    ibgp: p.ibgp,
                    peer_id: p.peer_id,
                    stale: r.stale,
                });
            }
        }
        c
    }

    /// Runs the decision process for these prefixes; installs, uninstalls
    /// and advertises what changed.
    fn decide(&mut self, prefixes: BTreeSet<Ipv4Net>) {
        let mut changed = Vec::new();
        for prefix in prefixes {
            let cands = self.candidates(prefix);
            let new = best(&cands, self.cfg.default_local_pref).map(|i| Best {
                source: cands[i].source,
                attrs: cands[i].attrs.clone(),
            });
            let old = self.loc_rib.get(&prefix);
            if old == new.as_ref() {
                continue;
            }
            let was_bgp = matches!(old, Some(b) if b.source != Source::Local);
            match &new {
                Some(b) => {
                    if let Source::Peer(peer) = b.source {
                        if self.logging {
                            self.log(
                                None,
                                format!(
                                    "best route for {prefix}: via {} from {peer}, as-path {:?}",
                                    b.attrs.next_hop,
                                    b.attrs.path_asns()
                                ),
                            );
                        }
                        self.out.push(Output::Install {
                            prefix,
                            next_hop: b.attrs.next_hop,
                            peer,
                            as_path: b.attrs.as_path.clone(),
                        });
                    } else if was_bgp {
                        self.out.push(Output::Uninstall { prefix });
                    }
                    self.loc_rib.insert(prefix, b.clone());
                }
                None => {
                    if self.logging {
                        self.log(None, format!("no route for {prefix}"));
                    }
                    if was_bgp {
                        self.out.push(Output::Uninstall { prefix });
                    }
                    self.loc_rib.remove(&prefix);
                }
            }
            changed.push(prefix);
        }
        if changed.is_empty() {
            return;
        }
        let up: Vec<PeerAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| p.state == State::Established)
            .map(|(a, _)| *a)
            .collect();
        let mut cache = ExportCache::default();
        for a in up {
            self.export_to_with(a, &changed, &mut cache);
        }
    }

    /// The attributes to advertise `prefix` with to `addr`, or `None` if it
    /// is not advertised to that peer. Peers alike in what the rewrite
    /// depends on share one `Arc` through `cache` (a reflector sends the same
    /// route to hundreds of clients).
    fn export_attrs(
        &self,
        addr: PeerAddr,
        prefix: Ipv4Net,
        cache: &mut ExportCache,
    ) -> Option<Arc<PathAttrs>> {
        let best = self.loc_rib.get(&prefix)?;
        let to = &self.peers[&addr];
        if best.source == Source::Peer(addr) || !to.cfg.export.allows(prefix) {
            return None;
        }
        let from = match best.source {
            Source::Local => None,
            Source::Peer(s) => Some(&self.peers[&s]),
        };
        let from_ibgp = from.is_some_and(|f| f.ibgp);
        let reflecting = to.ibgp && from_ibgp;
        // iBGP split horizon, unless reflecting (RFC 4456 §6): a client's
        // routes go to everyone, a non-client's only to clients.
        if reflecting && !(from.is_some_and(|f| f.cfg.rr_client) || to.cfg.rr_client) {
            return None;
        }
        if reflecting {
            // BIRD's export check (bgp_preexport): not to a session whose
            // cluster id (`rr cluster id` on client sessions, the router id
            // on others) is already in the CLUSTER_LIST.
            let to_cluster = if to.cfg.rr_client {
                self.cfg.effective_cluster_id()
            } else {
                self.cfg.router_id
            };
            if best.attrs.cluster_list.contains(&to_cluster) {
                return None;
            }
        }
        let local = self.local_address(addr);
        let key = ExportKey {
            prefix,
            ibgp: to.ibgp,
            next_hop_self: to.cfg.next_hop_self,
            next_hop_keep: to.cfg.next_hop_keep,
            local,
        };
        if let Some(a) = cache.attrs.get(&key) {
            return Some(a.clone());
        }
        let mut a = (*best.attrs).clone();
        if from.is_some() {
            a.propagate_unknown();
        } else {
            a.next_hop = local;
        }
        if !to.ibgp {
            a.prepend(self.cfg.local_as);
            if !to.cfg.next_hop_keep {
                a.next_hop = local;
            }
            a.local_pref = None;
            a.originator_id = None;
            a.cluster_list.clear();
            if from.is_some() {
                // RFC 4271 §5.1.4: a MED is not passed on to another AS.
                a.med = None;
            }
        } else {
            let default = self.cfg.default_local_pref;
            a.local_pref = Some(if from_ibgp {
                a.local_pref.unwrap_or(default)
            } else {
                default
            });
            if to.cfg.next_hop_self {
                a.next_hop = local;
            }
            if reflecting {
                let f = from.expect("reflecting a peer's route");
                a.originator_id.get_or_insert(f.peer_id);
                // The cluster id of the client side: ours, configured on
                // client sessions (RFC 4456 §8; what BIRD sent in the
                // agreement test).
                a.cluster_list.insert(0, self.cfg.effective_cluster_id());
            }
        }
        let a = Arc::new(a);
        cache.attrs.insert(key, a.clone());
        Some(a)
    }

    /// Brings the peer's Adj-RIB-Out up to date for these prefixes and
    /// sends the UPDATEs that takes.
    fn export_to(&mut self, addr: PeerAddr, prefixes: &[Ipv4Net]) {
        let mut cache = ExportCache::default();
        self.export_to_with(addr, prefixes, &mut cache);
    }

    fn export_to_with(&mut self, addr: PeerAddr, prefixes: &[Ipv4Net], cache: &mut ExportCache) {
        let mut withdraw = Vec::new();
        let mut announce: Vec<(Arc<PathAttrs>, Vec<Ipv4Net>)> = Vec::new();
        // Groups by attributes: the last one first (runs of one route's
        // prefixes), else an index.
        let mut groups: BTreeMap<Arc<PathAttrs>, usize> = BTreeMap::new();
        for &prefix in prefixes {
            let new = self.export_attrs(addr, prefix, cache);
            let p = self.peer(addr);
            match (new, p.adj_out.get(&prefix)) {
                (Some(n), Some(o)) if Arc::ptr_eq(o, &n) || **o == *n => {}
                (Some(n), _) => {
                    p.adj_out.insert(prefix, n.clone());
                    match announce.last_mut() {
                        Some((a, v)) if Arc::ptr_eq(a, &n) || **a == *n => v.push(prefix),
                        _ => match groups.get(&n) {
                            Some(&i) => announce[i].1.push(prefix),
                            None => {
                                groups.insert(n.clone(), announce.len());
                                announce.push((n, vec![prefix]));
                            }
                        },
                    }
                }
                (None, Some(_)) => {
                    p.adj_out.remove(&prefix);
                    withdraw.push(prefix);
                }
                (None, None) => {}
            }
        }
        if withdraw.is_empty() && announce.is_empty() {
            return;
        }
        let cx = self.peers[&addr]
            .session
            .as_ref()
            .map_or(BgpContext::FOUR_OCTET, |s| s.cx);
        if !self.logging {
            // The same UPDATEs for another peer: send the same bytes.
            let plan = Plan {
                four_octet: cx.four_octet_as,
                withdraw,
                announce,
            };
            let i = match cache.plans.iter().position(|(p, _)| *p == plan) {
                Some(i) => i,
                None => {
                    let msgs = encode(&plan.withdraw, &plan.announce, cx);
                    cache.plans.push((plan, msgs));
                    cache.plans.len() - 1
                }
            };
            for m in &cache.plans[i].1 {
                self.out.push(Output::Send(addr, m.clone()));
            }
            return;
        }
        let room = MAX_MESSAGE_LEN - HEADER_LEN - 4;
        for chunk in chunks(&withdraw, room) {
            let u = UpdateRepr {
                withdrawn: chunk,
                ..Default::default()
            };
            self.send(addr, &BgpMessage::Update(u));
        }
        for (attrs, nlri) in announce {
            let attributes = attrs.to_attributes();
            let empty = UpdateRepr {
                attributes: attributes.clone(),
                ..Default::default()
            };
            let room = MAX_MESSAGE_LEN - HEADER_LEN - empty.body_len(cx);
            for chunk in chunks(&nlri, room) {
                let u = UpdateRepr {
                    withdrawn: Vec::new(),
                    attributes: attributes.clone(),
                    nlri: chunk,
                };
                self.send(addr, &BgpMessage::Update(u));
            }
        }
    }
}

/// What an export's attributes depend on besides the Loc-RIB entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ExportKey {
    prefix: Ipv4Net,
    ibgp: bool,
    next_hop_self: bool,
    next_hop_keep: bool,
    local: Ipv4Addr,
}

/// The UPDATEs for one peer: withdrawals, then announcements grouped by
/// attributes.
#[derive(Debug)]
struct Plan {
    four_octet: bool,
    withdraw: Vec<Ipv4Net>,
    announce: Vec<(Arc<PathAttrs>, Vec<Ipv4Net>)>,
}

impl PartialEq for Plan {
    fn eq(&self, o: &Plan) -> bool {
        self.four_octet == o.four_octet
            && self.withdraw == o.withdraw
            && self.announce.len() == o.announce.len()
            && self
                .announce
                .iter()
                .zip(&o.announce)
                .all(|((a, x), (b, y))| x == y && (Arc::ptr_eq(a, b) || **a == **b))
    }
}

/// Shared across the peers of one export pass: rewritten attributes, and
/// encoded UPDATEs.
#[derive(Default)]
struct ExportCache {
    attrs: BTreeMap<ExportKey, Arc<PathAttrs>>,
    plans: Vec<(Plan, Vec<Vec<u8>>)>,
}

/// The UPDATE messages of a plan, as `export_to` sends them one by one.
fn encode(
    withdraw: &[Ipv4Net],
    announce: &[(Arc<PathAttrs>, Vec<Ipv4Net>)],
    cx: BgpContext,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let room = MAX_MESSAGE_LEN - HEADER_LEN - 4;
    for chunk in chunks(withdraw, room) {
        let u = UpdateRepr {
            withdrawn: chunk,
            ..Default::default()
        };
        out.push(BgpMessage::Update(u).to_bytes(cx));
    }
    for (attrs, nlri) in announce {
        let attributes = attrs.to_attributes();
        let empty = UpdateRepr {
            attributes: attributes.clone(),
            ..Default::default()
        };
        let room = MAX_MESSAGE_LEN - HEADER_LEN - empty.body_len(cx);
        for chunk in chunks(nlri, room) {
            let u = UpdateRepr {
                withdrawn: Vec::new(),
                attributes: attributes.clone(),
                nlri: chunk,
            };
            out.push(BgpMessage::Update(u).to_bytes(cx));
        }
    }
    out
}

/// Splits prefixes into runs whose encoding fits in `room` bytes.
fn chunks(prefixes: &[Ipv4Net], room: usize) -> Vec<Vec<Ipv4Net>> {
    let mut out: Vec<Vec<Ipv4Net>> = Vec::new();
    let mut used = 0;
    for p in prefixes {
        let n = prefix_len_on_wire(p);
        if out.is_empty() || used + n > room {
            out.push(Vec::new());
            used = 0;
        }
        out.last_mut().expect("pushed").push(*p);
        used += n;
    }
    out
}
