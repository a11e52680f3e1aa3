package main

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/blazingflow/blazing/core/optimizer"
	"github.com/blazingflow/blazing/core/store"
)

// decisionsMaxLen caps the decision stream (approximate trimming).
const decisionsMaxLen = 10000

// tuner feeds the optimizer one observation per optimization interval,
// applies its decisions to the supervisor (when auto-optimize is on) and
// records every decision in the capped stream {ns}:decisions for charts.
type tuner struct {
	cfg   optimizer.Config
	st    optimizer.State
	rdb   redis.UniversalClient
	key   string
	slots [2]int
	auto  bool
	// Totals of this machine's workers at the previous tick, per lane, to
	// turn the workers' running counts into per-interval counts.
	prevDone  [2]uint64
	prevRun   [2]float64
	lastDepth [2]int
	prevSeen  bool
}

func newTuner(c *Config, rdb redis.UniversalClient) (*tuner, error) {
	oc := optimizer.DefaultConfig()
	oc.MinAsync, oc.MaxAsync = c.MinAsync, c.MaxAsync
	oc.MinBlocking, oc.MaxBlocking = c.MinBlocking, c.MaxBlocking
	total := c.AsyncWorkers + c.BlockingWorkers
	oc = oc.WithTotal(total, total) // the mix moves; the machine's total stays
	// Time constants follow the interval, so a short interval (tests, busy
	// sites) reacts as a long one does, in proportion.
	oc.Cooldown = 2 * c.OptimizationInterval
	oc.Smoothing = c.OptimizationInterval * 3 / 2
	oc.Horizon = 6 * c.OptimizationInterval
	if err := oc.Validate(); err != nil {
		return nil, fmt.Errorf("%w: optimizer bounds: %v", errUsage, err)
	}
	return &tuner{cfg: oc, rdb: rdb, key: "{" + c.Namespace + "}:decisions", auto: c.AutoOptimize,
		slots: [2]int{c.AsyncConcurrency, c.BlockingConcurrency}}, nil
}

// tick observes, decides, records, and returns the mix to apply (ok false:
// keep the current one).
func (t *tuner) tick(ctx context.Context, now time.Time, lanes [store.NumLanes]store.LaneStats, snap Snapshot) (optimizer.Decision, Mix, bool, error) {
	var done [2]uint64
	var run [2]float64
	for _, w := range snap.Workers {
		i := 0
		if w.Lane == laneBlocking {
			i = 1
		}
		done[i] += w.Beat.Succeeded + w.Beat.Failed + w.Beat.Retried
		run[i] += w.Beat.DurSum
	}
	obs := optimizer.Observation{Time: now}
	for i, lo := range []*optimizer.LaneObservation{&obs.Async, &obs.Blocking} {
		lo.Workers = []int{snap.Target.Async, snap.Target.Blocking}[i]
		lo.Slots = t.slots[i]
		lo.Depth = lanes[i].Depth
		lo.OldestAge = lanes[i].OldestAge
		lo.Running = lanes[i].Running
		if t.prevSeen && done[i] >= t.prevDone[i] {
			lo.Completed = int64(done[i] - t.prevDone[i])
			lo.RunTime = time.Duration((run[i] - t.prevRun[i]) * float64(time.Second))
		}
		// Arrivals are not counted anywhere yet: what finished plus what
		// the queue grew by is what arrived, to within the other machines'
		// share of the work.
		lo.Arrived = max(lo.Completed+int64(lo.Depth-t.prevDepth(i)), 0)
	}
	t.prevDone, t.prevRun, t.prevSeen = done, run, true
	t.lastDepth = [2]int{lanes[0].Depth, lanes[1].Depth}
	d, next := optimizer.Decide(t.cfg, t.st, obs)
	t.st = next
	fields := d.Fields()
	fields["applied"] = fmt.Sprint(t.auto && d.Changed())
	values := make(map[string]any, len(fields))
	for k, v := range fields {
		values[k] = v
	}
	err := t.rdb.XAdd(ctx, &redis.XAddArgs{Stream: t.key, MaxLen: decisionsMaxLen, Approx: true, Values: values}).Err()
	if err == nil {
		err = t.rdb.Expire(ctx, t.key, 30*24*time.Hour).Err()
	}
	if t.auto && d.Changed() {
		return d, Mix{Async: d.After.Async, Blocking: d.After.Blocking}, true, err
	}
	return d, Mix{}, false, err
}

func (t *tuner) prevDepth(i int) int { return t.lastDepth[i] }
