package client

import (
	"context"
	"fmt"
	"time"
)

// minBeatTimeout is the least time a beat's ping is given.
const minBeatTimeout = 2 * time.Second

// Beat pings id in the background, at once and then every interval, until
// ctx ends. It returns at once, with a channel that is closed when the
// background goroutine has stopped.
//
// A ping that fails is reported to onError (when not nil), from the
// background goroutine, and the next beat goes on as usual. Each ping,
// retries included, may take one interval but at least two seconds (a
// leader election takes about one). Pings are sent one after the other, so
// a slow cluster never piles them up: the beats that fall due while one
// runs become a single beat. The end of ctx is not an error. A bad id or a
// non-positive interval is reported once and nothing is sent. onError
// should return quickly, since the next beat waits for it; Beat itself
// never blocks its caller and never panics.
func (c *Client) Beat(ctx context.Context, id string, interval time.Duration, onError func(error)) <-chan struct{} {
	done := make(chan struct{})
	report := func(err error) {
		if onError != nil && err != nil {
			onError(err)
		}
	}
	var bad error
	switch {
	case checkID(id) != nil:
		bad = checkID(id)
	case interval <= 0:
		bad = fmt.Errorf("watchdog: beat %q: interval %v is not positive", id, interval)
	}
	go func() {
		defer close(done)
		if bad != nil {
			report(bad)
			return
		}
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			pctx, cancel := context.WithTimeout(ctx, max(interval, minBeatTimeout))
			err := c.Ping(pctx, id)
			cancel()
			if err != nil && ctx.Err() == nil {
				report(fmt.Errorf("watchdog: beat %q: %w", id, err))
			}
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
	return done
}
