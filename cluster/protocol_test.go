package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/watchdog-ha/watchdog/fsm"
)

func TestProtocolShortfallRefusesWhileAnyServerIsBehindOrUnknown(t *testing.T) {
	servers := []raft.Server{
		{ID: "n1", Suffrage: raft.Voter},
		{ID: "n2", Suffrage: raft.Voter},
		{ID: "n3", Suffrage: raft.Nonvoter}, // a non-voter applies the log too
	}
	for _, tc := range []struct {
		name       string
		advertised map[raft.ServerID]int
		want       string // in the error; "" for no error
	}{
		{"all upgraded", map[raft.ServerID]int{"n1": 2, "n2": 2, "n3": 3}, ""},
		{"a non-voter behind", map[raft.ServerID]int{"n1": 2, "n2": 2, "n3": 1}, "server n3 advertises protocol 1"},
		{"a voter behind", map[raft.ServerID]int{"n1": 2, "n2": 1, "n3": 2}, "server n2 advertises protocol 1"},
		{"a voter unknown", map[raft.ServerID]int{"n1": 2, "n3": 2}, "gossip never saw server n2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := protocolShortfall(12, 2, servers, func(s raft.Server) int { return tc.advertised[s.ID] })
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "":
			case !errors.Is(err, ErrProtocolNotAgreed) || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("got %v, want ErrProtocolNotAgreed naming %q", err, tc.want)
			}
		})
	}
}

func TestLowestProtocolCountsTheOthersGossipShowsAlive(t *testing.T) {
	servers := []raft.Server{{ID: "n1"}, {ID: "n2"}, {ID: "n3"}}
	for _, tc := range []struct {
		name       string
		advertised map[raft.ServerID]int
		except     raft.ServerID
		want       int
	}{
		{"all upgraded", map[raft.ServerID]int{"n1": 2, "n2": 2, "n3": 2}, "n4", 2},
		{"one behind", map[raft.ServerID]int{"n1": 2, "n2": 1, "n3": 2}, "n4", 1},
		{"the one behind is the joining id", map[raft.ServerID]int{"n1": 2, "n2": 1, "n3": 2}, "n2", 2},
		{"an unknown one does not count", map[raft.ServerID]int{"n1": 2, "n3": 2}, "n4", 2},
		{"none known", nil, "n4", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := lowestProtocol(servers, tc.except, func(s raft.Server) int { return tc.advertised[s.ID] })
			if got != tc.want {
				t.Fatalf("lowest protocol %d, want %d", got, tc.want)
			}
		})
	}
}

// A Define carrying a schedule needs the schedules' protocol: while a
// server advertises the first protocol, which would drop the schedule, it
// is refused; the same Define without one is not.
func TestAScheduleWaitsForEveryServerToKnowIt(t *testing.T) {
	servers := []raft.Server{{ID: "n1"}, {ID: "n2"}, {ID: "n3"}}
	mixed := map[raft.ServerID]int{"n1": fsm.ProtocolSchedules, "n2": fsm.BaseProtocol, "n3": fsm.ProtocolSchedules}
	advertised := func(s raft.Server) int { return mixed[s.ID] }
	scheduled := fsm.Define{Service: "job", Def: fsm.Definition{Schedule: "@daily", Grace: time.Minute}}
	need := fsm.CommandProtocol(scheduled)
	if err := protocolShortfall(scheduled.Kind(), need, servers, advertised); !errors.Is(err, ErrProtocolNotAgreed) ||
		!strings.Contains(err.Error(), "server n2 advertises protocol 1") {
		t.Fatalf("a schedule with n2 on protocol 1: %v", err)
	}
	if plain := (fsm.Define{Service: "job", Def: fsm.Definition{Timeout: time.Minute}}); fsm.CommandProtocol(plain) != fsm.BaseProtocol {
		t.Fatalf("a plain Define needs protocol %d", fsm.CommandProtocol(plain))
	}
	mixed["n2"] = fsm.ProtocolSchedules
	if err := protocolShortfall(scheduled.Kind(), need, servers, advertised); err != nil {
		t.Fatalf("all upgraded: %v", err)
	}
}
