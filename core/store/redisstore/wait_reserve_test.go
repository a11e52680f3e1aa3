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

// rounds reports each pipelined wait (a pipeline that starts with BLMPOP)
// of the client it is hooked on as it ends, with its error: how a test
// knows that a round has run out, without timing it.
type rounds chan error

func (r rounds) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (r rounds) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (r rounds) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if len(cmds) > 0 && cmds[0].Name() == "blmpop" {
			var failed error // a wait that ran out replies nil: no error
			for _, c := range cmds {
				if e := c.Err(); e != nil && !errors.Is(e, redis.Nil) && failed == nil {
					failed = e
				}
			}
			select {
			case r <- failed:
			default: // nobody counts this far
			}
		}
		return err
	}
}

// await takes the next n rounds; each must have ended without error (a
// reply read after the read timeout would be one).
func (r rounds) await(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		select {
		case err := <-r:
			require.NoError(t, err, "round %d", i+1)
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d did not end", i+1)
		}
	}
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
	c := client(t)
	ended := make(rounds, 16)
	c.AddHook(ended)
	worker := newStore(t, redisstore.Config{Namespace: ns, Client: c})
	clientStore := newStore(t, redisstore.Config{Namespace: ns})
	before := blockedReserves(t)
	start := time.Now()
	got := reserveAsync(context.Background(), worker)
	// The first 1 s round runs out, and the second is waiting.
	ended.await(t, 1)
	waitBlocked(t, before+1)
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
	client(t) // skips without redis-server (redisAddr is empty then: go-redis would dial :6379)
	// No retries, as Open configures its client: a timed-out read is an error.
	c := redis.NewClient(&redis.Options{Addr: redisAddr, ReadTimeout: 300 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	ended := make(rounds, 16)
	c.AddHook(ended)
	ns := namespace()
	worker := newStore(t, redisstore.Config{Namespace: ns, Client: c})
	clientStore := newStore(t, redisstore.Config{Namespace: ns})
	got := reserveAsync(context.Background(), worker)
	// Several 150 ms rounds run out, each read in time: with 1 s waits each
	// would fail its read.
	ended.await(t, 4)
	storetest.MustSubmit(t, clientStore, store.Submission{Ref: store.Ref{Unit: "u", Path: "0"}, Name: "flow"})
	r := <-got
	require.NoError(t, r.Err)
	require.Len(t, r.Deliveries, 1)
}
