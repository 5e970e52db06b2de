//! The FIB: policy rules, routing tables and longest-prefix match.
//!
//! Lookup follows the kernel (net/ipv4/fib_rules.c, fib_trie.c,
//! fib_semantics.c): rules in priority order select tables; in a table the
//! longest matching prefix wins; among routes of one prefix the lowest metric
//! that satisfies the scope and output-device constraints wins; the route's
//! type then decides (unicast, local, broadcast, blackhole, unreachable,
//! prohibit). Multipath routes pick a nexthop by a deterministic hash of the
//! flow and the nexthop weights.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, OnceLock};

use sim_core::net::Ipv4Net;
use sim_core::trace::RouteType;

use crate::cmd::{Scope, TABLE_DEFAULT, TABLE_LOCAL, TABLE_MAIN, TableId};
use crate::linux::types::DevId;

/// Route protocol numbers (`/etc/iproute2/rt_protos`).
pub const PROTO_KERNEL: u8 = 2;
pub const PROTO_BOOT: u8 = 3;
pub const PROTO_STATIC: u8 = 4;
pub const PROTO_BIRD: u8 = 12;

pub fn proto_name(p: u8) -> String {
    match p {
        1 => "redirect".into(),
        2 => "kernel".into(),
        3 => "boot".into(),
        4 => "static".into(),
        11 => "zebra".into(),
        12 => "bird".into(),
        186 => "bgp".into(),
        n => n.to_string(),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nexthop {
    pub gw: Option<Ipv4Addr>,
    pub dev: DevId,
    pub weight: u32,
    pub onlink: bool,
}

/// A route's nexthops: one inline, more on the heap.
pub type Nexthops = smallvec::SmallVec<[Nexthop; 1]>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub table: TableId,
    pub rtype: RouteType,
    /// Network address (host bits clear) and length.
    pub prefix: Ipv4Net,
    pub metric: u32,
    pub proto: u8,
    pub scope: Scope,
    pub src: Option<Ipv4Addr>,
    /// Empty for blackhole/unreachable/prohibit. Inline when there is one
    /// (most routes), so a route costs no allocation of its own for it.
    pub nexthops: Nexthops,
    pub mtu: Option<u32>,
    /// Which control plane or peer installed it (shown in traces).
    pub origin: Option<Origin>,
}

/// A route's origin text, behind one thin pointer (8 bytes, where an
/// `Arc<str>` takes 16: `Route` fits in 64), shared by the routes of one
/// origin.
pub type Origin = Arc<Arc<str>>;

impl Route {
    pub fn dev(&self) -> Option<DevId> {
        self.nexthops.first().map(|n| n.dev)
    }
    pub fn gw(&self) -> Option<Ipv4Addr> {
        self.nexthops.first().and_then(|n| n.gw)
    }
    /// Whether any nexthop uses `dev`.
    pub fn uses_dev(&self, dev: DevId) -> bool {
        self.nexthops.iter().any(|n| n.dev == dev)
    }
}

/// One routing table: a map per prefix length, so a lookup costs one
/// ordered-map probe per prefix length in use, whatever the table size.
/// A cluster's FIBs can hold tens of millions of routes, so a route lives
/// inline in a cell of the table's own array, not in an allocation of its
/// own: the map holds only a cell number (4 bytes) per prefix. A prefix
/// with one route (most) has a cell in `single`; one with several, a list
/// in `multi`. A lookup's result is a shared copy, made once per cached
/// lookup.
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// Per prefix length: prefix address -> its cell (`MULTI` set: in `multi`).
    by_len: Vec<BTreeMap<u32, u32>>,
    /// Routes of prefixes holding one; `None`: a free cell (in `free_single`).
    single: Vec<Option<Route>>,
    free_single: Vec<u32>,
    /// Routes of prefixes holding several, in metric order; empty: free.
    multi: Vec<Vec<Route>>,
    free_multi: Vec<u32>,
    /// Bit `len` is set when some route has that prefix length, so a lookup
    /// probes only the lengths in use (a node has a handful).
    lens: u64,
    count: usize,
}

/// A cell number with this bit set is an index in `Table::multi`.
const MULTI: u32 = 1 << 31;

impl Table {
    /// The routes of a cell.
    fn at(&self, cell: u32) -> &[Route] {
        if cell & MULTI != 0 {
            &self.multi[(cell & !MULTI) as usize]
        } else {
            self.single[cell as usize].as_slice()
        }
    }

