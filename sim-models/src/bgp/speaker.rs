//! The speaker: one BGP process (a BIRD daemon's `protocol bgp` instances
//! and its routing table), sans IO.
//!
//! [`Speaker::handle`] takes one [`Input`] at a simulated time and returns
//! what the speaker does about it as [`Output`]s. It never reads a clock,
//! opens a socket or schedules anything itself: the caller owns the
//! transport (a byte stream per peer) and the timers (`SetTimer` asks to be
//! handed `Input::Timer` back at that time; a new `SetTimer` of the same
//! peer and kind replaces the old one).
//!
//! # Storage
//!
//! The routing table is one table (a vector by the prefix numbers of the
//! [`AttrPool`] in use) from prefix to every path for it (each
//! neighbour's Adj-RIB-In entry, whether this speaker originates it, and
//! which is best): [`Speaker::adj_rib_in`] and [`Speaker::loc_rib`] are
//! views of it. Paths hold their attributes by `Rc`, and an UPDATE's
//! attribute bytes seen before are not decoded again but mapped to the
//! attributes they decoded to ([`AttrPool`], which a fabric shares among
//! its speakers: a reflector's clients all hold one copy of each reflected
//! route's attributes).
//!
//! There is no Adj-RIB-Out per neighbour (BIRD keeps none by default
//! either). Neighbours alike in everything export depends on (iBGP or not,
//! route-reflector client or not, next-hop handling, local address, export
//! policy) form an export group, and each group keeps what its members are
//! advertised for each prefix: the rewritten attributes of the current best
//! route, and the UPDATE announcing it, encoded once for all members and
//! for every later session's initial table dump. A member is advertised
//! exactly that, except the routes it is itself the source of. What was
//! last advertised to a neighbour ([`Speaker::adj_rib_out`]) is therefore
//! what its group says, which is what the original per-neighbour table
//! held: a session's Adj-RIB-Out starts empty, the initial dump (and a
//! route refresh) makes it whole, and every change of a best route is sent
//! to every established session. During a session's initial dump, and in
//! the one case where a route's exported attributes change without a new
//! best route (a restarting neighbour coming back with another BGP
//! identifier), what was sent is recorded explicitly.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::rc::Rc;

use sim_core::net::Ipv4Net;
use sim_core::rng::SimRng;
use sim_core::time::{SimDuration, SimTime};
use sim_core::wire::bgp::{
    AFI_IPV4, AsSegment, BgpContext, BgpError, BgpMessage, Capability, GrFamily,
    GracefulRestartCap, HEADER_LEN, MAX_MESSAGE_LEN, NotificationRepr, OpenRepr, OptParam,
    SAFI_UNICAST, UpdateRepr, msg_type, prefix_len_on_wire,
};

use super::config::{GracefulRestart, Neighbor, PrefixList, SpeakerConfig};
use super::pool::AttrPool;
use super::rib::{CandRef, PathAttrs, Source, best_of};

/// A neighbour, by its address (the key of every input and output).
pub type PeerAddr = Ipv4Addr;

/// The bytes of one whole BGP message, shared: a reflector sends the same
/// UPDATE to all its clients.
pub type Wire = Rc<[u8]>;

/// An UPDATE handed to many speakers in turn (a reflector's message to all
/// its clients), taken apart once: its routes, their prefix numbers and
/// its decoded attributes. [`Speaker::receive_prepared`] takes it where
/// [`Speaker::receive_with`] would take the bytes, with the same effect.
#[derive(Clone)]
pub(crate) struct Prepared {
    frame: Wire,
    /// The attribute field's range in `frame`.
    attrs_at: std::ops::Range<usize>,
    withdrawn: Vec<Ipv4Net>,
    nlri: Vec<Ipv4Net>,
    /// The number of the one prefix the UPDATE withdraws or announces, in
    /// the pool's numbering (if it is about exactly one).
    one_id: Option<usize>,
    /// The decoded attributes, by 4-octet AS numbers, once the pool has
    /// them.
    attrs: [Option<Rc<PathAttrs>>; 2],
}

impl Prepared {
    /// Takes apart a whole UPDATE whose lengths hold; `None` for anything
    /// else (which goes the general way).
    pub(crate) fn new(frame: &Wire, pool: &mut AttrPool) -> Option<Prepared> {
        if frame.get(18) != Some(&msg_type::UPDATE)
            || BgpMessage::frame_len(frame) != Ok(Some(frame.len()))
        {
            return None;
        }
        let [w, a, n] = update_fields(frame)?;
        let (mut withdrawn, mut nlri) = (Vec::new(), Vec::new());
        if !prefixes_into(&frame[w], &mut withdrawn) || !prefixes_into(&frame[n], &mut nlri) {
            return None;
        }
        let one_id = match (withdrawn.as_slice(), nlri.as_slice()) {
            ([p], []) | ([], [p]) => Some(pool.intern(p.network())),
            _ => None,
        };
        Some(Prepared {
            frame: frame.clone(),
            attrs_at: a,
            withdrawn,
            nlri,
            one_id,
            attrs: [None, None],
        })
    }

    pub(crate) fn frame(&self) -> &Wire {
        &self.frame
    }

    /// Whether a [`Speaker::quiet_from`] receiver takes it quietly: it is
    /// about some prefix (not an End-of-RIB) and its attributes decode
    /// with 4-octet AS numbers (decoding them now if need be).
    pub(crate) fn quiet(&mut self, pool: &mut AttrPool) -> bool {
        !(self.withdrawn.is_empty() && self.nlri.is_empty()) && self.attrs(true, pool).is_some()
    }

    /// The attributes the UPDATE's routes take (`Some(None)`: it announces
    /// nothing, and has no attributes), if the pool has decoded them (else
    /// the general way decodes them).
    fn attrs(&mut self, four_octet: bool, pool: &mut AttrPool) -> Option<Option<Rc<PathAttrs>>> {
        let wire = &self.frame[self.attrs_at.clone()];
        if self.nlri.is_empty() {
            return wire.is_empty().then_some(None);
        }
        let k = four_octet as usize;
        if self.attrs[k].is_none() {
            pool.set_message(Some(self.frame.clone()));
            self.attrs[k] = pool.decoded_in(four_octet, &self.frame, wire);
            pool.set_message(None);
        }
        Some(Some(self.attrs[k].clone()?))
    }

    /// The prefix slot a receiver's table will touch (for prefetching).
    pub(crate) fn first_id(&self) -> Option<usize> {
        self.one_id
    }

    /// [`prefetch`]es what a receiver reads of it beyond itself: its
    /// prefixes and its decoded attributes.
    pub(crate) fn prefetch(&self) {
        prefetch(self.withdrawn.as_ptr());
        prefetch(self.nlri.as_ptr());
        if let Some(a) = &self.attrs[1] {
            // The count before the value, then the value's fields.
            let p: *const u8 = Rc::as_ptr(a).cast();
            prefetch(p.wrapping_sub(16));
            prefetch_all::<PathAttrs>(a);
        }
    }
}

/// The most neighbours a speaker may have.
pub const MAX_NEIGHBORS: usize = LOCAL as usize;

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

impl TimerKind {
    /// Every kind, in order.
    pub const ALL: [TimerKind; 5] = [
        TimerKind::ConnectRetry,
        TimerKind::Hold,
        TimerKind::Keepalive,
        TimerKind::IdleHold,
        TimerKind::GracefulRestart,
    ];

    /// Its position in [`TimerKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
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
    Send(PeerAddr, Wire),
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
// Field order (repr(C)): what receiving an UPDATE reads comes first, in as few cache lines as can be.
#[repr(C)]
pub struct Session {
    /// The hold time in force: the smaller of the two offers (0: none).
    pub hold_time: u16,
    pub cx: BgpContext,
    pub route_refresh: bool,
    pub peer_id: Ipv4Addr,
    pub keepalive: Option<SimDuration>,
    /// The peer's graceful restart capability, if it announced one.
    pub peer_gr: Option<GracefulRestartCap>,
}

/// A route in an Adj-RIB-In.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InRoute {
    pub attrs: Rc<PathAttrs>,
    /// Kept from a session that went down, awaiting the restart (RFC 4724).
    pub stale: bool,
}

/// A Loc-RIB entry: the best route for a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Best {
    pub source: Source,
    pub attrs: Rc<PathAttrs>,
}

/// A peer index that is no peer: no best route.
const NONE: u16 = u16::MAX;
/// The best route is this speaker's own.
const LOCAL: u16 = u16::MAX - 1;

/// `Entry::flags`: the inline paths' stale bits, origination, and whether
/// more paths are in `Speaker::extra`.
const STALE: [u8; 2] = [1, 2];
const ORIGINATED: u8 = 4;
const EXTRA: u8 = 8;
/// Some path the entry has held carried a MULTI_EXIT_DISC (never cleared
/// while the entry lives): the decision among its paths is then not a
/// total order (RFC 4271 §9.1.2.2 (c) compares MEDs only within one
/// neighbouring AS), and is always made over all of them.
const MED: u8 = 16;

/// Every path for one prefix: up to two inline (a Calico client has one
/// path per reflector), the rest in `Speaker::extra`; and which is best.
#[derive(Clone, Debug)]
struct Entry {
    attrs: [Option<Rc<PathAttrs>>; 2],
    peer: [u16; 2],
    flags: u8,
    /// The best route as last decided: a peer index, `LOCAL` or `NONE`.
    best: u16,
}

impl Entry {
    const fn new() -> Self {
        Entry {
            attrs: [None, None],
            peer: [NONE, NONE],
            flags: 0,
            best: NONE,
        }
    }

    fn slot(&self, peer: u16) -> Option<usize> {
        (0..2).find(|&i| self.peer[i] == peer && self.attrs[i].is_some())
    }
}

/// An empty [`Slot`]'s key length.
const ABSENT: u8 = u8::MAX;

/// A [`Rib`] slot: a prefix and its entry, or nothing (`key.len` is
/// `ABSENT`).
#[derive(Clone, Debug)]
struct Slot {
    key: Ipv4Net,
    e: Entry,
}

impl Slot {
    const EMPTY: Slot = Slot {
        key: Ipv4Net {
            addr: Ipv4Addr::UNSPECIFIED,
            len: ABSENT,
        },
        e: Entry::new(),
    };

    fn present(&self) -> bool {
        self.key.len != ABSENT
    }
}

/// The routing table: prefix to [`Entry`], a vector by the prefix numbers
/// of the [`AttrPool`] the speaker is handed (a fabric's speakers share
/// one, so a prefix has one number everywhere and a lookup is one probe).
/// Its own order is never used where order could matter: [`Rib::sorted`]
/// gives prefix order. Outside inputs a fabric's speaker holds a pool of
/// its own, not the numbering's: lookups then search the slots.
#[derive(Clone, Default)]
struct Rib {
    slots: Vec<Slot>,
    len: usize,
    /// The numbering `slots` is by ([`AttrPool::prefix_token`]).
    token: Option<Rc<()>>,
}

impl Rib {
    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn numbered_by(&self, pool: &AttrPool) -> bool {
        self.token
            .as_ref()
            .is_some_and(|t| Rc::ptr_eq(t, pool.prefix_token()))
    }

    /// Takes the pool's numbering (renumbering the slots if they were by
    /// another's).
    fn adopt(&mut self, pool: &mut AttrPool) {
        if self.numbered_by(pool) {
            return;
        }
        self.token = Some(pool.prefix_token().clone());
        let old = std::mem::take(&mut self.slots);
        for s in old.into_iter().filter(Slot::present) {
            let id = pool.intern(s.key);
            self.grow(id, pool.prefixes());
            self.slots[id] = s;
        }
    }

    /// Makes room for slot `id` (of `n` numbered prefixes).
    #[inline]
    fn grow(&mut self, id: usize, n: usize) {
        let len = self.slots.len();
        if id >= len {
            // A quarter more at a time, and no less than the prefixes
            // numbered so far (a table dump brings them all).
            let want = (id + 1).max(n).max(len + len / 4);
            self.slots.reserve_exact(want - len);
            self.slots.resize(want, Slot::EMPTY);
        }
    }

    /// The slot of a present prefix.
    #[inline]
    fn find(&self, pool: &AttrPool, p: &Ipv4Net) -> Option<usize> {
        if self.numbered_by(pool) {
            let id = pool.prefix_id(p)?;
            return self.slots.get(id).filter(|s| s.present()).map(|_| id);
        }
        self.slots.iter().position(|s| s.present() && s.key == *p)
    }

    #[inline]
    fn get(&self, pool: &AttrPool, p: &Ipv4Net) -> Option<&Entry> {
        self.find(pool, p).map(|i| &self.slots[i].e)
    }

    #[inline]
    fn get_mut(&mut self, pool: &AttrPool, p: &Ipv4Net) -> Option<&mut Entry> {
        self.find(pool, p).map(|i| &mut self.slots[i].e)
    }

