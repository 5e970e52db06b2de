//! BIRD, the BGP daemon calico/node runs, as an application of the Linux
//! model: the sans-IO [`Speaker`](crate::bgp::Speaker) bound to the
//! simulated TCP sockets of its host's root namespace, and to its kernel
//! routing table.
//!
//! The adapter's rules:
//! - `Listen` is a TCP listener on 0.0.0.0:179; `Connect(peer)` a TCP
//!   connection from the neighbour's local address to `peer:179`. Sessions
//!   therefore ride the simulated underlay: a link down, a FORWARD drop of
//!   port 179 or a lost route takes them down as it would on Linux.
//! - One connection per peer. A connection from an address that is not a
//!   configured neighbour, or from a neighbour the speaker does not wait for
//!   ([`Speaker::accepts`]), is closed at once. When both sides connect at
//!   once (a collision: our connection still opening when the peer's
//!   arrives), the connection opened by the side with the higher address
//!   survives (RFC 4271 §6.8 compares BGP identifiers, which are the
//!   addresses in every configuration podpath generates).
//! - A received FIN or a reset is `TransportClosed`; the speaker's own
//!   `Close` closes the socket with a FIN after what was queued (the
//!   NOTIFICATION first, as BIRD does).
//! - `Install`/`Uninstall` program the kernel's main table as BIRD's kernel
//!   protocol does with Calico's export filter: inside an IP pool in IPIP
//!   mode `PREFIX via PEER dev tunl0 proto bird onlink`; otherwise the next
//!   hop is resolved through the kernel table (BIRD's `gateway recursive`),
//!   giving `PREFIX via GW dev DEV proto bird`, or `unreachable PREFIX proto
//!   bird` when it cannot be resolved (what BIRD 2.0.12 installs, checked
//!   on this project's machines). The node's own blocks get `blackhole
//!   PREFIX proto bird` (Calico's static protocol).
//! - Timers are scheduler events, cancelled when replaced.
//!
//! Every change to a kernel route is kept in [`World::bgp_changes`] and
//! every message counted in [`World::bgp_counters`], for the convergence
//! report.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use sim_core::net::Ipv4Net;
use sim_core::packet::Payload;
use sim_core::sched::EventId;
use sim_core::time::SimTime;
use sim_core::trace::RouteType;
use sim_core::wire::bgp::AsSegment;

use crate::bgp::{Input, LogLine, Output, PeerAddr, Speaker, SpeakerConfig, State, TimerKind};
use crate::cmd::{Scope, TABLE_MAIN};
use crate::linux::apps::App;
use crate::linux::fib::{Flow, Nexthop, Nexthops, Origin, PROTO_BIRD, Route};
use crate::linux::socket::Endpoint;
use crate::linux::tcp::TcpOpts;
use crate::linux::traffic::{SockEvent, SockRef};
use crate::linux::{Cx, Event, HostId, NsId, World};

/// BGP's port.
pub const BGP_PORT: u16 = 179;

/// Calico's IP pool `ipipMode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IpipMode {
    Always,
    CrossSubnet,
    Never,
}

impl IpipMode {
    pub fn as_str(self) -> &'static str {
        match self {
            IpipMode::Always => "Always",
            IpipMode::CrossSubnet => "CrossSubnet",
            IpipMode::Never => "Never",
        }
    }
}

/// What a host's BIRD runs with: its configuration file, in podpath's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BirdSetup {
    pub config: SpeakerConfig,
    /// Prefixes originated (a Calico node's IPAM blocks; a router's networks).
    pub originate: Vec<Ipv4Net>,
    /// IP pools and their IPIP mode: routes inside a pool in IPIP mode go
    /// through `tunl0`.
    pub pools: Vec<(Ipv4Net, IpipMode)>,
    /// Blackhole routes for these prefixes (a Calico node's own blocks).
    pub blackholes: Vec<Ipv4Net>,
}

/// BGP converged by the fabric instead of BIRDs over simulated TCP (the
/// scenario's BGP engine `fabric`, for clusters too large for the full
/// model): the fabric's answer and which of its nodes each host is.
#[derive(Debug)]
pub struct FabricBgp {
    /// What each node's BIRD installs, or why the fabric did not converge
    /// (a bound). Only this is kept of the converged speakers.
    pub routes: Result<FabricRoutes, crate::bgp::fabric::FabricError>,
    pub node_of: BTreeMap<HostId, usize>,
    /// When the routes are installed: BIRD's start plus the fabric's time
    /// to quiescence.
    pub converged_at: SimTime,
    /// The fabric's messages, as `World::bgp_counters` counts them.
    pub counters: BgpCounters,
}

/// A converged fabric's BGP best routes learned from peers, per node: what
/// `FabricInstall` puts in each host's kernel table, and all it needs (the
/// converged speakers, several times larger, are dropped once this is
/// taken from them).
#[derive(Debug, Default)]
pub struct FabricRoutes {
    /// Per node, in its Loc-RIB's (prefix) order: the prefix and its
    /// route's index in `attrs`.
    pub per_node: Vec<Vec<(Ipv4Net, u32)>>,
    /// The distinct (peer learned from, next hop, AS path) of those routes.
    pub attrs: Vec<FabricAttrs>,
}

/// What a kernel route BIRD installs depends on, besides its prefix.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FabricAttrs {
    pub peer: PeerAddr,
    pub next_hop: Ipv4Addr,
    pub as_path: Vec<AsSegment>,
}

impl FabricRoutes {
    /// The Loc-RIBs' peer-learned bests of `nodes` nodes.
    pub fn new(conv: &crate::bgp::fabric::Converged, nodes: usize) -> FabricRoutes {
        let mut index: BTreeMap<FabricAttrs, u32> = BTreeMap::new();
        // The same attributes (one `Rc`, shared by every node that learned
        // the route from the same reflector) are looked up once per peer:
        // by address, only looked up (never iterated), while the speakers
        // hold them.
        let mut seen: indexmap::IndexMap<(PeerAddr, usize), u32, crate::bgp::pool::Fx> =
            indexmap::IndexMap::default();
        let mut attrs = Vec::new();
        let per_node = (0..nodes)
            .map(|node| {
                let rib = conv.loc_rib(node);
                let mut v = Vec::with_capacity(rib.len());
                for (prefix, peer, a) in rib.peer_bests() {
                    let key = (peer, std::rc::Rc::as_ptr(a) as usize);
                    let ix = match seen.get(&key) {
                        Some(&ix) => ix,
                        None => {
                            let fa = FabricAttrs {
                                peer,
                                next_hop: a.next_hop,
                                as_path: a.as_path.clone(),
                            };
                            let ix = *index.entry(fa).or_insert_with_key(|fa| {
                                attrs.push(fa.clone());
                                (attrs.len() - 1) as u32
                            });
                            seen.insert(key, ix);
                            ix
                        }
                    };
                    v.push((prefix, ix));
                }
                v.shrink_to_fit();
                v
            })
            .collect();
        FabricRoutes { per_node, attrs }
    }
}

