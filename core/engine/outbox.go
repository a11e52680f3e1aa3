package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// OutboxTimeout is how long a submission, completion, watch or cancellation
// that could not reach the store (network trouble, a restarting Redis) is
// retried before the engine gives up on it: a submission or watch then fails
// for its waiter; a completion is dropped, and the operation runs again once
// its lease lapses; a cancellation is dropped.
const OutboxTimeout = 5 * time.Minute

type pendingSub struct {
	sub   Submit
	since time.Time
}

type pendingComp struct {
	comp  store.Completion
	since time.Time
}

type pendingWatch struct {
	watch WatchCmd
	since time.Time
}

type pendingCancel struct {
	cancel CancelCmd
	since  time.Time
}

// transient reports whether a store error may pass with time, as opposed to
// a verdict on the request itself.
func transient(err error) bool {
	if err == nil {
		return false
	}
	for _, permanent := range []error{store.ErrInvalid, store.ErrConflict, store.ErrNotFound,
		store.ErrUnknownInbox, store.ErrClosed, ErrClosed, context.Canceled} {
		if errors.Is(err, permanent) {
			return false
		}
	}
	return true
}

// queueSubs keeps submissions for the outbox loop. Caller holds mu.
func (e *Engine) queueSubs(subs []Submit, now time.Time) {
	for _, s := range subs {
		e.outSubs = append(e.outSubs, pendingSub{s, now})
	}
	e.wakeOutbox()
}

// queueComps keeps completions for the outbox loop. Caller holds mu.
func (e *Engine) queueComps(comps []store.Completion, now time.Time) {
	for _, c := range comps {
		e.outComps = append(e.outComps, pendingComp{c, now})
	}
	e.wakeOutbox()
}

// queueWatch keeps a watch for the outbox loop. Caller holds mu.
func (e *Engine) queueWatch(w WatchCmd, now time.Time) {
	e.outWatches = append(e.outWatches, pendingWatch{w, now})
	e.wakeOutbox()
}

// queueCancel keeps a cancellation for the outbox loop. Caller holds mu.
func (e *Engine) queueCancel(c CancelCmd, now time.Time) {
	e.outCancels = append(e.outCancels, pendingCancel{c, now})
	e.wakeOutbox()
}

func (e *Engine) wakeOutbox() {
	select {
	case e.outWake <- struct{}{}:
	default:
	}
}

// deliverOutbox retries what could not reach the store, with backoff, so a
// Redis restart delays work instead of losing it.
func (e *Engine) deliverOutbox(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.outWake:
		}
		for ctx.Err() == nil {
			e.mu.Lock()
			subs, comps := e.outSubs, e.outComps
			watches, cancels := e.outWatches, e.outCancels
			e.outSubs, e.outComps, e.outWatches, e.outCancels = nil, nil, nil, nil
			e.mu.Unlock()
			if len(subs) == 0 && len(comps) == 0 && len(watches) == 0 && len(cancels) == 0 {
				backoff = 50 * time.Millisecond
				break
			}
			ok := e.retryOutbox(ctx, subs, comps)
			if e.retryWatchesAndCancels(ctx, watches, cancels) && ok {
				backoff = 50 * time.Millisecond
				continue
			}
			pause(ctx, backoff)
			backoff = min(backoff*2, 2*time.Second)
		}
	}
}

// retryOutbox tries once; it requeues what is still transiently failing and
// reports whether everything went through.
func (e *Engine) retryOutbox(ctx context.Context, subs []pendingSub, comps []pendingComp) bool {
	now := time.Now()
	var keepComps []pendingComp
	if len(comps) > 0 {
		cs := make([]store.Completion, len(comps))
		for i, c := range comps {
			cs[i] = c.comp
		}
		if _, err := e.st.Complete(ctx, e.cfg.Inbox, cs); transient(err) {
			for _, c := range comps {
				if now.Sub(c.since) < OutboxTimeout {
					keepComps = append(keepComps, c)
				}
			}
		}
	}
	var keepSubs []pendingSub
	var failed []Event
	if len(subs) > 0 {
		ss := make([]store.Submission, len(subs))
		for i, s := range subs {
			ss[i] = s.sub.Submission
		}
		_, errs := e.st.Submit(ctx, ss)
		for i, err := range errs {
			switch {
			case err == nil:
			case transient(err) && now.Sub(subs[i].since) < OutboxTimeout:
				keepSubs = append(keepSubs, subs[i])
			case subs[i].sub.Token != 0:
				failed = append(failed, Event{Kind: EventResult, Token: subs[i].sub.Token, Note: store.Note{
					Kind: store.NoteFinished, Ref: ss[i].Ref, Status: store.StatusFailed,
					Error: &store.ErrorInfo{
						Type:    "blazing.errors.StoreUnavailable",
						Message: fmt.Sprintf("submit %s (%s): gave up after %s: %v", ss[i].Ref, ss[i].Name, now.Sub(subs[i].since).Round(time.Second), err),
					},
				}})
			}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range failed {
		e.dropToken(ev.Note.Ref, ev.Token)
	}
	e.push(failed...)
	e.outSubs = append(keepSubs, e.outSubs...)
	e.outComps = append(keepComps, e.outComps...)
	return len(keepSubs) == 0 && len(keepComps) == 0
}

// retryWatchesAndCancels tries each once, in order; it requeues what is
// still transiently failing and reports whether everything went through.
func (e *Engine) retryWatchesAndCancels(ctx context.Context, watches []pendingWatch, cancels []pendingCancel) bool {
	now := time.Now()
	var keepWatches []pendingWatch
	var failed []Event
	for _, w := range watches {
		err := e.Watch(ctx, w.watch.Ref, w.watch.Token)
		switch {
		case err == nil:
		case transient(err) && now.Sub(w.since) < OutboxTimeout:
			keepWatches = append(keepWatches, w)
		default:
			failed = append(failed, failedResult(w.watch.Token, w.watch.Ref,
				fmt.Errorf("gave up after %s: %w", now.Sub(w.since).Round(time.Second), err)))
		}
	}
	var keepCancels []pendingCancel
	for _, c := range cancels {
		_, err := e.Cancel(ctx, c.cancel.Unit, c.cancel.Path, c.cancel.Reason)
		if transient(err) && now.Sub(c.since) < OutboxTimeout {
			keepCancels = append(keepCancels, c)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.push(failed...)
	e.outWatches = append(keepWatches, e.outWatches...)
	e.outCancels = append(keepCancels, e.outCancels...)
	return len(keepWatches) == 0 && len(keepCancels) == 0
}
