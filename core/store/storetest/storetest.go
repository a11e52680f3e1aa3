// Package storetest is the conformance suite every store driver must pass,
// scenario for scenario. A driver's test file calls Run with a constructor:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, clock *storetest.Clock) store.Store {
//			return memstore.New(memstore.Config{Now: clock.Now})
//		})
//	}
//
// Scenarios are written only against the store.Store interface, one file
// per area (submit.go, reserve.go, ...); the scenarios table below lists them
// all. Each runs in its own subtest with a new store and a new Clock that
// stands still unless a scenario advances it; drivers must take every
// timestamp (creation, start, finish, lease ends, retry due times, ages) from
// that clock. Real time is used only for the wait arguments of Reserve and
// Pop.
package storetest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

// Epoch is where every Clock made for a scenario starts.
var Epoch = time.Date(2030, time.January, 2, 3, 4, 5, 0, time.UTC)

// Clock is a controllable clock, safe for concurrent use. It only moves when
// Advance is called.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock that reads start until advanced.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const (
	// scenarioTimeout bounds every scenario, so a driver that hangs fails
	// instead of blocking the test binary.
	scenarioTimeout = 60 * time.Second
	// testLease is the lease used when a scenario does not care about it.
	testLease = time.Minute
	// longWait is passed to blocking calls that are expected to return well
	// before it, woken by an event.
	longWait = 10 * time.Second
	// wakeTimeout is how long a woken call may take to return. It is far
	// below longWait, so returning in time proves the call was woken.
	wakeTimeout = 3 * time.Second
	// shortWait is a wait that must simply run out.
	shortWait = 20 * time.Millisecond
)

// Run runs every conformance scenario against stores made by newStore. Each
// scenario gets a fresh store and a fresh Clock (starting at Epoch); Run
// closes the store when the scenario ends.
func Run(t *testing.T, newStore func(t *testing.T, clock *Clock) store.Store) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			clock := NewClock(Epoch)
			s := newStore(t, clock)
			require.NotNil(t, s, "newStore returned nil")
			t.Cleanup(func() { _ = s.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
			t.Cleanup(cancel)
			sc.run(&env{t: t, s: s, clock: clock, ctx: ctx})
		})
	}
}

// scenario is one conformance test: its subtest name and its body.
type scenario struct {
	name string
	run  func(e *env)
}

// scenarios lists every scenario, by area. The names are the subtest names
// (go test -run 'TestConformance/<name>'): keep them stable.
var scenarios = []scenario{
	// submit.go: the happy path, join and replay, conflicts, invalid items.
	{"submit_reserve_complete", testSubmitReserveComplete},
	{"idempotent_submit_join_replay", testJoinReplay},
	{"conflict_is_per_item", testConflictPerItem},
	{"duplicate_ref_in_one_batch", testDuplicateInBatch},
	{"invalid_submissions", testInvalidSubmissions},

	// reserve.go: lanes, priority and FIFO, waiting, lapse, renew, release,
	// lapses with and without progress, a gone worker's leases.
	{"lanes_are_separate", testLanesAreSeparate},
	{"priority_then_fifo_and_max", testPriorityFIFOMax},
	{"reserve_wakes_on_submit", testReserveWakes},
	{"reserve_wait_expires", testReserveWaitExpires},
	{"reserve_ctx_cancel", testReserveCtxCancel},
	{"lease_lapse_reclaim", testLeaseLapse},
	{"lease_renew", testLeaseRenew},
	{"lease_lapse_out_of_attempts_fails", testLeaseLapseOutOfAttempts},
	{"release", testRelease},
	{"lapse_without_progress_is_counted", testLapseWithoutProgressCounted},
	{"lapse_while_waiting_on_a_call_is_not_counted", testLapseWhileWaiting},
	{"lapse_after_a_call_finished_is_not_counted", testLapseAfterCallFinished},
	{"lapse_after_renewal_is_not_counted", testLapseAfterRenewal},
	{"reclaim_worker_takes_back_its_leases", testReclaimWorker},

	// complete.go: first result wins, Watch, inboxes and Pop.
	{"completion_first_wins", testCompletionFirstWins},
	{"watch", testWatch},
	{"inbox_pop_wakes_on_note", testPopWakes},
	{"inbox_pop_nonblocking_and_max", testPopNonBlockingMax},
	{"inbox_pop_wait_expires", testPopWaitExpires},
	{"inbox_unknown_and_closed", testInboxUnknownClosed},
	{"inbox_open_idempotent", testInboxOpenIdempotent},

	// cancel.go: a subtree, a unit, the count, a finished caller's calls,
	// and Fail.
	{"cancel_subtree", testCancelSubtree},
	{"cancel_unit", testCancelUnit},
	{"cancel_count_includes_descendants", testCancelCount},
	{"finished_parent_cancels_children", testParentFinishCancelsChildren},
	{"fail_running_op", testFail},

	// retry.go: without and with backoff, NoRetry.
	{"failure_without_retries", testFailureWithoutRetries},
	{"retries_without_backoff", testRetriesWithoutBackoff},
	{"retry_backoff_delays", testRetryBackoff},
	{"no_retry_fails_at_once", testNoRetry},

	// operator.go: Stats, dead letters, Requeue, Repair.
	{"stats", testStats},
	{"failed_lists_dead_letters", testFailedList},
	{"requeue_failed_unit", testRequeue},
	{"requeue_cancelled_unit", testRequeueCancelled},
	{"repair_leaves_a_healthy_store_alone", testRepairHealthy},

	// history.go: breadcrumbs, the index of runs, a run's operations,
	// per-minute counts, the timeline.
	{"breadcrumbs_user_and_store", testBreadcrumbs},
	{"breadcrumbs_are_bounded", testBreadcrumbsBounded},
	{"runs_index_newest_first_with_filters", testRunsIndex},
	{"unit_lists_every_operation_in_call_order", testUnitOperations},
	{"stats_merge_by_minute", testStatsByMinute},
	{"timeline_merges_records_and_breadcrumbs", testTimeline},

	// schedules.go: one run per tick, pause, overlap, the registry.
	{"schedule_tick_fires_once", testScheduleTickFiresOnce},
	{"schedule_pause_and_overlap", testScheduleRules},
	{"schedule_registry_and_errors", testScheduleRegistryAndErrors},

	// concurrency.go and close.go: many callers at once, and Close.
	{"concurrent_submit_reserve_complete", testConcurrency},
	{"close", testClose},
}

