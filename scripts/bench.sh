#!/usr/bin/env bash
# The figures of issue 4's target table, measured with real processes on this
# machine, in one run:
#   1. three no-op Go HTTP servers (watchdog bench -noop-server), round-robin:
#      the baseline, closed loop; then open loop at 200/s and 1 000/s with
#      the servers' CPU read from /proc over the window; then the highest
#      open-loop rate they sustain (p99 <= 50 ms, no errors, >= 98 % of the
#      rate acknowledged, OPEN_CLIENTS connections per node);
#   2. the local three-node cluster (scripts/cluster-up.sh, data in a temp
#      dir), round-robin over 8081-8083: the same closed loop; open loop at
#      half that rate (p99); the same CPU runs and capacity search; then one
#      idle client (p50);
#   3. leader failover: kill -9 the leader, time until a survivor's
#      /v1/cluster names a new one; restart the node and wait until ready.
# Every load run uses `watchdog bench` with the same settings. Stops all it
# started on exit. Needs the ports of cluster-up.sh and 18091-18093 free
# (WATCHDOG_PORT_BASE and BENCH_NOOP_BASE move them).
#
# Environment (defaults in brackets):
#   BENCH_DURATION  measured time of each load run [10s]
#   BENCH_CLIENTS   concurrent clients [64]
#   BENCH_SERVICES  service ids [10000]
#   BENCH_FAILOVERS leader kills [20, as issue 4 asks]
#   BENCH_OUT       where the table is saved as well [docs/benchmarks.md]
#   BENCH_CAP_DURATION measured time of each run of the capacity search [5s]
#   BENCH_NOOP_BASE the no-op servers listen on BASE+1..3 [18090]
set -euo pipefail

WORK=$(mktemp -d "${TMPDIR:-/tmp}/watchdog-bench.XXXXXX")
export WATCHDOG_DATA=$WORK/cluster WATCHDOG_CONFIG=$WORK/watchdog.yaml
# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${BENCH_DURATION:-10s}
CLIENTS=${BENCH_CLIENTS:-64}
SERVICES=${BENCH_SERVICES:-10000}
FAILOVERS=${BENCH_FAILOVERS:-20}
[[ $FAILOVERS =~ ^[1-9][0-9]*$ ]] || die "BENCH_FAILOVERS must be a positive number, got '$FAILOVERS'"
NOOP_BASE=${BENCH_NOOP_BASE:-18090}
NOOP_PORTS=($((NOOP_BASE + 1)) $((NOOP_BASE + 2)) $((NOOP_BASE + 3)))
IDLE_RATE=50 # requests/s of the idle client: one at a time, 20 ms apart
# Open-loop runs: each client keeps a connection to every node, so this many
# connections per node; enough that the generator never hides queueing.
OPEN_CLIENTS=256
CPU_RATES=(200 1000)
CAP_DURATION=${BENCH_CAP_DURATION:-5s}
CAP_P99_MS=50
OUT=${BENCH_OUT:-$ROOT/docs/benchmarks.md}

NOOP_PIDS=()
CLUSTER_STARTED=0

cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	for pid in "${NOOP_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	if ((CLUSTER_STARTED)); then
		"$ROOT/scripts/cluster-down.sh" >>"$WORK/cluster.log" 2>&1 || rc=1
	fi
	if ((rc == 0)); then
		rm -rf -- "$WORK"
	else
		printf 'bench.sh stopped (exit %s); logs and data kept in %s\n' "$rc" "$WORK" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- preconditions and build --------------------------------------------

ports=("${NOOP_PORTS[@]}" "$HAPROXY_PORT")
for name in "${NODES[@]}"; do
	ports+=("${HTTP_PORT[$name]}" "${RAFT_PORT[$name]}" "${GOSSIP_PORT[$name]}")
done
for port in "${ports[@]}"; do
	! port_in_use "$port" || die "$HOST:$port is in use: stop what runs there (a local cluster? scripts/cluster-down.sh)"
done

log "building $BIN"
(cd "$ROOT" && go build -o bin/watchdog ./cmd/watchdog)
touch "$BIN" # so cluster-up.sh sees it up to date

