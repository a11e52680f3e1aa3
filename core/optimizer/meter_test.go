package optimizer

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMeterCountsPerInterval(t *testing.T) {
	var m Meter
	t0 := time.Unix(1000, 0)
	first := m.Observe(t0, LaneTotals{Workers: 2, Slots: 4, Depth: 5, Done: 10, RunSecs: 2}, LaneTotals{Workers: 1, Slots: 1})
	require.Zero(t, first.Async.Completed, "the first observation has no interval")
	require.Equal(t, 2, first.Async.Workers)
	second := m.Observe(t0.Add(time.Second), LaneTotals{Depth: 8, Done: 14, RunSecs: 3}, LaneTotals{})
	require.Equal(t, int64(4), second.Async.Completed)
	require.Equal(t, time.Second, second.Async.RunTime)
	require.Equal(t, int64(7), second.Async.Arrived, "4 finished + queue grew by 3")
	// After a restart reset the totals, the interval counts nothing.
	third := m.Observe(t0.Add(2*time.Second), LaneTotals{Depth: 0, Done: 3, RunSecs: 0.5}, LaneTotals{})
	require.Zero(t, third.Async.Completed)
	require.Equal(t, int64(0), third.Async.Arrived, "never negative")
}

func TestScaleToInterval(t *testing.T) {
	c := DefaultConfig().ScaleToInterval(10 * time.Second)
	require.Equal(t, 20*time.Second, c.Cooldown)
	require.Equal(t, 15*time.Second, c.Smoothing)
	require.Equal(t, time.Minute, c.Horizon)
}