// env is one scenario's store, clock and context, with helpers that fail
// the scenario on unexpected errors.
type env struct {
	t     *testing.T
	s     store.Store
	clock *Clock
	ctx   context.Context
}

// sub builds a submission of "task" on the async lane; the parent and depth
// follow from the path ("0.1.2" has parent "0.1" and depth 2).
func sub(unit, path string) store.Submission {
	s := store.Submission{Ref: store.Ref{Unit: unit, Path: path}, Name: "task", Lane: store.LaneAsync}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		s.Parent = path[:i]
		s.Depth = strings.Count(path, ".")
	}
	return s
}

// blockingCalls builds calls of unit on the blocking lane at paths, each
// with inbox as its waiter.
func blockingCalls(unit, inbox string, paths ...string) []store.Submission {
	out := make([]store.Submission, len(paths))
	for i, p := range paths {
		out[i] = sub(unit, p)
		out[i].Lane = store.LaneBlocking
		out[i].Inbox = inbox
	}
	return out
}

func ref(unit, path string) store.Ref { return store.Ref{Unit: unit, Path: path} }

func ok(d store.Delivery, result string) store.Completion {
	return store.Completion{Ref: d.Ref, LeaseID: d.LeaseID, OK: true, Result: []byte(result)}
}

func failed(d store.Delivery, info *store.ErrorInfo) store.Completion {
	return store.Completion{Ref: d.Ref, LeaseID: d.LeaseID, Error: info}
}

func errInfo(msg string) *store.ErrorInfo {
	return &store.ErrorInfo{
		Type:      "builtins.ValueError",
		Message:   msg,
		Traceback: "Traceback (most recent call last):\n  File \"app.py\", line 7, in step\nValueError: " + msg + "\n",
		Payload:   []byte{0x00, 0x81, 0xa1, 'x', 0xff},
	}
}

func (e *env) open(names ...string) {
	e.t.Helper()
	for _, n := range names {
		require.NoError(e.t, e.s.OpenInbox(e.ctx, n), "OpenInbox(%q)", n)
	}
}

func (e *env) submit(subs ...store.Submission) []store.Outcome {
	e.t.Helper()
	outs, errs := e.s.Submit(e.ctx, subs)
	require.Len(e.t, outs, len(subs), "Submit outcomes")
	require.Len(e.t, errs, len(subs), "Submit errors")
	for i, err := range errs {
		require.NoError(e.t, err, "submission %d (%s)", i, subs[i].Ref)
	}
	return outs
}

func (e *env) submitOne(s store.Submission, want store.Outcome) {
	e.t.Helper()
	require.Equal(e.t, []store.Outcome{want}, e.submit(s), "Submit(%s)", s.Ref)
}

