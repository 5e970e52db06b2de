#!/usr/bin/env bash
# Captures the known-bytes fixtures of sim-core/tests/wire_fixtures.rs from
# the REAL Linux kernel, so that the wire codecs are checked against bytes
# they did not produce themselves.
#
# Needs root, iproute2, iputils-ping, tcpdump, ethtool and python3 (on Debian:
# apt-get install -y iproute2 iputils-ping tcpdump ethtool python3).
# Everything happens inside two freshly made network namespaces (ppfix-a,
# ppfix-b) joined by a veth pair; nothing is added to the root namespace, and
# both namespaces are deleted on exit. Traffic goes only between those two
# namespaces.
#
#   usage: scripts/capture-fixtures.sh [OUTDIR]   (default sim-core/tests/fixtures)
#
# Produces, in OUTDIR:
#   arp-icmp.pcap  ping -c 1 -s 56 over the veth with empty neighbour tables:
#                  ARP request, ARP reply, ICMP echo request, ICMP echo reply
#   vxlan.pcap     the same ping over vxlan devices (VNI 42, UDP 4789) whose
#                  underlay is the veth: the inner ARP request/reply and echo
#                  request/reply, each in Ethernet/IPv4/UDP/VXLAN; this
#                  kernel's default is `udpcsum`, so the outer UDP checksum
#                  is computed
#   vxlan-noudpcsum.pcap  the same with `noudpcsum`: outer UDP checksum zero
#   ipip.pcap      the echo request of arp-icmp.pcap (IPv4 header onwards)
#                  sent through a raw IPPROTO_IPIP socket, so the kernel adds
#                  the outer IPv4 header (protocol 4); then the ICMP protocol
#                  unreachable that the peer (no ipip module) answers with
#   tcp.pcap       a TCP connection (SYN with MSS/SACK/timestamps/wscale,
#                  SYN-ACK, data, FIN) with tx checksum offload turned off
#   *.txt          `tcpdump -nn -e -vv -xx -r` of each pcap, for reading
#   *.summary      `tcpdump -nn -S -t -r` of each pcap (one line per header
#                  stack; VXLAN's inner frame on a line of its own)
set -euo pipefail

OUT=${1:-"$(cd "$(dirname "$0")/.." && pwd)/sim-core/tests/fixtures"}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

A=ppfix-a
B=ppfix-b
MAC_VA=02:00:00:00:0a:01
MAC_VB=02:00:00:00:0b:01
MAC_VXA=02:00:00:00:0a:42
MAC_VXB=02:00:00:00:0b:42
UA=192.168.56.1 # underlay, ppfix-a
UB=192.168.56.2 # underlay, ppfix-b
OA=172.16.42.1  # overlay (vxlan), ppfix-a
OB=172.16.42.2  # overlay (vxlan), ppfix-b

for tool in ip ss ping tcpdump ethtool python3; do
	command -v "$tool" >/dev/null || {
		echo "capture-fixtures: $tool is needed" >&2
		exit 1
	}
done

# Fail early rather than reuse (and then delete) namespaces somebody else made.
for ns in "$A" "$B"; do
	if ip netns list | grep -qw "$ns"; then
		echo "capture-fixtures: namespace $ns already exists" >&2
		exit 1
	fi
done

