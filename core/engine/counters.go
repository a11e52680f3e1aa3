package engine

import (
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
}

type counters struct {
	mu sync.Mutex
	c  Counters
}

func (k *counters) started(n int) {
	k.mu.Lock()
	k.c.Started += uint64(n)
	k.mu.Unlock()
}

// finished records the outcome, duration and lane of completed attempts.
func (k *counters) finished(comps []store.Completion, outs []store.CompleteOutcome, took []time.Duration, lanes []store.Lane) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c.Buckets == nil {
		k.c.Buckets = make([]uint64, len(DurationBuckets)+1)
	}
	for i, c := range comps {
		out := store.Recorded
		if i < len(outs) {
			out = outs[i]
		}
		switch {
		case out == store.Stale:
			continue
		case out == store.Retrying:
			k.c.Retried++
		case c.OK:
			k.c.Succeeded++
		default:
			k.c.Failed++
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
	c.Buckets = append([]uint64(nil), c.Buckets...)
	if c.Buckets == nil {
		c.Buckets = make([]uint64, len(DurationBuckets)+1)
	}
	return c
}