# Long timeouts: the services the load creates must not all expire in the
# middle of a later measurement (a mass expiry is measured in ./watcher).
cat >"$WATCHDOG_CONFIG" <<'EOF'
defaults:
  timeout: 1h
  actions: [log]
EOF

# --- helpers -------------------------------------------------------------

# load NAME ADDRS [bench flags...]: one run of watchdog bench, kept as
# $WORK/NAME.json, summarised on stdout.
load() {
	local name=$1 addrs=$2
	shift 2
	"$BIN" bench -json -addr "$addrs" -clients "$CLIENTS" -services "$SERVICES" -duration "$DURATION" \
		"$@" >"$WORK/$name.json" 2>>"$WORK/bench.log" || die "watchdog bench ($name) failed, see $WORK/bench.log"
	local f=$WORK/$name.json
	printf '  %-10s %9.0f ok/s  errors %-6s p50 %7.2f ms  p99 %7.2f ms  p99.9 %7.2f ms  max %7.2f ms\n' \
		"$name" "$(json_num "$f" ok_throughput)" "$(json_num "$f" errors_total)" "$(json_num "$f" p50)" \
		"$(json_num "$f" p99)" "$(json_num "$f" p99.9)" "$(json_num "$f" max)"
	if grep -q '"cpu_cores"' "$f"; then
		printf '  %-10s server CPU %.3f cores, %.3f ms per ok answer\n' "" "$(json_num "$f" cpu_cores)" "$(json_num "$f" cpu_ms_per_ok)"
	fi
}

# cpu_runs NAME ADDRS PIDS: open loop at each of CPU_RATES with the CPU of
# the server processes PIDS (comma-separated) read over the window: kept as
# $WORK/NAME-cpu-RATE.json.
cpu_runs() {
	local rate
	for rate in "${CPU_RATES[@]}"; do
		load "$1-cpu-$rate" "$2" -rate "$rate" -clients "$OPEN_CLIENTS" -cpu-pids "$3"
	done
}

# sustains FILE RATE: whether the run in FILE kept up with RATE: p99 within
# CAP_P99_MS, no error, at least 98 % of the rate acknowledged.
sustains() {
	awk -v p="$(json_num "$1" p99)" -v e="$(json_num "$1" errors_total)" -v ok="$(json_num "$1" ok_throughput)" \
		-v r="$2" -v lim="$CAP_P99_MS" 'BEGIN { exit !(p <= lim && e == 0 && ok >= 0.98 * r) }'
}

# sustained NAME ADDRS RATE: whether ADDRS sustain RATE in a run of
# CAP_DURATION; a rate that fails is run once more, and fails only if that
# fails too: one stall of the shared machine in a 5 s run (a p99 is its
# worst 1 %) must not end the search (one such run at 500/s once stopped
# it at 468/s, in a bench whose 1 000/s run had a p99 of 25 ms).
sustained() {
	local name=$1 addrs=$2 rate=$3 run
	for run in "$name-cap-$rate" "$name-cap-$rate-again"; do
		DURATION=$CAP_DURATION load "$run" "$addrs" -rate "$rate" -clients "$OPEN_CLIENTS"
		sustains "$WORK/$run.json" "$rate" && return 0
	done
	return 1
}

# capacity NAME ADDRS: the highest open-loop rate ADDRS sustain; doubling
# from 250/s until a rate fails, then halving the gap three times. Sets CAP.
capacity() {
	local name=$1 addrs=$2 lo=0 hi=0 rate=250 mid i
	while ((hi == 0 && rate <= 256000)); do
		if sustained "$name" "$addrs" "$rate"; then lo=$rate rate=$((rate * 2)); else hi=$rate; fi
	done
	for i in 1 2 3; do
		((hi > 0)) || break
		mid=$(((lo + hi) / 2))
		if sustained "$name" "$addrs" "$mid"; then lo=$mid; else hi=$mid; fi
	done
	CAP=$lo
	log "  $name sustains $CAP/s (p99 <= $CAP_P99_MS ms, no errors, >= 98 % acknowledged)"
}

wait_port() {
	local deadline=$((SECONDS + 10))
	until port_in_use "$1"; do
		((SECONDS < deadline)) || die "nothing listens on $HOST:$1 after 10s"
		sleep 0.05
	done
}

