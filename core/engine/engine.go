// Package engine is the per-process runtime between a store and the code that
// runs user functions (Python, over the c-shared boundary). It reserves work
// up to the capacity the process declares per lane, keeps leases alive,
// enforces timeouts, maps finished operations to the local waiters (tokens)
// that asked for them, and queues everything the process must act on as
// Events, which the caller takes in batches with Drain or Wait.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// Config sets up an Engine.
type Config struct {
	Store store.Store
	// Inbox names this process in the store: its inbox and its worker name.
	Inbox string
	// Lease is how long a reservation lasts without renewal (default 30 s).
	Lease time.Duration
	// Heartbeat is how often held leases are renewed (default 5 s).
	Heartbeat time.Duration
	// ReclaimEvery is how often lapsed leases are looked for (default 1 s).
	ReclaimEvery time.Duration
	// Capacity is the starting number of slots per lane.
	Capacity [store.NumLanes]int
	// OwnsStore closes the store with the engine.
	OwnsStore bool
	// Private says no one else uses the store (embedded mode): every change
	// then comes through this engine or its timers, so instead of goroutines
	// blocked in the store (which would wake on the engine's own
	// submissions and race its callers for the work) the engine pumps after
	// each change and arms one timer for the next delayed retry.
	Private bool
	// Optimize runs the embedded optimizer (see tuner.go). It only runs
	// when Private and Optimize.Interval > 0.
	Optimize Optimize
	// Logger receives what the engine reports; nil queues its records as
	// EventLog events for the host process (see logs.go).
	Logger *slog.Logger
	// OutageTimeout bounds how long anything waits on an unreachable
	// store: submissions and watches still in the outbox after it fail,
	// and every local waiter is failed with StoreUnavailable once the store
	// has been unreachable that long (default 5 minutes). Completions are
	// retried for as long as it takes (see outbox.go).
	OutageTimeout time.Duration
	// JanitorEvery is how often the janitor looks for what went wrong
	// (see janitor.go); default 60 s.
	JanitorEvery time.Duration
	// TrimEvery is how often finished runs past the store's bounds are
	// trimmed (see retention.go); default 2 s.
	TrimEvery time.Duration
	// StatsEvery is how often this engine adds its per-minute counts to
	// the store (see counters.go); default 2 s.
	StatsEvery time.Duration
	// NoStats: this engine adds nothing to the store's per-minute counts
	// (history off, for benchmarks of what it costs).
	NoStats bool
}

// EventKind says what an Event asks of the process.
type EventKind uint8

const (
	// EventDeliver: run this operation and Complete it.
	EventDeliver EventKind = 1
	// EventResult: an operation a local waiter (Token) awaits has finished.
	EventResult EventKind = 2
	// EventCancel: stop running this operation; do not complete it.
	EventCancel EventKind = 3
	// EventMix: the embedded optimizer changed the mix of workers; the
	// lanes' capacities have changed by Mix's deltas already, and the
	// process resizes its blocking thread pool by Mix.BlockingDelta.
	EventMix EventKind = 4
	// EventLog: a record for the process's log (see logs.go).
	EventLog EventKind = 5
)

// Event is one thing for the process to act on.
type Event struct {
	Kind     EventKind
	Delivery store.Delivery // EventDeliver
	Token    uint64         // EventResult
	Note     store.Note     // EventResult, EventCancel
	Mix      MixChange      // EventMix
	Log      LogRecord      // EventLog
}

// Submit is a store submission plus the local waiter to tell when it ends.
type Submit struct {
	store.Submission
	// Token, if not 0, gets an EventResult when the operation finishes.
	Token uint64
}

// Completion is a store completion from the process, naming the attempt it
// ends, so that a late answer from an earlier attempt (one that timed out
// and was retried here) is not taken for the current one's.
type Completion struct {
	store.Completion
	Attempt int
}

type heldOp struct {
	name    string
	lane    store.Lane
	lease   uint64
	attempt int
	since   time.Time
	timer   *time.Timer
}

