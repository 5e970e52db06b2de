//! Snapshots of a namespace's tables, taken as the simulation runs, so any
//! step's tables come back at once when the user steps back and forth.
//!
//! A snapshot is keyed by (namespace, change count): the model bumps a
//! namespace's [`NsGeneration`] wherever its routes, rules, neighbours, FDB,
//! addresses, links or iptables change, so a snapshot stays current while
//! the count is unchanged and is only taken again after a change. Only the
//! tables whose own counter moved are printed again (a neighbour learned
//! does not reprint a thousand routes), and the lines are interned across
//! all namespaces and times (a route to a pod subnet printed identically on
//! a thousand nodes is stored once): a table in a snapshot is a shared list
//! of line numbers, and an unchanged table is shared with the previous
//! snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use indexmap::IndexSet;
use sim_core::time::SimTime;
use sim_models::linux::{NsGeneration, NsId, World};

/// The tables the UI shows, as the real tools print them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableKind {
    Routes,
    Rules,
    Neigh,
    Fdb,
    Iptables,
    Addrs,
}

impl TableKind {
    pub const ALL: [TableKind; 6] = [
        TableKind::Routes,
        TableKind::Rules,
        TableKind::Neigh,
        TableKind::Fdb,
        TableKind::Iptables,
        TableKind::Addrs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TableKind::Routes => "routes",
            TableKind::Rules => "rules",
            TableKind::Neigh => "neigh",
            TableKind::Fdb => "fdb",
            TableKind::Iptables => "iptables",
            TableKind::Addrs => "addrs",
        }
    }

    /// The command that prints the table.
    pub fn command(self) -> &'static str {
        match self {
            TableKind::Routes => "ip route show table all",
            TableKind::Rules => "ip rule show",
            TableKind::Neigh => "ip neigh show",
            TableKind::Fdb => "bridge fdb show",
            TableKind::Iptables => "iptables -S",
            TableKind::Addrs => "ip addr show",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The next table (`t`).
    pub fn next(self) -> TableKind {
        TableKind::ALL[(self.index() + 1) % TableKind::ALL.len()]
    }

    /// The change counter that says whether this table may have changed.
    fn counter(self, g: &NsGeneration) -> u64 {
        match self {
            TableKind::Neigh => g.neigh,
            TableKind::Fdb => g.fdb,
            _ => g.config,
        }
    }

    /// The table of `ns` as the tool prints it now.
    pub fn print(self, world: &World, ns: NsId) -> String {
        match self {
            TableKind::Routes => world.show_routes(ns, Some(0), None),
            TableKind::Rules => world.show_rules(ns),
            TableKind::Neigh => world.show_neigh(ns, None),
            TableKind::Fdb => world.show_fdb(ns, None, None),
            TableKind::Iptables => sim_models::linux::netfilter::exec_iptables(
                &mut world.namespaces[ns.ix()].nf.clone(),
                &["-S".to_string()],
            )
            .unwrap_or_default(),
            TableKind::Addrs => world.show_addrs(ns, None),
        }
    }
}

/// Index of a snapshot in its [`SnapStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapId(pub u32);

/// One namespace's tables at one change count.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub ns: NsId,
    pub generation: NsGeneration,
    /// When it was taken.
    pub time: SimTime,
    tables: [Arc<[u32]>; 6],
}

/// What the snapshots cost (see [`SnapStore::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapStats {
    pub snapshots: usize,
    /// Tables printed (a table not printed again is shared with the previous snapshot).
    pub tables_printed: u64,
    /// Distinct table bodies held (shared ones counted once per snapshot chain).
    pub tables_stored: u64,
    /// Line references held in stored tables.
    pub line_refs: u64,
    /// Distinct lines interned, and their bytes.
    pub lines: usize,
    pub line_bytes: usize,
    /// Bytes printed by the table formatters.
    pub printed_bytes: u64,
    /// An estimate of the heap held by the store, in bytes.
    pub heap_bytes: usize,
}

/// All snapshots of a run.
#[derive(Debug, Default)]
pub struct SnapStore {
    snaps: Vec<Snapshot>,
    by_key: BTreeMap<(NsId, u64), SnapId>,
    latest: Vec<Option<SnapId>>,
    lines: IndexSet<Arc<str>>,
    tables_printed: u64,
    tables_stored: u64,
    line_refs: u64,
    printed_bytes: u64,
}

