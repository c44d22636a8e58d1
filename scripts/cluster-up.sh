#!/usr/bin/env bash
# Start a three-node watchdog cluster on loopback (and haproxy in front of it
# when haproxy is installed), and return once it has a leader and three voters.
#
#   node  HTTP            Raft            gossip
#   n1    127.0.0.1:8081  127.0.0.1:8181  127.0.0.1:8281
#   n2    127.0.0.1:8082  127.0.0.1:8182  127.0.0.1:8282
#   n3    127.0.0.1:8083  127.0.0.1:8183  127.0.0.1:8283
#   haproxy 127.0.0.1:8080 (deploy/haproxy.cfg)
#
# Environment:
#   WATCHDOG_DATA        where data, logs and pid files go (default: <repo>/.cluster)
#                        $WATCHDOG_DATA/n1/{data,watchdog.log,watchdog.pid}, ...
#   WATCHDOG_PORT_BASE   haproxy's port; node i listens on BASE+i (HTTP),
#                        BASE+100+i (Raft), BASE+200+i (gossip). Default 8080,
#                        as above; remembered in $WATCHDOG_DATA/port-base, so
#                        later runs on the same data need not repeat it
#   WATCHDOG_CONFIG      YAML config passed to every node with -config
#   WATCHDOG_UP_TIMEOUT  seconds to wait for a leader and three voters (default 30)
#
# Without api_token in the config, the management routes need the token the
# cluster generated: $WATCHDOG_DATA/n1/data/api-token (the CLI reads it with
# WATCHDOG_TOKEN_FILE). Re-running it starts only what is not running. Stop
# with scripts/cluster-down.sh.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

UP_TIMEOUT=${WATCHDOG_UP_TIMEOUT:-30}
[[ $UP_TIMEOUT =~ ^[0-9]+$ ]] || die "WATCHDOG_UP_TIMEOUT must be a number of seconds, got '$UP_TIMEOUT'"