# leader_on PORT: the leader named by that node's /v1/cluster, or nothing.
leader_on() {
	http_get "http://$HOST:$1/v1/cluster" | tr -d ' \t\r\n' | grep -o '"leader":"[^"]*"' | cut -d '"' -f 4 || true
}

# wait_ready: every node answers /readyz with 200 and names the same leader.
wait_ready() {
	local deadline=$((SECONDS + 60)) name ok leader seen
	while :; do
		ok=1 seen=""
		for name in "${NODES[@]}"; do
			leader=$(leader_on "${HTTP_PORT[$name]}")
			if ! http_get "http://$HOST:${HTTP_PORT[$name]}/readyz" >/dev/null || [[ -z $leader ]] ||
				[[ -n $seen && $leader != "$seen" ]]; then
				ok=0
			fi
			seen=${seen:-$leader}
		done
		((ok)) && return 0
		((SECONDS < deadline)) || die "the cluster was not ready within 60s; logs in $WATCHDOG_DATA"
		sleep 0.1
	done
}

cluster_up() {
	CLUSTER_STARTED=1
	"$ROOT/scripts/cluster-up.sh" >>"$WORK/cluster.log" 2>&1 || {
		tail -n 40 "$WORK/cluster.log" >&2
		die "scripts/cluster-up.sh failed"
	}
	wait_ready
	# The bench defines and deletes its services: the generated API token.
	export WATCHDOG_TOKEN_FILE=$WATCHDOG_DATA/n1/data/api-token
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# failover: kill -9 the leader and time until a survivor names another
# one: sets FO_MS, FO_OLD, FO_NEW. Restarts the node and waits until all
# are ready again.
failover() {
	local pid name t0 deadline
	FO_OLD=$(leader_on "${HTTP_PORT[n1]}") FO_NEW=""
	pid=$(pidfile_pid "$(node_pidfile "$FO_OLD")")
	[[ -n $pid ]] || die "no pid for the leader '$FO_OLD'"
	t0=$(now_ms)
	kill -9 "$pid"
	deadline=$((SECONDS + 30))
	while [[ -z $FO_NEW ]]; do
		for name in "${NODES[@]}"; do
			[[ $name != "$FO_OLD" ]] || continue
			FO_NEW=$(leader_on "${HTTP_PORT[$name]}")
			if [[ $FO_NEW == "$FO_OLD" ]]; then FO_NEW=""; fi
			if [[ -n $FO_NEW ]]; then break; fi
		done
		((SECONDS < deadline)) || die "no new leader 30s after killing $FO_OLD"
		[[ -n $FO_NEW ]] || sleep 0.01
	done
	FO_MS=$(($(now_ms) - t0))
	deadline=$((SECONDS + 10))
	while pid_alive "$pid"; do
		((SECONDS < deadline)) || die "killed $FO_OLD (pid $pid) is still alive"
		sleep 0.05
	done
	cluster_up
}

# --- 1. baseline ---------------------------------------------------------

log "baseline: three no-op HTTP servers on ports ${NOOP_PORTS[*]}"
noop_addrs=""
for port in "${NOOP_PORTS[@]}"; do
	"$BIN" bench -noop-server "$HOST:$port" 2>>"$WORK/noop.log" &
	NOOP_PIDS+=("$!")
	noop_addrs+=${noop_addrs:+,}$HOST:$port
done
for port in "${NOOP_PORTS[@]}"; do wait_port "$port"; done
load noop "$noop_addrs"
noop_pids=$(IFS=,; echo "${NOOP_PIDS[*]}")
cpu_runs noop "$noop_addrs" "$noop_pids"
capacity noop "$noop_addrs"
noop_cap=$CAP
for pid in "${NOOP_PIDS[@]}"; do
	kill "$pid" 2>/dev/null || true
	wait "$pid" || true
done
NOOP_PIDS=()

# --- 2. the cluster ------------------------------------------------------

log "cluster: three nodes, data in $WATCHDOG_DATA"
cluster_up
cluster_addrs=""
for name in "${NODES[@]}"; do
	cluster_addrs+=${cluster_addrs:+,}$HOST:${HTTP_PORT[$name]}
done
load closed "$cluster_addrs"
half=$(awk -v t="$(json_num "$WORK/closed.json" ok_throughput)" 'BEGIN { printf "%d", t / 2 }')
((half > 0)) || die "the cluster acknowledged no heartbeat; see $WORK/closed.json and $WATCHDOG_DATA"
load open "$cluster_addrs" -rate "$half"
cluster_pids=""
for name in "${NODES[@]}"; do
	pid=$(pidfile_pid "$(node_pidfile "$name")")
	[[ -n $pid ]] || die "no pid for node $name"
	cluster_pids+=${cluster_pids:+,}$pid
done
cpu_runs cluster "$cluster_addrs" "$cluster_pids"
capacity cluster "$cluster_addrs"
cluster_cap=$CAP
CLIENTS=1 load idle "$cluster_addrs" -rate "$IDLE_RATE"

# --- 3. failover ---------------------------------------------------------

log "failover: kill -9 the leader, $FAILOVERS times"
times=()
for i in $(seq 1 "$FAILOVERS"); do
	failover
	log "  $i: killed $FO_OLD, $FO_NEW leader after $FO_MS ms"
	times+=("$FO_MS")
done
read -r fo_median fo_worst < <(printf '%s\n' "${times[@]}" | sort -n |
	awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)], v[NR] }')

