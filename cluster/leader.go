package cluster

import (
	"context"
	"sync"
	"time"
)

// monitorLeadership starts the leader loop when this node gains leadership
// and stops it, waiting for it to finish, when leadership is lost. Raft
// blocks on NotifyCh, so this loop does nothing slow itself and the channel
// is buffered.
func (n *Node) monitorLeadership(ctx context.Context) {
	var (
		cancel context.CancelFunc
		wg     sync.WaitGroup
	)
	halt := func() {
		if cancel != nil {
			cancel()
			wg.Wait()
			cancel = nil
		}
	}
	defer halt()
	start := func() {
		lctx, stop := context.WithCancel(ctx)
		cancel = stop
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.leaderLoop(lctx)
		}()
	}
	// held: a restore is replacing the state (restore.go); the duties
	// wait for it to finish, then start over on the new state.
	var leading, held bool
	for {
		select {
		case isLeader := <-n.notifyCh:
			// A repeated true (lost and regained in between) restarts the
			// loop too, so duties never run on a stale view.
			halt()
			leading = isLeader
			if leading && !held {
				start()
			}
		case ack := <-n.holdCh:
			halt()
			held = true
			n.log.Info("leader's duties paused while a backup is restored", "node", n.cfg.NodeID)
			close(ack)
		case <-n.resumeCh:
			held = false
			if leading && cancel == nil {
				start()
			}
		case <-ctx.Done():
			return
		}
	}
}

// leaderLoop waits until the FSM has applied everything earlier leaders
// committed (a Barrier), then runs the leader's duties until ctx ends.
func (n *Node) leaderLoop(ctx context.Context) {
	since := time.Now()
	for {
		err := n.raft.Barrier(n.cfg.ApplyTimeout).Error()
		if err == nil {
			break
		}
		n.log.Warn("barrier failed, retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Everything earlier leaders committed is applied: this term's time
	// can start after all of it.
	term := newLeaderTerm(n.terms.clock, n.fsm.Latest())
	n.terms.cur.Store(term)
	defer n.terms.cur.CompareAndSwap(term, nil)
	n.log.Info("leadership established", "node", n.cfg.NodeID)
	var wg sync.WaitGroup
	wg.Go(func() { n.stepAside(ctx) })
	wg.Add(1)
	go func() {
		defer wg.Done()
		if n.duty != nil {
			n.duty(ctx, term.since)
		}
	}()
	n.reconcileLoop(ctx, since)
	wg.Wait()
	// Leadership lost, the node stopping, or a restore replacing the state
	// (which says so itself): the duties end the same way for all three.
	n.log.Info("leader's duties stopped", "node", n.cfg.NodeID)
}

// reconcileLoop brings the Raft configuration in line with gossip on every
// membership event and periodically: in case an event was dropped, and
// because promotion and reaping wait on time passing and on status polls,
// which raise no event.
func (n *Node) reconcileLoop(ctx context.Context, since time.Time) {
	r := newReconciler(n, since)
	tick := time.NewTicker(min(n.cfg.ReconcileInterval, n.cfg.StatusInterval))
	defer tick.Stop()
	for {
		r.run(ctx)
		select {
		case <-ctx.Done():
			return
		case <-n.events:
		case <-tick.C:
		}
	}
}