/// The kernel route changes BIRD made, in time order, as the convergence
/// report reads them ([`World::bgp_changes_since`]).
#[derive(Clone, Debug, Default)]
pub struct BgpChanges {
    records: Vec<ChangeRecord>,
    /// Route changes in all records.
    count: usize,
}

#[derive(Clone, Debug)]
enum ChangeRecord {
    One(RouteChange),
    /// A `FabricInstall`: every route of the fabric's node for this host
    /// (`FabricRoutes::per_node`), in order, at one time: one record per
    /// host instead of one per route (25 million at 5,000 nodes).
    Fabric {
        time: SimTime,
        host: HostId,
        node: u32,
    },
}

impl BgpChanges {
    /// How many route changes were made.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Where the changes made from now on begin (for
    /// [`World::bgp_changes_since`]).
    pub fn mark(&self) -> usize {
        self.records.len()
    }

    fn push(&mut self, c: RouteChange) {
        self.records.push(ChangeRecord::One(c));
        self.count += 1;
    }
}

/// A kernel route BIRD installed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    pub next_hop: Ipv4Addr,
    pub peer: PeerAddr,
    pub as_path: Vec<AsSegment>,
    /// The route as the kernel holds it (None: not installable).
    pub rtype: RouteType,
    pub at: SimTime,
}

/// One change BIRD made to a kernel table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteChange {
    pub time: SimTime,
    pub host: HostId,
    pub prefix: Ipv4Net,
    /// The new next hop (`None`: the route was removed).
    pub via: Option<Ipv4Addr>,
}

/// BGP messages sent, all speakers together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BgpCounters {
    pub opens: u64,
    pub updates: u64,
    /// UPDATE messages that withdraw routes.
    pub withdrawals: u64,
    pub keepalives: u64,
    pub notifications: u64,
}

#[derive(Clone, Debug)]
struct Conn {
    sock: u32,
    /// We opened it (connect) rather than accepted it.
    outgoing: bool,
    established: bool,
}

/// A running (or stopped) BIRD.
#[derive(Clone, Debug)]
pub struct Bird {
    pub host: HostId,
    pub ns: NsId,
    pub speaker: Speaker,
    pub setup: Arc<BirdSetup>,
    pub running: bool,
    pub started_at: SimTime,
    listener: Option<u32>,
    conns: BTreeMap<PeerAddr, Conn>,
    by_sock: BTreeMap<u32, PeerAddr>,
    timers: BTreeMap<(PeerAddr, TimerKind), EventId>,
    /// Neighbour addresses, in configuration order (timer tags index it).
    peers: Vec<PeerAddr>,
    /// Each session's state and when it entered it (`show protocols`).
    pub since: BTreeMap<PeerAddr, (State, SimTime)>,
    /// When each Loc-RIB entry last changed (`show route`).
    pub changed_at: BTreeMap<Ipv4Net, SimTime>,
    pub installed: BTreeMap<Ipv4Net, Installed>,
    pub log: Vec<(SimTime, LogLine)>,
}

const TIMER_KINDS: [TimerKind; 5] = [
    TimerKind::ConnectRetry,
    TimerKind::Hold,
    TimerKind::Keepalive,
    TimerKind::IdleHold,
    TimerKind::GracefulRestart,
];

fn timer_tag(peer_ix: usize, kind: TimerKind) -> u32 {
    let k = TIMER_KINDS.iter().position(|&x| x == kind).unwrap_or(0);
    (peer_ix * 8 + k) as u32
}

/// BIRD's `show route` preference of a BGP route.
pub const BGP_PREFERENCE: u32 = 100;

impl World {
    fn bird(&mut self, app: usize) -> &mut Bird {
        match &mut self.apps[app] {
            App::Bird(b) => b,
            _ => unreachable!("app {app} is bird"),
        }
    }

    /// The BIRD running on `host`, if any.
    pub fn bird_of(&self, host: HostId) -> Option<&Bird> {
        self.bird_apps
            .get(&host)
            .and_then(|&a| match &self.apps[a] {
                App::Bird(b) if b.running => Some(&**b),
                _ => None,
            })
    }

    /// Every host's BIRD (running or not), in host order.
    pub fn birds(&self) -> Vec<&Bird> {
        self.bird_apps
            .values()
            .filter_map(|&a| match &self.apps[a] {
                App::Bird(b) => Some(&**b),
                _ => None,
            })
            .collect()
    }

    /// `bird [-R]`: starts the host's BIRD with the configuration the
    /// scenario gave it. `recovering`: started with `-R` (graceful restart
    /// with the forwarding state preserved, as calico/node starts it).
    pub fn start_bird(
        &mut self,
        cx: &mut Cx,
        host: HostId,
        recovering: bool,
    ) -> Result<(), String> {
        let Some(setup) = self.bird_setups.get(&host).cloned() else {
            return Err(
                "bird: Unable to open configuration file /etc/bird/bird.conf: No such file or directory (the scenario's bgp section configures no speaker on this host)"
                    .into(),
            );
        };
        if self.bird_of(host).is_some() {
            return Err("bird: I found another BIRD running.".into());
        }
        let ns = self.hosts[host.ix()].root;
        let name = self.hosts[host.ix()].name.clone();
        let rng = self.seed.stream(&format!("bgp:{name}"));
        let speaker = if recovering {
            Speaker::restarting(setup.config.clone(), rng)
        } else {
            Speaker::new(setup.config.clone(), rng)
        };
        let peers: Vec<PeerAddr> = setup.config.neighbors.iter().map(|n| n.address).collect();
        let app = self.apps.len();
        self.apps.push(App::Bird(Box::new(Bird {
            host,
            ns,
            speaker,
            setup: setup.clone(),
            running: true,
            started_at: cx.now,
            listener: None,
            conns: BTreeMap::new(),
            by_sock: BTreeMap::new(),
            timers: BTreeMap::new(),
            since: peers.iter().map(|&p| (p, (State::Idle, cx.now))).collect(),
            peers,
            changed_at: BTreeMap::new(),
            installed: BTreeMap::new(),
            log: Vec::new(),
        })));
        self.bird_apps.insert(host, app);
        self.bird_blackholes(ns, &setup);
        let mut inputs = vec![Input::Start];
        inputs.extend(setup.originate.iter().map(|&p| Input::Originate(p)));
        self.bird_feed(cx, app, inputs);
        Ok(())
    }

