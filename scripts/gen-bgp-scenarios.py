#!/usr/bin/env python3
"""Writes the bundled BGP scenarios (scenarios/files/bgp-*.ron).

Each node is a Calico node as calico/node sets it up for IPIP (or native)
routing: tunl0 with the block's first address, one pod in a namespace
behind a cali veth with proxy ARP and the 169.254.1.1 gateway. BIRD's
configuration comes from the scenario's `bgp` section. Re-run after
changing this script; the files are committed.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "scenarios", "files")


def node_setup(i, block_base, ipip=True, gw="192.168.56.1"):
    b = f"10.244.{block_base}"
    lines = []
    if ipip:
        lines += ["modprobe ipip", f"ip addr add {b}.0/32 dev tunl0", "ip link set tunl0 up"]
    lines += [
        "ip link set lo up",
        "sysctl -w net.ipv4.ip_forward=1",
        f"ip route add default via {gw} dev eth0",
        "ip netns add pod",
        "ip link add cali0 type veth peer name eth0 netns pod",
        "ip link set cali0 up",
        "sysctl -w net.ipv4.conf.cali0.proxy_arp=1",
        f"ip route add {b}.1/32 dev cali0 scope link",
        "ip netns exec pod ip link set lo up",
        f"ip netns exec pod ip addr add {b}.1/32 dev eth0",
        "ip netns exec pod ip link set eth0 up",
        "ip netns exec pod ip route add 169.254.1.1 dev eth0 scope link",
        "ip netns exec pod ip route add default via 169.254.1.1 dev eth0",
    ]
    return "\n".join(lines)


def host(name, nics, setup):
    nic = ", ".join(f'Nic(name: "{n}", segment: "{s}", address: "{a}")' for n, s, a in nics)
    return f'''        Host(
            name: "{name}",
            nics: [{nic}],
            setup: r#"
{setup}
"#,
        ),'''


def write(fname, name, desc, comment, segments, hosts, bgp, timeline, expect, until):
    segs = ", ".join(f'Segment(name: "{s}", latency: "100us", bandwidth: "1Gbit")' for s in segments)
    tl = "\n".join(f'        Timed(at: "{a}", on: "{o}", run: "{r}"),' for a, o, r in timeline)
    ex = "\n".join(f"        {e}," for e in expect)
    text = f'''{comment}
Scenario(
    name: "{name}",
    description: "{desc}",
    seed: 1,
    segments: [{segs}],
    hosts: [
{chr(10).join(hosts)}
    ],
    bgp: {bgp},
    timeline: [
{tl}
    ],
    expect: [
{ex}
    ],
    limits: Limits(until: "{until}"),
)
'''
    with open(os.path.join(OUT, fname), "w") as f:
        f.write(text)


def calico_nodes(n, extra=lambda i: ""):
    return "\n".join(
        f'            Node(host: "node{i}", address: "192.168.56.{10 + i}", blocks: ["10.244.{i}.0/26"]{extra(i)}),'
        for i in range(1, n + 1)
    )


def mesh4():
    hosts = [host(f"node{i}", [("eth0", "lan", f"192.168.56.{10 + i}/24")], node_setup(i, i)) for i in range(1, 5)]
    bgp = f'''(
        as_number: 64512,
        node_to_node_mesh: true,
        ip_pools: [Pool(cidr: "10.244.0.0/16", ipip_mode: "Always")],
        nodes: [
{calico_nodes(4)}
        ],
    )'''
    timeline = [("10s", "node1:pod", "ping -c 1 10.244.4.1"), ("11s", "node1", "birdc show protocols"), ("11s", "node1", "birdc show route"),
                ("20s", "node1", "birdc restart Mesh_192_168_56_12")]
    expect = [
        'Output(on: "node1", contains: "Mesh_192_168_56_12: restarted")',
        'Reach(from: "node1:pod", to: "10.244.4.1")',
        'Table(on: "node1", table: "routes", contains: "10.244.2.0/26 via 192.168.56.12 dev tunl0 proto bird onlink")',
        'Table(on: "node1", table: "routes", contains: "blackhole 10.244.1.0/26 proto bird")',
        'Output(on: "node1", contains: "Mesh_192_168_56_14 BGP        ---        up")',
    ]
    write("bgp-mesh4.ron", "bgp-mesh4", "Calico node-to-node mesh of 4 nodes, IPIP Always: every node learns every block over BGP sessions on TCP port 179",
          "// Four Calico nodes in a full iBGP mesh (AS 64512), IPIP pool Always.\n// calico/node's BIRD on each node advertises the node's /26 block and\n// installs the others via tunl0 onlink; a pod pings a pod across the mesh.\n// At 20 s node1 resets its session with node2 (`birdc restart`): a Cease\n// NOTIFICATION, both sides drop the other's routes at once (no graceful\n// restart after a NOTIFICATION), and relearn them when the session is up\n// again after BIRD's error wait.",
          ["lan"], hosts, bgp, timeline, expect, "40s")


def rr(fname, name, clients, reflectors, timeline, expect, until, desc, comment):
    hosts = [host(f"node{i}", [("eth0", "lan", f"192.168.56.{10 + i}/24")], node_setup(i, i)) for i in range(1, clients + 1)]
    for r in range(1, reflectors + 1):
        hosts.append(host(f"rr{r}", [("eth0", "lan", f"192.168.56.{200 + r}/24")], "ip link set lo up\nip route add default via 192.168.56.1 dev eth0"))
    rrs = "\n".join(
        f'            Node(host: "rr{r}", address: "192.168.56.{200 + r}", route_reflector_cluster_id: "244.0.0.1", labels: {{"route-reflector": "true"}}),'
        for r in range(1, reflectors + 1))
    bgp = f'''(
        node_to_node_mesh: false,
        ip_pools: [Pool(cidr: "10.244.0.0/16", ipip_mode: "Always")],
        nodes: [
{calico_nodes(clients)}
{rrs}
        ],
        peers: [
            Peer(name: "peer-with-route-reflectors", node_selector: "all()", peer_selector: "route-reflector == 'true'"),
        ],
    )'''
    write(fname, name, desc, comment, ["lan"], hosts, bgp, timeline, expect, until)


def mesh_failure(fname, name, timeline, expect, until, desc, comment):
    hosts = [host(f"node{i}", [("eth0", "lan", f"192.168.56.{10 + i}/24")], node_setup(i, i)) for i in range(1, 5)]
    bgp = f'''(
        ip_pools: [Pool(cidr: "10.244.0.0/16", ipip_mode: "Always")],
        nodes: [
{calico_nodes(4)}
        ],
    )'''
    write(fname, name, desc, comment, ["lan"], hosts, bgp, timeline, expect, until)


def leaf_spine():
    segments = []
    hosts = []
    routers = []
    node_specs = []
    peers = []
    tor_ip = lambda r: f"10.0.{r}.1"
    for r in range(1, 5):
        seg = f"rack{r}"
        segments.append(seg)
        nics = [("eth0", seg, f"10.0.{r}.1/24")]
        for sp in range(1, 3):
            link = f"r{r}s{sp}"
            segments.append(link)
            nics.append((f"eth{sp}", link, f"10.1.{r}{sp}.1/30"))
        hosts.append(host(f"tor{r}", nics, "ip link set lo up\nsysctl -w net.ipv4.ip_forward=1"))
        nbs = [f'Neighbor(address: "10.0.{r}.{10 + k}", remote_as: {65000 + r}, rr_client: true, next_hop_self: true, local_address: "10.0.{r}.1")' for k in (1, 2)]
        nbs += [f'Neighbor(address: "10.1.{r}{sp}.2", remote_as: 65000, local_address: "10.1.{r}{sp}.1")' for sp in (1, 2)]
        routers.append(f'''            Router(host: "tor{r}", as_number: {65000 + r}, router_id: "10.0.{r}.1", neighbors: [
                {(","+chr(10)+"                ").join(nbs)},
            ]),''')
        for k in (1, 2):
            n = (r - 1) * 2 + k
            hosts.append(host(f"node{n}", [("eth0", seg, f"10.0.{r}.{10 + k}/24")], node_setup(n, n, ipip=False, gw=tor_ip(r))))
            node_specs.append(f'            Node(host: "node{n}", address: "10.0.{r}.{10 + k}", blocks: ["10.244.{n}.0/26"], as_number: {65000 + r}, labels: {{"rack": "r{r}"}}),')
        peers.append(f'            Peer(name: "rack{r}-tor", node_selector: "rack == \'r{r}\'", peer_ip: "10.0.{r}.1", as_number: {65000 + r}),')
    for sp in range(1, 3):
        nics = [(f"eth{r}", f"r{r}s{sp}", f"10.1.{r}{sp}.2/30") for r in range(1, 5)]
        hosts.append(host(f"spine{sp}", nics, "ip link set lo up\nsysctl -w net.ipv4.ip_forward=1"))
        nbs = [f'Neighbor(address: "10.1.{r}{sp}.1", remote_as: {65000 + r}, local_address: "10.1.{r}{sp}.2")' for r in range(1, 5)]
        routers.append(f'''            Router(host: "spine{sp}", as_number: 65000, router_id: "10.255.0.{sp}", neighbors: [
                {(","+chr(10)+"                ").join(nbs)},
            ]),''')
    bgp = f'''(
        node_to_node_mesh: false,
        ip_pools: [Pool(cidr: "10.244.0.0/16", ipip_mode: "Never")],
        nodes: [
{chr(10).join(node_specs)}
        ],
        peers: [
{chr(10).join(peers)}
        ],
        routers: [
{chr(10).join(routers)}
        ],
    )'''
    timeline = [("10s", "node1:pod", "ping -c 1 10.244.8.1"), ("11s", "tor1", "birdc show route for 10.244.8.1 all")]
    expect = [
        'Reach(from: "node1:pod", to: "10.244.8.1")',
        'Path(from: "node1:pod", to: "10.244.8.1", through: ["node1:eth0", "tor1:eth0", "tor4:eth0", "node8:eth0"])',
        'Output(on: "tor1", contains: "BGP.as_path: 65000 65004")',
    ]
    write("bgp-leaf-spine.ron", "bgp-leaf-spine",
          "Leaf-spine site: 2 spines (AS 65000), 4 top-of-rack routers (AS 65001-65004, route reflectors for their rack), 8 Calico nodes in native mode (calico-bgp)",
          "// A leaf-spine site in Calico's AS-per-rack model: each rack's two nodes\n// share the rack's AS with their top-of-rack router, which reflects their\n// routes (iBGP, next hop self); the ToRs peer over eBGP with both spines\n// (AS 65000) on point-to-point /30 links. Pool in native mode (ipipMode\n// Never): pod traffic is routed, not encapsulated. Between racks ECMP is\n// not modelled: BIRD installs the single best path (the lowest router id\n// breaks the tie between the spines).",
          segments, hosts, bgp, timeline, expect, "15s")


if __name__ == "__main__":
    mesh4()
    rr("bgp-rr1-clients6.ron", "bgp-rr1-clients6", 6, 1,
       [("10s", "node1:pod", "ping -c 1 10.244.6.1"), ("11s", "rr1", "birdc show protocols"), ("11s", "node1", "birdc show route all")],
       ['Reach(from: "node1:pod", to: "10.244.6.1")',
        'Table(on: "node1", table: "routes", contains: "10.244.6.0/26 via 192.168.56.16 dev tunl0 proto bird onlink")',
        'Output(on: "node1", contains: "BGP.originator_id: 192.168.56.16")',
        'Output(on: "node1", contains: "BGP.cluster_list: 244.0.0.1")'],
       "15s", "Six Calico nodes and one route reflector (mesh off, BGPPeer by selector): routes carry ORIGINATOR_ID and CLUSTER_LIST",
       "// Six Calico nodes peer only with a dedicated route reflector (rr1, cluster\n// id 244.0.0.1, label route-reflector=true), as Calico's route-reflector\n// guide sets it up: node-to-node mesh off and one BGPPeer selecting all()\n// nodes to peer with route-reflector == 'true'. The reflector keeps each\n// route's next hop, so pods still talk node to node through tunl0.")
    rr("bgp-rr2-clients8.ron", "bgp-rr2-clients8", 8, 2,
       [("30s", "rr1", "ip link set eth0 down"), ("320s", "node1:pod", "ping -c 1 10.244.8.1"), ("321s", "node1", "birdc show protocols")],
       ['Reach(from: "node1:pod", to: "10.244.8.1")',
        'Output(on: "node1", contains: "Node_192_168_56_201 BGP        ---        start")',
        'Table(on: "node1", table: "routes", contains: "10.244.8.0/26 via 192.168.56.18 dev tunl0 proto bird onlink")'],
       "330s", "Eight Calico nodes, two redundant route reflectors; rr1 is cut off at 30 s and its sessions expire with the hold timer, routes stay through rr2",
       "// Eight Calico nodes and two route reflectors with the same cluster id.\n// At 30 s rr1 loses its link: nothing is said on the wire, so its\n// sessions die only when the 240 s hold timer expires (BIRD's default, as\n// Calico leaves it). Every route is also known through rr2 with the same\n// next hop: the clients re-select, and no pod loses connectivity.")
    mesh_failure("bgp-node-failure.ron", "bgp-node-failure",
       [("20s", "node3", "ip link set eth0 down"), ("300s", "node1", "birdc show protocols"), ("400s", "node3", "ip link set eth0 up"), ("400s", "node3", "ip route add default via 192.168.56.1 dev eth0"), ("480s", "node1:pod", "ping -c 1 10.244.3.1")],
       ['Reach(from: "node1:pod", to: "10.244.3.1")',
        'Output(on: "node1", contains: "Mesh_192_168_56_13 BGP        ---        start")',
        'Table(on: "node2", table: "routes", contains: "10.244.3.0/26 via 192.168.56.13 dev tunl0 proto bird onlink")'],
       "500s", "4-node mesh: node3's link fails at 20 s (peers notice at hold-timer expiry and withdraw its block) and comes back at 400 s",
       "// A 4-node Calico mesh. At 20 s node3's NIC goes down: no FIN, no\n// NOTIFICATION reaches anyone, so the others keep node3's block until\n// their hold timers (240 s) expire, then withdraw it: a black hole for\n// node3's pods, as in a real cluster without BFD. At 400 s the link comes\n// back. Taking eth0 down flushed node3's default route (the kernel deletes\n// routes through a device that goes down), and without it proxy ARP does\n// not answer the pod's ARP for 169.254.1.1: the route is added again, as\n// the node's network configuration would. The sessions reconnect and the\n// block is relearned.")
    mesh_failure("bgp-graceful-restart.ron", "bgp-graceful-restart",
       [("20s", "node2", "pkill -9 bird"), ("21s", "node1", "birdc show route for 10.244.2.0/26"), ("30s", "node2", "bird -R"), ("40s", "node1:pod", "ping -c 1 10.244.2.1")],
       ['Reach(from: "node1:pod", to: "10.244.2.1")',
        'Output(on: "node1", contains: "(100s/0)")',
        'Table(on: "node1", table: "routes", contains: "10.244.2.0/26 via 192.168.56.12 dev tunl0 proto bird onlink")'],
       "60s", "4-node mesh with graceful restart: node2's BIRD is killed at 20 s and restarted with -R at 30 s; peers keep its routes (stale) meanwhile",
       "// Graceful restart (RFC 4724) as Calico runs BIRD: `graceful restart`\n// on, restart time 120 s. node2's BIRD is killed at 20 s (the kernel\n// closes its sockets: FIN, no NOTIFICATION), so its peers keep its routes\n// marked stale instead of withdrawing them; node2's kernel routes stay\n// (persist). At 30 s it starts again with -R, the sessions come back and\n// the stale routes are refreshed: no route is ever lost.")
    leaf_spine()