impl SnapStore {
    pub fn new() -> SnapStore {
        SnapStore::default()
    }

    /// The snapshot of `ns` as it is now: the latest one if the namespace
    /// has not changed since, else a new one.
    pub fn current(&mut self, world: &World, ns: NsId, now: SimTime) -> SnapId {
        let g = world.namespaces[ns.ix()].generation;
        if self.latest.len() <= ns.ix() {
            self.latest.resize(ns.ix() + 1, None);
        }
        let prev = self.latest[ns.ix()];
        if let Some(id) = prev
            && self.snaps[id.0 as usize].generation == g
        {
            return id;
        }
        let empty: Arc<[u32]> = Arc::from(Vec::new());
        let mut tables: [Arc<[u32]>; 6] = std::array::from_fn(|_| empty.clone());
        for kind in TableKind::ALL {
            let old = prev.map(|p| &self.snaps[p.0 as usize]);
            if let Some(o) = old
                && kind.counter(&o.generation) == kind.counter(&g)
            {
                tables[kind.index()] = o.tables[kind.index()].clone();
                continue;
            }
            let text = kind.print(world, ns);
            self.tables_printed += 1;
            self.printed_bytes += text.len() as u64;
            let ids: Vec<u32> = text.lines().map(|l| self.intern(l)).collect();
            let old = prev.map(|p| &self.snaps[p.0 as usize]);
            tables[kind.index()] = match old {
                Some(o) if *o.tables[kind.index()] == *ids => o.tables[kind.index()].clone(),
                _ => {
                    self.tables_stored += 1;
                    self.line_refs += ids.len() as u64;
                    Arc::from(ids)
                }
            };
        }
        let id = SnapId(self.snaps.len() as u32);
        self.snaps.push(Snapshot {
            ns,
            generation: g,
            time: now,
            tables,
        });
        self.by_key.insert((ns, g.total()), id);
        self.latest[ns.ix()] = Some(id);
        id
    }

    fn intern(&mut self, line: &str) -> u32 {
        // Trailing spaces (iproute2 ends route and neighbour lines with one) are kept.
        if let Some(i) = self.lines.get_index_of(line) {
            return i as u32;
        }
        self.lines.insert_full(Arc::from(line)).0 as u32
    }

    /// The latest snapshot of `ns`, if any.
    pub fn latest(&self, ns: NsId) -> Option<SnapId> {
        self.latest.get(ns.ix()).copied().flatten()
    }

    /// The snapshot of `ns` at change count `total` (see [`NsGeneration::total`]).
    pub fn lookup(&self, ns: NsId, total: u64) -> Option<SnapId> {
        self.by_key.get(&(ns, total)).copied()
    }

    pub fn get(&self, id: SnapId) -> &Snapshot {
        &self.snaps[id.0 as usize]
    }

    pub fn len(&self) -> usize {
        self.snaps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.snaps.is_empty()
    }

    /// The lines of one table of a snapshot.
    pub fn lines(&self, id: SnapId, kind: TableKind) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.snaps[id.0 as usize].tables[kind.index()]
            .iter()
            .map(|&l| &*self.lines[l as usize])
    }

    pub fn stats(&self) -> SnapStats {
        let line_bytes: usize = self.lines.iter().map(|l| l.len()).sum();
        let heap_bytes = self.snaps.capacity() * std::mem::size_of::<Snapshot>()
            + self.by_key.len() * (std::mem::size_of::<(NsId, u64, SnapId)>() + 16)
            + self.latest.capacity() * std::mem::size_of::<Option<SnapId>>()
            + self.line_refs as usize * 4
            + self.tables_stored as usize * 16
            + line_bytes
            + self.lines.len() * (std::mem::size_of::<Arc<str>>() + 16 + 8);
        SnapStats {
            snapshots: self.snaps.len(),
            tables_printed: self.tables_printed,
            tables_stored: self.tables_stored,
            line_refs: self.line_refs,
            lines: self.lines.len(),
            line_bytes,
            printed_bytes: self.printed_bytes,
            heap_bytes,
        }
    }
}
