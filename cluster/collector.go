package cluster

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the node's metrics: its counters, and Raft and gossip
// state read at scrape time (so nothing is kept up to date between scrapes).
// Register it in the registry that serves this node's /metrics.
func (n *Node) Collector() prometheus.Collector {
	return &nodeCollector{n: n, counters: append(n.metrics.collectors(), n.storage.errors),
		isLeader:      desc("watchdog_is_leader", "1 if this node is the Raft leader, else 0."),
		term:          desc("watchdog_raft_term", "This node's current Raft term."),
		commitIndex:   desc("watchdog_raft_commit_index", "Index of the last Raft entry this node knows to be committed."),
		appliedIndex:  desc("watchdog_raft_applied_index", "Index of the last Raft entry handed to this node's state machine."),
		lastContact:   desc("watchdog_raft_last_contact_seconds", "Seconds since this follower last heard from the leader; 0 on the leader, absent before any contact."),
		gossipMembers: desc("watchdog_gossip_members", "Gossip members this node knows of, by state.", "state"),
		storageHealthy: desc("watchdog_storage_healthy",
			"1 while this node's writes to its data dir succeed; 0 from a failed write of the Raft log (wal/ or raft.db: a full disk, an I/O error) until entries are written again."),
	}
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

type nodeCollector struct {
	n        *Node
	counters []prometheus.Collector

	isLeader, term, commitIndex, appliedIndex, lastContact, gossipMembers, storageHealthy *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.counters {
		m.Describe(ch)
	}
	for _, d := range []*prometheus.Desc{c.isLeader, c.term, c.commitIndex, c.appliedIndex, c.lastContact, c.gossipMembers, c.storageHealthy} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.counters {
		m.Collect(ch)
	}
	rs := c.n.RaftStatus()
	ch <- prometheus.MustNewConstMetric(c.isLeader, prometheus.GaugeValue, boolValue(rs.Leading()))
	ch <- prometheus.MustNewConstMetric(c.term, prometheus.GaugeValue, float64(rs.Term))
	ch <- prometheus.MustNewConstMetric(c.commitIndex, prometheus.GaugeValue, float64(rs.CommitIndex))
	ch <- prometheus.MustNewConstMetric(c.appliedIndex, prometheus.GaugeValue, float64(rs.AppliedIndex))
	if rs.LastContact >= 0 { // 0 on the leader; absent before any contact
		ch <- prometheus.MustNewConstMetric(c.lastContact, prometheus.GaugeValue, rs.LastContact.Seconds())
	}
	var alive, dead int
	for _, m := range c.n.gossipMembers() {
		if m.Alive {
			alive++
		} else {
			dead++
		}
	}
	ch <- prometheus.MustNewConstMetric(c.gossipMembers, prometheus.GaugeValue, float64(alive), "alive")
	ch <- prometheus.MustNewConstMetric(c.gossipMembers, prometheus.GaugeValue, float64(dead), "dead")
	ch <- prometheus.MustNewConstMetric(c.storageHealthy, prometheus.GaugeValue, boolValue(c.n.storage.err() == nil))
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
