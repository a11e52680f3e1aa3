package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// The outbox keeps what could not reach the store (network trouble, a
// restarting Redis, a Redis out of memory) and retries it with backoff, so
// an outage delays work instead of losing it:
//
//   - completions are retried until the store takes them or calls them
//     stale (the lease was taken over meanwhile): a result is never thrown
//     away while it may still count;
//   - submissions and watches are retried for up to OutageTimeout, keeping
//     their waiters; then their waiters get StoreUnavailable; a store out
//     of memory refuses a client's submission at once (StoreFull), while a
//     running workflow's calls wait here for memory (see kept);
//   - cancellations are retried for up to OutageTimeout;
//   - breadcrumbs are retried with them, at most maxOutboxCrumbs of them
//     (the oldest are dropped past that, with a log line: they are
//     observability, not work).
//
// Whatever the outbox gives up on is logged with the run and step it
// concerns; nothing leaves it silently.

type pendingSub struct {
	sub   Submit
	since time.Time
}

type pendingComp struct {
	comp  store.Completion
	name  string
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
// a verdict on the request itself. Out of memory passes once memory is
// freed.
func transient(err error) bool {
	if err == nil {
		return false
	}
	for _, permanent := range []error{store.ErrInvalid, store.ErrConflict, store.ErrNotFound,
		store.ErrUnknownInbox, store.ErrClosed, ErrClosed, ErrRunLost, context.Canceled} {
		if errors.Is(err, permanent) {
			return false
		}
	}
	return true
}

// kept reports whether a submission the store did not take goes to the
// outbox: the store is unreachable, or it is out of memory and the
// submission is a call inside a running workflow. A client's own
// submission is refused at once (StoreFull); a run already in flight waits
// for memory instead of failing over it.
func kept(sub store.Submission, err error) bool {
	return transient(err) && (!errors.Is(err, store.ErrFull) || sub.Parent != "")
}

// queueSubs keeps submissions for the outbox loop. Caller holds mu.
func (e *Engine) queueSubs(subs []Submit, now time.Time) {
	if len(subs) == 0 {
		return
	}
	for _, s := range subs {
		e.outSubs = append(e.outSubs, pendingSub{s, now})
		e.unsubmitted[s.Ref]++
	}
	e.wakeOutbox()
}

// submitted records that a submission is no longer on its way: the store
// took it, or it was given up on (or handed to the outbox, which counts it
// again). Caller holds mu.
func (e *Engine) submitted(ref store.Ref) {
	if e.unsubmitted[ref]--; e.unsubmitted[ref] <= 0 {
		delete(e.unsubmitted, ref)
	}
}

// queueComps keeps completions (and their operations' names, for the log)
// for the outbox loop. Caller holds mu.
func (e *Engine) queueComps(comps []store.Completion, names []string, now time.Time) {
	for i, c := range comps {
		e.outComps = append(e.outComps, pendingComp{c, names[i], now})
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

// maxOutboxCrumbs bounds the breadcrumbs kept while the store is away.
const maxOutboxCrumbs = 10_000

// AddBreadcrumbs records breadcrumbs in the store; those it cannot take for
// now are kept in the outbox (bounded), those it refuses are logged as lost.
func (e *Engine) AddBreadcrumbs(ctx context.Context, crumbs []store.Breadcrumb) {
	if len(crumbs) == 0 {
		return
	}
	err := e.st.AddBreadcrumbs(ctx, crumbs)
	switch {
	case err == nil:
	case transient(err) && !errors.Is(err, store.ErrFull):
		e.mu.Lock()
		e.queueCrumbs(crumbs)
		e.mu.Unlock()
		e.unreachable(time.Now(), fmt.Errorf("add %d breadcrumbs: %w", len(crumbs), err))
	default:
		e.log.Warn(fmt.Sprintf("%d breadcrumbs lost: the store refused them: %v", len(crumbs), err),
			opAttrs(crumbs[0].Ref)...)
	}
}

// queueCrumbs keeps breadcrumbs for the outbox loop, dropping the oldest
// past maxOutboxCrumbs. Caller holds mu.
func (e *Engine) queueCrumbs(crumbs []store.Breadcrumb) {
	e.outCrumbs = append(e.outCrumbs, crumbs...)
	if over := len(e.outCrumbs) - maxOutboxCrumbs; over > 0 {
		e.outCrumbs = append([]store.Breadcrumb(nil), e.outCrumbs[over:]...)
		e.crumbsLost += over
	}
	e.wakeOutbox()
}

// retryCrumbs tries the kept breadcrumbs once; it reports whether they went.
func (e *Engine) retryCrumbs(ctx context.Context) bool {
	e.mu.Lock()
	crumbs, lost := e.outCrumbs, e.crumbsLost
	e.outCrumbs, e.crumbsLost = nil, 0
	e.mu.Unlock()
	if lost > 0 {
		e.log.Warn(fmt.Sprintf("%d breadcrumbs lost: the store was away and more were kept than the outbox holds", lost))
	}
	if len(crumbs) == 0 {
		return true
	}
	err := e.st.AddBreadcrumbs(ctx, crumbs)
	switch {
	case err == nil:
		return true
	case transient(err) && !errors.Is(err, store.ErrFull):
		e.mu.Lock()
		e.outCrumbs = append(crumbs, e.outCrumbs...)
		e.mu.Unlock()
		return false
	}
	e.log.Warn(fmt.Sprintf("%d breadcrumbs lost: the store refused them: %v", len(crumbs), err))
	return true
}

func (e *Engine) wakeOutbox() {
	select {
	case e.outWake <- struct{}{}:
	default:
	}
}

// deliverOutbox retries what could not reach the store, with backoff.
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
			crumbs := len(e.outCrumbs) + e.crumbsLost
			e.outSubs, e.outComps, e.outWatches, e.outCancels = nil, nil, nil, nil
			e.mu.Unlock()
			if len(subs) == 0 && len(comps) == 0 && len(watches) == 0 && len(cancels) == 0 && crumbs == 0 {
				backoff = 50 * time.Millisecond
				break
			}
			ok := e.retryComps(ctx, comps)
			ok = e.retrySubs(ctx, subs) && ok
			ok = e.retryWatchesAndCancels(ctx, watches, cancels) && ok
			ok = e.retryCrumbs(ctx) && ok
			if ok {
				e.reachable()
				backoff = 50 * time.Millisecond
				continue
			}
			pause(ctx, backoff)
			backoff = min(backoff*2, 2*time.Second)
		}
	}
}