    /// Calico's static protocol: the node's own blocks as blackholes.
    fn bird_blackholes(&mut self, ns: NsId, setup: &BirdSetup) {
        for &p in &setup.blackholes {
            let p = p.network();
            let t = self.namespaces[ns.ix()].fib.table_mut(TABLE_MAIN);
            if !t
                .exact(p)
                .iter()
                .any(|r| r.proto == PROTO_BIRD && r.rtype == RouteType::Blackhole)
            {
                t.insert(Route {
                    table: TABLE_MAIN,
                    rtype: RouteType::Blackhole,
                    prefix: p,
                    metric: 0,
                    proto: PROTO_BIRD,
                    scope: Scope::Global,
                    src: None,
                    nexthops: Nexthops::new(),
                    mtu: None,
                    origin: Some(Arc::new(Arc::from(
                        "BIRD static protocol (the node's own block)",
                    ))),
                });
            }
        }
        self.namespaces[ns.ix()].generation.config += 1;
    }

    /// BIRD stops. `graceful`: `birdc down` (a Cease NOTIFICATION to every
    /// established peer, then FIN); otherwise the process is killed and the
    /// kernel closes its sockets (FIN, no NOTIFICATION: peers with graceful
    /// restart keep its routes). Either way its kernel routes stay
    /// (`persist`, as Calico configures the kernel protocol).
    pub fn stop_bird(&mut self, cx: &mut Cx, host: HostId, graceful: bool) -> Result<(), String> {
        let Some(&app) = self.bird_apps.get(&host) else {
            return Err("Unable to connect to server control socket (/var/run/calico/bird.ctl): No such file or directory".into());
        };
        if !self.bird(app).running {
            return Err("Unable to connect to server control socket (/var/run/calico/bird.ctl): Connection refused".into());
        }
        if graceful {
            let peers: Vec<PeerAddr> = self.bird(app).peers.clone();
            let inputs = peers
                .into_iter()
                .filter(|&p| {
                    matches!(
                        self.bird_ref(app).speaker.state(p),
                        Some(State::Established | State::OpenConfirm | State::OpenSent)
                    )
                })
                .map(Input::AdminReset)
                .collect();
            self.bird_feed(cx, app, inputs);
        }
        let b = self.bird(app);
        b.running = false;
        let socks: Vec<u32> = b.conns.values().map(|c| c.sock).chain(b.listener).collect();
        let timers: Vec<EventId> = b.timers.values().copied().collect();
        b.conns.clear();
        b.by_sock.clear();
        b.timers.clear();
        b.listener = None;
        for t in timers {
            cx.sched.cancel(t);
        }
        for s in socks {
            self.sockets.tcp[s as usize].owner = None;
            self.tcp_close(cx, s);
        }
        Ok(())
    }

    fn bird_ref(&self, app: usize) -> &Bird {
        match &self.apps[app] {
            App::Bird(b) => b,
            _ => unreachable!("app {app} is bird"),
        }
    }

    /// `birdc restart NAME|all`: resets sessions (Cease, Administrative Reset).
    pub fn bird_restart(
        &mut self,
        cx: &mut Cx,
        host: HostId,
        which: &str,
    ) -> Result<String, String> {
        let app = self.running_bird(host)?;
        let cfg = &self.bird_ref(app).setup.config;
        let peers: Vec<PeerAddr> = cfg
            .neighbors
            .iter()
            .filter(|n| which == "all" || n.name == which)
            .map(|n| n.address)
            .collect();
        if peers.is_empty() {
            return Err(format!(
                "syntax error, unexpected CF_SYM_UNDEFINED (no protocol named {which})"
            ));
        }
        let names: Vec<String> = cfg
            .neighbors
            .iter()
            .filter(|n| peers.contains(&n.address))
            .map(|n| format!("{}: restarted\n", n.name))
            .collect();
        self.bird_feed(cx, app, peers.into_iter().map(Input::AdminReset).collect());
        Ok(names.concat())
    }

    /// The application index of the host's running BIRD.
    pub fn running_bird_app(&self, host: HostId) -> Option<usize> {
        self.running_bird(host).ok()
    }

    pub(crate) fn running_bird(&self, host: HostId) -> Result<usize, String> {
        match self.bird_apps.get(&host) {
            Some(&a) if self.bird_ref(a).running => Ok(a),
            _ => Err("Unable to connect to server control socket (/var/run/calico/bird.ctl): No such file or directory".into()),
        }
    }

    /// Feeds inputs to the speaker and carries out what it asks, until
    /// nothing is left (outputs may produce inputs: a refused connect).
    fn bird_feed(&mut self, cx: &mut Cx, app: usize, inputs: Vec<Input>) {
        let mut queue: std::collections::VecDeque<Input> = inputs.into();
        while let Some(input) = queue.pop_front() {
            if !self.bird(app).running {
                return;
            }
            let outs = self.bird(app).speaker.handle(cx.now, input);
            for o in outs {
                self.bird_output(cx, app, o, &mut queue);
            }
            self.bird_note_states(cx.now, app);
        }
    }

    fn bird_note_states(&mut self, now: SimTime, app: usize) {
        let b = self.bird(app);
        for p in b.peers.clone() {
            let st = b.speaker.state(p).unwrap_or(State::Idle);
            let e = b.since.entry(p).or_insert((st, now));
            if e.0 != st {
                *e = (st, now);
            }
        }
    }

