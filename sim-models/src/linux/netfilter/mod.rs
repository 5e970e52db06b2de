//! Netfilter: iptables tables and chains, connection tracking and NAT.
//!
//! - [`rules`]: tables, chains, rules, matches, targets, and how iptables
//!   prints them (`-S`, `iptables-save`, `-L`).
//! - [`parse`]: iptables' command line, with its error messages.
//! - [`cmd`]: `iptables` commands applied to a namespace's tables.
//! - [`save`]: `iptables-save` and `iptables-restore`.
//! - [`conntrack`]: the connection tracking table and `conntrack -L`.
//! - [`hook`]: the packet path: the five hooks, table traversal in the
//!   kernel's priority order, conntrack, NAT, REJECT, TCPMSS, br_netfilter.
//!
//! As in the kernel, a table exists in a namespace only once an iptables
//! command has used it; a namespace whose tables were never touched passes
//! packets through its hooks untouched. Connection tracking runs in a
//! namespace once it has a nat table or a rule that needs it (`-m
//! conntrack`, `-m state`, `-m connmark`, CONNMARK, NAT targets).

pub mod cmd;
pub mod conntrack;
pub mod hook;
pub mod parse;
pub mod rules;
pub mod save;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use sim_core::packet::PacketId;
use sim_core::rng::SimRng;
use sim_core::time::SimTime;
use sim_core::trace::Hook;

use crate::linux::{CmdOutput, NsId, World};

pub use cmd::exec_iptables;
pub use conntrack::{Conn, Conntrack, Dir, Tuple};
pub use rules::{Chain, Rule, Table, TableKind, Target};
pub use save::{iptables_restore, iptables_save};

/// What conntrack knows of a packet between hooks (the kernel keeps it on
/// the skb).
#[derive(Clone, Debug, Default)]
pub(crate) enum CtState {
    /// Not looked up (conntrack off, or before PREROUTING/OUTPUT).
    #[default]
    None,
    Invalid,
    Untracked,
    Tracked(SkbCt),
}

/// A packet's connection: confirmed (in the table) or new (confirmed at the
/// last hook), its direction and ctinfo (`ST_NEW`, `ST_ESTABLISHED`, `ST_RELATED`).
#[derive(Clone, Debug)]
pub(crate) struct SkbCt {
    pub conn: CtConn,
    pub dir: Dir,
    pub info: u16,
}

#[derive(Clone, Debug)]
pub(crate) enum CtConn {
    Confirmed(u64),
    Unconfirmed(Box<Conn>),
}

/// Per-packet netfilter state: the mark (fwmark) and the conntrack entry.
#[derive(Clone, Debug, Default)]
pub(crate) struct Skb {
    pub mark: u32,
    pub ct: CtState,
    pub notrack: bool,
}

impl Skb {
    fn is_empty(&self) -> bool {
        self.mark == 0 && matches!(self.ct, CtState::None) && !self.notrack
    }
}

/// Packets whose state is kept between hooks (beyond this the oldest go:
/// a packet that was dropped or delivered leaves its entry behind).
const SKB_CAP: usize = 4096;

/// A namespace's netfilter state.
#[derive(Clone, Debug, Default)]
pub struct Netfilter {
    /// Tables by [`TableKind::ix`], once instantiated.
    pub tables: [Option<Table>; 4],
    pub conntrack: Conntrack,
    /// Whether connection tracking runs (a nat table, or a rule needing it).
    pub ct_enabled: bool,
    pub(crate) skbs: BTreeMap<PacketId, Skb>,
    /// `-m statistic` draws (`netfilter:NS:statistic`).
    pub(crate) stat_rng: Option<SimRng>,
    /// NAT port choices (`netfilter:NS:nat`).
    pub(crate) nat_rng: Option<SimRng>,
}

impl Netfilter {
    pub fn table(&self, k: TableKind) -> Option<&Table> {
        self.tables[k.ix()].as_ref()
    }

    /// The table, instantiated on first use.
    pub fn table_mut(&mut self, k: TableKind) -> &mut Table {
        if k == TableKind::Nat {
            self.ct_enabled = true;
        }
        self.tables[k.ix()].get_or_insert_with(|| Table::new(k))
    }

    /// Whether any table exists (else the hooks do nothing).
    #[inline]
    pub fn active(&self) -> bool {
        self.tables.iter().any(Option::is_some)
    }

    /// Whether some table's built-in chain for `hook` is registered (is
    /// traversed).
    pub(crate) fn hook_in_use(&self, hook: Hook) -> bool {
        self.tables.iter().flatten().any(|t| {
            t.hook_slot(hook)
                .is_some_and(|s| t.chains[s].as_ref().is_some_and(|c| c.registered))
        })
    }

    /// Recomputes whether conntrack must run.
    pub fn refresh_ct(&mut self) {
        self.ct_enabled = self.tables[TableKind::Nat.ix()].is_some()
            || self.tables.iter().flatten().any(|t| {
                t.chains
                    .iter()
                    .flatten()
                    .any(|c| c.rules.iter().any(Rule::needs_ct))
            });
    }

    pub(crate) fn skb_mark(&self, id: PacketId) -> u32 {
        if self.skbs.is_empty() {
            return 0;
        }
        self.skbs.get(&id).map_or(0, |s| s.mark)
    }

    pub(crate) fn skb_store(&mut self, id: PacketId, skb: Skb) {
        if skb.is_empty() {
            return;
        }
        self.skbs.insert(id, skb);
        while self.skbs.len() > SKB_CAP {
            self.skbs.pop_first();
        }
    }
}

impl World {
    /// The packet's mark (fwmark) in namespace `ns`, as `ip rule fwmark`
    /// and route lookups see it.
    pub fn nf_mark(&self, ns: NsId, id: PacketId) -> u32 {
        self.namespaces[ns.ix()].nf.skb_mark(id)
    }

    /// `conntrack -L` in `ns` at `now`: standard output (one line per entry,
    /// in creation order).
    pub fn conntrack_list(&self, ns: NsId, now: SimTime) -> String {
        self.namespaces[ns.ix()].nf.conntrack.list(now)
    }

    /// `conntrack -L` as the tool answers: the entries on standard output,
    /// the count on standard error.
    pub fn conntrack_list_output(&self, ns: NsId, now: SimTime) -> CmdOutput {
        let ct = &self.namespaces[ns.ix()].nf.conntrack;
        let n = ct.live(now).count();
        CmdOutput {
            stdout: ct.list(now),
            stderr: format!(
                "conntrack v1.4.7 (conntrack-tools): {n} flow entries have been shown.\n"
            ),
            failed: false,
        }
    }

    /// `iptables-save [-t TABLE] [-c]` in `ns`.
    pub fn iptables_save(&self, ns: NsId, table: Option<&str>, counters: bool) -> String {
        save::iptables_save(&self.namespaces[ns.ix()].nf, table, counters)
    }

    /// `iptables-restore [--noflush]` in `ns`.
    pub fn iptables_restore(&mut self, ns: NsId, text: &str, noflush: bool) -> Result<(), String> {
        save::iptables_restore(&mut self.namespaces[ns.ix()].nf, text, noflush)
    }

    /// `iptables-restore [--noflush] [-c]` in `ns`.
    pub fn iptables_restore_counters(
        &mut self,
        ns: NsId,
        text: &str,
        noflush: bool,
        counters: bool,
    ) -> Result<(), String> {
        save::iptables_restore_counters(&mut self.namespaces[ns.ix()].nf, text, noflush, counters)
    }
}
