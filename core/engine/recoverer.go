package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// recoverLapsed hands work whose lease lapsed (its worker died or stalled)
// back to the queue, and makes delayed retries ready when due. Every engine
// runs it; the store makes each move once, and the engine whose call made
// it logs it. It also ends the waits of an outage that lasts too long.
func (e *Engine) recoverLapsed(ctx context.Context) {
	t := time.NewTicker(e.cfg.ReclaimEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			e.checkOutage(now)
			// A failed sweep is retried next tick.
			r, err := e.st.Reclaim(ctx, now)
			if err != nil {
				continue
			}
			e.reportLapses(r)
			if r.Moved > 0 && e.cfg.Private {
				_ = e.Pump(ctx)
			}
		}
	}
}

// ReclaimWorker takes back at once what a worker known to be gone held,
// and logs it.
func (e *Engine) ReclaimWorker(ctx context.Context, worker string) (store.Reclaimed, error) {
	r, err := e.st.ReclaimWorker(ctx, worker, time.Now())
	if err != nil {
		return r, fmt.Errorf("reclaim leases of %s: %w", worker, err)
	}
	e.reportLapses(r)
	if r.Moved > 0 && e.cfg.Private {
		_ = e.Pump(ctx)
	}
	return r, nil
}

// reportLapses logs each lease the store took back.
func (e *Engine) reportLapses(r store.Reclaimed) {
	for _, l := range r.Lapsed {
		switch {
		case l.Failed:
			e.log.Error(fmt.Sprintf("%s %s failed with WorkerLost: its worker (%s) stopped renewing the lease %d times in a row while it made no progress",
				l.Name, l.Ref, l.Worker, l.Lapses), opAttrs(l.Ref)...)
		case l.Progress:
			e.log.Warn(fmt.Sprintf("lease of %s %s taken back from %s (gone or cut off); queued again (it had made progress, so this lapse does not count against it)",
				l.Name, l.Ref, l.Worker), opAttrs(l.Ref)...)
		default:
			e.log.Warn(fmt.Sprintf("lease of %s %s taken back from %s (gone or cut off); queued again (lapse %d in a row without progress)",
				l.Name, l.Ref, l.Worker, l.Lapses), opAttrs(l.Ref)...)
		}
	}
	if more := r.Moved - len(r.Lapsed); more > 0 && len(r.Lapsed) > 0 {
		e.log.Warn(fmt.Sprintf("and %d more leases or delayed retries moved", more))
	}
}