    fn bird_output(
        &mut self,
        cx: &mut Cx,
        app: usize,
        o: Output,
        queue: &mut std::collections::VecDeque<Input>,
    ) {
        let (ns, host) = {
            let b = self.bird(app);
            (b.ns, b.host)
        };
        match o {
            Output::Listen => {
                match self.tcp_listen(cx, ns, app, "bird", None, BGP_PORT, TcpOpts::default()) {
                    Ok(s) => self.bird(app).listener = Some(s),
                    Err(e) => {
                        let now = cx.now;
                        self.bird(app).log.push((
                            now,
                            LogLine {
                                peer: None,
                                text: format!("cannot listen on port 179: {}", e.text()),
                            },
                        ));
                    }
                }
            }
            Output::Connect(peer) => {
                let src = self
                    .bird(app)
                    .speaker
                    .config()
                    .neighbor(peer)
                    .and_then(|n| n.local_address);
                let r = self.tcp_connect(
                    cx,
                    ns,
                    app,
                    "bird",
                    src,
                    None,
                    Endpoint::new(peer, BGP_PORT),
                    TcpOpts::default(),
                );
                match r {
                    Ok(s) => {
                        let b = self.bird(app);
                        b.conns.insert(
                            peer,
                            Conn {
                                sock: s,
                                outgoing: true,
                                established: false,
                            },
                        );
                        b.by_sock.insert(s, peer);
                    }
                    Err(_) => queue.push_back(Input::TransportClosed(peer)),
                }
            }
            Output::Send(peer, bytes) => {
                self.bgp_count(&bytes);
                if let Some(c) = self.bird(app).conns.get(&peer) {
                    let s = c.sock;
                    self.tcp_write(cx, s, Some(bytes.to_vec()), 0);
                }
            }
            Output::Close(peer) => {
                let b = self.bird(app);
                if let Some(c) = b.conns.remove(&peer) {
                    b.by_sock.remove(&c.sock);
                    self.sockets.tcp[c.sock as usize].owner = None;
                    self.tcp_close(cx, c.sock);
                }
            }
            Output::SetTimer(peer, kind, at) => {
                let b = self.bird(app);
                let Some(ix) = b.peers.iter().position(|&p| p == peer) else {
                    return;
                };
                if let Some(old) = b.timers.remove(&(peer, kind)) {
                    cx.sched.cancel(old);
                }
                let id = cx.sched.schedule_at(
                    at.max(cx.now),
                    Event::App {
                        app,
                        tag: timer_tag(ix, kind),
                    },
                );
                self.bird(app).timers.insert((peer, kind), id);
            }
            Output::CancelTimer(peer, kind) => {
                if let Some(old) = self.bird(app).timers.remove(&(peer, kind)) {
                    cx.sched.cancel(old);
                }
            }
            Output::Install {
                prefix,
                next_hop,
                peer,
                as_path,
            } => self.bird_install(cx.now, app, host, prefix, next_hop, peer, as_path),
            Output::Uninstall { prefix } => self.bird_uninstall(cx.now, app, host, prefix),
            Output::Log(l) => {
                let now = cx.now;
                self.bird(app).log.push((now, l));
            }
        }
    }

    fn bgp_count(&mut self, msg: &[u8]) {
        let c = &mut self.bgp_counters;
        match msg.get(18) {
            Some(1) => c.opens += 1,
            Some(2) => {
                c.updates += 1;
                let wlen = msg
                    .get(19..21)
                    .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
                if wlen > 0 {
                    c.withdrawals += 1;
                }
            }
            Some(3) => c.notifications += 1,
            Some(4) => c.keepalives += 1,
            _ => {}
        }
    }

    /// Whether `a` is on a subnet directly connected to `ns`.
    fn on_link(&self, ns: NsId, a: Ipv4Addr) -> bool {
        self.namespaces[ns.ix()]
            .addrs
            .iter()
            .any(|x| x.plen < 32 && x.net().contains(a) && self.oper_up(x.dev))
    }

    #[allow(clippy::too_many_arguments)]
    fn bird_install(
        &mut self,
        now: SimTime,
        app: usize,
        host: HostId,
        prefix: Ipv4Net,
        next_hop: Ipv4Addr,
        peer: PeerAddr,
        as_path: Vec<AsSegment>,
    ) {
        let (ns, setup) = {
            let b = self.bird_ref(app);
            (b.ns, b.setup.clone())
        };
        let route = self.bird_kernel_route(ns, &setup, prefix, next_hop, peer, &as_path);
        let rtype = route.rtype;
        self.bird_put(ns, route);
        self.bgp_changes.push(RouteChange {
            time: now,
            host,
            prefix,
            via: Some(next_hop),
        });
        self.namespaces[ns.ix()].generation.config += 1;
        let b = self.bird(app);
        b.installed.insert(
            prefix,
            Installed {
                next_hop,
                peer,
                as_path,
                rtype,
                at: now,
            },
        );
        b.changed_at.insert(prefix, now);
    }

    /// Puts a BGP route in the main table in place of BIRD's previous route
    /// for its prefix (not the blackhole of an own block). The caller
    /// records the change and bumps the namespace's generation.
    fn bird_put(&mut self, ns: NsId, route: Route) {
        let t = self.namespaces[ns.ix()].fib.table_mut(TABLE_MAIN);
        t.replace_where(route, |r| {
            r.proto == PROTO_BIRD && r.rtype != RouteType::Blackhole
        });
    }

    /// The kernel route BIRD's kernel protocol installs for a BGP best
    /// route: through `tunl0` (onlink) when the prefix is in an IPIP pool
    /// (`CrossSubnet`: only to a next hop off the node's subnets), else
    /// through the kernel's own route to the next hop (`gateway
    /// recursive`), else `unreachable`.
    fn bird_kernel_route(
        &mut self,
        ns: NsId,
        setup: &BirdSetup,
        prefix: Ipv4Net,
        next_hop: Ipv4Addr,
        peer: PeerAddr,
        as_path: &[AsSegment],
    ) -> Route {
        let origin = self.bird_route_origin(setup, peer, next_hop, as_path);
        let tunl0 = self.dev_by_name(ns, "tunl0");
        self.bird_kernel_route_from(ns, setup, prefix, next_hop, origin, tunl0)
    }

