# The watchdog image: the static binary and a CA bundle, nothing else (no
# shell, no libc),
# as release tools (goreleaser, ko) build it. The binary is built outside the
# image, on the host, because a multi-stage build would need a golang base
# image and none can be pulled here:
#
#   CGO_ENABLED=0 go build -trimpath -o bin/watchdog-static ./cmd/watchdog
#   cp /etc/ssl/certs/ca-certificates.crt bin/    # Debian's ca-certificates
#   docker build -t watchdog:dev .
#
# The CA bundle is the only other file: webhook, Slack, PagerDuty and SMTP
# STARTTLS actions verify their receivers' certificates against it.
#
# (scripts/compose-test.sh does all three.) Flags can also be given as WATCHDOG_*
# environment variables; see deploy/docker-compose.yml for a three-node cluster.
FROM scratch
COPY bin/watchdog-static /watchdog
COPY bin/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# The Raft log (wal/, or raft.db) and snapshots/: mount a volume here.
VOLUME ["/data"]
ENV WATCHDOG_DATA_DIR=/data
# HTTP API, Raft (TCP), gossip (TCP and UDP).
EXPOSE 8080 8300 8301 8301/udp
ENTRYPOINT ["/watchdog", "agent"]
