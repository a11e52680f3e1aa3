package storetest

import (
	"context"
	"fmt"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

// Completion and notes: the first result wins and a completion needs the
// lease it was given; Watch; inboxes (Pop woken by a note, non-blocking
// with a max, its wait running out, unknown, closed and reopened inboxes).

func testCompletionFirstWins(e *env) {
	t := e.t
	e.open("client", "w1", "w2")
	r := sub("u", "0")
	r.Inbox = "client"
	e.submitOne(r, store.Created)
	d := e.reserveOne(store.LaneAsync, "w1")

	wrongLease := ok(d, "bad")
	wrongLease.LeaseID = d.LeaseID + 1000
	require.Equal(t, store.Stale, e.completeOne("w1", wrongLease), "wrong lease id")
	require.Equal(t, store.Stale, e.completeOne("w2", ok(d, "bad")), "wrong worker")
	op := e.requireStatus(r.Ref, store.StatusRunning)
	require.Empty(t, op.Result)
	require.Equal(t, "w1", op.Worker)
	require.Empty(t, e.pop("client"), "stale completions tell no one")

	require.Equal(t, store.Recorded, e.completeOne("w1", ok(d, "first")))
	require.Equal(t, store.Stale, e.completeOne("w1", ok(d, "second")), "second completion with the same lease")
	require.Equal(t, store.Stale, e.completeOne("w1", failed(d, errInfo("late"))), "late failure")
	op = e.requireStatus(r.Ref, store.StatusSucceeded)
	require.Equal(t, []byte("first"), op.Result)
	require.Nil(t, op.Error)
	n := e.oneNote(e.pop("client"), store.NoteFinished, r.Ref, store.StatusSucceeded)
	require.Equal(t, []byte("first"), n.Result)

	// A batch mixes outcomes item by item.
	e.submit(sub("v", "0"), sub("x", "0"))
	ds := e.reserve(store.LaneAsync, "w1", 2)
	require.Len(t, ds, 2)
	stale := ok(ds[1], "bad")
	stale.LeaseID = ds[1].LeaseID + 1000
	outs := e.complete("w1", ok(ds[0], "a"), stale, ok(d, "again"))
	require.Equal(t, []store.CompleteOutcome{store.Recorded, store.Stale, store.Stale}, outs)
	e.requireStatus(ds[0].Ref, store.StatusSucceeded)
	e.requireStatus(ds[1].Ref, store.StatusRunning)
}

func testWatch(e *env) {
	t := e.t
	e.open("watcher", "late")
	r := sub("u", "0")
	e.submitOne(r, store.Created)
	require.NoError(t, e.s.Watch(e.ctx, r.Ref, "watcher"))
	require.Empty(t, e.pop("watcher"))
	d := e.reserveOne(store.LaneAsync, "w")
	require.Equal(t, store.Recorded, e.completeOne("w", ok(d, "value")))
	n := e.oneNote(e.pop("watcher"), store.NoteFinished, r.Ref, store.StatusSucceeded)
	require.Equal(t, []byte("value"), n.Result)

	require.NoError(t, e.s.Watch(e.ctx, r.Ref, "late"))
	n = e.oneNote(e.pop("late"), store.NoteFinished, r.Ref, store.StatusSucceeded)
	require.Equal(t, []byte("value"), n.Result, "watching a finished op delivers at once")

	err := e.s.Watch(e.ctx, ref("u", "0.5"), "watcher")
	require.ErrorIs(t, err, store.ErrNotFound, "unknown path")
	err = e.s.Watch(e.ctx, ref("nope", "0"), "watcher")
	require.ErrorIs(t, err, store.ErrNotFound, "unknown unit")
	require.Empty(t, e.pop("watcher"))
}

func testPopWakes(e *env) {
	t := e.t
	e.open("client")
	r := sub("u", "0")
	r.Inbox = "client"
	e.submitOne(r, store.Created)
	d := e.reserveOne(store.LaneAsync, "w")

	res := PopAsync(e.ctx, e.s, "client", 10, longWait)
	require.Equal(t, store.Recorded, e.completeOne("w", ok(d, "v")))
	got := await(e, res, "Pop", "a blocked Pop must return when a note arrives")
	require.NoError(t, got.Err)
	e.oneNote(got.Notes, store.NoteFinished, r.Ref, store.StatusSucceeded)
}

// finishOps runs n root ops to success, each with inbox as waiter.
func (e *env) finishOps(prefix string, n int, inbox string) []store.Ref {
	e.t.Helper()
	var refs []store.Ref
	for i := range n {
		s := sub(fmt.Sprintf("%s-%d", prefix, i), "0")
		s.Inbox = inbox
		e.submitOne(s, store.Created)
		d := e.reserveOne(store.LaneAsync, "w")
		require.Equal(e.t, store.Recorded, e.completeOne("w", ok(d, s.Ref.String())))
		refs = append(refs, s.Ref)
	}
	return refs
}

func testPopNonBlockingMax(e *env) {
	t := e.t
	e.open("client")
	begin := time.Now()
	notes, err := e.s.Pop(e.ctx, "client", 10, 0)
	require.NoError(t, err)
	require.Empty(t, notes)
	require.Less(t, time.Since(begin), wakeTimeout, "Pop with wait 0 does not block")

	refs := e.finishOps("n", 5, "client")
	var got []store.Ref
	for _, want := range []int{2, 2, 1} {
		notes, err := e.s.Pop(e.ctx, "client", 2, 0)
		require.NoError(t, err)
		require.Len(t, notes, want, "Pop max 2")
		for _, n := range notes {
			require.Equal(t, []byte(n.Ref.String()), n.Result)
			got = append(got, n.Ref)
		}
	}
	require.ElementsMatch(t, refs, got, "every note exactly once")
	notes, err = e.s.Pop(e.ctx, "client", 2, 0)
	require.NoError(t, err)
	require.Empty(t, notes)
}

func testPopWaitExpires(e *env) {
	t := e.t
	e.open("client")
	// The wait is real time; the scenario's clock stands still meanwhile.
	ctx, cancel := context.WithTimeout(e.ctx, wakeTimeout)
	defer cancel()
	begin := time.Now()
	notes, err := e.s.Pop(ctx, "client", 10, shortWait)
	took := time.Since(begin)
	require.NoError(t, err, "Pop on an empty inbox returns nothing after its wait (took %v)", took)
	require.Empty(t, notes)
	require.GreaterOrEqual(t, took, shortWait/2, "Pop returned before its wait")
}

func testInboxUnknownClosed(e *env) {
	t := e.t
	_, err := e.s.Pop(e.ctx, "never-opened", 10, 0)
	require.ErrorIs(t, err, store.ErrUnknownInbox)

	// Notes to an inbox that was never opened are dropped without error.
	ghost := sub("g", "0")
	ghost.Inbox = "ghost"
	e.submitOne(ghost, store.Created)
	d := e.reserveOne(store.LaneAsync, "w")
	require.Equal(t, store.Recorded, e.completeOne("w", ok(d, "v")))
	_, err = e.s.Pop(e.ctx, "ghost", 10, 0)
	require.ErrorIs(t, err, store.ErrUnknownInbox)

	// Closing an inbox drops what is in it; notes sent after are dropped.
	e.open("client")
	e.finishOps("before", 1, "client")
	r := sub("u", "0")
	r.Inbox = "client"
	e.submitOne(r, store.Created)
	require.NoError(t, e.s.CloseInbox(e.ctx, "client"))
	_, err = e.s.Pop(e.ctx, "client", 10, 0)
	require.ErrorIs(t, err, store.ErrUnknownInbox, "Pop on a closed inbox")
	d = e.reserveOne(store.LaneAsync, "w")
	require.Equal(t, store.Recorded, e.completeOne("w", ok(d, "v")), "finishing with a closed waiter inbox")
	require.NoError(t, e.s.Watch(e.ctx, r.Ref, "client"), "Watch into a closed inbox")
	e.open("client")
	require.Empty(t, e.pop("client"), "a reopened inbox starts empty")
}

func testInboxOpenIdempotent(e *env) {
	t := e.t
	e.open("client")
	refs := e.finishOps("x", 2, "client")
	e.open("client")
	notes := e.pop("client")
	require.Len(t, notes, 2, "opening an open inbox keeps its notes")
	require.ElementsMatch(t, refs, []store.Ref{notes[0].Ref, notes[1].Ref})
}
