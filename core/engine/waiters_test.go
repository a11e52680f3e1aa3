package engine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

// flakyStore stands for a store across the network: while down, every call
// fails as an unreachable Redis does; full makes writes fail as a Redis at
// maxmemory does; swap replaces the store behind it (a Redis restarted
// without its data).
type flakyStore struct {
	mu        sync.Mutex
	st        store.Store
	down      atomic.Bool
	full      atomic.Bool
	failTries atomic.Int32 // calls of Fail, to see a timeout fire
}

func (f *flakyStore) inner() store.Store {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *flakyStore) swap(st store.Store) {
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
}

var errFull = errors.New("OOM command not allowed when used memory > 'maxmemory'")

func (f *flakyStore) fail(write bool) error {
	switch {
	case f.down.Load():
		return errAway
	case write && f.full.Load():
		return errors.Join(store.ErrFull, errFull)
	}
	return nil
}

func (f *flakyStore) Submit(ctx context.Context, subs []store.Submission) ([]store.Outcome, []error) {
	if err := f.fail(true); err != nil {
		return make([]store.Outcome, len(subs)), repeatErr(len(subs), err)
	}
	return f.inner().Submit(ctx, subs)
}

func (f *flakyStore) Reserve(ctx context.Context, lane store.Lane, worker string, max int, lease, wait time.Duration) ([]store.Delivery, error) {
	if err := f.fail(true); err != nil {
		return nil, err
	}
	return f.inner().Reserve(ctx, lane, worker, max, lease, wait)
}

func (f *flakyStore) Renew(ctx context.Context, worker string, leases map[store.Ref]uint64, lease time.Duration) ([]store.Ref, error) {
	if err := f.fail(false); err != nil {
		return nil, err
	}
	return f.inner().Renew(ctx, worker, leases, lease)
}

func (f *flakyStore) Complete(ctx context.Context, worker string, comps []store.Completion) ([]store.CompleteOutcome, error) {
	if err := f.fail(true); err != nil {
		return nil, err
	}
	return f.inner().Complete(ctx, worker, comps)
}

func (f *flakyStore) Release(ctx context.Context, worker string, leases map[store.Ref]uint64) error {
	if err := f.fail(false); err != nil {
		return err
	}
	return f.inner().Release(ctx, worker, leases)
}

func (f *flakyStore) Cancel(ctx context.Context, unit, path, reason string) (int, error) {
	if err := f.fail(false); err != nil {
		return 0, err
	}
	return f.inner().Cancel(ctx, unit, path, reason)
}

func (f *flakyStore) Fail(ctx context.Context, ref store.Ref, leaseID uint64, info store.ErrorInfo) (store.CompleteOutcome, error) {
	f.failTries.Add(1)
	if err := f.fail(true); err != nil {
		return 0, err
	}
	return f.inner().Fail(ctx, ref, leaseID, info)
}

func (f *flakyStore) Watch(ctx context.Context, ref store.Ref, inbox string) error {
	if err := f.fail(true); err != nil {
		return err
	}
	return f.inner().Watch(ctx, ref, inbox)
}

func (f *flakyStore) Get(ctx context.Context, ref store.Ref) (store.Operation, error) {
	if err := f.fail(false); err != nil {
		return store.Operation{}, err
	}
	return f.inner().Get(ctx, ref)
}

func (f *flakyStore) OpenInbox(ctx context.Context, inbox string) error {
	if err := f.fail(false); err != nil {
		return err
	}
	return f.inner().OpenInbox(ctx, inbox)
}

func (f *flakyStore) CloseInbox(ctx context.Context, inbox string) error {
	if err := f.fail(false); err != nil {
		return err
	}
	return f.inner().CloseInbox(ctx, inbox)
}

func (f *flakyStore) Pop(ctx context.Context, inbox string, max int, wait time.Duration) ([]store.Note, error) {
	if err := f.fail(false); err != nil {
		pause(ctx, min(wait, 10*time.Millisecond)) // a failing network call takes a moment
		return nil, err
	}
	return f.inner().Pop(ctx, inbox, max, wait)
}

func (f *flakyStore) Reclaim(ctx context.Context, now time.Time) (store.Reclaimed, error) {
	if err := f.fail(false); err != nil {
		return store.Reclaimed{}, err
	}
	return f.inner().Reclaim(ctx, now)
}

