package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
	"github.com/blazingflow/blazing/core/store/memstore"
)

// The tests run every scenario with the engine as its store's only user
// (Private: no background goroutines in the store, the caller pumps) and as
// one of many (background dispatchers and an inbox listener).
var modes = []struct {
	name    string
	private bool
}{
	{"private", true},
	{"shared", false},
}

// eventually is the longest any test waits for something that should happen
// within milliseconds; it only bounds a failing test.
const eventually = 5 * time.Second

func newStore(t *testing.T) *memstore.Store {
	t.Helper()
	st := memstore.New(memstore.Config{})
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func newEngine(t *testing.T, st store.Store, private bool, configure func(*Config)) *Engine {
	t.Helper()
	cfg := Config{Store: st, Inbox: "proc-" + t.Name(), Private: private, Capacity: [store.NumLanes]int{1, 0},
		Logger: testLogger(t)}
	if configure != nil {
		configure(&cfg)
	}
	e, err := New(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func root(unit string) store.Submission {
	return store.Submission{Ref: store.Ref{Unit: unit, Path: store.RootPath}, Name: "flow", Args: []byte("args-" + unit)}
}

func submit(t *testing.T, e *Engine, subs ...Submit) {
	t.Helper()
	for i, err := range e.Submit(context.Background(), subs) {
		require.NoError(t, err, "submission %d", i)
	}
	require.NoError(t, e.Pump(context.Background()))
}

// complete completes the attempts the engine holds now (attempt 0, never
// held, for refs it does not hold).
func complete(t *testing.T, e *Engine, comps ...store.Completion) []store.CompleteOutcome {
	t.Helper()
	ecs := make([]Completion, len(comps))
	e.mu.Lock()
	for i, c := range comps {
		ecs[i] = Completion{Completion: c, Attempt: e.held[c.Ref].attempt}
	}
	e.mu.Unlock()
	outs, err := e.Complete(context.Background(), ecs)
	require.NoError(t, err)
	require.NoError(t, e.Pump(context.Background()))
	return outs
}

// collector gathers events across calls, so a test can wait for one event
// without losing the others that came with it.
type collector struct {
	t   *testing.T
	e   *Engine
	all []Event
}

func collect(t *testing.T, e *Engine) *collector { return &collector{t: t, e: e} }

// until drains, then waits (up to eventually) until pred holds for the
// events seen so far, and returns the first event for which match is true.
func (c *collector) until(what string, match func(Event) bool) Event {
	c.t.Helper()
	deadline := time.Now().Add(eventually)
	c.all = append(c.all, c.e.Drain()...)
	for {
		for _, ev := range c.all {
			if match(ev) {
				return ev
			}
		}
		left := time.Until(deadline)
		require.Greater(c.t, left, time.Duration(0), "no %s within %s; got %s", what, eventually, describe(c.all))
		evs, err := c.e.Wait(context.Background(), left)
		require.NoError(c.t, err)
		c.all = append(c.all, evs...)
	}
}

// count is how many collected events match.
func (c *collector) count(match func(Event) bool) int {
	n := 0
	for _, ev := range c.all {
		if match(ev) {
			n++
		}
	}
	return n
}

func deliverOf(ref store.Ref) func(Event) bool {
	return func(ev Event) bool { return ev.Kind == EventDeliver && ev.Delivery.Ref == ref }
}

func resultFor(token uint64) func(Event) bool {
	return func(ev Event) bool { return ev.Kind == EventResult && ev.Token == token }
}

func cancelOf(ref store.Ref) func(Event) bool {
	return func(ev Event) bool { return ev.Kind == EventCancel && ev.Note.Ref == ref }
}

func anyDeliver(ev Event) bool { return ev.Kind == EventDeliver }

func describe(evs []Event) string {
	s := "["
	for i, ev := range evs {
		if i > 0 {
			s += ", "
		}
		switch ev.Kind {
		case EventDeliver:
			s += fmt.Sprintf("deliver %s attempt %d", ev.Delivery.Ref, ev.Delivery.Attempt)
		case EventResult:
			s += fmt.Sprintf("result token %d %s", ev.Token, ev.Note.Status)
		case EventCancel:
			s += fmt.Sprintf("cancel %s", ev.Note.Ref)
		default:
			s += fmt.Sprintf("kind %d", ev.Kind)
		}
	}
	return s + "]"
}

// quiet checks that no event matching match arrives within d. It is the
// one place the tests wait on a clock to show that something does NOT
// happen.
func (c *collector) quiet(d time.Duration, match func(Event) bool) {
	c.t.Helper()
	c.all = append(c.all, c.e.Drain()...)
	deadline := time.Now().Add(d)
	for left := d; left > 0; left = time.Until(deadline) {
		evs, err := c.e.Wait(context.Background(), left)
		require.NoError(c.t, err)
		c.all = append(c.all, evs...)
	}
	require.Zero(c.t, c.count(match), "unexpected events: %s", describe(c.all))
}

func getOp(t *testing.T, st store.Store, ref store.Ref) store.Operation {
	t.Helper()
	op, err := st.Get(context.Background(), ref)
	require.NoError(t, err)
	return op
}

func TestNewValidates(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	_, err := New(ctx, Config{Inbox: "x"})
	require.ErrorIs(t, err, store.ErrInvalid)
	_, err = New(ctx, Config{Store: st})
	require.ErrorIs(t, err, store.ErrInvalid)
	_, err = New(ctx, Config{Store: st, Inbox: "x", Capacity: [store.NumLanes]int{0, -1}})
	require.ErrorIs(t, err, store.ErrInvalid)
}

func TestSubmitDeliverComplete(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			st := newStore(t)
			e := newEngine(t, st, m.private, nil)
			ref := store.Ref{Unit: "u1", Path: "0"}
			sub := root("u1")
			sub.Opts.TimeoutMs = 60_000
			submit(t, e, Submit{Submission: sub, Token: 5})

			c := collect(t, e)
			if m.private {
				// Everything happened on this thread: Drain has it now.
				evs := e.Drain()
				require.Len(t, evs, 1, describe(evs))
				c.all = evs
			}
			ev := c.until("delivery", deliverOf(ref))
			d := ev.Delivery
			require.Equal(t, ref, d.Ref)
			require.Equal(t, "", d.Parent)
			require.Equal(t, 0, d.Depth)
			require.Equal(t, "flow", d.Name)
			require.Equal(t, store.LaneAsync, d.Lane)
			require.Equal(t, []byte("args-u1"), d.Args)
			require.Equal(t, 1, d.Attempt)
			require.Equal(t, int64(60_000), d.TimeoutMs)
			require.NotZero(t, d.LeaseID)
			capacity, inflight := e.Capacity(store.LaneAsync)
			require.Equal(t, [2]int{1, 1}, [2]int{capacity, inflight})
			require.Equal(t, store.StatusRunning, getOp(t, st, ref).Status)
			require.Equal(t, e.Inbox(), getOp(t, st, ref).Worker)

			outs := complete(t, e, store.Completion{Ref: ref, OK: true, Result: []byte("result")})
			require.Equal(t, []store.CompleteOutcome{store.Recorded}, outs)
			res := c.until("result", resultFor(5))
			require.Equal(t, store.NoteFinished, res.Note.Kind)
			require.Equal(t, ref, res.Note.Ref)
			require.Equal(t, store.StatusSucceeded, res.Note.Status)
			require.Equal(t, []byte("result"), res.Note.Result)
			require.Nil(t, res.Note.Error)
			requireHeld(t, e, m.private, store.LaneAsync, 0)
			require.Equal(t, 1, c.count(resultFor(5)))
			require.Equal(t, 1, c.count(anyDeliver))
		})
	}
}