    /// The text of a BGP route's origin (shown in traces): the same on
    /// every node that learned the route from the same peer (all clients of
    /// a reflector), so one copy for all.
    fn bird_route_origin(
        &mut self,
        setup: &BirdSetup,
        peer: PeerAddr,
        next_hop: Ipv4Addr,
        as_path: &[AsSegment],
    ) -> Origin {
        let name = setup
            .config
            .neighbor(peer)
            .map_or_else(|| peer.to_string(), |n| n.name.clone());
        let path_text = as_path_text(as_path);
        let path_text = if path_text.is_empty() {
            "(empty)".to_string()
        } else {
            path_text
        };
        self.route_origins
            .entry((peer, next_hop, name, path_text))
            .or_insert_with_key(|(peer, next_hop, name, path_text)| {
                Arc::new(Arc::from(format!(
                    "BGP peer {peer} ({name}), AS path {path_text}, next hop {next_hop}"
                )))
            })
            .clone()
    }

    /// `bird_route_origin` for the fabric's route attributes `a`: the text
    /// is the same on every host that names the peer alike (all clients of
    /// a reflector), so the last one is remembered per attributes, sparing
    /// the interner's search for each of the hosts' routes.
    fn fabric_origin(&mut self, setup: &BirdSetup, a: usize, attrs: &FabricAttrs) -> Origin {
        let name: std::borrow::Cow<str> = setup
            .config
            .neighbor(attrs.peer)
            .map_or_else(|| attrs.peer.to_string().into(), |n| n.name.as_str().into());
        if let Some((known, o)) = &self.fabric_origins[a]
            && **known == *name
        {
            return o.clone();
        }
        let o = self.bird_route_origin(setup, attrs.peer, attrs.next_hop, &attrs.as_path);
        self.fabric_origins[a] = Some((name.into_owned(), o.clone()));
        o
    }

    /// `bird_kernel_route` given the route's origin text and the host's
    /// `tunl0` (a bulk install looks them up once).
    fn bird_kernel_route_from(
        &mut self,
        ns: NsId,
        setup: &BirdSetup,
        prefix: Ipv4Net,
        next_hop: Ipv4Addr,
        origin: Origin,
        tunl0: Option<crate::linux::DevId>,
    ) -> Route {
        let ipip_mode = setup
            .pools
            .iter()
            .find(|(p, _)| p.len <= prefix.len && p.contains(prefix.addr))
            .map_or(IpipMode::Never, |x| x.1);
        let ipip = match ipip_mode {
            IpipMode::Always => true,
            IpipMode::CrossSubnet => !self.on_link(ns, next_hop),
            IpipMode::Never => false,
        };
        let mut route = Route {
            table: TABLE_MAIN,
            rtype: RouteType::Unicast,
            prefix,
            metric: 0,
            proto: PROTO_BIRD,
            scope: Scope::Global,
            src: None,
            nexthops: Nexthops::new(),
            mtu: None,
            origin: Some(origin),
        };
        match (ipip, tunl0) {
            (true, Some(dev)) => {
                route.nexthops.push(Nexthop {
                    gw: Some(next_hop),
                    dev,
                    weight: 1,
                    onlink: true,
                });
            }
            _ => {
                // `gateway recursive`: resolve the next hop through the
                // kernel table (not through BGP's own routes).
                match self.bird_resolve(ns, next_hop) {
                    Some((gw, dev)) => route.nexthops.push(Nexthop {
                        gw: Some(gw),
                        dev,
                        weight: 1,
                        onlink: false,
                    }),
                    None => route.rtype = RouteType::Unreachable,
                }
            }
        }
        route
    }

