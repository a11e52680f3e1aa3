package storetest

import (
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

// Submission: the happy path from Submit to the waiter's note, idempotent
// submission (join while unfinished, replay once finished), conflicts, and
// invalid items, each failing alone in its batch.

func testSubmitReserveComplete(e *env) {
	t := e.t
	e.open("client", "w-async", "w-blocking")
	t0 := e.clock.Now()

	root := sub("u1", "0")
	root.Name = "app.flow"
	root.Args = []byte("root-args")
	root.Inbox = "client"
	e.submitOne(root, store.Created)

	child := sub("u1", "0.1")
	child.Name = "app.step"
	child.Lane = store.LaneBlocking
	child.Args = []byte{0x00, 0x01, 0xfe, 0xff}
	child.Opts.TimeoutMs = 1500
	child.Inbox = "client"
	e.submitOne(child, store.Created)

	op := e.requireStatus(child.Ref, store.StatusPending)
	require.Equal(t, child.Ref, op.Ref)
	require.Equal(t, "0", op.Parent)
	require.Equal(t, 1, op.Depth)
	require.Equal(t, "app.step", op.Name)
	require.Equal(t, store.LaneBlocking, op.Lane)
	require.Equal(t, child.Args, op.Args)
	require.Zero(t, op.Attempts)
	e.requireTime(t0, op.CreatedAt, "CreatedAt of a pending op")

	e.clock.Advance(2 * time.Second)
	t1 := e.clock.Now()
	d := e.reserveOne(store.LaneBlocking, "w-blocking")
	require.Equal(t, child.Ref, d.Ref)
	require.Equal(t, "0", d.Parent)
	require.Equal(t, 1, d.Depth)
	require.Equal(t, "app.step", d.Name)
	require.Equal(t, store.LaneBlocking, d.Lane)
	require.Equal(t, child.Args, d.Args)
	require.Equal(t, 1, d.Attempt)
	require.Equal(t, int64(1500), d.TimeoutMs)
	require.NotZero(t, d.LeaseID)

	op = e.requireStatus(child.Ref, store.StatusRunning)
	require.Equal(t, 1, op.Attempts)
	require.Equal(t, "w-blocking", op.Worker)
	e.requireTime(t1, op.StartedAt, "StartedAt of a running op")

	rd := e.reserveOne(store.LaneAsync, "w-async")
	require.Equal(t, root.Ref, rd.Ref)
	require.Equal(t, "", rd.Parent)
	require.Equal(t, 0, rd.Depth)
	require.Equal(t, "app.flow", rd.Name)
	require.Equal(t, store.LaneAsync, rd.Lane)
	require.Equal(t, []byte("root-args"), rd.Args)
	require.Equal(t, 1, rd.Attempt)
	require.Zero(t, rd.TimeoutMs)
	require.NotZero(t, rd.LeaseID)

	e.clock.Advance(3 * time.Second)
	t2 := e.clock.Now()
	require.Equal(t, store.Recorded, e.completeOne("w-blocking", ok(d, "child-result")))
	n := e.oneNote(e.pop("client"), store.NoteFinished, child.Ref, store.StatusSucceeded)
	require.Equal(t, []byte("child-result"), n.Result)
	require.Nil(t, n.Error)
	require.Empty(t, e.pop("w-blocking"), "a worker's inbox gets nothing when its work succeeds")

	op = e.requireStatus(child.Ref, store.StatusSucceeded)
	require.Equal(t, []byte("child-result"), op.Result)
	require.Nil(t, op.Error)
	require.Equal(t, 1, op.Attempts)
	require.Equal(t, "w-blocking", op.Worker)
	require.Equal(t, child.Args, op.Args)
	require.Equal(t, "app.step", op.Name)
	e.requireTime(t0, op.CreatedAt, "CreatedAt")
	e.requireTime(t1, op.StartedAt, "StartedAt")
	e.requireTime(t2, op.FinishedAt, "FinishedAt")

	require.Equal(t, store.Recorded, e.completeOne("w-async", ok(rd, "root-result")))
	n = e.oneNote(e.pop("client"), store.NoteFinished, root.Ref, store.StatusSucceeded)
	require.Equal(t, []byte("root-result"), n.Result)
	e.requireStatus(root.Ref, store.StatusSucceeded)

	st := e.stats()
	for l := range st {
		require.Zero(t, st[l].Depth, "depth of lane %d", l)
		require.Zero(t, st[l].Running, "running of lane %d", l)
	}
	e.requireNoWork()
}

func testJoinReplay(e *env) {
	t := e.t
	e.open("A", "B", "C", "D", "w")
	r := sub("u", "0")
	r.Name = "flow"
	r.Inbox = "A"
	e.submitOne(r, store.Created)

	rb := r
	rb.Inbox = "B"
	e.submitOne(rb, store.Joined) // while pending

	d := e.reserveOne(store.LaneAsync, "w")
	rc := r
	rc.Inbox = "C"
	e.submitOne(rc, store.Joined) // while running
	require.Empty(t, e.reserve(store.LaneAsync, "w", 10), "joining must not queue a second copy")
	for _, ib := range []string{"A", "B", "C"} {
		require.Empty(t, e.pop(ib), "inbox %s before the op finishes", ib)
	}

	require.Equal(t, store.Recorded, e.completeOne("w", ok(d, "result")))
	for _, ib := range []string{"A", "B", "C"} {
		n := e.oneNote(e.pop(ib), store.NoteFinished, r.Ref, store.StatusSucceeded)
		require.Equal(t, []byte("result"), n.Result, "inbox %s", ib)
	}

	rd := r
	rd.Inbox = "D"
	e.submitOne(rd, store.Replayed)
	n := e.oneNote(e.pop("D"), store.NoteFinished, r.Ref, store.StatusSucceeded)
	require.Equal(t, []byte("result"), n.Result, "replay delivers the stored result at once")
	for _, ib := range []string{"A", "B", "C"} {
		require.Empty(t, e.pop(ib), "a replay for D must not notify %s again", ib)
	}
	e.requireNoWork()
	op := e.requireStatus(r.Ref, store.StatusSucceeded)
	require.Equal(t, 1, op.Attempts, "a replay does not run the op again")
}

func testConflictPerItem(e *env) {
	t := e.t
	e.open("A", "B")
	r := sub("u", "0")
	r.Name = "flow"
	r.Args = []byte("v1")
	e.submitOne(r, store.Created)

	other := r
	other.Name = "other"
	other.Args = []byte("v2")
	other.Inbox = "A"
	fresh := sub("v", "0")
	fresh.Inbox = "B"
	outs, errs := e.s.Submit(e.ctx, []store.Submission{other, fresh})
	require.Len(t, outs, 2)
	require.Len(t, errs, 2)
	require.ErrorIs(t, errs[0], store.ErrConflict, "same ref, other name")
	require.NoError(t, errs[1], "the other item in the batch is unaffected")
	require.Equal(t, store.Created, outs[1])

	op := e.requireStatus(r.Ref, store.StatusPending)
	require.Equal(t, "flow", op.Name)
	require.Equal(t, []byte("v1"), op.Args)
	e.requireStatus(fresh.Ref, store.StatusPending)

	ds := e.reserve(store.LaneAsync, "w", 10)
	require.ElementsMatch(t, []store.Ref{r.Ref, fresh.Ref}, refsOf(ds))
	for _, d := range ds {
		require.Equal(t, store.Recorded, e.completeOne("w", ok(d, "done")))
	}
	require.Empty(t, e.pop("A"), "a conflicting submission does not make its inbox a waiter")
	e.oneNote(e.pop("B"), store.NoteFinished, fresh.Ref, store.StatusSucceeded)

	// A conflict against a finished op is still a conflict, not a replay.
	_, errs = e.s.Submit(e.ctx, []store.Submission{other})
	require.ErrorIs(t, errs[0], store.ErrConflict, "conflict after finish")
	require.Empty(t, e.pop("A"))
}

func testDuplicateInBatch(e *env) {
	t := e.t
	e.open("A", "B")
	a := sub("u", "0")
	a.Inbox = "A"
	b := a
	b.Inbox = "B"
	require.Equal(t, []store.Outcome{store.Created, store.Joined}, e.submit(a, b))
	ds := e.reserve(store.LaneAsync, "w", 10)
	require.Len(t, ds, 1, "one op for two submissions of one ref")
	require.Equal(t, store.Recorded, e.completeOne("w", ok(ds[0], "x")))
	e.oneNote(e.pop("A"), store.NoteFinished, a.Ref, store.StatusSucceeded)
	e.oneNote(e.pop("B"), store.NoteFinished, a.Ref, store.StatusSucceeded)
}

func testInvalidSubmissions(e *env) {
	t := e.t
	e.open("client")
	e.submitOne(sub("known", "0"), store.Created)

	emptyName := sub("x1", "0")
	emptyName.Name = ""
	badLane := sub("x2", "0")
	badLane.Lane = store.Lane(7)
	orphan := sub("x3", "0.1")
	orphan.Parent = ""
	unknownParent := sub("known", "0.9.1") // "known/0.9" does not exist
	unknownUnit := sub("x4", "0.1")        // unit x4 does not exist

	cases := []struct {
		name  string
		sub   store.Submission
		want  error
		check bool // the ref is well-formed enough to Get
	}{
		{"empty unit", sub("", "0"), store.ErrInvalid, false},
		{"empty path", sub("x0", ""), store.ErrInvalid, false},
		{"empty name", emptyName, store.ErrInvalid, true},
		{"bad lane", badLane, store.ErrInvalid, true},
		{"non-root without parent", orphan, store.ErrInvalid, true},
		{"unknown parent", unknownParent, store.ErrNotFound, true},
		{"unknown parent unit", unknownUnit, store.ErrNotFound, true},
	}
	for _, c := range cases {
		s := c.sub
		s.Inbox = "client"
		outs, errs := e.s.Submit(e.ctx, []store.Submission{s})
		require.Len(t, outs, 1, c.name)
		require.Len(t, errs, 1, c.name)
		require.ErrorIs(t, errs[0], c.want, c.name)
		if c.check {
			e.requireMissing(s.Ref)
		}
	}

	// In one batch, the invalid items fail and the valid one is created.
	batch := []store.Submission{emptyName, sub("good", "0"), badLane, unknownUnit}
	_, errs := e.s.Submit(e.ctx, batch)
	require.Len(t, errs, len(batch))
	require.ErrorIs(t, errs[0], store.ErrInvalid)
	require.NoError(t, errs[1])
	require.ErrorIs(t, errs[2], store.ErrInvalid)
	require.ErrorIs(t, errs[3], store.ErrNotFound)

	for _, u := range []string{"x1", "x2", "x3", "x4"} {
		e.requireMissing(ref(u, "0"))
		_, err := e.s.Cancel(e.ctx, u, "", "")
		require.ErrorIs(t, err, store.ErrNotFound, "unit %s must not have been created", u)
	}
	st := e.stats()
	require.Equal(t, 2, st[store.LaneAsync].Depth, "only known/0 and good/0 are queued")
	require.Zero(t, st[store.LaneBlocking].Depth)
	require.ElementsMatch(t, []store.Ref{ref("known", "0"), ref("good", "0")}, refsOf(e.reserve(store.LaneAsync, "w", 10)))
	require.Empty(t, e.pop("client"), "rejected submissions notify no one")
}
