package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestQuorumNeedsAMajorityOfTheVotersLeft(t *testing.T) {
	for _, tc := range []struct {
		q  quorum
		ok bool
	}{
		{quorum{remaining: 2, reachable: 2}, true},
		{quorum{remaining: 2, reachable: 1}, false}, // 3 voters, one dead, one leaving
		{quorum{remaining: 4, reachable: 3}, true},
		{quorum{remaining: 4, reachable: 2}, false},
		{quorum{remaining: 1, reachable: 1}, true},
		{quorum{remaining: 0, reachable: 0}, false}, // the last voter
	} {
		if got := tc.q.ok(); got != tc.ok {
			t.Errorf("%+v.ok() = %v, want %v", tc.q, got, tc.ok)
		}
	}
	err := refuseBelowQuorum("removing n2", quorum{remaining: 2, reachable: 1})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "2 voter(s) of which 1 answer, and committing needs 2") {
		t.Errorf("refusal: %v", err)
	}
	if err := refuseBelowQuorum("n1 leaving", quorum{}); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "no voter") {
		t.Errorf("refusal of the last voter: %v", err)
	}
}

func TestReadinessFailsWhenOutOfContactOrTooFarBehind(t *testing.T) {
	const maxContact, maxLag = 2 * time.Second, 1000
	for _, tc := range []struct {
		name            string
		contact         time.Duration
		applied, commit uint64
		want            string // "" for ready
	}{
		{"caught up", 100 * time.Millisecond, 5000, 5000, ""},
		{"within the lag", 0, 4000, 5000, ""},
		{"too far behind the leader", 0, 3999, 5000, "catching up: applied 3999 of 5000"},
		{"out of contact", 3 * time.Second, 5000, 5000, "last contact with the leader 3s ago"},
	} {
		err := readiness(tc.contact, maxContact, tc.applied, tc.commit, maxLag)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: not ready: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}