func TestSubmitWithoutTokenGetsNoResult(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEngine(t, newStore(t), m.private, nil)
			ref := store.Ref{Unit: "u", Path: "0"}
			submit(t, e, Submit{Submission: root("u")})
			c := collect(t, e)
			c.until("delivery", deliverOf(ref))
			complete(t, e, store.Completion{Ref: ref, OK: true})
			c.quiet(50*time.Millisecond, func(ev Event) bool { return ev.Kind == EventResult })
		})
	}
}

func TestCapacityLimitsDeliveries(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			st := newStore(t)
			e := newEngine(t, st, m.private, nil)
			a, b := store.Ref{Unit: "a", Path: "0"}, store.Ref{Unit: "b", Path: "0"}
			submit(t, e, Submit{Submission: root("a"), Token: 1}, Submit{Submission: root("b"), Token: 2})
			c := collect(t, e)
			c.until("first delivery", deliverOf(a))
			c.quiet(100*time.Millisecond, deliverOf(b))
			require.Equal(t, 1, c.count(anyDeliver))
			capacity, inflight := e.Capacity(store.LaneAsync)
			require.Equal(t, [2]int{1, 1}, [2]int{capacity, inflight})
			require.Equal(t, store.StatusPending, getOp(t, st, b).Status)

			complete(t, e, store.Completion{Ref: a, OK: true})
			c.until("second delivery", deliverOf(b))
			c.until("result of a", resultFor(1))
			require.Equal(t, 2, c.count(anyDeliver))
		})
	}
}

