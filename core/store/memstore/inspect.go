package memstore

import (
	"context"
	"fmt"
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// The operator's reads, off the hot path: one operation (Get), the lanes
// (Stats) and the dead letters (Failed). They change nothing.

// Get implements store.Store.
func (s *Store) Get(_ context.Context, ref store.Ref) (store.Operation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.lookup(ref)
	if o == nil {
		return store.Operation{}, fmt.Errorf("get %s: %w", ref, store.ErrNotFound)
	}
	return o.rec, nil
}

// Stats implements store.Store.
func (s *Store) Stats(_ context.Context) ([store.NumLanes]store.LaneStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [store.NumLanes]store.LaneStats
	now := s.now()
	for l := range out {
		out[l].Depth = s.ready[l].Len() + s.nDelayed[l]
		var oldest time.Time
		for _, o := range s.ready[l].ops {
			if oldest.IsZero() || o.readyAt.Before(oldest) {
				oldest = o.readyAt
			}
		}
		if !oldest.IsZero() {
			out[l].OldestAge = now.Sub(oldest)
		}
	}
	for o := range s.running {
		out[o.rec.Lane].Running++
	}
	return out, nil
}

// Failed implements store.Store.
func (s *Store) Failed(_ context.Context, offset, limit int) ([]store.Operation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	var out []store.Operation
	seen := 0
	for i := len(s.dead) - 1; i >= 0 && (limit <= 0 || len(out) < limit); i-- {
		o := s.dead[i]
		if s.units[o.unit.id] != o.unit || o.rec.Status != store.StatusFailed || o.rec.FinishedAt.IsZero() {
			continue // purged or requeued
		}
		if dup := s.deadIndex(o); dup != i {
			continue // requeued and failed again: listed at its latest place
		}
		if seen++; seen > offset {
			out = append(out, o.rec)
		}
	}
	return out, nil
}

// deadIndex is the last index of o in the dead list. Caller holds mu.
func (s *Store) deadIndex(o *op) int {
	for i := len(s.dead) - 1; i >= 0; i-- {
		if s.dead[i] == o {
			return i
		}
	}
	return -1
}