// Engine is safe for concurrent use.
type Engine struct {
	cfg Config
	st  store.Store

	mu     sync.Mutex
	closed bool
	events []Event
	evWake chan struct{} // closed and replaced when events arrive
	// Callers inside BeginSync/EndSync drain events themselves on the way
	// out; waking Wait for those would only hand them to another thread.
	syncCalls int
	wakeLater bool
	evWaiters int
	notifyFD  int           // eventfd announcing events, or -1 (see notify.go)
	notified  bool          // announced, not yet drained
	capWake   chan struct{} // closed and replaced when a lane gains room
	capacity  [store.NumLanes]int
	inflight  [store.NumLanes]int // delivered or being reserved
	// reserving counts store Reserve calls in flight per lane; missed says a
	// caller found no room meanwhile (see reserveOnce).
	paused    bool // draining: reserve nothing new
	reserving [store.NumLanes]int
	claimed   [store.NumLanes]int // slots claimed by those calls
	missed    [store.NumLanes]bool
	held      map[store.Ref]heldOp
	outSubs   []pendingSub // submissions waiting for the store to come back
	// unsubmitted counts, per ref, submissions on their way to the store
	// (in a Submit call, or in the outbox): a waiter on one is not asked
	// about before the store has it (see rewatch).
	unsubmitted map[store.Ref]int
	outComps    []pendingComp      // completions likewise
	outWatches  []pendingWatch     // watches likewise
	outCancels  []pendingCancel    // cancellations likewise
	outCrumbs   []store.Breadcrumb // breadcrumbs likewise (bounded: see outbox.go)
	crumbsLost  int                // breadcrumbs dropped from a full outbox, not yet logged
	outWake     chan struct{}
	counts      counters
	// inboxTrouble: reading the inbox failed; on the next success, rewatch.
	inboxTrouble atomic.Bool
	// Commands waiting for the command loop (shared stores only).
	cmdQueue   Commands
	cmdWake    chan struct{}
	cmdQuit    chan struct{}
	cmdDone    chan struct{}
	cmdClosing bool
	dueTimer   *time.Timer // Private mode: fires when the next retry is due
	dueAt      time.Time
	tokens     map[store.Ref][]uint64
	awaited    map[store.Ref]time.Time // when the first token of each ref was registered
	early      map[store.Ref]uint64    // leases cancelled before their delivery was seen
	// lost: operations whose lease a renewal found lost while they ran
	// here; their late completions still go to the store, which refuses
	// them (the lease token) and so has the last word (see Complete).
	lost  map[store.Ref]heldOp
	tuner *tuner // Private mode with Optimize set; nil otherwise
	// unreachableSince is when the store was first found unreachable in
	// the current outage (zero while it answers); see waiters.go.
	unreachableSince time.Time

	log  *slog.Logger
	logs *logQueue

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ErrClosed is returned by calls on a closed engine.
var ErrClosed = errors.New("engine closed")

// New starts an engine and its background loops.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Store == nil || cfg.Inbox == "" {
		return nil, fmt.Errorf("engine: %w: store and inbox are required", store.ErrInvalid)
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 5 * time.Second
	}
	if cfg.ReclaimEvery <= 0 {
		cfg.ReclaimEvery = time.Second
	}
	if cfg.OutageTimeout <= 0 {
		cfg.OutageTimeout = DefaultOutageTimeout
	}
	if cfg.JanitorEvery <= 0 {
		cfg.JanitorEvery = DefaultJanitorEvery
	}
	if cfg.TrimEvery <= 0 {
		cfg.TrimEvery = DefaultTrimEvery
	}
	if cfg.StatsEvery <= 0 {
		cfg.StatsEvery = DefaultStatsEvery
	}
	for l, c := range cfg.Capacity {
		if c < 0 {
			return nil, fmt.Errorf("engine: %w: negative capacity %d for lane %s", store.ErrInvalid, c, store.Lane(l))
		}
	}
	if err := cfg.Store.OpenInbox(ctx, cfg.Inbox); err != nil {
		return nil, fmt.Errorf("engine: open inbox %q: %w", cfg.Inbox, err)
	}
	e := &Engine{
		cfg:      cfg,
		st:       cfg.Store,
		evWake:   make(chan struct{}),
		notifyFD: -1,
		capWake:  make(chan struct{}),
		capacity: cfg.Capacity,
		held:     make(map[store.Ref]heldOp),
		tokens:   make(map[store.Ref][]uint64),
		awaited:  make(map[store.Ref]time.Time),
		early:    make(map[store.Ref]uint64),
		lost:     make(map[store.Ref]heldOp),

		unsubmitted: make(map[store.Ref]int),
		logs:        newLogQueue(),
		outWake:     make(chan struct{}, 1),
		cmdWake:     make(chan struct{}, 1),
		cmdQuit:     make(chan struct{}),
		cmdDone:     make(chan struct{}),
	}
	if cfg.Private && cfg.Optimize.Interval > 0 {
		t, err := newTuner(cfg.Optimize)
		if err != nil {
			_ = cfg.Store.CloseInbox(ctx, cfg.Inbox)
			return nil, err
		}
		e.tuner = t
	}
	e.log = cfg.Logger
	if e.log == nil {
		e.log = slog.New(&eventHandler{q: e.logs})
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.spawn(e.forwardLogs)
	if e.tuner != nil {
		e.spawn(e.tune)
	}
	if cfg.Private {
		close(e.cmdDone)
	} else {
		go func() {
			defer close(e.cmdDone)
			e.commandLoop(e.ctx)
		}()
		e.spawn(e.listen)
		for l := store.Lane(0); l < store.NumLanes; l++ {
			e.spawn(func(ctx context.Context) { e.dispatch(ctx, l) })
		}
	}
	e.spawn(e.heartbeat)
	e.spawn(e.deliverOutbox)
	e.spawn(e.recoverLapsed)
	e.spawn(e.janitor)
	e.spawn(e.trimRetention)
	if !cfg.NoStats {
		e.spawn(e.flushStats)
	}
	return e, nil
}