func TestAddCapacity(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEngine(t, newStore(t), m.private, func(c *Config) { c.Capacity = [store.NumLanes]int{0, 0} })
			err := e.AddCapacity(store.LaneAsync, -1)
			require.ErrorIs(t, err, store.ErrInvalid)
			require.Contains(t, err.Error(), "below zero")
			require.ErrorIs(t, e.AddCapacity(store.Lane(2), 1), store.ErrInvalid)
			capacity, _ := e.Capacity(store.LaneAsync)
			require.Zero(t, capacity, "a refused change changes nothing")

			ref := store.Ref{Unit: "u", Path: "0"}
			submit(t, e, Submit{Submission: root("u"), Token: 1})
			c := collect(t, e)
			c.quiet(50*time.Millisecond, anyDeliver)

			// Gaining a slot wakes the dispatcher (shared) or the next
			// Pump (private) to fill it.
			require.NoError(t, e.AddCapacity(store.LaneAsync, 2))
			require.NoError(t, e.Pump(context.Background()))
			c.until("delivery after capacity", deliverOf(ref))
			capacity, _ = e.Capacity(store.LaneAsync)
			require.Equal(t, 2, capacity)
			requireHeld(t, e, m.private, store.LaneAsync, 1)

			// Giving slots back may take capacity below what is in flight.
			require.NoError(t, e.AddCapacity(store.LaneAsync, -2))
			require.ErrorIs(t, e.AddCapacity(store.LaneAsync, -1), store.ErrInvalid)
			capacity, _ = e.Capacity(store.LaneAsync)
			require.Zero(t, capacity)
			requireHeld(t, e, m.private, store.LaneAsync, 1)
		})
	}
}

func TestWait(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEngine(t, newStore(t), m.private, nil)
			ctx := context.Background()

			start := time.Now()
			evs, err := e.Wait(ctx, 30*time.Millisecond)
			require.NoError(t, err)
			require.Nil(t, evs)
			require.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)

			cctx, cancel := context.WithCancel(ctx)
			cancel()
			_, err = e.Wait(cctx, eventually)
			require.ErrorIs(t, err, context.Canceled)

			type result struct {
				evs []Event
				err error
			}
			done := make(chan result, 1)
			go func() {
				evs, err := e.Wait(ctx, eventually)
				done <- result{evs, err}
			}()
			waitFor(t, "Wait to block", func() bool { return waiters(e) > 0 })
			select {
			case r := <-done:
				t.Fatalf("Wait returned before any event: %+v", r)
			default:
			}
			ref := store.Ref{Unit: "u", Path: "0"}
			submit(t, e, Submit{Submission: root("u")})
			select {
			case r := <-done:
				require.NoError(t, r.err)
				require.Len(t, r.evs, 1)
				require.True(t, deliverOf(ref)(r.evs[0]))
			case <-time.After(eventually):
				t.Fatal("Wait did not return after an event was pushed")
			}
		})
	}
}

// waiters reads how many Wait calls sleep on the current wake channel.
func waiters(e *Engine) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.evWaiters
}

// requireHeld checks how many operations of a lane the engine holds. In
// private mode that is exactly the lane's slots in use; in shared mode a
// dispatcher also counts the free slots it is reserving for, so inflight
// may be higher.
func requireHeld(t *testing.T, e *Engine, private bool, lane store.Lane, want int) {
	t.Helper()
	e.mu.Lock()
	held := 0
	for _, h := range e.held {
		if h.lane == lane {
			held++
		}
	}
	inflight := e.inflight[lane] - e.claimed[lane] // less slots a reservation has claimed meanwhile
	e.mu.Unlock()
	require.Equal(t, want, held, "held operations")
	if private {
		require.Equal(t, want, inflight, "slots in use")
	} else {
		require.GreaterOrEqual(t, inflight, want, "slots in use")
	}
}

func queued(e *Engine) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.events)
}

// waitFor spins (yielding, not sleeping) until cond holds, for at most
// eventually.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(eventually)
	for !cond() {
		require.True(t, time.Now().Before(deadline), "timed out waiting for %s", what)
		runtime.Gosched()
	}
}

func TestWaitAfterClose(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEngine(t, newStore(t), m.private, nil)

			done := make(chan error, 1)
			go func() {
				_, err := e.Wait(ctx, eventually)
				done <- err
			}()
			waitFor(t, "Wait to block", func() bool { return waiters(e) > 0 })
			require.NoError(t, e.Close())
			select {
			case err := <-done:
				require.ErrorIs(t, err, ErrClosed)
			case <-time.After(eventually):
				t.Fatal("a blocked Wait did not return on Close")
			}
			_, err := e.Wait(ctx, eventually)
			require.ErrorIs(t, err, ErrClosed)
			require.NoError(t, e.Close(), "Close is idempotent")

			for _, err := range e.Submit(ctx, []Submit{{Submission: root("late")}}) {
				require.ErrorIs(t, err, ErrClosed)
			}
			require.ErrorIs(t, e.Watch(ctx, store.Ref{Unit: "late", Path: "0"}, 1), ErrClosed)
		})
	}
}

