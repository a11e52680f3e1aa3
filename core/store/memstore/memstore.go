// Package memstore is the in-process store driver: the embedded default when
// no Redis URL is given. All state sits behind one mutex; waiting callers are
// woken by closing a broadcast channel, never by polling.
package memstore

import (
	"container/heap"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// Config tunes the driver.
type Config struct {
	// Retention is how long a finished unit stays readable; 0 means 1 hour.
	Retention time.Duration
	// MaxRuns bounds the finished units kept (Trim deletes the oldest past
	// it); 0 means DefaultMaxRuns.
	MaxRuns int
	// MaxLapses is how many lease lapses in a row without progress an
	// operation survives; 0 means store.DefaultMaxLapses.
	MaxLapses int
	// MaxBreadcrumbs bounds the user's breadcrumbs kept per run; 0 means
	// store.DefaultMaxBreadcrumbs.
	MaxBreadcrumbs int
	// NoHistory: Runs lists none (the store still knows its runs in
	// creation order, which trimming by count needs).
	NoHistory bool
	// Now overrides the clock (tests).
	Now func() time.Time
}

// DefaultMaxRuns is the default bound on finished units kept.
const DefaultMaxRuns = 100_000

// where an operation currently sits.
const (
	inNone uint8 = iota
	inReady
	inDelayed
)

type op struct {
	rec      store.Operation
	opts     store.Options
	unit     *unit
	kids     []*op
	waiters  []string
	leaseID  uint64
	leaseEnd time.Time
	where    uint8
	lapses   int       // lapses in a row without progress
	renewed  time.Time // last renewal of its lease
	seq      uint64    // FIFO order among equal priorities
	readyAt  time.Time // when it became ready (age) or is due (delayed)
	heapIdx  int
}

type unit struct {
	id       string
	ops      map[string]*op
	created  time.Time
	finished time.Time
	crumbs   []store.Breadcrumb // the stored part of its timeline (see history.go)
	dropped  int                // breadcrumbs dropped past the bound
}

// Store is the memstore driver. The zero value is not usable; call New.
type Store struct {
	cfg Config

	mu       sync.Mutex
	closed   bool
	units    map[string]*unit
	ready    [store.NumLanes]*opHeap
	delayed  [store.NumLanes]*opHeap
	nDelayed [store.NumLanes]int
	running  map[*op]struct{}
	inboxes  map[string]*inbox
	laneWake [store.NumLanes]chan struct{}
	// Reserve calls asleep per lane: a wake-up costs a channel only if
	// someone is there to hear it.
	laneWaiters [store.NumLanes]int
	done        chan struct{}
	seq         uint64
	leaseSeq    uint64
	finished    []finishedUnit                     // in finish order, for retention
	runs        []*unit                            // in creation order: the index of runs (see history.go)
	stats       map[int64]map[string]*store.Counts // per minute (unix ms), by step name and lane
	dead        []*op                              // failed roots in failure order (dead letters)
	// alive: per worker, the latest lease end it was promised (Reserve,
	// Renew); a lease ending later has no live holder (Repair).
	alive map[string]time.Time
	// schedules by name (see schedules.go); nil until the first one.
	schedules map[string]*store.ScheduleState
}

type finishedUnit struct {
	u  *unit
	at time.Time
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.DueReporter = (*Store)(nil)
)

// New returns an empty store.
func New(cfg Config) *Store {
	if cfg.Retention <= 0 {
		cfg.Retention = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxRuns <= 0 {
		cfg.MaxRuns = DefaultMaxRuns
	}
	if cfg.MaxBreadcrumbs <= 0 {
		cfg.MaxBreadcrumbs = store.DefaultMaxBreadcrumbs
	}
	if cfg.MaxLapses <= 0 {
		cfg.MaxLapses = store.DefaultMaxLapses
	}
	s := &Store{
		alive:   make(map[string]time.Time),
		stats:   make(map[int64]map[string]*store.Counts),
		cfg:     cfg,
		units:   make(map[string]*unit),
		running: make(map[*op]struct{}),
		inboxes: make(map[string]*inbox),
		done:    make(chan struct{}),
	}
	for i := range s.laneWake {
		s.laneWake[i] = make(chan struct{})
		s.ready[i] = &opHeap{less: byPriority}
		s.delayed[i] = &opHeap{less: byDue}
	}
	return s
}

func (s *Store) now() time.Time { return s.cfg.Now() }

// wakeLane tells blocked Reserve calls that a lane changed. Caller holds mu.
func (s *Store) wakeLane(l store.Lane) {
	if s.laneWaiters[l] == 0 {
		return
	}
	close(s.laneWake[l])
	s.laneWake[l] = make(chan struct{})
}

// Submit implements store.Store.
func (s *Store) Submit(_ context.Context, subs []store.Submission) ([]store.Outcome, []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		errs := make([]error, len(subs))
		for i := range errs {
			errs[i] = store.ErrClosed
		}
		return make([]store.Outcome, len(subs)), errs
	}
	return s.submitLocked(subs, s.now())
}

// submitLocked is Submit under s.mu (FireTick submits a tick's run under the
// same hold as its claim).
func (s *Store) submitLocked(subs []store.Submission, now time.Time) ([]store.Outcome, []error) {
	outs := make([]store.Outcome, len(subs))
	errs := make([]error, len(subs))
	woke := [store.NumLanes]bool{}
	for i := range subs {
		sub := &subs[i]
		if err := sub.Validate(); err != nil {
			errs[i] = err
			continue
		}
		u := s.units[sub.Ref.Unit]
		if u != nil {
			if o := u.ops[sub.Ref.Path]; o != nil {
				if o.rec.Name != sub.Name {
					errs[i] = fmt.Errorf("%w: %s is %q, not %q", store.ErrConflict, sub.Ref, o.rec.Name, sub.Name)
					continue
				}
				if o.rec.Status.Finished() {
					s.notify(sub.Inbox, finishedNote(o))
					s.crumb(o, "replay", "returned its stored result to a replaying caller", now)
					outs[i] = store.Replayed
				} else {
					o.addWaiter(sub.Inbox)
					outs[i] = store.Joined
				}
				continue
			}
		}
		var parent *op
		if sub.Parent != "" {
			if u != nil {
				parent = u.ops[sub.Parent]
			}
			if parent == nil {
				errs[i] = fmt.Errorf("%w: parent %s/%s of %s", store.ErrNotFound, sub.Ref.Unit, sub.Parent, sub.Ref)
				continue
			}
		}
		if u == nil {
			u = &unit{id: sub.Ref.Unit, ops: make(map[string]*op), created: now}
			s.units[u.id] = u
			s.runs = append(s.runs, u)
		}
		o := &op{
			rec: store.Operation{
				Ref: sub.Ref, Parent: sub.Parent, Depth: sub.Depth, Name: sub.Name,
				Lane: sub.Lane, Status: store.StatusPending, Args: sub.Args, CreatedAt: now,
			},
			opts: sub.Opts,
			unit: u,
		}
		o.addWaiter(sub.Inbox)
		u.ops[sub.Ref.Path] = o
		if parent != nil {
			parent.kids = append(parent.kids, o)
			if parent.rec.Status.Finished() {
				// The caller is gone: nothing will ever await this call.
				s.finish(o, store.StatusCancelled, nil, cancelInfo("its caller "+parent.rec.Ref.String()+" had already finished"), now)
				outs[i] = store.Replayed
				continue
			}
		}
		s.pushReady(o, now)
		woke[o.rec.Lane] = true
		outs[i] = store.Created
	}
	for l, w := range woke {
		if w {
			s.wakeLane(store.Lane(l))
		}
	}
	return outs, errs
}

func (o *op) addWaiter(inbox string) {
	if inbox == "" {
		return
	}
	for _, w := range o.waiters {
		if w == inbox {
			return
		}
	}
	o.waiters = append(o.waiters, inbox)
}

func finishedNote(o *op) store.Note {
	return store.Note{Kind: store.NoteFinished, Ref: o.rec.Ref, Status: o.rec.Status, Result: o.rec.Result, Error: o.rec.Error}
}

func cancelInfo(reason string) *store.ErrorInfo {
	return &store.ErrorInfo{Type: "blazing.errors.RunCancelled", Message: reason}
}

func (s *Store) pushReady(o *op, now time.Time) {
	s.seq++
	o.seq = s.seq
	o.where = inReady
	o.readyAt = now
	heap.Push(s.ready[o.rec.Lane], o)
}

func (s *Store) pushDelayed(o *op, due time.Time) {
	o.where = inDelayed
	o.readyAt = due
	heap.Push(s.delayed[o.rec.Lane], o)
	s.nDelayed[o.rec.Lane]++
}

// unqueue takes a pending op out of whichever queue holds it. Caller holds mu.
func (s *Store) unqueue(o *op) {
	switch o.where {
	case inReady:
		heap.Remove(s.ready[o.rec.Lane], o.heapIdx)
	case inDelayed:
		heap.Remove(s.delayed[o.rec.Lane], o.heapIdx)
		s.nDelayed[o.rec.Lane]--
	}
	o.where = inNone
}

// promote moves due delayed ops to ready. Caller holds mu.
func (s *Store) promote(now time.Time) int {
	n := 0
	for l := range s.delayed {
		moved := false
		for s.delayed[l].Len() > 0 && !s.delayed[l].head().readyAt.After(now) {
			o := heap.Pop(s.delayed[l]).(*op)
			s.nDelayed[l]--
			s.pushReady(o, now)
			n++
			moved = true
		}
		if moved {
			s.wakeLane(store.Lane(l))
		}
	}
	return n
}

// Reserve implements store.Store.
func (s *Store) Reserve(ctx context.Context, lane store.Lane, worker string, max int, lease, wait time.Duration) ([]store.Delivery, error) {
	if !lane.Valid() {
		return nil, fmt.Errorf("reserve: %w: unknown lane %d", store.ErrInvalid, lane)
	}
	if max <= 0 {
		return nil, nil
	}
	var deadline time.Time
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, store.ErrClosed
		}
		now := s.now()
		s.promote(now)
		var out []store.Delivery
		for len(out) < max && s.ready[lane].Len() > 0 {
			o := heap.Pop(s.ready[lane]).(*op)
			o.where = inNone
			s.leaseSeq++
			o.leaseID = s.leaseSeq
			o.leaseEnd = now.Add(lease)
			o.rec.Status = store.StatusRunning
			o.rec.Attempts++
			o.rec.Worker = worker
			o.rec.StartedAt = now
			s.running[o] = struct{}{}
			out = append(out, store.Delivery{
				Ref: o.rec.Ref, Parent: o.rec.Parent, Depth: o.rec.Depth, Name: o.rec.Name,
				Lane: o.rec.Lane, Args: o.rec.Args, Attempt: o.rec.Attempts,
				TimeoutMs: o.opts.TimeoutMs, LeaseID: o.leaseID,
			})
		}
		if len(out) > 0 {
			s.promise(worker, now.Add(lease))
		}
		if len(out) > 0 || wait <= 0 {
			s.mu.Unlock()
			return out, nil
		}
		// Waiting is measured on the real clock: cfg.Now may be a test clock.
		if deadline.IsZero() {
			deadline = time.Now().Add(wait)
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			s.mu.Unlock()
			return nil, nil
		}
		// A delayed retry may come due before anything is submitted.
		if s.delayed[lane].Len() > 0 {
			if d := s.delayed[lane].head().readyAt.Sub(now); d < remaining {
				remaining = max64(d, time.Millisecond)
			}
		}
		wake := s.laneWake[lane]
		s.laneWaiters[lane]++
		s.mu.Unlock()
		err := sleep(ctx, wake, s.done, remaining)
		s.mu.Lock()
		s.laneWaiters[lane]--
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
}

