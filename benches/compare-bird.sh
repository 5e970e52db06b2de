#!/usr/bin/env bash
# Cold-start convergence of one route reflector with N clients (one /26
# each), side by side: podpath's fabric (sim-models/examples/bgp_scale.rs)
# and real BIRD 2 in network namespaces, configured as Calico configures it
# (the same CalicoCluster::bird_config the agreement test uses).
#
#   sudo benches/compare-bird.sh [N ...]        # default: 100 300 500
#
# podpath: CPU seconds (utime+stime) per convergence and peak RSS of the
# converging process, median of 3 processes (each repeating the
# convergence 10 times up to 300 clients, 3 times above, for the clock's
# 10 ms ticks). BIRD: one namespace per node on one bridge, `bird -c
# cfg -s sock -P pid` in each; converged when every daemon's table has all
# N blocks (plus its interface route); then CPU seconds of all daemons
# together (utime+stime from /proc/PID/stat) and the sum of their peak RSS
# (VmHWM). Wall time is from starting the daemons to convergence (BIRD's
# connect delay of 2 s, jittered, is part of it). Needs root, bird2, iproute2.
# Nothing is configured in the root namespace; everything is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 300 500)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p sim-models --example bgp_scale
bin="$CARGO_TARGET_DIR/release/examples/bgp_scale"
P="ppc$$-"
work=$(mktemp -d /tmp/ppc$$.XXXX)
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for n in $(ip netns list | awk '{print $1}' | grep "^$P" || true); do ip netns del "$n"; done
    rm -rf "$work"
}
trap cleanup EXIT

field() { tr ' ' '\n' <<<"$1" | grep -A1 -x "$2" | tail -1; }

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%6s | %12s %12s %8s | %14s %14s | %10s %10s\n' N podpath_cpu_s bird_cpu_s ratio podpath_rss_MiB bird_rss_MiB bird_wall_s podpath_wall_s
for n in "${sizes[@]}"; do
    # podpath, three runs.
    cpus=(); rsss=(); walls=()
    for _ in 1 2 3; do
        # Small cases repeat in one process: /proc's CPU ticks are 10 ms.
        rep=$(( n <= 300 ? 10 : 3 ))
        out=$("$bin" converge rr "$n" 1 --repeat "$rep")
        cpus+=("$(field "$out" cpu_s)"); rsss+=("$(field "$out" peak_rss_mib)"); walls+=("$(field "$out" wall_s)")
    done
    pcpu=$(printf '%s\n' "${cpus[@]}" | median)
    prss=$(printf '%s\n' "${rsss[@]}" | median)
    pwall=$(printf '%s\n' "${walls[@]}" | median)

    # Real BIRD.
    dir="$work/rr$n"
    "$bin" bird-configs rr "$n" 1 "$dir"
    ip netns add "${P}br"
    ip -n "${P}br" link add br0 type bridge
    ip -n "${P}br" link set br0 up
    i=0
    while read -r name addr; do
        ns="${P}$i"
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip link add eth0 netns "$ns" type veth peer name "p$i" netns "${P}br"
        ip -n "$ns" addr add "$addr/16" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "${P}br" link set "p$i" master br0
        ip -n "${P}br" link set "p$i" up
        i=$((i + 1))
    done <"$dir/nodes"
    total=$i
    start=$(date +%s.%N)
    i=0
    pids=()
    while read -r name addr; do
        ip netns exec "${P}$i" bird -c "$dir/$name.cfg" -s "$dir/$i.sock" -P "$dir/$i.pid"
        i=$((i + 1))
    done <"$dir/nodes"
    for ((i = 0; i < total; i++)); do pids+=("$(cat "$dir/$i.pid")"); done
    # Converged: every daemon has N blocks and its interface route.
    want=$((n + 1))
    for ((i = 0; i < total; i++)); do
        until birdc -s "$dir/$i.sock" show route count 2>/dev/null | grep -q "for $want networks"; do
            sleep 0.2
            if [ "$(echo "$(date +%s.%N) - $start > 300" | bc)" = 1 ]; then
                echo "BIRD did not converge in 300 s (node $i)" >&2
                exit 1
            fi
        done
    done
    bwall=$(echo "$(date +%s.%N) - $start" | bc)
    ticks=0
    hwm=0
    for p in "${pids[@]}"; do
        read -r -a st < <(sed 's/.*) //' "/proc/$p/stat")
        ticks=$((ticks + st[11] + st[12]))
        h=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status")
        hwm=$((hwm + h))
    done
    hz=$(getconf CLK_TCK)
    bcpu=$(echo "scale=2; $ticks / $hz" | bc)
    brss=$(echo "scale=1; $hwm / 1024" | bc)
    ratio=$(echo "scale=1; $bcpu / $pcpu" | bc 2>/dev/null || echo inf)
    printf '%6s | %12s %12s %8s | %14s %14s | %10.1f %10s\n' "$n" "$pcpu" "$bcpu" "${ratio}x" "$prss" "$brss" "$bwall" "$pwall"
    cleanup
    pids=()
    work=$(mktemp -d /tmp/ppc$$.XXXX)
done