    /// The route changes made since `mark` ([`BgpChanges::mark`]), in order.
    pub fn bgp_changes_since(&self, mark: usize) -> impl Iterator<Item = RouteChange> + '_ {
        let fabric = self
            .bgp_fabric
            .as_ref()
            .and_then(|f| f.routes.as_ref().ok());
        let attrs = fabric.map_or(&[][..], |f| &f.attrs[..]);
        self.bgp_changes.records[mark..].iter().flat_map(move |r| {
            let (one, many, time, host) = match *r {
                ChangeRecord::One(c) => (Some(c), &[][..], c.time, c.host),
                ChangeRecord::Fabric { time, host, node } => {
                    let f = fabric.expect("a fabric install has its fabric");
                    (None, &f.per_node[node as usize][..], time, host)
                }
            };
            one.into_iter()
                .chain(many.iter().map(move |&(prefix, a)| RouteChange {
                    time,
                    host,
                    prefix,
                    via: Some(attrs[a as usize].next_hop),
                }))
        })
    }

    /// `BirdCmd::FabricInstall`: what this host's BIRD would have installed
    /// by the time BGP converged, as the fabric computed it: its blackholes,
    /// then a kernel route per BGP best route, made as `bird_install` makes
    /// them. The first host installed also adds the fabric's message counts.
    pub fn fabric_install(&mut self, now: SimTime, host: HostId) -> Result<String, String> {
        let Some(fb) = self.bgp_fabric.clone() else {
            return Err("bird: no BGP fabric in this scenario".into());
        };
        let (Some(&node), Some(setup)) =
            (fb.node_of.get(&host), self.bird_setups.get(&host).cloned())
        else {
            return Err("bird: this host has no speaker in the BGP fabric".into());
        };
        if fb.node_of.keys().next() == Some(&host) {
            let c = &mut self.bgp_counters;
            c.opens += fb.counters.opens;
            c.updates += fb.counters.updates;
            c.withdrawals += fb.counters.withdrawals;
            c.keepalives += fb.counters.keepalives;
            c.notifications += fb.counters.notifications;
        }
        let plan = match &fb.routes {
            Ok(c) => c,
            Err(e) => {
                return Err(format!(
                    "bird (BGP engine fabric): BGP did not converge: {e}"
                ));
            }
        };
        let ns = self.hosts[host.ix()].root;
        self.bird_blackholes(ns, &setup);
        let routes = &plan.per_node[node];
        let n = routes.len();
        let tunl0 = self.dev_by_name(ns, "tunl0");
        if self.fabric_origins.len() != plan.attrs.len() {
            self.fabric_origins = vec![None; plan.attrs.len()];
        }
        let mut put = Vec::with_capacity(n);
        for &(prefix, a) in routes {
            let attrs = &plan.attrs[a as usize];
            let origin = self.fabric_origin(&setup, a as usize, attrs);
            put.push(self.bird_kernel_route_from(
                ns,
                &setup,
                prefix,
                attrs.next_hop,
                origin,
                tunl0,
            ));
        }
        // As `bird_put` route by route, in one pass (the prefixes are new
        // but for a script's `proto bird` routes).
        let t = self.namespaces[ns.ix()].fib.table_mut(TABLE_MAIN);
        t.reserve(n);
        t.replace_all(put, |r| {
            r.proto == PROTO_BIRD && r.rtype != RouteType::Blackhole
        });
        // One record for all (`bgp_changes_since` lists them route by route).
        if n > 0 {
            self.bgp_changes.records.push(ChangeRecord::Fabric {
                time: now,
                host,
                node: node as u32,
            });
            self.bgp_changes.count += n;
        }
        self.namespaces[ns.ix()].generation.config += 1;
        Ok(format!(
            "bird (BGP engine fabric): {n} routes installed as BGP converged at {}\n",
            fb.converged_at
        ))
    }

    fn bird_uninstall(&mut self, now: SimTime, app: usize, host: HostId, prefix: Ipv4Net) {
        let b = self.bird(app);
        b.changed_at.insert(prefix, now);
        if b.installed.remove(&prefix).is_none() {
            return;
        }
        let ns = b.ns;
        let t = self.namespaces[ns.ix()].fib.table_mut(TABLE_MAIN);
        t.remove_where(prefix, |r| {
            r.proto == PROTO_BIRD && r.rtype != RouteType::Blackhole
        });
        self.namespaces[ns.ix()].generation.config += 1;
        self.bgp_changes.push(RouteChange {
            time: now,
            host,
            prefix,
            via: None,
        });
    }

    /// A timer of a BIRD.
    pub(crate) fn bird_timer(&mut self, cx: &mut Cx, app: usize, tag: u32) {
        let b = self.bird(app);
        if !b.running {
            return;
        }
        let (ix, k) = ((tag / 8) as usize, (tag % 8) as usize);
        let (Some(&peer), Some(&kind)) = (b.peers.get(ix), TIMER_KINDS.get(k)) else {
            return;
        };
        b.timers.remove(&(peer, kind));
        self.bird_feed(cx, app, vec![Input::Timer(peer, kind)]);
    }

    /// What BIRD's sockets tell it.
    pub(crate) fn bird_sock_event(
        &mut self,
        cx: &mut Cx,
        app: usize,
        sock: SockRef,
        ev: SockEvent,
    ) {
        let SockRef::Tcp(s) = sock else { return };
        if !self.bird(app).running {
            return;
        }
        match ev {
            SockEvent::Accepted { .. } => {
                let remote = self.sockets.tcp[s as usize].remote.addr;
                let b = self.bird_ref(app);
                let known = b.speaker.config().neighbor(remote).is_some();
                let accepts = b.speaker.accepts(remote);
                let existing = b.conns.get(&remote).cloned();
                let mine = b.speaker.config().router_id;
                let take = match existing {
                    None => known && accepts,
                    Some(ref c) if c.established || !c.outgoing => false,
                    // A collision: the connection opened by the higher
                    // address survives.
                    Some(_) => accepts && remote > mine,
                };
                if !take {
                    self.sockets.tcp[s as usize].owner = None;
                    self.tcp_close(cx, s);
                    return;
                }
                if let Some(old) = existing {
                    self.bird(app).by_sock.remove(&old.sock);
                    self.sockets.tcp[old.sock as usize].owner = None;
                    self.tcp_close(cx, old.sock);
                }
                let b = self.bird(app);
                b.conns.insert(
                    remote,
                    Conn {
                        sock: s,
                        outgoing: false,
                        established: true,
                    },
                );
                b.by_sock.insert(s, remote);
                self.bird_feed(cx, app, vec![Input::TransportConnected(remote)]);
            }
            SockEvent::Connected => {
                let Some(&peer) = self.bird(app).by_sock.get(&s) else {
                    return;
                };
                if let Some(c) = self.bird(app).conns.get_mut(&peer) {
                    c.established = true;
                }
                self.bird_feed(cx, app, vec![Input::TransportConnected(peer)]);
            }
            SockEvent::Data(p) => {
                let Some(&peer) = self.bird(app).by_sock.get(&s) else {
                    return;
                };
                let bytes = match p {
                    Payload::Data(d) => d,
                    Payload::Filler(n) => vec![0; n],
                };
                self.bird_feed(cx, app, vec![Input::TransportBytes(peer, bytes)]);
            }
            SockEvent::Eof | SockEvent::Closed(_) => {
                let b = self.bird(app);
                let Some(peer) = b.by_sock.remove(&s) else {
                    return;
                };
                b.conns.remove(&peer);
                self.sockets.tcp[s as usize].owner = None;
                self.tcp_close(cx, s);
                self.bird_feed(cx, app, vec![Input::TransportClosed(peer)]);
            }
            _ => {}
        }
    }
}

/// An AS path as BIRD prints it: `64512 65001`, sets in braces.
pub fn as_path_text(p: &[AsSegment]) -> String {
    use sim_core::wire::bgp::AsSegmentKind;
    let mut parts = Vec::new();
    for s in p {
        let asns: Vec<String> = s.asns.iter().map(u32::to_string).collect();
        match s.kind {
            AsSegmentKind::Set | AsSegmentKind::ConfedSet => {
                parts.push(format!("{{{}}}", asns.join(" ")))
            }
            _ => parts.push(asns.join(" ")),
        }
    }
    parts.join(" ")
}

/// A simulated time as BIRD prints it (`%T.%3f`), from a clock at
/// 00:00:00.000 when the run starts.
pub fn bird_time(t: SimTime) -> String {
    let ms = t.as_nanos() / 1_000_000;
    let (h, m, s, f) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{h:02}:{m:02}:{s:02}.{f:03}")
}

fn state_words(s: State) -> (&'static str, &'static str) {
    match s {
        State::Idle => ("start", "Idle"),
        State::Connect => ("start", "Connect"),
        State::Active => ("start", "Active"),
        State::OpenSent => ("start", "OpenSent"),
        State::OpenConfirm => ("start", "OpenConfirm"),
        State::Established => ("up", "Established"),
    }
}