    /// The slot for a prefix, empty or not (after [`adopt`](Self::adopt)).
    #[inline]
    fn slot(&mut self, pool: &mut AttrPool, p: Ipv4Net) -> &mut Slot {
        debug_assert!(self.numbered_by(pool));
        let id = pool.intern(p);
        self.grow(id, pool.prefixes());
        &mut self.slots[id]
    }

    fn get_or_insert(&mut self, pool: &mut AttrPool, p: Ipv4Net) -> &mut Entry {
        let s = self.slot(pool, p);
        if !s.present() {
            s.key = p;
            self.len += 1;
        }
        // (Borrowed again: `self.len` was updated.)
        &mut self.slot(pool, p).e
    }

    /// Empties a present slot.
    fn clear(&mut self, id: usize) {
        self.slots[id] = Slot::EMPTY;
        self.len -= 1;
    }

    fn remove(&mut self, pool: &AttrPool, p: &Ipv4Net) {
        if let Some(i) = self.find(pool, p) {
            self.clear(i);
        }
    }

    /// Every entry, in prefix order.
    fn sorted(&self) -> Vec<(&Ipv4Net, &Entry)> {
        let mut v: Vec<(&Ipv4Net, &Entry)> = self
            .slots
            .iter()
            .filter(|s| s.present())
            .map(|s| (&s.key, &s.e))
            .collect();
        v.sort_unstable_by_key(|(k, _)| **k);
        v
    }

    /// Every entry, in no particular order.
    fn iter_mut(&mut self) -> impl Iterator<Item = (&Ipv4Net, &mut Entry)> {
        self.slots
            .iter_mut()
            .filter(|s| s.present())
            .map(|s| (&s.key, &mut s.e))
    }
}

/// A path beyond an entry's inline two.
#[derive(Clone, Debug)]
struct ExtraPath {
    peer: u16,
    attrs: Rc<PathAttrs>,
    stale: bool,
}

#[derive(Clone)]
// Field order (repr(C)): what receiving an UPDATE reads comes first, in as few cache lines as can be.
#[repr(C)]
struct Peer {
    addr: PeerAddr,
    /// The last BGP identifier the peer sent (kept for tie-breaking its stale routes).
    peer_id: Ipv4Addr,
    state: State,
    transport: bool,
    ibgp: bool,
    /// Stale routes are held for a restarting peer.
    gr_pending: bool,
    /// We are restarting (BIRD started with `-R`, as calico/node runs it):
    /// the next OPEN to this peer sets the Restart State bit, and the
    /// Forwarding State bit for IPv4 unicast.
    recovering: bool,
    /// Its export group.
    group: usize,
    /// Routes in its Adj-RIB-In.
    routes: usize,
    rx: Vec<u8>,
    session: Option<Session>,
    cfg: Neighbor,
    /// Deadlines of the armed timers, by [`TimerKind::index`] (a `Timer`
    /// input for another time is stale).
    timers: [Option<SimTime>; 5],
    /// When the host's pending hold-timer input is due (the last
    /// `SetTimer` for it, until it fires or is cancelled): with
    /// `lazy_hold`, `timers` may hold a later deadline.
    hold_due: Option<SimTime>,
    /// What was advertised to it, while its session's initial dump (or a
    /// route refresh) is being sent; `None` once it has the whole table.
    partial_out: Option<BTreeMap<Ipv4Net, Rc<PathAttrs>>>,
    /// BIRD's startup delay after errors (0: none).
    startup_delay: SimDuration,
    last_error: Option<SimTime>,
}

/// What an export group advertises for a prefix.
#[derive(Clone, Debug)]
struct GroupOut {
    attrs: Rc<PathAttrs>,
    /// The best route's source (a peer index, or `LOCAL`): that member is
    /// not advertised it.
    src: u16,
    /// Other prefixes of the group have equal attributes (a table dump
    /// announces them in one UPDATE).
    shared: bool,
    /// The UPDATE announcing this prefix alone, 4-octet AS numbers.
    wire: Option<Wire>,
}

/// Neighbours alike in everything export depends on; see the module docs.
#[derive(Clone)]
struct Group {
    /// What export depends on, from its members' configuration.
    ibgp: bool,
    rr_client: bool,
    next_hop_self: bool,
    next_hop_keep: bool,
    local: Ipv4Addr,
    export: PrefixList,
    /// What the members are advertised, by prefix.
    out: BTreeMap<Ipv4Net, GroupOut>,
    /// The least and greatest prefix put in `out` since it was last empty
    /// (a client's group holds its own blocks: most prefixes fall outside,
    /// and are known absent without reading the map).
    span: Option<(Ipv4Net, Ipv4Net)>,
    /// `out`'s prefixes by their attributes (to find equal ones).
    by_attrs: BTreeSet<AttrsKey>,
}

/// An export group's `by_attrs` entry: the attributes' hash first (so
/// that the tree's comparisons are of numbers, and of the attributes
/// themselves only where the hashes are equal), the attributes, the prefix.
/// Only looked up by range (equal attributes), never read in its order.
type AttrsKey = (u64, Rc<PathAttrs>, Ipv4Net);

/// The hash of attributes for [`AttrsKey`] (fixed: the same in every run).
fn attrs_hash(a: &PathAttrs) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = super::pool::FxHasher::default();
    a.hash(&mut h);
    h.finish()
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

/// Prefixes whose paths changed: each with its best route before the
/// change, and the peer whose path changed (`LOCAL`: an origination).
type Touched = Vec<(Ipv4Net, Option<Best>, u16)>;

/// A prefix whose best route changed: the new best and its source.
struct Change {
    prefix: Ipv4Net,
    new: Option<(Best, u16)>,
}

/// The UPDATEs for one peer: withdrawals, then announcements grouped by
/// attributes.
#[derive(Debug, Default)]
struct Plan {
    withdraw: Vec<Ipv4Net>,
    announce: Vec<(Rc<PathAttrs>, Vec<Ipv4Net>)>,
}

impl Plan {
    fn is_empty(&self) -> bool {
        self.withdraw.is_empty() && self.announce.is_empty()
    }
}

impl PartialEq for Plan {
    fn eq(&self, o: &Plan) -> bool {
        self.withdraw == o.withdraw
            && self.announce.len() == o.announce.len()
            && self
                .announce
                .iter()
                .zip(&o.announce)
                .all(|((a, x), (b, y))| x == y && (Rc::ptr_eq(a, b) || **a == **b))
    }
}

/// Builds a [`Plan`] from (prefix, advertised before, to advertise now), in
/// prefix order, as the original per-peer Adj-RIB-Out comparison did.
#[derive(Default)]
struct PlanBuilder {
    plan: Plan,
    /// Announce groups by attributes (the last one is tried first: runs of
    /// one route's prefixes).
    groups: BTreeMap<Rc<PathAttrs>, usize>,
}

impl PlanBuilder {
    /// Adds one prefix; says whether it is sent (announced or withdrawn).
    fn add(
        &mut self,
        prefix: Ipv4Net,
        old: Option<&Rc<PathAttrs>>,
        new: Option<&Rc<PathAttrs>>,
    ) -> Sent {
        match (new, old) {
            (Some(n), Some(o)) if Rc::ptr_eq(o, n) || **o == **n => Sent::Same,
            (Some(n), _) => {
                let announce = &mut self.plan.announce;
                match announce.last_mut() {
                    Some((a, v)) if Rc::ptr_eq(a, n) || **a == **n => v.push(prefix),
                    _ => match self.groups.get(n) {
                        Some(&i) => announce[i].1.push(prefix),
                        None => {
                            self.groups.insert(n.clone(), announce.len());
                            announce.push((n.clone(), vec![prefix]));
                        }
                    },
                }
                Sent::Announced
            }
            (None, Some(_)) => {
                self.plan.withdraw.push(prefix);
                Sent::Withdrawn
            }
            (None, None) => Sent::Same,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sent {
    Same,
    Announced,
    Withdrawn,
}

/// Encoded plans of one export pass: peers with the same plan get the same
/// bytes.
#[derive(Default)]
struct PlanCache {
    plans: Vec<(Plan, bool, Vec<Wire>)>,
}

/// One BGP speaker; see the [module docs](self).
#[derive(Clone)]
// Field order (repr(C)): what receiving an UPDATE reads comes first, in as few cache lines as can be.
#[repr(C)]
pub struct Speaker {
    /// Sessions in Established.
    established: usize,
    now: SimTime,
    /// In address order.
    peers: Vec<Peer>,
    /// `peers`' addresses (as numbers), for lookups.
    addrs: Vec<u32>,
    /// Every prefix with a path or origination.
    rib: Rib,
    /// The attribute pool [`Speaker::handle`] uses (a fabric passes its own).
    pool: AttrPool,
    out: Vec<Output>,
    groups: Vec<Group>,
    /// What was advertised to an established member, where it differs from
    /// its group's `out` (see the module docs): (prefix, peer index).
    pinned: BTreeMap<(Ipv4Net, u16), Rc<PathAttrs>>,
    /// Paths beyond an entry's inline two, in peer order.
    extra: BTreeMap<Ipv4Net, Vec<ExtraPath>>,
    /// The attributes of the routes this speaker originates.
    local_attrs: Rc<PathAttrs>,
    /// Whether to emit `Output::Log` lines (see [`Speaker::set_logging`]).
    logging: bool,
    /// Re-arm the hold timer without telling the host when it only moves
    /// later (see [`Speaker::set_lazy_hold`]).
    lazy_hold: bool,
    /// Every neighbour is iBGP and none is a reflector client: a route
    /// learned from one is advertised to no other (see
    /// [`Speaker::quiet_from`]).
    sink: bool,
    started: bool,
    cfg: SpeakerConfig,
    rng: SimRng,
    local: BTreeSet<Ipv4Net>,
    /// Scratch space for decoding UPDATEs.
    scratch: Vec<Ipv4Net>,
    /// Scratch space for exports.
    export_scratch: ExportScratch,
}

/// Per group and change: what it advertised, and advertises now
/// (attributes and the best route's source).
type Adv = Option<(Rc<PathAttrs>, u16)>;

/// Buffers [`Speaker::export`] reuses.
#[derive(Clone, Default)]
struct ExportScratch {
    res: Vec<(Adv, Adv)>,
    special: Vec<u16>,
    generic: Vec<Option<Vec<Wire>>>,
}

/// The parts of a speaker the decision process reads.
struct RibCx<'a> {
    peers: &'a [Peer],
    extra: &'a BTreeMap<Ipv4Net, Vec<ExtraPath>>,
    local_attrs: &'a Rc<PathAttrs>,
    default_local_pref: u32,
}

impl fmt::Debug for Speaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Speaker")
            .field("router_id", &self.cfg.router_id)
            .field("local_as", &self.cfg.local_as)
            .field("peers", &self.peers.len())
            .field("loc_rib", &self.rib.len())
            .finish_non_exhaustive()
    }
}

/// A speaker's Loc-RIB: the best route for each prefix (see
/// [`Speaker::loc_rib`]).
#[derive(Clone, Copy)]
pub struct LocRib<'a> {
    s: &'a Speaker,
}

impl<'a> LocRib<'a> {
    pub fn len(&self) -> usize {
        self.s.rib.len()
    }

    pub fn is_empty(&self) -> bool {
        self.s.rib.is_empty()
    }

    pub fn get(&self, prefix: &Ipv4Net) -> Option<Best> {
        let e = self.s.rib.get(&self.s.pool, prefix)?;
        self.s.best_view(prefix, e, e.best)
    }

    pub fn contains_key(&self, prefix: &Ipv4Net) -> bool {
        self.s.rib.get(&self.s.pool, prefix).is_some()
    }

    /// Prefixes and their best routes, in prefix order.
    pub fn iter(self) -> impl Iterator<Item = (Ipv4Net, Best)> + 'a {
        let s = self.s;
        s.rib
            .sorted()
            .into_iter()
            .filter_map(move |(p, e)| Some((*p, s.best_view(p, e, e.best)?)))
    }

    /// The best routes learned from peers, in prefix order, with the
    /// peer and the attributes as held (no copy of the `Rc`): what
    /// reading a converged table out needs, without the cost of a [`Best`]
    /// per route.
    pub fn peer_bests(self) -> impl Iterator<Item = (Ipv4Net, PeerAddr, &'a Rc<PathAttrs>)> + 'a {
        let s = self.s;
        s.rib
            .sorted()
            .into_iter()
            .filter_map(move |(p, e)| match e.best {
                NONE | LOCAL => None,
                i => Some((*p, s.peers[i as usize].addr, s.path(p, e, i)?.0)),
            })
    }

    pub fn keys(self) -> impl Iterator<Item = Ipv4Net> + 'a {
        self.s.rib.sorted().into_iter().map(|(p, _)| *p)
    }

    pub fn values(self) -> impl Iterator<Item = Best> + 'a {
        self.iter().map(|(_, b)| b)
    }
}

