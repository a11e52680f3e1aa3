package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/blazingflow/blazing/core/store"
)

// The store's upkeep, off the hot path: taking back lapsed leases (Reclaim,
// ReclaimWorker), bounding retention (Trim) and mending inconsistencies
// (Repair). Every engine calls these on timers; each call does a bounded
// amount of work and every change is one script, so concurrent callers
// never make a move twice.

const (
	// reclaimWorkerPage is how many running entries one ReclaimWorker
	// script looks at.
	reclaimWorkerPage = 2000
	// trimMax bounds the runs one Trim script deletes.
	trimMax = 500
	// repairScan bounds the entries per queue one Repair looks at.
	repairScan = 5000
	// repairNotesScan is the SCAN count of one Repair's look for notes of
	// closed inboxes (a few ms of Redis per call; such notes also expire
	// with the inbox TTL, so a slow pass over a big keyspace is enough).
	repairNotesScan = 10_000
	// trimMemoryTarget: under memory pressure Trim deletes about this
	// fraction of the finished runs per call (at least trimMemoryMin).
	trimMemoryTarget = 0.05
	trimMemoryMin    = 100
)

// Reclaim implements store.Store. One call moves at most a thousand
// operations per lane and kind; a caller that gets a large count may call
// again at once.
func (s *Store) Reclaim(ctx context.Context, now time.Time) (store.Reclaimed, error) {
	if s.closed.Load() {
		return store.Reclaimed{}, store.ErrClosed
	}
	if s.realClock && time.Since(time.UnixMilli(s.clockChecked.Load())) > clockCheckEvery {
		s.measureClock(ctx)
	}
	args := append(s.header(now.UnixMilli(), 3), s.cfg.MaxLapses, store.WorkerLostType, reclaimMax)
	v, err := s.run(ctx, call{script: s.sc.reclaim, keys: s.k.globals, args: args})
	if err != nil {
		return store.Reclaimed{}, fmt.Errorf("redisstore: reclaim: %w", err)
	}
	r, _ := v.([]any)
	if len(r) != 2 {
		return store.Reclaimed{}, fmt.Errorf("redisstore: reclaim: unexpected reply %v", v)
	}
	n, _ := r[0].(int64)
	return store.Reclaimed{Moved: int(n), Lapsed: parseLapses(r[1])}, nil
}

// ReclaimWorker implements store.Store. It scans each lane's running
// entries a page at a time.
func (s *Store) ReclaimWorker(ctx context.Context, worker string, now time.Time) (store.Reclaimed, error) {
	var out store.Reclaimed
	if s.closed.Load() {
		return out, store.ErrClosed
	}
	if worker == "" {
		return out, fmt.Errorf("reclaim worker: %w: empty worker name", store.ErrInvalid)
	}
	for lane := range store.NumLanes {
		for offset := int64(0); offset >= 0; {
			args := append(s.header(now.UnixMilli(), 6), s.cfg.MaxLapses, store.WorkerLostType, worker,
				lane, offset, reclaimWorkerPage)
			v, err := s.run(ctx, call{script: s.sc.reclaimWorker, keys: s.k.globals, args: args})
			if err != nil {
				return out, fmt.Errorf("redisstore: reclaim leases of %q: %w", worker, err)
			}
			r, _ := v.([]any)
			if len(r) != 3 {
				return out, fmt.Errorf("redisstore: reclaim leases of %q: unexpected reply %v", worker, v)
			}
			offset, _ = r[0].(int64)
			moved, _ := r[1].(int64)
			out.Moved += int(moved)
			out.Lapsed = append(out.Lapsed, parseLapses(r[2])...)
		}
	}
	return out, nil
}

// parseLapses reads lapse()'s flat report (lib.lua).
func parseLapses(v any) []store.Lapse {
	flat, _ := v.([]any)
	out := make([]store.Lapse, 0, len(flat)/6)
	for i := 0; i+6 <= len(flat); i += 6 {
		id, _ := flat[i].(string)
		ref, ok := splitID(id)
		if !ok {
			continue
		}
		l := store.Lapse{Ref: ref}
		l.Name, _ = flat[i+1].(string)
		l.Worker, _ = flat[i+2].(string)
		n, _ := flat[i+3].(int64)
		l.Lapses = int(n)
		p, _ := flat[i+4].(int64)
		f, _ := flat[i+5].(int64)
		l.Progress, l.Failed = p == 1, f == 1
		out = append(out, l)
	}
	return out
}

// Trim implements store.Store: by count always, by memory when Redis has a
// maxmemory and uses more than TrimMemoryFraction of it.
func (s *Store) Trim(ctx context.Context, now time.Time) (store.Trimmed, error) {
	if s.closed.Load() {
		return store.Trimmed{}, store.ErrClosed
	}
	forced, err := s.memoryPressure(ctx)
	if err != nil {
		return store.Trimmed{}, err
	}
	args := append(s.header(now.UnixMilli(), 3), s.cfg.MaxRuns, forced, trimMax)
	v, err := s.run(ctx, call{script: s.sc.trim, keys: s.k.globals, args: args})
	if err != nil {
		return store.Trimmed{}, fmt.Errorf("redisstore: trim: %w", err)
	}
	n, _ := v.(int64)
	reason := "count"
	if forced > 0 {
		reason = "memory"
	}
	return store.Trimmed{Runs: int(n), Reason: reason}, nil
}

