package memstore

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// What the store keeps for history and inspection: breadcrumbs per run, the
// index of runs by creation time, and per-minute counts by step name and
// lane.

// engineCrumbsMax bounds the breadcrumbs the store itself adds to a run
// (retries, lapses, timeouts, replays), whatever MaxBreadcrumbs says.
const engineCrumbsMax = 10_000

// statsKeep is how long per-minute counts are kept.
const statsKeep = 25 * time.Hour

// crumb adds one of the store's own breadcrumbs to o's run. Caller holds mu.
func (s *Store) crumb(o *op, kind, msg string, now time.Time) {
	s.addCrumb(o.unit, store.Breadcrumb{Ref: o.rec.Ref, At: now, Kind: kind, Message: msg}, engineCrumbsMax)
}

// addCrumb appends to a run's breadcrumbs, dropping the oldest past max.
// Caller holds mu.
func (s *Store) addCrumb(u *unit, b store.Breadcrumb, max int) {
	u.crumbs = append(u.crumbs, b)
	if over := len(u.crumbs) - max; over > 0 {
		u.crumbs = append(u.crumbs[:0:0], u.crumbs[over:]...)
		u.dropped += over
	}
}

// AddBreadcrumbs implements store.Store.
func (s *Store) AddBreadcrumbs(_ context.Context, crumbs []store.Breadcrumb) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	for _, b := range crumbs {
		if u := s.units[b.Ref.Unit]; u != nil {
			s.addCrumb(u, b, s.cfg.MaxBreadcrumbs)
		}
	}
	return nil
}

// Breadcrumbs implements store.Store.
func (s *Store) Breadcrumbs(_ context.Context, unit string) ([]store.Breadcrumb, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.units[unit]
	if u == nil {
		return nil, 0, fmt.Errorf("breadcrumbs of %s: %w", unit, store.ErrNotFound)
	}
	return append([]store.Breadcrumb(nil), u.crumbs...), u.dropped, nil
}

// Runs implements store.Store.
func (s *Store) Runs(_ context.Context, q store.RunQuery) ([]store.Operation, error) {
	if s.cfg.NoHistory {
		return nil, nil // runs are left out of the index, as on Redis
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if q.Limit <= 0 {
		q.Limit = 100
	}
	var out []store.Operation
	live := s.runs[:0]
	for _, u := range s.runs {
		if s.units[u.id] == u {
			live = append(live, u) // forget units dropped meanwhile
		}
	}
	s.runs = live
	for i := len(s.runs) - 1; i >= 0 && len(out) < q.Limit; i-- {
		u := s.runs[i]
		root := u.ops[store.RootPath]
		switch {
		case root == nil:
		case !q.Since.IsZero() && u.created.Before(q.Since), !q.Until.IsZero() && u.created.After(q.Until):
		case q.Status != 0 && root.rec.Status != q.Status:
		case q.Name != "" && root.rec.Name != q.Name:
		default:
			out = append(out, root.rec)
		}
	}
	return out, nil
}

// Unit implements store.Store.
func (s *Store) Unit(_ context.Context, unit string) ([]store.Operation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.units[unit]
	if u == nil {
		return nil, fmt.Errorf("unit %s: %w", unit, store.ErrNotFound)
	}
	out := make([]store.Operation, 0, len(u.ops))
	for _, o := range u.ops {
		out = append(out, o.rec)
	}
	sortByPath(out)
	return out, nil
}

// sortByPath orders operations as they were called: "0", "0.1", "0.1.1",
// "0.2", "0.10" (each step of a path compared as a number).
func sortByPath(ops []store.Operation) {
	sort.Slice(ops, func(i, j int) bool { return store.PathLess(ops[i].Ref.Path, ops[j].Ref.Path) })
}

// AddStats implements store.Store.
func (s *Store) AddStats(_ context.Context, d store.StatsDelta) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	m := d.Minute.Truncate(time.Minute).UnixMilli()
	minute := s.stats[m]
	if minute == nil {
		minute = make(map[string]*store.Counts)
		s.stats[m] = minute
	}
	for key, c := range d.Counts {
		if minute[key] == nil {
			minute[key] = &store.Counts{}
		}
		minute[key].Add(c)
	}
	return nil
}

// ReadStats implements store.Store.
func (s *Store) ReadStats(_ context.Context, since, now time.Time) (map[string]store.Counts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	from := since.Truncate(time.Minute).UnixMilli()
	to := now.UnixMilli()
	out := make(map[string]store.Counts)
	for m, minute := range s.stats {
		if m < from || m > to {
			continue
		}
		for key, c := range minute {
			sum := out[key]
			sum.Add(*c)
			out[key] = sum
		}
	}
	return out, nil
}

// expireStats forgets minutes older than statsKeep. Caller holds mu.
func (s *Store) expireStats(now time.Time) {
	cut := now.Add(-statsKeep).UnixMilli()
	for m := range s.stats {
		if m < cut {
			delete(s.stats, m)
		}
	}
}