    /// Takes a free cell in `single` for `r`. The array grows by half its
    /// size (not doubling: a table of 5,000 routes would carry 3,000 empty
    /// cells) unless `reserve` made room.
    fn new_single(&mut self, r: Route) -> u32 {
        if let Some(c) = self.free_single.pop() {
            self.single[c as usize] = Some(r);
            return c;
        }
        let n = self.single.len();
        if n == self.single.capacity() {
            self.single.reserve_exact((n / 2).max(4));
        }
        assert!(n < MULTI as usize, "routing table full");
        self.single.push(Some(r));
        n as u32
    }

    fn free_cell(&mut self, cell: u32) {
        if cell & MULTI != 0 {
            self.multi[(cell & !MULTI) as usize] = Vec::new();
            self.free_multi.push(cell & !MULTI);
        } else {
            self.single[cell as usize] = None;
            self.free_single.push(cell);
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Makes room for `n` more routes of new prefixes (a bulk install knows
    /// how many it brings).
    pub fn reserve(&mut self, n: usize) {
        let spare = self.free_single.len() + (self.single.capacity() - self.single.len());
        if n > spare {
            self.single.reserve_exact(n - self.free_single.len());
        }
    }

    /// Routes of exactly this prefix, in metric order.
    pub fn exact(&self, p: Ipv4Net) -> &[Route] {
        self.by_len
            .get(p.len as usize)
            .and_then(|m| m.get(&u32::from(p.addr)))
            .map_or(&[], |&c| self.at(c))
    }

    pub fn insert(&mut self, r: Route) {
        if self.by_len.is_empty() {
            self.by_len = vec![BTreeMap::new(); 33];
        }
        let (len, key) = (r.prefix.len as usize, u32::from(r.prefix.addr));
        self.lens |= 1 << len;
        self.count += 1;
        let Some(&cell) = self.by_len[len].get(&key) else {
            let c = self.new_single(r);
            self.by_len[len].insert(key, c);
            return;
        };
        let list = if cell & MULTI != 0 {
            &mut self.multi[(cell & !MULTI) as usize]
        } else {
            // A second route for the prefix: both move to a list.
            let first = self.single[cell as usize].take().expect("a used cell");
            self.free_single.push(cell);
            let mut v = Vec::with_capacity(2);
            v.push(first);
            let m = match self.free_multi.pop() {
                Some(m) => {
                    self.multi[m as usize] = v;
                    m
                }
                None => {
                    self.multi.push(v);
                    (self.multi.len() - 1) as u32
                }
            };
            self.by_len[len].insert(key, m | MULTI);
            &mut self.multi[m as usize]
        };
        // Keep metric order; equal metrics keep insertion order (appended after).
        let pos = list
            .iter()
            .position(|o| o.metric > r.metric)
            .unwrap_or(list.len());
        list.insert(pos, r);
    }

    /// Inserts `r` after removing its prefix's routes that match `pred`
    /// (one map search when the prefix has none, as in a bulk install).
    pub fn replace_where(&mut self, r: Route, pred: impl FnMut(&Route) -> bool) {
        let there = self
            .by_len
            .get(r.prefix.len as usize)
            .is_some_and(|m| m.contains_key(&u32::from(r.prefix.addr)));
        if there {
            self.remove_where(r.prefix, pred);
        }
        self.insert(r);
    }

    /// `replace_where` for each route in turn, in one pass: new prefixes that
    /// come in increasing order per prefix length (a bulk install in prefix
    /// order) get their map entries built at once, in full B-tree nodes
    /// (entries inserted one by one leave nodes about half full), and
    /// without a search each.
    pub fn replace_all(
        &mut self,
        routes: impl IntoIterator<Item = Route>,
        mut pred: impl FnMut(&Route) -> bool,
    ) {
        if self.by_len.is_empty() {
            self.by_len = vec![BTreeMap::new(); 33];
        }
        // Per prefix length: new (key, cell)s in increasing key order, not
        // yet in the map.
        let mut runs: Vec<Vec<(u32, u32)>> = vec![Vec::new(); 33];
        for r in routes {
            let (len, key) = (r.prefix.len as usize, u32::from(r.prefix.addr));
            let fresh = runs[len].last().is_none_or(|&(k, _)| k < key)
                && !self.by_len[len].contains_key(&key);
            if fresh {
                self.lens |= 1 << len;
                self.count += 1;
                let c = self.new_single(r);
                runs[len].push((key, c));
            } else {
                let run = std::mem::take(&mut runs[len]);
                self.by_len[len].extend(run);
                self.replace_where(r, &mut pred);
            }
        }
        for (len, run) in runs.into_iter().enumerate() {
            let m = &mut self.by_len[len];
            if run.len() > m.len() {
                // Unique keys: the map's and the run's are disjoint.
                let mut all: Vec<(u32, u32)> = std::mem::take(m).into_iter().collect();
                all.extend(run);
                all.sort_unstable();
                *m = all.into_iter().collect();
            } else {
                m.extend(run);
            }
        }
    }

    /// Removes routes matching `pred` with this prefix; returns how many.
    pub fn remove_where(&mut self, p: Ipv4Net, mut pred: impl FnMut(&Route) -> bool) -> usize {
        let key = u32::from(p.addr);
        let Some(&cell) = self.by_len.get(p.len as usize).and_then(|m| m.get(&key)) else {
            return 0;
        };
        let (n, left) = if cell & MULTI != 0 {
            let v = &mut self.multi[(cell & !MULTI) as usize];
            let before = v.len();
            v.retain(|r| !pred(r));
            (before - v.len(), v.len())
        } else if pred(self.single[cell as usize].as_ref().expect("a used cell")) {
            (1, 0)
        } else {
            (0, 1)
        };
        if left == 0 {
            self.free_cell(cell);
            let m = &mut self.by_len[p.len as usize];
            m.remove(&key);
            if m.is_empty() {
                self.lens &= !(1 << p.len);
            }
        }
        self.count -= n;
        n
    }

    /// Removes every route matching `pred`; returns how many.
    pub fn retain(&mut self, mut keep: impl FnMut(&Route) -> bool) -> usize {
        let mut removed = 0;
        let mut freed = Vec::new();
        for (len, m) in self.by_len.iter_mut().enumerate() {
            m.retain(|_, &mut cell| {
                let left = if cell & MULTI != 0 {
                    let v = &mut self.multi[(cell & !MULTI) as usize];
                    let before = v.len();
                    v.retain(&mut keep);
                    removed += before - v.len();
                    v.len()
                } else if keep(self.single[cell as usize].as_ref().expect("a used cell")) {
                    1
                } else {
                    removed += 1;
                    0
                };
                if left == 0 {
                    freed.push(cell);
                }
                left > 0
            });
            if m.is_empty() {
                self.lens &= !(1 << len);
            }
        }
        for cell in freed {
            self.free_cell(cell);
        }
        self.count -= removed;
        removed
    }

    /// All routes in `ip route show` order: by prefix address, then length
    /// (the kernel's trie walk order), then metric.
    pub fn iter(&self) -> Vec<&Route> {
        let mut v: Vec<&Route> = self
            .by_len
            .iter()
            .flat_map(|m| m.values().flat_map(|&c| self.at(c)))
            .collect();
        v.sort_by_key(|r| (u32::from(r.prefix.addr), r.prefix.len));
        v
    }

    /// Longest-prefix match: candidate route lists from the longest prefix
    /// down, probing only the prefix lengths in use.
    pub fn candidates(&self, dst: Ipv4Addr) -> impl Iterator<Item = &Route> {
        let d = u32::from(dst);
        let mut lens = self.lens;
        std::iter::from_fn(move || {
            while lens != 0 {
                let len = 63 - lens.leading_zeros() as usize;
                lens &= !(1 << len);
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                if let Some(&c) = self.by_len[len].get(&(d & mask)) {
                    return Some(self.at(c).iter());
                }
            }
            None
        })
        .flatten()
    }
}

/// A policy routing rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub priority: u32,
    pub from: Option<Ipv4Net>,
    pub to: Option<Ipv4Net>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub fwmark: Option<(u32, u32)>,
    pub not: bool,
    pub action: RuleAction,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleAction {
    Lookup(TableId),
    Type(RouteType),
}

/// The flow a lookup is for (device names borrowed: a lookup allocates nothing).
#[derive(Clone, Debug)]
pub struct Flow<'a> {
    pub dst: Ipv4Addr,
    pub src: Option<Ipv4Addr>,
    /// Input device name (for `iif` rules); None for locally generated packets.
    pub iif: Option<&'a str>,
    /// Output device constraint (`oif`, SO_BINDTODEVICE, ping -I DEV).
    pub oif: Option<DevId>,
    pub oif_name: Option<&'a str>,
    pub mark: u32,
    /// Flow hash for multipath selection.
    pub hash: u32,
}

impl Default for Flow<'_> {
    fn default() -> Self {
        Flow {
            dst: Ipv4Addr::UNSPECIFIED,
            src: None,
            iif: None,
            oif: None,
            oif_name: None,
            mark: 0,
            hash: 0,
        }
    }
}

/// A lookup result.
#[derive(Clone, Debug)]
pub struct FibResult {
    /// A copy of the table's route, shared by every answer of one
    /// [`Fib::lookup_cached`] entry.
    pub route: Arc<Route>,
    /// Index of the chosen nexthop.
    pub nh: usize,
    /// Rule priority that selected the table.
    pub rule: u32,
    /// The route's `ip route` text for trace steps (as if every nexthop
    /// device had carrier), rendered at the first step that shows it and
    /// shared by every answer of the same [`Fib::lookup_cached`] entry, so
    /// it lives only as long as that entry (a command, which may rename a
    /// device, empties the cache). `None` from an uncached lookup. Routes
    /// themselves keep no text: a FIB can hold millions of them.
    pub text: Option<Arc<OnceLock<Arc<str>>>>,
}

impl FibResult {
    pub fn nexthop(&self) -> Option<&Nexthop> {
        self.route.nexthops.get(self.nh)
    }
}

/// Why a lookup failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FibError {
    /// No route (ENETUNREACH).
    Unreachable,
    /// A rule with a blackhole/unreachable/prohibit action matched.
    RuleType(RouteType, u32),
}