func (f *flakyStore) ReclaimWorker(ctx context.Context, worker string, now time.Time) (store.Reclaimed, error) {
	if err := f.fail(false); err != nil {
		return store.Reclaimed{}, err
	}
	return f.inner().ReclaimWorker(ctx, worker, now)
}

func (f *flakyStore) Trim(ctx context.Context, now time.Time) (store.Trimmed, error) {
	if err := f.fail(false); err != nil {
		return store.Trimmed{}, err
	}
	return f.inner().Trim(ctx, now)
}

func (f *flakyStore) Repair(ctx context.Context, now time.Time) ([]store.Repair, error) {
	if err := f.fail(false); err != nil {
		return nil, err
	}
	return f.inner().Repair(ctx, now)
}

func (f *flakyStore) Stats(ctx context.Context) ([store.NumLanes]store.LaneStats, error) {
	return f.inner().Stats(ctx)
}

func (f *flakyStore) Failed(ctx context.Context, offset, limit int) ([]store.Operation, error) {
	return f.inner().Failed(ctx, offset, limit)
}

func (f *flakyStore) Requeue(ctx context.Context, unit string) error {
	return f.inner().Requeue(ctx, unit)
}

func (f *flakyStore) Close() error { return nil }

// client is an engine that only submits and waits (shared mode, no slots),
// on a flaky view of mem; worker serves mem directly.
func clientAndWorker(t *testing.T, configure func(*Config)) (*flakyStore, *Engine, *Engine) {
	t.Helper()
	mem := newStore(t)
	fs := &flakyStore{st: mem}
	client := newEngine(t, fs, false, func(c *Config) {
		c.Inbox = "client"
		c.Capacity = [store.NumLanes]int{}
		if configure != nil {
			configure(c)
		}
	})
	worker := newEngine(t, mem, false, func(c *Config) { c.Inbox = "worker" })
	return fs, client, worker
}

// serveOne runs the next delivery of worker to success with result.
func serveOne(t *testing.T, worker *Engine, ref store.Ref, result string) {
	t.Helper()
	d := collect(t, worker).until("delivery of "+ref.String(), deliverOf(ref)).Delivery
	_, err := worker.Complete(context.Background(), []Completion{{
		Completion: store.Completion{Ref: d.Ref, OK: true, Result: []byte(result)}, Attempt: d.Attempt}})
	require.NoError(t, err)
}

// A submission made while the store is away is retried by the outbox with
// its waiter: when it runs, the result reaches the caller.
func TestRetriedSubmissionKeepsItsWaiter(t *testing.T) {
	fs, client, worker := clientAndWorker(t, nil)
	fs.down.Store(true)
	r := root("during-outage")
	require.NoError(t, client.Enqueue(Commands{Submits: []Submit{{Submission: r, Token: 7}}}))
	c := collect(t, client)
	c.quiet(50*time.Millisecond, resultFor(7))
	fs.down.Store(false)
	serveOne(t, worker, r.Ref, "done")
	ev := c.until("the result", resultFor(7))
	require.Equal(t, store.StatusSucceeded, ev.Note.Status)
	require.Equal(t, []byte("done"), ev.Note.Result)
}

// A Redis restarted without its data lost the run a client waits on: the
// waiter is told RunLost, not left waiting.
func TestLostRunFailsItsWaiter(t *testing.T) {
	fs, client, _ := clientAndWorker(t, func(c *Config) { c.Capacity = [store.NumLanes]int{} })
	r := root("lost")
	require.NoError(t, client.Enqueue(Commands{Submits: []Submit{{Submission: r, Token: 9}}}))
	require.Eventually(t, func() bool {
		_, err := fs.inner().Get(context.Background(), r.Ref)
		return err == nil
	}, eventually, time.Millisecond, "submitted")
	fs.swap(newStore(t)) // restarted empty: the run and the client's inbox are gone
	ev := collect(t, client).until("RunLost", resultFor(9))
	require.Equal(t, store.StatusFailed, ev.Note.Status)
	require.Equal(t, typeRunLost, ev.Note.Error.Type)
	require.Contains(t, ev.Note.Error.Message, "lost")
}

