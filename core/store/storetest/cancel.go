package storetest

import (
	"fmt"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

// Cancellation: a subtree, a whole unit, the count Cancel returns, a
// finished caller cancelling what it left unfinished, and Fail, which ends
// a running attempt on the system's behalf (timeouts) and tells its holder.

func testCancelSubtree(e *env) {
	t := e.t
	e.open("client", "w-root", "w1")
	root := sub("u", "0")
	root.Inbox = "client"
	e.submitOne(root, store.Created)
	kids := blockingCalls("u", "client", "0.1", "0.2", "0.10")
	e.submit(kids...)
	grandkid := sub("u", "0.1.2")
	grandkid.Lane = store.LaneBlocking
	grandkid.Inbox = "client"
	e.submitOne(grandkid, store.Created)

	require.Equal(t, root.Ref, e.reserveOne(store.LaneAsync, "w-root").Ref)
	d1 := e.reserveOne(store.LaneBlocking, "w1")
	require.Equal(t, ref("u", "0.1"), d1.Ref)

	n, err := e.s.Cancel(e.ctx, "u", "0.1", "no longer needed")
	require.NoError(t, err)
	require.Equal(t, 2, n, "0.1 and 0.1.2 are cancelled")

	for _, p := range []string{"0.1", "0.1.2"} {
		op := e.requireStatus(ref("u", p), store.StatusCancelled)
		require.NotNil(t, op.Error, "a cancelled op records why")
	}
	e.requireStatus(ref("u", "0.2"), store.StatusPending)
	e.requireStatus(ref("u", "0.10"), store.StatusPending) // not a descendant of 0.1
	e.requireStatus(ref("u", "0"), store.StatusRunning)

	e.oneNote(e.pop("w1"), store.NoteCancel, d1.Ref, 0)
	require.Empty(t, e.pop("w-root"), "the caller's holder is not told to cancel")
	notes := e.byRef(e.pop("client"))
	require.Len(t, notes, 2)
	for _, p := range []string{"0.1", "0.1.2"} {
		nt, found := notes[ref("u", p)]
		require.True(t, found, "waiter of %s is told", p)
		require.Equal(t, store.NoteFinished, nt.Kind)
		require.Equal(t, store.StatusCancelled, nt.Status)
		require.NotNil(t, nt.Error)
	}

	ds := e.reserve(store.LaneBlocking, "w2", 10)
	require.ElementsMatch(t, []store.Ref{ref("u", "0.2"), ref("u", "0.10")}, refsOf(ds), "cancelled 0.1.2 is not delivered")
	require.Equal(t, store.Stale, e.completeOne("w1", ok(d1, "late")), "the old holder's completion")
	e.requireStatus(d1.Ref, store.StatusCancelled)

	n, err = e.s.Cancel(e.ctx, "u", "0.1", "again")
	require.NoError(t, err)
	require.Zero(t, n, "nothing left to cancel")
	_, err = e.s.Cancel(e.ctx, "u", "0.7", "")
	require.ErrorIs(t, err, store.ErrNotFound, "unknown path")
}

func testCancelUnit(e *env) {
	t := e.t
	e.open("client", "w-root", "w1")
	root := sub("u", "0")
	root.Inbox = "client"
	e.submitOne(root, store.Created)
	kids := blockingCalls("u", "client", "0.1", "0.2", "0.3")
	e.submit(kids...)
	e.submitOne(sub("other", "0"), store.Created)
	dRoot := e.reserveOne(store.LaneAsync, "w-root")
	require.Equal(t, root.Ref, dRoot.Ref)
	d1 := e.reserveOne(store.LaneBlocking, "w1")
	require.Equal(t, ref("u", "0.1"), d1.Ref)

	n, err := e.s.Cancel(e.ctx, "u", "", "user abort")
	require.NoError(t, err)
	require.Equal(t, 4, n, "root and its three calls")
	for _, p := range []string{"0", "0.1", "0.2", "0.3"} {
		op := e.requireStatus(ref("u", p), store.StatusCancelled)
		require.NotNil(t, op.Error)
	}
	e.requireStatus(ref("other", "0"), store.StatusPending)

	require.Empty(t, e.reserve(store.LaneBlocking, "w2", 10), "cancelled pending ops are not delivered")
	st := e.stats()
	require.Zero(t, st[store.LaneBlocking].Depth)
	require.Zero(t, st[store.LaneBlocking].Running)
	require.Equal(t, 1, st[store.LaneAsync].Depth, "only the other unit's op waits")
	require.Zero(t, st[store.LaneAsync].Running)

	e.oneNote(e.pop("w-root"), store.NoteCancel, root.Ref, 0)
	e.oneNote(e.pop("w1"), store.NoteCancel, d1.Ref, 0)
	notes := e.byRef(e.pop("client"))
	require.Len(t, notes, 4)
	for r, nt := range notes {
		require.Equal(t, "u", r.Unit)
		require.Equal(t, store.NoteFinished, nt.Kind, "%s", r)
		require.Equal(t, store.StatusCancelled, nt.Status, "%s", r)
		require.NotNil(t, nt.Error, "%s", r)
	}

	require.Equal(t, store.Stale, e.completeOne("w1", ok(d1, "late")))
	require.Equal(t, store.Stale, e.completeOne("w-root", ok(dRoot, "late")))
	e.requireStatus(root.Ref, store.StatusCancelled)

	n, err = e.s.Cancel(e.ctx, "u", "", "again")
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = e.s.Cancel(e.ctx, "nope", "", "")
	require.ErrorIs(t, err, store.ErrNotFound, "unknown unit")
	require.Empty(t, e.pop("client"))
}

// The count is of every operation that became cancelled, whatever order a
// driver visits them in; repeated over several units so that an
// order-dependent count cannot pass by luck.
func testCancelCount(e *env) {
	t := e.t
	for i := range 10 {
		u := fmt.Sprintf("whole-%d", i)
		e.submitOne(sub(u, "0"), store.Created)
		e.submit(sub(u, "0.1"), sub(u, "0.2"), sub(u, "0.3"))
		e.submitOne(sub(u, "0.1.1"), store.Created)
		n, err := e.s.Cancel(e.ctx, u, "", "")
		require.NoError(t, err)
		require.Equal(t, 5, n, "Cancel(%s, \"\") cancels 5 pending ops", u)
	}
	for i := range 10 {
		u := fmt.Sprintf("sub-%d", i)
		e.submitOne(sub(u, "0"), store.Created)
		e.submitOne(sub(u, "0.1"), store.Created)
		e.submitOne(sub(u, "0.1.1"), store.Created)
		e.submitOne(sub(u, "0.1.1.1"), store.Created)
		e.submitOne(sub(u, "0.2"), store.Created)
		n, err := e.s.Cancel(e.ctx, u, "0.1", "")
		require.NoError(t, err)
		require.Equal(t, 3, n, "Cancel(%s, \"0.1\") cancels 0.1, 0.1.1, 0.1.1.1", u)
		e.requireStatus(ref(u, "0.2"), store.StatusPending)
	}
}

func testParentFinishCancelsChildren(e *env) {
	t := e.t
	e.open("client", "w-root", "w1")
	root := sub("u", "0")
	root.Inbox = "client"
	e.submitOne(root, store.Created)
	k1 := sub("u", "0.1")
	k1.Lane = store.LaneBlocking
	k1.Inbox = "client"
	k2 := sub("u", "0.2")
	k2.Lane = store.LaneBlocking
	k2.Inbox = "client"
	e.submit(k1, k2)
	gk := sub("u", "0.1.1")
	gk.Lane = store.LaneBlocking
	gk.Inbox = "client"
	e.submitOne(gk, store.Created)

	dRoot := e.reserveOne(store.LaneAsync, "w-root")
	d1 := e.reserveOne(store.LaneBlocking, "w1")
	require.Equal(t, k1.Ref, d1.Ref)

	require.Equal(t, store.Recorded, e.completeOne("w-root", ok(dRoot, "root done")))
	e.requireStatus(root.Ref, store.StatusSucceeded)
	for _, r := range []store.Ref{k1.Ref, k2.Ref, gk.Ref} {
		op := e.requireStatus(r, store.StatusCancelled)
		require.NotNil(t, op.Error, "%s", r)
	}
	e.oneNote(e.pop("w1"), store.NoteCancel, k1.Ref, 0)
	require.Empty(t, e.pop("w-root"))
	notes := e.byRef(e.pop("client"))
	require.Len(t, notes, 4)
	require.Equal(t, store.StatusSucceeded, notes[root.Ref].Status)
	for _, r := range []store.Ref{k1.Ref, k2.Ref, gk.Ref} {
		require.Equal(t, store.StatusCancelled, notes[r].Status, "%s", r)
		require.NotNil(t, notes[r].Error, "%s", r)
	}
	require.Equal(t, store.Stale, e.completeOne("w1", ok(d1, "late")))
	e.requireNoWork()

	// A call issued under a caller that has already finished is never run.
	k3 := sub("u", "0.3")
	k3.Inbox = "client"
	e.submitOne(k3, store.Replayed)
	n := e.oneNote(e.pop("client"), store.NoteFinished, k3.Ref, store.StatusCancelled)
	require.NotNil(t, n.Error)
	e.requireNoWork()
}

func testFail(e *env) {
	t := e.t
	e.open("client", "w1", "w2")
	r := sub("u", "0")
	r.Inbox = "client"
	r.Opts.Retries = 1
	e.submitOne(r, store.Created)
	info := store.ErrorInfo{Type: "blazing.errors.Timeout", Message: "timed out after 1.5s", Payload: []byte{1, 2, 3}}

	d1 := e.reserveOne(store.LaneAsync, "w1")
	out, err := e.s.Fail(e.ctx, r.Ref, d1.LeaseID, info)
	require.NoError(t, err)
	require.Equal(t, store.Retrying, out, "Fail honors retries")
	e.oneNote(e.pop("w1"), store.NoteCancel, r.Ref, 0)
	e.requireStatus(r.Ref, store.StatusPending)
	require.Empty(t, e.pop("client"))
	require.Equal(t, store.Stale, e.completeOne("w1", ok(d1, "late")))

	d2 := e.reserveOne(store.LaneAsync, "w2")
	require.Equal(t, 2, d2.Attempt)
	out, err = e.s.Fail(e.ctx, r.Ref, d1.LeaseID, info)
	require.NoError(t, err)
	require.Equal(t, store.Stale, out, "Fail with a stale lease")
	e.requireStatus(r.Ref, store.StatusRunning)
	require.Empty(t, e.pop("w2"))

	out, err = e.s.Fail(e.ctx, r.Ref, d2.LeaseID, info)
	require.NoError(t, err)
	require.Equal(t, store.Recorded, out)
	e.oneNote(e.pop("w2"), store.NoteCancel, r.Ref, 0)
	op := e.requireStatus(r.Ref, store.StatusFailed)
	require.Equal(t, 2, op.Attempts)
	require.Equal(t, &info, op.Error)
	n := e.oneNote(e.pop("client"), store.NoteFinished, r.Ref, store.StatusFailed)
	require.Equal(t, &info, n.Error)

	out, err = e.s.Fail(e.ctx, r.Ref, d2.LeaseID, info)
	require.NoError(t, err)
	require.Equal(t, store.Stale, out, "Fail of a finished op")
	require.Equal(t, store.Stale, e.completeOne("w2", ok(d2, "late")))
	require.Empty(t, e.pop("w2"))
	require.Empty(t, e.pop("client"))
}