TCPDUMP_PID=
TMP=$(mktemp -d)
cleanup() {
	if [ -n "$TCPDUMP_PID" ]; then kill -TERM "$TCPDUMP_PID" 2>/dev/null || true; fi
	ip netns del "$A" 2>/dev/null || true
	ip netns del "$B" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

inA() { ip netns exec "$A" "$@"; }
inB() { ip netns exec "$B" "$@"; }

# start_capture NS DEV FILE FILTER...: tcpdump in the background, ready on return
start_capture() {
	local ns=$1 dev=$2 file=$3
	shift 3
	ip netns exec "$ns" tcpdump -p --immediate-mode -nn -i "$dev" -w "$file" "$@" \
		2>"$TMP/tcpdump.err" &
	TCPDUMP_PID=$!
	for _ in $(seq 100); do
		grep -q 'listening on' "$TMP/tcpdump.err" && return 0
		sleep 0.05
	done
	echo "capture-fixtures: tcpdump did not start" >&2
	cat "$TMP/tcpdump.err" >&2
	exit 1
}
stop_capture() {
	sleep 0.3
	kill -TERM "$TCPDUMP_PID"
	wait "$TCPDUMP_PID" || true
	TCPDUMP_PID=
	cat "$TMP/tcpdump.err" >&2
}
# NAME.txt: tcpdump's verbose decode and hex, for people; NAME.summary:
# tcpdump's one-line decode (-nn -S -t), which wire_fixtures.rs compares
# with Packet::summary.
describe() {
	tcpdump -nn -e -vv -xx -r "$1" >"${1%.pcap}.txt" 2>/dev/null
	tcpdump -nn -S -t -r "$1" >"${1%.pcap}.summary" 2>/dev/null
}

ip netns add "$A"
ip netns add "$B"
for ns in "$A" "$B"; do
	# No IPv6: no router solicitations or MLD reports in the captures.
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
	ip -n "$ns" link set lo up
done

# The veth pair is created directly inside the namespaces.
ip -n "$A" link add va address "$MAC_VA" type veth peer name vb netns "$B" address "$MAC_VB"
ip -n "$A" addr add "$UA/24" dev va
ip -n "$B" addr add "$UB/24" dev vb
# Locally generated TCP/UDP is handed to veth with only the pseudo-header sum
# (CHECKSUM_PARTIAL) while tx checksum offload is on: turn it off so the
# captures hold the checksums a real NIC would have put on the wire.
inA ethtool -K va tx off >/dev/null
inB ethtool -K vb tx off >/dev/null
ip -n "$A" link set va up
ip -n "$B" link set vb up

# ---- 1. ARP and ICMP echo over the veth ----------------------------------
ip -n "$A" neigh flush all
ip -n "$B" neigh flush all
start_capture "$B" vb "$OUT/arp-icmp.pcap" arp or icmp
inA ping -n -c 1 -s 56 -W 2 "$UB" >/dev/null
stop_capture
describe "$OUT/arp-icmp.pcap"

# ---- 2. VXLAN over the veth ----------------------------------------------
ip -n "$A" link add vx0 address "$MAC_VXA" type vxlan id 42 dstport 4789 remote "$UB" local "$UA" dev va
ip -n "$B" link add vx0 address "$MAC_VXB" type vxlan id 42 dstport 4789 remote "$UA" local "$UB" dev vb
ip -n "$A" addr add "$OA/24" dev vx0
ip -n "$B" addr add "$OB/24" dev vx0
ip -n "$A" link set vx0 up
ip -n "$B" link set vx0 up
start_capture "$B" vb "$OUT/vxlan.pcap" udp port 4789
inA ping -n -c 1 -s 56 -W 2 "$OB" >/dev/null
stop_capture
describe "$OUT/vxlan.pcap"

# ---- 2b. VXLAN without the outer UDP checksum -----------------------------
# This kernel's default is `udpcsum` (see `ip -d link show vx0`); with
# `noudpcsum` the outer UDP checksum is left zero, as RFC 7348 allows.
for ns in "$A" "$B"; do ip -n "$ns" link del vx0; done
ip -n "$A" link add vx0 address "$MAC_VXA" type vxlan id 42 dstport 4789 remote "$UB" local "$UA" dev va noudpcsum
ip -n "$B" link add vx0 address "$MAC_VXB" type vxlan id 42 dstport 4789 remote "$UA" local "$UB" dev vb noudpcsum
ip -n "$A" addr add "$OA/24" dev vx0
ip -n "$B" addr add "$OB/24" dev vx0
ip -n "$A" link set vx0 up
ip -n "$B" link set vx0 up
start_capture "$B" vb "$OUT/vxlan-noudpcsum.pcap" udp port 4789
inA ping -n -c 1 -s 56 -W 2 "$OB" >/dev/null
stop_capture
describe "$OUT/vxlan-noudpcsum.pcap"

# ---- 3. IP-in-IP through a raw socket ------------------------------------
# This kernel has no ipip module, so the tunnel is a raw IPPROTO_IPIP socket:
# its payload is the real echo request captured above (IPv4 header onwards),
# and the kernel builds the outer header (protocol 4, length, checksum, TTL).
start_capture "$B" vb "$OUT/ipip.pcap" ip proto 4 or icmp
inA python3 - "$OUT/arp-icmp.pcap" "$UB" <<'EOF'
import socket, struct, sys

def frames(path):
    data = open(path, "rb").read()
    assert struct.unpack("<I", data[:4])[0] == 0xA1B2C3D4, "expected a little-endian pcap"
    off = 24
    while off < len(data):
        _, _, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        yield data[off + 16:off + 16 + incl]
        off += 16 + incl

# the first IPv4 (ethertype 0x0800) ICMP (protocol 1) echo request (type 8)
inner = next(f[14:] for f in frames(sys.argv[1])
             if f[12:14] == b"\x08\x00" and f[23] == 1 and f[34] == 8)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IPIP)
s.sendto(inner, (sys.argv[2], 0))
EOF
stop_capture
describe "$OUT/ipip.pcap"

# ---- 4. TCP with options -------------------------------------------------
start_capture "$B" vb "$OUT/tcp.pcap" tcp port 8080
inB python3 - "$UB" >"$TMP/server.log" 2>&1 <<'EOF' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 8080))
s.listen(1)
s.settimeout(10)
c, _ = s.accept()
while c.recv(4096):
    pass
c.close()
EOF
SERVER_PID=$!
for _ in $(seq 100); do
	inB ss -Hltn "sport = :8080" | grep -q 8080 && break
	sleep 0.05
done
inA python3 - "$UB" <<'EOF'
import socket, sys
c = socket.create_connection((sys.argv[1], 8080), timeout=5)
c.sendall(b"hello podpath\n")
c.shutdown(socket.SHUT_WR)
while c.recv(4096):
    pass
c.close()
EOF
wait "$SERVER_PID"
stop_capture
describe "$OUT/tcp.pcap"

echo "capture-fixtures: wrote $(ls "$OUT"/*.pcap | tr '\n' ' ')" >&2