// Waits end when the store stays unreachable past OutageTimeout.
func TestLongOutageEndsWaits(t *testing.T) {
	logger, book := newLogBook(t)
	fs, client, _ := clientAndWorker(t, func(c *Config) {
		c.OutageTimeout = 300 * time.Millisecond
		c.ReclaimEvery = 20 * time.Millisecond
		c.Logger = logger
	})
	r := root("never")
	require.NoError(t, client.Enqueue(Commands{Submits: []Submit{{Submission: r, Token: 3}}}))
	require.Eventually(t, func() bool {
		_, err := fs.inner().Get(context.Background(), r.Ref)
		return err == nil
	}, eventually, time.Millisecond, "submitted")
	fs.down.Store(true)
	ev := collect(t, client).until("StoreUnavailable", resultFor(3))
	require.Equal(t, typeStoreUnavailable, ev.Note.Error.Type)
	require.Contains(t, ev.Note.Error.Message, "unreachable")
	require.True(t, book.contains("WARN", "the store is unreachable"), book.String())
	require.Eventually(t, func() bool { return book.contains("ERROR", "told 1 waiters") },
		eventually, time.Millisecond, "the give-up is logged")
}

// A Redis out of memory refuses a submission at once (StoreFull); a
// completion it refuses is retried until accepted, never lost.
func TestFullStore(t *testing.T) {
	fs, client, _ := clientAndWorker(t, nil)
	fs.full.Store(true)
	require.NoError(t, client.Enqueue(Commands{Submits: []Submit{{Submission: root("refused"), Token: 5}}}))
	ev := collect(t, client).until("StoreFull", resultFor(5))
	require.Equal(t, typeStoreFull, ev.Note.Error.Type)
	fs.full.Store(false)

	// A worker on a flaky view completes while memory is full.
	mem := newStore(t)
	fs = &flakyStore{st: mem}
	w := newEngine(t, fs, false, func(c *Config) { c.Inbox = "w" })
	r := root("kept")
	r.Inbox = "client"
	_, errs := mem.Submit(context.Background(), []store.Submission{r})
	require.NoError(t, errs[0])
	d := collect(t, w).until("delivery", deliverOf(r.Ref)).Delivery
	fs.full.Store(true)
	_, err := w.Complete(context.Background(), []Completion{{
		Completion: store.Completion{Ref: d.Ref, OK: true, Result: []byte("r")}, Attempt: d.Attempt}})
	require.NoError(t, err, "the refused completion is kept, not an error")
	require.Equal(t, store.StatusRunning, getOp(t, mem, r.Ref).Status)
	fs.full.Store(false)
	require.Eventually(t, func() bool { return getOp(t, mem, r.Ref).Status == store.StatusSucceeded },
		eventually, time.Millisecond, "the completion is retried until accepted")
}

// A worker whose lease was taken over (it was cut off, or thought dead)
// and completes late is refused, and says so in the log.
func TestLateCompletionIsRefusedAndLogged(t *testing.T) {
	mem := newStore(t)
	logger, book := newLogBook(t)
	zombie := newEngine(t, mem, false, func(c *Config) { c.Inbox = "zombie"; c.Logger = logger })
	// No slots until the zombie holds the run: the first delivery is the zombie's.
	other := newEngine(t, mem, false, func(c *Config) {
		c.Inbox = "other"
		c.Capacity = [store.NumLanes]int{}
	})
	r := root("taken-over")
	r.Inbox = "nobody"
	_, errs := mem.Submit(context.Background(), []store.Submission{r})
	require.NoError(t, errs[0])
	d := collect(t, zombie).until("delivery to the zombie", deliverOf(r.Ref)).Delivery
	_, err := other.ReclaimWorker(context.Background(), "zombie") // taken back as if it had lapsed
	require.NoError(t, err)
	require.NoError(t, other.AddCapacity(store.LaneAsync, 1))
	serveOne(t, other, r.Ref, "theirs")

	outs, err := zombie.Complete(context.Background(), []Completion{{
		Completion: store.Completion{Ref: d.Ref, OK: true, Result: []byte("mine")}, Attempt: d.Attempt}})
	require.NoError(t, err)
	require.Equal(t, []store.CompleteOutcome{store.Stale}, outs)
	require.Equal(t, []byte("theirs"), getOp(t, mem, r.Ref).Result, "the run keeps one result")
	require.Eventually(t, func() bool { return book.contains("WARN", "late completion", "refused", "run=taken-over", "step=0") },
		eventually, time.Millisecond, "the refusal is logged")
}

// dropNotesStore loses the first note about one operation, as a lost reply
// would.
type dropNotesStore struct {
	store.Store
	drop    store.Ref
	once    sync.Once
	dropped chan struct{}
}