func (e *Engine) spawn(loop func(context.Context)) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		loop(e.ctx)
	}()
}

// Inbox is this engine's inbox and worker name.
func (e *Engine) Inbox() string { return e.cfg.Inbox }

// Store is the engine's store.
func (e *Engine) Store() store.Store { return e.st }

// push queues events and wakes Wait. Caller holds mu.
func (e *Engine) push(evs ...Event) {
	if len(evs) == 0 {
		return
	}
	e.events = append(e.events, evs...)
	if e.syncCalls > 0 {
		e.wakeLater = true
		return
	}
	e.wakeWaiters()
}

// wakeWaiters wakes Wait callers and announces the events on the notify
// fd. Caller holds mu.
func (e *Engine) wakeWaiters() {
	e.announce()
	if e.evWaiters == 0 {
		return
	}
	close(e.evWake)
	e.evWake = make(chan struct{})
	e.evWaiters = 0
}

// BeginSync marks a caller that will Drain before it returns, so events
// pushed meanwhile are left for it rather than handed to a Wait caller.
func (e *Engine) BeginSync() {
	e.mu.Lock()
	e.syncCalls++
	e.mu.Unlock()
}

// EndSync ends BeginSync; events still queued (pushed after the caller's
// Drain) then go to Wait.
func (e *Engine) EndSync() {
	e.mu.Lock()
	e.syncCalls--
	if e.syncCalls == 0 && e.wakeLater {
		e.wakeLater = false
		if len(e.events) > 0 {
			e.wakeWaiters()
		}
	}
	e.mu.Unlock()
}

// roomChanged wakes dispatchers. Caller holds mu.
func (e *Engine) roomChanged() {
	close(e.capWake)
	e.capWake = make(chan struct{})
}

