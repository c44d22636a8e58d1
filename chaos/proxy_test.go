package chaos

// A TCP proxy that delays what it carries: the stand-in for `tc netem delay`,
// which this kernel lacks (no sch_netem). Every Raft connection between two
// nodes goes through one for the whole run, at no delay until a scenario
// sets one:
//
//	node A ──(DNAT in A's namespace: B:8300 → B:84xx)──▶ proxy, listening in
//	B's namespace on B:84xx ──(from the host, over the bridge)──▶ B:8300
//
// The first leg is A's own packets to B's address, so the fault rules on
// the A–B link (isolation, loss) apply to it as to any traffic between
// them. The delay applies to Raft only: gossip and the HTTP forwarding of
// heartbeats between nodes are not delayed.

import (
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

type delayProxy struct {
	ln     net.Listener
	target string
	delay  atomic.Int64 // each way, in nanoseconds
	// jitter adds up to this much more to each read, at random; a read is
	// never sent before the one before it on its connection, so the bytes
	// of one connection stay in order while the messages of different
	// connections (Raft's heartbeats, appends, votes) overtake each other.
	jitter atomic.Int64
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newDelayProxy(ln net.Listener, target string) *delayProxy {
	p := &delayProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p
}

func (p *delayProxy) setDelay(d time.Duration) { p.delay.Store(int64(d)) }

func (p *delayProxy) setJitter(d time.Duration) { p.jitter.Store(int64(d)) }

// due is when a read that arrives now may be sent on, after the one before
// it (last) on the same connection.
func (p *delayProxy) due(last time.Time) time.Time {
	d := time.Duration(p.delay.Load())
	if j := p.jitter.Load(); j > 0 {
		d += time.Duration(rand.Int64N(j))
	}
	return maxTime(time.Now().Add(d), last)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (p *delayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *delayProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *delayProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.carry(c)
		}()
	}
}

// carry relays one connection until either side ends it, then ends both:
// Raft needs no half-close, and a dead peer must show as a dead connection.
func (p *delayProxy) carry(down net.Conn) {
	if !p.track(down) {
		return
	}
	defer p.untrack(down)
	up, err := net.DialTimeout("tcp4", p.target, 2*time.Second)
	if err != nil {
		return
	}
	if !p.track(up) {
		return
	}
	defer p.untrack(up)
	done := make(chan struct{}, 2)
	go func() { p.pipe(up, down); done <- struct{}{} }()
	go func() { p.pipe(down, up); done <- struct{}{} }()
	<-done
	down.Close()
	up.Close()
	<-done
}

type chunk struct {
	b   []byte
	due time.Time
}

// pipe copies src to dst, each read held back by the delay (and jitter) in
// force when it arrived; order is kept.
func (p *delayProxy) pipe(dst, src net.Conn) {
	q := make(chan chunk, 1024)
	stop := make(chan struct{})
	go func() {
		defer close(q)
		var last time.Time
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				last = p.due(last)
				select {
				case q <- chunk{buf[:n], last}:
				case <-stop:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer close(stop)
	for c := range q {
		if d := time.Until(c.due); d > 0 {
			time.Sleep(d)
		}
		if _, err := dst.Write(c.b); err != nil {
			src.Close() // unblocks the reader
			return
		}
	}
	dst.Close()
}

func (p *delayProxy) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}