// memoryPressure returns how many finished runs Trim should delete for
// memory: 0 unless Redis has a maxmemory and uses more than
// TrimMemoryFraction of it. A server that hides INFO (ACLs) is trimmed by
// count only.
func (s *Store) memoryPressure(ctx context.Context) (int64, error) {
	info, err := s.rdb.Info(ctx, "memory").Result()
	if err != nil {
		var rerr redis.Error
		if errors.As(err, &rerr) {
			return 0, nil
		}
		return 0, fmt.Errorf("redisstore: trim: read memory: %w", err)
	}
	used, limit := infoInt(info, "used_memory"), infoInt(info, "maxmemory")
	if limit <= 0 || float64(used) <= s.cfg.TrimMemoryFraction*float64(limit) {
		return 0, nil
	}
	done, err := s.rdb.XLen(ctx, s.k.runs).Result()
	if err != nil {
		return 0, fmt.Errorf("redisstore: trim: %w", err)
	}
	return max(int64(float64(done)*trimMemoryTarget), trimMemoryMin), nil
}

// infoInt reads a "name:value" line of INFO.
func infoInt(info, name string) int64 {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// Repair implements store.Store: the checks of repair.lua, then one page of
// a SCAN for notes lists whose inbox is closed (the cursor is kept for the
// next call, so a full pass over the keyspace takes several calls). With a
// RepairGap, a call within that long of another process's does nothing.
func (s *Store) Repair(ctx context.Context, now time.Time) ([]store.Repair, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	args := append(s.header(now.UnixMilli(), 4), s.cfg.MaxLapses, store.WorkerLostType, repairScan,
		s.cfg.RepairGap.Milliseconds())
	v, err := s.run(ctx, call{script: s.sc.repair, keys: s.k.globals, args: args})
	if err != nil {
		return nil, fmt.Errorf("redisstore: repair: %w", err)
	}
	r, _ := v.([]any)
	if len(r) != 3 {
		return nil, fmt.Errorf("redisstore: repair: unexpected reply %v", v)
	}
	if ran, _ := r[2].(int64); ran == 0 {
		return nil, nil // another process checked within RepairGap
	}
	flat, _ := r[0].([]any)
	var out []store.Repair
	for i := 0; i+3 <= len(flat); i += 3 {
		kind, _ := flat[i].(string)
		id, _ := flat[i+1].(string)
		detail, _ := flat[i+2].(string)
		rep := store.Repair{Kind: kind, Detail: detail}
		if ref, ok := splitID(id); ok {
			rep.Ref = ref
		}
		out = append(out, rep)
	}
	notes, err := s.repairNotes(ctx)
	return append(out, notes...), err
}

// repairNotes deletes notes lists whose inbox is not open: no one will
// read them (notes are only ever sent to open inboxes, so only a bug or a
// hand-made key leaves one).
func (s *Store) repairNotes(ctx context.Context) ([]store.Repair, error) {
	s.mu.Lock()
	cursor := s.notesCursor
	s.mu.Unlock()
	keys, next, err := s.rdb.Scan(ctx, cursor, s.k.prefix+"nt:*", repairNotesScan).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: repair: scan notes: %w", err)
	}
	s.mu.Lock()
	s.notesCursor = next
	s.mu.Unlock()
	var out []store.Repair
	for _, key := range keys {
		inbox := strings.TrimPrefix(key, s.k.prefix+"nt:")
		// Delete only if the inbox is still closed when the script runs.
		n, err := s.rdb.Eval(ctx, dropOrphanNotes, []string{s.k.inbox(inbox), key}).Int()
		if err != nil {
			return out, fmt.Errorf("redisstore: repair: notes of %q: %w", inbox, classify(err))
		}
		if n > 0 {
			out = append(out, store.Repair{Kind: "orphan-notes",
				Detail: fmt.Sprintf("%d notes for inbox %q, which is not open: deleted", n, inbox)})
		}
	}
	return out, nil
}

// dropOrphanNotes deletes a notes list (KEYS[2]) unless its inbox (KEYS[1])
// is open; CloseInbox's empty wake-up marker does not count as a note.
// Returns how many notes it deleted.
const dropOrphanNotes = `#!lua flags=allow-oom
if redis.call("EXISTS", KEYS[1]) == 1 then return 0 end
local n = 0
for _, v in ipairs(redis.call("LRANGE", KEYS[2], 0, -1)) do
  if v ~= "" then n = n + 1 end
end
if n > 0 then redis.call("DEL", KEYS[2]) end
return n`

// NextDue implements store.DueReporter. It gives up (false) if Redis does
// not answer within a short time, as it has no context.
func (s *Store) NextDue() (time.Time, bool) {
	if s.closed.Load() {
		return time.Time{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), nextDueTimeout)
	defer cancel()
	pipe := s.rdb.Pipeline()
	var cmds [store.NumLanes]*redis.ZSliceCmd
	for l := range cmds {
		cmds[l] = pipe.ZRangeWithScores(ctx, s.k.delayed[l], 0, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return time.Time{}, false
	}
	var due time.Time
	for _, cmd := range cmds {
		if z := cmd.Val(); len(z) > 0 {
			if d := time.UnixMilli(int64(z[0].Score)); due.IsZero() || d.Before(due) {
				due = d
			}
		}
	}
	return due, !due.IsZero()
}
