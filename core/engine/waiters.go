package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// Every wait ends. A local waiter (a token) is told when its operation
// finishes; and also, with a typed error, when that can no longer happen:
//
//   - the store no longer has the operation (a Redis restarted without its
//     data, or the run expired): RunLost, found when the waiter is watched
//     again after an outage or by the janitor;
//   - the store has been unreachable for longer than OutageTimeout:
//     StoreUnavailable (the run may still finish; a new handle waits again);
//   - its submission or watch was refused: the refusal's own type.

// Error types the engine reports to waiters (Python class paths).
const (
	typeRunLost          = "blazing.errors.RunLost"
	typeStoreUnavailable = "blazing.errors.StoreUnavailable"
	typeStoreFull        = "blazing.errors.StoreFull"
	typeRunNotFound      = "blazing.errors.RunNotFound"
	typeNativeError      = "blazing.errors.NativeError"
)

// ErrRunLost marks an error about a run the store no longer has.
var ErrRunLost = errors.New("run lost")

// DefaultOutageTimeout is Config.OutageTimeout's default.
const DefaultOutageTimeout = 5 * time.Minute

// addToken registers a waiter for ref. Caller holds mu.
func (e *Engine) addToken(ref store.Ref, tok uint64, now time.Time) {
	if _, ok := e.tokens[ref]; !ok {
		e.awaited[ref] = now
	}
	e.tokens[ref] = append(e.tokens[ref], tok)
}

// dropToken forgets one waiter of ref. Caller holds mu.
func (e *Engine) dropToken(ref store.Ref, tok uint64) {
	ts := e.tokens[ref]
	for i, t := range ts {
		if t == tok {
			ts = append(ts[:i], ts[i+1:]...)
			break
		}
	}
	if len(ts) == 0 {
		delete(e.tokens, ref)
		delete(e.awaited, ref)
	} else {
		e.tokens[ref] = ts
	}
}

// takeTokens forgets and returns every waiter of ref. Caller holds mu.
func (e *Engine) takeTokens(ref store.Ref) []uint64 {
	ts := e.tokens[ref]
	delete(e.tokens, ref)
	delete(e.awaited, ref)
	return ts
}

// failWaiters tells every waiter of ref that it ended with an error of the
// given type. Caller holds mu.
func (e *Engine) failWaiters(ref store.Ref, typ, msg string) int {
	ts := e.takeTokens(ref)
	for _, t := range ts {
		e.push(failedEvent(t, ref, typ, msg))
	}
	return len(ts)
}

// failedEvent is the result event of a wait that ended in an error.
func failedEvent(token uint64, ref store.Ref, typ, msg string) Event {
	return Event{Kind: EventResult, Token: token, Note: store.Note{
		Kind: store.NoteFinished, Ref: ref, Status: store.StatusFailed,
		Error: &store.ErrorInfo{Type: typ, Message: msg},
	}}
}

// errorType is the error type a waiter sees for a refused request.
func errorType(err error) string {
	switch {
	case errors.Is(err, ErrRunLost):
		return typeRunLost
	case errors.Is(err, store.ErrFull):
		return typeStoreFull
	case errors.Is(err, store.ErrNotFound):
		return typeRunNotFound
	case transient(err):
		return typeStoreUnavailable
	}
	return typeNativeError
}

// lostMessage says what RunLost means for ref.
func lostMessage(ref store.Ref) string {
	return fmt.Sprintf("run %s: the store no longer has %s (Redis restarted without its data, lost its last writes, or the run expired); it cannot finish: submit it again",
		ref.Unit, ref)
}

// rewatch asks again to be told about everything local waiters await.
// After a store outage a note may have been popped by a call whose reply
// was lost with the connection; watching again delivers the note of
// anything that finished meanwhile (a second copy finds no waiter and is
// dropped). An operation the store no longer has fails its waiters with
// RunLost. Submissions still in the outbox are left out: the store has not
// had them yet, so their absence is no loss.
func (e *Engine) rewatch(ctx context.Context) {
	e.mu.Lock()
	refs := make([]store.Ref, 0, len(e.tokens))
	for ref := range e.tokens {
		if e.unsubmitted[ref] == 0 { // one still in the outbox is not in the store yet
			refs = append(refs, ref)
		}
	}
	e.mu.Unlock()
	lost := 0
	for _, ref := range refs {
		err := e.st.Watch(ctx, ref, e.cfg.Inbox)
		switch {
		case errors.Is(err, store.ErrNotFound):
			e.mu.Lock()
			n := e.failWaiters(ref, typeRunLost, lostMessage(ref))
			e.mu.Unlock()
			if n > 0 {
				lost++
				e.log.Error(lostMessage(ref)+"; its waiters were told", opAttrs(ref)...)
			}
		case transient(err):
			e.inboxTrouble.Store(true) // not back after all: try again later
			return
		}
	}
	if len(refs) > 0 {
		e.log.Info(fmt.Sprintf("watched %d awaited operations again after losing the store's connection (%d lost)", len(refs), lost))
	}
}

// unreachable records that a call to the store failed for want of the
// store; the first one of an outage is logged.
func (e *Engine) unreachable(now time.Time, err error) {
	e.mu.Lock()
	first := e.unreachableSince.IsZero()
	if first {
		e.unreachableSince = now
	}
	e.mu.Unlock()
	if first {
		e.log.Warn(fmt.Sprintf("the store is unreachable (%v); submissions, completions, watches and cancellations are kept and retried; waits fail with StoreUnavailable after %s",
			err, e.cfg.OutageTimeout))
	}
}

// reachable records that the store answered again.
func (e *Engine) reachable() {
	e.mu.Lock()
	since := e.unreachableSince
	e.unreachableSince = time.Time{}
	e.mu.Unlock()
	if !since.IsZero() {
		e.log.Info(fmt.Sprintf("the store answers again after %s", time.Since(since).Round(time.Millisecond)))
	}
}

// checkOutage fails every local waiter once the store has been unreachable
// for longer than OutageTimeout: no wait outlasts an outage without an
// answer.
func (e *Engine) checkOutage(now time.Time) {
	e.mu.Lock()
	since := e.unreachableSince
	if since.IsZero() || now.Sub(since) < e.cfg.OutageTimeout || len(e.tokens) == 0 {
		e.mu.Unlock()
		return
	}
	n := 0
	for ref := range e.tokens {
		n += e.failWaiters(ref, typeStoreUnavailable, fmt.Sprintf(
			"run %s: the store has been unreachable for %s; %s may still finish once it is back (get_run(%q) waits for it again)",
			ref.Unit, now.Sub(since).Round(time.Second), ref, ref.Unit))
	}
	e.mu.Unlock()
	e.log.Error(fmt.Sprintf("the store has been unreachable for %s: told %d waiters so (StoreUnavailable)", now.Sub(since).Round(time.Second), n))
}
