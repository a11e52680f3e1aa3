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
	// foreman names this machine's foreman in each decision recorded.
	foreman string
	// meter turns this machine's workers' running totals into per-interval
	// counts.
	meter optimizer.Meter
}

func newTuner(c *Config, rdb redis.UniversalClient, foreman string) (*tuner, error) {
	oc := optimizer.DefaultConfig()
	oc.MinAsync, oc.MaxAsync = c.MinAsync, c.MaxAsync
	oc.MinBlocking, oc.MaxBlocking = c.MinBlocking, c.MaxBlocking
	total := c.AsyncWorkers + c.BlockingWorkers
	oc = oc.WithTotal(total, total).ScaleToInterval(c.OptimizationInterval) // the mix moves; the machine's total stays
	if err := oc.Validate(); err != nil {
		return nil, fmt.Errorf("%w: optimizer bounds: %v", errUsage, err)
	}
	return &tuner{cfg: oc, rdb: rdb, key: "{" + c.Namespace + "}:decisions", auto: c.AutoOptimize, foreman: foreman,
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
	var totals [2]optimizer.LaneTotals
	for i := range totals {
		totals[i] = optimizer.LaneTotals{
			Workers: []int{snap.Target.Async, snap.Target.Blocking}[i], Slots: t.slots[i],
			Depth: lanes[i].Depth, Running: lanes[i].Running, OldestAge: lanes[i].OldestAge,
			Done: done[i], RunSecs: run[i],
		}
	}
	obs := t.meter.Observe(now, totals[0], totals[1])
	d, next := optimizer.Decide(t.cfg, t.st, obs)
	t.st = next
	fields := d.Fields()
	fields["applied"] = fmt.Sprint(t.auto && d.Changed())
	fields["foreman"] = t.foreman
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