func TestWaitReturnsQueuedEventsBeforeErrClosed(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, newStore(t), true, nil)
	submit(t, e, Submit{Submission: root("u")})
	require.NoError(t, e.Close())
	evs, err := e.Wait(ctx, eventually)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	_, err = e.Wait(ctx, eventually)
	require.ErrorIs(t, err, ErrClosed)
}

func TestTimeoutFailsAttempt(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			st := newStore(t)
			e := newEngine(t, st, m.private, nil)
			ref := store.Ref{Unit: "slow", Path: "0"}
			sub := root("slow")
			sub.Opts.TimeoutMs = 50
			submit(t, e, Submit{Submission: sub, Token: 7})
			c := collect(t, e)
			d := c.until("delivery", deliverOf(ref)).Delivery
			require.Equal(t, int64(50), d.TimeoutMs)

			res := c.until("failed result", resultFor(7))
			require.Equal(t, store.StatusFailed, res.Note.Status)
			require.NotNil(t, res.Note.Error)
			require.Equal(t, "builtins.TimeoutError", res.Note.Error.Type)
			require.Contains(t, res.Note.Error.Message, "timed out after 50ms")
			require.Nil(t, res.Note.Result)

			cn := c.until("cancel for the holder", cancelOf(ref))
			require.Equal(t, store.NoteCancel, cn.Note.Kind)
			require.Equal(t, d.LeaseID, cn.Note.LeaseID)
			require.Equal(t, "builtins.TimeoutError", cn.Note.Error.Type)

			requireHeld(t, e, m.private, store.LaneAsync, 0)
			op := getOp(t, st, ref)
			require.Equal(t, store.StatusFailed, op.Status)
			require.Equal(t, 1, op.Attempts)

			// A completion arriving after the timeout is ignored.
			outs := complete(t, e, store.Completion{Ref: ref, OK: true, Result: []byte("late")})
			require.Empty(t, outs)
			require.Equal(t, store.StatusFailed, getOp(t, st, ref).Status)
		})
	}
}

func TestRetryAfterBackoffIsRedelivered(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			st := newStore(t)
			// No reclaim sweep to fall back on: in private mode only the
			// due timer can bring the retry back.
			e := newEngine(t, st, m.private, func(c *Config) { c.ReclaimEvery = time.Hour })
			ref := store.Ref{Unit: "flaky", Path: "0"}
			sub := root("flaky")
			sub.Opts.Retries = 1
			sub.Opts.BackoffMs = 20
			submit(t, e, Submit{Submission: sub, Token: 8})
			c := collect(t, e)
			first := c.until("first attempt", deliverOf(ref)).Delivery
			require.Equal(t, 1, first.Attempt)

			failed := store.Completion{Ref: ref, Error: &store.ErrorInfo{Type: "builtins.ValueError", Message: "flaky"}}
			require.Equal(t, []store.CompleteOutcome{store.Retrying}, complete(t, e, failed))
			second := c.until("second attempt", func(ev Event) bool {
				return deliverOf(ref)(ev) && ev.Delivery.Attempt == 2
			}).Delivery
			require.NotEqual(t, first.LeaseID, second.LeaseID)
			require.Zero(t, c.count(resultFor(8)), "no result while retrying")

			require.Equal(t, []store.CompleteOutcome{store.Recorded},
				complete(t, e, store.Completion{Ref: ref, OK: true, Result: []byte("ok")}))
			res := c.until("result", resultFor(8))
			require.Equal(t, store.StatusSucceeded, res.Note.Status)
			require.Equal(t, []byte("ok"), res.Note.Result)
		})
	}
}

func TestRetryNoRetryFailsAtOnce(t *testing.T) {
	e := newEngine(t, newStore(t), true, nil)
	ref := store.Ref{Unit: "u", Path: "0"}
	sub := root("u")
	sub.Opts.Retries = 5
	submit(t, e, Submit{Submission: sub, Token: 3})
	c := collect(t, e)
	c.until("delivery", deliverOf(ref))
	outs := complete(t, e, store.Completion{Ref: ref, NoRetry: true, Error: &store.ErrorInfo{Type: "T", Message: "M"}})
	require.Equal(t, []store.CompleteOutcome{store.Recorded}, outs)
	res := c.until("result", resultFor(3))
	require.Equal(t, store.StatusFailed, res.Note.Status)
	require.Equal(t, &store.ErrorInfo{Type: "T", Message: "M"}, res.Note.Error)
}