# --- 4. figures of the Go benchmarks that belong in the table ------------

# gobench PKG BENCH: one run of BENCH, its output kept as $WORK/gobench.out.
gobench() {
	(cd "$ROOT" && go test -run '^$' -bench "$2" -benchtime 1x "$1") >"$WORK/gobench.out" 2>>"$WORK/gobench.log" ||
		die "go test -bench $2 $1 failed; see $WORK/gobench.out"
	cat "$WORK/gobench.out" >>"$WORK/gobench.log"
}
# metric UNIT: the value reported with UNIT by the last gobench.
metric() {
	awk -v u="$1" '{ for (i = 2; i <= NF; i++) if ($i == u) { print $(i - 1); exit } }' "$WORK/gobench.out"
}
log "Go benchmarks: detection at 100 000 services, heap per service at 1 000 000"
gobench ./watcher 'Detection100k$'
det_p99=$(metric p99-ms) det_early=$(metric early)
gobench ./fsm 'HeapPerService/1000000$'
heap_1m=$(metric B/service)
[[ -n $det_p99 && -n $det_early && -n $heap_1m ]] || die "a Go benchmark gave no figure; see $WORK/gobench.log"

# --- table ---------------------------------------------------------------

verdict() { if (($1)); then echo met; else echo 'NOT met'; fi; }
base=$(json_num "$WORK/noop.json" ok_throughput)
tput=$(json_num "$WORK/closed.json" ok_throughput)
ratio=$(awk -v a="$tput" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
open_p99=$(json_num "$WORK/open.json" p99)
idle_p50=$(json_num "$WORK/idle.json" p50)
errs=$(($(json_num "$WORK/closed.json" errors_total) + $(json_num "$WORK/open.json" errors_total) +
	$(json_num "$WORK/idle.json" errors_total)))
unsent=$(json_num "$WORK/open.json" unsent)

# table: the figures in Markdown, headed with the date and the machine.
table() {
	cpu=$(grep -m 1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//' || true)
	commit=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
	printf '# Benchmarks\n\nWritten by `make bench` (scripts/bench.sh); run it again to measure your machine.\n'
	printf '\n## watchdog bench, %s\n\n' "$(date -u +%Y-%m-%d)"
	printf '%s, %s cores, %s, %s, commit %s; %s clients, %s services, %s per run, generator on the same machine\n\n' \
		"$(uname -sm)" "$(nproc)" "${cpu:-unknown CPU}" "$(go env GOVERSION)" "$commit" "$CLIENTS" "$SERVICES" "$DURATION"
	row() { printf '| %s | %s | %s | %s |\n' "$@"; }
	row "measure" "target" "measured" "verdict"
	row "---" "---" "---" "---"
	row "3 no-op Go HTTP servers, round-robin, closed loop" "baseline" \
		"$(printf '%.0f req/s, p99 %.1f ms' "$base" "$(json_num "$WORK/noop.json" p99)")" "-"
	row "3-node cluster, round-robin, closed loop, ack after commit" \
		"$(printf '>= 0.6 x baseline = %.0f/s' "$(awk -v b="$base" 'BEGIN { print 0.6 * b }')")" \
		"$(printf '%.0f req/s = %s x baseline, p99 %.1f ms' "$tput" "$ratio" "$(json_num "$WORK/closed.json" p99)")" \
		"$(verdict "$(awk -v r="$ratio" 'BEGIN { print (r >= 0.6) }')")"
	row "3-node cluster, open loop at half that rate ($half/s)" "p99 <= 25 ms" \
		"$(printf 'p99 %.1f ms, p99.9 %.1f ms, %s unsent' "$open_p99" "$(json_num "$WORK/open.json" p99.9)" "$unsent")" \
		"$(verdict "$(awk -v p="$open_p99" -v u="$unsent" 'BEGIN { print (p <= 25 && u == 0) }')")"
	local rate limit n c r
	for rate in "${CPU_RATES[@]}"; do
		limit=3
		((rate < 1000)) || limit=2
		n=$(json_num "$WORK/noop-cpu-$rate.json" cpu_ms_per_ok) c=$(json_num "$WORK/cluster-cpu-$rate.json" cpu_ms_per_ok)
		r=$(awk -v c="$c" -v n="$n" 'BEGIN { if (n > 0) printf "%.1f", c / n; else print "inf" }')
		row "node CPU per acknowledged heartbeat, open loop at $rate/s, $OPEN_CLIENTS connections per node" \
			"<= $limit x no-op" \
			"$(printf 'cluster %.3f ms (%.2f cores, p99 %.1f ms), no-op %.3f ms (%.2f cores): %s x' "$c" \
				"$(json_num "$WORK/cluster-cpu-$rate.json" cpu_cores)" "$(json_num "$WORK/cluster-cpu-$rate.json" p99)" \
				"$n" "$(json_num "$WORK/noop-cpu-$rate.json" cpu_cores)" "$r")" \
			"$(verdict "$(awk -v r="$r" -v l="$limit" 'BEGIN { print (r != "inf" && r <= l) }')")"
	done
	r=$(awk -v c="$cluster_cap" -v n="$noop_cap" 'BEGIN { if (n > 0) printf "%.2f", c / n; else print 0 }')
	row "highest open-loop rate with p99 <= $CAP_P99_MS ms, no errors, >= 98 % acknowledged ($OPEN_CLIENTS connections per node; a failed rate is run twice)" \
		">= 0.6 x no-op" "$(printf 'cluster %s/s, no-op %s/s: %s x' "$cluster_cap" "$noop_cap" "$r")" \
		"$(verdict "$(awk -v r="$r" 'BEGIN { print (r >= 0.6) }')")"
	row "single idle heartbeat (1 client, $IDLE_RATE/s)" "p50 <= 2 ms" \
		"$(printf 'p50 %.2f ms, p99 %.2f ms' "$idle_p50" "$(json_num "$WORK/idle.json" p99)")" \
		"$(verdict "$(awk -v p="$idle_p50" 'BEGIN { print (p <= 2) }')")"
	row "leader failover after kill -9 (median, worst of $FAILOVERS)" "median <= 2 s" \
		"$(printf '%.2f s, %.2f s' "$(awk -v m="$fo_median" 'BEGIN { print m / 1000 }')" \
			"$(awk -v m="$fo_worst" 'BEGIN { print m / 1000 }')")" \
		"$(verdict "$((fo_median <= 2000))")"
	row "errors in the three cluster runs" "0" "$errs" "$(verdict "$((errs == 0))")"
	row "detection after the deadline at 100 000 services (check_interval 250 ms)" "p99 <= 300 ms, 0 early" \
		"$(printf 'p99 %.0f ms, %s early' "$det_p99" "$det_early")" \
		"$(verdict "$(awk -v p="$det_p99" -v e="$det_early" 'BEGIN { print (p <= 300 && e == 0) }')")"
	row "heap per tracked service at 1 000 000" "<= 512 B" "$(printf '%.0f B' "$heap_1m")" \
		"$(verdict "$(awk -v h="$heap_1m" 'BEGIN { print (h <= 512) }')")"
}

mkdir -p "$(dirname -- "$OUT")"
table | tee "$OUT"
log "table saved in $OUT"