impl<'a> IntoIterator for LocRib<'a> {
    type Item = (Ipv4Net, Best);
    type IntoIter = Box<dyn Iterator<Item = (Ipv4Net, Best)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl fmt::Debug for LocRib<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A neighbour's Adj-RIB-In (see [`Speaker::adj_rib_in`]).
#[derive(Clone, Copy)]
pub struct AdjRibIn<'a> {
    s: &'a Speaker,
    peer: u16,
}

impl<'a> AdjRibIn<'a> {
    pub fn len(&self) -> usize {
        self.s.peers[self.peer as usize].routes
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, prefix: &Ipv4Net) -> Option<InRoute> {
        let e = self.s.rib.get(&self.s.pool, prefix)?;
        let (attrs, stale) = self.s.path(prefix, e, self.peer)?;
        Some(InRoute {
            attrs: attrs.clone(),
            stale,
        })
    }

    pub fn contains_key(&self, prefix: &Ipv4Net) -> bool {
        self.get(prefix).is_some()
    }

    /// Its routes, in prefix order.
    pub fn iter(self) -> impl Iterator<Item = (Ipv4Net, InRoute)> + 'a {
        let (s, peer) = (self.s, self.peer);
        s.rib.sorted().into_iter().filter_map(move |(p, e)| {
            let (attrs, stale) = s.path(p, e, peer)?;
            Some((
                *p,
                InRoute {
                    attrs: attrs.clone(),
                    stale,
                },
            ))
        })
    }

    pub fn keys(self) -> impl Iterator<Item = Ipv4Net> + 'a {
        self.iter().map(|(p, _)| p)
    }
}

