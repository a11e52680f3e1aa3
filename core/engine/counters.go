package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// DurationBuckets are the upper bounds (seconds) of the operation duration
// histogram, from sub-millisecond no-ops to minutes-long steps.
var DurationBuckets = []float64{0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 60, 300}

// Counters are what this engine ran, for metrics: operations started,
// succeeded, failed and retried, and how long attempts took.
type Counters struct {
	Started, Succeeded, Failed, Retried uint64
	// Buckets[i] counts attempts that took at most DurationBuckets[i];
	// the last element counts the rest.
	Buckets []uint64
	SumSecs float64
	// Done and RunSecs count, per lane, the attempts that finished here
	// (succeeded, failed or retrying) and their summed run time, for the
	// embedded optimizer (see tuner.go).
	Done    [store.NumLanes]uint64
	RunSecs [store.NumLanes]float64
	// ByName counts, per step or workflow name, how its attempts here
	// ended and how long they took (for per-name metrics; bounded by the
	// names the process runs).
	ByName map[string]store.Counts
}

type counters struct {
	mu sync.Mutex
	c  Counters
	// pending: what was counted since the last flush to the store, per
	// minute, by name and lane key (see flushStats).
	pending map[time.Time]map[string]store.Counts
}

// observe counts one attempt of name on lane that ended with outcome
// ("succeeded", "failed", "retried", "cancelled") after took (negative:
// not timed), for metrics and for the store's per-minute counts. Caller
// holds k.mu.
func (k *counters) observe(now time.Time, name string, lane store.Lane, outcome string, took time.Duration) {
	if k.c.ByName == nil {
		k.c.ByName = map[string]store.Counts{}
	}
	c := k.c.ByName[name]
	c.Observe(outcome, took)
	k.c.ByName[name] = c
	minute := now.Truncate(time.Minute)
	if k.pending == nil {
		k.pending = map[time.Time]map[string]store.Counts{}
	}
	m := k.pending[minute]
	if m == nil {
		m = map[string]store.Counts{}
		k.pending[minute] = m
	}
	for _, key := range []string{name, store.LaneKey(lane)} {
		pc := m[key]
		pc.Observe(outcome, took)
		m[key] = pc
	}
}

// ended counts an attempt that ended outside Complete (a timeout, a lapse
// that failed it, a cancellation).
func (k *counters) ended(name string, lane store.Lane, outcome string, took time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.observe(time.Now(), name, lane, outcome, took)
}

// takePending hands over what was counted since the last flush.
func (k *counters) takePending() map[time.Time]map[string]store.Counts {
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.pending
	k.pending = nil
	return p
}

// putBack returns counts a flush could not write, to go with the next.
func (k *counters) putBack(p map[time.Time]map[string]store.Counts) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.pending == nil {
		k.pending = map[time.Time]map[string]store.Counts{}
	}
	for minute, byKey := range p {
		m := k.pending[minute]
		if m == nil {
			m = map[string]store.Counts{}
			k.pending[minute] = m
		}
		for key, c := range byKey {
			pc := m[key]
			pc.Add(c)
			m[key] = pc
		}
	}
}

func (k *counters) started(n int) {
	k.mu.Lock()
	k.c.Started += uint64(n)
	k.mu.Unlock()
}

// finished records the outcome, duration, lane and name of completed
// attempts.
func (k *counters) finished(comps []store.Completion, outs []store.CompleteOutcome, took []time.Duration, lanes []store.Lane, names []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c.Buckets == nil {
		k.c.Buckets = make([]uint64, len(DurationBuckets)+1)
	}
	now := time.Now()
	for i, c := range comps {
		out := store.Recorded
		if i < len(outs) {
			out = outs[i]
		}
		outcome := "failed"
		switch {
		case out == store.Stale:
			continue
		case out == store.Retrying:
			k.c.Retried++
			outcome = "retried"
		case c.OK:
			k.c.Succeeded++
			outcome = "succeeded"
		default:
			k.c.Failed++
		}
		if i < len(names) && i < len(lanes) && i < len(took) {
			k.observe(now, names[i], lanes[i], outcome, took[i])
		}
		if i < len(lanes) && lanes[i].Valid() {
			k.c.Done[lanes[i]]++
			if i < len(took) {
				k.c.RunSecs[lanes[i]] += took[i].Seconds()
			}
		}
		if i < len(took) {
			secs := took[i].Seconds()
			k.c.SumSecs += secs
			b := len(DurationBuckets)
			for j, ub := range DurationBuckets {
				if secs <= ub {
					b = j
					break
				}
			}
			k.c.Buckets[b]++
		}
	}
}

// Counters reads the engine's counters.
func (e *Engine) Counters() Counters {
	e.counts.mu.Lock()
	defer e.counts.mu.Unlock()
	c := e.counts.c
	c.ByName = make(map[string]store.Counts, len(e.counts.c.ByName))
	for name, n := range e.counts.c.ByName {
		n.Buckets = append([]int64(nil), n.Buckets...)
		c.ByName[name] = n
	}
	c.Buckets = append([]uint64(nil), c.Buckets...)
	if c.Buckets == nil {
		c.Buckets = make([]uint64, len(DurationBuckets)+1)
	}
	return c
}

// DefaultStatsEvery is how often the engine adds its counts to the store.
const DefaultStatsEvery = 2 * time.Second

// flushStats adds what this engine counted to the store's per-minute
// totals every StatsEvery, and once more when it closes. Counts a flush
// could not write go with the next one; one failure per outage is logged.
func (e *Engine) flushStats(ctx context.Context) {
	t := time.NewTicker(e.cfg.StatsEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := e.writeStats(ctx); err != nil {
			if !failing {
				e.log.Warn(fmt.Sprintf("could not add this process's counts to the store (kept for the next try): %v", err))
			}
			failing = true
		} else {
			failing = false
		}
	}
}

// FlushStats adds what this engine counted so far to the store's totals at
// once (a read of the totals then includes this process's own counts).
func (e *Engine) FlushStats(ctx context.Context) error { return e.writeStats(ctx) }

// writeStats writes the pending counts, minute by minute.
func (e *Engine) writeStats(ctx context.Context) error {
	pending := e.counts.takePending()
	if e.cfg.NoStats {
		return nil
	}
	var failed map[time.Time]map[string]store.Counts
	var firstErr error
	for minute, byKey := range pending {
		if err := e.st.AddStats(ctx, store.StatsDelta{Minute: minute, Counts: byKey}); err != nil {
			if failed == nil {
				failed = map[time.Time]map[string]store.Counts{}
			}
			failed[minute] = byKey
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if failed != nil {
		e.counts.putBack(failed)
	}
	return firstErr
}
