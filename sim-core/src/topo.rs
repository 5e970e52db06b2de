//! The topology graph: the modelled objects and their relations.
//!
//! Nodes are hosts, network namespaces, devices, L2 segments and BGP speakers;
//! edges say how they relate (a namespace is contained in a host, a veth end
//! is the peer of another, a device is a port of a bridge, a NIC is attached
//! to a segment, a tunnel rides on an underlay device, two speakers hold a
//! session). The graph is a petgraph `StableGraph`, so ids stay valid when
//! objects are deleted. Every node has a path name:
//!
//! * `node1` — a host (its root namespace has the same path);
//! * `node1:test3` — a named network namespace on `node1`;
//! * `node1:eth0` — a device in the host's root namespace;
//! * `node1:test3:veth3` — a device in namespace `test3`.
//!
//! When a namespace and a root-namespace device share a name, `node1:X`
//! names the namespace and the device is `node1::X` (empty namespace part).

use indexmap::IndexMap;
use petgraph::Direction;
use petgraph::stable_graph::{NodeIndex, StableGraph};
use petgraph::visit::EdgeRef;

/// A node of the topology graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

impl NodeId {
    fn ix(self) -> NodeIndex<u32> {
        NodeIndex::new(self.0 as usize)
    }
}

/// The kinds of device the simulator knows by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceKind {
    Loopback,
    Nic,
    Veth,
    Bridge,
    Vxlan,
    Ipip,
    Dummy,
}

