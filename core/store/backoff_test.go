package store_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

const samples = 300

// requireWithin asserts every sample of Backoff(o, attempt) lies in
// [full/2, full], the "equal jitter" range of an un-jittered delay full
// (whole milliseconds: the lower bound is rounded down to one).
func requireWithin(t *testing.T, o store.Options, attempt int, full time.Duration) {
	t.Helper()
	low := full / 2 / time.Millisecond * time.Millisecond
	for range samples {
		d := store.Backoff(o, attempt)
		require.GreaterOrEqual(t, d, low, "Backoff(%+v, %d)", o, attempt)
		require.LessOrEqual(t, d, full, "Backoff(%+v, %d)", o, attempt)
	}
}

func TestBackoffZeroBase(t *testing.T) {
	for _, base := range []int64{0, -1, -1000} {
		for attempt := range 6 {
			o := store.Options{BackoffMs: base, BackoffMaxMs: 5000}
			require.Zero(t, store.Backoff(o, attempt), "base %d, attempt %d", base, attempt)
		}
	}
}

func TestBackoffExponentialBounds(t *testing.T) {
	o := store.Options{BackoffMs: 100, BackoffMaxMs: 100_000}
	for attempt := 1; attempt <= 10; attempt++ {
		full := time.Duration(100<<(attempt-1)) * time.Millisecond
		requireWithin(t, o, attempt, full)
	}
}

func TestBackoffCap(t *testing.T) {
	o := store.Options{BackoffMs: 100, BackoffMaxMs: 5000}
	for _, attempt := range []int{7, 8, 20, 63, 64, 1000} {
		requireWithin(t, o, attempt, 5*time.Second)
	}
	// A base above the cap is capped from the first retry.
	requireWithin(t, store.Options{BackoffMs: 9000, BackoffMaxMs: 5000}, 1, 5*time.Second)
}

func TestBackoffDefaultCap(t *testing.T) {
	for _, maxMs := range []int64{0, -5} {
		o := store.Options{BackoffMs: 1000, BackoffMaxMs: maxMs}
		requireWithin(t, o, 1, time.Second)
		requireWithin(t, o, 6, 32*time.Second)
		requireWithin(t, o, 7, 60*time.Second)
		requireWithin(t, o, 50, 60*time.Second)
	}
}

func TestBackoffAttemptBelowOne(t *testing.T) {
	o := store.Options{BackoffMs: 400, BackoffMaxMs: 10_000}
	for _, attempt := range []int{0, -1, math.MinInt} {
		requireWithin(t, o, attempt, 400*time.Millisecond)
	}
}

func TestBackoffJitterSpreads(t *testing.T) {
	o := store.Options{BackoffMs: 1000, BackoffMaxMs: 1000}
	seen := map[time.Duration]bool{}
	for range 1000 {
		seen[store.Backoff(o, 1)] = true
	}
	// 501 possible values in [500ms, 1s]: 1000 draws hit far more than 50.
	require.Greater(t, len(seen), 50, "retries of many calls must spread out")
}

func TestBackoffSmallDelays(t *testing.T) {
	// Odd and tiny millisecond delays stay within range.
	for _, base := range []int64{1, 2, 3} {
		o := store.Options{BackoffMs: base, BackoffMaxMs: 10}
		requireWithin(t, o, 1, time.Duration(base)*time.Millisecond)
	}
}

// Options come from user code: absurd values must give a non-negative delay,
// never a panic (a panic inside a driver would leave its lock held).
func TestBackoffHugeValues(t *testing.T) {
	cases := []struct {
		o       store.Options
		attempt int
	}{
		// Doubling 2^62 overflows int64.
		{store.Options{BackoffMs: 1 << 62, BackoffMaxMs: math.MaxInt64}, 2},
		// 2^50 ms does not fit in a time.Duration.
		{store.Options{BackoffMs: 1 << 40, BackoffMaxMs: 1 << 50}, 64},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("base=%d,max=%d,attempt=%d", c.o.BackoffMs, c.o.BackoffMaxMs, c.attempt), func(t *testing.T) {
			for range samples {
				var d time.Duration
				require.NotPanics(t, func() { d = store.Backoff(c.o, c.attempt) })
				require.GreaterOrEqual(t, d, time.Duration(0), "negative delay")
			}
		})
	}
}