// retryComps tries the completions once; it keeps those still failing for
// want of the store and reports whether all went through.
func (e *Engine) retryComps(ctx context.Context, comps []pendingComp) bool {
	if len(comps) == 0 {
		return true
	}
	cs := make([]store.Completion, len(comps))
	names := make([]string, len(comps))
	for i, c := range comps {
		cs[i], names[i] = c.comp, c.name
	}
	outs, err := e.st.Complete(ctx, e.cfg.Inbox, cs)
	switch {
	case err == nil:
		e.reportStale(cs, names, outs)
		return true
	case transient(err):
		e.mu.Lock()
		e.outComps = append(comps, e.outComps...)
		e.mu.Unlock()
		e.unreachable(time.Now(), fmt.Errorf("complete %d operations: %w", len(cs), err))
		return false
	}
	for _, c := range comps {
		e.log.Error(fmt.Sprintf("result of %s %s dropped: the store refused it: %v; the operation runs again once its lease lapses",
			c.name, c.comp.Ref, err), opAttrs(c.comp.Ref)...)
	}
	return true
}

// retrySubs tries the submissions once; it keeps those still failing for
// want of the store (up to OutageTimeout) and reports whether all went
// through. Those refused or given up on fail their waiters.
func (e *Engine) retrySubs(ctx context.Context, subs []pendingSub) bool {
	if len(subs) == 0 {
		return true
	}
	now := time.Now()
	ss := make([]store.Submission, len(subs))
	for i, s := range subs {
		ss[i] = s.sub.Submission
	}
	_, errs := e.st.Submit(ctx, ss)
	var keep []pendingSub
	var failed []Event
	var away error
	var done []store.Ref
	for i, err := range errs {
		sub := ss[i]
		waited := now.Sub(subs[i].since).Round(time.Second)
		switch {
		case err == nil:
			done = append(done, sub.Ref)
			continue
		case kept(sub, err) && now.Sub(subs[i].since) < e.cfg.OutageTimeout:
			keep = append(keep, subs[i])
			if !errors.Is(err, store.ErrFull) {
				away = err
			}
			continue
		case kept(sub, err):
			err = fmt.Errorf("submit %s (%s): gave up after %s: %w", sub.Ref, sub.Name, waited, err)
		default:
			err = submitError(sub, err)
		}
		e.log.Error(fmt.Sprintf("submission of %s %s failed: %v", sub.Name, sub.Ref, err), opAttrs(sub.Ref)...)
		done = append(done, sub.Ref)
		if tok := subs[i].sub.Token; tok != 0 {
			failed = append(failed, failedEvent(tok, sub.Ref, errorType(err), err.Error()))
		}
	}
	e.mu.Lock()
	for _, ref := range done {
		e.submitted(ref)
	}
	for _, ev := range failed {
		e.dropToken(ev.Note.Ref, ev.Token)
	}
	e.push(failed...)
	e.outSubs = append(keep, e.outSubs...)
	e.mu.Unlock()
	if away != nil {
		e.unreachable(now, fmt.Errorf("submit %d operations: %w", len(keep), away))
	}
	return len(keep) == 0
}

