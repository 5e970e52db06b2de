//! podpath's deterministic core.
//!
//! Time, the event scheduler, seeded randomness, the topology graph, the packet
//! model with its wire formats, and the typed trace. sim-core knows the
//! vocabulary of networks (devices, addresses, headers, the steps a packet can
//! take) but nothing of how Linux decides them: that lives in `sim-models`.

#[cfg(feature = "mimalloc")]
pub mod alloc;
pub mod net;
pub mod packet;
pub mod rng;
pub mod sched;
pub mod time;
pub mod topo;
pub mod trace;
pub mod wire;
