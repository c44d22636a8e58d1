package fsm

// Rolling upgrades. A node advertises (in gossip) the protocol version of
// the build it runs: the set of command kinds, and formats of them, it can
// apply. The leader proposes a kind only once every server of the Raft
// configuration advertises a protocol at or above the one that introduced
// the kind (see cluster.ErrProtocolNotAgreed), so a node running an older
// build never meets a kind it does not know while the cluster is mixed.
// Should it meet one all the same (a node downgraded, or restarted on an
// old binary after the new kind was committed), Apply stops it loudly
// unless the kind is Ignorable: diverging silently would be worse.
//
// ProtocolVersion, the version this build speaks, is set in protocol_base.go,
// or in protocol_next.go when built with -tags watchdog_nextproto (a build
// with one extra command kind, used to test mixed-version clusters).

// The protocols, each named for what it introduced. A release that adds
// kinds or formats takes the next number, which all it adds shares. Nodes
// advertise them in gossip: never renumber one.
const (
	// BaseProtocol is the protocol of the first release: every build knows
	// the kinds it introduced, so they are proposed without asking anyone.
	BaseProtocol = 1
	// WindowProtocol introduced maintenance windows (window.go).
	WindowProtocol = 2
	// ProtocolSchedules introduced Definition.Schedule, TZ and DependsOn
	// (and what Apply derives from them: runs, suppressed incidents),
	// written in a newer format of Define and Configure
	// (protocol_schedule.go). It came in the same release as windows.
	ProtocolSchedules = 2

	// releaseProtocol is the newest protocol above: the one the release
	// speaks (ProtocolVersion), the test build one more.
	releaseProtocol = 2
)

// KindTable is the table of command kinds, for a caller that asks it on
// every proposal (the leader's protocol gate): NewKindTable builds it once
// and the caller holds it, where MinProtocol and CommandProtocol build it on
// each call (about 800 bytes in 2 allocations).
type KindTable struct{ t kindTable }

// NewKindTable builds the table of this build's command kinds.
func NewKindTable() KindTable { return KindTable{t: commandKinds()} }

// MinProtocol is the protocol version that introduced kind k (its row in
// the table of kinds): every server must advertise at least this before the
// leader proposes k. A kind this build does not know gets a version above
// its own, so it is never proposed.
func MinProtocol(k Kind) int { return NewKindTable().MinProtocol(k) }

// MinProtocol is the package's MinProtocol, read from t.
func (t KindTable) MinProtocol(k Kind) int {
	if r, ok := t.t.lookup(k); ok {
		return r.protocol
	}
	return ProtocolVersion + 1
}

// CommandProtocol is the protocol every server must advertise before the
// leader proposes c: its kind's (MinProtocol), or more when c is written in
// a newer format of its kind because it carries fields that an older build
// would silently drop (see formatVersion). The leader's gate asks this, of
// the KindTable it holds.
func CommandProtocol(c Command) int { return NewKindTable().CommandProtocol(c) }

// CommandProtocol is the package's CommandProtocol, read from t.
func (t KindTable) CommandProtocol(c Command) int {
	p := t.MinProtocol(c.Kind())
	if formatVersion(c) >= scheduleFormat {
		p = max(p, ProtocolSchedules)
	}
	return p
}
