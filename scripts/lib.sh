# shellcheck shell=bash
# Variables set here are used by the scripts that source this file.
# shellcheck disable=SC2034
# Helpers shared by cluster-up.sh and cluster-down.sh. Source it, don't run it.

# The three local nodes: name, HTTP port, Raft port, gossip port.
NODES=(n1 n2 n3)
declare -A HTTP_PORT=([n1]=8081 [n2]=8082 [n3]=8083)
declare -A RAFT_PORT=([n1]=8181 [n2]=8182 [n3]=8183)
declare -A GOSSIP_PORT=([n1]=8281 [n2]=8282 [n3]=8283)
HAPROXY_PORT=8080
HOST=127.0.0.1

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
# WATCHDOG_DATA: absolute, relative to the caller's directory if relative.
DATA=${WATCHDOG_DATA:-$ROOT/.cluster}
case $DATA in /*) ;; *) DATA=$PWD/$DATA ;; esac
BIN=$ROOT/bin/watchdog
HAPROXY_CFG=$ROOT/deploy/haproxy.cfg
HAPROXY_PID=$DATA/haproxy.pid
HAPROXY_LOG=$DATA/haproxy.log

log() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

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
