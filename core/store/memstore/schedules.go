package memstore

import (
	"context"
	"fmt"
	"sort"

	"github.com/blazingflow/blazing/core/store"
)

var _ store.Scheduler = (*Store)(nil)

// Schedules live under the store's one lock, so a tick's claim and its run's
// submission are one step here as they are one script on Redis. They last as
// long as the store (the process): ScheduleKeep does not apply.

// register writes info into the schedule's record, creating it; s.mu is held.
func (s *Store) register(info store.ScheduleInfo) *store.ScheduleState {
	if s.schedules == nil {
		s.schedules = make(map[string]*store.ScheduleState)
	}
	now := s.now()
	sc := s.schedules[info.Name]
	if sc == nil {
		sc = &store.ScheduleState{Created: now}
		s.schedules[info.Name] = sc
	}
	sc.ScheduleInfo = info
	sc.Seen = now
	return sc
}

// stateOf is a copy of sc with its last run's status; s.mu is held.
func (s *Store) stateOf(sc *store.ScheduleState) store.ScheduleState {
	out := *sc
	out.LastStatus = 0
	if u := s.units[sc.LastUnit]; u != nil {
		if root := u.ops[store.RootPath]; root != nil {
			out.LastStatus = root.rec.Status
		}
	}
	return out
}

// RegisterSchedule implements store.Scheduler.
func (s *Store) RegisterSchedule(_ context.Context, info store.ScheduleInfo) (store.ScheduleState, error) {
	if err := info.Validate(); err != nil {
		return store.ScheduleState{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ScheduleState{}, store.ErrClosed
	}
	return s.stateOf(s.register(info)), nil
}

// FireTick implements store.Scheduler.
func (s *Store) FireTick(_ context.Context, t store.Tick) (store.TickResult, error) {
	if err := t.Prepare(); err != nil {
		return store.TickResult{}, err
	}
	if err := t.Info.Validate(); err != nil {
		return store.TickResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.TickResult{}, store.ErrClosed
	}
	sc := s.register(t.Info)
	res := store.TickResult{Prev: sc.LastTick}
	if !t.At.After(sc.LastTick) || !t.At.After(sc.Created) {
		res.Outcome = store.TickTaken
		return res, nil
	}
	sc.LastTick = t.At
	switch {
	case sc.Paused:
		res.Outcome = store.TickPaused
		return res, nil
	case !t.Overlap && s.unfinished(sc.LastUnit):
		sc.Skipped++
		res.Outcome, res.Unit = store.TickOverlap, sc.LastUnit
		return res, nil
	}
	now := s.now()
	_, errs := s.submitLocked([]store.Submission{t.Run}, now)
	if errs[0] != nil {
		return res, fmt.Errorf("memstore: schedule %s: tick %s: %w", t.Info.Name, t.Run.Ref.Unit, errs[0])
	}
	sc.LastUnit, sc.LastFired = t.Run.Ref.Unit, now
	sc.Fired++
	res.Outcome, res.Unit = store.TickFired, t.Run.Ref.Unit
	return res, nil
}

// unfinished reports whether unit's root exists and has not finished.
func (s *Store) unfinished(unit string) bool {
	if u := s.units[unit]; u != nil {
		if root := u.ops[store.RootPath]; root != nil {
			return !root.rec.Status.Finished()
		}
	}
	return false
}

// PauseSchedule implements store.Scheduler.
func (s *Store) PauseSchedule(_ context.Context, name string, paused bool) (store.ScheduleState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ScheduleState{}, store.ErrClosed
	}
	sc := s.schedules[name]
	if sc == nil {
		return store.ScheduleState{}, fmt.Errorf("%w: no schedule %q", store.ErrNotFound, name)
	}
	sc.Paused = paused
	return s.stateOf(sc), nil
}

// Schedules implements store.Scheduler.
func (s *Store) Schedules(_ context.Context) ([]store.ScheduleState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	out := make([]store.ScheduleState, 0, len(s.schedules))
	for _, sc := range s.schedules {
		out = append(out, s.stateOf(sc))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