func TestCancelUnit(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ctx := context.Background()
			st := newStore(t)
			e := newEngine(t, st, m.private, nil)
			rootRef := store.Ref{Unit: "u", Path: "0"}
			child := store.Ref{Unit: "u", Path: "0.1"}
			submit(t, e, Submit{Submission: root("u"), Token: 10})
			c := collect(t, e)
			d := c.until("root delivery", deliverOf(rootRef)).Delivery
			// The child waits in the blocking lane, which has no slots here.
			submit(t, e, Submit{Submission: store.Submission{
				Ref: child, Parent: "0", Depth: 1, Name: "step", Lane: store.LaneBlocking,
			}, Token: 11})

			n, err := e.Cancel(ctx, "u", "", "user asked")
			require.NoError(t, err)
			require.Equal(t, 2, n)
			require.NoError(t, e.Pump(ctx))

			cn := c.until("cancel of the running root", cancelOf(rootRef))
			require.Equal(t, d.LeaseID, cn.Note.LeaseID)
			require.Equal(t, "blazing.errors.RunCancelled", cn.Note.Error.Type)
			require.Equal(t, "user asked", cn.Note.Error.Message)
			for _, tok := range []uint64{10, 11} {
				res := c.until(fmt.Sprintf("cancelled result %d", tok), resultFor(tok))
				require.Equal(t, store.StatusCancelled, res.Note.Status)
				require.Equal(t, "blazing.errors.RunCancelled", res.Note.Error.Type)
			}
			require.Zero(t, c.count(cancelOf(child)), "the pending child never ran: no cancel event")
			requireHeld(t, e, m.private, store.LaneAsync, 0)

			// A completion after the cancel is ignored, and the first outcome stays.
			require.Empty(t, complete(t, e, store.Completion{Ref: rootRef, OK: true}))
			require.Equal(t, store.StatusCancelled, getOp(t, st, rootRef).Status)

			_, err = e.Cancel(ctx, "nope", "", "")
			require.ErrorIs(t, err, store.ErrNotFound)
		})
	}
}

func TestCompleteNotHeldIsIgnored(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			st := newStore(t)
			e := newEngine(t, st, m.private, func(c *Config) { c.Capacity = [store.NumLanes]int{0, 0} })
			pending := store.Ref{Unit: "p", Path: "0"}
			submit(t, e, Submit{Submission: root("p"), Token: 1})

			outs := complete(t, e,
				store.Completion{Ref: store.Ref{Unit: "ghost", Path: "0"}, OK: true},
				store.Completion{Ref: pending, OK: true, Result: []byte("forged")},
			)
			require.Empty(t, outs)
			op := getOp(t, st, pending)
			require.Equal(t, store.StatusPending, op.Status, "an operation this engine does not hold is untouched")
			require.Nil(t, op.Result)
			collect(t, e).quiet(30*time.Millisecond, func(Event) bool { return true })

			outs, err := e.Complete(context.Background(), nil)
			require.NoError(t, err)
			require.Nil(t, outs)
		})
	}
}

func TestDoubleCompleteIsIgnored(t *testing.T) {
	e := newEngine(t, newStore(t), true, nil)
	ref := store.Ref{Unit: "u", Path: "0"}
	submit(t, e, Submit{Submission: root("u"), Token: 1})
	c := collect(t, e)
	c.until("delivery", deliverOf(ref))
	require.Equal(t, []store.CompleteOutcome{store.Recorded}, complete(t, e, store.Completion{Ref: ref, OK: true, Result: []byte("first")}))
	require.Empty(t, complete(t, e, store.Completion{Ref: ref, OK: true, Result: []byte("second")}))
	res := c.until("result", resultFor(1))
	require.Equal(t, []byte("first"), res.Note.Result)
	_, inflight := e.Capacity(store.LaneAsync)
	require.Zero(t, inflight, "a second completion does not free a slot twice")
}

