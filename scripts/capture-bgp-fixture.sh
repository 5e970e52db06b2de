#!/usr/bin/env bash
# Captures sim-core/tests/fixtures/bgp/bird-sessions.pcap: real BGP messages
# exchanged by BIRD 2 daemons, so that sim-core's BGP codec
# (sim-core/src/wire/bgp.rs) is checked against bytes it did not produce.
#
# Needs root, iproute2, tcpdump, ethtool and BIRD 2 (on Debian:
# apt-get install -y iproute2 tcpdump ethtool bird2; the packaged daemon need
# not run: this script starts its own two, with their own control sockets).
# Everything happens inside three freshly made network namespaces,
# ppbgp-<pid>-a, -b and -c, joined by veth pairs; nothing is added
# to the root namespace, and the daemons and the namespaces are removed on
# exit, even on failure.
#
#   usage: scripts/capture-bgp-fixture.sh [OUTDIR]   (default sim-core/tests/fixtures/bgp)
#
# Three BGP sessions run between A and B over their veth pair, each between
# its own pair of addresses, and a third daemon C (behind a second veth pair
# to A) lets A reflect routes to B, so that one capture holds the variety the
# codec must decode:
#
#   s_ebgp  192.168.57.1 AS 64501 <-> 192.168.57.2 AS 64502: eBGP between
#           2-octet ASes, graceful restart on (as Calico sets it); B's export
#           filter sets MED, communities, large and extended communities on
#           one prefix
#   s_as4   192.168.59.1 AS 4200000001 <-> 192.168.59.2 AS 4200000002: eBGP
#           between 4-octet ASes (OPEN carries AS_TRANS 23456, AS_PATH
#           4-octet)
#   rr_b    192.168.58.1 <-> 192.168.58.2, AS 64512: iBGP, A is a route
#           reflector (cluster id 10.0.0.100) and B its client
#   rr_c    192.168.60.1 (A) <-> 192.168.60.3 (C), AS 64512: C is A's other
#           client, so A reflects C's routes to B with ORIGINATOR_ID and
#           CLUSTER_LIST
#
# Export filters only let a daemon's own static routes out (and, on A, the
# routes its clients gave it), so nothing loops between the sessions.
#
# Then, in order: A asks B for a route refresh on `s_ebgp` (ROUTE-REFRESH;
# enhanced route refresh adds the BoRR/EoRR demarcations); B disables one of
# its static protocols (UPDATEs with withdrawn routes); A disables `s_ebgp`
# with a shutdown message (NOTIFICATION Cease/Administrative Shutdown with
# RFC 8203 data); and the daemons are stopped.
#
# Produces, in OUTDIR:
#   bird-sessions.pcap   classic pcap, Ethernet, `tcp port 179` on B's veth
#   bird-sessions.txt    `tcpdump -nn -vvv -r` of it, for reading
#   bird-a.conf, bird-b.conf, bird-c.conf  the configurations used
set -euo pipefail

OUT=${1:-"$(cd "$(dirname "$0")/.." && pwd)/sim-core/tests/fixtures/bgp"}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

A=ppbgp-$$-a
B=ppbgp-$$-b
C=ppbgp-$$-c

for tool in ip tcpdump ethtool bird birdc; do
	command -v "$tool" >/dev/null || {
		echo "capture-bgp-fixture: $tool is needed (apt-get install -y bird2 tcpdump ethtool)" >&2
		exit 1
	}
done

for ns in "$A" "$B" "$C"; do
	if ip netns list | grep -qw "$ns"; then
		echo "capture-bgp-fixture: namespace $ns already exists" >&2
		exit 1
	fi
done

