package storetest

import (
	"fmt"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

// Retries: a failure with none left is final, retries without and with
// backoff (a delayed retry counts in Depth but is not reservable until
// Reclaim finds it due), and NoRetry, which fails at once.

func testFailureWithoutRetries(e *env) {
	t := e.t
	e.open("client", "w")
	r := sub("u", "0")
	r.Inbox = "client"
	e.submitOne(r, store.Created)
	d := e.reserveOne(store.LaneAsync, "w")
	info := errInfo("bad value")
	require.Equal(t, store.Recorded, e.completeOne("w", failed(d, info)))

	op := e.requireStatus(r.Ref, store.StatusFailed)
	require.Equal(t, info, op.Error, "ErrorInfo is stored intact")
	require.Empty(t, op.Result)
	require.Equal(t, 1, op.Attempts)
	n := e.oneNote(e.pop("client"), store.NoteFinished, r.Ref, store.StatusFailed)
	require.Equal(t, info, n.Error, "ErrorInfo reaches the waiter intact")
	require.Empty(t, e.pop("w"), "the holder of a failed attempt is not told to cancel")
	e.requireNoWork()
}

func testRetriesWithoutBackoff(e *env) {
	t := e.t
	e.open("client", "w")
	r := sub("u", "0")
	r.Inbox = "client"
	r.Opts.Retries = 2
	e.submitOne(r, store.Created)
	for attempt := 1; attempt <= 3; attempt++ {
		d := e.reserveOne(store.LaneAsync, "w")
		require.Equal(t, attempt, d.Attempt)
		out := e.completeOne("w", failed(d, errInfo(fmt.Sprintf("attempt %d", attempt))))
		if attempt < 3 {
			require.Equal(t, store.Retrying, out, "attempt %d", attempt)
			e.requireStatus(r.Ref, store.StatusPending)
			require.Empty(t, e.pop("client"), "no note while retries remain")
		} else {
			require.Equal(t, store.Recorded, out, "the last attempt")
		}
	}
	op := e.requireStatus(r.Ref, store.StatusFailed)
	require.Equal(t, 3, op.Attempts)
	require.Equal(t, "attempt 3", op.Error.Message)
	n := e.oneNote(e.pop("client"), store.NoteFinished, r.Ref, store.StatusFailed)
	require.Equal(t, errInfo("attempt 3"), n.Error)
	e.requireNoWork()
}

func testRetryBackoff(e *env) {
	t := e.t
	e.open("client", "w")
	r := sub("u", "0")
	r.Inbox = "client"
	r.Opts.Retries = 2
	r.Opts.BackoffMs = 1000
	r.Opts.BackoffMaxMs = 1000 // every delay is within [500ms, 1s]
	e.submitOne(r, store.Created)

	d := e.reserveOne(store.LaneAsync, "w")
	require.Equal(t, store.Retrying, e.completeOne("w", failed(d, errInfo("one"))))
	require.Empty(t, e.reserve(store.LaneAsync, "w", 1), "a delayed retry is not reservable at once")
	st := e.stats()
	require.Equal(t, 1, st[store.LaneAsync].Depth, "a delayed retry counts in Depth")
	require.Zero(t, st[store.LaneAsync].Running)
	e.requireStatus(r.Ref, store.StatusPending)

	e.clock.Advance(400 * time.Millisecond)
	require.Zero(t, e.reclaim(), "nothing is due before the minimum delay")
	require.Empty(t, e.reserve(store.LaneAsync, "w", 1), "not reservable before it is due")
	require.Equal(t, 1, e.stats()[store.LaneAsync].Depth)

	e.clock.Advance(700 * time.Millisecond)
	require.Equal(t, 1, e.reclaim(), "Reclaim moves the due retry")
	d = e.reserveOne(store.LaneAsync, "w")
	require.Equal(t, 2, d.Attempt)
	require.Equal(t, store.Retrying, e.completeOne("w", failed(d, errInfo("two"))))
	require.Empty(t, e.reserve(store.LaneAsync, "w", 1))

	e.clock.Advance(1100 * time.Millisecond)
	require.Equal(t, 1, e.reclaim())
	d = e.reserveOne(store.LaneAsync, "w")
	require.Equal(t, 3, d.Attempt)
	require.Equal(t, store.Recorded, e.completeOne("w", failed(d, errInfo("three"))))
	op := e.requireStatus(r.Ref, store.StatusFailed)
	require.Equal(t, 3, op.Attempts)
	e.oneNote(e.pop("client"), store.NoteFinished, r.Ref, store.StatusFailed)
	require.Zero(t, e.stats()[store.LaneAsync].Depth)
}

func testNoRetry(e *env) {
	t := e.t
	e.open("client")
	r := sub("u", "0")
	r.Inbox = "client"
	r.Opts.Retries = 3
	e.submitOne(r, store.Created)
	d := e.reserveOne(store.LaneAsync, "w")
	c := failed(d, errInfo("malformed argument"))
	c.NoRetry = true
	require.Equal(t, store.Recorded, e.completeOne("w", c))
	op := e.requireStatus(r.Ref, store.StatusFailed)
	require.Equal(t, 1, op.Attempts)
	require.Equal(t, errInfo("malformed argument"), op.Error)
	e.oneNote(e.pop("client"), store.NoteFinished, r.Ref, store.StatusFailed)
	e.requireNoWork()
}
