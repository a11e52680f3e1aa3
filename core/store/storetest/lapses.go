package storetest

import (
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

// Lease lapses, progress, and taking back a gone worker's leases.

// lapseOnce hands the operation to worker under a 10 s lease and lets the
// lease lapse; it returns the delivery and Reclaim's report of the lapse.
func (e *env) lapseOnce(lane store.Lane, worker string, during func(store.Delivery)) (store.Delivery, store.Lapse) {
	e.t.Helper()
	ds := e.reserveLease(lane, worker, 1, 10*time.Second)
	require.Len(e.t, ds, 1, "the operation is handed out")
	if during != nil {
		during(ds[0])
	}
	e.clock.Advance(11 * time.Second)
	r, err := e.s.Reclaim(e.ctx, e.clock.Now())
	require.NoError(e.t, err, "Reclaim")
	require.Len(e.t, r.Lapsed, 1, "one lapse reported: %+v", r)
	l := r.Lapsed[0]
	require.Equal(e.t, ds[0].Ref, l.Ref)
	require.Equal(e.t, worker, l.Worker, "the lapse names the holder")
	require.Equal(e.t, "task", l.Name)
	return ds[0], l
}

// Lapses in a row without progress are counted and reported, and the one
// past the limit fails the operation.
func testLapseWithoutProgressCounted(e *env) {
	t := e.t
	r := sub("u", "0")
	e.submitOne(r, store.Created)
	for i := 1; i <= store.DefaultMaxLapses; i++ {
		_, l := e.lapseOnce(store.LaneAsync, "w", nil)
		require.False(t, l.Progress)
		require.Equal(t, i, l.Lapses, "lapse %d in a row", i)
		require.False(t, l.Failed)
	}
	_, l := e.lapseOnce(store.LaneAsync, "w", nil)
	require.True(t, l.Failed, "one lapse past the limit fails it")
	require.Equal(t, store.DefaultMaxLapses+1, l.Lapses)
	op := e.requireStatus(r.Ref, store.StatusFailed)
	require.Equal(t, store.WorkerLostType, op.Error.Type)
	require.Contains(t, op.Error.Message, "without progress")
}

// A caller whose worker dies while it waits on a call it made was parked,
// not running code: that lapse is not counted, however often it happens.
func testLapseWhileWaiting(e *env) {
	t := e.t
	root := sub("u", "0")
	e.submitOne(root, store.Created)
	call := sub("u", "0.1")
	call.Lane = store.LaneBlocking // nobody serves it meanwhile
	first := true
	for i := 0; i < 3*store.DefaultMaxLapses; i++ {
		_, l := e.lapseOnce(store.LaneAsync, "w", func(d store.Delivery) {
			if first { // the first attempt makes the call; replays join it
				e.submitOne(call, store.Created)
				first = false
			} else {
				e.submitOne(call, store.Joined)
			}
		})
		require.True(t, l.Progress, "lapse %d: waiting on a call counts as progress", i)
		require.Zero(t, l.Lapses)
		e.requireStatus(root.Ref, store.StatusPending)
	}
	// The call it waits on is still queued; the caller is too.
	require.Len(t, e.reserve(store.LaneAsync, "w2", 10), 1)
	require.Len(t, e.reserve(store.LaneBlocking, "w2", 10), 1)
}

// A caller whose worker died after a call it made finished (it got further
// than before) made progress; one that replays only finished calls and
// dies again did not.
func testLapseAfterCallFinished(e *env) {
	t := e.t
	root := sub("u", "0")
	e.submitOne(root, store.Created)
	call := sub("u", "0.1")
	call.Lane = store.LaneBlocking
	_, l := e.lapseOnce(store.LaneAsync, "w", func(store.Delivery) {
		e.submitOne(call, store.Created)
	})
	require.True(t, l.Progress, "it made a call")
	// The call runs and finishes while the caller is queued again.
	d := e.reserveOne(store.LaneBlocking, "w2")
	require.Equal(t, ref("u", "0.1"), d.Ref)
	e.clock.Advance(time.Second)
	require.Equal(t, store.Recorded, e.completeOne("w2", ok(d, "one")))
	// The replay finds the call finished and dies: no progress this time.
	e.clock.Advance(time.Second)
	_, l = e.lapseOnce(store.LaneAsync, "w", func(store.Delivery) {
		e.submitOne(call, store.Replayed)
	})
	require.False(t, l.Progress, "a replay that only found finished calls made no progress")
	require.Equal(t, 1, l.Lapses)
}

// A lease that was renewed at least once before it lapsed saw its holder
// at work: not counted.
func testLapseAfterRenewal(e *env) {
	t := e.t
	r := sub("u", "0")
	e.submitOne(r, store.Created)
	_, l := e.lapseOnce(store.LaneAsync, "w", nil)
	require.Equal(t, 1, l.Lapses)
	for i := 0; i < 2*store.DefaultMaxLapses; i++ {
		_, l = e.lapseOnce(store.LaneAsync, "w", func(d store.Delivery) {
			e.clock.Advance(5 * time.Second)
			lost, err := e.s.Renew(e.ctx, "w", map[store.Ref]uint64{d.Ref: d.LeaseID}, 10*time.Second)
			require.NoError(t, err)
			require.Empty(t, lost)
			e.clock.Advance(5 * time.Second)
		})
		require.True(t, l.Progress, "renewed before it lapsed")
		require.Zero(t, l.Lapses, "progress clears the count")
	}
	e.requireStatus(r.Ref, store.StatusPending)
}

// ReclaimWorker takes back what one worker holds, at once, and only that.
func testReclaimWorker(e *env) {
	t := e.t
	e.open("client")
	a, b, c := sub("a", "0"), sub("b", "0"), sub("c", "0")
	a.Inbox = "client"
	e.submit(a, b, c)
	mine := e.reserve(store.LaneAsync, "dead", 2)
	require.Len(t, mine, 2)
	theirs := e.reserveOne(store.LaneAsync, "alive")

	r, err := e.s.ReclaimWorker(e.ctx, "dead", e.clock.Now())
	require.NoError(t, err)
	require.Equal(t, 2, r.Moved)
	require.ElementsMatch(t, refsOf(mine), []store.Ref{r.Lapsed[0].Ref, r.Lapsed[1].Ref})
	for _, l := range r.Lapsed {
		require.Equal(t, "dead", l.Worker)
		require.Equal(t, 1, l.Lapses)
	}
	e.requireStatus(theirs.Ref, store.StatusRunning)
	again := e.reserve(store.LaneAsync, "new", 10)
	require.ElementsMatch(t, refsOf(mine), refsOf(again), "the gone worker's work is ready at once")
	for _, d := range mine {
		require.Equal(t, store.Stale, e.completeOne("dead", ok(d, "late")), "the gone worker's lease is void")
	}
	r, err = e.s.ReclaimWorker(e.ctx, "nobody", e.clock.Now())
	require.NoError(t, err)
	require.Zero(t, r.Moved)
	_, err = e.s.ReclaimWorker(e.ctx, "", e.clock.Now())
	require.ErrorIs(t, err, store.ErrInvalid)
}

// Repair finds nothing to mend in a store used only through its interface,
// and changes nothing.
func testRepairHealthy(e *env) {
	t := e.t
	e.open("client", "w")
	for _, u := range []string{"a", "b", "c", "d"} {
		s := sub(u, "0")
		s.Inbox = "client"
		s.Opts.Retries = 1
		s.Opts.BackoffMs = 60_000
		e.submitOne(s, store.Created)
	}
	da := e.reserveOne(store.LaneAsync, "w")
	db := e.reserveOne(store.LaneAsync, "w")
	dc := e.reserveOne(store.LaneAsync, "w")
	require.Equal(t, store.Recorded, e.completeOne("w", ok(da, "done")))
	require.Equal(t, store.Retrying, e.completeOne("w", failed(db, errInfo("again"))))
	before := e.stats()

	repairs, err := e.s.Repair(e.ctx, e.clock.Now())
	require.NoError(t, err)
	require.Empty(t, repairs)
	require.Equal(t, before, e.stats(), "nothing moved")
	e.requireStatus(dc.Ref, store.StatusRunning)
	require.Equal(t, store.Recorded, e.completeOne("w", ok(dc, "still mine")))
}
