package engine

import (
	"context"
	"errors"
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// dispatch keeps a lane's free slots filled: while there is room it waits in
// the store for work; while there is none it waits for room.
func (e *Engine) dispatch(ctx context.Context, lane store.Lane) {
	for ctx.Err() == nil {
		e.mu.Lock()
		room := e.capacity[lane] > e.inflight[lane] && !e.paused
		wake := e.capWake
		e.mu.Unlock()
		if !room {
			select {
			case <-wake:
			case <-ctx.Done():
				return
			}
			continue
		}
		if _, err := e.reserve(ctx, lane, time.Second); err != nil {
			if errors.Is(err, store.ErrClosed) || ctx.Err() != nil {
				return
			}
			pause(ctx, 100*time.Millisecond)
		}
	}
}
