package fsm

// Schedules, zones and dependencies are fields of a Definition, which
// Define and Configure carry as JSON. A build that does not know them would
// decode such a command without them, silently: it would watch a scheduled
// service on no timeout at all and never suppress anything, and diverge.
// So a Define or Configure that uses them is written in format version 2
// of its kind, which such a build refuses to decode (Apply stops it
// loudly), and the leader proposes it only once every server advertises
// ProtocolSchedules (CommandProtocol). Without them, the same commands are
// written in version 1, as before, so a cluster that does not use them can
// still be downgraded. Snapshots do the same (snapshotVersion).

// scheduleFormat is the format version of Define and Configure entries
// that carry a schedule, zone or dependencies.
const scheduleFormat = 2

// formatVersion is the version c is written at: the oldest that can carry
// what it holds.
func formatVersion(c Command) byte {
	switch c := c.(type) {
	case Define:
		if c.Def.needsSchedules() {
			return scheduleFormat
		}
	case Configure:
		if c.needsSchedules() {
			return scheduleFormat
		}
	}
	return commandVersion
}

// needsSchedules reports whether d uses a field of ProtocolSchedules.
func (d *Definition) needsSchedules() bool {
	return d.Schedule != "" || d.TZ != "" || len(d.DependsOn) > 0
}

func (c *Configure) needsSchedules() bool {
	if c.Defaults.needsSchedules() {
		return true
	}
	for _, d := range c.Services {
		if d.needsSchedules() {
			return true
		}
	}
	return false
}
