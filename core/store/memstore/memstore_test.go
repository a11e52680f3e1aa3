package memstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
	"github.com/blazingflow/blazing/core/store/memstore"
	"github.com/blazingflow/blazing/core/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock *storetest.Clock) store.Store {
		return memstore.New(memstore.Config{Now: clock.Now})
	})
}

func root(unit string) store.Submission {
	return store.Submission{Ref: store.Ref{Unit: unit, Path: store.RootPath}, Name: "flow"}
}

func TestRetentionPurge(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.Epoch)
	s := memstore.New(memstore.Config{Now: clock.Now, Retention: time.Minute})
	defer s.Close()

	storetest.MustSubmit(t, s, root("done"))
	child := store.Submission{Ref: store.Ref{Unit: "done", Path: "0.1"}, Parent: "0", Depth: 1, Name: "step"}
	storetest.MustSubmit(t, s, child, root("live"))
	ds, err := s.Reserve(ctx, store.LaneAsync, "w", 1, time.Hour, 0)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.Equal(t, "done", ds[0].Ref.Unit)
	outs, err := s.Complete(ctx, "w", []store.Completion{{Ref: ds[0].Ref, LeaseID: ds[0].LeaseID, OK: true}})
	require.NoError(t, err)
	require.Equal(t, []store.CompleteOutcome{store.Recorded}, outs)

	clock.Advance(59 * time.Second)
	_, err = s.Reclaim(ctx, clock.Now())
	require.NoError(t, err)
	_, err = s.Get(ctx, store.Ref{Unit: "done", Path: "0"})
	require.NoError(t, err, "kept within the retention")

	clock.Advance(2 * time.Second)
	_, err = s.Reclaim(ctx, clock.Now())
	require.NoError(t, err)
	for _, p := range []string{"0", "0.1"} {
		_, err = s.Get(ctx, store.Ref{Unit: "done", Path: p})
		require.ErrorIs(t, err, store.ErrNotFound, "done/%s purged after the retention", p)
	}
	op, err := s.Get(ctx, store.Ref{Unit: "live", Path: "0"})
	require.NoError(t, err, "an unfinished unit is never purged")
	require.Equal(t, store.StatusPending, op.Status)

	// The purged unit's id is free again: a new run starts from scratch.
	outs2, errs := s.Submit(ctx, []store.Submission{root("done")})
	require.NoError(t, errs[0])
	require.Equal(t, store.Created, outs2[0])
}

func TestRetentionDefaultsToAnHour(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.Epoch)
	s := memstore.New(memstore.Config{Now: clock.Now})
	defer s.Close()
	storetest.MustSubmit(t, s, root("u"))
	n, err := s.Cancel(ctx, "u", "", "")
	require.NoError(t, err)
	require.Equal(t, 1, n)

	clock.Advance(59 * time.Minute)
	_, err = s.Reclaim(ctx, clock.Now())
	require.NoError(t, err)
	_, err = s.Get(ctx, store.Ref{Unit: "u", Path: "0"})
	require.NoError(t, err)

	clock.Advance(2 * time.Minute)
	_, err = s.Reclaim(ctx, clock.Now())
	require.NoError(t, err)
	_, err = s.Get(ctx, store.Ref{Unit: "u", Path: "0"})
	require.ErrorIs(t, err, store.ErrNotFound)
}

// OldestAge is the age of the oldest ready op, which is not the head of the
// queue when a younger op has a higher priority; delayed retries do not count.
func TestStatsOldestAge(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.Epoch)
	s := memstore.New(memstore.Config{Now: clock.Now})
	defer s.Close()

	old := root("old")
	storetest.MustSubmit(t, s, old)
	clock.Advance(10 * time.Second)
	young := root("young")
	young.Opts.Priority = 9
	storetest.MustSubmit(t, s, young)
	clock.Advance(time.Second)

	st, err := s.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, 11*time.Second, st[store.LaneAsync].OldestAge)

	ds, err := s.Reserve(ctx, store.LaneAsync, "w", 1, time.Hour, 0)
	require.NoError(t, err)
	require.Equal(t, young.Ref, ds[0].Ref, "priority first")
	st, err = s.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, 11*time.Second, st[store.LaneAsync].OldestAge)

	delayed := root("delayed")
	delayed.Opts = store.Options{Retries: 1, BackoffMs: 60_000}
	storetest.MustSubmit(t, s, delayed)
	ds, err = s.Reserve(ctx, store.LaneAsync, "w", 2, time.Hour, 0)
	require.NoError(t, err)
	require.Len(t, ds, 2)
	for _, d := range ds {
		c := store.Completion{Ref: d.Ref, LeaseID: d.LeaseID, OK: d.Ref != delayed.Ref}
		_, err = s.Complete(ctx, "w", []store.Completion{c})
		require.NoError(t, err)
	}
	clock.Advance(5 * time.Second)
	st, err = s.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, st[store.LaneAsync].Depth, "the delayed retry")
	require.Zero(t, st[store.LaneAsync].OldestAge, "a delayed retry is not ready and has no age")
}

// Trim keeps at most MaxRuns runs: finished ones go oldest first, never a
// requeued (live again) one.
func TestTrimByCount(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.Epoch)
	s := memstore.New(memstore.Config{Now: clock.Now, MaxRuns: 2})
	defer s.Close()
	finish := func(unit string, ok bool) {
		t.Helper()
		storetest.MustSubmit(t, s, root(unit))
		ds, err := s.Reserve(ctx, store.LaneAsync, "w", 1, time.Hour, 0)
		require.NoError(t, err)
		require.Len(t, ds, 1)
		c := store.Completion{Ref: ds[0].Ref, LeaseID: ds[0].LeaseID, OK: ok}
		if !ok {
			c.Error = &store.ErrorInfo{Type: "E"}
		}
		_, err = s.Complete(ctx, "w", []store.Completion{c})
		require.NoError(t, err)
		clock.Advance(time.Second)
	}
	finish("requeued", false)
	for _, u := range []string{"a", "b", "c"} {
		finish(u, true)
	}
	require.NoError(t, s.Requeue(ctx, "requeued"))
	r, err := s.Trim(ctx, clock.Now())
	require.NoError(t, err)
	require.Equal(t, store.Trimmed{Runs: 2, Reason: "count"}, r, "four runs, two kept")
	for _, u := range []string{"a", "b"} {
		_, err = s.Get(ctx, store.Ref{Unit: u, Path: "0"})
		require.ErrorIs(t, err, store.ErrNotFound, "the oldest finished runs went")
	}
	for _, u := range []string{"c", "requeued"} {
		_, err = s.Get(ctx, store.Ref{Unit: u, Path: "0"})
		require.NoError(t, err, "%s is kept", u)
	}
	r, err = s.Trim(ctx, clock.Now())
	require.NoError(t, err)
	require.Zero(t, r.Runs)
}
