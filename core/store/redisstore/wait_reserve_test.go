package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
	"github.com/blazingflow/blazing/core/store/redisstore"
	"github.com/blazingflow/blazing/core/store/storetest"
)

// The pipelined wait (BLMPOP, then the reserve script in the same round
// trip) only runs with the real clock, so these tests use it.

// blockedReserves counts clients blocked in BLMPOP on the server: how a
// test knows a Reserve is waiting, without sleeping.
func blockedReserves(t *testing.T) int {
	t.Helper()
	list, err := client(t).ClientList(context.Background()).Result()
	require.NoError(t, err)
	return strings.Count(list, "cmd=blmpop")
}

func waitBlocked(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return blockedReserves(t) >= n }, 5*time.Second, time.Millisecond,
		"a Reserve should be blocked in BLMPOP")
}

// reserveAsync starts the waiting Reserve each test here watches.
func reserveAsync(ctx context.Context, s *redisstore.Store) <-chan storetest.Reserved {
	return storetest.ReserveAsync(ctx, s, store.LaneAsync, "w", 4, time.Minute, 10*time.Second)
}

func TestPipelinedWaitGetsWorkInTheWakeUpReply(t *testing.T) {
	ctx := context.Background()
	ns := namespace()
	worker := newStore(t, redisstore.Config{Namespace: ns})
	clientStore := newStore(t, redisstore.Config{Namespace: ns})
	before := blockedReserves(t)
	got := reserveAsync(ctx, worker)
	waitBlocked(t, before+1)

	submitted := time.Now()
	storetest.MustSubmit(t, clientStore, store.Submission{Ref: store.Ref{Unit: "u", Path: "0"}, Name: "flow", Args: []byte("a")})
	r := <-got
	require.NoError(t, r.Err)
	require.Len(t, r.Deliveries, 1)
	require.Equal(t, "flow", r.Deliveries[0].Name)
	require.Less(t, r.At.Sub(submitted), 2*time.Second, "woken by the submission, not by the wait's end")

	op, err := clientStore.Get(ctx, store.Ref{Unit: "u", Path: "0"})
	require.NoError(t, err)
	require.Equal(t, store.StatusRunning, op.Status)
	// The script ran after the wait and took its time from Redis' clock,
	// corrected to this process's: the start time is when it was woken.
	require.WithinRange(t, op.StartedAt, submitted.Add(-50*time.Millisecond), r.At.Add(50*time.Millisecond))
}

func TestPipelinedWaitCancelledReservesNothing(t *testing.T) {
	ns := namespace()
	worker := newStore(t, redisstore.Config{Namespace: ns})
	other := newStore(t, redisstore.Config{Namespace: ns})
	ctx, cancel := context.WithCancel(context.Background())
	before := blockedReserves(t)
	got := reserveAsync(ctx, worker)
	waitBlocked(t, before+1)
	cancel()
	r := <-got
	require.ErrorIs(t, r.Err, context.Canceled)
	require.Empty(t, r.Deliveries)

	// Work submitted now goes to another worker: the cancelled wait's
	// script did not take it, and nothing of it is still waiting.
	storetest.MustSubmit(t, other, store.Submission{Ref: store.Ref{Unit: "v", Path: "0"}, Name: "flow"})
	ds, err := other.Reserve(context.Background(), store.LaneAsync, "w2", 4, time.Minute, 0)
	require.NoError(t, err)
	require.Len(t, ds, 1)
}

func TestPipelinedWaitEndsOnClose(t *testing.T) {
	ns := namespace()
	worker := newStore(t, redisstore.Config{Namespace: ns})
	before := blockedReserves(t)
	got := reserveAsync(context.Background(), worker)
	waitBlocked(t, before+1)
	begin := time.Now()
	require.NoError(t, worker.Close())
	r := <-got
	require.True(t, errors.Is(r.Err, store.ErrClosed), "got %v", r.Err)
	require.Less(t, time.Since(begin), 2*time.Second)
}

// A wait longer than one pipelined round (1 s) keeps waiting, and a
// submission after the first round still wakes it.
func TestPipelinedWaitSpansRounds(t *testing.T) {
	ns := namespace()
	worker := newStore(t, redisstore.Config{Namespace: ns})
	clientStore := newStore(t, redisstore.Config{Namespace: ns})
	got := reserveAsync(context.Background(), worker)
	// The scenario is time itself: let the first 1 s round run out.
	start := time.Now()
	require.Eventually(t, func() bool { return time.Since(start) > 1200*time.Millisecond }, 5*time.Second, 10*time.Millisecond)
	storetest.MustSubmit(t, clientStore, store.Submission{Ref: store.Ref{Unit: "late", Path: "0"}, Name: "flow"})
	r := <-got
	require.NoError(t, r.Err)
	require.Len(t, r.Deliveries, 1)
	require.Less(t, r.At.Sub(start), 5*time.Second)
}

// A client whose read timeout is shorter than a pipelined wait gets waits of
// half of it, so no reply (with reservations in it) is read too late: a
// reservation after several such rounds still arrives.
func TestPipelinedWaitFitsTheReadTimeout(t *testing.T) {
	// No retries, as Open configures its client: a timed-out read is an error.
	c := redis.NewClient(&redis.Options{Addr: redisAddr, ReadTimeout: 300 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	ns := namespace()
	worker := newStore(t, redisstore.Config{Namespace: ns, Client: c})
	clientStore := newStore(t, redisstore.Config{Namespace: ns})
	got := reserveAsync(context.Background(), worker)
	// Let several 150 ms rounds pass: with 1 s waits each would fail its read.
	start := time.Now()
	require.Eventually(t, func() bool { return time.Since(start) > 700*time.Millisecond }, 5*time.Second, 10*time.Millisecond)
	storetest.MustSubmit(t, clientStore, store.Submission{Ref: store.Ref{Unit: "u", Path: "0"}, Name: "flow"})
	r := <-got
	require.NoError(t, r.Err)
	require.Len(t, r.Deliveries, 1)
}