func (e *env) reserveLease(lane store.Lane, worker string, max int, lease time.Duration) []store.Delivery {
	e.t.Helper()
	ds, err := e.s.Reserve(e.ctx, lane, worker, max, lease, 0)
	require.NoError(e.t, err, "Reserve(%s, %q)", lane, worker)
	return ds
}

func (e *env) reserve(lane store.Lane, worker string, max int) []store.Delivery {
	e.t.Helper()
	return e.reserveLease(lane, worker, max, testLease)
}

func (e *env) reserveOne(lane store.Lane, worker string) store.Delivery {
	e.t.Helper()
	ds := e.reserve(lane, worker, 1)
	require.Len(e.t, ds, 1, "Reserve(%s, %q) should deliver one operation", lane, worker)
	return ds[0]
}

// requireNoWork asserts that no lane has anything to deliver.
func (e *env) requireNoWork() {
	e.t.Helper()
	for l := store.Lane(0); l < store.NumLanes; l++ {
		require.Empty(e.t, e.reserve(l, "probe", 100), "lane %s should have nothing ready", l)
	}
}

func (e *env) complete(worker string, comps ...store.Completion) []store.CompleteOutcome {
	e.t.Helper()
	outs, err := e.s.Complete(e.ctx, worker, comps)
	require.NoError(e.t, err, "Complete by %q", worker)
	require.Len(e.t, outs, len(comps), "Complete outcomes")
	return outs
}

func (e *env) completeOne(worker string, c store.Completion) store.CompleteOutcome {
	e.t.Helper()
	return e.complete(worker, c)[0]
}

func (e *env) pop(inbox string) []store.Note {
	e.t.Helper()
	notes, err := e.s.Pop(e.ctx, inbox, 1000, 0)
	require.NoError(e.t, err, "Pop(%q)", inbox)
	return notes
}

func (e *env) get(r store.Ref) store.Operation {
	e.t.Helper()
	op, err := e.s.Get(e.ctx, r)
	require.NoError(e.t, err, "Get(%s)", r)
	return op
}

func (e *env) requireMissing(r store.Ref) {
	e.t.Helper()
	_, err := e.s.Get(e.ctx, r)
	require.ErrorIs(e.t, err, store.ErrNotFound, "Get(%s) of an operation that should not exist", r)
}

func (e *env) stats() [store.NumLanes]store.LaneStats {
	e.t.Helper()
	st, err := e.s.Stats(e.ctx)
	require.NoError(e.t, err, "Stats")
	return st
}

func (e *env) reclaim() int {
	e.t.Helper()
	r, err := e.s.Reclaim(e.ctx, e.clock.Now())
	require.NoError(e.t, err, "Reclaim")
	return r.Moved
}

func (e *env) requireTime(want, got time.Time, what string) {
	e.t.Helper()
	require.WithinDuration(e.t, want, got, time.Millisecond, what)
}

func (e *env) requireAge(want, got time.Duration, what string) {
	e.t.Helper()
	require.InDelta(e.t, float64(want), float64(got), float64(time.Millisecond), "%s: want %v, got %v", what, want, got)
}

func (e *env) requireStatus(r store.Ref, want store.Status) store.Operation {
	e.t.Helper()
	op := e.get(r)
	require.Equal(e.t, want, op.Status, "status of %s", r)
	return op
}

// oneNote asserts notes holds exactly one note, of kind about r (and, for
// NoteFinished, with status st), and returns it.
func (e *env) oneNote(notes []store.Note, kind store.NoteKind, r store.Ref, st store.Status) store.Note {
	e.t.Helper()
	require.Len(e.t, notes, 1, "expected exactly one note about %s, got %+v", r, notes)
	n := notes[0]
	require.Equal(e.t, kind, n.Kind, "note kind")
	require.Equal(e.t, r, n.Ref, "note ref")
	if kind == store.NoteFinished {
		require.Equal(e.t, st, n.Status, "note status")
	}
	return n
}

// byRef indexes notes by ref, asserting each ref appears once.
func (e *env) byRef(notes []store.Note) map[store.Ref]store.Note {
	e.t.Helper()
	m := make(map[store.Ref]store.Note, len(notes))
	for _, n := range notes {
		_, dup := m[n.Ref]
		require.False(e.t, dup, "more than one note about %s: %+v", n.Ref, notes)
		m[n.Ref] = n
	}
	return m
}

func refsOf(ds []store.Delivery) []store.Ref {
	out := make([]store.Ref, len(ds))
	for i, d := range ds {
		out[i] = d.Ref
	}
	return out
}