func max64(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

// sleep waits for wake, the store closing, ctx, or d.
func sleep(ctx context.Context, wake, done <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-wake:
	case <-t.C:
	case <-done:
		return store.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// held returns the op if worker still holds it under leaseID. Caller holds mu.
func (s *Store) held(ref store.Ref, worker string, leaseID uint64) *op {
	u := s.units[ref.Unit]
	if u == nil {
		return nil
	}
	o := u.ops[ref.Path]
	if o == nil || o.rec.Status != store.StatusRunning || o.leaseID != leaseID {
		return nil
	}
	if worker != "" && o.rec.Worker != worker {
		return nil
	}
	return o
}

// Renew implements store.Store.
func (s *Store) Renew(_ context.Context, worker string, leases map[store.Ref]uint64, lease time.Duration) ([]store.Ref, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	now := s.now()
	end := now.Add(lease)
	var lost []store.Ref
	for ref, id := range leases {
		if o := s.held(ref, worker, id); o != nil {
			o.leaseEnd = end
			o.renewed = now
		} else {
			lost = append(lost, ref)
		}
	}
	if len(lost) < len(leases) {
		s.promise(worker, end)
	}
	return lost, nil
}

// Complete implements store.Store.
func (s *Store) Complete(_ context.Context, worker string, comps []store.Completion) ([]store.CompleteOutcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	now := s.now()
	outs := make([]store.CompleteOutcome, len(comps))
	for i := range comps {
		c := &comps[i]
		o := s.held(c.Ref, worker, c.LeaseID)
		if o == nil {
			outs[i] = store.Stale
			continue
		}
		if c.OK {
			s.finish(o, store.StatusSucceeded, c.Result, nil, now)
			outs[i] = store.Recorded
			continue
		}
		outs[i] = s.failAttempt(o, c.Error, c.NoRetry, now)
	}
	return outs, nil
}

// failAttempt records a failed attempt, retrying if allowed. Caller holds mu.
func (s *Store) failAttempt(o *op, info *store.ErrorInfo, noRetry bool, now time.Time) store.CompleteOutcome {
	if info == nil {
		info = &store.ErrorInfo{Type: "blazing.errors.RemoteError", Message: "failed without error details"}
	}
	if !noRetry && o.rec.Attempts <= o.opts.Retries {
		delete(s.running, o)
		o.rec.Status = store.StatusPending
		o.rec.Error = info
		o.leaseID = 0
		d := store.Backoff(o.opts, o.rec.Attempts)
		s.crumb(o, "retry", fmt.Sprintf("attempt %d on %s failed: %s: %s; retry in %d ms",
			o.rec.Attempts, o.rec.Worker, info.Type, info.Message, d.Milliseconds()), now)
		if d > 0 {
			s.pushDelayed(o, now.Add(d))
		} else {
			s.pushReady(o, now)
			s.wakeLane(o.rec.Lane)
		}
		return store.Retrying
	}
	s.finish(o, store.StatusFailed, nil, info, now)
	return store.Recorded
}

// finish makes o terminal, tells waiters, and cancels what it called that is
// still unfinished, since no one is left to await it. Caller holds mu.
func (s *Store) finish(o *op, st store.Status, result []byte, info *store.ErrorInfo, now time.Time) {
	wasRunning := o.rec.Status == store.StatusRunning
	lease := o.leaseID
	s.unqueue(o)
	delete(s.running, o)
	o.rec.Status = st
	o.rec.Result = result
	o.rec.Error = info
	o.rec.FinishedAt = now
	o.leaseID = 0
	if st == store.StatusCancelled && wasRunning {
		s.notify(o.rec.Worker, store.Note{Kind: store.NoteCancel, Ref: o.rec.Ref, Status: st, Error: info, LeaseID: lease})
	}
	n := finishedNote(o)
	for _, w := range o.waiters {
		s.notify(w, n)
	}
	o.waiters = nil
	for _, k := range o.kids {
		if !k.rec.Status.Finished() {
			s.finish(k, store.StatusCancelled, nil, cancelInfo("its caller "+o.rec.Ref.String()+" finished "+st.String()), now)
		}
	}
	o.kids = nil
	if o.rec.Ref.Path == store.RootPath {
		o.unit.finished = now
		s.finished = append(s.finished, finishedUnit{o.unit, now})
		if st == store.StatusFailed {
			s.dead = append(s.dead, o)
		}
	}
}

// Release implements store.Store.
func (s *Store) Release(_ context.Context, worker string, leases map[store.Ref]uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	now := s.now()
	for ref, id := range leases {
		o := s.held(ref, worker, id)
		if o == nil {
			continue
		}
		s.requeue(o, now)
		o.rec.Attempts-- // handed back unstarted in effect: not an attempt
	}
	return nil
}

func (s *Store) requeue(o *op, now time.Time) {
	delete(s.running, o)
	o.rec.Status = store.StatusPending
	o.leaseID = 0
	s.pushReady(o, now)
	s.wakeLane(o.rec.Lane)
}

// Cancel implements store.Store.
func (s *Store) Cancel(_ context.Context, unitID, path, reason string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, store.ErrClosed
	}
	u := s.units[unitID]
	if u == nil {
		return 0, fmt.Errorf("cancel %s: %w", unitID, store.ErrNotFound)
	}
	if reason == "" {
		reason = "cancelled"
	}
	now := s.now()
	info := cancelInfo(reason)
	var targets []*op
	if path == "" {
		for _, o := range u.ops {
			targets = append(targets, o)
		}
	} else {
		root := u.ops[path]
		if root == nil {
			return 0, fmt.Errorf("cancel %s/%s: %w", unitID, path, store.ErrNotFound)
		}
		prefix := path + "."
		for p, o := range u.ops {
			if p == path || strings.HasPrefix(p, prefix) {
				targets = append(targets, o)
			}
		}
	}
	n := 0
	for _, o := range targets {
		if !o.rec.Status.Finished() {
			n++ // counted first: finishing a parent finishes its children too
		}
	}
	for _, o := range targets {
		if !o.rec.Status.Finished() {
			s.finish(o, store.StatusCancelled, nil, info, now)
		}
	}
	return n, nil
}

// Fail implements store.Store.
func (s *Store) Fail(_ context.Context, ref store.Ref, leaseID uint64, info store.ErrorInfo) (store.CompleteOutcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, store.ErrClosed
	}
	o := s.held(ref, "", leaseID)
	if o == nil {
		return store.Stale, nil
	}
	holder := o.rec.Worker
	now := s.now()
	s.crumb(o, "timeout", info.Message, now)
	out := s.failAttempt(o, &info, false, now)
	s.notify(holder, store.Note{Kind: store.NoteCancel, Ref: ref, Status: store.StatusFailed, Error: &info, LeaseID: leaseID})
	return out, nil
}

