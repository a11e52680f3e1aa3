package engine

import (
	"context"
	"time"
)

// recoverLapsed hands work whose lease lapsed (its worker died or stalled) back to
// the queue, and makes delayed retries ready when due. Every engine runs it;
// the store makes each move once.
func (e *Engine) recoverLapsed(ctx context.Context) {
	t := time.NewTicker(e.cfg.ReclaimEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			_, _ = e.st.Reclaim(ctx, now) // a failed sweep is retried next tick
		}
	}
}