TMP=$(mktemp -d)
TCPDUMP_PID=
cleanup() {
	set +e
	for side in a b c; do
		if [ -f "$TMP/bird-$side.pid" ]; then
			kill -TERM "$(cat "$TMP/bird-$side.pid")" 2>/dev/null
		fi
	done
	if [ -n "$TCPDUMP_PID" ]; then kill -TERM "$TCPDUMP_PID" 2>/dev/null; fi
	sleep 0.3
	ip netns del "$A" 2>/dev/null
	ip netns del "$B" 2>/dev/null
	ip netns del "$C" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

ip netns add "$A"
ip netns add "$B"
ip netns add "$C"
for ns in "$A" "$B" "$C"; do
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
	ip -n "$ns" link set lo up
done
ip -n "$A" link add va address 02:00:00:00:0a:01 type veth peer name vb netns "$B" address 02:00:00:00:0b:01
for n in 57 58 59; do
	ip -n "$A" addr add "192.168.$n.1/24" dev va
	ip -n "$B" addr add "192.168.$n.2/24" dev vb
done
ip netns exec "$A" ethtool -K va tx off >/dev/null
ip netns exec "$B" ethtool -K vb tx off >/dev/null
ip -n "$A" link set va up
ip -n "$B" link set vb up
ip -n "$A" link add va2 address 02:00:00:00:0a:02 type veth peer name vc netns "$C" address 02:00:00:00:0c:01
ip -n "$A" addr add 192.168.60.1/24 dev va2
ip -n "$C" addr add 192.168.60.3/24 dev vc
ip -n "$A" link set va2 up
ip -n "$C" link set vc up

cat >"$OUT/bird-a.conf" <<'EOF'
# podpath BGP fixture, daemon A (scripts/capture-bgp-fixture.sh)
router id 10.0.0.1;
protocol device { }
protocol static st_a {
  ipv4;
  route 10.244.1.0/26 blackhole;
}
protocol bgp s_ebgp {
  local 192.168.57.1 as 64501;
  neighbor 192.168.57.2 as 64502;
  graceful restart on;
  ipv4 { import all; export where proto = "st_a"; };
}
protocol bgp s_as4 {
  local 192.168.59.1 as 4200000001;
  neighbor 192.168.59.2 as 4200000002;
  ipv4 { import all; export where proto = "st_a"; };
}
protocol bgp rr_b {
  local 192.168.58.1 as 64512;
  neighbor 192.168.58.2 as 64512;
  rr client;
  rr cluster id 10.0.0.100;
  ipv4 { import all; export where proto = "st_a" || proto = "rr_c"; };
}
protocol bgp rr_c {
  local 192.168.60.1 as 64512;
  neighbor 192.168.60.3 as 64512;
  rr client;
  rr cluster id 10.0.0.100;
  ipv4 { import all; export where proto = "st_a" || proto = "rr_b"; };
}
EOF

cat >"$OUT/bird-b.conf" <<'EOF'
# podpath BGP fixture, daemon B (scripts/capture-bgp-fixture.sh)
router id 10.0.0.2;
protocol device { }
protocol static st_b {
  ipv4;
  route 10.244.2.0/26 blackhole;
  route 10.244.2.64/26 blackhole;
}
protocol static st_extra {
  ipv4;
  route 172.16.7.0/24 blackhole;
  route 172.16.8.0/23 blackhole;
}
filter decorate {
  if proto != "st_b" && proto != "st_extra" then reject;
  if net = 10.244.2.64/26 then {
    bgp_med = 50;
    bgp_community.add((64502, 100));
    bgp_community.add((65535, 65281));
    bgp_large_community.add((64502, 1, 2));
    bgp_ext_community.add((rt, 64502, 7));
  }
  accept;
}
protocol bgp s_ebgp {
  local 192.168.57.2 as 64502;
  neighbor 192.168.57.1 as 64501;
  graceful restart on;
  ipv4 { import all; export filter decorate; };
}
protocol bgp s_as4 {
  local 192.168.59.2 as 4200000002;
  neighbor 192.168.59.1 as 4200000001;
  ipv4 { import all; export where proto = "st_b"; };
}
protocol bgp rr_a {
  local 192.168.58.2 as 64512;
  neighbor 192.168.58.1 as 64512;
  ipv4 { import all; export filter decorate; };
}
EOF

cat >"$OUT/bird-c.conf" <<'EOF'
# podpath BGP fixture, daemon C (scripts/capture-bgp-fixture.sh)
router id 10.0.0.3;
protocol device { }
protocol static st_c {
  ipv4;
  route 10.244.3.0/26 blackhole;
}
protocol bgp rr_a {
  local 192.168.60.3 as 64512;
  neighbor 192.168.60.1 as 64512;
  ipv4 { import all; export where proto = "st_c"; };
}
EOF

birdc_a() { birdc -s "$TMP/bird-a.ctl" "$@"; }
birdc_b() { birdc -s "$TMP/bird-b.ctl" "$@"; }

# established SOCK PROTO: wait until BIRD reports the session Established
established() {
	local sock=$1 proto=$2
	for _ in $(seq 200); do
		birdc -s "$sock" show protocols "$proto" | grep -q Established && return 0
		sleep 0.1
	done
	echo "capture-bgp-fixture: $proto did not come up" >&2
	birdc -s "$sock" show protocols all "$proto" >&2
	exit 1
}

ip netns exec "$B" tcpdump -p --immediate-mode -nn -i vb -w "$OUT/bird-sessions.pcap" tcp port 179 \
	2>"$TMP/tcpdump.err" &
TCPDUMP_PID=$!
for _ in $(seq 100); do
	grep -q 'listening on' "$TMP/tcpdump.err" && break
	sleep 0.05
done
grep -q 'listening on' "$TMP/tcpdump.err" || {
	echo "capture-bgp-fixture: tcpdump did not start" >&2
	exit 1
}

ip netns exec "$B" bird -c "$OUT/bird-b.conf" -s "$TMP/bird-b.ctl" -P "$TMP/bird-b.pid"
ip netns exec "$C" bird -c "$OUT/bird-c.conf" -s "$TMP/bird-c.ctl" -P "$TMP/bird-c.pid"
ip netns exec "$A" bird -c "$OUT/bird-a.conf" -s "$TMP/bird-a.ctl" -P "$TMP/bird-a.pid"
for p in s_ebgp s_as4 rr_b rr_c; do
	established "$TMP/bird-a.ctl" "$p"
done
for p in s_ebgp s_as4 rr_a; do
	established "$TMP/bird-b.ctl" "$p"
done
established "$TMP/bird-c.ctl" rr_a
sleep 2 # initial updates and End-of-RIB markers

birdc_a reload in s_ebgp >/dev/null # ROUTE-REFRESH
sleep 1
birdc_b disable st_extra >/dev/null # withdrawals
sleep 1
birdc_a disable s_ebgp '"podpath fixture"' >/dev/null # NOTIFICATION with a shutdown message
sleep 1

for side in a b c; do
	kill -TERM "$(cat "$TMP/bird-$side.pid")"
done
sleep 1
rm -f "$TMP/bird-a.pid" "$TMP/bird-b.pid" "$TMP/bird-c.pid"
kill -TERM "$TCPDUMP_PID"
wait "$TCPDUMP_PID" || true
TCPDUMP_PID=
cat "$TMP/tcpdump.err" >&2

tcpdump -nn -vvv -r "$OUT/bird-sessions.pcap" >"$OUT/bird-sessions.txt" 2>/dev/null
echo "capture-bgp-fixture: wrote $OUT/bird-sessions.pcap ($(tcpdump -r "$OUT/bird-sessions.pcap" 2>/dev/null | wc -l) frames)" >&2
