//! BGP-4, sans IO: a speaker as a state machine that consumes events and
//! emits actions, to be bound to a transport (simulated TCP) by a thin
//! adapter.
//!
//! - [`config`]: a speaker's configuration in BIRD's terms (timers with
//!   their documented defaults, neighbours, prefix-list policies);
//! - [`calico`]: Calico's BGPConfiguration, Node and BGPPeer resources and
//!   their expansion into per-node configurations, as calico/node renders
//!   BIRD's;
//! - [`rib`]: path attributes, routes and the decision process (RFC 4271
//!   §9.1.2, RFC 4456 §9);
//! - [`speaker`]: the per-peer session FSM (RFC 4271 §8), Adj-RIBs-In, the
//!   Loc-RIB, Adj-RIBs-Out, route reflection, graceful restart (RFC 4724,
//!   receiving side), driven by [`Input`]s and answering with [`Output`]s.
//!
//! The messages themselves are [`sim_core::wire::bgp`].
//!
//! Driving a speaker: feed `Input::Start`, then whatever its outputs ask
//! for comes back as inputs — `Connect(peer)` becomes
//! `TransportConnected(peer)` (or `TransportClosed(peer)` if refused),
//! `Send(peer, bytes)` becomes the peer's `TransportBytes`, `SetTimer` becomes
//! `Timer` at that time. `Install`/`Uninstall` are the routes for the
//! kernel. [`fabric`] does exactly this over an in-memory byte pipe, for
//! whole clusters (the unit tests, the agreement test with real BIRD and
//! the scale benches run on it).

pub mod bird_cfg;
pub mod calico;
pub mod config;
pub mod fabric;
pub mod rib;
pub mod speaker;

#[cfg(test)]
mod tests;

pub use calico::{BgpConfiguration, BgpPeer, CalicoCluster, CalicoNode, NodeSpeaker, Selector};
pub use config::{
    Action, GracefulRestart, Neighbor, PrefixEntry, PrefixList, SpeakerConfig, Timers,
};
pub use fabric::{
    Converged, Fabric, FabricError, FabricNode, FabricOptions, Installed, IntoNodes, KernelRoute,
    NodeSpec, Stats, converge,
};
pub use rib::{Candidate, PathAttrs, Source};
pub use speaker::{
    Best, InRoute, Input, LogLine, Output, PeerAddr, Session, Speaker, State, TimerKind,
};
