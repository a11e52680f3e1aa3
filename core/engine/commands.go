package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// Commands is one batch of work a process hands over: what it finished,
// what it calls, what it waits on or cancels.
type Commands struct {
	Pause       *bool
	Completes   []Completion
	Submits     []Submit
	Watches     []WatchCmd
	Cancels     []CancelCmd
	Breadcrumbs []store.Breadcrumb
}

// WatchCmd asks for Token to be told when Ref finishes.
type WatchCmd struct {
	Ref   store.Ref
	Token uint64
}

// CancelCmd cancels a unit (Path "") or one call and what it called.
type CancelCmd struct {
	Unit, Path, Reason string
}

func (c *Commands) empty() bool {
	return c.Pause == nil && len(c.Completes) == 0 && len(c.Submits) == 0 &&
		len(c.Watches) == 0 && len(c.Cancels) == 0 && len(c.Breadcrumbs) == 0
}

// merge appends o after c, keeping the order of each kind.
func (c *Commands) merge(o Commands) {
	if o.Pause != nil {
		c.Pause = o.Pause
	}
	c.Completes = append(c.Completes, o.Completes...)
	c.Submits = append(c.Submits, o.Submits...)
	c.Watches = append(c.Watches, o.Watches...)
	c.Cancels = append(c.Cancels, o.Cancels...)
	c.Breadcrumbs = append(c.Breadcrumbs, o.Breadcrumbs...)
}

// Enqueue hands commands to the engine's command loop and returns at once:
// with a store across the network, the calling thread (the process's event
// loop) must never wait on a round trip. Commands queued while the loop is
// busy are merged into one batch, so under load each round trip carries
// many. What the commands produce (deliveries, results, and failures of
// submissions and watches, as failed results for their tokens) comes back as
// events. Only a Private engine's callers run commands synchronously instead.
func (e *Engine) Enqueue(c Commands) error {
	if c.empty() {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.cmdClosing {
		return ErrClosed
	}
	e.cmdQueue.merge(c)
	select {
	case e.cmdWake <- struct{}{}:
	default:
	}
	return nil
}

// commandLoop runs queued commands in order until the engine closes; then it
// runs what is left (completions above all) before returning.
func (e *Engine) commandLoop(ctx context.Context) {
	for {
		select {
		case <-e.cmdWake:
		case <-e.cmdQuit:
			e.runQueued(context.Background())
			return
		}
		e.runQueued(ctx)
	}
}

func (e *Engine) runQueued(ctx context.Context) {
	for {
		e.mu.Lock()
		c := e.cmdQueue
		e.cmdQueue = Commands{}
		e.mu.Unlock()
		if c.empty() {
			return
		}
		e.run(ctx, c)
	}
}

// run executes one merged batch: breadcrumbs first (what an attempt logged
// comes before what its completion records: a retry, a failure), then
// completions (they free slots), submissions, watches and cancellations.
func (e *Engine) run(ctx context.Context, c Commands) {
	if c.Pause != nil {
		e.SetPaused(*c.Pause)
	}
	e.AddBreadcrumbs(ctx, c.Breadcrumbs)
	// A completion error here is not transient (those go to the outbox):
	// the operations run again once their leases lapse.
	if _, err := e.Complete(ctx, c.Completes); err != nil {
		e.log.Error(fmt.Sprintf("%v; they run again once their leases lapse", err))
	}
	var failed []Event
	for i, err := range e.Submit(ctx, c.Submits) {
		switch {
		case err == nil:
		case c.Submits[i].Token != 0:
			failed = append(failed, failedResult(c.Submits[i].Token, c.Submits[i].Ref, err))
		default:
			e.log.Error(fmt.Sprintf("%v (nobody waits on it to be told)", err), opAttrs(c.Submits[i].Ref)...)
		}
	}
	now := time.Now()
	for _, w := range c.Watches {
		switch err := e.Watch(ctx, w.Ref, w.Token); {
		case transient(err):
			e.mu.Lock()
			e.queueWatch(w, now) // the store is away: the outbox tries again
			e.mu.Unlock()
		case err != nil:
			failed = append(failed, failedResult(w.Token, w.Ref, err))
		}
	}
	for _, k := range c.Cancels {
		// Cancelling what has gone (finished and expired) changes nothing;
		// a cancellation the store could not take now is tried again.
		switch _, err := e.Cancel(ctx, k.Unit, k.Path, k.Reason); {
		case transient(err):
			e.mu.Lock()
			e.queueCancel(k, now)
			e.mu.Unlock()
		case err != nil && !errors.Is(err, store.ErrNotFound):
			e.log.Error(fmt.Sprintf("cancellation of %s/%s refused: %v", k.Unit, k.Path, err),
				opAttrs(store.Ref{Unit: k.Unit, Path: k.Path})...)
		}
	}
	if len(failed) > 0 {
		e.mu.Lock()
		e.push(failed...)
		e.mu.Unlock()
	}
	// No Pump here: the listener and the dispatchers already wait on the
	// inbox and the lanes (a completion wakes its lane's dispatcher), and
	// pumping too would cost two to three round trips per batch.
}

// failedResult is the event that tells a waiter its submission or watch
// was refused, with the error type that says why (see errorType).
func failedResult(token uint64, ref store.Ref, err error) Event {
	return failedEvent(token, ref, errorType(err), err.Error())
}