impl<'a> IntoIterator for AdjRibIn<'a> {
    type Item = (Ipv4Net, InRoute);
    type IntoIter = Box<dyn Iterator<Item = (Ipv4Net, InRoute)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl fmt::Debug for AdjRibIn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Speaker {
    /// A speaker with this configuration; `rng` draws the timers' jitter
    /// (give it a named stream of the run's seed, e.g. `bgp:node1`).
    ///
    /// # Panics
    /// With more than [`MAX_NEIGHBORS`] neighbours.
    pub fn new(cfg: SpeakerConfig, rng: SimRng) -> Self {
        // By address; a repeated address keeps its last configuration.
        let by_addr: BTreeMap<PeerAddr, &Neighbor> =
            cfg.neighbors.iter().map(|n| (n.address, n)).collect();
        assert!(
            by_addr.len() <= MAX_NEIGHBORS,
            "a speaker takes at most {MAX_NEIGHBORS} neighbours"
        );
        // Export groups: alike in everything export depends on.
        let mut exports: Vec<&PrefixList> = Vec::new();
        let mut keys: BTreeMap<(bool, bool, bool, bool, Ipv4Addr, usize), usize> = BTreeMap::new();
        let mut groups = Vec::new();
        let mut peers = Vec::with_capacity(by_addr.len());
        for (addr, n) in &by_addr {
            let ibgp = n.remote_as == cfg.local_as;
            let export = match exports.iter().position(|e| **e == n.export) {
                Some(e) => e,
                None => {
                    exports.push(&n.export);
                    exports.len() - 1
                }
            };
            let key = (
                ibgp,
                n.rr_client,
                n.next_hop_self,
                n.next_hop_keep,
                n.local_address.unwrap_or(cfg.address),
                export,
            );
            let group = *keys.entry(key).or_insert_with(|| {
                groups.push(Group {
                    ibgp,
                    rr_client: n.rr_client,
                    next_hop_self: n.next_hop_self,
                    next_hop_keep: n.next_hop_keep,
                    local: n.local_address.unwrap_or(cfg.address),
                    export: n.export.clone(),
                    out: BTreeMap::new(),
                    span: None,
                    by_attrs: BTreeSet::new(),
                });
                groups.len() - 1
            });
            peers.push(Peer {
                addr: *addr,
                cfg: (*n).clone(),
                ibgp,
                state: State::Idle,
                transport: false,
                rx: Vec::new(),
                session: None,
                peer_id: Ipv4Addr::UNSPECIFIED,
                routes: 0,
                group,
                partial_out: None,
                timers: [None; 5],
                hold_due: None,
                startup_delay: SimDuration::ZERO,
                last_error: None,
                gr_pending: false,
                recovering: false,
            });
        }
        Speaker {
            addrs: peers.iter().map(|p| p.addr.to_bits()).collect(),
            sink: peers.iter().all(|p| p.ibgp && !p.cfg.rr_client),
            peers,
            groups,
            local_attrs: Rc::new(PathAttrs::local(cfg.address)),
            cfg,
            rng,
            local: BTreeSet::new(),
            rib: Rib::default(),
            extra: BTreeMap::new(),
            pinned: BTreeMap::new(),
            started: false,
            established: 0,
            now: SimTime::ZERO,
            out: Vec::new(),
            logging: true,
            lazy_hold: false,
            pool: AttrPool::new(),
            scratch: Vec::new(),
            export_scratch: ExportScratch::default(),
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
        for p in &mut s.peers {
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

    /// Whether re-arming the hold timer for later (on every message
    /// received) stays inside the speaker (off by default). When on, the
    /// host's pending hold-timer input stays as it was; when it comes, the
    /// speaker asks for the timer again at the later deadline (an
    /// `Output::SetTimer` then) instead of expiring. The hold timer fires at
    /// the same time either way; a host that runs one event per timer
    /// (the fabric) saves an output and a timer update per message. Only
    /// the outputs change: `SetTimer`s for the hold timer that only moved
    /// it later are not given.
    pub fn set_lazy_hold(&mut self, on: bool) {
        self.lazy_hold = on;
    }

    pub fn config(&self) -> &SpeakerConfig {
        &self.cfg
    }

    fn ix(&self, addr: PeerAddr) -> Option<usize> {
        self.addrs.binary_search(&addr.to_bits()).ok()
    }

    /// The session state with a peer (`None` for an unknown address).
    pub fn state(&self, peer: PeerAddr) -> Option<State> {
        self.ix(peer).map(|m| self.peers[m].state)
    }

    /// What was negotiated with an established (or opening) peer.
    pub fn session(&self, peer: PeerAddr) -> Option<&Session> {
        self.peers[self.ix(peer)?].session.as_ref()
    }

    /// [`prefetch`]es the fields receiving an UPDATE reads (see
    /// [`prefetch_for`](Self::prefetch_for)).
    #[inline]
    pub(crate) fn prefetch_fields(&self) {
        // The fields before `rng` (`HOT_BYTES`) are the caller's to fetch.
        prefetch_all(&self.rng);
        prefetch(&self.scratch);
    }

    /// The leading bytes of a speaker that receiving an UPDATE reads (its
    /// fields up to its random-number generator: see their order).
    pub(crate) const HOT_BYTES: usize = std::mem::offset_of!(Speaker, rng);

    /// Hints the processor at what receiving an UPDATE about prefix number
    /// `slot` (if known) will read,
    /// `pool` being the pool it will be handed: a fabric handing one
    /// message to many speakers in turn calls it for a speaker a little
    /// ahead (after [`prefetch_fields`](Self::prefetch_fields)). Changes
    /// nothing but timing.
    #[inline]
    pub(crate) fn prefetch_for(&self, slot: Option<usize>, pool: &AttrPool) {
        // A few neighbours (a reflector's client): all of them, as far
        // as the hold timer (see their field order).
        if self.peers.len() <= 4 {
            for p in &self.peers {
                let b: *const u8 = (p as *const Peer).cast();
                let hot = std::mem::offset_of!(Peer, timers) + 32;
                for off in (0..hot).step_by(64) {
                    prefetch(b.wrapping_add(off));
                }
                prefetch(b.wrapping_add(hot - 1));
            }
        } else {
            prefetch(self.peers.as_ptr());
        }
        prefetch(self.addrs.as_ptr());
        self.groups.iter().take(2).for_each(prefetch_all);
        if let Some(id) = slot {
            self.prefetch_slot(id, pool);
        }
    }

    /// [`prefetch`]es the table slot of prefix number `id` of `pool`'s
    /// numbering. Changes nothing but timing.
    #[inline]
    pub(crate) fn prefetch_slot(&self, id: usize, pool: &AttrPool) {
        if self.rib.numbered_by(pool)
            && let Some(s) = self.rib.slots.get(id)
        {
            let s: *const Slot = s;
            prefetch(s);
            prefetch(s.cast::<u8>().wrapping_add(std::mem::size_of::<Slot>() - 1));
        }
    }

    /// Whether the speaker as a whole can take an UPDATE quietly (see
    /// [`quiet_from`](Self::quiet_from)): the part that does not depend on
    /// the peer. Changes only when the speaker handles an input.
    pub(crate) fn quiet_receiver(&self, pool: &AttrPool) -> bool {
        self.sink
            && self.lazy_hold
            && !self.logging
            && self.pinned.is_empty()
            && self.rib.numbered_by(pool)
    }

    /// Whether an UPDATE from `peer` that is [`Prepared::quiet`], handed
    /// to [`receive_prepared`](Self::receive_prepared), can change nothing
    /// but this speaker: its Loc-RIB and installed routes (`Install` and
    /// `Uninstall` outputs) and its hold timer (a `SetTimer` for it at
    /// least 3/4 of the hold time ahead, as `lazy_hold` re-arms it). So it
    /// is when the speaker is a [`quiet_receiver`](Self::quiet_receiver)
    /// and the session with `peer` is Established with 4-octet AS numbers,
    /// whole messages, and no graceful restart pending: a route learned
    /// from an iBGP peer by a speaker that reflects nothing goes to no
    /// other peer (RFC 4456 §6), and a prefix it originates keeps its
    /// local route as the best whatever it receives (step 0 of
    /// [`best_of`]), so what it advertises cannot change. Changes only
    /// when the speaker handles an input for `peer` (or one for no peer).
    pub(crate) fn quiet_from(&self, peer: PeerAddr, pool: &AttrPool) -> bool {
        self.quiet_receiver(pool)
            && self.ix(peer).is_some_and(|m| {
                let p = &self.peers[m];
                p.transport
                    && p.rx.is_empty()
                    && p.state == State::Established
                    && !p.gr_pending
                    && p.session.as_ref().is_some_and(|s| s.cx.four_octet_as)
            })
    }

    /// How many sessions are Established.
    pub fn established_sessions(&self) -> usize {
        self.established
    }

    /// Whether the speaker takes a new connection from this peer now (it is
    /// waiting for one: Active or Connect). A transport binding refuses the
    /// others: one connection per peer (RFC 4271 §6.8's collision
    /// resolution is not modelled).
    pub fn accepts(&self, peer: PeerAddr) -> bool {
        self.started
            && self
                .ix(peer)
                .is_some_and(|m| matches!(self.peers[m].state, State::Active | State::Connect))
    }

    /// The Loc-RIB: the best route for each prefix.
    pub fn loc_rib(&self) -> LocRib<'_> {
        LocRib { s: self }
    }

    /// A peer's Adj-RIB-In (after import policy and loop checks).
    pub fn adj_rib_in(&self, peer: PeerAddr) -> Option<AdjRibIn<'_>> {
        Some(AdjRibIn {
            s: self,
            peer: self.ix(peer)? as u16,
        })
    }

    /// A peer's Adj-RIB-Out: what was last advertised to it (and not
    /// withdrawn since).
    pub fn adj_rib_out(&self, peer: PeerAddr) -> Option<BTreeMap<Ipv4Net, Rc<PathAttrs>>> {
        let m = self.ix(peer)?;
        let p = &self.peers[m];
        if p.state != State::Established {
            return Some(BTreeMap::new());
        }
        if let Some(partial) = &p.partial_out {
            return Some(partial.clone());
        }
        let mut out: BTreeMap<Ipv4Net, Rc<PathAttrs>> = self.groups[p.group]
            .out
            .iter()
            .filter(|(_, o)| o.src != m as u16)
            .map(|(k, o)| (*k, o.attrs.clone()))
            .collect();
        for ((prefix, x), a) in &self.pinned {
            if *x == m as u16 {
                out.insert(*prefix, a.clone());
            }
        }
        Some(out)
    }

    /// The number of routes in a peer's Adj-RIB-Out.
    pub fn adj_rib_out_len(&self, peer: PeerAddr) -> Option<usize> {
        self.adj_rib_out(peer).map(|m| m.len())
    }

    /// The prefixes this speaker originates.
    pub fn originated(&self) -> &BTreeSet<Ipv4Net> {
        &self.local
    }

    /// Processes one input at `now`.
    pub fn handle(&mut self, now: SimTime, input: Input) -> Vec<Output> {
        self.now = now;
        self.rib.adopt(&mut self.pool);
        self.input(input);
        std::mem::take(&mut self.out)
    }

    /// [`handle`](Self::handle), appending the outputs to `out` and sharing
    /// decoded attributes through `pool` (see [`AttrPool`]).
    pub fn handle_with(
        &mut self,
        now: SimTime,
        input: Input,
        pool: &mut AttrPool,
        out: &mut Vec<Output>,
    ) {
        self.now = now;
        std::mem::swap(&mut self.pool, pool);
        std::mem::swap(&mut self.out, out);
        self.rib.adopt(&mut self.pool);
        self.input(input);
        std::mem::swap(&mut self.out, out);
        std::mem::swap(&mut self.pool, pool);
    }

    /// `Input::TransportBytes(peer, bytes.to_vec())` through
    /// [`handle_with`](Self::handle_with), without the copy.
    pub fn receive_with(
        &mut self,
        now: SimTime,
        peer: PeerAddr,
        bytes: &[u8],
        pool: &mut AttrPool,
        out: &mut Vec<Output>,
    ) {
        self.now = now;
        std::mem::swap(&mut self.pool, pool);
        std::mem::swap(&mut self.out, out);
        self.rib.adopt(&mut self.pool);
        self.bytes(peer, bytes);
        std::mem::swap(&mut self.out, out);
        std::mem::swap(&mut self.pool, pool);
    }

    /// [`receive_with`](Self::receive_with) of a [`Prepared`] UPDATE:
    /// the same outputs and state. Says whether it took it: `false` (and
    /// nothing done) where the bytes must go the general way (no such
    /// peer, a session not Established, a partial message buffered, the
    /// log on, attributes the pool has not decoded yet).
    pub(crate) fn receive_prepared(
        &mut self,
        now: SimTime,
        peer: PeerAddr,
        prep: &mut Prepared,
        pool: &mut AttrPool,
        out: &mut Vec<Output>,
    ) -> bool {
        let Some(m) = self.ix(peer) else {
            return false;
        };
        let p = &self.peers[m];
        if self.logging
            || !p.transport
            || !p.rx.is_empty()
            || p.state != State::Established
            || !self.rib.numbered_by(pool)
        {
            return false;
        }
        let four = p
            .session
            .as_ref()
            .map_or(BgpContext::FOUR_OCTET, |s| s.cx)
            .four_octet_as;
        let Some(attrs) = prep.attrs(four, pool) else {
            return false;
        };
        self.now = now;
        std::mem::swap(&mut self.pool, pool);
        std::mem::swap(&mut self.out, out);
        self.update_checked(m, &prep.withdrawn, attrs, &prep.nlri, prep.one_id);
        std::mem::swap(&mut self.out, out);
        std::mem::swap(&mut self.pool, pool);
        true
    }

    fn input(&mut self, input: Input) {
        match input {
            Input::Start => self.start(),
            Input::TransportConnected(p) => self.connected(p),
            Input::TransportBytes(p, bytes) => self.bytes(p, &bytes),
            Input::TransportClosed(p) => self.closed(p),
            Input::Timer(p, kind) => self.timer(p, kind),
            Input::Originate(prefix) => {
                let prefix = prefix.network();
                if self.local.insert(prefix) {
                    self.log(None, format!("originate {prefix}"));
                    let mut touched = Vec::new();
                    self.set_local(prefix, true, &mut touched);
                    self.decide(touched);
                }
            }
            Input::WithdrawOrigin(prefix) => {
                let prefix = prefix.network();
                if self.local.remove(&prefix) {
                    self.log(None, format!("stop originating {prefix}"));
                    let mut touched = Vec::new();
                    self.set_local(prefix, false, &mut touched);
                    self.decide(touched);
                }
            }
            Input::AdminReset(p) => self.admin_reset(p),
        }
    }

    // ---- helpers ----------------------------------------------------------

    fn log(&mut self, peer: Option<PeerAddr>, text: String) {
        if self.logging {
            self.out.push(Output::Log(LogLine { peer, text }));
        }
    }

    fn set_state(&mut self, m: usize, state: State) {
        let p = &mut self.peers[m];
        let old = std::mem::replace(&mut p.state, state);
        match (old == State::Established, state == State::Established) {
            (false, true) => self.established += 1,
            (true, false) => self.established -= 1,
            _ => {}
        }
        if old != state && self.logging {
            let addr = p.addr;
            self.log(Some(addr), format!("{old:?} -> {state:?}"));
        }
    }

    /// Arms a timer `d` from now, shortened by up to a quarter at random
    /// when `jitter` (BIRD's `bgp_start_timer`, RFC 4271 §10).
    fn arm(&mut self, m: usize, kind: TimerKind, d: SimDuration, jitter: bool) {
        let cut = if jitter {
            self.rng.below(d.as_nanos() / 4 + 1)
        } else {
            0
        };
        let at = self.now + SimDuration::from_nanos(d.as_nanos() - cut);
        let p = &mut self.peers[m];
        p.timers[kind.index()] = Some(at);
        if kind == TimerKind::Hold {
            if self.lazy_hold && p.hold_due.is_some_and(|due| due <= at) {
                // The pending input comes first; `timer` asks again then.
                return;
            }
            p.hold_due = Some(at);
        }
        self.out.push(Output::SetTimer(p.addr, kind, at));
    }

    fn disarm(&mut self, m: usize, kind: TimerKind) {
        let p = &mut self.peers[m];
        if p.timers[kind.index()].take().is_some() {
            if kind == TimerKind::Hold {
                p.hold_due = None;
            }
            self.out.push(Output::CancelTimer(p.addr, kind));
        }
    }

    fn cx(&self, m: usize) -> BgpContext {
        self.peers[m]
            .session
            .as_ref()
            .map_or(BgpContext::FOUR_OCTET, |s| s.cx)
    }

    fn send(&mut self, m: usize, msg: &BgpMessage) {
        let bytes = msg.to_bytes(self.cx(m));
        let addr = self.peers[m].addr;
        if self.logging {
            self.log(Some(addr), format!("sent {msg}"));
        }
        self.out.push(Output::Send(addr, bytes.into()));
    }

    fn our_open(&self, m: usize) -> OpenRepr {
        let recovering = self.peers[m].recovering;
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
        for m in 0..self.peers.len() {
            self.start_peer(m);
        }
    }

    /// Idle -> Active: wait for the peer, and (unless passive) connect
    /// after the connect delay (BIRD's `bgp_active`).
    fn start_peer(&mut self, m: usize) {
        self.set_state(m, State::Active);
        if !self.peers[m].cfg.passive {
            let delay = self.cfg.timers.connect_delay.max(SimDuration::from_secs(1));
            self.arm(m, TimerKind::ConnectRetry, delay, true);
        }
    }

    fn connected(&mut self, addr: PeerAddr) {
        let Some(m) = self.ix(addr) else {
            self.log(
                Some(addr),
                "connection from an unconfigured address: closed".into(),
            );
            self.out.push(Output::Close(addr));
            return;
        };
        match self.peers[m].state {
            State::Active | State::Connect if self.started => {
                let p = &mut self.peers[m];
                p.transport = true;
                p.rx.clear();
                self.disarm(m, TimerKind::ConnectRetry);
                let open = BgpMessage::Open(self.our_open(m));
                self.send(m, &open);
                let hold = self.cfg.timers.startup_hold;
                self.arm(m, TimerKind::Hold, hold, true);
                self.set_state(m, State::OpenSent);
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
        let Some(m) = self.ix(addr) else {
            return;
        };
        let p = &mut self.peers[m];
        p.transport = false;
        match p.state {
            State::Connect => {
                // The connect failed; ConnectRetry will try again.
                self.log(Some(addr), "connection failed".into());
                self.set_state(m, State::Active);
            }
            State::OpenSent => {
                self.log(Some(addr), "connection closed in OpenSent".into());
                self.disarm(m, TimerKind::Hold);
                self.set_state(m, State::Active);
                if !self.peers[m].cfg.passive {
                    let d = self.cfg.timers.connect_retry;
                    self.arm(m, TimerKind::ConnectRetry, d, true);
                }
            }
            State::OpenConfirm | State::Established => {
                self.log(Some(addr), "connection closed".into());
                self.session_down(
                    m,
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
        let Some(m) = self.ix(addr) else {
            return;
        };
        let p = &mut self.peers[m];
        if kind == TimerKind::Hold && self.lazy_hold {
            if p.hold_due != Some(self.now) {
                return; // not the pending input: stale
            }
            p.hold_due = None;
            if let Some(at) = p.timers[kind.index()]
                && at > self.now
            {
                // Re-armed for later since it was asked for: again, then.
                p.hold_due = Some(at);
                self.out.push(Output::SetTimer(addr, kind, at));
                return;
            }
        }
        let p = &mut self.peers[m];
        match p.timers[kind.index()] {
            Some(at) if at <= self.now => {
                p.timers[kind.index()] = None;
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
                self.set_state(m, State::Connect);
                self.out.push(Output::Connect(addr));
                let d = self.cfg.timers.connect_retry;
                self.arm(m, TimerKind::ConnectRetry, d, true);
            }
            (TimerKind::Hold, State::OpenSent | State::OpenConfirm | State::Established) => {
                self.log(Some(addr), "hold timer expired".into());
                self.send(
                    m,
                    &BgpMessage::Notification(NotificationRepr::hold_timer_expired()),
                );
                self.session_down(
                    m,
                    Down {
                        graceful: false,
                        error: true,
                    },
                );
            }
            (TimerKind::Keepalive, State::OpenConfirm | State::Established) => {
                self.send(m, &BgpMessage::Keepalive);
                if let Some(k) = self.peers[m].session.as_ref().and_then(|s| s.keepalive) {
                    self.arm(m, TimerKind::Keepalive, k, true);
                }
            }
            (TimerKind::IdleHold, State::Idle) => self.start_peer(m),
            (TimerKind::GracefulRestart, _) => {
                self.log(Some(addr), "restart timer expired".into());
                self.flush_stale(m);
            }
            _ => {}
        }
    }

    fn admin_reset(&mut self, addr: PeerAddr) {
        let Some(m) = self.ix(addr) else {
            return;
        };
        if !self.started {
            return;
        }
        if matches!(
            self.peers[m].state,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            self.send(m, &BgpMessage::Notification(NotificationRepr::cease(4)));
        }
        self.session_down(
            m,
            Down {
                graceful: false,
                error: false,
            },
        );
    }

    /// Ends the session: close, drop (or, for a graceful restart, keep as
    /// stale) the peer's routes, and start again after the error wait.
    fn session_down(&mut self, m: usize, why: Down) {
        for k in [
            TimerKind::Hold,
            TimerKind::Keepalive,
            TimerKind::ConnectRetry,
        ] {
            self.disarm(m, k);
        }
        let gr_local = self.cfg.graceful_restart;
        let now = self.now;
        let forget = self.cfg.timers.error_forget;
        let (wmin, wmax) = (
            self.cfg.timers.error_wait_min,
            self.cfg.timers.error_wait_max,
        );
        let p = &mut self.peers[m];
        let addr = p.addr;
        let was_established = p.state == State::Established;
        let close = std::mem::replace(&mut p.transport, false);
        p.rx.clear();
        p.partial_out = None;
        let session = p.session.take();
        let restart_time = session
            .as_ref()
            .and_then(|s| s.peer_gr.as_ref())
            .map(|g| g.restart_time)
            .filter(|_| gr_local.enabled());
        let mut touched = Vec::new();
        let mut arm_gr = None;
        match restart_time {
            Some(t) if was_established && why.graceful && t > 0 && p.routes > 0 => {
                p.gr_pending = true;
                arm_gr = Some((p.routes, t));
                self.mark_stale(m);
            }
            _ => {
                p.gr_pending = false;
                for prefix in self.prefixes_of(m, false) {
                    self.remove_path(prefix, m, &mut touched);
                }
            }
        }
        self.drop_pins(m);
        let p = &mut self.peers[m];
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
                    m,
                    TimerKind::GracefulRestart,
                    SimDuration::from_secs(t as u64),
                    false,
                );
            }
            None => self.disarm(m, TimerKind::GracefulRestart),
        }
        self.set_state(m, State::Idle);
        if delay > SimDuration::ZERO {
            self.arm(m, TimerKind::IdleHold, delay, true);
        } else {
            self.start_peer(m);
        }
        self.decide(touched);
    }

    /// Drops a peer's stale routes (restart timer, End-of-RIB, or a new
    /// session without graceful restart for IPv4 unicast).
    fn flush_stale(&mut self, m: usize) {
        self.disarm(m, TimerKind::GracefulRestart);
        self.peers[m].gr_pending = false;
        let stale = self.prefixes_of(m, true);
        let mut touched = Vec::new();
        for &k in &stale {
            self.remove_path(k, m, &mut touched);
        }
        if !stale.is_empty() {
            let addr = self.peers[m].addr;
            self.log(Some(addr), format!("dropped {} stale routes", stale.len()));
        }
        self.decide(touched);
    }

    fn protocol_error(&mut self, m: usize, e: &BgpError) {
        let addr = self.peers[m].addr;
        self.log(Some(addr), format!("error: {e}"));
        self.send(m, &BgpMessage::Notification(e.notification()));
        self.session_down(
            m,
            Down {
                graceful: false,
                error: true,
            },
        );
    }

    fn fsm_error(&mut self, m: usize, state: State, msg: &BgpMessage) {
        // RFC 6608 subcodes: unexpected message in OpenSent, OpenConfirm, Established.
        let subcode = match state {
            State::OpenSent => 1,
            State::OpenConfirm => 2,
            _ => 3,
        };
        let addr = self.peers[m].addr;
        self.log(Some(addr), format!("unexpected {msg} in {state:?}"));
        self.send(
            m,
            &BgpMessage::Notification(NotificationRepr {
                code: 5,
                subcode,
                data: Vec::new(),
            }),
        );
        self.session_down(
            m,
            Down {
                graceful: false,
                error: true,
            },
        );
    }

    /// Bytes from a peer's connection: every whole message in them (and in
    /// what was left over before), in order.
    fn bytes(&mut self, addr: PeerAddr, bytes: &[u8]) {
        let Some(m) = self.ix(addr) else {
            return;
        };
        if !self.peers[m].transport {
            return;
        }
        if self.peers[m].rx.is_empty() {
            let used = self.frames(m, bytes);
            if self.peers[m].transport {
                self.peers[m].rx.extend_from_slice(&bytes[used..]);
            }
        } else {
            let mut buf = std::mem::take(&mut self.peers[m].rx);
            buf.extend_from_slice(bytes);
            let used = self.frames(m, &buf);
            if self.peers[m].transport {
                buf.drain(..used);
                self.peers[m].rx = buf;
            }
        }
    }

    /// Handles the whole messages at the start of `buf` while the
    /// connection lasts; returns how many bytes they took.
    fn frames(&mut self, m: usize, buf: &[u8]) -> usize {
        let mut at = 0;
        while self.peers[m].transport {
            let len = match BgpMessage::frame_len(&buf[at..]) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(e) => {
                    self.protocol_error(m, &e);
                    break;
                }
            };
            self.frame(m, &buf[at..at + len]);
            at += len;
        }
        at
    }

    /// One whole message.
    fn frame(&mut self, m: usize, frame: &[u8]) {
        let p = &self.peers[m];
        let cx = p.session.as_ref().map_or(BgpContext::FOUR_OCTET, |s| s.cx);
        if !self.logging
            && frame[18] == msg_type::UPDATE
            && p.state == State::Established
            && self.update_fast(m, frame, cx)
        {
            return;
        }
        match BgpMessage::parse(frame, cx) {
            Ok((msg, _)) => self.receive(m, msg, attribute_field(frame)),
            Err(e) => self.protocol_error(m, &e),
        }
    }

    /// An UPDATE in Established whose attribute bytes were decoded and
    /// checked before (by any speaker sharing the pool): handled without
    /// decoding them, exactly as [`receive`](Self::receive) would. Says
    /// whether it was (else it takes the general way).
    fn update_fast(&mut self, m: usize, frame: &[u8], cx: BgpContext) -> bool {
        let Some([w, a, n]) = update_fields(frame) else {
            return false;
        };
        let attr_bytes = &frame[a];
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let ok = prefixes_into(&frame[w], &mut scratch);
        let nw = scratch.len();
        let ok = ok && prefixes_into(&frame[n], &mut scratch);
        let attrs = if !ok {
            None
        } else if scratch.len() > nw {
            self.pool
                .decoded_in(cx.four_octet_as, frame, attr_bytes)
                .map(Some)
        } else if attr_bytes.is_empty() {
            Some(None)
        } else {
            None
        };
        let Some(attrs) = attrs else {
            self.scratch = scratch;
            return false;
        };
        self.update_checked(m, &scratch[..nw], attrs, &scratch[nw..], None);
        self.scratch = scratch;
        true
    }

    /// An UPDATE in Established whose fields and attributes were checked:
    /// the hold timer restarts, then an End-of-RIB ends a graceful restart's
    /// wait, anything else goes into the tables (`one_id`: the number of
    /// its one prefix, if known).
    fn update_checked(
        &mut self,
        m: usize,
        withdrawn: &[Ipv4Net],
        attrs: Option<Rc<PathAttrs>>,
        nlri: &[Ipv4Net],
        one_id: Option<usize>,
    ) {
        self.restart_hold(m);
        if withdrawn.is_empty() && nlri.is_empty() {
            // End-of-RIB.
            if self.peers[m].gr_pending {
                self.flush_stale(m);
            }
        } else {
            self.import_ids(m, withdrawn, attrs, nlri, one_id);
        }
    }

    fn receive(&mut self, m: usize, msg: BgpMessage, attr_bytes: Option<&[u8]>) {
        let addr = self.peers[m].addr;
        if self.logging {
            self.log(Some(addr), format!("received {msg}"));
        }
        let state = self.peers[m].state;
        if let BgpMessage::Notification(n) = &msg {
            let error = n.code != 6;
            return self.session_down(
                m,
                Down {
                    graceful: false,
                    error,
                },
            );
        }
        match (state, msg) {
            (State::OpenSent, BgpMessage::Open(o)) => match self.check_open(m, &o) {
                Ok(s) => {
                    let (hold, keepalive) = (s.hold_time, s.keepalive);
                    self.set_peer_id(m, s.peer_id);
                    self.peers[m].session = Some(s);
                    self.send(m, &BgpMessage::Keepalive);
                    if hold > 0 {
                        self.arm(
                            m,
                            TimerKind::Hold,
                            SimDuration::from_secs(hold as u64),
                            true,
                        );
                    } else {
                        self.disarm(m, TimerKind::Hold);
                    }
                    if let Some(k) = keepalive {
                        self.arm(m, TimerKind::Keepalive, k, true);
                    }
                    self.set_state(m, State::OpenConfirm);
                }
                Err(e) => self.protocol_error(m, &e),
            },
            (State::OpenConfirm, BgpMessage::Keepalive) => {
                self.restart_hold(m);
                self.set_state(m, State::Established);
                self.established(m);
            }
            (State::Established, BgpMessage::Keepalive) => self.restart_hold(m),
            (State::Established, BgpMessage::Update(u)) => {
                self.restart_hold(m);
                self.import(m, u, attr_bytes);
            }
            (State::Established, BgpMessage::RouteRefresh(r)) => {
                self.restart_hold(m);
                if (r.afi, r.safi, r.subtype) == (AFI_IPV4, SAFI_UNICAST, 0) {
                    // The whole table again, as to a new session.
                    self.drop_pins(m);
                    self.peers[m].partial_out = Some(BTreeMap::new());
                    self.dump(m);
                }
            }
            (State::OpenSent | State::OpenConfirm | State::Established, m2) => {
                self.fsm_error(m, state, &m2)
            }
            _ => {}
        }
    }

    fn restart_hold(&mut self, m: usize) {
        let hold = self.peers[m].session.as_ref().map_or(0, |s| s.hold_time);
        if hold > 0 {
            self.arm(
                m,
                TimerKind::Hold,
                SimDuration::from_secs(hold as u64),
                true,
            );
        }
    }

    /// RFC 4271 §6.2's checks, in its order.
    fn check_open(&self, m: usize, o: &OpenRepr) -> Result<Session, BgpError> {
        let p = &self.peers[m];
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
        let ours = self.our_open(m).hold_time;
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
    fn established(&mut self, m: usize) {
        let p = &mut self.peers[m];
        p.recovering = false;
        p.partial_out = Some(BTreeMap::new());
        self.drop_pins(m);
        let p = &self.peers[m];
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
                self.flush_stale(m);
            }
        }
        self.dump(m);
        if self.peers[m]
            .session
            .as_ref()
            .is_some_and(|s| s.peer_gr.is_some())
        {
            self.send(m, &BgpMessage::Update(UpdateRepr::end_of_rib()));
        }
    }

    // ---- routes -----------------------------------------------------------

    fn import(&mut self, m: usize, u: UpdateRepr, attr_bytes: Option<&[u8]>) {
        if u.is_end_of_rib() {
            if self.peers[m].gr_pending {
                self.flush_stale(m);
            }
            return;
        }
        if let Err(e) = u.validate() {
            return self.protocol_error(m, &e);
        }
        let attrs = if u.nlri.is_empty() {
            None
        } else {
            let a = PathAttrs::from_update(&u).expect("validated");
            let four = self.cx(m).four_octet_as;
            Some(match attr_bytes {
                Some(w) => self.pool.remember(four, w, a),
                None => Rc::new(a),
            })
        };
        self.import_routes(m, &u.withdrawn, attrs, &u.nlri);
    }

    /// An UPDATE's withdrawals and announcements (with its attributes if it
    /// announces any) into the peer's Adj-RIB-In; then the decision.
    fn import_routes(
        &mut self,
        m: usize,
        withdrawn: &[Ipv4Net],
        attrs: Option<Rc<PathAttrs>>,
        nlri: &[Ipv4Net],
    ) {
        self.import_ids(m, withdrawn, attrs, nlri, None);
    }

    /// [`import_routes`](Self::import_routes), given the number of the
    /// one prefix the UPDATE is about, if known.
    fn import_ids(
        &mut self,
        m: usize,
        withdrawn: &[Ipv4Net],
        attrs: Option<Rc<PathAttrs>>,
        nlri: &[Ipv4Net],
        one_id: Option<usize>,
    ) {
        let local_as = self.cfg.local_as;
        let router_id = self.cfg.router_id;
        let cluster_id = self.cfg.effective_cluster_id();
        let logging = self.logging;
        // One prefix: changed and decided at once.
        let one = withdrawn.len() + nlri.len() == 1;
        let mut touched = Vec::new();
        let mut notes = Vec::new();
        for w in withdrawn {
            if one {
                return self.update_one(m, w.network(), one_id, None);
            }
            self.remove_path(w.network(), m, &mut touched);
        }
        if let Some(attrs) = attrs {
            let p = &self.peers[m];
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
            for n in nlri {
                let n = n.network();
                let refused = reject.clone().or_else(|| {
                    (!self.peers[m].cfg.import.allows(n))
                        .then(|| "denied by import policy".to_string())
                });
                match refused {
                    Some(why) => {
                        if logging {
                            notes.push(format!("ignored {n}: {why}"));
                        }
                        if one {
                            let addr = self.peers[m].addr;
                            for n in notes {
                                self.log(Some(addr), n);
                            }
                            return self.update_one(m, n, one_id, None);
                        }
                        self.remove_path(n, m, &mut touched);
                    }
                    None if one => return self.update_one(m, n, one_id, Some(attrs)),
                    None => self.set_path(n, m, attrs.clone(), &mut touched),
                }
            }
        }
        let addr = self.peers[m].addr;
        for n in notes {
            self.log(Some(addr), n);
        }
        self.decide(touched);
    }

    fn rcx(&self) -> RibCx<'_> {
        RibCx {
            peers: &self.peers,
            extra: &self.extra,
            local_attrs: &self.local_attrs,
            default_local_pref: self.cfg.default_local_pref,
        }
    }

    /// The path a peer gave for a prefix, and whether it is stale.
    fn path<'a>(
        &'a self,
        prefix: &Ipv4Net,
        e: &'a Entry,
        peer: u16,
    ) -> Option<(&'a Rc<PathAttrs>, bool)> {
        self.rcx().path(prefix, e, peer)
    }