fn origin_char(o: sim_core::wire::bgp::Origin) -> char {
    use sim_core::wire::bgp::Origin;
    match o {
        Origin::Igp => 'i',
        Origin::Egp => 'e',
        Origin::Incomplete => '?',
    }
}

impl World {
    pub(crate) fn exec_bird(
        &mut self,
        cx: &mut Cx,
        host: HostId,
        ns: NsId,
        c: &crate::cmd::BirdCmd,
    ) -> Result<String, String> {
        use crate::cmd::{BirdCmd, BirdcCmd};
        if ns != self.hosts[host.ix()].root {
            return Err("bird: the simulator runs BIRD in a host's root namespace only".into());
        }
        match c {
            BirdCmd::Start { recovering } => self
                .start_bird(cx, host, *recovering)
                .map(|()| String::new()),
            BirdCmd::Kill => self.stop_bird(cx, host, false).map(|()| String::new()),
            BirdCmd::FabricInstall => self.fabric_install(cx.now, host),
            BirdCmd::Ctl(BirdcCmd::Down) => {
                self.stop_bird(cx, host, true)?;
                Ok("BIRD 2.0.12 ready.\nShutdown requested\n".into())
            }
            BirdCmd::Ctl(BirdcCmd::Restart { name }) => {
                let out = self.bird_restart(cx, host, name)?;
                Ok(format!("BIRD 2.0.12 ready.\n{out}"))
            }
            BirdCmd::Ctl(BirdcCmd::ShowProtocols { all, name }) => {
                let app = self.running_bird(host)?;
                Ok(self.birdc_show_protocols(app, *all, name.as_deref(), cx.now))
            }
            BirdCmd::Ctl(BirdcCmd::ShowRoute {
                all,
                for_addr,
                protocol,
            }) => {
                let app = self.running_bird(host)?;
                Ok(self.birdc_show_route(app, *all, *for_addr, protocol.as_deref()))
            }
        }
    }

    /// `birdc show protocols [all] [NAME]`, as BIRD 2.0.12 prints it. The
    /// protocols are those of Calico's `bird.cfg`, in its order.
    pub fn birdc_show_protocols(
        &self,
        app: usize,
        all: bool,
        name: Option<&str>,
        now: SimTime,
    ) -> String {
        use std::fmt::Write as _;
        let b = self.bird_ref(app);
        let start = bird_time(b.started_at);
        let mut s = String::from("BIRD 2.0.12 ready.\n");
        s.push_str("Name       Proto      Table      State  Since         Info\n");
        let mut rows: Vec<(String, &str, &str)> = Vec::new();
        if !b.setup.blackholes.is_empty() || !b.setup.originate.is_empty() {
            rows.push(("static1".into(), "Static", "master4"));
        }
        rows.push(("kernel1".into(), "Kernel", "master4"));
        rows.push(("device1".into(), "Device", "---"));
        rows.push(("direct1".into(), "Direct", "---"));
        for (n, proto, table) in rows {
            if name.is_some_and(|x| x != n) {
                continue;
            }
            let _ = writeln!(
                s,
                "{:<10} {:<10} {:<10} {:<6} {:<12}  ",
                n, proto, table, "up", start
            );
        }
        for nb in &b.setup.config.neighbors {
            if name.is_some_and(|x| x != nb.name) {
                continue;
            }
            let (st, at) = b
                .since
                .get(&nb.address)
                .copied()
                .unwrap_or((State::Idle, b.started_at));
            let (state, info) = state_words(st);
            let _ = writeln!(
                s,
                "{:<10} {:<10} {:<10} {:<6} {:<12}  {:<14}",
                nb.name,
                "BGP",
                "---",
                state,
                bird_time(at),
                info
            );
            if all {
                let cfg = b.speaker.config();
                let ibgp = nb.remote_as == cfg.local_as;
                let _ = writeln!(s, "  BGP state:          {info}");
                let _ = writeln!(s, "    Neighbor address: {}", nb.address);
                let _ = writeln!(s, "    Neighbor AS:      {}", nb.remote_as);
                let _ = writeln!(s, "    Local AS:         {}", cfg.local_as);
                if let Some(sess) = b
                    .speaker
                    .session(nb.address)
                    .filter(|_| st == State::Established)
                {
                    let _ = writeln!(s, "    Neighbor ID:      {}", sess.peer_id);
                    let kind = if ibgp { "internal" } else { "external" };
                    let _ = writeln!(s, "    Session:          {kind} multihop AS4");
                    let _ = writeln!(
                        s,
                        "    Source address:   {}",
                        nb.local_address.unwrap_or(cfg.address)
                    );
                    let hold = u64::from(sess.hold_time);
                    let _ = writeln!(s, "    Hold timer:       {hold}");
                    if let Some(k) = sess.keepalive {
                        let _ =
                            writeln!(s, "    Keepalive timer:  {}", k.as_nanos() / 1_000_000_000);
                    }
                    let imported = b.speaker.adj_rib_in(nb.address).map_or(0, |m| m.len());
                    let exported = b.speaker.adj_rib_out_len(nb.address).unwrap_or(0);
                    let preferred = b
                        .speaker
                        .loc_rib()
                        .values()
                        .filter(|x| x.source == crate::bgp::Source::Peer(nb.address))
                        .count();
                    let _ = writeln!(s, "  Channel ipv4");
                    let _ = writeln!(s, "    State:          UP");
                    let _ = writeln!(s, "    Table:          master4");
                    let _ = writeln!(s, "    Preference:     100");
                    let _ = writeln!(s, "    Input filter:   ACCEPT");
                    let _ = writeln!(s, "    Output filter:  (unnamed)");
                    let _ = writeln!(
                        s,
                        "    Routes:         {imported} imported, {exported} exported, {preferred} preferred"
                    );
                }
                s.push('\n');
            }
        }
        let _ = now;
        s
    }

