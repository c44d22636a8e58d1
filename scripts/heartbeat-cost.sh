#!/usr/bin/env bash
# One A/B measurement of what a heartbeat costs the nodes, for comparing two
# builds or settings run after one another (alternate them: the machine's
# noise is tens of percent between runs). Starts a local three-node cluster
# (scripts/cluster-up.sh, data in a temp dir), then prints, each on a line
# headed LABEL: the idle cluster's CPU over 10 s, with CLOSED set a closed
# loop of that many clients (ok/s, latency, CPU), the CPU per acknowledged
# heartbeat at each of RATES (open loop, 256 connections per node, the
# agents' CPU from /proc), and one idle client's p50 at IDLE_RATE. Stops the
# cluster.
#
#   scripts/heartbeat-cost.sh LABEL
#
# Environment: RATES ["200 1000"], SERVICES [10000], DURATION [10s],
# IDLE_RATE [50, 0 for none], CLOSED [0 for none; make bench's is 64],
# EXTRA (YAML lines added to the nodes' config, e.g. 'raft_log_store:
# boltdb'), GOMAXPROCS and WATCHDOG_PORT_BASE as for any node.
# docs/heartbeat-cost.md quotes runs of it.
set -euo pipefail
LABEL=${1:?usage: scripts/heartbeat-cost.sh LABEL}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/watchdog-cost.XXXXXX")
export WATCHDOG_DATA=$WORK/cluster WATCHDOG_CONFIG=$WORK/watchdog.yaml
# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
RATES=${RATES:-200 1000} SERVICES=${SERVICES:-10000} DURATION=${DURATION:-10s} IDLE_RATE=${IDLE_RATE:-50} CLOSED=${CLOSED:-0}
printf 'defaults:\n  timeout: 1h\n  actions: [log]\n%s\n' "${EXTRA:-}" >"$WATCHDOG_CONFIG"
trap '"$ROOT/scripts/cluster-down.sh" >/dev/null 2>&1 || true; rm -rf -- "$WORK"' EXIT

(cd "$ROOT" && go build -o bin/watchdog ./cmd/watchdog)
touch "$BIN"
"$ROOT/scripts/cluster-up.sh" >"$WORK/up.log" 2>&1 || { tail -n 20 "$WORK/up.log" >&2; die "cluster-up.sh failed"; }
export WATCHDOG_TOKEN_FILE=$(token_file)
pids="" addrs=""
for name in "${NODES[@]}"; do
	pids+=${pids:+,}$(pidfile_pid "$(node_pidfile "$name")")
	addrs+=${addrs:+,}$HOST:${HTTP_PORT[$name]}
done

# ticks: the CPU clock ticks the agents have used.
ticks() {
	local pid sum=0
	for pid in ${pids//,/ }; do
		sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
	done
	echo "$sum"
}

# run NAME [bench flags...]: one run of watchdog bench against the cluster,
# kept as $WORK/NAME.json.
run() {
	local name=$1
	shift
	"$BIN" bench -json -addr "$addrs" -services "$SERVICES" -duration "$DURATION" "$@" >"$WORK/$name.json" \
		2>>"$WORK/bench.log" || die "watchdog bench failed: $(tail -n 5 "$WORK/bench.log")"
}
num() { json_num "$WORK/$1.json" "$2"; }

sleep 2 # past the election and the first status polls
t0=$(ticks)
sleep 10
awk -v d=$(($(ticks) - t0)) -v hz="$(getconf CLK_TCK)" -v l="$LABEL" 'BEGIN { printf "%s idle cluster: %.3f cores\n", l, d / hz / 10 }'
if ((CLOSED > 0)); then
	run closed -clients "$CLOSED" -cpu-pids "$pids"
	echo "$LABEL closed loop, $CLOSED clients: $(num closed ok_throughput) ok/s, p50 $(num closed p50) ms, p99 $(num closed p99) ms, cpu/ok $(num closed cpu_ms_per_ok) ms"
fi
for rate in $RATES; do
	run "rate-$rate" -clients 256 -rate "$rate" -cpu-pids "$pids"
	echo "$LABEL $rate/s: cpu/ok $(num "rate-$rate" cpu_ms_per_ok) ms, cores $(num "rate-$rate" cpu_cores), p50 $(num "rate-$rate" p50) ms, p99 $(num "rate-$rate" p99) ms, errors $(num "rate-$rate" errors_total)"
done
if ((IDLE_RATE > 0)); then
	run idle -clients 1 -rate "$IDLE_RATE"
	echo "$LABEL idle $IDLE_RATE/s: p50 $(num idle p50) ms, p99 $(num idle p99) ms"
fi