    /// The best route of an entry by its index.
    fn best_view(&self, prefix: &Ipv4Net, e: &Entry, best: u16) -> Option<Best> {
        self.rcx().best_view(prefix, e, best)
    }

    /// Notes the prefix's best route before its paths change.
    fn touch(&self, prefix: Ipv4Net, by: u16, touched: &mut Touched) {
        let old = self
            .rib
            .get(&self.pool, &prefix)
            .and_then(|e| self.best_view(&prefix, e, e.best));
        touched.push((prefix, old, by));
    }

    fn set_path(&mut self, prefix: Ipv4Net, m: usize, attrs: Rc<PathAttrs>, touched: &mut Touched) {
        self.touch(prefix, m as u16, touched);
        let peer = m as u16;
        let e = self.rib.get_or_insert(&mut self.pool, prefix);
        if attrs.med.is_some() {
            e.flags |= MED;
        }
        if let Some(i) = e.slot(peer) {
            e.attrs[i] = Some(attrs);
            e.flags &= !STALE[i];
            return;
        }
        if e.flags & EXTRA != 0
            && let Some(x) = self
                .extra
                .get_mut(&prefix)
                .and_then(|v| v.iter_mut().find(|x| x.peer == peer))
        {
            x.attrs = attrs;
            x.stale = false;
            return;
        }
        self.peers[m].routes += 1;
        if let Some(i) = (0..2).find(|&i| e.attrs[i].is_none()) {
            e.attrs[i] = Some(attrs);
            e.peer[i] = peer;
            e.flags &= !STALE[i];
        } else {
            e.flags |= EXTRA;
            let v = self.extra.entry(prefix).or_default();
            let at = v.partition_point(|x| x.peer < peer);
            v.insert(
                at,
                ExtraPath {
                    peer,
                    attrs,
                    stale: false,
                },
            );
        }
    }

