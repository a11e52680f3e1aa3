package storetest

import (
	"fmt"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

// History and inspection: breadcrumbs, the index of runs, a run's
// operations, per-minute counts, and the timeline made of them.

func (e *env) crumbs(unit string) ([]store.Breadcrumb, int) {
	e.t.Helper()
	bs, dropped, err := e.s.Breadcrumbs(e.ctx, unit)
	require.NoError(e.t, err, "Breadcrumbs(%s)", unit)
	return bs, dropped
}

// The user's breadcrumbs and the store's own (a retry) come back in order;
// an unknown run has none and is an error to read.
func testBreadcrumbs(e *env) {
	t := e.t
	r := sub("u", "0")
	r.Opts.Retries = 1
	e.submitOne(r, store.Created)
	d := e.reserveOne(store.LaneAsync, "w")
	t0 := e.clock.Now()
	require.NoError(t, e.s.AddBreadcrumbs(e.ctx, []store.Breadcrumb{
		{Ref: r.Ref, At: t0, Kind: "user", Message: "fetching", Data: []byte{0x81, 0xa1, 'k', 0x01}},
		{Ref: ref("nosuch", "0"), At: t0, Kind: "user", Message: "for a run that is not there"},
	}))
	e.clock.Advance(time.Second)
	require.Equal(t, store.Retrying, e.completeOne("w", failed(d, errInfo("flaky"))))
	bs, dropped := e.crumbs("u")
	require.Zero(t, dropped)
	require.Len(t, bs, 2, "%+v", bs)
	require.Equal(t, "user", bs[0].Kind)
	require.Equal(t, "fetching", bs[0].Message)
	require.Equal(t, []byte{0x81, 0xa1, 'k', 0x01}, bs[0].Data)
	e.requireTime(t0, bs[0].At, "breadcrumb time")
	require.Equal(t, r.Ref, bs[0].Ref)
	require.Equal(t, "retry", bs[1].Kind)
	require.Contains(t, bs[1].Message, "attempt 1 on w failed")
	require.Contains(t, bs[1].Message, "flaky")
	e.requireTime(t0.Add(time.Second), bs[1].At, "retry time")
	_, _, err := e.s.Breadcrumbs(e.ctx, "nosuch")
	require.ErrorIs(t, err, store.ErrNotFound)
}

// A run keeps its newest MaxBreadcrumbs (the default here) and counts the
// rest.
func testBreadcrumbsBounded(e *env) {
	t := e.t
	e.submitOne(sub("u", "0"), store.Created)
	n := store.DefaultMaxBreadcrumbs + 5
	batch := make([]store.Breadcrumb, n)
	for i := range batch {
		batch[i] = store.Breadcrumb{Ref: ref("u", "0"), At: e.clock.Now(), Kind: "user", Message: fmt.Sprint(i)}
	}
	require.NoError(t, e.s.AddBreadcrumbs(e.ctx, batch))
	bs, dropped := e.crumbs("u")
	require.Len(t, bs, store.DefaultMaxBreadcrumbs)
	require.Equal(t, 5, dropped, "the oldest five were dropped and counted")
	require.Equal(t, "5", bs[0].Message)
	require.Equal(t, fmt.Sprint(n-1), bs[len(bs)-1].Message)
}

// Runs lists roots newest first, filtered by time, status and name.
func testRunsIndex(e *env) {
	t := e.t
	t0 := e.clock.Now()
	mk := func(unit, name string) {
		s := sub(unit, "0")
		s.Name = name
		e.submitOne(s, store.Created)
		e.clock.Advance(time.Second)
	}
	mk("a", "flow")
	mk("b", "other")
	mk("c", "flow")
	d := e.reserveOne(store.LaneAsync, "w") // a, the oldest
	require.Equal(t, ref("a", "0"), d.Ref)
	require.Equal(t, store.Recorded, e.completeOne("w", ok(d, "done")))
	units := func(q store.RunQuery) []string {
		ops, err := e.s.Runs(e.ctx, q)
		require.NoError(t, err)
		out := make([]string, len(ops))
		for i, op := range ops {
			out[i] = op.Ref.Unit
			require.Equal(t, store.RootPath, op.Ref.Path)
		}
		return out
	}
	require.Equal(t, []string{"c", "b", "a"}, units(store.RunQuery{}))
	require.Equal(t, []string{"c", "b"}, units(store.RunQuery{Limit: 2}))
	require.Equal(t, []string{"c", "a"}, units(store.RunQuery{Name: "flow"}))
	require.Equal(t, []string{"a"}, units(store.RunQuery{Status: store.StatusSucceeded}))
	require.Equal(t, []string{"c", "b"}, units(store.RunQuery{Status: store.StatusPending}))
	require.Equal(t, []string{"c", "b"}, units(store.RunQuery{Since: t0.Add(time.Second)}))
	require.Equal(t, []string{"b", "a"}, units(store.RunQuery{Until: t0.Add(time.Second)}))
	ops, err := e.s.Runs(e.ctx, store.RunQuery{Name: "flow", Status: store.StatusSucceeded})
	require.NoError(t, err)
	require.Len(t, ops, 1)
	require.Equal(t, "w", ops[0].Worker)
	require.Equal(t, 1, ops[0].Attempts)
}

// Unit reads every operation of a run, in call order.
func testUnitOperations(e *env) {
	t := e.t
	e.submitOne(sub("u", "0"), store.Created)
	for _, p := range []string{"0.1", "0.2", "0.10", "0.2.1"} {
		e.submitOne(sub("u", p), store.Created)
	}
	ops, err := e.s.Unit(e.ctx, "u")
	require.NoError(t, err)
	var paths []string
	for _, op := range ops {
		paths = append(paths, op.Ref.Path)
		require.Equal(t, "task", op.Name)
		require.Equal(t, store.StatusPending, op.Status)
	}
	require.Equal(t, []string{"0", "0.1", "0.2", "0.2.1", "0.10"}, paths)
	_, err = e.s.Unit(e.ctx, "nosuch")
	require.ErrorIs(t, err, store.ErrNotFound)
}

// Counts added by several processes merge per minute; a read sums the
// minutes asked for.
func testStatsByMinute(e *env) {
	t := e.t
	minute := e.clock.Now().Truncate(time.Minute)
	var ok, slow store.Counts
	ok.Observe("succeeded", 3*time.Millisecond)
	ok.Observe("retried", 40*time.Millisecond)
	slow.Observe("failed", 2*time.Second)
	lane := store.Counts{}
	lane.Observe("succeeded", 3*time.Millisecond)
	require.NoError(t, e.s.AddStats(e.ctx, store.StatsDelta{Minute: minute,
		Counts: map[string]store.Counts{"step": ok, store.LaneKey(store.LaneAsync): lane}}))
	require.NoError(t, e.s.AddStats(e.ctx, store.StatsDelta{Minute: minute,
		Counts: map[string]store.Counts{"step": slow}}))
	require.NoError(t, e.s.AddStats(e.ctx, store.StatsDelta{Minute: minute.Add(-2 * time.Hour),
		Counts: map[string]store.Counts{"step": ok}}))
	got, err := e.s.ReadStats(e.ctx, minute.Add(-time.Hour), minute.Add(30*time.Second))
	require.NoError(t, err)
	c := got["step"]
	require.Equal(t, int64(1), c.Succeeded)
	require.Equal(t, int64(1), c.Retried)
	require.Equal(t, int64(1), c.Failed)
	require.Equal(t, int64(2043), c.SumMs)
	require.Equal(t, int64(1), c.Buckets[store.BucketOf(3*time.Millisecond)])
	require.Equal(t, int64(1), c.Buckets[store.BucketOf(2*time.Second)])
	require.Equal(t, int64(1), got[store.LaneKey(store.LaneAsync)].Succeeded)
	all, err := e.s.ReadStats(e.ctx, minute.Add(-3*time.Hour), minute.Add(30*time.Second))
	require.NoError(t, err)
	require.Equal(t, int64(2), all["step"].Succeeded, "an older minute counts when asked for")
}

// The timeline shows each operation queued, started and ended, with the
// stored breadcrumbs between, in time order.
func testTimeline(e *env) {
	t := e.t
	e.open("client")
	root := sub("u", "0")
	e.submitOne(root, store.Created)
	dr := e.reserveOne(store.LaneAsync, "w1")
	e.clock.Advance(time.Millisecond)
	call := sub("u", "0.1")
	call.Opts.Retries = 1
	e.submitOne(call, store.Created)
	d1 := e.reserveOne(store.LaneAsync, "w2")
	e.clock.Advance(time.Millisecond)
	require.Equal(t, store.Retrying, e.completeOne("w2", failed(d1, errInfo("once"))))
	e.clock.Advance(time.Millisecond)
	d2 := e.reserveOne(store.LaneAsync, "w2")
	require.NoError(t, e.s.AddBreadcrumbs(e.ctx, []store.Breadcrumb{{Ref: call.Ref, At: e.clock.Now(), Kind: "user", Message: "second try"}}))
	e.clock.Advance(time.Millisecond)
	require.Equal(t, store.Recorded, e.completeOne("w2", ok(d2, "v")))
	e.clock.Advance(time.Millisecond)
	require.Equal(t, store.Recorded, e.completeOne("w1", ok(dr, "r")))

	ops, err := e.s.Unit(e.ctx, "u")
	require.NoError(t, err)
	bs, _ := e.crumbs("u")
	var got []string
	for _, b := range store.Timeline(ops, bs) {
		got = append(got, b.Ref.Path+" "+b.Kind)
	}
	require.Equal(t, []string{
		"0 queued", "0 started", "0.1 queued", "0.1 retry", "0.1 started", "0.1 user",
		"0.1 succeeded", "0 succeeded",
	}, got)
}