// Watch implements store.Store.
func (s *Store) Watch(_ context.Context, ref store.Ref, inbox string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	o := s.lookup(ref)
	if o == nil {
		return fmt.Errorf("watch %s: %w", ref, store.ErrNotFound)
	}
	if o.rec.Status.Finished() {
		s.notify(inbox, finishedNote(o))
	} else {
		o.addWaiter(inbox)
	}
	return nil
}

func (s *Store) lookup(ref store.Ref) *op {
	if u := s.units[ref.Unit]; u != nil {
		return u.ops[ref.Path]
	}
	return nil
}

// Requeue implements store.Store.
func (s *Store) Requeue(_ context.Context, unitID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	u := s.units[unitID]
	if u == nil || u.ops[store.RootPath] == nil {
		return fmt.Errorf("requeue %s: %w", unitID, store.ErrNotFound)
	}
	root := u.ops[store.RootPath]
	if st := root.rec.Status; st != store.StatusFailed && st != store.StatusCancelled {
		return fmt.Errorf("requeue %s: %w: the run is %s, not failed or cancelled", unitID, store.ErrInvalid, st)
	}
	for p, o := range u.ops {
		if p != store.RootPath && (o.rec.Status == store.StatusFailed || o.rec.Status == store.StatusCancelled) {
			delete(u.ops, p)
		}
	}
	now := s.now()
	root.rec.Status = store.StatusPending
	root.rec.Attempts = 0
	root.rec.Error = nil
	root.rec.Result = nil
	root.rec.Worker = ""
	root.rec.StartedAt = time.Time{}
	root.rec.FinishedAt = time.Time{}
	root.lapses = 0
	u.finished = time.Time{}
	s.pushReady(root, now)
	s.wakeLane(root.rec.Lane)
	return nil
}

// NextDue implements store.DueReporter.
func (s *Store) NextDue() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due time.Time
	for l := range s.delayed {
		if s.delayed[l].Len() > 0 {
			if d := s.delayed[l].head().readyAt; due.IsZero() || d.Before(due) {
				due = d
			}
		}
	}
	return due, !due.IsZero()
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	return nil
}
