#!/usr/bin/env bash
# Forwarding throughput, podpath against ns-3, in one run on one machine.
#
# 1. builds benches/ns3/chain.cc against Debian's ns-3 (apt-get install -y
#    libns3-dev) and runs it NS3_RUNS times (default 3): 4 nodes, 3
#    point-to-point links, 1,000,000 UDP datagrams of 1000 IP bytes;
# 2. runs `cargo bench -p sim-models --bench forwarding` (the same chain as
#    4 network namespaces joined by veth pairs, built with ip/sysctl commands);
# 3. prints both medians in packets per wall-clock second and the ratio,
#    and the same in user CPU time (less sensitive to a busy machine).
#
# Usage: benches/compare-forwarding.sh      (from anywhere; about 2 minutes)
# Env:   NS3_RUNS (3), NS3_BIN (/tmp/ns3-chain), CARGO_TARGET_DIR (target).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
ns3_runs=${NS3_RUNS:-3}
ns3_bin=${NS3_BIN:-/tmp/ns3-chain}
target=${CARGO_TARGET_DIR:-$root/target}

echo "machine: nproc=$(nproc), $(lscpu | grep 'Model name' | sed 's/  */ /g')"

if [ ! -e /usr/include/ns3/core-module.h ]; then
    echo "ns-3 headers not found: apt-get install -y libns3-dev" >&2
    exit 2
fi
# Debian's ns3-*.pc files emit a broken `-I/usr\;` flag; the headers are in
# /usr/include/ns3 (found by default) and the libraries are named directly.
g++ -O2 -std=c++17 benches/ns3/chain.cc \
    -lns3-core -lns3-network -lns3-internet -lns3-point-to-point -lns3-applications \
    -o "$ns3_bin"

# Each ns-3 run under /usr/bin/time, for its CPU time as well as the wall
# clock it prints (the machine is shared: wall-clock figures include time
# spent waiting for a core, CPU time does not).
ns3_figures=()
ns3_cpu=()
for i in $(seq "$ns3_runs"); do
    out=$(/usr/bin/time -f "cpu %U" "$ns3_bin" 2>&1)
    echo "$out" | sed "s/^/[ns-3 run $i] /"
    ns3_figures+=("$(echo "$out" | sed -n 's/.*: \([0-9][0-9]*\) packets\/s$/\1/p')")
    ns3_cpu+=("$(echo "$out" | sed -n 's/^cpu //p')")
done
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
ns3_median=$(printf '%s\n' "${ns3_figures[@]}" | median)
ns3_cpu_median=$(printf '%s\n' "${ns3_cpu[@]}" | median)

cargo bench -p sim-models --bench forwarding

# The same million datagrams once more under /usr/bin/time: the bench binary
# with a filter that matches no benchmark runs only its untimed check (1000
# datagrams) and its million-datagram pre-run, then exits.
bin=$(cargo bench -p sim-models --bench forwarding --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p')
pod_cpu=$(/usr/bin/time -f "cpu %U" "$bin" --bench no-such-benchmark 2>&1 | sed -n 's/^cpu //p')

est="$target/criterion/forwarding/chain4_udp1000/new/estimates.json"
# One iteration is 1,000,000 datagrams; the median is in ns per iteration.
median_ns=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["median"]["point_estimate"])' "$est")
podpath=$(awk -v ns="$median_ns" 'BEGIN {printf "%.0f", 1e6 / (ns / 1e9)}')
ns3_cpu_pps=$(awk -v s="$ns3_cpu_median" 'BEGIN {printf "%.0f", 1e6 / s}')
pod_cpu_pps=$(awk -v s="$pod_cpu" 'BEGIN {printf "%.0f", 1e6 / s}')

echo
echo "forwarding, 4-node chain, 1,000,000 UDP datagrams of 1000 bytes:"
echo "  wall clock (medians):"
echo "    ns-3 3.37 (benches/ns3/chain.cc, $ns3_runs runs): $ns3_median packets/s"
echo "    podpath (forwarding/chain4_udp1000, 10 samples): $podpath packets/s"
awk -v a="$podpath" -v b="$ns3_median" 'BEGIN {printf "    podpath / ns-3 = %.1f\n", a / b}'
echo "  user CPU time (whole process, setup included):"
echo "    ns-3 (median of $ns3_runs): ${ns3_cpu_median} s = $ns3_cpu_pps packets/s"
echo "    podpath (one run): ${pod_cpu} s = $pod_cpu_pps packets/s"
awk -v a="$pod_cpu_pps" -v b="$ns3_cpu_pps" 'BEGIN {printf "    podpath / ns-3 = %.1f\n", a / b}'
echo "  load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
