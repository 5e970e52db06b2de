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


def node_setup(i, block_base, ipip=True):
    b = f"10.244.{block_base}"
    lines = []
    if ipip:
        lines += ["modprobe ipip", f"ip addr add {b}.0/32 dev tunl0", "ip link set tunl0 up"]
    lines += [
        "sysctl -w net.ipv4.ip_forward=1",
        "ip route add default via 192.168.56.1 dev eth0",
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
    timeline = [("10s", "node1:pod", "ping -c 1 10.244.4.1"), ("11s", "node1", "birdc show protocols"), ("11s", "node1", "birdc show route")]
    expect = [
        'Reach(from: "node1:pod", to: "10.244.4.1")',
        'Table(on: "node1", table: "routes", contains: "10.244.2.0/26 via 192.168.56.12 dev tunl0 proto bird onlink")',
        'Table(on: "node1", table: "routes", contains: "blackhole 10.244.1.0/26 proto bird")',
        'Output(on: "node1", contains: "Mesh_192_168_56_14 BGP        ---        up")',
    ]
    write("bgp-mesh4.ron", "bgp-mesh4", "Calico node-to-node mesh of 4 nodes, IPIP Always: every node learns every block over BGP sessions on TCP port 179",
          "// Four Calico nodes in a full iBGP mesh (AS 64512), IPIP pool Always.\n// calico/node's BIRD on each node advertises the node's /26 block and\n// installs the others via tunl0 onlink; a pod pings a pod across the mesh.",
          ["lan"], hosts, bgp, timeline, expect, "15s")


if __name__ == "__main__":
    mesh4()