func TestCloseReleasesHeldWork(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			st := newStore(t)
			slow := func(c *Config) { c.Lease = time.Hour; c.ReclaimEvery = time.Hour }
			first := newEngine(t, st, m.private, func(c *Config) { slow(c); c.Inbox = "first" })
			ref := store.Ref{Unit: "u", Path: "0"}
			submit(t, first, Submit{Submission: root("u")})
			collect(t, first).until("delivery to the first engine", deliverOf(ref))

			// The second engine shares the store, so it runs dispatchers
			// that wake on the store's own signal.
			second := newEngine(t, st, false, func(c *Config) { slow(c); c.Inbox = "second" })
			c2 := collect(t, second)
			c2.quiet(30*time.Millisecond, anyDeliver)

			require.NoError(t, first.Close())
			d := c2.until("delivery to the second engine", deliverOf(ref)).Delivery
			require.Equal(t, 1, d.Attempt, "a released operation does not use up an attempt")
			op := getOp(t, st, ref)
			require.Equal(t, store.StatusRunning, op.Status)
			require.Equal(t, "second", op.Worker)
		})
	}
}

func TestSubmitConflictDropsToken(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEngine(t, newStore(t), m.private, func(c *Config) { c.Capacity = [store.NumLanes]int{2, 0} })
			ref := store.Ref{Unit: "u", Path: "0"}
			submit(t, e, Submit{Submission: root("u"), Token: 1})

			other := root("u")
			other.Name = "another-flow"
			errs := e.Submit(ctx, []Submit{{Submission: other, Token: 2}, {Submission: root("v"), Token: 3}})
			require.Len(t, errs, 2)
			require.ErrorIs(t, errs[0], store.ErrConflict)
			require.Contains(t, errs[0].Error(), "u/0")
			require.NoError(t, errs[1])
			e.mu.Lock()
			require.Equal(t, []uint64{1}, e.tokens[ref], "the refused submission's token is dropped")
			e.mu.Unlock()

			require.NoError(t, e.Pump(ctx))
			c := collect(t, e)
			c.until("delivery", deliverOf(ref))
			complete(t, e, store.Completion{Ref: ref, OK: true, Result: []byte("r")})
			c.until("result for the first token", resultFor(1))
			c.quiet(30*time.Millisecond, resultFor(2))
		})
	}
}

func TestSubmitJoinAndReplayTokens(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEngine(t, newStore(t), m.private, nil)
			ref := store.Ref{Unit: "u", Path: "0"}
			submit(t, e, Submit{Submission: root("u"), Token: 1})
			submit(t, e, Submit{Submission: root("u"), Token: 2}) // joins
			c := collect(t, e)
			c.until("delivery", deliverOf(ref))
			complete(t, e, store.Completion{Ref: ref, OK: true, Result: []byte("r")})
			c.until("result 1", resultFor(1))
			c.until("result 2", resultFor(2))
			submit(t, e, Submit{Submission: root("u"), Token: 3}) // replays
			require.Equal(t, []byte("r"), c.until("result 3", resultFor(3)).Note.Result)
			require.NoError(t, e.Watch(context.Background(), ref, 4))
			require.NoError(t, e.Pump(context.Background()))
			require.Equal(t, []byte("r"), c.until("watch result", resultFor(4)).Note.Result)
			require.Equal(t, 1, c.count(anyDeliver), "joined and replayed submissions run nothing")

			err := e.Watch(context.Background(), store.Ref{Unit: "nope", Path: "0"}, 5)
			require.ErrorIs(t, err, store.ErrNotFound)
			e.mu.Lock()
			_, kept := e.tokens[store.Ref{Unit: "nope", Path: "0"}]
			e.mu.Unlock()
			require.False(t, kept, "a failed watch drops its token")
		})
	}
}

func TestSyncSectionDefersWake(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEngine(t, newStore(t), m.private, nil)
			type result struct {
				evs []Event
				err error
			}
			done := make(chan result, 1)
			go func() {
				evs, err := e.Wait(ctx, eventually)
				done <- result{evs, err}
			}()
			waitFor(t, "Wait to block", func() bool { return waiters(e) > 0 })

			e.BeginSync()
			ref := store.Ref{Unit: "u", Path: "0"}
			submit(t, e, Submit{Submission: root("u")})
			waitFor(t, "the delivery to be queued", func() bool { return queued(e) > 0 })
			select {
			case r := <-done:
				t.Fatalf("Wait woke inside a sync section: %+v", r)
			default:
			}
			// Give a wrongly woken Wait a moment to show itself.
			select {
			case r := <-done:
				t.Fatalf("Wait woke inside a sync section: %+v", r)
			case <-time.After(20 * time.Millisecond):
			}
			e.EndSync()
			select {
			case r := <-done:
				require.NoError(t, r.err)
				require.Len(t, r.evs, 1)
				require.True(t, deliverOf(ref)(r.evs[0]))
			case <-time.After(eventually):
				t.Fatal("Wait did not wake after EndSync")
			}
		})
	}
}