func (d *dropNotesStore) Pop(ctx context.Context, inbox string, max int, wait time.Duration) ([]store.Note, error) {
	notes, err := d.Store.Pop(ctx, inbox, max, wait)
	kept := notes[:0]
	for _, n := range notes {
		gone := false
		if n.Ref == d.drop {
			d.once.Do(func() { gone = true; close(d.dropped) })
		}
		if !gone {
			kept = append(kept, n)
		}
	}
	return kept, err
}

// The janitor tells a waiter whose note never came, and says so.
func TestJanitorTellsAMissedNote(t *testing.T) {
	mem := newStore(t)
	r := root("missed")
	ds := &dropNotesStore{Store: mem, drop: r.Ref, dropped: make(chan struct{})}
	logger, book := newLogBook(t)
	client := newEngine(t, ds, false, func(c *Config) {
		c.Inbox = "client"
		c.Capacity = [store.NumLanes]int{}
		c.JanitorEvery = 100 * time.Millisecond
		c.Logger = logger
	})
	worker := newEngine(t, mem, false, func(c *Config) { c.Inbox = "worker" })
	require.NoError(t, client.Enqueue(Commands{Submits: []Submit{{Submission: r, Token: 11}}}))
	serveOne(t, worker, r.Ref, "late but here")
	<-ds.dropped // the finished note was lost; the janitor's gets through
	ev := collect(t, client).until("the result", resultFor(11))
	require.Equal(t, []byte("late but here"), ev.Note.Result)
	require.Eventually(t, func() bool { return book.contains("janitor repaired missed-note", "run=missed") },
		eventually, time.Millisecond, "the repair is logged")
}

// A completion that comes after a renewal found the lease lost still goes
// to the store, which refuses it for its stale lease token: the store has
// the last word, and the log says so.
func TestCompletionAfterLostLeaseIsRefusedByTheStore(t *testing.T) {
	mem := newStore(t)
	logger, book := newLogBook(t)
	zombie := newEngine(t, mem, false, func(c *Config) {
		c.Inbox = "zombie"
		c.Logger = logger
		c.Heartbeat = 10 * time.Millisecond
	})
	r := root("lost-lease")
	_, errs := mem.Submit(context.Background(), []store.Submission{r})
	require.NoError(t, errs[0])
	c := collect(t, zombie)
	d := c.until("delivery", deliverOf(r.Ref)).Delivery
	_, err := mem.ReclaimWorker(context.Background(), "zombie", time.Now())
	require.NoError(t, err)
	c.until("the renewal finds the lease lost", cancelOf(r.Ref))
	require.Eventually(t, func() bool { return book.contains("WARN", "lease of flow lost-lease/0", "lost") },
		eventually, time.Millisecond, "the loss is logged")

	outs, err := zombie.Complete(context.Background(), []Completion{{
		Completion: store.Completion{Ref: d.Ref, OK: true, Result: []byte("late")}, Attempt: d.Attempt}})
	require.NoError(t, err)
	require.Equal(t, []store.CompleteOutcome{store.Stale}, outs, "sent, and refused by the store")
	require.True(t, book.contains("WARN", "late completion of flow lost-lease/0 refused"), book.String())
	op := getOp(t, mem, r.Ref)
	require.NotEqual(t, store.StatusSucceeded, op.Status, "the late result was not taken")
	require.Nil(t, op.Result)
}

// A submission still in the outbox when the store comes back empty (a Redis
// restarted without its data) is not taken for lost by the re-watch that
// follows: it is submitted, runs, and its result reaches the caller.
func TestSubmissionInTheOutboxSurvivesAnEmptyRestart(t *testing.T) {
	fs := &flakyStore{st: newStore(t)}
	client := newEngine(t, fs, false, func(c *Config) {
		c.Inbox = "client"
		c.Capacity = [store.NumLanes]int{}
	})
	worker := newEngine(t, fs, false, func(c *Config) { c.Inbox = "worker" })
	fs.down.Store(true)
	r := root("submitted-during-outage")
	require.NoError(t, client.Enqueue(Commands{Submits: []Submit{{Submission: r, Token: 21}}}))
	c := collect(t, client)
	c.quiet(50*time.Millisecond, resultFor(21))
	fresh := newStore(t) // restarted empty: no inboxes, no runs
	require.NoError(t, fresh.OpenInbox(context.Background(), "worker"))
	fs.swap(fresh)
	fs.down.Store(false)
	serveOne(t, worker, r.Ref, "made it")
	ev := c.until("the result", resultFor(21))
	require.Equal(t, store.StatusSucceeded, ev.Note.Status, "not RunLost: %+v", ev.Note.Error)
	require.Equal(t, []byte("made it"), ev.Note.Result)
}

