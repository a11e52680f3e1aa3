package storetest

import (
	"context"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

// Reserve and leases: lanes, priority then FIFO, max, a waiting Reserve
// (woken by work, ended by its wait or its context), and what becomes of a
// lease: lapse, renewal, release, lapses with and without progress, and a
// gone worker's leases taken back at once.

func testLanesAreSeparate(e *env) {
	t := e.t
	a := sub("a", "0")
	b := sub("b", "0")
	b.Lane = store.LaneBlocking
	e.submit(a, b)

	ds := e.reserve(store.LaneBlocking, "w-blocking", 10)
	require.Equal(t, []store.Ref{b.Ref}, refsOf(ds), "the blocking lane delivers only blocking work")
	ds = e.reserve(store.LaneAsync, "w-async", 10)
	require.Equal(t, []store.Ref{a.Ref}, refsOf(ds), "the async lane delivers only async work")
	e.requireNoWork()

	_, err := e.s.Reserve(e.ctx, store.Lane(store.NumLanes), "w", 1, testLease, 0)
	require.ErrorIs(t, err, store.ErrInvalid, "Reserve on an unknown lane")
}

func testPriorityFIFOMax(e *env) {
	t := e.t
	order := []struct {
		unit string
		prio int
	}{{"p1", 0}, {"p2", 5}, {"p3", 0}, {"p4", 5}, {"p5", -1}, {"p6", 5}}
	for _, o := range order {
		s := sub(o.unit, "0")
		s.Opts.Priority = o.prio
		e.submitOne(s, store.Created) // one call each: FIFO must hold across calls
	}
	ds := e.reserve(store.LaneAsync, "w", 2)
	require.Equal(t, []store.Ref{ref("p2", "0"), ref("p4", "0")}, refsOf(ds), "max 2: the two oldest of the highest priority")
	ds = e.reserve(store.LaneAsync, "w", 10)
	require.Equal(t, []store.Ref{ref("p6", "0"), ref("p1", "0"), ref("p3", "0"), ref("p5", "0")}, refsOf(ds),
		"higher priority first, FIFO among equals")
	e.requireNoWork()
}

func testReserveWakes(e *env) {
	t := e.t
	res := ReserveAsync(e.ctx, e.s, store.LaneBlocking, "w", 10, testLease, longWait)
	other := sub("async", "0") // work on the other lane must not satisfy it
	e.submitOne(other, store.Created)
	s := sub("u", "0")
	s.Lane = store.LaneBlocking
	s.Args = []byte("payload")
	e.submitOne(s, store.Created)
	got := await(e, res, "Reserve", "a blocked Reserve must return when work is submitted")
	require.NoError(t, got.Err)
	require.Len(t, got.Deliveries, 1)
	require.Equal(t, s.Ref, got.Deliveries[0].Ref)
	require.Equal(t, []byte("payload"), got.Deliveries[0].Args)
	require.Equal(t, 1, got.Deliveries[0].Attempt)
	e.requireStatus(s.Ref, store.StatusRunning)
	e.requireStatus(other.Ref, store.StatusPending)
}

func testReserveWaitExpires(e *env) {
	t := e.t
	// The wait is real time; the scenario's clock stands still meanwhile.
	ctx, cancel := context.WithTimeout(e.ctx, wakeTimeout)
	defer cancel()
	begin := time.Now()
	ds, err := e.s.Reserve(ctx, store.LaneAsync, "w", 10, testLease, shortWait)
	took := time.Since(begin)
	require.NoError(t, err, "Reserve with nothing to do returns empty after its wait (took %v)", took)
	require.Empty(t, ds)
	require.GreaterOrEqual(t, took, shortWait/2, "Reserve returned before its wait")
}

func testReserveCtxCancel(e *env) {
	t := e.t
	ctx, cancel := context.WithCancel(e.ctx)
	res := ReserveAsync(ctx, e.s, store.LaneAsync, "w", 10, testLease, longWait)
	cancel()
	got := await(e, res, "Reserve", "a blocked Reserve must return when its context is cancelled")
	require.ErrorIs(t, got.Err, context.Canceled)
	require.Empty(t, got.Deliveries)

	// Nothing was taken: work submitted now is still there.
	e.submitOne(sub("u", "0"), store.Created)
	e.reserveOne(store.LaneAsync, "w2")
}

func testLeaseLapse(e *env) {
	t := e.t
	e.open("client")
	r := sub("u", "0")
	r.Inbox = "client"
	r.Opts.Retries = 1 // a lapse may count as an attempt; leave room for one
	e.submitOne(r, store.Created)
	ds := e.reserveLease(store.LaneAsync, "w1", 1, 10*time.Second)
	require.Len(t, ds, 1)
	d1 := ds[0]

	e.clock.Advance(9 * time.Second)
	require.Zero(t, e.reclaim(), "the lease has not lapsed yet")
	e.requireStatus(r.Ref, store.StatusRunning)

	e.clock.Advance(2 * time.Second)
	require.Equal(t, 1, e.reclaim(), "the lapsed lease is reclaimed")
	require.Equal(t, 1, e.stats()[store.LaneAsync].Depth)
	require.Zero(t, e.stats()[store.LaneAsync].Running)

	d2 := e.reserveOne(store.LaneAsync, "w2")
	require.Equal(t, r.Ref, d2.Ref)
	require.Equal(t, 2, d2.Attempt)
	require.NotEqual(t, d1.LeaseID, d2.LeaseID, "a new attempt gets a new lease")
	require.Equal(t, store.Stale, e.completeOne("w1", ok(d1, "late")), "the lapsed holder's completion")
	op := e.requireStatus(r.Ref, store.StatusRunning)
	require.Equal(t, "w2", op.Worker)
	require.Empty(t, e.pop("client"))

	require.Equal(t, store.Recorded, e.completeOne("w2", ok(d2, "fresh")))
	n := e.oneNote(e.pop("client"), store.NoteFinished, r.Ref, store.StatusSucceeded)
	require.Equal(t, []byte("fresh"), n.Result)
}

func testLeaseRenew(e *env) {
	t := e.t
	a := sub("a", "0")
	a.Opts.Retries = 1
	b := sub("b", "0")
	b.Opts.Retries = 1
	e.submit(a, b)
	ds := e.reserveLease(store.LaneAsync, "w1", 2, 10*time.Second)
	require.Len(t, ds, 2)
	da, db := ds[0], ds[1]
	require.Equal(t, a.Ref, da.Ref)
	require.Equal(t, b.Ref, db.Ref)

	e.clock.Advance(8 * time.Second)
	lost, err := e.s.Renew(e.ctx, "w1", map[store.Ref]uint64{a.Ref: da.LeaseID, b.Ref: db.LeaseID}, 10*time.Second)
	require.NoError(t, err)
	require.Empty(t, lost, "both leases are held")

	e.clock.Advance(8 * time.Second) // 16s after Reserve, 8s after Renew
	require.Zero(t, e.reclaim(), "renewed leases do not lapse")
	e.requireStatus(a.Ref, store.StatusRunning)
	e.requireStatus(b.Ref, store.StatusRunning)

	require.Equal(t, store.Recorded, e.completeOne("w1", ok(da, "done")))
	e.clock.Advance(3 * time.Second) // 11s after Renew
	require.Equal(t, 1, e.reclaim(), "b lapses")
	db2 := e.reserveOne(store.LaneAsync, "w2")
	require.Equal(t, b.Ref, db2.Ref)

	lost, err = e.s.Renew(e.ctx, "w1", map[store.Ref]uint64{a.Ref: da.LeaseID, b.Ref: db.LeaseID}, 10*time.Second)
	require.NoError(t, err)
	require.ElementsMatch(t, []store.Ref{a.Ref, b.Ref}, lost, "a finished, b reclaimed")

	lost, err = e.s.Renew(e.ctx, "w1", map[store.Ref]uint64{b.Ref: db2.LeaseID}, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, []store.Ref{b.Ref}, lost, "another worker's lease is not renewed")

	lost, err = e.s.Renew(e.ctx, "w2", map[store.Ref]uint64{b.Ref: db2.LeaseID}, 10*time.Second)
	require.NoError(t, err)
	require.Empty(t, lost)
	e.clock.Advance(9 * time.Second)
	require.Zero(t, e.reclaim())
	require.Equal(t, store.Recorded, e.completeOne("w2", ok(db2, "done")))
}

// The contract says Reclaim returns lapsed operations to their queue "or
// fails them if out of attempts". An op without retries has one attempt.
func testLeaseLapseOutOfAttempts(e *env) {
	t := e.t
	e.open("client")
	r := sub("u", "0")
	r.Inbox = "client" // Retries 0: lapses still do not use up retries
	e.submitOne(r, store.Created)
	var last store.Delivery
	for i := 0; i <= store.DefaultMaxLapses; i++ {
		ds := e.reserveLease(store.LaneAsync, "w1", 1, 10*time.Second)
		require.Len(t, ds, 1, "lapse %d: the op is handed out again", i)
		last = ds[0]
		e.clock.Advance(11 * time.Second)
		e.reclaim()
	}
	op := e.requireStatus(r.Ref, store.StatusFailed)
	require.NotNil(t, op.Error, "an op that keeps losing its workers records why it failed")
	require.Equal(t, store.WorkerLostType, op.Error.Type)
	n := e.oneNote(e.pop("client"), store.NoteFinished, r.Ref, store.StatusFailed)
	require.NotNil(t, n.Error)
	e.requireNoWork()
	require.Equal(t, store.Stale, e.completeOne("w1", ok(last, "late")))
}

func testRelease(e *env) {
	t := e.t
	r := sub("u", "0")
	r.Opts.Retries = 1
	e.submitOne(r, store.Created)
	d1 := e.reserveOne(store.LaneAsync, "w1")
	require.Equal(t, 1, d1.Attempt)

	require.NoError(t, e.s.Release(e.ctx, "w1", map[store.Ref]uint64{r.Ref: d1.LeaseID}))
	st := e.stats()
	require.Equal(t, 1, st[store.LaneAsync].Depth, "released work is ready at once")
	require.Zero(t, st[store.LaneAsync].Running)
	e.requireStatus(r.Ref, store.StatusPending)

	d2 := e.reserveOne(store.LaneAsync, "w2")
	require.Equal(t, 1, d2.Attempt, "a release does not count an attempt")
	require.NotEqual(t, d1.LeaseID, d2.LeaseID)
	require.Equal(t, store.Stale, e.completeOne("w1", ok(d1, "late")))

	// A release with a stale lease changes nothing.
	require.NoError(t, e.s.Release(e.ctx, "w1", map[store.Ref]uint64{r.Ref: d1.LeaseID}))
	op := e.requireStatus(r.Ref, store.StatusRunning)
	require.Equal(t, "w2", op.Worker)

	require.Equal(t, store.Retrying, e.completeOne("w2", failed(d2, errInfo("x"))))
	d3 := e.reserveOne(store.LaneAsync, "w2")
	require.Equal(t, 2, d3.Attempt)
	require.NoError(t, e.s.Release(e.ctx, "w2", map[store.Ref]uint64{r.Ref: d3.LeaseID}))
	d4 := e.reserveOne(store.LaneAsync, "w3")
	require.Equal(t, 2, d4.Attempt, "still the second attempt after a release")
	require.Equal(t, store.Recorded, e.completeOne("w3", ok(d4, "done")))
	require.Equal(t, 2, e.requireStatus(r.Ref, store.StatusSucceeded).Attempts)
}

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