impl DeviceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Loopback => "loopback",
            DeviceKind::Nic => "nic",
            DeviceKind::Veth => "veth",
            DeviceKind::Bridge => "bridge",
            DeviceKind::Vxlan => "vxlan",
            DeviceKind::Ipip => "ipip",
            DeviceKind::Dummy => "dummy",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeKind {
    Host,
    /// A network namespace; the root namespace of a host has an empty name.
    Namespace,
    Device(DeviceKind),
    Segment,
    Speaker,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EdgeKind {
    /// host -> namespace, namespace -> device
    Contains,
    /// veth end <-> veth end (one edge, from the end created first)
    VethPeer,
    /// device -> bridge it is a port of
    BridgePort,
    /// NIC -> segment
    AttachedTo,
    /// tunnel device -> underlay device (`dev` of a vxlan/ipip device)
    TunnelUnderlay,
    /// speaker -> speaker
    BgpSession,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopoNode {
    pub kind: NodeKind,
    /// Local name: `eth0`, `test3`, `node1`.
    pub name: String,
    /// Full path name: `node1:test3:veth3`.
    pub path: String,
}

/// The topology graph with path-name lookup.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    graph: StableGraph<TopoNode, EdgeKind, petgraph::Directed, u32>,
    by_path: IndexMap<String, NodeId>,
}

impl Topology {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn graph(&self) -> &StableGraph<TopoNode, EdgeKind, petgraph::Directed, u32> {
        &self.graph
    }

    pub fn node(&self, id: NodeId) -> &TopoNode {
        &self.graph[id.ix()]
    }

    pub fn get(&self, id: NodeId) -> Option<&TopoNode> {
        self.graph.node_weight(id.ix())
    }

    /// Local name of a node (`veth3`), or `?` for a removed node.
    pub fn name(&self, id: NodeId) -> &str {
        self.get(id).map(|n| n.name.as_str()).unwrap_or("?")
    }

    /// Full path of a node (`node1:test3:veth3`), or `?` for a removed node.
    pub fn path(&self, id: NodeId) -> &str {
        self.get(id).map(|n| n.path.as_str()).unwrap_or("?")
    }

    pub fn lookup(&self, path: &str) -> Option<NodeId> {
        self.by_path.get(path).copied()
    }

    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    pub fn add_host(&mut self, name: &str) -> NodeId {
        self.insert(NodeKind::Host, name, name.to_string())
    }

    /// The root namespace of a host: a namespace node with an empty name and
    /// the host's path, contained in the host. Not entered in the path index
    /// (the host's path names the host).
    pub fn add_root_namespace(&mut self, host: NodeId) -> NodeId {
        let path = self.path(host).to_string();
        let id = NodeId(
            self.graph
                .add_node(TopoNode {
                    kind: NodeKind::Namespace,
                    name: String::new(),
                    path,
                })
                .index() as u32,
        );
        self.connect(host, id, EdgeKind::Contains);
        id
    }

    pub fn add_namespace(&mut self, host: NodeId, name: &str) -> NodeId {
        let path = format!("{}:{}", self.path(host), name);
        let id = self.insert(NodeKind::Namespace, name, path);
        self.connect(host, id, EdgeKind::Contains);
        id
    }

    /// Adds a device to namespace `ns` (a root or named namespace).
    pub fn add_device(&mut self, ns: NodeId, kind: DeviceKind, name: &str) -> NodeId {
        let path = self.device_path(ns, name);
        let id = self.insert(NodeKind::Device(kind), name, path);
        self.connect(ns, id, EdgeKind::Contains);
        id
    }

    pub fn add_segment(&mut self, name: &str) -> NodeId {
        self.insert(NodeKind::Segment, name, name.to_string())
    }

    pub fn add_speaker(&mut self, ns: NodeId, name: &str) -> NodeId {
        let path = format!("{}:bgp", self.path(ns));
        let id = self.insert(NodeKind::Speaker, name, path);
        self.connect(ns, id, EdgeKind::Contains);
        id
    }

    pub fn connect(&mut self, a: NodeId, b: NodeId, kind: EdgeKind) {
        self.graph.add_edge(a.ix(), b.ix(), kind);
    }

    /// Removes every edge of `kind` between `a` and `b` (either direction).
    pub fn disconnect(&mut self, a: NodeId, b: NodeId, kind: EdgeKind) {
        let edges: Vec<_> = self
            .graph
            .edges_connecting(a.ix(), b.ix())
            .chain(self.graph.edges_connecting(b.ix(), a.ix()))
            .filter(|e| *e.weight() == kind)
            .map(|e| e.id())
            .collect();
        for e in edges {
            self.graph.remove_edge(e);
        }
    }

    /// Removes every outgoing edge of `kind` from `a`.
    pub fn disconnect_all(&mut self, a: NodeId, kind: EdgeKind) {
        let edges: Vec<_> = self
            .graph
            .edges_directed(a.ix(), Direction::Outgoing)
            .filter(|e| *e.weight() == kind)
            .map(|e| e.id())
            .collect();
        for e in edges {
            self.graph.remove_edge(e);
        }
    }

    pub fn remove(&mut self, id: NodeId) {
        if let Some(n) = self.graph.remove_node(id.ix())
            && self.by_path.get(&n.path) == Some(&id)
        {
            self.by_path.shift_remove(&n.path);
        }
    }

    /// Moves a device into namespace `ns` (and renames it), updating its path.
    pub fn move_device(&mut self, dev: NodeId, ns: NodeId, new_name: &str) {
        let old_path = self.path(dev).to_string();
        if self.by_path.get(&old_path) == Some(&dev) {
            self.by_path.shift_remove(&old_path);
        }
        if let Some(old_ns) = self.container(dev) {
            self.disconnect(old_ns, dev, EdgeKind::Contains);
        }
        self.connect(ns, dev, EdgeKind::Contains);
        let path = self.device_path(ns, new_name);
        let n = &mut self.graph[dev.ix()];
        n.name = new_name.to_string();
        n.path = path.clone();
        self.by_path.entry(path).or_insert(dev);
    }

    /// The node that contains `id` (host of a namespace, namespace of a device).
    pub fn container(&self, id: NodeId) -> Option<NodeId> {
        self.graph
            .edges_directed(id.ix(), Direction::Incoming)
            .find(|e| *e.weight() == EdgeKind::Contains)
            .map(|e| NodeId(e.source().index() as u32))
    }

    /// The host a node belongs to (itself for a host).
    pub fn host_of(&self, mut id: NodeId) -> Option<NodeId> {
        for _ in 0..4 {
            match self.get(id)?.kind {
                NodeKind::Host => return Some(id),
                _ => id = self.container(id)?,
            }
        }
        None
    }

    /// Neighbours of `id` over edges of `kind`, in either direction, in edge order.
    pub fn related(&self, id: NodeId, kind: EdgeKind) -> Vec<NodeId> {
        let mut out: Vec<NodeId> = self
            .graph
            .edges_directed(id.ix(), Direction::Outgoing)
            .filter(|e| *e.weight() == kind)
            .map(|e| NodeId(e.target().index() as u32))
            .chain(
                self.graph
                    .edges_directed(id.ix(), Direction::Incoming)
                    .filter(|e| *e.weight() == kind)
                    .map(|e| NodeId(e.source().index() as u32)),
            )
            .collect();
        out.sort();
        out
    }

    /// All live nodes in id order.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &TopoNode)> {
        self.graph
            .node_indices()
            .map(|ix| (NodeId(ix.index() as u32), &self.graph[ix]))
    }

    fn device_path(&self, ns: NodeId, name: &str) -> String {
        let ns_node = self.node(ns);
        if ns_node.name.is_empty() {
            let p = format!("{}:{}", ns_node.path, name);
            if self
                .by_path
                .get(&p)
                .is_some_and(|&o| self.node(o).kind == NodeKind::Namespace)
            {
                return format!("{}::{}", ns_node.path, name);
            }
            p
        } else {
            format!("{}:{}", ns_node.path, name)
        }
    }

    fn insert(&mut self, kind: NodeKind, name: &str, path: String) -> NodeId {
        let id = NodeId(
            self.graph
                .add_node(TopoNode {
                    kind,
                    name: name.to_string(),
                    path: path.clone(),
                })
                .index() as u32,
        );
        match self.by_path.get(&path) {
            // A namespace takes the plain path over a root device of the same name.
            Some(&other) if kind == NodeKind::Namespace => {
                let other_node = self.node(other).clone();
                if let NodeKind::Device(_) = other_node.kind {
                    let host = path.rsplit_once(':').map(|(h, _)| h).unwrap_or("");
                    let alt = format!("{host}::{}", other_node.name);
                    self.graph[other.ix()].path = alt.clone();
                    self.by_path.insert(alt, other);
                }
                self.by_path.insert(path, id);
            }
            Some(_) => {}
            None => {
                self.by_path.insert(path, id);
            }
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_lookup() {
        let mut t = Topology::new();
        let h = t.add_host("node1");
        let root = t.add_root_namespace(h);
        let eth0 = t.add_device(root, DeviceKind::Nic, "eth0");
        let ns = t.add_namespace(h, "test3");
        let veth = t.add_device(root, DeviceKind::Veth, "veth3");
        assert_eq!(t.lookup("node1"), Some(h));
        assert_eq!(t.lookup("node1:eth0"), Some(eth0));
        assert_eq!(t.lookup("node1:test3"), Some(ns));
        assert_eq!(t.path(veth), "node1:veth3");
        t.move_device(veth, ns, "veth3");
        assert_eq!(t.lookup("node1:test3:veth3"), Some(veth));
        assert_eq!(t.lookup("node1:veth3"), None);
        assert_eq!(t.container(veth), Some(ns));
        assert_eq!(t.host_of(veth), Some(h));
        assert_eq!(t.host_of(eth0), Some(h));
    }

    #[test]
    fn namespace_wins_a_name_clash() {
        let mut t = Topology::new();
        let h = t.add_host("n");
        let root = t.add_root_namespace(h);
        let d = t.add_device(root, DeviceKind::Dummy, "x");
        let ns = t.add_namespace(h, "x");
        assert_eq!(t.lookup("n:x"), Some(ns));
        assert_eq!(t.lookup("n::x"), Some(d));
        assert_eq!(t.path(d), "n::x");
    }

    #[test]
    fn relations_are_symmetric_and_removable() {
        let mut t = Topology::new();
        let h = t.add_host("n");
        let root = t.add_root_namespace(h);
        let a = t.add_device(root, DeviceKind::Veth, "a");
        let b = t.add_device(root, DeviceKind::Veth, "b");
        t.connect(a, b, EdgeKind::VethPeer);
        assert_eq!(t.related(a, EdgeKind::VethPeer), vec![b]);
        assert_eq!(t.related(b, EdgeKind::VethPeer), vec![a]);
        t.remove(b);
        assert!(t.related(a, EdgeKind::VethPeer).is_empty());
        assert_eq!(t.lookup("n:b"), None);
    }
}
