//! podpath's models: the Linux networking stack driven by the real tools'
//! commands (`ip`, `bridge`, `arp`, `sysctl`, `iptables`, `ping`), and, in
//! later work, control planes (BGP) and Kubernetes CNI presets.
//!
//! Models are state machines: they get a context (the simulated time, the
//! scheduler and the trace sink) and do no IO.

pub mod bgp;
pub mod cmd;
pub mod linux;
pub mod sim;