// A timeout that fires while the store is away is recorded once it is
// back, not lost.
func TestTimeoutDuringAnOutageIsNotLost(t *testing.T) {
	mem := newStore(t)
	fs := &flakyStore{st: mem}
	w := newEngine(t, fs, false, func(c *Config) { c.Inbox = "w" })
	r := root("slow")
	r.Opts.TimeoutMs = 50
	_, errs := mem.Submit(context.Background(), []store.Submission{r})
	require.NoError(t, errs[0])
	collect(t, w).until("delivery", deliverOf(r.Ref))
	fs.down.Store(true)
	require.Eventually(t, func() bool { return fs.failTries.Load() >= 2 }, eventually, time.Millisecond,
		"the timeout fires while the store is away, and is tried again")
	require.Equal(t, store.StatusRunning, getOp(t, mem, r.Ref).Status)
	fs.down.Store(false)
	require.Eventually(t, func() bool { return getOp(t, mem, r.Ref).Status == store.StatusFailed },
		eventually, time.Millisecond, "the timeout is recorded once the store is back")
	require.Equal(t, "builtins.TimeoutError", getOp(t, mem, r.Ref).Error.Type)
}

func (f *flakyStore) AddBreadcrumbs(ctx context.Context, crumbs []store.Breadcrumb) error {
	if err := f.fail(true); err != nil {
		return err
	}
	return f.inner().AddBreadcrumbs(ctx, crumbs)
}

func (f *flakyStore) Breadcrumbs(ctx context.Context, unit string) ([]store.Breadcrumb, int, error) {
	return f.inner().Breadcrumbs(ctx, unit)
}

func (f *flakyStore) Runs(ctx context.Context, q store.RunQuery) ([]store.Operation, error) {
	return f.inner().Runs(ctx, q)
}

func (f *flakyStore) Unit(ctx context.Context, unit string) ([]store.Operation, error) {
	return f.inner().Unit(ctx, unit)
}

func (f *flakyStore) AddStats(ctx context.Context, d store.StatsDelta) error {
	if err := f.fail(true); err != nil {
		return err
	}
	return f.inner().AddStats(ctx, d)
}

func (f *flakyStore) ReadStats(ctx context.Context, since, now time.Time) (map[string]store.Counts, error) {
	return f.inner().ReadStats(ctx, since, now)
}

// raceStore holds Complete back, once the store has taken the completion,
// until the engine's dispatcher has been handed the retry: what happens
// when the dispatcher's blocked wait returns first.
type raceStore struct {
	store.Store
	eng *Engine
}

func (r *raceStore) Complete(ctx context.Context, worker string, comps []store.Completion) ([]store.CompleteOutcome, error) {
	outs, err := r.Store.Complete(ctx, worker, comps)
	if r.eng != nil {
		deadline := time.Now().Add(eventually)
		for time.Now().Before(deadline) {
			r.eng.mu.Lock()
			h, ok := r.eng.held[comps[0].Ref]
			r.eng.mu.Unlock()
			if ok && h.attempt == 2 {
				break
			}
			time.Sleep(time.Millisecond) // another goroutine's move: look again
		}
	}
	return outs, err
}

// A retry handed to the same process while its failed attempt's completion
// is still returning is held, runs and completes: the first completion
// does not take the new attempt's place away.
func TestRetryRedeliveredDuringCompleteIsHeld(t *testing.T) {
	mem := newStore(t)
	rs := &raceStore{Store: mem}
	e := newEngine(t, rs, false, func(c *Config) { c.Inbox = "w"; c.Capacity = [store.NumLanes]int{2, 0} })
	r := root("retried")
	r.Opts.Retries = 1
	_, errs := mem.Submit(context.Background(), []store.Submission{r})
	require.NoError(t, errs[0])
	c := collect(t, e)
	d1 := c.until("attempt 1", deliverOf(r.Ref)).Delivery
	rs.eng = e
	outs, err := e.Complete(context.Background(), []Completion{{
		Completion: store.Completion{Ref: d1.Ref, Error: &store.ErrorInfo{Type: "E"}}, Attempt: 1}})
	require.NoError(t, err)
	require.Equal(t, []store.CompleteOutcome{store.Retrying}, outs)
	d2 := c.until("attempt 2", func(ev Event) bool { return ev.Kind == EventDeliver && ev.Delivery.Attempt == 2 }).Delivery
	rs.eng = nil
	outs, err = e.Complete(context.Background(), []Completion{{
		Completion: store.Completion{Ref: d2.Ref, OK: true, Result: []byte("ok")}, Attempt: 2}})
	require.NoError(t, err)
	require.Equal(t, []store.CompleteOutcome{store.Recorded}, outs, "attempt 2 was held, not discarded")
	e.mu.Lock()
	defer e.mu.Unlock()
	require.Empty(t, e.held, "nothing left held")
}

