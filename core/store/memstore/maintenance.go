package memstore

import (
	"context"
	"fmt"
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// The store's upkeep: taking back lapsed leases (Reclaim, ReclaimWorker),
// bounding retention (Trim) and mending inconsistencies (Repair).

// lapseReportMax bounds the lapses one call reports (it moves them all).
const lapseReportMax = 100

// promise records the latest lease end promised to worker. Caller holds mu.
func (s *Store) promise(worker string, end time.Time) {
	if end.After(s.alive[worker]) {
		s.alive[worker] = end
	}
}

// progressed reports whether o's attempt made progress: its lease was
// renewed, a call it made was created or finished during the attempt, or it
// was waiting on a call it made (parked, not running code). Caller holds mu.
func progressed(o *op) bool {
	start := o.rec.StartedAt
	if !o.renewed.IsZero() && !o.renewed.Before(start) {
		return true
	}
	for _, k := range o.kids {
		if !k.rec.Status.Finished() || !k.rec.CreatedAt.Before(start) || !k.rec.FinishedAt.Before(start) {
			return true
		}
	}
	return false
}

// lapse takes back o's lease: o is queued again, or failed once it has
// lapsed more than MaxLapses times in a row without progress. Caller holds
// mu.
func (s *Store) lapse(o *op, now time.Time, out *store.Reclaimed) {
	l := store.Lapse{Ref: o.rec.Ref, Name: o.rec.Name, Worker: o.rec.Worker, Progress: progressed(o)}
	if l.Progress {
		o.lapses = 0
	} else {
		o.lapses++
	}
	l.Lapses = o.lapses
	s.crumb(o, "lapse", fmt.Sprintf("lease taken back from %s (gone or cut off); lapse %d in a row without progress",
		o.rec.Worker, o.lapses), now)
	if o.lapses > s.cfg.MaxLapses {
		l.Failed = true
		s.finish(o, store.StatusFailed, nil, &store.ErrorInfo{
			Type: store.WorkerLostType,
			Message: fmt.Sprintf("%s (%s): its worker stopped renewing the lease %d times in a row without progress; not handing it out again",
				o.rec.Name, o.rec.Ref, o.lapses),
		}, now)
	} else {
		// The holder died or lost its network: the work runs again.
		s.requeue(o, now)
	}
	out.Moved++
	if len(out.Lapsed) < lapseReportMax {
		out.Lapsed = append(out.Lapsed, l)
	}
}

// Reclaim implements store.Store.
func (s *Store) Reclaim(_ context.Context, now time.Time) (store.Reclaimed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out store.Reclaimed
	if s.closed {
		return out, store.ErrClosed
	}
	out.Moved = s.promote(now)
	for o := range s.running {
		if o.leaseEnd.Before(now) {
			s.lapse(o, now, &out)
		}
	}
	s.expire(now)
	return out, nil
}

// ReclaimWorker implements store.Store.
func (s *Store) ReclaimWorker(_ context.Context, worker string, now time.Time) (store.Reclaimed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out store.Reclaimed
	if s.closed {
		return out, store.ErrClosed
	}
	if worker == "" {
		return out, fmt.Errorf("reclaim worker: %w: empty worker name", store.ErrInvalid)
	}
	for o := range s.running {
		if o.rec.Worker == worker {
			s.lapse(o, now, &out)
		}
	}
	return out, nil
}

// expire drops units finished longer than Retention ago. Caller holds mu.
func (s *Store) expire(now time.Time) {
	cut := now.Add(-s.cfg.Retention)
	i := 0
	for ; i < len(s.finished) && s.finished[i].at.Before(cut); i++ {
		s.drop(s.finished[i])
	}
	s.forget(i)
	s.expireStats(now)
}

// drop deletes a finished unit unless it was requeued since (it finishes
// again later, or not yet) or is gone already. Caller holds mu.
func (s *Store) drop(f finishedUnit) bool {
	if s.units[f.u.id] == f.u && f.u.finished.Equal(f.at) {
		delete(s.units, f.u.id)
		return true
	}
	return false
}

// forget removes the first n entries of the finished list, and dead letters
// of units no longer kept. Caller holds mu.
func (s *Store) forget(n int) {
	if n == 0 {
		return
	}
	s.finished = append([]finishedUnit(nil), s.finished[n:]...)
	s.pruneDead()
}

// pruneDead drops dead letters of units no longer kept. Caller holds mu.
func (s *Store) pruneDead() {
	live := s.dead[:0]
	for _, o := range s.dead {
		if s.units[o.unit.id] == o.unit && o.rec.Status == store.StatusFailed {
			live = append(live, o)
		}
	}
	s.dead = live
}

// Trim implements store.Store: while more runs are kept than MaxRuns, the
// oldest finished ones go (in creation order, as on Redis); unfinished ones
// stay. (The process's memory is the embedded store's limit; it is bounded
// by count and time only.)
func (s *Store) Trim(_ context.Context, _ time.Time) (store.Trimmed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.Trimmed{}, store.ErrClosed
	}
	live := s.runs[:0]
	for _, u := range s.runs {
		if s.units[u.id] == u {
			live = append(live, u)
		}
	}
	s.runs = live
	over, n := len(s.runs)-s.cfg.MaxRuns, 0
	kept := s.runs[:0]
	for _, u := range s.runs {
		if n < over && !u.finished.IsZero() {
			delete(s.units, u.id)
			n++
			continue
		}
		kept = append(kept, u)
	}
	s.runs = kept
	if n > 0 {
		s.pruneDead()
	}
	return store.Trimmed{Runs: n, Reason: "count"}, nil
}

// Repair implements store.Store. Everything here sits behind one mutex, so
// the only inconsistency left to look for is a lease whose holder was never
// promised it (which the driver itself never makes).
func (s *Store) Repair(_ context.Context, now time.Time) ([]store.Repair, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	var out []store.Repair
	var took store.Reclaimed
	for o := range s.running {
		if promised := s.alive[o.rec.Worker]; !o.leaseEnd.Before(now) && o.leaseEnd.After(promised) {
			s.lapse(o, now, &took)
			out = append(out, store.Repair{Kind: "orphan-lease", Ref: o.rec.Ref,
				Detail: fmt.Sprintf("%s held by %q until %s, past any lease promised to it: taken back",
					o.rec.Name, o.rec.Worker, o.leaseEnd.Format(time.RFC3339Nano))})
		}
	}
	for w, end := range s.alive {
		if end.Before(now.Add(-24 * time.Hour)) {
			delete(s.alive, w)
		}
	}
	return out, nil
}
