//! A speaker's configuration: its identity, timers, neighbours and their
//! prefix policies, in the terms BIRD's `protocol bgp` uses.
//!
//! Defaults, and where they come from (see also docs/fidelity.md, "BGP"):
//!
//! | setting | [`Timers::bird`] | [`Timers::calico`] | source |
//! |---|---|---|---|
//! | hold time | 240 s | 240 s | BIRD 2 default `hold time 240` (BIRD docs; and every OPEN in the BIRD 2.0.12 capture says 240); Calico's template does not set it |
//! | keepalive | hold / 3 | hold / 3 | BIRD docs: "default: one third of the hold time" |
//! | startup hold time | 240 s | 240 s | BIRD docs (`startup hold time 240`), the hold timer in OpenSent |
//! | connect delay | 5 s | 2 s | BIRD docs `connect delay time 5`; Calico's bird.cfg.template `connect delay time 2` |
//! | connect retry | 120 s | 5 s | BIRD docs `connect retry time 120`; Calico's template `connect retry time 5` |
//! | error wait | 60..300 s | 5..30 s | BIRD docs `error wait time 60,300`; Calico's template `error wait time 5,30` |
//! | error forget | 300 s | 300 s | BIRD docs `error forget time 300` |
//! | graceful restart | aware, 120 s | on, 120 s | BIRD default `aware` (announces the capability without families, as the capture shows); Calico's template `graceful restart;` and, for mesh peers, `graceful restart time 120` |
//! | timer jitter | up to 25 % shorter | same | BIRD's `bgp_start_timer` (proto/bgp/bgp.c): `time - random() % (time / 4 + 1)`, RFC 4271 §10; read in BIRD's source |
//!
//! Calico's values were read from projectcalico/calico's
//! `confd/etc/calico/confd/templates/bird.cfg.template` (its `template bgp
//! bgp_template` block) and confirmed by the rendered configurations that
//! confd's tests compare against (`confd/tests/compiled_templates/mesh/
//! ipip-off/bird.cfg`, `.../explicit_peering/route_reflector/bird.cfg`):
//! `connect delay time 2; connect retry time 5; error wait time 5,30;`. One
//! stored revision of the template (with BFD and an import filter) says
//! `connect delay time 1; connect retry time 3; error wait time 5,60;`; no
//! rendered configuration has those, and this model used them until the
//! agreement test with real BIRD (tests/tests/e2e/bird/) had the template
//! read again. The mesh's `graceful restart time 120` is confd's rendering
//! of the default `nodeMeshMaxRestartTime` (120 s) into each `Mesh_`
//! protocol. BIRD's defaults are from the BIRD 2 user
//! guide, from memory, and the hold time and graceful-restart time are
//! confirmed by the capture of BIRD 2.0.12 in sim-core's fixtures.

use std::net::Ipv4Addr;

use sim_core::net::Ipv4Net;
use sim_core::time::SimDuration;

/// What a prefix list does with a prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Allow,
    Deny,
}

/// One entry of a prefix list: a prefix and how much longer a matching
/// prefix may be (`10.244.0.0/16 le 32` matches every prefix inside the
/// /16; without `le`, only 10.244.0.0/16 itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PrefixEntry {
    pub action: Action,
    pub prefix: Ipv4Net,
    /// The longest prefix length matched (at least `prefix.len`); `None`:
    /// exactly `prefix.len`.
    pub le: Option<u8>,
}

impl PrefixEntry {
    pub fn matches(&self, p: Ipv4Net) -> bool {
        let max = self.le.unwrap_or(self.prefix.len).max(self.prefix.len);
        p.len >= self.prefix.len && p.len <= max && self.prefix.network().contains(p.addr)
    }
}

/// An ordered prefix list: the first matching entry decides, else the
/// default (what a ToR's route-map or a BIRD filter of `net ~ [...]` tests
/// amounts to).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PrefixList {
    pub entries: Vec<PrefixEntry>,
    pub default: Action,
}

impl PrefixList {
    /// Everything allowed (BIRD's `import all` / `export all`).
    pub fn allow_all() -> Self {
        PrefixList {
            entries: Vec::new(),
            default: Action::Allow,
        }
    }

