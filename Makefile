GO ?= go

.PHONY: build test vet chaos chaos-random fuzz cluster cluster-down bench tidy-check compose soak

build:
	$(GO) build -o bin/watchdog ./cmd/watchdog

test:
	$(GO) test -race -count=1 -timeout 15m ./...

# The fault-injection suite (chaos/): three real nodes in network namespaces,
# partitions, pauses, crashes, restarts, a wiped disk, lossy and slow links,
# wall clocks stepped and skewed, and the recorded history checked. Needs root; about two minutes. Not under
# -race: the nodes are separate processes.
chaos:
	WATCHDOG_CHAOS=1 $(GO) test -count=1 -timeout 10m -v ./chaos/

# A soak (cmd/watchdog/soak_test.go): three node processes under a steady
# heartbeat load, services going silent and recovering, the leader killed
# with SIGKILL and restarted every minute, a backup every few minutes; every
# node's memory, goroutines, open files and data dir sampled, and the run
# failed if any keeps growing. SOAK (default 15m) is how long; it stops by
# itself. WATCHDOG_TOKEN, when set, goes with its requests.
SOAK ?= 15m
soak:
	WATCHDOG_SOAK=$(SOAK) $(GO) test -count=1 -timeout 6h -run '^TestSoak$$' -v ./cmd/watchdog/

# Random fault schedules on the same lab (chaos/random_test.go): SCHEDULES
# (default 10) schedules of about 25 s each, drawn from SEED (default random,
# printed); a failing one prints the command that replays it (SEED, SKIP,
# SCHEDULES=1). Ends with `chaos-random: N schedules, V violations, seed S`.
# Needs root.
SCHEDULES ?= 10
SEED ?=
SKIP ?= 0
V ?=
chaos-random:
	GO=$(GO) SCHEDULES=$(SCHEDULES) SEED=$(SEED) SKIP=$(SKIP) V=$(V) scripts/chaos-random.sh

# Every fuzz target for a bounded time (FUZZTIME, default 20s each), one
# after the other; stops at the first crasher and names its file, which
# go test then runs as a test case (scripts/fuzz.sh).
fuzz:
	GO=$(GO) scripts/fuzz.sh

vet:
	$(GO) vet ./...
	$(GO) vet -tags watchdog_testclock ./cmd/watchdog # the test build chaos/ runs
	$(GO) vet -tags watchdog_nextproto ./... # the next-protocol build of the upgrade test
	@out="$$(gofmt -l .)"; \
	if [ -n "$$out" ]; then \
		echo "gofmt -l: these files need gofmt -w:"; echo "$$out"; exit 1; \
	fi

# deploy/docker-compose.yml on the local Docker engine: the FROM-scratch
# image, three node containers, heartbeats through each, the leader's
# container stopped (scripts/compose-test.sh). About 40 s.
compose:
	GO=$(GO) scripts/compose-test.sh

cluster:
	scripts/cluster-up.sh

cluster-down:
	scripts/cluster-down.sh

# Go benchmarks (per heartbeat, per service), then the real-process figures
# of the cluster against three no-op HTTP servers (scripts/bench.sh), whose
# table is also saved in docs/benchmarks.md.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3s ./...
	scripts/bench.sh

tidy-check:
	$(GO) mod tidy -diff
