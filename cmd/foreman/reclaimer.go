package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// reclaimTimeout bounds one take-back call.
const reclaimTimeout = 5 * time.Second

// reclaimer takes back in the store the leases of workers known to be gone
// (their process exited, or their foreman vanished), so their work runs
// again at once instead of after the lease lapses. Each call runs on its
// own goroutine, bounded by reclaimTimeout; wait returns when all are done.
type reclaimer struct {
	st  store.Store
	log *slog.Logger
	wg  sync.WaitGroup
}

func (r *reclaimer) worker(inbox string) {
	if inbox == "" {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), reclaimTimeout)
		defer cancel()
		res, err := r.st.ReclaimWorker(ctx, inbox, time.Now())
		if err != nil {
			r.log.Warn("could not take back a gone worker's leases; they are taken back when they lapse",
				"inbox", inbox, "err", err)
			return
		}
		for _, l := range res.Lapsed {
			msg := fmt.Sprintf("took back %s %s from gone worker; queued again", l.Name, l.Ref)
			if l.Failed {
				msg = fmt.Sprintf("%s %s failed with WorkerLost: %d workers in a row died running it without progress", l.Name, l.Ref, l.Lapses)
			}
			r.log.Warn(msg, "inbox", inbox, "run", l.Ref.Unit, "step", l.Ref.Path)
		}
	}()
}

func (r *reclaimer) wait() { r.wg.Wait() }
