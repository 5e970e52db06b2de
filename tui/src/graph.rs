//! The topology as a Graphviz graph, with a packet's path drawn over it
//! (`podpath graph`).
//!
//! Hosts and namespaces are clusters, devices are nodes inside their
//! namespace, segments sit between hosts; veth pairs, bridge ports, NIC
//! attachments, tunnel underlays and BGP sessions are edges. A packet's
//! path is a red chain of numbered edges over the devices and segments it
//! crossed, and the nodes and namespaces it visited are outlined in red.
//! Node ids are the topology's path names (`node1:test3:veth3`), so they
//! show as the `<title>` of each node in the SVG.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use scenarios::run::Outcome;
use scenarios::{RunOptions, Scenario};
use sim_core::packet::PacketId;
use sim_core::topo::{DeviceKind, EdgeKind, NodeId, NodeKind, Topology};
use sim_core::trace::{Encap, TraceEvent, TraceRecord};

/// A packet's path over the topology.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overlay {
    pub packet: u64,
    /// Devices and segments crossed, in order (consecutive repeats removed).
    pub hops: Vec<NodeId>,
    /// Namespaces where the packet took steps.
    pub places: BTreeSet<NodeId>,
    /// Tunnels the packet went through: (encapsulating device, device the
    /// inner packet came out of, label).
    pub tunnels: Vec<(NodeId, NodeId, String)>,
    /// The end: `delivered at node2:test3` or `dropped at node2: rp-filter`.
    pub end: Option<String>,
}

impl Overlay {
    /// The path of packet `id` in a trace (None if it has no steps).
    pub fn of_packet(topo: &Topology, trace: &[TraceRecord], id: PacketId) -> Option<Overlay> {
        let mut o = Overlay {
            packet: id.0,
            ..Default::default()
        };
        let mut any = false;
        let mut open: Vec<(NodeId, String)> = Vec::new();
        for r in trace.iter().filter(|r| r.packet == id) {
            any = true;
            let place_kind = topo.get(r.place).map(|n| n.kind);
            if place_kind == Some(NodeKind::Namespace) {
                o.places.insert(r.place);
            }
            match &r.event {
                TraceEvent::Receive { dev, .. } | TraceEvent::Transmit { dev, .. } => o.push(*dev),
                TraceEvent::Wire { from, to, .. } => {
                    o.push(*from);
                    if place_kind == Some(NodeKind::Segment) {
                        o.push(r.place);
                    }
                    o.push(*to);
                }
                TraceEvent::Encapsulate { dev, encap, .. } => {
                    let label = match encap {
                        Encap::Vxlan { vni, .. } => format!("VXLAN vni {vni}"),
                        Encap::Ipip => "IPIP".to_string(),
                    };
                    open.push((*dev, label));
                }
                TraceEvent::Decapsulate { dev, .. } => {
                    if let Some((from, label)) = open.pop() {
                        o.tunnels.push((from, *dev, label));
                    }
                }
                // The last delivery or drop is the end.
                TraceEvent::Deliver { to } => {
                    o.end = Some(format!("delivered at {} to {to}", topo.path(r.place)));
                }
                TraceEvent::Drop { reason } => {
                    o.end = Some(format!(
                        "dropped at {}: {}",
                        topo.path(r.place),
                        reason.code()
                    ));
                }
                _ => {}
            }
        }
        any.then_some(o)
    }

    fn push(&mut self, n: NodeId) {
        if self.hops.last() != Some(&n) {
            self.hops.push(n);
        }
    }
}

fn q(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn shape(k: DeviceKind) -> &'static str {
    match k {
        DeviceKind::Loopback => "plaintext",
        DeviceKind::Nic => "box",
        DeviceKind::Veth => "ellipse",
        DeviceKind::Bridge => "box3d",
        DeviceKind::Vxlan | DeviceKind::Ipip => "hexagon",
        DeviceKind::Dummy => "octagon",
    }
}

