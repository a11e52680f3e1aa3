package engine

import (
	"context"
	"errors"
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// listen waits on this process's inbox and turns notes into events, so that
// results reach an idle process without anyone polling.
func (e *Engine) listen(ctx context.Context) {
	for ctx.Err() == nil {
		if err := e.takeNotes(ctx, time.Second); err != nil {
			if errors.Is(err, store.ErrClosed) || ctx.Err() != nil {
				return
			}
			pause(ctx, 100*time.Millisecond) // store trouble: do not spin
		}
	}
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