// Submit sends submissions to the store. Tokens are registered first, so a
// result that arrives at once is never missed. errs[i] is nil on success.
// A submission the store cannot take for now (unreachable) is kept, with
// its waiter, and retried by the outbox; one it refuses (out of memory, a
// conflict, a caller it no longer has) fails at once.
func (e *Engine) Submit(ctx context.Context, subs []Submit) []error {
	if len(subs) == 0 {
		return nil
	}
	ss := make([]store.Submission, len(subs))
	now := time.Now()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return repeatErr(len(subs), ErrClosed)
	}
	for i := range subs {
		ss[i] = subs[i].Submission
		if subs[i].Token != 0 {
			ss[i].Inbox = e.cfg.Inbox
			e.addToken(ss[i].Ref, subs[i].Token, now)
		}
		// On its way: a re-watch or the janitor meanwhile must not take its
		// absence from the store for a loss.
		e.unsubmitted[ss[i].Ref]++
	}
	e.mu.Unlock()
	_, errs := e.st.Submit(ctx, ss)
	var failed bool
	var retry []Submit
	var away error
	var full []store.Ref // kept for memory, for the log line
	for i, err := range errs {
		switch {
		case err == nil:
		case kept(ss[i], err):
			// The store is unreachable for now, or full under a running
			// workflow: keep it (with the inbox its waiter listens on) and
			// retry rather than fail a run over a network blip.
			retry = append(retry, Submit{Submission: ss[i], Token: subs[i].Token})
			if errors.Is(err, store.ErrFull) {
				full = append(full, ss[i].Ref)
			} else {
				away = err
			}
			errs[i] = nil
		default:
			failed = true
			errs[i] = submitError(ss[i], err)
		}
	}
	e.mu.Lock()
	for i := range ss {
		e.submitted(ss[i].Ref)
	}
	e.queueSubs(retry, now) // under the same lock: a retried one stays counted
	e.mu.Unlock()
	if away != nil {
		e.unreachable(now, fmt.Errorf("submit %d operations: %w", len(retry)-len(full), away))
	}
	if len(full) > 0 {
		e.log.Warn(fmt.Sprintf("the store is out of memory: %d calls of running workflows are kept and retried until it takes them (for up to %s)",
			len(full), e.cfg.OutageTimeout), opAttrs(full[0])...)
	}
	if failed {
		e.mu.Lock()
		for i, err := range errs {
			if err != nil && subs[i].Token != 0 {
				e.dropToken(ss[i].Ref, subs[i].Token)
			}
		}
		e.mu.Unlock()
	}
	return errs
}

// submitError names the submission an error is about, and marks a child
// whose caller the store no longer has: that run was lost.
func submitError(sub store.Submission, err error) error {
	if sub.Parent != "" && errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("submit %s (%s): %w: its caller %s/%s is no longer in the store: %w",
			sub.Ref, sub.Name, ErrRunLost, sub.Ref.Unit, sub.Parent, err)
	}
	return fmt.Errorf("submit %s (%s): %w", sub.Ref, sub.Name, err)
}

func repeatErr(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// Watch asks for an EventResult with token when ref finishes.
func (e *Engine) Watch(ctx context.Context, ref store.Ref, token uint64) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	e.addToken(ref, token, time.Now())
	e.mu.Unlock()
	if err := e.st.Watch(ctx, ref, e.cfg.Inbox); err != nil {
		e.mu.Lock()
		e.dropToken(ref, token)
		e.mu.Unlock()
		return fmt.Errorf("watch %s: %w", ref, err)
	}
	return nil
}