// heldSubmitStore holds every Submit call until release is closed, as a
// submission does while go-redis dials a Redis that is coming back.
type heldSubmitStore struct {
	store.Store
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *heldSubmitStore) Submit(ctx context.Context, subs []store.Submission) ([]store.Outcome, []error) {
	h.once.Do(func() { close(h.entered) })
	<-h.release
	return h.Store.Submit(ctx, subs)
}

// A re-watch while a submission is still on its way (the store reconnected
// before the submit call returned) leaves its waiter alone: the run is not
// lost, it is not in the store yet. It used to be failed with RunLost.
func TestRewatchSparesASubmissionOnItsWay(t *testing.T) {
	mem := newStore(t)
	held := &heldSubmitStore{Store: mem, entered: make(chan struct{}), release: make(chan struct{})}
	client := newEngine(t, held, false, func(c *Config) {
		c.Inbox = "client"
		c.Capacity = [store.NumLanes]int{}
	})
	worker := newEngine(t, mem, false, func(c *Config) { c.Inbox = "worker" })
	r := root("on-its-way")
	require.NoError(t, client.Enqueue(Commands{Submits: []Submit{{Submission: r, Token: 4}}}))
	select {
	case <-held.entered:
	case <-time.After(eventually):
		t.Fatal("the submission never reached the store")
	}
	client.rewatch(context.Background())
	close(held.release)
	serveOne(t, worker, r.Ref, "arrived")
	ev := collect(t, client).until("the result", resultFor(4))
	require.Equal(t, store.StatusSucceeded, ev.Note.Status)
	require.Equal(t, []byte("arrived"), ev.Note.Result)
}

// A running workflow's call refused for memory waits in the outbox and is
// submitted once memory is back: the run in flight finishes. (A client's
// own submission is refused at once: TestFullStore.)
func TestWorkflowCallWaitsForMemory(t *testing.T) {
	mem := newStore(t)
	fs := &flakyStore{st: mem}
	e := newEngine(t, fs, false, func(c *Config) {
		c.Inbox = "w"
		c.Capacity = [store.NumLanes]int{2, 0} // the workflow and its call
	})
	rootRef := store.Ref{Unit: "wf", Path: store.RootPath}
	child := store.Ref{Unit: "wf", Path: "0.1"}
	submit(t, e, Submit{Submission: root("wf")})
	c := collect(t, e)
	c.until("the workflow's delivery", deliverOf(rootRef))

	fs.full.Store(true)
	errs := e.Submit(context.Background(), []Submit{{Submission: store.Submission{
		Ref: child, Parent: "0", Depth: 1, Name: "step", Lane: store.LaneAsync}, Token: 21}})
	require.NoError(t, errs[0], "kept for memory, not refused")
	c.quiet(50*time.Millisecond, resultFor(21))
	_, err := mem.Get(context.Background(), child)
	require.ErrorIs(t, err, store.ErrNotFound, "nothing written while memory is full")

	fs.full.Store(false)
	require.Eventually(t, func() bool {
		_, err := mem.Get(context.Background(), child)
		return err == nil
	}, eventually, time.Millisecond, "the outbox submits the call once memory is back")
	d := c.until("the call's delivery once memory is back", deliverOf(child)).Delivery
	_, err = e.Complete(context.Background(), []Completion{{
		Completion: store.Completion{Ref: child, OK: true, Result: []byte("3")}, Attempt: d.Attempt}})
	require.NoError(t, err)
	ev := c.until("the call's result", resultFor(21))
	require.Equal(t, store.StatusSucceeded, ev.Note.Status)
	require.Equal(t, []byte("3"), ev.Note.Result)
}
