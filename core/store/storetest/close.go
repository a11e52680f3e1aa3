package storetest

import (
	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

// Close wakes blocked calls with ErrClosed, and every call after it fails
// with ErrClosed.

func testClose(e *env) {
	t := e.t
	e.open("client")
	r := sub("u", "0")
	r.Inbox = "client"
	r.Opts.Retries = 1
	e.submitOne(r, store.Created)
	d := e.reserveOne(store.LaneAsync, "w")

	blockedReserve := ReserveAsync(e.ctx, e.s, store.LaneAsync, "w2", 10, testLease, longWait)
	blockedPop := PopAsync(e.ctx, e.s, "client", 10, longWait)
	require.NoError(t, e.s.Close())
	rr := await(e, blockedReserve, "Reserve", "Close must wake a blocked Reserve")
	require.ErrorIs(t, rr.Err, store.ErrClosed, "blocked Reserve")
	pr := await(e, blockedPop, "Pop", "Close must wake a blocked Pop")
	require.ErrorIs(t, pr.Err, store.ErrClosed, "blocked Pop")

	ctx := e.ctx
	_, errs := e.s.Submit(ctx, []store.Submission{sub("v", "0")})
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], store.ErrClosed, "Submit")
	_, err := e.s.Reserve(ctx, store.LaneAsync, "w", 1, testLease, 0)
	require.ErrorIs(t, err, store.ErrClosed, "Reserve")
	_, err = e.s.Reserve(ctx, store.LaneAsync, "w", 1, testLease, longWait)
	require.ErrorIs(t, err, store.ErrClosed, "Reserve with wait")
	_, err = e.s.Pop(ctx, "client", 10, 0)
	require.ErrorIs(t, err, store.ErrClosed, "Pop")
	_, err = e.s.Renew(ctx, "w", map[store.Ref]uint64{r.Ref: d.LeaseID}, testLease)
	require.ErrorIs(t, err, store.ErrClosed, "Renew")
	_, err = e.s.Complete(ctx, "w", []store.Completion{ok(d, "x")})
	require.ErrorIs(t, err, store.ErrClosed, "Complete")
	err = e.s.Release(ctx, "w", map[store.Ref]uint64{r.Ref: d.LeaseID})
	require.ErrorIs(t, err, store.ErrClosed, "Release")
	_, err = e.s.Cancel(ctx, "u", "", "")
	require.ErrorIs(t, err, store.ErrClosed, "Cancel")
	_, err = e.s.Fail(ctx, r.Ref, d.LeaseID, *errInfo("x"))
	require.ErrorIs(t, err, store.ErrClosed, "Fail")
	err = e.s.Watch(ctx, r.Ref, "client")
	require.ErrorIs(t, err, store.ErrClosed, "Watch")
	err = e.s.OpenInbox(ctx, "other")
	require.ErrorIs(t, err, store.ErrClosed, "OpenInbox")
	_, err = e.s.Reclaim(ctx, e.clock.Now())
	require.ErrorIs(t, err, store.ErrClosed, "Reclaim")
	require.NotPanics(t, func() { _ = e.s.Close() }, "a second Close")
}
