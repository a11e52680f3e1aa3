package storetest

import (
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

// Operator reads and actions: Stats, the dead letters Failed lists,
// Requeue of a failed or cancelled run (its successful calls replay, the
// rest run again), and Repair leaving a healthy store alone.

func testStats(e *env) {
	t := e.t
	st := e.stats()
	for l := range st {
		require.Equal(t, store.LaneStats{}, st[l], "an empty store")
	}
	for _, u := range []string{"a1", "a2", "a3"} {
		e.submitOne(sub(u, "0"), store.Created)
	}
	for _, u := range []string{"b1", "b2"} {
		s := sub(u, "0")
		s.Lane = store.LaneBlocking
		e.submitOne(s, store.Created)
	}
	e.clock.Advance(5 * time.Second)
	st = e.stats()
	require.Equal(t, 3, st[store.LaneAsync].Depth)
	require.Equal(t, 2, st[store.LaneBlocking].Depth)
	require.Zero(t, st[store.LaneAsync].Running)
	require.Zero(t, st[store.LaneBlocking].Running)
	e.requireAge(5*time.Second, st[store.LaneAsync].OldestAge, "async oldest age")
	e.requireAge(5*time.Second, st[store.LaneBlocking].OldestAge, "blocking oldest age")

	e.submitOne(sub("a4", "0"), store.Created)
	d := e.reserveOne(store.LaneAsync, "w")
	require.Equal(t, ref("a1", "0"), d.Ref)
	e.clock.Advance(2 * time.Second)
	st = e.stats()
	require.Equal(t, 3, st[store.LaneAsync].Depth)
	require.Equal(t, 1, st[store.LaneAsync].Running)
	e.requireAge(7*time.Second, st[store.LaneAsync].OldestAge, "async oldest age grows with the clock")
	require.Equal(t, 2, st[store.LaneBlocking].Depth)
	e.requireAge(7*time.Second, st[store.LaneBlocking].OldestAge, "blocking oldest age grows with the clock")

	require.Len(t, e.reserve(store.LaneBlocking, "w", 10), 2)
	st = e.stats()
	require.Zero(t, st[store.LaneBlocking].Depth)
	require.Equal(t, 2, st[store.LaneBlocking].Running)
	require.Zero(t, st[store.LaneBlocking].OldestAge, "no ready op, no age")
	require.Equal(t, 3, st[store.LaneAsync].Depth)

	require.Equal(t, store.Recorded, e.completeOne("w", ok(d, "x")))
	st = e.stats()
	require.Zero(t, st[store.LaneAsync].Running)
	require.Equal(t, 3, st[store.LaneAsync].Depth)
}

func (e *env) failed(offset, limit int) []store.Operation {
	e.t.Helper()
	ops, err := e.s.Failed(e.ctx, offset, limit)
	require.NoError(e.t, err, "Failed(%d, %d)", offset, limit)
	return ops
}

func opRefs(ops []store.Operation) []store.Ref {
	out := make([]store.Ref, len(ops))
	for i, op := range ops {
		out[i] = op.Ref
	}
	return out
}

// runRoot runs a root op of its own unit to the end on the async lane,
// which must have nothing else ready; info nil means success.
func (e *env) runRoot(unit string, info *store.ErrorInfo) {
	e.t.Helper()
	e.submitOne(sub(unit, "0"), store.Created)
	d := e.reserveOne(store.LaneAsync, "w")
	require.Equal(e.t, ref(unit, "0"), d.Ref)
	c := ok(d, "done")
	if info != nil {
		c = failed(d, info)
	}
	require.Equal(e.t, store.Recorded, e.completeOne("w", c))
}

func testFailedList(e *env) {
	t := e.t
	require.Empty(t, e.failed(0, 10), "no dead letters yet")

	e.runRoot("f1", errInfo("one"))
	e.clock.Advance(time.Second)
	e.runRoot("s1", nil) // succeeded: not a dead letter
	e.clock.Advance(time.Second)
	e.submitOne(sub("c1", "0"), store.Created) // cancelled: not a dead letter
	n, err := e.s.Cancel(e.ctx, "c1", "", "")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	e.clock.Advance(time.Second)
	e.runRoot("f2", errInfo("two"))
	e.clock.Advance(time.Second)

	// A failed call inside a run that succeeds is not a dead letter.
	e.submitOne(sub("k1", "0"), store.Created)
	dk := e.reserveOne(store.LaneAsync, "w")
	e.submitOne(sub("k1", "0.1"), store.Created)
	dc := e.reserveOne(store.LaneAsync, "w")
	require.Equal(t, ref("k1", "0.1"), dc.Ref)
	require.Equal(t, store.Recorded, e.completeOne("w", failed(dc, errInfo("child"))))
	require.Equal(t, store.Recorded, e.completeOne("w", ok(dk, "fine")))
	e.clock.Advance(time.Second)

	// Failed by the system (Fail), on the blocking lane.
	f3 := sub("f3", "0")
	f3.Lane = store.LaneBlocking
	e.submitOne(f3, store.Created)
	d3 := e.reserveOne(store.LaneBlocking, "w")
	t3 := e.clock.Now()
	out, err := e.s.Fail(e.ctx, f3.Ref, d3.LeaseID, *errInfo("three"))
	require.NoError(t, err)
	require.Equal(t, store.Recorded, out)
	e.clock.Advance(time.Second)

	// A failure with retries left is not a dead letter (yet).
	r1 := sub("r1", "0")
	r1.Lane = store.LaneBlocking
	r1.Opts.Retries = 1
	e.submitOne(r1, store.Created)
	dr := e.reserveOne(store.LaneBlocking, "w")
	require.Equal(t, store.Retrying, e.completeOne("w", failed(dr, errInfo("retry me"))))

	all := e.failed(0, 10)
	require.Equal(t, []store.Ref{ref("f3", "0"), ref("f2", "0"), ref("f1", "0")}, opRefs(all), "failed roots, most recent first")
	top := all[0]
	require.Equal(t, store.StatusFailed, top.Status)
	require.Equal(t, errInfo("three"), top.Error, "the record carries the error")
	require.Equal(t, "task", top.Name)
	require.Equal(t, store.LaneBlocking, top.Lane)
	require.Equal(t, 1, top.Attempts)
	e.requireTime(t3, top.FinishedAt, "FinishedAt of a dead letter")

	require.Equal(t, []store.Ref{ref("f2", "0")}, opRefs(e.failed(1, 1)), "offset 1, limit 1")
	require.Equal(t, []store.Ref{ref("f3", "0"), ref("f2", "0")}, opRefs(e.failed(0, 2)), "limit 2")
	require.Equal(t, []store.Ref{ref("f1", "0")}, opRefs(e.failed(2, 10)), "offset 2")
	require.Empty(t, e.failed(3, 10), "offset past the end")

	// A requeued unit leaves the list; when it fails again it comes back
	// once, as the most recent.
	require.NoError(t, e.s.Requeue(e.ctx, "f1"))
	require.Equal(t, []store.Ref{ref("f3", "0"), ref("f2", "0")}, opRefs(e.failed(0, 10)))
	e.clock.Advance(time.Second)
	d := e.reserveOne(store.LaneAsync, "w")
	require.Equal(t, ref("f1", "0"), d.Ref)
	require.Equal(t, store.Recorded, e.completeOne("w", failed(d, errInfo("one again"))))
	all = e.failed(0, 10)
	require.Equal(t, []store.Ref{ref("f1", "0"), ref("f3", "0"), ref("f2", "0")}, opRefs(all))
	require.Equal(t, "one again", all[0].Error.Message)
}

func testRequeue(e *env) {
	t := e.t
	e.open("client", "w")
	root := sub("u", "0")
	root.Name = "flow"
	root.Args = []byte("root-args")
	root.Inbox = "client"
	e.submitOne(root, store.Created)
	dRoot := e.reserveOne(store.LaneAsync, "w")
	kids := blockingCalls("u", "client", "0.1", "0.2", "0.3", "0.4")
	e.submit(kids...)
	d1 := e.reserveOne(store.LaneBlocking, "w")
	require.Equal(t, kids[0].Ref, d1.Ref)
	require.Equal(t, store.Recorded, e.completeOne("w", ok(d1, "r1")))
	d2 := e.reserveOne(store.LaneBlocking, "w")
	require.Equal(t, kids[1].Ref, d2.Ref)
	require.Equal(t, store.Recorded, e.completeOne("w", failed(d2, errInfo("kid failed"))))
	n, err := e.s.Cancel(e.ctx, "u", "0.3", "")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	// 0.4 is still pending when the root fails, which cancels it.
	require.Equal(t, store.Recorded, e.completeOne("w", failed(dRoot, errInfo("root failed"))))
	e.requireStatus(kids[3].Ref, store.StatusCancelled)
	require.Len(t, e.pop("client"), 5, "every op of the run has told the client")
	require.Equal(t, []store.Ref{root.Ref}, opRefs(e.failed(0, 10)))

	err = e.s.Requeue(e.ctx, "nope")
	require.ErrorIs(t, err, store.ErrNotFound, "an unknown unit")

	e.clock.Advance(time.Minute)
	require.NoError(t, e.s.Requeue(e.ctx, "u"))
	op := e.requireStatus(root.Ref, store.StatusPending)
	require.Zero(t, op.Attempts, "attempts are reset")
	require.Nil(t, op.Error)
	require.Empty(t, op.Result)
	require.Equal(t, "flow", op.Name)
	require.Equal(t, []byte("root-args"), op.Args, "the arguments are kept")
	require.Empty(t, e.failed(0, 10), "a requeued unit leaves the dead letters")
	st := e.stats()
	require.Equal(t, 1, st[store.LaneAsync].Depth, "the root is queued again")
	require.Zero(t, st[store.LaneBlocking].Depth)
	e.requireStatus(kids[0].Ref, store.StatusSucceeded)
	for _, k := range kids[1:] {
		e.requireMissing(k.Ref) // failed and cancelled calls are forgotten
	}
	require.ErrorIs(t, e.s.Requeue(e.ctx, "u"), store.ErrInvalid, "a pending unit")

	// The replay.
	d := e.reserveOne(store.LaneAsync, "w2")
	require.Equal(t, root.Ref, d.Ref)
	require.Equal(t, 1, d.Attempt, "the first attempt of the requeued run")
	require.Equal(t, []byte("root-args"), d.Args)
	require.NotEqual(t, dRoot.LeaseID, d.LeaseID)
	require.Equal(t, store.Stale, e.completeOne("w", ok(dRoot, "late")), "the old lease is gone")
	require.ErrorIs(t, e.s.Requeue(e.ctx, "u"), store.ErrInvalid, "a running unit")

	outs := e.submit(kids...)
	require.Equal(t, []store.Outcome{store.Replayed, store.Created, store.Created, store.Created}, outs,
		"the succeeded call replays, the others run again")
	nt := e.oneNote(e.pop("client"), store.NoteFinished, kids[0].Ref, store.StatusSucceeded)
	require.Equal(t, []byte("r1"), nt.Result, "the stored result")
	ds := e.reserve(store.LaneBlocking, "w2", 10)
	require.ElementsMatch(t, []store.Ref{kids[1].Ref, kids[2].Ref, kids[3].Ref}, refsOf(ds))
	for _, dk := range ds {
		require.Equal(t, 1, dk.Attempt)
		require.Equal(t, store.Recorded, e.completeOne("w2", ok(dk, "again")))
	}
	require.Equal(t, store.Recorded, e.completeOne("w2", ok(d, "root done")))
	op = e.requireStatus(root.Ref, store.StatusSucceeded)
	require.Equal(t, 1, op.Attempts)
	require.Equal(t, "w2", op.Worker)
	require.Len(t, e.pop("client"), 3, "the re-run calls tell their waiter")
	require.ErrorIs(t, e.s.Requeue(e.ctx, "u"), store.ErrInvalid, "a succeeded unit")
	require.Empty(t, e.failed(0, 10))
	e.requireNoWork()
}

func testRequeueCancelled(e *env) {
	t := e.t
	e.open("client", "w")
	r := sub("c", "0")
	e.submitOne(r, store.Created)
	d := e.reserveOne(store.LaneAsync, "w")
	n, err := e.s.Cancel(e.ctx, "c", "", "stop")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	e.oneNote(e.pop("w"), store.NoteCancel, r.Ref, 0)
	require.Empty(t, e.failed(0, 10), "a cancelled run is not a dead letter")

	require.NoError(t, e.s.Requeue(e.ctx, "c"))
	op := e.requireStatus(r.Ref, store.StatusPending)
	require.Zero(t, op.Attempts)
	require.Nil(t, op.Error)
	require.NoError(t, e.s.Watch(e.ctx, r.Ref, "client"))
	d2 := e.reserveOne(store.LaneAsync, "w")
	require.Equal(t, 1, d2.Attempt)
	require.Equal(t, store.Stale, e.completeOne("w", ok(d, "late")))
	require.Equal(t, store.Recorded, e.completeOne("w", ok(d2, "done")))
	nt := e.oneNote(e.pop("client"), store.NoteFinished, r.Ref, store.StatusSucceeded)
	require.Equal(t, []byte("done"), nt.Result)
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
