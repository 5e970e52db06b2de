//! The neighbour (ARP) table of a namespace.
//!
//! States and timers follow net/core/neighbour.c: a miss creates an
//! INCOMPLETE entry, queues the packet and sends a broadcast request every
//! `retrans_time` up to `mcast_solicit` times, then FAILED (queued packets
//! get ICMP host unreachable). A reply makes it REACHABLE for a random time
//! in [base_reachable_time/2, 3*base_reachable_time/2); then STALE; a packet
//! sent to a STALE entry moves it to DELAY, then PROBE (unicast requests).
//! PERMANENT entries (`ip neigh add`, `arp -s`) never change.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use sim_core::packet::Packet;
use sim_core::sched::EventId;
use sim_core::time::SimTime;
use sim_core::wire::MacAddr;

use crate::cmd::NudState;
use crate::linux::types::DevId;

/// A neighbour entry. Kept small (32 bytes): a flannel node holds a
/// PERMANENT one per other node, thousands; what only an entry being
/// resolved or timed needs is boxed apart ([`NeighRes`]).
#[derive(Debug, Clone)]
pub struct NeighEntry {
    pub state: NudState,
    /// A proxy entry (`ip neigh add proxy`).
    pub proxy: bool,
    pub mac: Option<MacAddr>,
    /// When the entry last changed state or was confirmed.
    pub updated: SimTime,
    res: Option<Box<NeighRes>>,
}

/// An entry's resolution: its probes, queued packets and timer.
#[derive(Debug, Clone, Default)]
pub struct NeighRes {
    /// Requests sent in the current resolution.
    pub probes: u32,
    /// Packets waiting for resolution, with their byte sizes.
    pub queue: Vec<Packet>,
    pub queue_bytes: u32,
    pub timer: Option<EventId>,
}

impl NeighEntry {
    pub fn new(state: NudState, mac: Option<MacAddr>, now: SimTime) -> Self {
        NeighEntry {
            state,
            mac,
            updated: now,
            res: None,
            proxy: false,
        }
    }
    /// The entry's resolution state, made when first needed.
    pub fn res(&mut self) -> &mut NeighRes {
        self.res.get_or_insert_with(Default::default)
    }
    pub fn probes(&self) -> u32 {
        self.res.as_ref().map_or(0, |r| r.probes)
    }
    pub fn queue(&self) -> &[Packet] {
        self.res.as_ref().map_or(&[], |r| &r.queue)
    }
    /// The queued packets, leaving none.
    pub fn take_queue(&mut self) -> Vec<Packet> {
        match &mut self.res {
            Some(r) => {
                r.queue_bytes = 0;
                std::mem::take(&mut r.queue)
            }
            None => Vec::new(),
        }
    }
    pub fn take_timer(&mut self) -> Option<EventId> {
        self.res.as_mut().and_then(|r| r.timer.take())
    }
    /// Usable for transmission without resolution.
    pub fn valid(&self) -> bool {
        matches!(
            self.state,
            NudState::Permanent
                | NudState::Noarp
                | NudState::Reachable
                | NudState::Stale
                | NudState::Delay
                | NudState::Probe
        ) && self.mac.is_some()
    }
}

/// Entries keyed by (device, address), so iteration is deterministic.
#[derive(Debug, Clone, Default)]
pub struct NeighTable {
    pub entries: BTreeMap<(DevId, Ipv4Addr), NeighEntry>,
}

impl NeighTable {
    pub fn get(&self, dev: DevId, addr: Ipv4Addr) -> Option<&NeighEntry> {
        self.entries.get(&(dev, addr))
    }
    pub fn get_mut(&mut self, dev: DevId, addr: Ipv4Addr) -> Option<&mut NeighEntry> {
        self.entries.get_mut(&(dev, addr))
    }
}

impl crate::linux::World {
    /// Whether a new neighbour entry fits in the host's ARP table. At
    /// `gc_thresh3` the kernel first runs a forced GC (neigh_forced_gc): it
    /// frees entries that are not PERMANENT, have no queued packets, and are
    /// FAILED or were not updated in the last 5 seconds.
    pub fn neigh_room(&mut self, host: crate::linux::HostId, now: sim_core::time::SimTime) -> bool {
        let h = &self.hosts[host.ix()];
        if h.neigh_entries < h.gc_thresh[2] {
            return true;
        }
        let mut nss = vec![h.root];
        nss.extend(h.namespaces.values().copied());
        let mut freed = 0u32;
        for ns in nss {
            let t = &mut self.namespaces[ns.ix()].neigh.entries;
            let before = t.len();
            t.retain(|_, e| {
                let busy = matches!(
                    e.state,
                    NudState::Permanent | NudState::Noarp | NudState::Incomplete
                ) || !e.queue().is_empty();
                let old =
                    now.saturating_since(e.updated) > sim_core::time::SimDuration::from_secs(5);
                busy || !(e.state == NudState::Failed || old)
            });
            freed += (before - t.len()) as u32;
        }
        let h = &mut self.hosts[host.ix()];
        h.neigh_entries -= freed;
        h.neigh_entries < h.gc_thresh[2]
    }
}
