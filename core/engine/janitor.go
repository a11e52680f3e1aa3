package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// DefaultJanitorEvery is Config.JanitorEvery's default.
const DefaultJanitorEvery = time.Minute

// janitor looks, every JanitorEvery, for what no single failure should
// leave behind but a bug might, and mends it, logging each repair:
//
//   - in the store (store.Repair): leases with no live holder, queue
//     entries of operations that are not queued, notes for an inbox nobody
//     reads, counters behind what they handed out;
//   - in this engine: waiters still waiting on an operation that finished
//     long ago (its note never came) are told, waiters of an operation the
//     store no longer has are failed with RunLost, and every long wait is
//     registered with the store again (a lost waiter entry is restored).
func (e *Engine) janitor(ctx context.Context) {
	t := time.NewTicker(e.cfg.JanitorEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			e.repairStore(ctx, now)
			e.repairWaits(ctx, now)
		}
	}
}

func (e *Engine) repairStore(ctx context.Context, now time.Time) {
	repairs, err := e.st.Repair(ctx, now)
	for _, r := range repairs {
		if r.Ref.Unit != "" {
			e.log.Warn(fmt.Sprintf("janitor repaired %s: %s", r.Kind, r.Detail), opAttrs(r.Ref)...)
		} else {
			e.log.Warn(fmt.Sprintf("janitor repaired %s: %s", r.Kind, r.Detail))
		}
	}
	if err != nil && ctx.Err() == nil {
		e.log.Info(fmt.Sprintf("janitor: store check incomplete: %v", err))
	}
}

// noteGrace is how long after an operation finished its note may still be
// on its way (or half a janitor period, if shorter); a waiter that has not
// heard by then missed it.
const noteGrace = 10 * time.Second

// repairWaits checks the waits older than one janitor period.
func (e *Engine) repairWaits(ctx context.Context, now time.Time) {
	e.mu.Lock()
	var old []store.Ref
	for ref, since := range e.awaited {
		if now.Sub(since) >= e.cfg.JanitorEvery && e.unsubmitted[ref] == 0 {
			old = append(old, ref)
		}
	}
	e.mu.Unlock()
	for _, ref := range old {
		if ctx.Err() != nil {
			return
		}
		op, err := e.st.Get(ctx, ref)
		switch {
		case errors.Is(err, store.ErrNotFound):
			e.mu.Lock()
			n := e.failWaiters(ref, typeRunLost, lostMessage(ref))
			e.mu.Unlock()
			if n > 0 {
				e.log.Error("janitor: "+lostMessage(ref)+"; its waiters were told", opAttrs(ref)...)
			}
			continue
		case err != nil:
			return // the store is away: the outage logic handles waits meanwhile
		case op.Status.Finished() && now.Sub(op.FinishedAt) > min(noteGrace, e.cfg.JanitorEvery/2):
			e.log.Warn(fmt.Sprintf("janitor repaired missed-note: %s %s finished %s at %s but its waiters here were never told; asking for the note again",
				op.Name, ref, op.Status, op.FinishedAt.Format(time.RFC3339)), opAttrs(ref)...)
		}
		// Watching again delivers the note of a finished operation and
		// restores a waiter entry the store may have lost; it changes
		// nothing when all is well.
		if err := e.st.Watch(ctx, ref, e.cfg.Inbox); err != nil && !errors.Is(err, store.ErrNotFound) {
			return
		}
	}
}