# The config a cluster was started with is remembered in $DATA/config.path
# and used again when WATCHDOG_CONFIG is unset, so a restarted node keeps
# its actions. A file given to a running cluster changes only the nodes
# started now; the cluster's committed configuration changes with
# `watchdog config apply`, which this script says.
CONFIG=${WATCHDOG_CONFIG:-}
CONFIG_MEMO=$DATA/config.path
REMEMBERED=""
[[ -f $CONFIG_MEMO ]] && REMEMBERED=$(<"$CONFIG_MEMO")
if [[ -n $CONFIG ]]; then
	[[ -f $CONFIG ]] || die "WATCHDOG_CONFIG=$CONFIG: no such file"
	case $CONFIG in /*) ;; *) CONFIG=$PWD/$CONFIG ;; esac
elif [[ -n $REMEMBERED ]]; then
	[[ -f $REMEMBERED ]] || die "this cluster was started with the config $REMEMBERED, which is gone: set WATCHDOG_CONFIG (or remove $CONFIG_MEMO)"
	CONFIG=$REMEMBERED
	log "WATCHDOG_CONFIG is unset: using $CONFIG, the config this cluster was started with ($CONFIG_MEMO)"
fi

command -v curl >/dev/null || die "curl is required (scripts/ci-deps.sh installs it)"

# --- build ---------------------------------------------------------------

needs_build() {
	[[ -x $BIN ]] || return 0
	local newer
	newer=$(find "$ROOT" \
		\( -path "$ROOT/.git" -o -path "$ROOT/bin" -o -path "$ROOT/.cluster" -o -path "$DATA" \) -prune \
		-o \( -name '*.go' -o -name go.mod -o -name go.sum \) -newer "$BIN" -print -quit 2>/dev/null || true)
	[[ -n $newer ]]
}

if needs_build; then
	log "building $BIN"
	(cd "$ROOT" && go build -o bin/watchdog ./cmd/watchdog)
	touch "$BIN" # go build leaves an up-to-date binary as it was, mtime too
fi

# --- nodes -----------------------------------------------------------------

mkdir -p "$DATA"
if [[ -n $CONFIG && $CONFIG != "$REMEMBERED" ]]; then
	printf '%s\n' "$CONFIG" >"$CONFIG_MEMO"
	if [[ -n $REMEMBERED ]]; then
		log "config: now $CONFIG (was $REMEMBERED). Nodes started now read it for their actions; the cluster's"
		log "  committed configuration changes only with: $BIN config apply -addr $HOST:${HTTP_PORT[n1]} $CONFIG"
	fi
fi

# A cluster keeps its ports: starting part of it on others would split it.
if [[ -n $STORED_BASE && $STORED_BASE != "$BASE" ]]; then
	for name in "${NODES[@]}"; do
		if running "$(node_pidfile "$name")" watchdog; then
			die "the cluster in $DATA runs on WATCHDOG_PORT_BASE=$STORED_BASE, not $BASE: stop it first (scripts/cluster-down.sh)"
		fi
	done
fi
printf '%s\n' "$BASE" >"$PORT_BASE_FILE"

start_node() {
	local name=$1 dir pidf logf joins="" other
	dir=$(node_dir "$name")
	pidf=$(node_pidfile "$name")
	logf=$(node_logfile "$name")
	for other in "${NODES[@]}"; do
		[[ $other == "$name" ]] && continue
		joins+=${joins:+,}$HOST:${GOSSIP_PORT[$other]}
	done
	local args=(agent
		-node-id "$name"
		-http-addr "$HOST:${HTTP_PORT[$name]}"
		-raft-addr "$HOST:${RAFT_PORT[$name]}"
		-gossip-addr "$HOST:${GOSSIP_PORT[$name]}"
		-data-dir "$dir/data"
		-join "$joins"
		-bootstrap-expect 3)
	[[ -n $CONFIG ]] && args+=(-config "$CONFIG")

	mkdir -p "$dir/data"
	printf '=== %s cluster-up.sh: %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$BIN" "${args[*]}" >>"$logf"
	# Background children of a non-interactive shell are not process-group
	# leaders, so setsid and nohup both exec in place: $! is the node's pid.
	setsid nohup "$BIN" "${args[@]}" </dev/null >>"$logf" 2>&1 &
	echo "$!" >"$pidf"
	log "started $name (pid $!), log $logf"
}

# A port taken by something else (say a cluster started with another
# WATCHDOG_DATA) would make a new node exit, or worse, make the wait below
# look at the wrong cluster: refuse up front.
check_ports_free() {
	local name=$1 port
	for port in "${HTTP_PORT[$name]}" "${RAFT_PORT[$name]}" "${GOSSIP_PORT[$name]}"; do
		if port_in_use "$port"; then
			die "$HOST:$port (for $name) is in use by another process, not by a node under $DATA; is a cluster with another WATCHDOG_DATA running?"
		fi
	done
}

to_start=()
for name in "${NODES[@]}"; do
	if running "$(node_pidfile "$name")" watchdog; then
		log "$name already running (pid $(pidfile_pid "$(node_pidfile "$name")"))"
	else
		check_ports_free "$name"
		to_start+=("$name")
	fi
done
for name in "${to_start[@]}"; do
	start_node "$name"
done

# --- wait for a leader and three voters, as seen by every node --------------

LEADER=""
STATUS=""

# cluster_ready: every node answers /v1/cluster with the same non-empty leader
# and three voters. Sets LEADER, and STATUS to what was last seen.
cluster_ready() {
	local name body leader voters ok=0 seen=""
	STATUS=""
	for name in "${NODES[@]}"; do
		if ! body=$(http_get "http://$HOST:${HTTP_PORT[$name]}/v1/cluster"); then
			STATUS+="$name: no answer; "
			ok=1
			continue
		fi
		body=$(tr -d ' \t\r\n' <<<"$body")
		leader=$(grep -o '"leader":"[^"]*"' <<<"$body" | head -n 1 | cut -d '"' -f 4 || true)
		voters=$(grep -o '"voter":true' <<<"$body" | wc -l || true)
		STATUS+="$name: leader='$leader' voters=$voters; "
		if [[ -z $leader ]] || ((voters != 3)); then
			ok=1
		elif [[ -n $seen && $seen != "$leader" ]]; then
			ok=1
		fi
		seen=${seen:-$leader}
	done
	LEADER=$seen
	return "$ok"
}

# dead_nodes: names of nodes whose process has gone.
dead_nodes() {
	local name out=""
	for name in "${NODES[@]}"; do
		pid_alive "$(pidfile_pid "$(node_pidfile "$name")")" || out+="$name "
	done
	printf '%s' "$out"
}

fail() {
	printf '\nerror: %s\n' "$*" >&2
	tail_logs 20 >&2
	printf '\nstop it with: %s/scripts/cluster-down.sh\n' "$ROOT" >&2
	exit 1
}

deadline=$((SECONDS + UP_TIMEOUT))
until cluster_ready; do
	dead=$(dead_nodes)
	[[ -z $dead ]] || fail "node(s) exited: $dead(last status: ${STATUS:-none})"
	((SECONDS < deadline)) || fail "no leader with three voters after ${UP_TIMEOUT}s; last status: $STATUS"
	sleep 0.2
done

# --- haproxy ---------------------------------------------------------------

HAPROXY_URL=""
if command -v haproxy >/dev/null; then
	if running "$HAPROXY_PID" haproxy; then
		log "haproxy already running (pid $(pidfile_pid "$HAPROXY_PID"))"
	else
		render_haproxy_cfg || die "cannot write $HAPROXY_CFG"
		haproxy -c -q -f "$HAPROXY_CFG" || die "invalid $HAPROXY_CFG"
		! port_in_use "$HAPROXY_PORT" || die "$HOST:$HAPROXY_PORT (for haproxy) is in use by another process"
		# Foreground (-db) under setsid: the pid is haproxy's own and its
		# stderr log goes to the file. haproxy sets its stderr non-blocking
		# with F_SETFL, which drops O_APPEND; it then writes at the file
		# offset of the descriptor. So the header goes through that same
		# descriptor first, leaving its offset at the end of the file, and
		# the subshell then becomes haproxy by exec (keeping $!).
		{
			printf '=== %s cluster-up.sh: haproxy -db -f %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$HAPROXY_CFG"
			exec setsid nohup haproxy -db -f "$HAPROXY_CFG"
		} </dev/null >>"$HAPROXY_LOG" 2>&1 &
		echo "$!" >"$HAPROXY_PID"
		log "started haproxy (pid $!), log $HAPROXY_LOG"
	fi
	deadline=$((SECONDS + 15))
	until http_get "http://$HOST:$HAPROXY_PORT/readyz" >/dev/null; do
		pid_alive "$(pidfile_pid "$HAPROXY_PID")" || fail "haproxy exited"
		((SECONDS < deadline)) || fail "haproxy on $HOST:$HAPROXY_PORT did not answer /readyz with 200 within 15s"
		sleep 0.2
	done
	HAPROXY_URL="http://$HOST:$HAPROXY_PORT"
else
	log "haproxy is not installed: not starting the load balancer on $HOST:$HAPROXY_PORT (scripts/ci-deps.sh installs it)"
fi

# --- report ----------------------------------------------------------------

log ""
log "watchdog cluster is up, leader $LEADER (data in $DATA)"
for name in "${NODES[@]}"; do
	log "  $name  http://$HOST:${HTTP_PORT[$name]}  pid $(pidfile_pid "$(node_pidfile "$name")")"
done
if [[ -n $HAPROXY_URL ]]; then
	log "  haproxy  $HAPROXY_URL  pid $(pidfile_pid "$HAPROXY_PID")"
fi
if [[ -f $(token_file) ]]; then
	log "management routes need the API token in $(token_file):"
	log "  export WATCHDOG_TOKEN_FILE=$(token_file)"
fi