/// The topology as Graphviz DOT, with `overlay` drawn over it.
pub fn to_dot(topo: &Topology, title: &str, overlay: Option<&Overlay>) -> String {
    let on_path: BTreeSet<NodeId> = overlay
        .map(|o| o.hops.iter().copied().collect())
        .unwrap_or_default();
    let visited = |n: NodeId| overlay.is_some_and(|o| o.places.contains(&n));
    let mut out = String::new();
    let mut label = title.to_string();
    if let Some(o) = overlay {
        let _ = write!(label, "\\npacket #{}", o.packet);
        if let Some(e) = &o.end {
            let _ = write!(label, ": {e}");
        }
    }
    let _ = writeln!(out, "digraph podpath {{");
    let _ = writeln!(
        out,
        "  graph [label=\"{label}\", labelloc=t, fontname=\"Helvetica\", rankdir=LR, compound=true];"
    );
    let _ = writeln!(
        out,
        "  node [fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];"
    );
    let node_attrs = |id: NodeId, base: String| -> String {
        if on_path.contains(&id) {
            format!("{base}, color=red, penwidth=2.5, style=filled, fillcolor=\"#ffe0e0\"")
        } else {
            base
        }
    };
    let children = |parent: NodeId| -> Vec<NodeId> {
        topo.related(parent, EdgeKind::Contains)
            .into_iter()
            .filter(|&c| topo.container(c) == Some(parent))
            .collect()
    };
    for (hid, h) in topo.nodes().filter(|(_, n)| n.kind == NodeKind::Host) {
        let _ = writeln!(out, "  subgraph {} {{", q(&format!("cluster_{}", h.path)));
        let _ = writeln!(
            out,
            "    label={}; style=rounded; color=\"#555555\";",
            q(&h.name)
        );
        for ns in children(hid) {
            let n = topo.node(ns);
            if n.kind != NodeKind::Namespace {
                continue;
            }
            let nlabel = if n.name.is_empty() {
                format!("{} (root namespace)", h.name)
            } else {
                format!("netns {}", n.name)
            };
            let _ = writeln!(
                out,
                "    subgraph {} {{",
                q(&format!("cluster_ns_{}_{}", h.path, ns.0))
            );
            let _ = writeln!(
                out,
                "      label={}; style=dashed; color={};",
                q(&nlabel),
                if visited(ns) { "red" } else { "\"#888888\"" }
            );
            let mut any = false;
            for d in children(ns) {
                let dn = topo.node(d);
                let attrs = match dn.kind {
                    // Loopback devices only when the packet used one.
                    NodeKind::Device(DeviceKind::Loopback) if !on_path.contains(&d) => continue,
                    NodeKind::Device(k) => {
                        format!("label={}, shape={}", q(&dn.name), shape(k))
                    }
                    NodeKind::Speaker => format!("label={}, shape=note", q("bgp")),
                    _ => continue,
                };
                any = true;
                let _ = writeln!(out, "      {} [{}];", q(&dn.path), node_attrs(d, attrs));
            }
            if !any {
                // An empty cluster is not drawn: keep the namespace visible.
                let _ = writeln!(
                    out,
                    "      {} [label=\"\", shape=point, style=invis];",
                    q(&format!("{}#ns", n.path))
                );
            }
            let _ = writeln!(out, "    }}");
        }
        let _ = writeln!(out, "  }}");
    }
    for (sid, s) in topo.nodes().filter(|(_, n)| n.kind == NodeKind::Segment) {
        let attrs = format!("label={}, shape=cylinder", q(&s.name));
        let _ = writeln!(out, "  {} [{}];", q(&s.path), node_attrs(sid, attrs));
    }
    // Relations (each edge once, in the graph's order).
    let g = topo.graph();
    for e in g.edge_indices() {
        let Some((a, b)) = g.edge_endpoints(e) else {
            continue;
        };
        let (a, b) = (NodeId(a.index() as u32), NodeId(b.index() as u32));
        let style = match g[e] {
            EdgeKind::Contains => continue,
            EdgeKind::VethPeer => "dir=none, label=\"veth\"",
            EdgeKind::BridgePort => "style=dashed, label=\"port\"",
            EdgeKind::AttachedTo => "dir=none",
            EdgeKind::TunnelUnderlay => "style=dotted, label=\"underlay\"",
            EdgeKind::BgpSession => "dir=none, style=dashed, color=blue, label=\"bgp\"",
        };
        let _ = writeln!(
            out,
            "  {} -> {} [{style}];",
            q(topo.path(a)),
            q(topo.path(b))
        );
    }
    if let Some(o) = overlay {
        for (a, b, label) in &o.tunnels {
            let _ = writeln!(
                out,
                "  {} -> {} [color=red, style=dashed, penwidth=1.5, fontcolor=red, label={}, constraint=false];",
                q(topo.path(*a)),
                q(topo.path(*b)),
                q(&format!("tunnel: {label}"))
            );
        }
        for (i, w) in o.hops.windows(2).enumerate() {
            let _ = writeln!(
                out,
                "  {} -> {} [color=red, penwidth=3, fontcolor=red, label=\"{}\", constraint=false];",
                q(topo.path(w[0])),
                q(topo.path(w[1])),
                i + 1
            );
        }
    }
    out.push_str("}\n");
    out
}

/// Renders DOT to SVG with Graphviz's `dot`.
pub fn dot_to_svg(dot: &str) -> Result<String, String> {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("cannot run Graphviz `dot` ({e}): install graphviz, or use --format dot")
        })?;
    // `dot` reads the whole graph before it writes anything, so writing all
    // of it first cannot deadlock on a full pipe.
    let mut stdin = child.stdin.take().expect("piped stdin");
    let wrote = stdin.write_all(dot.as_bytes());
    drop(stdin);
    let out = child
        .wait_with_output()
        .map_err(|e| format!("dot failed: {e}"))?;
    wrote.map_err(|e| format!("dot failed: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "dot failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("dot printed non-UTF-8: {e}"))
}

/// Whether Graphviz's `dot` can be run.
pub fn have_dot() -> bool {
    Command::new("dot")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `podpath graph`: runs the scenario and draws its topology at the end of
/// the run, with packet `packet`'s path over it, as DOT or (through
/// Graphviz) SVG.
pub fn scenario_graph(
    sc: &Scenario,
    opts: &RunOptions,
    packet: Option<u64>,
    svg: bool,
) -> Result<String, String> {
    let r = scenarios::run(sc, opts);
    match &r.outcome {
        Outcome::InputError(d) => return Err(d.to_string()),
        Outcome::Limit(m) => return Err(m.clone()),
        _ => {}
    }
    let topo = &r.sim.world.topo;
    let overlay = match packet {
        None => None,
        Some(id) => Some(
            Overlay::of_packet(topo, &r.trace, PacketId(id)).ok_or_else(|| {
                let last = r.trace.iter().map(|t| t.packet.0).max().unwrap_or(0);
                format!("no packet #{id} in the run (packets are #1 to #{last})")
            })?,
        ),
    };
    let dot = to_dot(topo, &sc.file.name, overlay.as_ref());
    if svg { dot_to_svg(&dot) } else { Ok(dot) }
}
