package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/blazingflow/blazing/core/store"
)

// The operator's reads, off the hot path: one operation (Get), the lanes
// (Stats) and the dead letters (Failed). They change nothing.

// statsBands bounds the priority bands Stats scans for the oldest age.
const statsBands = 64

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, ref store.Ref) (store.Operation, error) {
	if s.closed.Load() {
		return store.Operation{}, store.ErrClosed
	}
	m, err := s.rdb.HGetAll(ctx, s.k.op(ref)).Result()
	if err != nil {
		return store.Operation{}, fmt.Errorf("redisstore: get %s: %w", ref, err)
	}
	if len(m) == 0 {
		return store.Operation{}, fmt.Errorf("get %s: %w", ref, store.ErrNotFound)
	}
	op, err := parseOp(ref, m)
	if err != nil {
		return store.Operation{}, fmt.Errorf("redisstore: get %s: %w", ref, err)
	}
	return op, nil
}

// parseOp reads an operation hash (see keys.go for the fields).
func parseOp(ref store.Ref, m map[string]string) (store.Operation, error) {
	op := store.Operation{Ref: ref, Parent: parentOf(ref.Path), Depth: depthOf(ref.Path)}
	num := func(field string) (int64, error) {
		v, ok := m[field]
		if !ok {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: field %q is %q", ErrMalformed, field, v)
		}
		return n, nil
	}
	ms := func(field string) (time.Time, error) {
		n, err := num(field)
		if err != nil || n == 0 {
			return time.Time{}, err
		}
		return time.UnixMilli(n).UTC(), nil
	}
	st, err := num("s")
	if err != nil {
		return op, err
	}
	if op.Status = store.Status(st); st < int64(store.StatusPending) || st > int64(store.StatusCancelled) {
		return op, fmt.Errorf("%w: status %q", ErrMalformed, m["s"])
	}
	lane, err := num("l")
	if err != nil {
		return op, err
	}
	if op.Lane = store.Lane(lane); lane < 0 || !op.Lane.Valid() {
		return op, fmt.Errorf("%w: lane %q", ErrMalformed, m["l"])
	}
	if op.Name = m["n"]; op.Name == "" {
		return op, fmt.Errorf("%w: no name", ErrMalformed)
	}
	if a, ok := m["a"]; ok {
		op.Args = []byte(a)
	}
	if r, ok := m["r"]; ok {
		op.Result = []byte(r)
	}
	if e, ok := m["e"]; ok {
		if op.Error, err = decodeErrorField(e); err != nil {
			return op, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
	}
	if p, ok := m["p"]; ok {
		op.Parent = p
	}
	if _, ok := m["h"]; ok {
		d, err := num("h")
		if err != nil {
			return op, err
		}
		op.Depth = int(d)
	}
	att, err := num("t")
	if err != nil {
		return op, err
	}
	op.Attempts = int(att)
	op.Worker = m["k"]
	if op.CreatedAt, err = ms("c"); err != nil {
		return op, err
	}
	if op.StartedAt, err = ms("b"); err != nil {
		return op, err
	}
	if op.FinishedAt, err = ms("f"); err != nil {
		return op, err
	}
	return op, nil
}

// Stats implements store.Store.
func (s *Store) Stats(ctx context.Context) ([store.NumLanes]store.LaneStats, error) {
	var out [store.NumLanes]store.LaneStats
	if s.closed.Load() {
		return out, store.ErrClosed
	}
	now := s.cfg.Now()
	v, err := s.run(ctx, call{script: s.sc.stats, keys: s.k.globals, args: []any{s.k.prefix, statsBands}})
	if err != nil {
		return out, fmt.Errorf("redisstore: stats: %w", err)
	}
	lanes, _ := v.([]any)
	if len(lanes) != store.NumLanes {
		return out, fmt.Errorf("redisstore: stats: unexpected reply %v", v)
	}
	for l := range out {
		f, _ := lanes[l].([]any)
		if len(f) != 4 {
			return out, fmt.Errorf("redisstore: stats: unexpected reply %v", v)
		}
		ready, _ := f[0].(int64)
		delayed, _ := f[1].(int64)
		running, _ := f[2].(int64)
		oldest, _ := f[3].(int64)
		out[l].Depth = int(ready + delayed)
		out[l].Running = int(running)
		if oldest >= 0 && ready > 0 {
			out[l].OldestAge = max(now.Sub(time.UnixMilli(oldest)), 0)
		}
	}
	return out, nil
}

// Failed implements store.Store. limit <= 0 lists them all.
func (s *Store) Failed(ctx context.Context, offset, limit int) ([]store.Operation, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	offset = max(offset, 0)
	// Entries whose records are gone (expired before Reclaim trimmed them)
	// are skipped, so the list is read in pages until enough are found.
	page := 100
	if limit > 0 {
		page = min(max(offset+limit, 16), 1000)
	}
	var out []store.Operation
	skip := offset
	for start := int64(0); ; start += int64(page) {
		units, err := s.rdb.ZRevRange(ctx, s.k.dead, start, start+int64(page)-1).Result()
		if err != nil {
			return nil, fmt.Errorf("redisstore: failed: %w", err)
		}
		if len(units) == 0 {
			return out, nil
		}
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.MapStringStringCmd, len(units))
		for i, u := range units {
			cmds[i] = pipe.HGetAll(ctx, s.k.op(store.Ref{Unit: u, Path: store.RootPath}))
		}
		_, _ = pipe.Exec(ctx) // read per command
		for i, cmd := range cmds {
			m, err := cmd.Result()
			if err != nil || len(m) == 0 {
				continue
			}
			op, err := parseOp(store.Ref{Unit: units[i], Path: store.RootPath}, m)
			if err != nil || op.Status != store.StatusFailed {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			out = append(out, op)
			if limit > 0 && len(out) >= limit {
				return out, nil
			}
		}
		if len(units) < page {
			return out, nil
		}
	}
}