    /// Nothing allowed (`import none` / `export none`).
    pub fn deny_all() -> Self {
        PrefixList {
            entries: Vec::new(),
            default: Action::Deny,
        }
    }

    /// Only prefixes inside these (any length up to /32, BIRD's `net ~ P`).
    pub fn allow_within(prefixes: &[Ipv4Net]) -> Self {
        PrefixList {
            entries: prefixes
                .iter()
                .map(|p| PrefixEntry {
                    action: Action::Allow,
                    prefix: p.network(),
                    le: Some(32),
                })
                .collect(),
            default: Action::Deny,
        }
    }

    pub fn evaluate(&self, p: Ipv4Net) -> Action {
        self.entries
            .iter()
            .find(|e| e.matches(p))
            .map_or(self.default, |e| e.action)
    }

    pub fn allows(&self, p: Ipv4Net) -> bool {
        self.evaluate(p) == Action::Allow
    }
}

/// The session timers (seconds as [`SimDuration`]); see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timers {
    /// The hold time we offer in OPEN (the session uses the smaller of
    /// both offers; 0 means no keepalives and no hold timer).
    pub hold: SimDuration,
    /// The keepalive interval; `None`: a third of the negotiated hold time.
    pub keepalive: Option<SimDuration>,
    /// The hold timer while waiting for the peer's OPEN.
    pub startup_hold: SimDuration,
    /// Delay before the first connection attempt (BIRD's `connect delay time`).
    pub connect_delay: SimDuration,
    /// The ConnectRetry timer.
    pub connect_retry: SimDuration,
    /// After an error, wait this long before starting again, doubling up
    /// to the maximum for consecutive errors (BIRD's `error wait time`).
    pub error_wait_min: SimDuration,
    pub error_wait_max: SimDuration,
    /// Errors older than this are forgotten (BIRD's `error forget time`).
    pub error_forget: SimDuration,
}

impl Timers {
    /// BIRD 2's defaults.
    pub fn bird() -> Self {
        Timers {
            hold: SimDuration::from_secs(240),
            keepalive: None,
            startup_hold: SimDuration::from_secs(240),
            connect_delay: SimDuration::from_secs(5),
            connect_retry: SimDuration::from_secs(120),
            error_wait_min: SimDuration::from_secs(60),
            error_wait_max: SimDuration::from_secs(300),
            error_forget: SimDuration::from_secs(300),
        }
    }

    /// BIRD as Calico's `bird.cfg.template` configures it.
    pub fn calico() -> Self {
        Timers {
            connect_delay: SimDuration::from_secs(2),
            connect_retry: SimDuration::from_secs(5),
            error_wait_min: SimDuration::from_secs(5),
            error_wait_max: SimDuration::from_secs(30),
            ..Timers::bird()
        }
    }
}

impl Default for Timers {
    fn default() -> Self {
        Timers::bird()
    }
}

/// Graceful restart (RFC 4724), receiving-speaker side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GracefulRestart {
    /// Do not announce the capability; a peer's routes go when it does.
    Off,
    /// Announce the capability without address families (BIRD's default,
    /// `aware`): keep a restarting peer's routes, preserve nothing ourselves.
    Aware { restart_time: u16 },
    /// Announce it for IPv4 unicast (BIRD's `graceful restart on`, as
    /// Calico sets it).
    On { restart_time: u16 },
}

impl GracefulRestart {
    pub fn enabled(self) -> bool {
        !matches!(self, GracefulRestart::Off)
    }
    pub fn restart_time(self) -> u16 {
        match self {
            GracefulRestart::Off => 0,
            GracefulRestart::Aware { restart_time } | GracefulRestart::On { restart_time } => {
                restart_time
            }
        }
    }
}

