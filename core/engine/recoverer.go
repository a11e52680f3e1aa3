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
			// A failed sweep is retried next tick.
			if n, err := e.st.Reclaim(ctx, now); err == nil && n > 0 && e.cfg.Private {
				_ = e.Pump(ctx)
			}
		}
	}
}
