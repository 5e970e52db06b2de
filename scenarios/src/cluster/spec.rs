//! The `cluster:` section of a scenario file (RON), as serde types.
//! Documented in `docs/scenario-format.md`; every struct rejects unknown
//! fields. Values are checked, with positions, by [`super::resolve`].

use serde::Deserialize;

/// A Kubernetes cluster in Kubernetes' terms.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Cluster")]
pub struct ClusterSpec {
    /// The CNI mode: `flannel-vxlan`, `flannel-host-gw`, `calico-vxlan`, `calico-ipip`, `calico-bgp`, `kubenet`.
    pub cni: String,
    /// The cluster CIDR (kube-controller-manager `--cluster-cidr`), default "10.244.0.0/16".
    #[serde(default)]
    pub cluster_cidr: Option<String>,
    /// The node CIDR mask (`--node-cidr-mask-size`), default 24.
    #[serde(default)]
    pub node_mask: Option<u8>,
    /// The Service CIDR (`--service-cluster-ip-range`), default "10.96.0.0/12".
    #[serde(default)]
    pub service_cidr: Option<String>,
    pub nodes: NodesSpec,
    /// Default: one pod per node.
    #[serde(default)]
    pub pods: Option<PodsSpec>,
    /// Default: `L2(subnet: "10.0.0.0/16")`.
    #[serde(default)]
    pub underlay: Option<UnderlaySpec>,
    #[serde(default)]
    pub services: Vec<ServiceSpec>,
    /// Calico's BGP settings, for `calico-ipip` and `calico-bgp`.
    #[serde(default)]
    pub calico: Option<CalicoSpec>,
}

/// `Calico(...)`: the BGPConfiguration, route reflectors and IP pool of a
/// `calico-ipip` or `calico-bgp` cluster.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename = "Calico")]
pub struct CalicoSpec {
    /// BGPConfiguration `spec.asNumber` (default 64512).
    #[serde(default)]
    pub as_number: Option<u32>,
    /// The first N nodes are route reflectors (cluster id 244.0.0.1, label
    /// `route-reflector=true`), every node peers with them, and the
    /// node-to-node mesh is off, as Calico's route-reflector guide sets it up.
    #[serde(default)]
    pub route_reflectors: u32,
    /// The IP pool's `ipipMode` for `calico-ipip`: "Always" (default) or "CrossSubnet".
    #[serde(default)]
    pub ipip_mode: Option<String>,
    /// With `Racks`: Calico's AS-per-rack model. Each rack's nodes share
    /// its AS (65001, 65002, ...) with its top-of-rack router, which
    /// reflects their routes (next hop self); the top-of-rack routers peer
    /// over eBGP across the spine. No node-to-node mesh.
    #[serde(default)]
    pub tor_peering: bool,
    /// The generated bgp section's `engine`: "bird" (default) or "fabric".
    #[serde(default)]
    pub bgp_engine: Option<String>,
}

/// `Nodes(count: 3)` (named by `name`, `{}` the 1-based index, default
/// "node{}") or `Nodes(names: ["cp", "w1"])`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Nodes")]
pub struct NodesSpec {
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub names: Option<Vec<String>>,
}

/// `Pods(per_node: 2)` (named by `name`, `{node}` the node and `{}` the
/// 1-based index on it, default "{node}-pod{}", in `namespace`, default
/// "default"), or `Pods(list: [Pod(...), ...])`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Pods")]
pub struct PodsSpec {
    #[serde(default)]
    pub per_node: Option<u32>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub list: Option<Vec<PodSpec>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Pod")]
pub struct PodSpec {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub node: String,
}

/// The network the nodes sit on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum UnderlaySpec {
    /// One L2 subnet; nodes from its 11th address, the gateway at its first.
    L2 {
        subnet: String,
        #[serde(default)]
        link: Option<LinkSpec>,
    },
    /// `racks` L2 subnets of `/rack_mask` carved from `subnet` (the first
    /// block is the spine), each behind a top-of-rack router.
    Racks {
        racks: u32,
        subnet: String,
        #[serde(default)]
        rack_mask: Option<u8>,
        #[serde(default)]
        link: Option<LinkSpec>,
    },
    /// A cloud VPC: one subnet and the VPC router (a host, `vpc-router`, at
    /// its first address) whose route table the route controller fills with
    /// one route per node podCIDR, up to `route_limit` (default 50, AWS's
    /// default routes per route table).
    Vpc {
        cidr: String,
        #[serde(default)]
        route_limit: Option<u32>,
        #[serde(default)]
        link: Option<LinkSpec>,
    },
}

/// The underlay's links (as a `Segment`'s fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Link")]
pub struct LinkSpec {
    #[serde(default)]
    pub latency: Option<String>,
    #[serde(default)]
    pub bandwidth: Option<String>,
    #[serde(default)]
    pub mtu: Option<u32>,
}

/// A Service of type ClusterIP or NodePort with its endpoints (pod names).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Service")]
pub struct ServiceSpec {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    /// `ClusterIP` (default) or `NodePort`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Default: allocated from the Service CIDR in order from its 11th address.
    #[serde(default)]
    pub cluster_ip: Option<String>,
    pub ports: Vec<ServicePortSpec>,
    /// Pods (`name` or `namespace/name`) behind the Service.
    #[serde(default)]
    pub endpoints: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Port")]
pub struct ServicePortSpec {
    #[serde(default)]
    pub name: Option<String>,
    pub port: u16,
    /// Default: `port`.
    #[serde(default)]
    pub target_port: Option<u16>,
    /// `TCP` (default) or `UDP`.
    #[serde(default)]
    pub protocol: Option<String>,
    /// NodePort services: default allocated in order from 30000.
    #[serde(default)]
    pub node_port: Option<u16>,
}