#[derive(Clone, Debug)]
pub struct Fib {
    pub tables: BTreeMap<TableId, Table>,
    pub rules: Vec<Rule>,
    /// Recent answers of [`Fib::lookup_cached`] (the kernel keeps routes
    /// in its sockets and nexthops; this plays that part). Emptied by
    /// [`Fib::invalidate`], which whatever changes the tables, the rules or
    /// the state of a device (its being up) calls.
    cache: RefCell<LookupCache>,
}

/// The last few lookups and their answers, replaced round-robin.
#[derive(Clone, Debug, Default)]
struct LookupCache {
    entries: Vec<(CacheKey, Result<FibResult, FibError>)>,
    next: usize,
}

/// Everything a lookup's answer depends on besides the FIB and the devices.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CacheKey {
    dst: Ipv4Addr,
    src: Option<Ipv4Addr>,
    iif: Option<Name>,
    oif: Option<DevId>,
    oif_name: Option<Name>,
    mark: u32,
    hash: u32,
}

/// A device name kept inline in a [`CacheKey`] (a miss allocates nothing
/// for it): Linux names are at most 15 bytes; a longer one is not cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Name {
    len: u8,
    bytes: [u8; Name::CAP],
}

impl Name {
    const CAP: usize = 23;

    fn new(s: &str) -> Option<Name> {
        let b = s.as_bytes();
        if b.len() > Self::CAP {
            return None;
        }
        let mut bytes = [0; Self::CAP];
        bytes[..b.len()].copy_from_slice(b);
        Some(Name {
            len: b.len() as u8,
            bytes,
        })
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// `Option<Name>` for an optional name: `None` inside when it is too
    /// long to keep.
    fn key(s: Option<&str>) -> Option<Option<Name>> {
        match s {
            None => Some(None),
            Some(s) => Name::new(s).map(Some),
        }
    }

    fn is(n: &Option<Name>, s: Option<&str>) -> bool {
        match (n, s) {
            (None, None) => true,
            (Some(n), Some(s)) => n.as_bytes() == s.as_bytes(),
            _ => false,
        }
    }
}

impl CacheKey {
    fn matches(&self, f: &Flow) -> bool {
        self.dst == f.dst
            && self.src == f.src
            && self.oif == f.oif
            && self.mark == f.mark
            && self.hash == f.hash
            && Name::is(&self.iif, f.iif)
            && Name::is(&self.oif_name, f.oif_name)
    }
}

const LOOKUP_CACHE: usize = 8;

impl Default for Fib {
    fn default() -> Self {
        let mut tables = BTreeMap::new();
        tables.insert(TABLE_LOCAL, Table::default());
        tables.insert(TABLE_MAIN, Table::default());
        Fib {
            tables,
            rules: vec![
                Rule::lookup(0, TABLE_LOCAL),
                Rule::lookup(32766, TABLE_MAIN),
                Rule::lookup(32767, TABLE_DEFAULT),
            ],
            cache: Default::default(),
        }
    }
}

impl Rule {
    pub fn lookup(priority: u32, table: TableId) -> Rule {
        Rule {
            priority,
            from: None,
            to: None,
            iif: None,
            oif: None,
            fwmark: None,
            not: false,
            action: RuleAction::Lookup(table),
        }
    }

