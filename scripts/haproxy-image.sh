#!/usr/bin/env bash
# Build the haproxy image of deploy/docker-compose.yml (its "haproxy"
# profile) without a registry: Debian's haproxy binary, the shared libraries
# ldd lists for it (with the dynamic loader) and deploy/haproxy-compose.cfg,
# copied into a FROM-scratch image. Usage: scripts/haproxy-image.sh [TAG]
# (default watchdog-haproxy:dev). Needs haproxy on the host (apt-get install
# haproxy; scripts/ci-deps.sh installs it).
set -euo pipefail
ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
TAG=${1:-watchdog-haproxy:dev}
die() { printf 'haproxy-image: %s\n' "$*" >&2; exit 1; }

HAPROXY=$(command -v haproxy) || die "no haproxy on this host (apt-get install haproxy)"
HAPROXY=$(readlink -f "$HAPROXY")
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT

mkdir -p "$ctx/rootfs/etc/haproxy"
# The binary and every library it loads, at the same paths (cp -L: the files
# behind Debian's symlinks), so the loader finds them in its default dirs.
libs=$(ldd "$HAPROXY" | grep -o '/[^ ]*') || die "ldd $HAPROXY found no libraries"
for f in "$HAPROXY" $libs; do
	mkdir -p "$ctx/rootfs$(dirname -- "$f")"
	cp -L "$f" "$ctx/rootfs$f"
done
cp "$ROOT/deploy/haproxy-compose.cfg" "$ctx/rootfs/etc/haproxy/haproxy.cfg"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
EXPOSE 8080
ENTRYPOINT ["$HAPROXY", "-db", "-f", "/etc/haproxy/haproxy.cfg"]
DOCKERFILE
docker build -q -t "$TAG" "$ctx" >/dev/null 2>&1 || docker build -t "$TAG" "$ctx"
# The configuration is valid inside the image: the libraries are all there.
docker run --rm "$TAG" -c >/dev/null || die "haproxy -c failed inside $TAG"
echo "haproxy-image: built $TAG"