// retryWatchesAndCancels tries each once, in order; it keeps what still
// fails for want of the store (up to OutageTimeout) and reports whether
// everything went through.
func (e *Engine) retryWatchesAndCancels(ctx context.Context, watches []pendingWatch, cancels []pendingCancel) bool {
	now := time.Now()
	var keepWatches []pendingWatch
	var failed []Event
	for _, w := range watches {
		err := e.Watch(ctx, w.watch.Ref, w.watch.Token)
		switch {
		case err == nil:
		case transient(err) && now.Sub(w.since) < e.cfg.OutageTimeout:
			keepWatches = append(keepWatches, w)
		default:
			if transient(err) {
				err = fmt.Errorf("gave up after %s: %w", now.Sub(w.since).Round(time.Second), err)
			}
			e.log.Error(fmt.Sprintf("watch of %s failed: %v", w.watch.Ref, err), opAttrs(w.watch.Ref)...)
			failed = append(failed, failedResult(w.watch.Token, w.watch.Ref, err))
		}
	}
	var keepCancels []pendingCancel
	for _, c := range cancels {
		_, err := e.Cancel(ctx, c.cancel.Unit, c.cancel.Path, c.cancel.Reason)
		switch {
		case err == nil, errors.Is(err, store.ErrNotFound):
			// Cancelling what has gone (finished and expired) changes nothing.
		case transient(err) && now.Sub(c.since) < e.cfg.OutageTimeout:
			keepCancels = append(keepCancels, c)
		default:
			ref := store.Ref{Unit: c.cancel.Unit, Path: c.cancel.Path}
			e.log.Error(fmt.Sprintf("cancellation of %s/%s (%s) dropped: %v", c.cancel.Unit, c.cancel.Path, c.cancel.Reason, err),
				opAttrs(ref)...)
		}
	}
	e.mu.Lock()
	e.push(failed...)
	e.outWatches = append(keepWatches, e.outWatches...)
	e.outCancels = append(keepCancels, e.outCancels...)
	e.mu.Unlock()
	return len(keepWatches) == 0 && len(keepCancels) == 0
}

// outboxLeft describes what is still in the outbox, for Close to report.
// Caller holds mu.
func (e *Engine) outboxLeft() error {
	var errs []error
	for _, c := range e.outComps {
		errs = append(errs, fmt.Errorf("the result of %s %s never reached the store (it runs again once its lease lapses)", c.name, c.comp.Ref))
	}
	for _, s := range e.outSubs {
		errs = append(errs, fmt.Errorf("the submission of %s %s never reached the store", s.sub.Name, s.sub.Ref))
	}
	for _, w := range e.outWatches {
		errs = append(errs, fmt.Errorf("the watch of %s never reached the store", w.watch.Ref))
	}
	for _, c := range e.outCancels {
		errs = append(errs, fmt.Errorf("the cancellation of %s/%s never reached the store", c.cancel.Unit, c.cancel.Path))
	}
	if n := len(e.outCrumbs) + e.crumbsLost; n > 0 {
		errs = append(errs, fmt.Errorf("%d breadcrumbs never reached the store", n))
	}
	return errors.Join(errs...)
}