    /// `birdc show route [all] [for P] [protocol NAME]`, as BIRD 2.0.12
    /// prints it: every route of a prefix, the best first (`*`).
    pub fn birdc_show_route(
        &self,
        app: usize,
        all: bool,
        for_addr: Option<Ipv4Net>,
        protocol: Option<&str>,
    ) -> String {
        use std::fmt::Write as _;
        let b = self.bird_ref(app);
        let sp = &b.speaker;
        let cfg = sp.config();
        let mut s = String::from("BIRD 2.0.12 ready.\nTable master4:\n");
        let mut prefixes: std::collections::BTreeSet<Ipv4Net> = sp.loc_rib().keys().collect();
        for n in &cfg.neighbors {
            if let Some(m) = sp.adj_rib_in(n.address) {
                prefixes.extend(m.keys());
            }
        }
        if let Some(f) = for_addr {
            // An address: the longest prefix containing it; a prefix: that one.
            let pick = if f.len == 32 {
                prefixes
                    .iter()
                    .filter(|p| p.contains(f.addr))
                    .max_by_key(|p| p.len)
                    .copied()
            } else {
                prefixes.get(&f.network()).copied()
            };
            prefixes = pick.into_iter().collect();
        }
        let name_of = |peer: Ipv4Addr| {
            cfg.neighbor(peer)
                .map_or_else(|| peer.to_string(), |n| n.name.clone())
        };
        for p in prefixes {
            let mut first = true;
            let tm = bird_time(b.changed_at.get(&p).copied().unwrap_or(b.started_at));
            let best = sp.loc_rib().get(&p);
            // (source, attrs, stale, best?)
            let mut rows: Vec<(
                crate::bgp::Source,
                std::rc::Rc<crate::bgp::PathAttrs>,
                bool,
                bool,
            )> = Vec::new();
            if let Some(bst) = &best {
                let stale = match bst.source {
                    crate::bgp::Source::Peer(a) => sp
                        .adj_rib_in(a)
                        .and_then(|m| m.get(&p))
                        .is_some_and(|r| r.stale),
                    crate::bgp::Source::Local => false,
                };
                rows.push((bst.source, bst.attrs.clone(), stale, true));
            }
            for n in &cfg.neighbors {
                if best
                    .as_ref()
                    .is_some_and(|x| x.source == crate::bgp::Source::Peer(n.address))
                {
                    continue;
                }
                if let Some(r) = sp.adj_rib_in(n.address).and_then(|m| m.get(&p)) {
                    rows.push((
                        crate::bgp::Source::Peer(n.address),
                        r.attrs.clone(),
                        r.stale,
                        false,
                    ));
                }
            }
            for (src, attrs, stale, primary) in rows {
                let pname = match src {
                    crate::bgp::Source::Local => "static1".to_string(),
                    crate::bgp::Source::Peer(a) => name_of(a),
                };
                if protocol.is_some_and(|x| x != pname) {
                    continue;
                }
                let ia = if first { p.to_string() } else { String::new() };
                first = false;
                let star = if primary { " *" } else { "" };
                match src {
                    crate::bgp::Source::Local => {
                        let _ = writeln!(s, "{ia:<20} blackhole [static1 {tm}]{star} (200)");
                        if all {
                            let _ = writeln!(s, "\tType: static univ");
                        }
                    }
                    crate::bgp::Source::Peer(peer) => {
                        let inst = b.installed.get(&p).filter(|_| primary);
                        let resolved = self.bird_resolve(b.ns, attrs.next_hop);
                        let dest = if resolved.is_some() {
                            "unicast"
                        } else {
                            "unreachable"
                        };
                        let from = match resolved {
                            Some((gw, _)) if gw == peer => String::new(),
                            _ => format!(" from {peer}"),
                        };
                        let first_as = attrs
                            .as_path
                            .first()
                            .and_then(|seg| seg.asns.first())
                            .map_or(String::new(), |a| format!("AS{a}"));
                        let metric = if resolved.is_some() { "/0" } else { "" };
                        let st = if stale { "s" } else { "" };
                        let _ = writeln!(
                            s,
                            "{ia:<20} {dest} [{pname} {tm}{from}]{star} (100{st}{metric}) [{first_as}{}]",
                            origin_char(attrs.origin)
                        );
                        if let Some((gw, dev)) = resolved {
                            let _ = writeln!(s, "\tvia {gw} on {}", self.devices[dev.ix()].name);
                        }
                        let _ = inst;
                        if all {
                            let _ = writeln!(s, "\tType: BGP univ");
                            let origin = match attrs.origin {
                                sim_core::wire::bgp::Origin::Igp => "IGP",
                                sim_core::wire::bgp::Origin::Egp => "EGP",
                                sim_core::wire::bgp::Origin::Incomplete => "Incomplete",
                            };
                            let _ = writeln!(s, "\tBGP.origin: {origin}");
                            let _ = writeln!(s, "\tBGP.as_path: {}", as_path_text(&attrs.as_path));
                            let _ = writeln!(s, "\tBGP.next_hop: {}", attrs.next_hop);
                            if let Some(m) = attrs.med {
                                let _ = writeln!(s, "\tBGP.med: {m}");
                            }
                            let lp = attrs.local_pref.unwrap_or(cfg.default_local_pref);
                            let _ = writeln!(s, "\tBGP.local_pref: {lp}");
                            if let Some(o) = attrs.originator_id {
                                let _ = writeln!(s, "\tBGP.originator_id: {o}");
                            }
                            if !attrs.cluster_list.is_empty() {
                                let l: Vec<String> =
                                    attrs.cluster_list.iter().map(|a| a.to_string()).collect();
                                let _ = writeln!(s, "\tBGP.cluster_list: {}", l.join(" "));
                            }
                        }
                    }
                }
            }
        }
        s
    }

    /// BIRD's `gateway recursive`: the next hop's gateway and device
    /// through the kernel table (ignoring BIRD's own routes).
    fn bird_resolve(
        &self,
        ns: NsId,
        next_hop: Ipv4Addr,
    ) -> Option<(Ipv4Addr, crate::linux::DevId)> {
        let flow = Flow {
            dst: next_hop,
            hash: crate::linux::fib::l3_hash(Ipv4Addr::UNSPECIFIED, next_hop),
            ..Default::default()
        };
        match self.fib_lookup(ns, &flow) {
            Ok(r) if r.route.rtype == RouteType::Unicast && r.route.proto != PROTO_BIRD => {
                let nh = r.nexthop()?;
                Some((nh.gw.unwrap_or(next_hop), nh.dev))
            }
            _ => None,
        }
    }
}