func TestSyncSectionDrainedLeavesWaitAsleep(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, newStore(t), true, nil)
	done := make(chan []Event, 1)
	go func() {
		evs, _ := e.Wait(ctx, 200*time.Millisecond)
		done <- evs
	}()
	waitFor(t, "Wait to block", func() bool { return waiters(e) > 0 })
	e.BeginSync()
	submit(t, e, Submit{Submission: root("u")})
	require.Len(t, e.Drain(), 1, "the sync caller takes its own events")
	e.EndSync()
	select {
	case evs := <-done:
		require.Empty(t, evs, "nothing was left for Wait")
	case <-time.After(eventually):
		t.Fatal("Wait did not time out")
	}
}

func TestHeartbeatKeepsLease(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			st := newStore(t)
			e := newEngine(t, st, m.private, func(c *Config) {
				c.Lease = 200 * time.Millisecond
				c.Heartbeat = 50 * time.Millisecond
				c.ReclaimEvery = 20 * time.Millisecond
			})
			ref := store.Ref{Unit: "long", Path: "0"}
			submit(t, e, Submit{Submission: root("long")})
			c := collect(t, e)
			c.until("delivery", deliverOf(ref))

			// The timer is the thing under test: two lease lengths, eight
			// heartbeats, twenty reclaim sweeps.
			c.quiet(400*time.Millisecond, func(ev Event) bool {
				return ev.Kind == EventCancel || ev.Kind == EventDeliver && ev.Delivery.Attempt > 1
			})
			op := getOp(t, st, ref)
			require.Equal(t, store.StatusRunning, op.Status)
			require.Equal(t, 1, op.Attempts)
			require.Equal(t, e.Inbox(), op.Worker)
		})
	}
}

func TestLostLeaseCancels(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ctx := context.Background()
			st := newStore(t)
			e := newEngine(t, st, m.private, func(c *Config) {
				c.Lease = 2 * time.Second
				c.Heartbeat = 20 * time.Millisecond
				c.ReclaimEvery = time.Hour
			})
			ref := store.Ref{Unit: "u", Path: "0"}
			submit(t, e, Submit{Submission: root("u")})
			c := collect(t, e)
			d := c.until("delivery", deliverOf(ref)).Delivery

			// Someone else finishes it under this engine's lease (as after a
			// reclaim and a faster second run): the store sends no note to
			// the holder, so only the heartbeat's Renew can find out.
			outs, err := st.Complete(ctx, e.Inbox(), []store.Completion{{Ref: ref, LeaseID: d.LeaseID, OK: true, Result: []byte("elsewhere")}})
			require.NoError(t, err)
			require.Equal(t, []store.CompleteOutcome{store.Recorded}, outs)

			cn := c.until("cancel after the lease was lost", cancelOf(ref))
			require.Equal(t, store.NoteCancel, cn.Note.Kind)
			require.Equal(t, d.LeaseID, cn.Note.LeaseID)
			require.Equal(t, "blazing.errors.LeaseLost", cn.Note.Error.Type)
			requireHeld(t, e, m.private, store.LaneAsync, 0)
			require.Empty(t, complete(t, e, store.Completion{Ref: ref, OK: true, Result: []byte("mine")}))
			require.Equal(t, []byte("elsewhere"), getOp(t, st, ref).Result)
		})
	}
}

// hookStore lets a test stop one Reserve call (of the async lane) after the
// store answered it and before the engine sees the answer.
type hookStore struct {
	*memstore.Store
	armed   atomic.Bool
	entered chan []store.Delivery
	release chan struct{}
}

func newHookStore(t *testing.T) *hookStore {
	return &hookStore{Store: newStore(t), entered: make(chan []store.Delivery, 1), release: make(chan struct{})}
}

func (h *hookStore) Reserve(ctx context.Context, lane store.Lane, worker string, max int, lease, wait time.Duration) ([]store.Delivery, error) {
	ds, err := h.Store.Reserve(ctx, lane, worker, max, lease, wait)
	if lane == store.LaneAsync && h.armed.CompareAndSwap(true, false) {
		h.entered <- ds
		select {
		case <-h.release:
		case <-time.After(eventually):
		}
	}
	return ds, err
}

// recv takes one value from ch, failing the test after eventually.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(eventually):
		t.Fatal("timed out waiting on a channel")
	}
	var zero T
	return zero
}

