#!/usr/bin/env bash
# Test deploy/docker-compose.yml on the local Docker engine (make compose):
# build the static binary and the FROM-scratch image (and check it holds
# nothing but the binary and the CA bundle) and the haproxy image
# (scripts/haproxy-image.sh), start the three node containers and haproxy,
# wait for a leader with three voters, send a heartbeat through each node
# and through haproxy and read it on the others (through the published
# loopback ports), stop the leader's container and check that a new leader
# watches: a heartbeat through haproxy commits, and a service with a 2 s
# timeout goes down. Always ends with "down -v".
#
# Needs a running Docker engine and docker-compose (Debian package
# docker-compose, installed here when missing and run as root) or "docker
# compose" v2; fails clearly when the engine is not running.
set -euo pipefail
ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

log() { printf 'compose-test: %s\n' "$*"; }
die() { printf 'compose-test: FAIL: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || die "no docker command: install docker.io (Debian) and start the engine"
docker info >/dev/null 2>&1 || die "the Docker engine is not running or not reachable (docker info failed): $(docker info 2>&1 | tail -1)"
# A fresh Debian machine of this kind has the engine but maybe not compose:
# install Debian's docker-compose (as root) rather than fail.
if ! command -v docker-compose >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1 &&
	((EUID == 0)) && command -v apt-get >/dev/null 2>&1; then
	log "installing docker-compose (Debian package)"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
fi
if command -v docker-compose >/dev/null 2>&1; then
	COMPOSE=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
	COMPOSE=(docker compose)
else
	die "neither docker-compose nor 'docker compose' is installed (apt-get install docker-compose)"
fi
command -v curl >/dev/null 2>&1 || die "curl is needed"

IMAGE=watchdog:compose-test
IMAGE_LB=watchdog-haproxy:compose-test
PROJECT=wdcompose$$
export WATCHDOG_IMAGE=$IMAGE WATCHDOG_HAPROXY_IMAGE=$IMAGE_LB
# Empty: Docker picks free host ports, found below with "port".
export WATCHDOG_PORT_N1='' WATCHDOG_PORT_N2='' WATCHDOG_PORT_N3='' WATCHDOG_PORT_LB=''
DC=("${COMPOSE[@]}" --profile haproxy -p "$PROJECT" -f deploy/docker-compose.yml)

cleanup() {
	local rc=$?
	if ((rc != 0)); then
		log "failed; the containers' logs:"
		"${DC[@]}" logs --no-color --tail 60 2>&1 || true
	fi
	"${DC[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
	docker rmi "$IMAGE" "$IMAGE_LB" >/dev/null 2>&1 || true
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building bin/watchdog-static and the image $IMAGE"
CGO_ENABLED=0 ${GO:-go} build -trimpath -o bin/watchdog-static ./cmd/watchdog
CA=/etc/ssl/certs/ca-certificates.crt
[[ -s $CA ]] || die "no $CA for the image (apt-get install ca-certificates)"
cp "$CA" bin/ca-certificates.crt
docker build -q -t "$IMAGE" . >/dev/null 2>&1 || docker build -t "$IMAGE" .
# The image holds the binary and the CA bundle, and nothing else: no shell.
cid=$(docker create "$IMAGE")
files=$(docker export "$cid" | tar -t | grep -v '/$' | grep -Ev '^(\.dockerenv|etc/(hostname|hosts|resolv\.conf|mtab)|proc|sys|dev)' | sort | tr '\n' ' ')
docker rm "$cid" >/dev/null
[[ $files == "etc/ssl/certs/ca-certificates.crt watchdog " ]] || die "unexpected files in the image: $files"

scripts/haproxy-image.sh "$IMAGE_LB" >/dev/null

log "starting n1, n2, n3 and haproxy (project $PROJECT)"
"${DC[@]}" up -d

declare -A URL
for n in n1 n2 n3 haproxy; do
	port=$("${DC[@]}" port "$n" 8080 | tail -1)
	[[ $port == *:* ]] || die "no published port for $n: $port"
	URL[$n]="http://127.0.0.1:${port##*:}"
done

# leader_of N: the leader n reports, if it reports three voters.
leader_of() {
	local body
	body=$(curl -fsS --max-time 2 "${URL[$1]}/v1/cluster" 2>/dev/null) || return 1
	[[ $(grep -o '"suffrage":"voter"' <<<"$body" | wc -l) -eq 3 ]] || return 1
	sed -n 's/.*"leader":"\([^"]*\)".*/\1/p' <<<"$body" | grep .
}

# wait_for SECONDS WHAT CMD...: retry CMD every half second.
wait_for() {
	local secs=$1 what=$2 deadline
	shift 2
	deadline=$((SECONDS + secs))
	until "$@"; do
		((SECONDS < deadline)) || die "timed out after ${secs}s waiting for $what"
		sleep 0.5
	done
}

agree() { # every node in "$@" reports the same leader, three voters
	local n l first=""
	for n in "$@"; do
		l=$(leader_of "$n") || return 1
		[[ -z $first || $l == "$first" ]] || return 1
		first=$l
	done
	LEADER=$first
}
wait_for 60 "a leader with three voters on every node" agree n1 n2 n3
log "leader $LEADER, three voters"

# beat N ID: a heartbeat through N, retried while it answers 503 (no leader).
beat() {
	local code
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -X POST "${URL[$1]}/v1/heartbeat/$2") || return 1
	[[ $code == 200 ]]
}
# status_is N ID STATUS: N's replica shows the service with that status.
status_is() {
	curl -fsS --max-time 2 "${URL[$1]}/v1/services/$2" 2>/dev/null | grep -q "\"status\":\"$3\""
}

for n in n1 n2 n3; do
	wait_for 15 "a heartbeat through $n" beat "$n" "via-$n"
	for m in n1 n2 n3; do
		wait_for 10 "$m to see the heartbeat sent through $n" status_is "$m" "via-$n" up
	done
	log "heartbeat through $n read on every node"
done
wait_for 15 "a heartbeat through haproxy" beat haproxy via-haproxy
for m in n1 n2 n3; do
	wait_for 10 "$m to see the heartbeat sent through haproxy" status_is "$m" via-haproxy up
done
log "heartbeat through haproxy read on every node"

log "stopping the leader's container ($LEADER)"
"${DC[@]}" stop -t 20 "$LEADER" >/dev/null
survivors=()
for n in n1 n2 n3; do [[ $n == "$LEADER" ]] || survivors+=("$n"); done
new_leader() { agree "${survivors[@]}" && [[ $LEADER != "$old" ]]; }
old=$LEADER
wait_for 30 "a new leader among ${survivors[*]}" new_leader
log "new leader $LEADER"

# The management routes need the API token the cluster generated (no
# api_token is configured): each node keeps it in its data dir.
TOKEN=$(docker cp "$("${DC[@]}" ps -q "${survivors[0]}"):/data/api-token" - | tar -xO | tr -d '\n')
[[ -n $TOKEN ]] || die "no API token in ${survivors[0]}'s /data/api-token"
define() {
	local code
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -X PUT -d '{"timeout":"2s","actions":["log"]}' \
		-H "Authorization: Bearer $TOKEN" "${URL[${survivors[0]}]}/v1/services/goes-silent") || return 1
	[[ $code == 200 || $code == 201 ]]
}
wait_for 15 "defining the service goes-silent" define
wait_for 15 "a heartbeat of goes-silent through haproxy" beat haproxy goes-silent
wait_for 15 "goes-silent up on ${survivors[0]}" status_is "${survivors[0]}" goes-silent up
wait_for 20 "the new leader to find goes-silent down" status_is "${survivors[1]}" goes-silent down
log "the new leader watches: goes-silent went down after its 2s timeout"
log "PASS"