    fn matches(&self, f: &Flow) -> bool {
        let m = self
            .from
            .is_none_or(|p| f.src.is_some_and(|s| p.contains(s)) || p.len == 0)
            && self.to.is_none_or(|p| p.contains(f.dst))
            && self
                .iif
                .as_ref()
                .is_none_or(|i| f.iif == Some(i.as_str()) || (i == "lo" && f.iif.is_none()))
            && self
                .oif
                .as_ref()
                .is_none_or(|o| f.oif_name == Some(o.as_str()))
            && self.fwmark.is_none_or(|(m, mask)| f.mark & mask == m);
        m != self.not
    }
}

impl Fib {
    pub fn table(&self, id: TableId) -> Option<&Table> {
        self.tables.get(&id)
    }
    pub fn table_mut(&mut self, id: TableId) -> &mut Table {
        self.invalidate();
        self.tables.entry(id).or_default()
    }

    /// Forgets the cached lookups: call it whenever the tables, the rules
    /// or a device's state (alive, up) may have changed.
    pub fn invalidate(&self) {
        let mut c = self.cache.borrow_mut();
        c.entries.clear();
        c.next = 0;
    }

    /// [`lookup`](Self::lookup) through the cache of recent lookups. Every
    /// caller must pass the same `dev_up` (the World's: alive and up), and
    /// whatever changes what it answers must [`invalidate`](Self::invalidate).
    pub fn lookup_cached(
        &self,
        f: &Flow,
        dev_up: impl Fn(DevId) -> bool,
    ) -> Result<FibResult, FibError> {
        if let Some((_, r)) = self
            .cache
            .borrow()
            .entries
            .iter()
            .find(|(k, _)| k.matches(f))
        {
            return r.clone();
        }
        let (Some(iif), Some(oif_name)) = (Name::key(f.iif), Name::key(f.oif_name)) else {
            return self.lookup(f, dev_up);
        };
        let found = self.lookup_ref(f, dev_up);
        let mut c = self.cache.borrow_mut();
        // The route's shared copy: another entry's when it holds the same
        // route (a pod's default route answers every destination), else a
        // fresh one.
        let r = found.map(|(route, nh, rule)| {
            let shared = c.entries.iter().find_map(|(_, e)| match e {
                Ok(o) if *o.route == *route => Some(o.route.clone()),
                _ => None,
            });
            FibResult {
                route: shared.unwrap_or_else(|| Arc::new(route.clone())),
                nh,
                rule,
                text: Some(Arc::default()),
            }
        });
        let e = (
            CacheKey {
                dst: f.dst,
                src: f.src,
                iif,
                oif: f.oif,
                oif_name,
                mark: f.mark,
                hash: f.hash,
            },
            r.clone(),
        );
        if c.entries.len() < LOOKUP_CACHE {
            c.entries.push(e);
        } else {
            let k = c.next;
            c.entries[k] = e;
            c.next = (k + 1) % LOOKUP_CACHE;
        }
        r
    }

