package optimizer_test

import (
	"fmt"
	"time"

	"github.com/blazingflow/blazing/core/optimizer"
)

// A caller keeps the State between ticks, fills an Observation every
// optimization_interval, applies the decision's After mix and records the
// decision (Fields gives the entry of a Redis stream).
//
// The first tick starts the rates' clock. The second, the first with rates,
// moves straight to the mix the scores call for (the load needs 12 async
// workers and half a blocking one), without waiting for confirmation.
func ExampleDecide() {
	cfg := optimizer.DefaultConfig().WithTotal(16, 16)
	var st optimizer.State
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	mix := optimizer.Mix{Async: 8, Blocking: 8}
	for i := range 3 {
		obs := optimizer.Observation{
			Time: start.Add(time.Duration(i) * 30 * time.Second),
			// 96 I/O tasks a second, each holding one of 64 slots for 8 s.
			Async: optimizer.LaneObservation{Workers: mix.Async, Slots: 64, Arrived: 2880, Completed: 2880,
				RunTime: 2880 * 8 * time.Second, Running: 768},
			// One CPU task every 2 s, each taking 1 s.
			Blocking: optimizer.LaneObservation{Workers: mix.Blocking, Slots: 1, Arrived: 15, Completed: 15,
				RunTime: 15 * time.Second, Running: 1},
		}
		var d optimizer.Decision
		d, st = optimizer.Decide(cfg, st, obs)
		mix = d.After
		fmt.Printf("%s %s: %s\n", d.Action, d.Reason, mix)
	}
	// Output:
	// hold warmup: 8 async + 8 blocking
	// move informed-start: 15 async + 1 blocking
	// hold at-bound: 15 async + 1 blocking
}
