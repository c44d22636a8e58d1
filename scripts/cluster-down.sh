#!/usr/bin/env bash
# Stop what scripts/cluster-up.sh started (nodes and haproxy), by their pid
# files under $WATCHDOG_DATA (default <repo>/.cluster): SIGTERM, up to 10 s to
# exit, then SIGKILL. Removes the pid files; keeps data and logs unless -purge
# is given. Safe to run any number of times.
#
#   scripts/cluster-down.sh [-purge]
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

PURGE=0
for arg in "$@"; do
	case $arg in
	-purge | --purge) PURGE=1 ;;
	-h | -help | --help)
		sed -n '2,8s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
		exit 0
		;;
	*) die "unknown argument '$arg' (usage: $0 [-purge])" ;;
	esac
done

STOP_TIMEOUT=10

# Pid files and the program name each must belong to.
declare -a PIDFILES=() NAMES=()
for name in "${NODES[@]}"; do
	PIDFILES+=("$(node_pidfile "$name")")
	NAMES+=(watchdog)
done
PIDFILES+=("$HAPROXY_PID")
NAMES+=(haproxy)

declare -a PIDS=()
for i in "${!PIDFILES[@]}"; do
	f=${PIDFILES[$i]}
	[[ -e $f ]] || continue
	if running "$f" "${NAMES[$i]}"; then
		pid=$(pidfile_pid "$f")
		label="${f#"$DATA"/} (pid $pid)"
		log "stopping ${NAMES[$i]} $label"
		kill -TERM "$pid" 2>/dev/null || true
		PIDS+=("$pid")
	fi
done

# alive_pids: the pids in PIDS still alive, space separated.
alive_pids() {
	local pid out=""
	for pid in "${PIDS[@]}"; do
		pid_alive "$pid" && out+="$pid "
	done
	printf '%s' "$out"
}

if ((${#PIDS[@]} > 0)); then
	deadline=$((SECONDS + STOP_TIMEOUT))
	while [[ -n $(alive_pids) ]] && ((SECONDS < deadline)); do
		sleep 0.1
	done
	left=$(alive_pids)
	if [[ -n $left ]]; then
		log "still running after ${STOP_TIMEOUT}s, sending SIGKILL to: $left"
		for pid in $left; do
			kill -KILL "$pid" 2>/dev/null || true
		done
		deadline=$((SECONDS + 5))
		while [[ -n $(alive_pids) ]] && ((SECONDS < deadline)); do
			sleep 0.1
		done
		left=$(alive_pids)
		[[ -z $left ]] || die "could not stop: $left"
	fi
fi

for f in "${PIDFILES[@]}"; do
	rm -f -- "$f"
done

if ((PURGE)); then
	case $DATA in
	/ | "$ROOT" | "${HOME:-/}" | "") die "refusing to purge WATCHDOG_DATA=$DATA" ;;
	esac
	rm -rf -- "$DATA"
	log "removed $DATA"
fi

if ((${#PIDS[@]} > 0)); then
	log "stopped ${#PIDS[@]} process(es)"
else
	log "nothing was running (data in $DATA)"
fi
