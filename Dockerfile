# The watchdog image: the static binary and nothing else (no shell, no libc),
# as release tools (goreleaser, ko) build it. The binary is built outside the
# image, on the host, because a multi-stage build would need a golang base
# image and none can be pulled here:
#
#   CGO_ENABLED=0 go build -trimpath -o bin/watchdog-static ./cmd/watchdog
#   docker build -t watchdog:dev .
#
# (scripts/compose-test.sh does both.) Flags can also be given as WATCHDOG_*
# environment variables; see deploy/docker-compose.yml for a three-node cluster.
FROM scratch
COPY bin/watchdog-static /watchdog
# Raft log, snapshots and the node's identity: mount a volume here.
VOLUME ["/data"]
ENV WATCHDOG_DATA_DIR=/data
# HTTP API, Raft (TCP), gossip (TCP and UDP).
EXPOSE 8080 8300 8301 8301/udp
ENTRYPOINT ["/watchdog", "agent"]
