package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/blazingflow/blazing/core/optimizer"
	"github.com/blazingflow/blazing/core/store"
)

// Optimize configures the embedded optimizer: in embedded mode (a Private
// engine) the "workers" of the optimizer are this process's async slots and
// blocking threads, and the engine moves them between lanes itself, as the
// foreman does with worker processes on a shared store.
type Optimize struct {
	// Interval between decisions; 0 turns the optimizer off.
	Interval time.Duration
	// AsyncWorkers and BlockingWorkers are the starting mix. One async
	// worker is AsyncConcurrency slots; one blocking worker is one thread
	// (one slot). Config.Capacity should match: {AsyncWorkers ×
	// AsyncConcurrency, BlockingWorkers}.
	AsyncWorkers, BlockingWorkers, AsyncConcurrency int
}

// MixChange is the payload of an EventMix: the mix after the change, in
// workers, and by how many slots each lane's capacity changed.
type MixChange struct {
	Async, Blocking           int
	AsyncDelta, BlockingDelta int
}

// MaxDecisions is how many of the latest decisions the engine keeps.
const MaxDecisions = 256

// OptimizerConfig is the optimizer configuration the embedded tuner uses
// for o. The total stays at AsyncWorkers + BlockingWorkers (only the mix
// moves); each lane keeps at least one worker (blocking: none if it
// started with none) and gets at most twice what it started with, within
// the total. The time constants follow the interval as the foreman's do:
// cooldown 2×, smoothing 1.5×, horizon 6×.
func OptimizerConfig(o Optimize) optimizer.Config {
	oc := optimizer.DefaultConfig()
	oc.MinAsync = 1
	oc.MinBlocking = min(1, o.BlockingWorkers)
	total := o.AsyncWorkers + o.BlockingWorkers
	oc = oc.WithTotal(total, total)
	oc.MaxAsync = min(oc.MaxAsync, 2*o.AsyncWorkers)
	oc.MaxBlocking = min(oc.MaxBlocking, 2*o.BlockingWorkers)
	return oc.ScaleToInterval(o.Interval)
}

// tuner is the optimizer's state in an engine; its fields are guarded by mu
// (the loop writes them, Decisions reads them).
type tuner struct {
	cfg      optimizer.Config
	interval time.Duration
	slots    [store.NumLanes]int

	mu        sync.Mutex
	st        optimizer.State
	mix       optimizer.Mix
	decisions []optimizer.Decision // oldest first, at most MaxDecisions
	meter     optimizer.Meter
}

func newTuner(o Optimize) (*tuner, error) {
	if o.AsyncWorkers < 0 || o.BlockingWorkers < 0 || o.AsyncConcurrency < 0 {
		return nil, fmt.Errorf("engine: %w: negative optimizer setting %+v", store.ErrInvalid, o)
	}
	oc := OptimizerConfig(o)
	if err := oc.Validate(); err != nil {
		return nil, fmt.Errorf("engine: %w: optimizer: %v", store.ErrInvalid, err)
	}
	return &tuner{
		cfg:      oc,
		interval: o.Interval,
		slots:    [store.NumLanes]int{max(o.AsyncConcurrency, 1), 1},
		mix:      optimizer.Mix{Async: o.AsyncWorkers, Blocking: o.BlockingWorkers},
	}, nil
}

// tune decides at the start and every interval after it until the engine
// closes. The look at the start, as the foreman's, starts the rates' clock,
// so the optimizer's informed start comes one interval in, not two.
func (e *Engine) tune(ctx context.Context) {
	t := time.NewTicker(e.tuner.interval)
	defer t.Stop()
	e.tuneOnce(ctx, time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			e.tuneOnce(ctx, now)
		}
	}
}

// tuneOnce observes, decides, records and applies one decision.
func (e *Engine) tuneOnce(ctx context.Context, now time.Time) {
	lanes, err := e.st.Stats(ctx)
	if err != nil {
		return // closing; or the next tick sees it
	}
	c := e.Counters()
	t := e.tuner
	t.mu.Lock()
	var totals [store.NumLanes]optimizer.LaneTotals
	for l := range totals {
		totals[l] = optimizer.LaneTotals{
			Workers: []int{t.mix.Async, t.mix.Blocking}[l], Slots: t.slots[l],
			Depth: lanes[l].Depth, Running: lanes[l].Running, OldestAge: lanes[l].OldestAge,
			Done: c.Done[l], RunSecs: c.RunSecs[l],
		}
	}
	obs := t.meter.Observe(now, totals[store.LaneAsync], totals[store.LaneBlocking])
	d, next := optimizer.Decide(t.cfg, t.st, obs)
	t.st = next
	if len(t.decisions) == MaxDecisions {
		t.decisions = append(t.decisions[:0], t.decisions[1:]...)
	}
	t.decisions = append(t.decisions, d)
	var change MixChange
	if d.Changed() {
		t.mix = d.After
		change = MixChange{
			Async: d.After.Async, Blocking: d.After.Blocking,
			AsyncDelta:    (d.After.Async - d.Before.Async) * t.slots[store.LaneAsync],
			BlockingDelta: (d.After.Blocking - d.Before.Blocking) * t.slots[store.LaneBlocking],
		}
	}
	t.mu.Unlock()
	if d.Changed() {
		e.applyMix(ctx, change)
	}
}

// applyMix changes the lanes' capacities and tells the process. Slots lent
// by waiting callers (AddCapacity) stay on top of the new capacities; the
// lane's base never goes below zero, so neither does its capacity.
func (e *Engine) applyMix(ctx context.Context, m MixChange) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.capacity[store.LaneAsync] = max(e.capacity[store.LaneAsync]+m.AsyncDelta, 0)
	e.capacity[store.LaneBlocking] = max(e.capacity[store.LaneBlocking]+m.BlockingDelta, 0)
	e.push(Event{Kind: EventMix, Mix: m})
	e.roomChanged()
	e.mu.Unlock()
	if m.AsyncDelta > 0 || m.BlockingDelta > 0 {
		_ = e.Pump(ctx) // the new slots take waiting work now
	}
}

// Decisions returns the embedded optimizer's latest decisions, oldest
// first (at most MaxDecisions); none when it is off.
func (e *Engine) Decisions() []optimizer.Decision {
	if e.tuner == nil {
		return nil
	}
	e.tuner.mu.Lock()
	defer e.tuner.mu.Unlock()
	return append([]optimizer.Decision(nil), e.tuner.decisions...)
}