    /// Removes a peer's path for a prefix; says whether it had one.
    fn remove_path(&mut self, prefix: Ipv4Net, m: usize, touched: &mut Touched) -> bool {
        let peer = m as u16;
        match self.rib.get(&self.pool, &prefix) {
            Some(e) if self.path(&prefix, e, peer).is_some() => {}
            _ => return false,
        }
        self.touch(prefix, m as u16, touched);
        let e = self.rib.get_mut(&self.pool, &prefix).expect("present");
        if let Some(i) = e.slot(peer) {
            e.attrs[i] = None;
            e.peer[i] = NONE;
            e.flags &= !STALE[i];
        } else {
            let v = self.extra.get_mut(&prefix).expect("an extra path");
            v.retain(|x| x.peer != peer);
            if v.is_empty() {
                self.extra.remove(&prefix);
                e.flags &= !EXTRA;
            }
        }
        self.peers[m].routes -= 1;
        true
    }

    fn set_local(&mut self, prefix: Ipv4Net, on: bool, touched: &mut Touched) {
        self.touch(prefix, LOCAL, touched);
        let e = self.rib.get_or_insert(&mut self.pool, prefix);
        if on {
            e.flags |= ORIGINATED;
        } else {
            e.flags &= !ORIGINATED;
        }
    }

    /// The prefixes a peer has a path for (only stale ones if `stale`).
    fn prefixes_of(&self, m: usize, stale: bool) -> Vec<Ipv4Net> {
        if self.peers[m].routes == 0 {
            return Vec::new();
        }
        self.rib
            .sorted()
            .into_iter()
            .filter(|(p, e)| self.path(p, e, m as u16).is_some_and(|(_, s)| s || !stale))
            .map(|(p, _)| *p)
            .collect()
    }

    /// Marks every path of the peer stale.
    fn mark_stale(&mut self, m: usize) {
        let peer = m as u16;
        for (p, e) in self.rib.iter_mut() {
            if let Some(i) = e.slot(peer) {
                e.flags |= STALE[i];
            } else if e.flags & EXTRA != 0
                && let Some(x) = self
                    .extra
                    .get_mut(p)
                    .and_then(|v| v.iter_mut().find(|x| x.peer == peer))
            {
                x.stale = true;
            }
        }
    }

    /// Runs the decision process for the prefixes whose paths changed
    /// (each with its best route before the first change); installs,
    /// uninstalls and advertises what changed.
    fn decide(&mut self, mut touched: Touched) {
        if touched.is_empty() {
            return;
        }
        if touched.len() > 1 {
            // Prefix order; the first note of a prefix has its old best
            // (and if another peer's path changed too, none is "the" one).
            touched.sort_by_key(|t| t.0);
            touched.dedup_by(|later, first| {
                if later.0 != first.0 {
                    return false;
                }
                if later.2 != first.2 {
                    first.2 = NONE;
                }
                true
            });
        }
        let mut changes = Vec::new();
        for (prefix, old, by) in touched {
            let Some(e) = self.rib.get(&self.pool, &prefix) else {
                continue;
            };
            let ix = self.rcx().best_after(&prefix, e, by);
            let new = self.best_view(&prefix, e, ix);
            if old == new {
                if ix == NONE {
                    self.rib.remove(&self.pool, &prefix);
                }
                continue;
            }
            self.decided(prefix, &old, &new);
            if ix == NONE {
                self.rib.remove(&self.pool, &prefix);
            } else {
                self.rib.get_mut(&self.pool, &prefix).expect("present").best = ix;
            }
            changes.push(Change {
                prefix,
                new: new.map(|b| (b, ix)),
            });
        }
        self.export(&changes);
    }

