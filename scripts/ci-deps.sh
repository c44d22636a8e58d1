#!/usr/bin/env bash
# Install the system tools the tests need, only those missing, with apt-get
# (Debian). Safe to run again: it does nothing when all are there.
#   haproxy  load balancer in the end-to-end test (scripts/e2e_test.go)
#   curl     used by scripts/cluster-up.sh
#   make     .ci/run drives the build through the Makefile
#   gcc      cgo, which "go test -race" needs
#   chromium the headless browser of the dashboard test (cmd/watchdog)
set -euo pipefail

declare -A PKG=([haproxy]=haproxy [curl]=curl [make]=make [gcc]="gcc libc6-dev" [chromium]=chromium)

missing=()
for cmd in haproxy curl make gcc chromium; do
	if ! command -v "$cmd" >/dev/null 2>&1; then
		read -r -a pkgs <<<"${PKG[$cmd]}"
		missing+=("${pkgs[@]}")
	fi
done

if ((${#missing[@]} == 0)); then
	echo "ci-deps: haproxy, curl, make, gcc and chromium are installed"
	exit 0
fi

echo "ci-deps: installing ${missing[*]}"
SUDO=()
if ((EUID != 0)); then
	command -v sudo >/dev/null 2>&1 || { echo "ci-deps: need root or sudo to install ${missing[*]}" >&2; exit 1; }
	SUDO=(sudo)
fi
command -v apt-get >/dev/null 2>&1 || { echo "ci-deps: no apt-get here; install ${missing[*]} by hand" >&2; exit 1; }

# Keep the package from starting a system-wide haproxy service: the tests run
# their own. policy-rc.d exit code 101 means "action forbidden".
cleanup=()
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
	printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
	"${SUDO[@]}" chmod 755 /usr/sbin/policy-rc.d
	cleanup=(rm -f /usr/sbin/policy-rc.d)
fi
trap '((${#cleanup[@]} == 0)) || "${SUDO[@]}" "${cleanup[@]}"' EXIT

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

for cmd in haproxy curl make gcc chromium; do
	command -v "$cmd" >/dev/null 2>&1 || { echo "ci-deps: $cmd still missing after install" >&2; exit 1; }
done
echo "ci-deps: done"