/// One configured neighbour (a BIRD `protocol bgp`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Neighbor {
    /// The neighbour's address: the peer key of every input and output.
    pub address: Ipv4Addr,
    pub remote_as: u32,
    /// Our address on this session (BIRD's `source address`, or `local A`):
    /// the TCP source, and the next hop when we put ourselves as next hop.
    /// `None`: the speaker's [`SpeakerConfig::address`].
    pub local_address: Option<Ipv4Addr>,
    /// Never connect, only accept (BIRD's `passive on`).
    pub passive: bool,
    /// The neighbour is a route-reflector client of ours (RFC 4456; BIRD's
    /// `rr client`). Only meaningful on iBGP sessions.
    pub rr_client: bool,
    /// Put our address as NEXT_HOP on iBGP too (BIRD's `next hop self`).
    /// eBGP always rewrites the next hop unless `next_hop_keep`.
    pub next_hop_self: bool,
    /// Keep the next hop on eBGP (BIRD's `next hop keep`; Calico's
    /// `keepOriginalNextHop`).
    pub next_hop_keep: bool,
    pub import: PrefixList,
    pub export: PrefixList,
    /// A label for logs (`Mesh_10_0_0_2`, `Global_10_0_0_9`, ...).
    pub name: String,
}

impl Neighbor {
    /// An active neighbour, all routes in and out.
    pub fn new(address: Ipv4Addr, remote_as: u32) -> Self {
        Neighbor {
            address,
            remote_as,
            local_address: None,
            passive: false,
            rr_client: false,
            next_hop_self: false,
            next_hop_keep: false,
            import: PrefixList::allow_all(),
            export: PrefixList::allow_all(),
            name: format!("peer_{address}"),
        }
    }
}

/// A speaker's whole configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SpeakerConfig {
    /// The BGP identifier (BIRD's `router id`; Calico uses the node's IPv4).
    pub router_id: Ipv4Addr,
    pub local_as: u32,
    /// The speaker's main address (Calico's node IP).
    pub address: Ipv4Addr,
    /// The route-reflection cluster id (BIRD's `rr cluster id`; default:
    /// the router id). Used when some neighbour is an `rr_client`.
    pub cluster_id: Option<Ipv4Addr>,
    pub timers: Timers,
    pub graceful_restart: GracefulRestart,
    /// LOCAL_PREF given to routes without one (BIRD's `default bgp_local_pref 100`).
    pub default_local_pref: u32,
    pub neighbors: Vec<Neighbor>,
}

impl SpeakerConfig {
    /// A speaker with BIRD's defaults and no neighbours.
    pub fn new(router_id: Ipv4Addr, local_as: u32) -> Self {
        SpeakerConfig {
            router_id,
            local_as,
            address: router_id,
            cluster_id: None,
            timers: Timers::bird(),
            graceful_restart: GracefulRestart::Aware { restart_time: 120 },
            default_local_pref: 100,
            neighbors: Vec::new(),
        }
    }

    pub fn neighbor(&self, addr: Ipv4Addr) -> Option<&Neighbor> {
        self.neighbors.iter().find(|n| n.address == addr)
    }

    /// The cluster id used for reflection and loop detection.
    pub fn effective_cluster_id(&self) -> Ipv4Addr {
        self.cluster_id.unwrap_or(self.router_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn prefix_lists_match_exact_or_le() {
        let l = PrefixList {
            entries: vec![
                PrefixEntry {
                    action: Action::Deny,
                    prefix: net("10.244.9.0/24"),
                    le: Some(32),
                },
                PrefixEntry {
                    action: Action::Allow,
                    prefix: net("10.244.0.0/16"),
                    le: Some(26),
                },
                PrefixEntry {
                    action: Action::Allow,
                    prefix: net("0.0.0.0/0"),
                    le: None,
                },
            ],
            default: Action::Deny,
        };
        assert!(l.allows(net("10.244.1.0/26")));
        assert!(l.allows(net("10.244.0.0/16")));
        assert!(!l.allows(net("10.244.1.5/32")), "longer than le 26");
        assert!(
            !l.allows(net("10.244.9.0/26")),
            "the deny entry comes first"
        );
        assert!(!l.allows(net("10.0.0.0/8")), "shorter than the /16");
        assert!(l.allows(net("0.0.0.0/0")));
        assert!(
            !l.allows(net("192.168.0.0/24")),
            "only the default route, exactly"
        );
        assert!(PrefixList::allow_within(&[net("10.244.0.0/16")]).allows(net("10.244.3.7/32")));
    }
}