    /// A new best route for a prefix (or none): into the kernel.
    fn decided(&mut self, prefix: Ipv4Net, old: &Option<Best>, new: &Option<Best>) {
        let was_bgp = matches!(old, Some(b) if b.source != Source::Local);
        match new {
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
            }
            None => {
                if self.logging {
                    self.log(None, format!("no route for {prefix}"));
                }
                if was_bgp {
                    self.out.push(Output::Uninstall { prefix });
                }
            }
        }
    }

    /// One prefix's path from a peer set (or removed), then decided: what
    /// `set_path`/`remove_path` and `decide` do, with one lookup.
    fn update_one(
        &mut self,
        m: usize,
        prefix: Ipv4Net,
        id: Option<usize>,
        path: Option<Rc<PathAttrs>>,
    ) {
        let peer = m as u16;
        let id = id.unwrap_or_else(|| self.pool.intern(prefix));
        self.rib.grow(id, self.pool.prefixes());
        let rcx = RibCx {
            peers: &self.peers,
            extra: &self.extra,
            local_attrs: &self.local_attrs,
            default_local_pref: self.cfg.default_local_pref,
        };
        let mut routes = 0isize;
        enum Done {
            Decided(Option<Best>, Option<Best>, u16),
            Nothing,
            /// More than two paths: the general way.
            General(Option<Rc<PathAttrs>>),
        }
        let rib = &mut self.rib;
        if path.as_ref().is_some_and(|a| a.med.is_some()) {
            rib.slots[id].e.flags |= MED;
        }
        let done = match rib.slots[id].present() {
            false => match path {
                None => Done::Nothing,
                Some(a) => {
                    let s = &mut rib.slots[id];
                    s.key = prefix;
                    let e = &mut s.e;
                    e.attrs[0] = Some(a.clone());
                    e.peer[0] = peer;
                    e.best = peer;
                    rib.len += 1;
                    routes = 1;
                    let new = Best {
                        source: Source::Peer(rcx.peers[m].addr),
                        attrs: a,
                    };
                    Done::Decided(None, Some(new), peer)
                }
            },
            true => {
                let e = &mut rib.slots[id].e;
                let slot = e.slot(peer);
                if e.flags & EXTRA != 0
                    || (slot.is_none() && path.is_some() && e.attrs.iter().all(Option::is_some))
                {
                    Done::General(path)
                } else {
                    let old = rcx.best_view(&prefix, e, e.best);
                    let mut changed = true;
                    match (slot, path) {
                        (None, None) => changed = false,
                        (Some(i), None) => {
                            e.attrs[i] = None;
                            e.peer[i] = NONE;
                            e.flags &= !STALE[i];
                            routes = -1;
                        }
                        (Some(i), Some(a)) => {
                            e.attrs[i] = Some(a);
                            e.flags &= !STALE[i];
                        }
                        (None, Some(a)) => {
                            let i = if e.attrs[0].is_none() { 0 } else { 1 };
                            e.attrs[i] = Some(a);
                            e.peer[i] = peer;
                            e.flags &= !STALE[i];
                            routes = 1;
                        }
                    }
                    if changed {
                        let ix = rcx.compute_best(&prefix, e);
                        let new = rcx.best_view(&prefix, e, ix);
                        if ix == NONE {
                            rib.clear(id);
                        } else {
                            e.best = ix;
                        }
                        Done::Decided(old, new, ix)
                    } else {
                        Done::Nothing
                    }
                }
            }
        };
        let (old, new, ix) = match done {
            Done::Nothing => return,
            Done::General(path) => {
                let mut touched = Vec::new();
                match path {
                    Some(a) => self.set_path(prefix, m, a, &mut touched),
                    None => {
                        self.remove_path(prefix, m, &mut touched);
                    }
                }
                return self.decide(touched);
            }
            Done::Decided(old, new, ix) => (old, new, ix),
        };
        let p = &mut self.peers[m];
        p.routes = (p.routes as isize + routes) as usize;
        if old == new {
            return;
        }
        self.decided(prefix, &old, &new);
        self.export(&[Change {
            prefix,
            new: new.map(|b| (b, ix)),
        }]);
    }

    // ---- export -------------------------------------------------------------

    /// The attributes group `g` advertises the best route `best` of
    /// `prefix` with (to its members other than the route's source), or
    /// `None` if it is not advertised to them.
    fn group_export(&self, g: usize, prefix: Ipv4Net, best: &Best, src: u16) -> Option<PathAttrs> {
        if !self.group_exports(g, prefix, best, src) {
            return None;
        }
        let to = &self.groups[g];
        let from = match src {
            LOCAL => None,
            s => Some(&self.peers[s as usize]),
        };
        let from_ibgp = from.is_some_and(|f| f.ibgp);
        let reflecting = to.ibgp && from_ibgp;
        let local = to.local;
        let mut a = (*best.attrs).clone();
        if from.is_some() {
            a.propagate_unknown();
        } else {
            a.next_hop = local;
        }
        if !to.ibgp {
            a.prepend(self.cfg.local_as);
            if !to.next_hop_keep {
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
            if to.next_hop_self {
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
        Some(a)
    }

    /// Whether group `g` advertises the best route `best` of `prefix` (see
    /// [`group_export`](Self::group_export)).
    fn group_exports(&self, g: usize, prefix: Ipv4Net, best: &Best, src: u16) -> bool {
        let to = &self.groups[g];
        let from = match src {
            LOCAL => None,
            s => Some(&self.peers[s as usize]),
        };
        let reflecting = to.ibgp && from.is_some_and(|f| f.ibgp);
        // iBGP split horizon, unless reflecting (RFC 4456 §6): a client's
        // routes go to everyone, a non-client's only to clients.
        if reflecting && !(from.is_some_and(|f| f.cfg.rr_client) || to.rr_client) {
            return false;
        }
        if !to.export.allows(prefix) {
            return false;
        }
        if reflecting {
            // BIRD's export check (bgp_preexport): not to a session whose
            // cluster id (`rr cluster id` on client sessions, the router id
            // on others) is already in the CLUSTER_LIST.
            let to_cluster = if to.rr_client {
                self.cfg.effective_cluster_id()
            } else {
                self.cfg.router_id
            };
            if best.attrs.cluster_list.contains(&to_cluster) {
                return false;
            }
        }
        true
    }

    /// Sets what group `g` advertises for `prefix`; returns the attributes
    /// it keeps (the old `Rc` if they are equal).
    fn set_group_out(
        &mut self,
        g: usize,
        prefix: Ipv4Net,
        new: Option<(PathAttrs, u16)>,
    ) -> Option<Rc<PathAttrs>> {
        let grp = &mut self.groups[g];
        let Some((attrs, src)) = new else {
            if let Some(o) = grp.out.remove(&prefix) {
                grp.unindex(&o.attrs, prefix);
                if grp.out.is_empty() {
                    grp.span = None;
                }
            }
            return None;
        };
        if let Some(o) = grp.out.get_mut(&prefix) {
            if *o.attrs == attrs {
                o.src = src;
                return Some(o.attrs.clone());
            }
            let old = o.attrs.clone();
            grp.out.remove(&prefix);
            grp.unindex(&old, prefix);
        }
        let (attrs, shared) = grp.index(Rc::new(attrs), prefix);
        grp.span = Some(match grp.span {
            Some((lo, hi)) => (lo.min(prefix), hi.max(prefix)),
            None => (prefix, prefix),
        });
        grp.out.insert(
            prefix,
            GroupOut {
                attrs: attrs.clone(),
                src,
                shared,
                wire: None,
            },
        );
        Some(attrs)
    }

    /// Advertises the changed best routes to every established session
    /// (and keeps the groups' tables).
    fn export(&mut self, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        let n = changes.len();
        let ng = self.groups.len();
        if n == 1 && self.pinned.is_empty() {
            // Nothing advertised for it before, nor now (a client learning
            // a reflected route): nothing to send, nothing to keep.
            let c = &changes[0];
            let quiet = (0..ng).all(|g| {
                self.groups[g].out(&c.prefix).is_none()
                    && c.new
                        .as_ref()
                        .is_none_or(|(b, src)| !self.group_exports(g, c.prefix, b, *src))
            });
            if quiet {
                return;
            }
        }
        let mut scratch = std::mem::take(&mut self.export_scratch);
        let (mut res, mut special) = (
            std::mem::take(&mut scratch.res),
            std::mem::take(&mut scratch.special),
        );
        let mut any = false;
        for g in 0..ng {
            for c in changes {
                let old = self.groups[g]
                    .out(&c.prefix)
                    .map(|o| (o.attrs.clone(), o.src));
                let new = c
                    .new
                    .as_ref()
                    .and_then(|(b, src)| Some((self.group_export(g, c.prefix, b, *src)?, *src)));
                let new = if old.is_none() && new.is_none() {
                    None
                } else {
                    let src = new.as_ref().map(|x| x.1);
                    self.set_group_out(g, c.prefix, new).zip(src)
                };
                // The sources are advertised something else than the rest.
                special.extend(old.as_ref().map(|x| x.1));
                special.extend(new.as_ref().map(|x| x.1));
                any |= old.is_some() || new.is_some();
                res.push((old, new));
            }
        }
        if !any && self.pinned.is_empty() {
            // Nothing was advertised or is to be: nothing to send.
            res.clear();
            special.clear();
            self.export_scratch = ExportScratch {
                res,
                special,
                ..scratch
            };
            return;
        }
        if !self.pinned.is_empty() {
            for c in changes {
                special.extend(
                    self.pinned
                        .range((c.prefix, 0)..=(c.prefix, u16::MAX))
                        .map(|((_, x), _)| *x),
                );
            }
        }
        special.sort_unstable();
        special.dedup();
        let mut cache = PlanCache::default();
        // The generic plan's UPDATEs per group and AS-number width.
        let mut generic = std::mem::take(&mut scratch.generic);
        generic.clear();
        generic.resize(2 * ng, None);
        for m in 0..self.peers.len() {
            let p = &self.peers[m];
            if p.state != State::Established {
                continue;
            }
            let g = p.group;
            let res = &res[g * n..(g + 1) * n];
            let me = m as u16;
            let not_mine = |x: &Adv| -> Option<Rc<PathAttrs>> {
                x.as_ref().filter(|x| x.1 != me).map(|x| x.0.clone())
            };
            // (Read before taking: most peers have none, and are not written.)
            if self.peers[m].partial_out.is_some() {
                let mut partial = self.peers[m].partial_out.take().expect("some");
                // Its initial dump is being sent: what it was advertised
                // is recorded.
                let mut b = PlanBuilder::default();
                for (c, (_, new)) in changes.iter().zip(res) {
                    let new = not_mine(new);
                    match b.add(c.prefix, partial.get(&c.prefix), new.as_ref()) {
                        Sent::Announced => {
                            partial.insert(c.prefix, new.expect("announced"));
                        }
                        Sent::Withdrawn => {
                            partial.remove(&c.prefix);
                        }
                        Sent::Same => {}
                    }
                }
                self.peers[m].partial_out = Some(partial);
                self.send_plan(m, &b.plan, &mut cache);
            } else if special.binary_search(&me).is_ok() {
                let mut b = PlanBuilder::default();
                for (c, (old, new)) in changes.iter().zip(res) {
                    let pin = if self.pinned.is_empty() {
                        None
                    } else {
                        self.pinned.remove(&(c.prefix, me))
                    };
                    let old = pin.or_else(|| not_mine(old));
                    b.add(c.prefix, old.as_ref(), not_mine(new).as_ref());
                }
                self.send_plan(m, &b.plan, &mut cache);
            } else if self.logging {
                let mut b = PlanBuilder::default();
                for (c, (old, new)) in changes.iter().zip(res) {
                    b.add(
                        c.prefix,
                        old.as_ref().map(|x| &x.0),
                        new.as_ref().map(|x| &x.0),
                    );
                }
                self.send_plan(m, &b.plan, &mut cache);
            } else {
                let four = self.cx(m).four_octet_as;
                let k = 2 * g + four as usize;
                if generic[k].is_none() {
                    let mut b = PlanBuilder::default();
                    for (c, (old, new)) in changes.iter().zip(res) {
                        b.add(
                            c.prefix,
                            old.as_ref().map(|x| &x.0),
                            new.as_ref().map(|x| &x.0),
                        );
                    }
                    generic[k] = Some(self.plan_wires(&b.plan, g, four, &mut cache));
                }
                let addr = self.peers[m].addr;
                for w in generic[k].as_ref().expect("computed") {
                    self.out.push(Output::Send(addr, w.clone()));
                }
            }
        }
        res.clear();
        special.clear();
        generic.clear();
        self.export_scratch = ExportScratch {
            res,
            special,
            generic,
        };
    }

    /// Sends a plan's UPDATEs to a peer.
    fn send_plan(&mut self, m: usize, plan: &Plan, cache: &mut PlanCache) {
        if plan.is_empty() {
            return;
        }
        if self.logging {
            let cx = self.cx(m);
            let room = MAX_MESSAGE_LEN - HEADER_LEN - 4;
            for chunk in chunks(&plan.withdraw, room) {
                let u = UpdateRepr {
                    withdrawn: chunk,
                    ..Default::default()
                };
                self.send(m, &BgpMessage::Update(u));
            }
            for (attrs, nlri) in &plan.announce {
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
                    self.send(m, &BgpMessage::Update(u));
                }
            }
            return;
        }
        let g = self.peers[m].group;
        let four = self.cx(m).four_octet_as;
        let addr = self.peers[m].addr;
        for w in self.plan_wires(plan, g, four, cache) {
            self.out.push(Output::Send(addr, w));
        }
    }

    /// A plan's UPDATEs, encoded once per pass (and a lone announcement
    /// once per route: the group keeps it).
    fn plan_wires(
        &mut self,
        plan: &Plan,
        g: usize,
        four: bool,
        cache: &mut PlanCache,
    ) -> Vec<Wire> {
        if plan.is_empty() {
            return Vec::new();
        }
        if four
            && plan.withdraw.is_empty()
            && let [(a, ps)] = &plan.announce[..]
            && let [p] = &ps[..]
            && let Some(o) = self.groups[g].out.get_mut(p)
            && Rc::ptr_eq(&o.attrs, a)
        {
            return vec![o.wire.get_or_insert_with(|| lone_update(a, *p)).clone()];
        }
        let i = match cache
            .plans
            .iter()
            .position(|(p, f, _)| *f == four && p == plan)
        {
            Some(i) => i,
            None => {
                let cx = BgpContext {
                    four_octet_as: four,
                };
                let msgs = encode(&plan.withdraw, &plan.announce, cx);
                let copy = Plan {
                    withdraw: plan.withdraw.clone(),
                    announce: plan.announce.clone(),
                };
                cache.plans.push((copy, four, msgs));
                cache.plans.len() - 1
            }
        };
        cache.plans[i].2.clone()
    }

    /// The whole table to a peer whose session just came up (or asked for a
    /// route refresh): what its group advertises, less the routes it is the
    /// source of, less what it was already sent.
    fn dump(&mut self, m: usize) {
        let partial = self.peers[m].partial_out.take().unwrap_or_default();
        let g = self.peers[m].group;
        let me = m as u16;
        let cx = self.cx(m);
        if self.logging || !partial.is_empty() || !cx.four_octet_as {
            let mut b = PlanBuilder::default();
            let grp = &self.groups[g];
            for (prefix, _) in self.rib.sorted() {
                let new = grp
                    .out
                    .get(prefix)
                    .filter(|o| o.src != me)
                    .map(|o| &o.attrs);
                b.add(*prefix, partial.get(prefix), new);
            }
            let mut cache = PlanCache::default();
            self.send_plan(m, &b.plan, &mut cache);
            return;
        }
        // Every route alone in its UPDATE unless its attributes are shared.
        enum Item {
            Wire(Wire),
            Group(usize),
        }
        let mut items = Vec::new();
        let mut shared: Vec<(Rc<PathAttrs>, Vec<Ipv4Net>)> = Vec::new();
        // Equal attributes are one `Rc` in a group (`Group::index`): found
        // by its address (only looked up: the items keep prefix order).
        let mut index: BTreeMap<usize, usize> = BTreeMap::new();
        for (p, o) in self.groups[g].out.iter_mut() {
            if o.src == me {
                continue;
            }
            if !o.shared {
                let attrs = &o.attrs;
                let w = o.wire.get_or_insert_with(|| lone_update(attrs, *p));
                items.push(Item::Wire(w.clone()));
                continue;
            }
            let key = Rc::as_ptr(&o.attrs) as usize;
            match index.get(&key) {
                Some(&i) => shared[i].1.push(*p),
                None => {
                    index.insert(key, shared.len());
                    items.push(Item::Group(shared.len()));
                    shared.push((o.attrs.clone(), vec![*p]));
                }
            }
        }
        let addr = self.peers[m].addr;
        self.out.reserve(items.len());
        for item in items {
            match item {
                Item::Wire(w) => self.out.push(Output::Send(addr, w)),
                Item::Group(i) => {
                    for w in encode(&[], &shared[i..i + 1], cx) {
                        self.out.push(Output::Send(addr, w));
                    }
                }
            }
        }
    }

    /// A peer's new BGP identifier. The routes it is the source of keep
    /// what was advertised for them, computed with the old one: recorded
    /// for each established member that got them, where it differs.
    fn set_peer_id(&mut self, m: usize, id: Ipv4Addr) {
        let old = std::mem::replace(&mut self.peers[m].peer_id, id);
        if old == id || self.peers[m].routes == 0 {
            return;
        }
        let me = m as u16;
        let mine: Vec<(Ipv4Net, Best)> = self
            .rib
            .sorted()
            .into_iter()
            .filter(|(_, e)| e.best == me)
            .filter_map(|(p, e)| Some((*p, self.best_view(p, e, e.best)?)))
            .collect();
        for g in 0..self.groups.len() {
            for (prefix, best) in &mine {
                let Some(o) = self.groups[g].out.get(prefix) else {
                    continue;
                };
                let sent = o.attrs.clone();
                let new = self.group_export(g, *prefix, best, me);
                if new.as_ref() == Some(&*sent) {
                    continue;
                }
                for x in 0..self.peers.len() {
                    let p = &self.peers[x];
                    if x != m
                        && p.group == g
                        && p.state == State::Established
                        && p.partial_out.is_none()
                    {
                        self.pinned
                            .entry((*prefix, x as u16))
                            .or_insert_with(|| sent.clone());
                    }
                }
                self.set_group_out(g, *prefix, new.map(|a| (a, me)));
            }
        }
    }

    /// Forgets what was recorded as advertised to a peer.
    fn drop_pins(&mut self, m: usize) {
        if !self.pinned.is_empty() {
            let me = m as u16;
            self.pinned.retain(|(_, x), _| *x != me);
        }
    }
}

impl<'r> RibCx<'r> {
    /// The path a peer gave for a prefix, and whether it is stale.
    fn path<'a>(
        &self,
        prefix: &Ipv4Net,
        e: &'a Entry,
        peer: u16,
    ) -> Option<(&'a Rc<PathAttrs>, bool)>
    where
        'r: 'a,
    {
        if let Some(i) = e.slot(peer) {
            return Some((e.attrs[i].as_ref()?, e.flags & STALE[i] != 0));
        }
        if e.flags & EXTRA == 0 {
            return None;
        }
        self.extra
            .get(prefix)?
            .iter()
            .find(|x| x.peer == peer)
            .map(|x| (&x.attrs, x.stale))
    }

    /// The best route of an entry by its index.
    fn best_view(&self, prefix: &Ipv4Net, e: &Entry, best: u16) -> Option<Best> {
        match best {
            NONE => None,
            LOCAL => Some(Best {
                source: Source::Local,
                attrs: self.local_attrs.clone(),
            }),
            i => Some(Best {
                source: Source::Peer(self.peers[i as usize].addr),
                attrs: self.path(prefix, e, i)?.0.clone(),
            }),
        }
    }

    fn cand<'a>(&self, peer: u16, attrs: &'a PathAttrs) -> CandRef<'a> {
        let p = &self.peers[peer as usize];
        CandRef {
            source: Source::Peer(p.addr),
            attrs,
            ibgp: p.ibgp,
            peer_id: p.peer_id,
        }
    }

    /// The decision among an entry's paths after peer `by`'s path alone
    /// changed (`by` < `LOCAL`), `e.best` being the decision before. With
    /// more than two paths and none ever with a MED, the decision is a
    /// total order (steps (a)-(b), (d), then (f)-(g) of RFC 4271 §9.1.2.2,
    /// lexicographically), so the best of the old best and the changed
    /// path is the best of all: a top-of-rack router's hundred paths per
    /// prefix are not all compared again on every UPDATE. Otherwise, and
    /// when the changed path was the best, [`compute_best`](Self::compute_best).
    fn best_after(&self, prefix: &Ipv4Net, e: &Entry, by: u16) -> u16 {
        let b = e.best;
        if by >= LOCAL || b >= LOCAL || b == by || e.flags & (EXTRA | ORIGINATED | MED) != EXTRA {
            return self.compute_best(prefix, e);
        }
        let Some((old, _)) = self.path(prefix, e, b) else {
            return self.compute_best(prefix, e);
        };
        let Some((new, _)) = self.path(prefix, e, by) else {
            // A path other than the best went: the best stays.
            return b;
        };
        let c = [self.cand(b, old), self.cand(by, new)];
        match best_of(&c, self.default_local_pref) {
            Some(1) => by,
            _ => b,
        }
    }

    /// The decision among an entry's paths: a peer index, `LOCAL` or `NONE`.
    fn compute_best(&self, prefix: &Ipv4Net, e: &Entry) -> u16 {
        if e.flags & ORIGINATED != 0 {
            return LOCAL;
        }
        let lp = self.default_local_pref;
        if e.flags & EXTRA == 0 {
            return match (&e.attrs[0], &e.attrs[1]) {
                (None, None) => NONE,
                (Some(_), None) => e.peer[0],
                (None, Some(_)) => e.peer[1],
                (Some(a), Some(b)) => {
                    let c = [self.cand(e.peer[0], a), self.cand(e.peer[1], b)];
                    match best_of(&c, lp) {
                        Some(i) => e.peer[i],
                        None => NONE,
                    }
                }
            };
        }
        let extra = self.extra.get(prefix).map_or(&[][..], Vec::as_slice);
        let mut peers = Vec::with_capacity(2 + extra.len());
        let mut cands = Vec::with_capacity(2 + extra.len());
        for i in 0..2 {
            if let Some(a) = &e.attrs[i] {
                peers.push(e.peer[i]);
                cands.push(self.cand(e.peer[i], a));
            }
        }
        for x in extra {
            peers.push(x.peer);
            cands.push(self.cand(x.peer, &x.attrs));
        }
        best_of(&cands, lp).map_or(NONE, |i| peers[i])
    }
}

