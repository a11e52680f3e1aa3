package engine

import (
	"context"
	"fmt"
	"time"
)

// DefaultTrimEvery is Config.TrimEvery's default.
const DefaultTrimEvery = 2 * time.Second

// trimRetention keeps the store within its bounds on finished runs (count,
// and memory for Redis): every TrimEvery it asks the store to trim, again
// at once while a call deleted something. Every engine runs it; the store
// deletes each run once.
func (e *Engine) trimRetention(ctx context.Context) {
	t := time.NewTicker(e.cfg.TrimEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for ctx.Err() == nil {
			r, err := e.st.Trim(ctx, time.Now())
			if err != nil || r.Runs == 0 {
				break
			}
			if r.Reason == "memory" {
				e.log.Warn(fmt.Sprintf("the store is close to its memory limit: deleted the %d oldest finished runs ahead of their retention", r.Runs))
			} else {
				e.log.Info(fmt.Sprintf("deleted the %d oldest finished runs: more were kept than the store's maximum", r.Runs))
			}
		}
	}
}
