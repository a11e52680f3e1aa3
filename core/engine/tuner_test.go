package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/optimizer"
	"github.com/blazingflow/blazing/core/store"
)

func TestOptimizerConfigBounds(t *testing.T) {
	oc := OptimizerConfig(Optimize{Interval: time.Second, AsyncWorkers: 4, BlockingWorkers: 4, AsyncConcurrency: 64})
	require.NoError(t, oc.Validate())
	require.Equal(t, [6]int{1, 7, 1, 7, 8, 8}, [6]int{oc.MinAsync, oc.MaxAsync, oc.MinBlocking, oc.MaxBlocking, oc.MinTotal, oc.MaxTotal})
	require.Equal(t, [3]time.Duration{2 * time.Second, 1500 * time.Millisecond, 6 * time.Second}, [3]time.Duration{oc.Cooldown, oc.Smoothing, oc.Horizon})

	oc = OptimizerConfig(Optimize{Interval: time.Second, AsyncWorkers: 6, BlockingWorkers: 1, AsyncConcurrency: 8})
	require.NoError(t, oc.Validate())
	require.Equal(t, [4]int{1, 6, 1, 2}, [4]int{oc.MinAsync, oc.MaxAsync, oc.MinBlocking, oc.MaxBlocking})

	oc = OptimizerConfig(Optimize{Interval: time.Second, AsyncWorkers: 2, BlockingWorkers: 0, AsyncConcurrency: 8})
	require.NoError(t, oc.Validate())
	require.Equal(t, [4]int{1, 2, 0, 0}, [4]int{oc.MinAsync, oc.MaxAsync, oc.MinBlocking, oc.MaxBlocking})
}

// A backlog on the blocking lane, with the async lane idle, moves one async
// worker (2 slots) to the blocking lane (one more thread) within a few
// ticks; the new slot takes waiting work at once.
func TestTunerMovesCapacityTowardBacklog(t *testing.T) {
	st := newStore(t)
	e := newEngine(t, st, true, func(c *Config) {
		c.Capacity = [store.NumLanes]int{4, 2}
		c.Optimize = Optimize{Interval: 50 * time.Millisecond, AsyncWorkers: 2, BlockingWorkers: 2, AsyncConcurrency: 2}
	})
	var subs []Submit
	for i := range 20 {
		subs = append(subs, Submit{Submission: store.Submission{
			Ref: store.Ref{Unit: fmt.Sprintf("u%02d", i), Path: store.RootPath}, Name: "cpu", Lane: store.LaneBlocking,
		}})
	}
	submit(t, e, subs...) // held, never completed: the lane stays behind
	c := collect(t, e)
	isDeliver := func(ev Event) bool { return ev.Kind == EventDeliver }
	c.until("first deliveries", isDeliver)

	mix := c.until("a mix change", func(ev Event) bool { return ev.Kind == EventMix })
	require.Equal(t, MixChange{Async: 1, Blocking: 3, AsyncDelta: -2, BlockingDelta: 1}, mix.Mix)
	capA, _ := e.Capacity(store.LaneAsync)
	capB, _ := e.Capacity(store.LaneBlocking)
	require.Equal(t, [2]int{2, 3}, [2]int{capA, capB})
	// The third thread's slot was filled from the backlog.
	c.until("a third delivery", func(Event) bool { return c.count(isDeliver) >= 3 })

	ds := e.Decisions()
	require.NotEmpty(t, ds)
	require.Equal(t, optimizer.ReasonWarmup, ds[0].Reason)
	var moves []optimizer.Decision
	for _, d := range ds {
		if d.Changed() {
			moves = append(moves, d)
		}
	}
	require.Len(t, moves, 1, "decisions: %+v", ds)
	require.Equal(t, optimizer.Move, moves[0].Action)
	require.Equal(t, optimizer.Blocking, moves[0].To)
	require.Equal(t, optimizer.Mix{Async: 2, Blocking: 2}, moves[0].Before)
	require.Equal(t, optimizer.Mix{Async: 1, Blocking: 3}, moves[0].After)
}

func TestTunerOffRecordsNothing(t *testing.T) {
	e := newEngine(t, newStore(t), true, nil)
	require.Nil(t, e.tuner)
	require.Empty(t, e.Decisions())
	// Shared stores have the foreman for this; the engine ignores the setting.
	e = newEngine(t, newStore(t), false, func(c *Config) {
		c.Optimize = Optimize{Interval: time.Millisecond, AsyncWorkers: 1, BlockingWorkers: 1, AsyncConcurrency: 1}
	})
	require.Nil(t, e.tuner)
}

func TestTunerRejectsBadConfig(t *testing.T) {
	_, err := New(t.Context(), Config{Store: newStore(t), Inbox: "p", Private: true,
		Optimize: Optimize{Interval: time.Second, AsyncWorkers: 0, BlockingWorkers: 2}})
	require.ErrorIs(t, err, store.ErrInvalid)
}