// Complete reports finished attempts of operations this engine delivered,
// and frees their slots. A completion for an operation no longer held here
// (it was cancelled or timed out) is not sent: the store would call it
// stale anyway; one whose lease a renewal found lost is sent, for the store
// to refuse. One the store cannot take for now goes to the outbox, which
// retries it until the store takes it or calls it stale.
func (e *Engine) Complete(ctx context.Context, comps []Completion) ([]store.CompleteOutcome, error) {
	if len(comps) == 0 {
		return nil, nil
	}
	e.mu.Lock()
	keep := make([]store.Completion, 0, len(comps))
	names := make([]string, 0, len(comps))
	took := make([]time.Duration, 0, len(comps))
	lanes := make([]store.Lane, 0, len(comps))
	now := time.Now()
	for _, c := range comps {
		h, ok := e.held[c.Ref]
		if lh, wasLost := e.lost[c.Ref]; (!ok || h.attempt != c.Attempt) && wasLost {
			// Its lease was found lost while it ran: the store refuses this
			// completion (its lease token is stale), and says so.
			h, ok = lh, true
			delete(e.lost, c.Ref)
		}
		if !ok || h.attempt != c.Attempt {
			e.log.Info(fmt.Sprintf("result of %s (attempt %d) discarded: this process no longer holds it (it was cancelled or timed out)",
				c.Ref, c.Attempt), opAttrs(c.Ref)...)
			continue
		}
		c.LeaseID = h.lease
		keep = append(keep, c.Completion)
		names = append(names, h.name)
		took = append(took, now.Sub(h.since))
		lanes = append(lanes, h.lane)
		// Its slot is free from now: the store may hand the same operation
		// (a retry) to this process again before the call below returns,
		// and that attempt's entry must not be the one taken away.
		if cur, held := e.held[c.Ref]; held && cur.lease == h.lease {
			e.unhold(c.Ref)
		}
	}
	e.mu.Unlock()
	outs, err := e.st.Complete(ctx, e.cfg.Inbox, keep)
	if err != nil && !transient(err) {
		return nil, fmt.Errorf("complete %d operations: %w", len(keep), err)
	}
	e.counts.finished(keep, outs, took, lanes, names)
	if err == nil {
		e.reportStale(keep, names, outs)
	}
	if err != nil {
		e.mu.Lock()
		e.queueComps(keep, names, time.Now()) // delivered by the outbox loop
		e.mu.Unlock()
		e.unreachable(now, fmt.Errorf("complete %d operations: %w", len(keep), err))
	}
	return outs, nil
}

// reportStale logs each completion the store refused because its lease was
// no longer the operation's: the work was taken over (or cancelled) while
// this process ran it, and the other attempt's result stands.
func (e *Engine) reportStale(comps []store.Completion, names []string, outs []store.CompleteOutcome) {
	for i, out := range outs {
		if out != store.Stale || i >= len(comps) {
			continue
		}
		c := comps[i]
		e.log.Warn(fmt.Sprintf("late completion of %s %s refused: its lease %d is no longer valid (the lease lapsed and another worker took the operation over, or it was cancelled); this result is discarded and the run keeps the other one",
			names[i], c.Ref, c.LeaseID), opAttrs(c.Ref)...)
	}
}

// unhold forgets a held operation and frees its slot. Caller holds mu.
func (e *Engine) unhold(ref store.Ref) (heldOp, bool) {
	h, ok := e.held[ref]
	if !ok {
		return h, false
	}
	delete(e.held, ref)
	if h.timer != nil {
		h.timer.Stop()
	}
	e.inflight[h.lane]--
	e.roomChanged()
	return h, true
}

// Cancel cancels a unit (path "") or one operation and what it called.
func (e *Engine) Cancel(ctx context.Context, unit, path, reason string) (int, error) {
	n, err := e.st.Cancel(ctx, unit, path, reason)
	if err != nil {
		return 0, fmt.Errorf("cancel %s/%s: %w", unit, path, err)
	}
	return n, nil
}