impl Group {
    /// What the group advertises for `prefix`.
    #[inline]
    fn out(&self, prefix: &Ipv4Net) -> Option<&GroupOut> {
        match self.span {
            Some((lo, hi)) if lo <= *prefix && *prefix <= hi => self.out.get(prefix),
            _ => None,
        }
    }

    /// Records `prefix` under its attributes; returns them (the `Rc` of
    /// another prefix with equal ones, if there is one) and whether there
    /// is (marking that one shared too).
    fn index(&mut self, attrs: Rc<PathAttrs>, prefix: Ipv4Net) -> (Rc<PathAttrs>, bool) {
        let h = attrs_hash(&attrs);
        let others: Vec<(Ipv4Net, Rc<PathAttrs>)> = self
            .by_attrs
            .range((h, attrs.clone(), Ipv4Net::DEFAULT)..)
            .take_while(|(g, a, _)| *g == h && **a == *attrs)
            .take(2)
            .map(|(_, a, p)| (*p, a.clone()))
            .collect();
        // Equal attributes share one `Rc` (a dump groups them by it).
        let attrs = others.first().map_or(attrs, |(_, a)| a.clone());
        self.by_attrs.insert((h, attrs.clone(), prefix));
        if let [(q, _)] = others[..]
            && let Some(o) = self.out.get_mut(&q)
        {
            o.shared = true;
        }
        (attrs, !others.is_empty())
    }

    /// Forgets `prefix` under its attributes (the one left with equal
    /// attributes, if any, is not shared any more).
    fn unindex(&mut self, attrs: &Rc<PathAttrs>, prefix: Ipv4Net) {
        let h = attrs_hash(attrs);
        self.by_attrs.remove(&(h, attrs.clone(), prefix));
        let others: Vec<Ipv4Net> = self
            .by_attrs
            .range((h, attrs.clone(), Ipv4Net::DEFAULT)..)
            .take_while(|(g, a, _)| *g == h && **a == **attrs)
            .take(2)
            .map(|(_, _, p)| *p)
            .collect();
        if let [q] = others[..]
            && let Some(o) = self.out.get_mut(&q)
        {
            o.shared = false;
        }
    }
}

/// The UPDATE announcing one prefix with these attributes (4-octet AS
/// numbers).
fn lone_update(attrs: &PathAttrs, prefix: Ipv4Net) -> Wire {
    let u = UpdateRepr {
        withdrawn: Vec::new(),
        attributes: attrs.to_attributes(),
        nlri: vec![prefix],
    };
    BgpMessage::Update(u)
        .to_bytes(BgpContext::FOUR_OCTET)
        .into()
}

/// The UPDATE messages of a plan, as they are sent one by one.
fn encode(
    withdraw: &[Ipv4Net],
    announce: &[(Rc<PathAttrs>, Vec<Ipv4Net>)],
    cx: BgpContext,
) -> Vec<Wire> {
    let mut out = Vec::new();
    let room = MAX_MESSAGE_LEN - HEADER_LEN - 4;
    for chunk in chunks(withdraw, room) {
        let u = UpdateRepr {
            withdrawn: chunk,
            ..Default::default()
        };
        out.push(BgpMessage::Update(u).to_bytes(cx).into());
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
            out.push(BgpMessage::Update(u).to_bytes(cx).into());
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

fn be16(b: &[u8], at: usize) -> usize {
    u16::from_be_bytes([b[at], b[at + 1]]) as usize
}

/// Decodes a withdrawn-routes or NLRI field into `out`, as the codec does;
/// `false` if it is malformed.
/// An UPDATE frame's withdrawn-routes, path-attribute and NLRI fields (as
/// ranges of the frame), if its lengths hold.
fn update_fields(frame: &[u8]) -> Option<[std::ops::Range<usize>; 3]> {
    let body = frame.get(HEADER_LEN..)?;
    if body.len() < 4 {
        return None;
    }
    let wlen = be16(body, 0);
    if 2 + wlen + 2 > body.len() {
        return None;
    }
    let alen = be16(body, 2 + wlen);
    let astart = 4 + wlen;
    if astart + alen > body.len() {
        return None;
    }
    let at = |r: std::ops::Range<usize>| HEADER_LEN + r.start..HEADER_LEN + r.end;
    Some([
        at(2..2 + wlen),
        at(astart..astart + alen),
        at(astart + alen..body.len()),
    ])
}

fn prefixes_into(mut b: &[u8], out: &mut Vec<Ipv4Net>) -> bool {
    while let Some((&len, rest)) = b.split_first() {
        if len > 32 {
            return false;
        }
        let n = (len as usize).div_ceil(8);
        if rest.len() < n {
            return false;
        }
        let mut octets = [0u8; 4];
        octets[..n].copy_from_slice(&rest[..n]);
        out.push(Ipv4Net {
            addr: Ipv4Addr::from(octets),
            len,
        });
        b = &rest[n..];
    }
    true
}

/// The path-attribute field of an UPDATE frame, if its lengths hold.
fn attribute_field(frame: &[u8]) -> Option<&[u8]> {
    if frame.get(18) != Some(&msg_type::UPDATE) {
        return None;
    }
    let body = frame.get(HEADER_LEN..)?;
    let wlen = u16::from_be_bytes([*body.first()?, *body.get(1)?]) as usize;
    let alen = u16::from_be_bytes([*body.get(2 + wlen)?, *body.get(3 + wlen)?]) as usize;
    body.get(4 + wlen..4 + wlen + alen)
}

/// Asks the processor to fetch the cache line at `p` (a hint: changes
/// nothing but timing).
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults nor reads into the program (any
    // address may be hinted), and x86-64 always has SSE.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// [`prefetch`]es every cache line of `*r`.
#[inline(always)]
pub(crate) fn prefetch_all<T>(r: &T) {
    let p: *const u8 = (r as *const T).cast();
    let mut off = 0;
    while off < std::mem::size_of::<T>() {
        prefetch(p.wrapping_add(off));
        off += 64;
    }
}

/// The decision after one peer's path changed (`RibCx::best_after`) is
/// the decision over all paths, whatever the order of changes: random
/// announcements, replacements and withdrawals from eight peers, iBGP and
/// eBGP, with and without MEDs, checked after every change.
#[cfg(test)]
mod incremental_decision {
    use super::*;
    use sim_core::rng::RootSeed;
    use sim_core::wire::bgp::{AsSegment, Origin};

    fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
        Ipv4Addr::new(a, b, c, d)
    }

    fn run(with_med: bool, seed: u64) {
        let mut cfg = SpeakerConfig::new(ip(10, 0, 0, 1), 64512);
        for i in 0..8u8 {
            let asn = if i < 4 {
                64512
            } else {
                65000 + u32::from(i % 3)
            };
            cfg.neighbors.push(Neighbor::new(ip(10, 0, 0, 10 + i), asn));
        }
        let mut sp = Speaker::new(cfg, RootSeed(seed).stream("s"));
        sp.set_logging(false);
        let mut changes = RootSeed(seed).stream("changes");
        let mut rnd = |n: u64| changes.below(n);
        for p in sp.peers.iter_mut() {
            p.peer_id = ip(10, 9, 9, 1 + rnd(250) as u8);
        }
        let prefixes: Vec<Ipv4Net> = (0..4)
            .map(|i| Ipv4Net::new(ip(10, 244, i, 0), 24).unwrap())
            .collect();
        let mut checked = 0;
        for _ in 0..4000 {
            let m = rnd(8) as usize;
            let prefix = prefixes[rnd(4) as usize];
            let mut touched = Touched::new();
            if rnd(4) == 0 {
                sp.remove_path(prefix, m, &mut touched);
            } else {
                let mut a = PathAttrs::local(ip(10, 0, 0, 100 + rnd(3) as u8));
                a.origin = if rnd(4) == 0 {
                    Origin::Incomplete
                } else {
                    Origin::Igp
                };
                let len = rnd(3) as usize;
                if m >= 4 || len > 0 {
                    let first = if m >= 4 {
                        65000 + (m as u32 % 3)
                    } else {
                        65009
                    };
                    let mut asns = vec![first];
                    asns.extend((0..len).map(|k| 65100 + k as u32));
                    a.as_path = vec![AsSegment::sequence(asns)];
                }
                if m < 4 {
                    a.local_pref = Some(100 + 50 * rnd(2) as u32);
                    if rnd(3) == 0 {
                        a.originator_id = Some(ip(10, 0, 0, 1 + rnd(9) as u8));
                        a.cluster_list = (0..rnd(3)).map(|k| ip(244, 0, 0, k as u8)).collect();
                    }
                }
                if with_med && rnd(3) == 0 {
                    a.med = Some(rnd(3) as u32);
                }
                sp.set_path(prefix, m, Rc::new(a), &mut touched);
            }
            sp.decide(touched);
            if let Some(e) = sp.rib.get(&sp.pool, &prefix) {
                assert_eq!(e.best, sp.rcx().compute_best(&prefix, e), "{prefix}");
                checked += usize::from(e.flags & EXTRA != 0);
            }
        }
        // Many of the checks had more than two paths to choose from.
        assert!(checked > 1000, "{checked}");
    }

    #[test]
    fn matches_the_whole_decision_without_meds() {
        for seed in 1..=8 {
            run(false, seed);
        }
    }

    /// RFC 4271's MED step is not transitive: with A and B from one AS (B
    /// the lower MED) and C from another, the best of all three is C (B
    /// drops A, C's identifier beats B's), while A beat C before B came,
    /// and B beats A. Decided over all paths, it is C.
    #[test]
    fn a_med_anomaly_is_decided_over_all_paths() {
        let mut cfg = SpeakerConfig::new(ip(10, 0, 0, 1), 64512);
        let (a, b, c) = (0usize, 1usize, 2usize);
        for (i, asn) in [65001u32, 65001, 65002].into_iter().enumerate() {
            cfg.neighbors
                .push(Neighbor::new(ip(10, 0, 0, 10 + i as u8), asn));
        }
        let mut sp = Speaker::new(cfg, RootSeed(1).stream("s"));
        sp.set_logging(false);
        for (m, id) in [(a, 1u8), (b, 3), (c, 2)] {
            sp.peers[m].peer_id = ip(10, 9, 9, id);
        }
        let prefix = Ipv4Net::new(ip(10, 244, 0, 0), 24).unwrap();
        let path = |asn: u32, med: Option<u32>| {
            let mut x = PathAttrs::local(ip(10, 0, 0, 100));
            x.as_path = vec![AsSegment::sequence(vec![asn])];
            x.med = med;
            Rc::new(x)
        };
        for (m, attrs) in [(a, path(65001, Some(1))), (c, path(65002, None))] {
            let mut touched = Touched::new();
            sp.set_path(prefix, m, attrs, &mut touched);
            sp.decide(touched);
        }
        let best = |sp: &Speaker| sp.rib.get(&sp.pool, &prefix).unwrap().best;
        assert_eq!(best(&sp), a as u16);
        let mut touched = Touched::new();
        sp.set_path(prefix, b, path(65001, Some(0)), &mut touched);
        sp.decide(touched);
        assert_eq!(best(&sp), c as u16);
    }

    #[test]
    fn matches_the_whole_decision_with_meds() {
        for seed in 1..=4 {
            run(true, seed);
        }
    }
}