    /// Looks up a flow through the rules; `scope` is the widest scope the
    /// caller accepts (RT_SCOPE_UNIVERSE for normal lookups; gateway checks use link).
    pub fn lookup(&self, f: &Flow, dev_up: impl Fn(DevId) -> bool) -> Result<FibResult, FibError> {
        self.lookup_ref(f, dev_up).map(|(r, nh, rule)| FibResult {
            route: Arc::new(r.clone()),
            nh,
            rule,
            text: None,
        })
    }

    /// [`lookup`](Self::lookup)'s answer in place: the route, the index of
    /// its chosen nexthop and the priority of the rule that chose its table.
    fn lookup_ref(
        &self,
        f: &Flow,
        dev_up: impl Fn(DevId) -> bool,
    ) -> Result<(&Route, usize, u32), FibError> {
        for rule in &self.rules {
            if !rule.matches(f) {
                continue;
            }
            match &rule.action {
                RuleAction::Type(t) => return Err(FibError::RuleType(*t, rule.priority)),
                RuleAction::Lookup(t) => {
                    if let Some(table) = self.tables.get(t)
                        && let Some((r, nh)) = Self::lookup_table(table, f, &dev_up)
                    {
                        return Ok((r, nh, rule.priority));
                    }
                }
            }
        }
        Err(FibError::Unreachable)
    }