// TestConcurrentPumpDoesNotStrandWork: a Pump that runs while another
// Pump's reservation is in flight finds no free slot (the other one claimed
// them all while asking the store) and does nothing; if the other
// reservation was answered before the new submission reached the store, the
// submission is left ready with a free slot and, in private mode, nothing
// pumps again. The bridge runs batches from several Python threads and
// timers pump concurrently, so a submission can sit unrun until some
// unrelated batch comes along.
func TestConcurrentPumpDoesNotStrandWork(t *testing.T) {
	ctx := context.Background()
	hs := newHookStore(t)
	e := newEngine(t, hs, true, func(c *Config) { c.ReclaimEvery = time.Hour })

	hs.armed.Store(true)
	pumped := make(chan error, 1)
	go func() { pumped <- e.Pump(ctx) }() // e.g. a timer or another thread's batch
	require.Empty(t, recv(t, hs.entered), "nothing to reserve yet")

	ref := store.Ref{Unit: "u", Path: "0"}
	submit(t, e, Submit{Submission: root("u"), Token: 1}) // this batch's Pump
	close(hs.release)
	require.NoError(t, recv(t, pumped))

	c := collect(t, e)
	c.all = append(c.all, e.Drain()...)
	if c.count(deliverOf(ref)) == 0 {
		evs, err := e.Wait(ctx, time.Second)
		require.NoError(t, err)
		c.all = append(c.all, evs...)
	}
	capacity, inflight := e.Capacity(store.LaneAsync)
	require.Equal(t, 1, c.count(deliverOf(ref)),
		"expected %s to be delivered after both pumps returned; it is %s with no delivery, slots in use %d of %d",
		ref, getOp(t, hs, ref).Status, inflight, capacity)
}

// TestCloseDuringReserveReleasesWork: Close snapshots the held operations
// and releases them, but a reservation answered by the store before Close
// and seen by the engine after it is added to held (and queued as an event)
// on a closed engine, and never released: the operation stays running under
// a dead worker's lease until the lease lapses (30 s by default), instead of
// going back to the queue at once.
func TestCloseDuringReserveReleasesWork(t *testing.T) {
	ctx := context.Background()
	hs := newHookStore(t)
	e := newEngine(t, hs, true, func(c *Config) { c.ReclaimEvery = time.Hour; c.Lease = time.Hour })
	ref := store.Ref{Unit: "u", Path: "0"}
	for _, err := range e.Submit(ctx, []Submit{{Submission: root("u")}}) {
		require.NoError(t, err)
	}

	hs.armed.Store(true)
	pumped := make(chan error, 1)
	go func() { pumped <- e.Pump(ctx) }()
	require.Len(t, recv(t, hs.entered), 1, "the store handed the work out")
	require.NoError(t, e.Close())
	close(hs.release)
	_ = recv(t, pumped)

	op := getOp(t, hs, ref)
	require.Equal(t, store.StatusPending.String(), op.Status.String(),
		"expected the operation back in the queue after Close; it is %s, held by the closed engine %q", op.Status, op.Worker)
}

func TestErrorsAreWrapped(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	e := newEngine(t, st, true, nil)
	require.NoError(t, st.Close())
	errs := e.Submit(ctx, []Submit{{Submission: root("u"), Token: 1}})
	require.ErrorIs(t, errs[0], store.ErrClosed)
	require.True(t, errors.Is(e.Pump(ctx), store.ErrClosed))
	_, err := e.Cancel(ctx, "u", "", "")
	require.ErrorIs(t, err, store.ErrClosed)
}

// What an attempt logged and its failed completion, sent in one batch, are
// recorded in that order: the step's breadcrumb, then the retry.
func TestBatchRecordsBreadcrumbsBeforeTheCompletion(t *testing.T) {
	st := newStore(t)
	e := newEngine(t, st, false, nil)
	ref := store.Ref{Unit: "logged", Path: "0"}
	sub := root("logged")
	sub.Opts.Retries = 1
	sub.Opts.BackoffMs = 60_000 // no second attempt during the test
	submit(t, e, Submit{Submission: sub})
	d := collect(t, e).until("the attempt", deliverOf(ref)).Delivery
	require.NoError(t, e.Enqueue(Commands{
		Completes: []Completion{{Completion: store.Completion{Ref: ref,
			Error: &store.ErrorInfo{Type: "builtins.ValueError", Message: "flaky"}}, Attempt: d.Attempt}},
		Breadcrumbs: []store.Breadcrumb{{Ref: ref, At: time.Now(), Kind: "user", Message: "about to fail"}},
	}))
	var kinds []string
	require.Eventually(t, func() bool {
		crumbs, _, err := st.Breadcrumbs(context.Background(), "logged")
		require.NoError(t, err)
		kinds = kinds[:0]
		for _, b := range crumbs {
			kinds = append(kinds, b.Kind)
		}
		return len(kinds) > 0 && kinds[len(kinds)-1] == "retry"
	}, eventually, time.Millisecond, "the retry is recorded")
	require.Equal(t, []string{"user", "retry"}, kinds) // queued and started come from the runtimes
}
