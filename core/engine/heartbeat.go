package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// heartbeat renews the leases this process holds. An operation whose lease
// was lost (reclaimed after a stall, cancelled) is stopped here, because it
// is running or about to run somewhere else.
func (e *Engine) heartbeat(ctx context.Context) {
	t := time.NewTicker(e.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.mu.Lock()
		leases := make(map[store.Ref]uint64, len(e.held))
		for ref, h := range e.held {
			leases[ref] = h.lease
		}
		e.mu.Unlock()
		if len(leases) == 0 {
			continue
		}
		lost, err := e.st.Renew(ctx, e.cfg.Inbox, leases, e.cfg.Lease)
		if err != nil {
			// The next beat tries again; leases outlast several beats.
			if transient(err) {
				e.unreachable(time.Now(), fmt.Errorf("renew %d leases: %w", len(leases), err))
			}
			continue
		}
		var gone []heldOp
		var goneRefs []store.Ref
		e.mu.Lock()
		for _, ref := range lost {
			if h, ok := e.held[ref]; ok && h.lease == leases[ref] {
				e.unhold(ref)
				if len(e.lost) > 4096 {
					clear(e.lost) // only steps that never return leave entries; keep it bounded
				}
				e.lost[ref] = h
				gone, goneRefs = append(gone, h), append(goneRefs, ref)
				e.push(Event{Kind: EventCancel, Note: store.Note{
					Kind: store.NoteCancel, Ref: ref, LeaseID: h.lease,
					Error: &store.ErrorInfo{Type: "blazing.errors.LeaseLost", Message: "lease lost: " + ref.String() + " was reclaimed"},
				}})
			}
		}
		e.mu.Unlock()
		for i, h := range gone {
			e.log.Warn(fmt.Sprintf("lease of %s %s (attempt %d) lost: it was not renewed in time and another worker may run it now, or it was cancelled; stopping it here (a blocking step runs on to its end), and its result will be refused",
				h.name, goneRefs[i], h.attempt), opAttrs(goneRefs[i])...)
		}
	}
}