    /// LPM in one table: the route and the index of its chosen nexthop.
    pub fn lookup_table<'t>(
        table: &'t Table,
        f: &Flow,
        dev_up: &impl Fn(DevId) -> bool,
    ) -> Option<(&'t Route, usize)> {
        for r in table.candidates(f.dst) {
            // Output device constraint: unicast routes must leave by it.
            if let Some(oif) = f.oif
                && !r.nexthops.is_empty()
                && !r.uses_dev(oif)
                && r.rtype != RouteType::Local
            {
                continue;
            }
            let usable = |n: &Nexthop| {
                dev_up(n.dev)
                    && f.oif
                        .is_none_or(|o| o == n.dev || r.rtype == RouteType::Local)
            };
            let nh = if r.nexthops.len() <= 1 {
                // The common case, without collecting the live nexthops.
                if r.nexthops.first().is_some_and(|n| !usable(n)) {
                    continue;
                }
                0
            } else {
                let alive: Vec<usize> = r
                    .nexthops
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| usable(n))
                    .map(|(i, _)| i)
                    .collect();
                match alive.len() {
                    0 => continue,
                    1 => alive[0],
                    _ => pick_weighted(r, &alive, f.hash),
                }
            };
            return Some((r, nh));
        }
        None
    }
}

/// Hash-threshold multipath selection (fib_select_multipath): each live
/// nexthop owns a share of the 31-bit hash space proportional to its weight.
fn pick_weighted(r: &Route, alive: &[usize], hash: u32) -> usize {
    let total: u64 = alive.iter().map(|&i| r.nexthops[i].weight as u64).sum();
    let h = (hash & 0x7fff_ffff) as u64;
    let mut acc = 0u64;
    for &i in alive {
        acc += r.nexthops[i].weight as u64;
        let upper = (acc << 31).div_ceil(total) - 1;
        if h <= upper {
            return i;
        }
    }
    *alive.last().unwrap()
}