// AddCapacity changes a lane's slots by delta. A caller that blocks waiting
// for the operations it called gives its slot back this way (+1), and takes
// it again (-1) when it resumes, so nested calls cannot deadlock.
func (e *Engine) AddCapacity(lane store.Lane, delta int) error {
	if !lane.Valid() {
		return fmt.Errorf("capacity: %w: unknown lane %d", store.ErrInvalid, lane)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.capacity[lane]+delta < 0 {
		return fmt.Errorf("capacity: %w: lane %s would go below zero", store.ErrInvalid, lane)
	}
	e.capacity[lane] += delta
	if delta > 0 {
		e.roomChanged()
	}
	return nil
}

// SetPaused stops (or resumes) reserving new work, as a draining worker
// does; what it holds keeps its leases.
func (e *Engine) SetPaused(paused bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.paused = paused
	e.roomChanged()
}

// Capacity reads a lane's slots and how many are in use.
func (e *Engine) Capacity(lane store.Lane) (capacity, inflight int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.capacity[lane], e.inflight[lane]
}

// Pump does, without blocking, what the background loops would do next:
// collect notes from the inbox and reserve work for free slots. Calling it
// after each batch of submissions and completions lets a single-process app
// run entirely on the caller's thread, with no thread hand-offs.
func (e *Engine) Pump(ctx context.Context) error {
	if err := e.takeNotes(ctx, 0); err != nil {
		return err
	}
	for l := store.Lane(0); l < store.NumLanes; l++ {
		if _, err := e.reserve(ctx, l, 0); err != nil {
			return err
		}
	}
	if e.cfg.Private {
		e.armDue()
	}
	return nil
}

// armDue makes sure a timer pumps when the store's next delayed retry comes
// due (Private mode only).
func (e *Engine) armDue() {
	dr, ok := e.st.(store.DueReporter)
	if !ok {
		return
	}
	due, ok := dr.NextDue()
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || (!e.dueAt.IsZero() && !due.Before(e.dueAt)) {
		return // a timer for this time or earlier is already armed
	}
	if e.dueTimer != nil {
		e.dueTimer.Stop()
	}
	e.dueAt = due
	e.dueTimer = time.AfterFunc(time.Until(due), func() {
		e.mu.Lock()
		e.dueAt = time.Time{}
		e.mu.Unlock()
		_, _ = e.st.Reclaim(e.ctx, time.Now())
		_ = e.Pump(e.ctx)
	})
}

// takeNotes moves inbox notes into events.
func (e *Engine) takeNotes(ctx context.Context, wait time.Duration) error {
	notes, err := e.st.Pop(ctx, e.cfg.Inbox, 0, wait)
	if errors.Is(err, store.ErrUnknownInbox) {
		// The store lost this process's inbox (expired, or not restored
		// after a restart): open it again, and have every awaited operation
		// tell it again, since notes sent meanwhile were dropped.
		if oerr := e.st.OpenInbox(ctx, e.cfg.Inbox); oerr == nil {
			e.inboxTrouble.Store(true)
			notes, err = e.st.Pop(ctx, e.cfg.Inbox, 0, 0)
		}
	}
	if err != nil {
		if transient(err) {
			e.inboxTrouble.Store(true)
			e.unreachable(time.Now(), fmt.Errorf("read inbox: %w", err))
		}
		return fmt.Errorf("read inbox %q: %w", e.cfg.Inbox, err)
	}
	e.reachable()
	if e.inboxTrouble.CompareAndSwap(true, false) {
		e.rewatch(ctx)
	}
	if len(notes) == 0 {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, n := range notes {
		switch n.Kind {
		case store.NoteFinished:
			for _, t := range e.takeTokens(n.Ref) {
				e.push(Event{Kind: EventResult, Token: t, Note: n})
			}
		case store.NoteCancel:
			if h, ok := e.held[n.Ref]; ok && h.lease == n.LeaseID {
				e.unhold(n.Ref)
				if n.Status == store.StatusCancelled {
					e.counts.ended(h.name, h.lane, "cancelled", time.Since(h.since))
				}
				e.push(Event{Kind: EventCancel, Note: n})
			} else if !ok {
				if len(e.early) > 4096 {
					clear(e.early) // only races leave entries here; keep it bounded
				}
				e.early[n.Ref] = n.LeaseID
			}
		}
	}
	return nil
}

// reserve asks the store for work for the free slots of a lane.
func (e *Engine) reserve(ctx context.Context, lane store.Lane, wait time.Duration) (int, error) {
	total := 0
	for {
		n, again, err := e.reserveOnce(ctx, lane, wait)
		total += n
		if err != nil || !again {
			return total, err
		}
		wait = 0
	}
}

// reserveOnce asks the store once. again reports that another caller found
// no room while this one held the slots, and room is left now: the work that
// caller came for may have arrived after this store call, so look again
// rather than strand it until the next change.
func (e *Engine) reserveOnce(ctx context.Context, lane store.Lane, wait time.Duration) (n int, again bool, err error) {
	e.mu.Lock()
	free := e.capacity[lane] - e.inflight[lane]
	if e.paused {
		free = 0
	}
	if e.closed || free <= 0 {
		if e.reserving[lane] > 0 {
			e.missed[lane] = true
		}
		e.mu.Unlock()
		return 0, false, nil
	}
	e.inflight[lane] += free // claim the slots while the store is asked
	e.claimed[lane] += free
	e.reserving[lane]++
	e.mu.Unlock()
	ds, err := e.st.Reserve(ctx, lane, e.cfg.Inbox, free, e.cfg.Lease, wait)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reserving[lane]--
	e.claimed[lane] -= free
	e.inflight[lane] -= free - len(ds)
	if free > len(ds) {
		e.roomChanged()
	}
	if err != nil {
		return 0, false, fmt.Errorf("reserve %s work: %w", lane, err)
	}
	if e.closed {
		// Close has already handed back what it saw held; hand these back too.
		e.inflight[lane] -= len(ds)
		leases := make(map[store.Ref]uint64, len(ds))
		for _, d := range ds {
			leases[d.Ref] = d.LeaseID
		}
		if len(leases) > 0 {
			if err := e.st.Release(context.Background(), e.cfg.Inbox, leases); err != nil {
				e.log.Warn(fmt.Sprintf("could not hand back %d operations reserved as the engine closed (they run again once their leases lapse): %v", len(leases), err))
			}
		}
		return 0, false, nil
	}
	for _, d := range ds {
		if lease, ok := e.early[d.Ref]; ok {
			delete(e.early, d.Ref)
			if lease == d.LeaseID {
				// Cancelled before this engine saw it: never start it.
				e.inflight[lane]--
				continue
			}
		}
		h := heldOp{name: d.Name, lane: lane, lease: d.LeaseID, attempt: d.Attempt, since: time.Now()}
		if d.TimeoutMs > 0 {
			h.timer = e.timeoutAfter(d)
		}
		e.held[d.Ref] = h
		e.push(Event{Kind: EventDeliver, Delivery: d})
		n++
		e.counts.started(1)
	}
	if e.missed[lane] && e.reserving[lane] == 0 && e.capacity[lane] > e.inflight[lane] {
		e.missed[lane] = false
		again = true
	}
	return n, again, nil
}

// timeoutAfter fails an attempt that outlives its timeout; the store then
// retries it or records the failure, and tells this engine to stop it.
func (e *Engine) timeoutAfter(d store.Delivery) *time.Timer {
	limit := time.Duration(d.TimeoutMs) * time.Millisecond
	return time.AfterFunc(limit, func() { e.timedOut(d, limit) })
}

// timedOut fails an attempt that outlived its timeout. If the store cannot
// take that now it tries again every second, for as long as this process
// holds the attempt: a timeout is not lost to an outage.
func (e *Engine) timedOut(d store.Delivery, limit time.Duration) {
	info := store.ErrorInfo{
		Type:    "builtins.TimeoutError",
		Message: fmt.Sprintf("%s (%s) timed out after %s", d.Name, d.Ref, limit),
	}
	out, err := e.st.Fail(e.ctx, d.Ref, d.LeaseID, info)
	switch {
	case err == nil:
		switch out {
		case store.Retrying:
			e.counts.ended(d.Name, d.Lane, "retried", limit)
		case store.Recorded:
			e.counts.ended(d.Name, d.Lane, "failed", limit)
		}
		_ = e.Pump(e.ctx)
	case e.ctx.Err() != nil:
	case transient(err):
		e.mu.Lock()
		if h, ok := e.held[d.Ref]; ok && h.lease == d.LeaseID && !e.closed {
			h.timer = time.AfterFunc(time.Second, func() { e.timedOut(d, limit) })
			e.held[d.Ref] = h
		}
		e.mu.Unlock()
	default:
		e.log.Error(fmt.Sprintf("the timeout of %s %s could not be recorded: %v", d.Name, d.Ref, err), opAttrs(d.Ref)...)
	}
}

// Drain takes queued events without waiting.
func (e *Engine) Drain() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	evs := e.events
	e.events = nil
	e.notified = false
	return evs
}

// Wait takes queued events, waiting up to timeout for the first one.
// It returns ErrClosed once the engine is closed and nothing is left.
func (e *Engine) Wait(ctx context.Context, timeout time.Duration) ([]Event, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		e.mu.Lock()
		if len(e.events) > 0 {
			evs := e.events
			e.events = nil
			e.notified = false
			e.mu.Unlock()
			return evs, nil
		}
		if e.closed {
			e.mu.Unlock()
			return nil, ErrClosed
		}
		wake := e.evWake
		e.evWaiters++
		e.mu.Unlock()
		select {
		case <-wake:
		case <-t.C:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Logger is where the engine logs (by default its records become EventLog
// events for the host).
func (e *Engine) Logger() *slog.Logger { return e.log }

// Close stops the loops, hands back what this process still holds so other
// workers can take it at once, and closes the inbox (and the store if owned).
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed || e.cmdClosing {
		e.mu.Unlock()
		<-e.cmdDone
		return nil
	}
	// Run what the process already handed over (its last completions above
	// all) before closing; nothing new is taken meanwhile.
	e.cmdClosing = true
	e.mu.Unlock()
	close(e.cmdQuit)
	<-e.cmdDone
	e.mu.Lock()
	e.closed = true
	leases := make(map[store.Ref]uint64, len(e.held))
	for ref, h := range e.held {
		leases[ref] = h.lease
		if h.timer != nil {
			h.timer.Stop()
		}
	}
	e.held = map[store.Ref]heldOp{}
	if e.dueTimer != nil {
		e.dueTimer.Stop()
	}
	e.evWaiters = 1 // whoever waits must see the close
	e.notifyFD = -1 // its owner closes it once Close returns: never write to it again
	e.wakeWaiters()
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	// One last try for what waits in the outbox; then say what never made
	// it, so that nothing is dropped without a word.
	e.mu.Lock()
	subs, comps := e.outSubs, e.outComps
	e.outSubs, e.outComps = nil, nil
	e.mu.Unlock()
	e.retryComps(ctx, comps)
	e.retrySubs(ctx, subs)
	if err := e.writeStats(ctx); err != nil {
		errs = append(errs, fmt.Errorf("this process's last counts never reached the store: %w", err))
	}
	e.mu.Lock()
	if left := e.outboxLeft(); left != nil {
		errs = append(errs, fmt.Errorf("closed while the store was unreachable: %w", left))
	}
	e.mu.Unlock()
	if len(leases) > 0 {
		if err := e.st.Release(ctx, e.cfg.Inbox, leases); err != nil && !errors.Is(err, store.ErrClosed) {
			errs = append(errs, fmt.Errorf("release %d held operations: %w", len(leases), err))
		}
	}
	if err := e.st.CloseInbox(ctx, e.cfg.Inbox); err != nil && !errors.Is(err, store.ErrClosed) {
		errs = append(errs, fmt.Errorf("close inbox: %w", err))
	}
	if e.cfg.OwnsStore {
		if err := e.st.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	return errors.Join(errs...)
}
