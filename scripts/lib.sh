# shellcheck shell=bash
# Variables set here are used by the scripts that source this file.
# shellcheck disable=SC2034
# Helpers shared by cluster-up.sh and cluster-down.sh. Source it, don't run it.

log() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
# WATCHDOG_DATA: absolute, relative to the caller's directory if relative.
DATA=${WATCHDOG_DATA:-$ROOT/.cluster}
case $DATA in /*) ;; *) DATA=$PWD/$DATA ;; esac
BIN=$ROOT/bin/watchdog
# WATCHDOG_HAPROXY_CFG picks another template, such as deploy/haproxy-leader.cfg.
HAPROXY_TEMPLATE=${WATCHDOG_HAPROXY_CFG:-$ROOT/deploy/haproxy.cfg}
HAPROXY_CFG=$DATA/haproxy.cfg # the template with this cluster's ports
HAPROXY_PID=$DATA/haproxy.pid
HAPROXY_LOG=$DATA/haproxy.log
HOST=127.0.0.1

# The ports: haproxy on BASE, node i's HTTP on BASE+i, Raft on BASE+100+i,
# gossip on BASE+200+i. BASE is $WATCHDOG_PORT_BASE, else the base this
# data dir's cluster was started with (cluster-up.sh keeps it in
# $DATA/port-base), else 8080: 8080, 8081-8083, 8181-8183, 8281-8283.
PORT_BASE_FILE=$DATA/port-base
STORED_BASE=""
[[ -f $PORT_BASE_FILE ]] && read -r STORED_BASE <"$PORT_BASE_FILE"
BASE=${WATCHDOG_PORT_BASE:-${STORED_BASE:-8080}}
if ! [[ $BASE =~ ^[0-9]+$ ]] || ((BASE < 1024 || BASE > 65300)); then
	die "WATCHDOG_PORT_BASE must be a port from 1024 to 65300 (the cluster uses it and up to 203 above), got '$BASE'"
fi

# The three local nodes: name, HTTP port, Raft port, gossip port.
NODES=(n1 n2 n3)
declare -A HTTP_PORT=([n1]=$((BASE + 1)) [n2]=$((BASE + 2)) [n3]=$((BASE + 3)))
declare -A RAFT_PORT=([n1]=$((BASE + 101)) [n2]=$((BASE + 102)) [n3]=$((BASE + 103)))
declare -A GOSSIP_PORT=([n1]=$((BASE + 201)) [n2]=$((BASE + 202)) [n3]=$((BASE + 203)))
HAPROXY_PORT=$BASE

node_dir() { printf '%s/%s' "$DATA" "$1"; }
node_pidfile() { printf '%s/%s/watchdog.pid' "$DATA" "$1"; }
node_logfile() { printf '%s/%s/watchdog.log' "$DATA" "$1"; }

# pid_alive PID: the process exists and is not a zombie. Orphaned nodes are
# reparented to whatever init the machine has; if that one does not reap,
# a killed node stays a zombie that "kill -0" still reports.
pid_alive() {
	local pid=$1 stat
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	if [[ -r /proc/$pid/stat ]]; then
		stat=$(</proc/"$pid"/stat) || return 1
		stat=${stat##*) } # drop "pid (comm) ", comm may hold spaces
		[[ ${stat%% *} != Z ]] || return 1
	fi
	return 0
}

# pidfile_pid FILE: the pid recorded in FILE, or nothing.
pidfile_pid() {
	local pid=
	[[ -f $1 ]] && read -r pid <"$1" 2>/dev/null
	[[ $pid =~ ^[0-9]+$ ]] && printf '%s' "$pid"
	return 0
}

# running PIDFILE NAME: the pid in PIDFILE is alive and its command line
# mentions NAME (so a recycled pid of another program is not taken for ours).
running() {
	local pid
	pid=$(pidfile_pid "$1")
	[[ -n $pid ]] && pid_alive "$pid" || return 1
	if [[ -r /proc/$pid/cmdline ]]; then
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" || return 1
	fi
	return 0
}

# port_in_use PORT: something accepts TCP connections on HOST:PORT.
port_in_use() {
	(exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# http_get URL: body on stdout; fails on connection errors and HTTP >= 400.
http_get() {
	curl -fsS --noproxy '*' --connect-timeout 1 --max-time 2 "$1" 2>/dev/null
}

# tail_logs N: the last N lines of every log file, to explain a failure.
tail_logs() {
	local n=$1 name f
	for name in "${NODES[@]}"; do
		f=$(node_logfile "$name")
		printf '\n----- %s: last %s lines of %s -----\n' "$name" "$n" "$f"
		if [[ -f $f ]]; then tail -n "$n" -- "$f"; else echo '(no log file)'; fi
	done
	if [[ -f $HAPROXY_LOG ]]; then
		printf '\n----- haproxy: last %s lines of %s -----\n' "$n" "$HAPROXY_LOG"
		tail -n "$n" -- "$HAPROXY_LOG"
	fi
}

# render_haproxy_cfg: deploy/haproxy.cfg with this cluster's ports, in the
# data dir. Each address becomes a placeholder first, so that no port is
# rewritten twice whatever the base.
render_haproxy_cfg() {
	sed -e "s/127\.0\.0\.1:8080/@P0@/g" -e "s/127\.0\.0\.1:8081/@P1@/g" \
		-e "s/127\.0\.0\.1:8082/@P2@/g" -e "s/127\.0\.0\.1:8083/@P3@/g" \
		-e "s/@P0@/$HOST:$HAPROXY_PORT/g" -e "s/@P1@/$HOST:${HTTP_PORT[n1]}/g" \
		-e "s/@P2@/$HOST:${HTTP_PORT[n2]}/g" -e "s/@P3@/$HOST:${HTTP_PORT[n3]}/g" \
		"$HAPROXY_TEMPLATE" >"$HAPROXY_CFG.tmp" && mv -f -- "$HAPROXY_CFG.tmp" "$HAPROXY_CFG"
}

# token_file: where node n1 keeps the API token the cluster generated (the
# management routes need it unless the config sets api_token).
token_file() { printf '%s/n1/data/api-token' "$DATA"; }

# json_num FILE KEY: the number after "KEY": in FILE (the output of
# watchdog bench -json).
json_num() {
	grep -o "\"$2\":[-0-9.e+]*" "$1" | head -n 1 | cut -d: -f2
}