/// The flow hash the kernel uses for L3 multipath (fib_multipath_hash_policy 0):
/// source and destination address. Deterministic: FNV-1a, not jhash with a boot key.
pub fn l3_hash(src: Ipv4Addr, dst: Ipv4Addr) -> u32 {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&src.octets());
    b[4..].copy_from_slice(&dst.octets());
    let h = sim_core::rng::stable_hash(&b);
    (h ^ (h >> 32)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(prefix: &str, metric: u32, dev: u32) -> Route {
        Route {
            table: TABLE_MAIN,
            rtype: RouteType::Unicast,
            prefix: prefix.parse::<Ipv4Net>().unwrap().network(),
            metric,
            proto: PROTO_BOOT,
            scope: Scope::Global,
            src: None,
            nexthops: smallvec::smallvec![Nexthop {
                gw: None,
                dev: DevId(dev),
                weight: 1,
                onlink: false,
            }],
            mtu: None,
            origin: None,
        }
    }

    fn flow(dst: &str) -> Flow<'static> {
        Flow {
            dst: dst.parse().unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let mut fib = Fib::default();
        let t = fib.table_mut(TABLE_MAIN);
        t.insert(r("0.0.0.0/0", 0, 1));
        t.insert(r("172.16.0.0/16", 0, 2));
        t.insert(r("172.16.2.0/24", 0, 3));
        let up = |_| true;
        assert_eq!(
            fib.lookup(&flow("172.16.2.9"), up).unwrap().route.dev(),
            Some(DevId(3))
        );
        assert_eq!(
            fib.lookup(&flow("172.16.9.9"), up).unwrap().route.dev(),
            Some(DevId(2))
        );
        assert_eq!(
            fib.lookup(&flow("8.8.8.8"), up).unwrap().route.dev(),
            Some(DevId(1))
        );
    }

    #[test]
    fn a_route_keeps_no_text_and_cached_lookups_share_one() {
        // Clusters of thousands of nodes hold tens of millions of routes:
        // the trace's text lives in the lookup cache, not in each route.
        println!("size_of::<Route>() = {}", std::mem::size_of::<Route>());
        assert!(std::mem::size_of::<Route>() <= 64);
        let mut fib = Fib::default();
        fib.table_mut(TABLE_MAIN).insert(r("10.0.0.0/8", 0, 1));
        let a = fib.lookup_cached(&flow("10.1.2.3"), |_| true).unwrap();
        let b = fib.lookup_cached(&flow("10.1.2.3"), |_| true).unwrap();
        let (ta, tb) = (a.text.unwrap(), b.text.unwrap());
        assert!(Arc::ptr_eq(&ta, &tb));
        assert!(
            fib.lookup(&flow("10.1.2.3"), |_| true)
                .unwrap()
                .text
                .is_none()
        );
        // Emptying the cache forgets the text with the entry.
        fib.invalidate();
        let c = fib.lookup_cached(&flow("10.1.2.3"), |_| true).unwrap();
        assert!(!Arc::ptr_eq(&ta, &c.text.unwrap()));
    }

    #[test]
    fn removed_prefix_lengths_are_no_longer_probed_and_the_cache_follows() {
        let mut fib = Fib::default();
        let t = fib.table_mut(TABLE_MAIN);
        t.insert(r("0.0.0.0/0", 0, 1));
        t.insert(r("172.16.2.0/24", 0, 3));
        let dev = |fib: &Fib| {
            fib.lookup_cached(&flow("172.16.2.9"), |_| true)
                .unwrap()
                .route
                .dev()
        };
        assert_eq!(dev(&fib), Some(DevId(3)));
        // Removing through table_mut empties the cache; the /24 length goes.
        let n = fib
            .table_mut(TABLE_MAIN)
            .remove_where("172.16.2.0/24".parse().unwrap(), |_| true);
        assert_eq!(n, 1);
        assert_eq!(fib.tables[&TABLE_MAIN].lens, 1);
        assert_eq!(dev(&fib), Some(DevId(1)));
        fib.table_mut(TABLE_MAIN).insert(r("172.16.0.0/16", 0, 2));
        assert_eq!(dev(&fib), Some(DevId(2)));
        fib.table_mut(TABLE_MAIN).retain(|r| r.prefix.len != 16);
        assert_eq!(fib.tables[&TABLE_MAIN].lens, 1);
        assert_eq!(dev(&fib), Some(DevId(1)));
    }

    #[test]
    fn lower_metric_wins_and_down_devices_are_skipped() {
        let mut fib = Fib::default();
        let t = fib.table_mut(TABLE_MAIN);
        t.insert(r("10.0.0.0/8", 200, 2));
        t.insert(r("10.0.0.0/8", 100, 1));
        assert_eq!(
            fib.lookup(&flow("10.1.1.1"), |_| true)
                .unwrap()
                .route
                .metric,
            100
        );
        assert_eq!(
            fib.lookup(&flow("10.1.1.1"), |d| d != DevId(1))
                .unwrap()
                .route
                .metric,
            200
        );
        assert_eq!(
            fib.lookup(&flow("11.1.1.1"), |_| true).unwrap_err(),
            FibError::Unreachable
        );
    }

    #[test]
    fn rules_in_priority_order() {
        let mut fib = Fib::default();
        fib.table_mut(TABLE_MAIN).insert(r("0.0.0.0/0", 0, 1));
        fib.table_mut(100).insert(r("0.0.0.0/0", 0, 7));
        let mut rule = Rule::lookup(100, 100);
        rule.from = Some("10.0.0.0/8".parse().unwrap());
        fib.rules.insert(1, rule);
        let mut f = flow("8.8.8.8");
        assert_eq!(
            fib.lookup(&f, |_| true).unwrap().route.dev(),
            Some(DevId(1))
        );
        f.src = Some("10.1.1.1".parse().unwrap());
        let res = fib.lookup(&f, |_| true).unwrap();
        assert_eq!(res.route.dev(), Some(DevId(7)));
        assert_eq!(res.rule, 100);
    }

    #[test]
    fn multipath_is_deterministic_and_weighted() {
        let mut route = r("10.0.0.0/8", 0, 1);
        route.nexthops.push(Nexthop {
            gw: None,
            dev: DevId(2),
            weight: 3,
            onlink: false,
        });
        let alive = [0, 1];
        let mut counts = [0u32; 2];
        for i in 0..4000u32 {
            let h = l3_hash(Ipv4Addr::from(0x0a00_0000 + i), Ipv4Addr::new(10, 9, 9, 9));
            counts[pick_weighted(&route, &alive, h)] += 1;
        }
        // weights 1:3
        assert!((800..1200).contains(&counts[0]), "{counts:?}");
        let h = l3_hash(Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8));
        assert_eq!(
            pick_weighted(&route, &alive, h),
            pick_weighted(&route, &alive, h)
        );
    }

    #[test]
    fn a_table_keeps_routes_in_its_own_cells() {
        // A route lives inline in the table's array (no allocation of its
        // own; a free cell costs no more than a used one), and the map holds
        // 4 bytes per prefix.
        assert_eq!(
            std::mem::size_of::<Option<Route>>(),
            std::mem::size_of::<Route>()
        );
        let mut t = Table::default();
        t.reserve(3);
        assert!(t.single.capacity() >= 3);
        t.insert(r("10.0.1.0/24", 0, 1));
        t.insert(r("10.0.2.0/24", 0, 2));
        t.insert(r("10.0.3.0/24", 0, 3));
        assert_eq!((t.single.len(), t.multi.len(), t.len()), (3, 0, 3));
        // A second route for a prefix: both move to a list, metric order.
        t.insert(r("10.0.2.0/24", 5, 4));
        t.insert(r("10.0.2.0/24", 1, 5));
        let devs = |t: &Table, p: &str| -> Vec<u32> {
            t.exact(p.parse().unwrap())
                .iter()
                .map(|r| r.dev().unwrap().0)
                .collect()
        };
        assert_eq!(devs(&t, "10.0.2.0/24"), [2, 5, 4]);
        assert_eq!((t.free_single.len(), t.multi.len(), t.len()), (1, 1, 5));
        // The freed cell is taken by the next new prefix.
        t.insert(r("10.0.4.0/24", 0, 6));
        assert_eq!((t.single.len(), t.free_single.len()), (3, 0));
        // Replacing a prefix's route: one route again.
        t.replace_where(r("10.0.3.0/24", 0, 7), |o| o.metric == 0);
        assert_eq!(devs(&t, "10.0.3.0/24"), [7]);
        assert_eq!(t.remove_where("10.0.2.0/24".parse().unwrap(), |_| true), 3);
        assert_eq!(t.free_multi, [0]);
        assert_eq!(t.retain(|r| r.dev() != Some(DevId(1))), 1);
        assert_eq!(t.len(), 2);
        let order: Vec<u32> = t.iter().iter().map(|r| r.dev().unwrap().0).collect();
        assert_eq!(order, [7, 6]);
        assert_eq!(t.candidates("10.0.4.9".parse().unwrap()).count(), 1);
        assert_eq!(t.candidates("10.0.1.9".parse().unwrap()).count(), 0);
    }

    #[test]
    fn a_bulk_replace_is_replace_where_route_by_route() {
        let mut one = Table::default();
        one.insert(r("10.0.3.0/24", 0, 1));
        one.insert(r("10.0.9.0/24", 7, 1));
        let mut bulk = one.clone();
        // In order, out of order, a prefix already there, one twice.
        let routes = [
            r("10.0.1.0/24", 0, 2),
            r("10.0.2.0/24", 0, 2),
            r("10.0.3.0/24", 0, 2),
            r("10.0.0.0/24", 0, 2),
            r("10.0.4.0/24", 0, 2),
            r("10.0.4.0/24", 1, 3),
            r("10.0.5.0/24", 0, 2),
            r("10.0.0.0/16", 0, 2),
        ];
        for x in routes.clone() {
            one.replace_where(x, |o| o.metric == 0);
        }
        bulk.replace_all(routes, |o| o.metric == 0);
        let show = |t: &Table| -> Vec<(String, u32, u32)> {
            t.iter()
                .into_iter()
                .map(|r| (r.prefix.to_string(), r.metric, r.dev().unwrap().0))
                .collect()
        };
        assert_eq!(show(&one), show(&bulk));
        assert_eq!((one.len(), one.lens), (bulk.len(), bulk.lens));
        for a in ["10.0.4.1", "10.0.7.1", "10.0.9.1", "10.1.0.0"] {
            let a = a.parse().unwrap();
            assert!(one.candidates(a).eq(bulk.candidates(a)));
        }
    }
}
