package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/blazingflow/blazing/core/store"
)

// Reserve: the reserve script hands out ready work under a lease; a
// waiting Reserve blocks on the lane's signal list between scripts, with
// the wait and the script pipelined where the clocks allow, and skips the
// script when this store last found the lane empty.

// Reserve implements store.Store. With wait > 0 it runs the reserve script,
// and while that finds nothing, blocks on the lane's signal list (which
// every script that makes work ready pushes to) until the wait ends or the
// lane's next delayed retry comes due, then tries again.
func (s *Store) Reserve(ctx context.Context, lane store.Lane, worker string, max int, lease, wait time.Duration) ([]store.Delivery, error) {
	if !lane.Valid() {
		return nil, fmt.Errorf("reserve: %w: unknown lane %d", store.ErrInvalid, lane)
	}
	if max <= 0 {
		return nil, nil
	}
	var deadline time.Time
	// If this store's last reserve script left the lane's queue empty, any
	// work made ready since has pushed a signal token, so a waiting call may
	// block at once: one round trip fewer per delivery for an idle worker.
	skip, dueMs := false, int64(0)
	if wait > 0 {
		skip, dueMs = s.takeEmpty(lane)
	}
	for {
		if s.closed.Load() {
			return nil, store.ErrClosed
		}
		now := s.cfg.Now()
		var ds []store.Delivery
		var due time.Time
		if skip {
			skip = false
			if dueMs > 0 {
				due = time.UnixMilli(dueMs)
			}
		} else {
			var err error
			ds, due, err = s.reserveOnce(ctx, lane, worker, max, lease, now)
			if err != nil {
				if s.closed.Load() {
					return nil, store.ErrClosed
				}
				return nil, fmt.Errorf("redisstore: reserve %s: %w", lane, err)
			}
			if len(ds) < max {
				s.setEmpty(lane, due)
			}
			if len(ds) > 0 || wait <= 0 {
				return ds, nil
			}
		}
		// Waiting is measured on the real clock: cfg.Now may be a test clock.
		if deadline.IsZero() {
			deadline = time.Now().Add(wait)
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return nil, nil
		}
		// A delayed retry may come due before anything is submitted.
		if !due.IsZero() {
			if d := due.Sub(now); d < remaining {
				remaining = d
			}
			if remaining < time.Millisecond {
				remaining = time.Millisecond
			}
		}
		if !s.pipelineWaits.Load() {
			if _, err := s.block(ctx, s.k.signal[lane], 1, remaining); err != nil {
				return nil, err
			}
			continue
		}
		ds, due, err := s.waitReserve(ctx, lane, worker, max, lease, remaining)
		if err != nil {
			return nil, err
		}
		if len(ds) < max {
			s.setEmpty(lane, due)
		}
		if len(ds) > 0 {
			return ds, nil
		}
		skip, dueMs = true, 0 // the script has just run: wait again at once
		if !due.IsZero() {
			dueMs = due.UnixMilli()
		}
	}
}

// waitReserve waits up to d on the lane's signal list and then runs the
// reserve script, both in one pipeline: Redis runs the script the moment
// the wait ends, so a worker woken by new work gets it in the same reply,
// a round trip sooner than by asking after the wake-up. The wait (BLMPOP
// with a fractional timeout) also ends on the caller's wake list, pushed
// on cancellation and Close; the script then sees the second token and
// reserves nothing. The script runs after the wait, so it takes the time
// from Redis' clock, corrected by the offset measured at New.
func (s *Store) waitReserve(ctx context.Context, lane store.Lane, worker string, max int, lease, d time.Duration) ([]store.Delivery, time.Time, error) {
	wake, done, err := s.addWaiter()
	if err != nil {
		return nil, time.Time{}, err
	}
	defer done()
	stop := context.AfterFunc(ctx, func() { s.poke2(wake) })
	defer stop()
	if d > s.maxWait {
		d = s.maxWait // the pipeline's reply must come within the read timeout
	}
	pipe := s.rdb.Pipeline()
	pipe.Do(ctx, "BLMPOP", strconv.FormatFloat(d.Seconds(), 'f', 3, 64), 2, s.k.signal[lane], wake, "LEFT", "COUNT", 1)
	args := append(s.header(s.nowMs(), 6), int(lane), worker, max, lease.Milliseconds(), promoteMax, s.clockOffsetMs.Load())
	keys := append(append(make([]string, 0, len(s.k.globals)+1), s.k.globals...), wake)
	cmd := s.sc.reserve.EvalSha(ctx, pipe, keys, args...)
	_, _ = pipe.Exec(ctx) // errors are read per command below
	if s.closed.Load() {
		return nil, time.Time{}, store.ErrClosed
	}
	v, err := cmd.Result()
	err = classify(err)
	if isNoScript(err) {
		// Redis lost its scripts (a restart): load them; the caller's next
		// round waits again.
		_ = s.sc.reserve.Load(ctx, s.rdb).Err()
		return nil, time.Time{}, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, time.Time{}, ctx.Err()
		}
		return nil, time.Time{}, fmt.Errorf("redisstore: reserve %s: %w", lane, err)
	}
	ds, due, err := s.parseReserve(v, lane)
	if err != nil {
		return nil, due, fmt.Errorf("redisstore: reserve %s: %w", lane, err)
	}
	if ctx.Err() != nil && len(ds) > 0 {
		// Reserved just as the caller gave up: hand them back at once.
		leases := make(map[store.Ref]uint64, len(ds))
		for _, dl := range ds {
			leases[dl.Ref] = dl.LeaseID
		}
		rctx, cancel := context.WithTimeout(context.Background(), pokeTimeout)
		_ = s.Release(rctx, worker, leases)
		cancel()
		return nil, due, ctx.Err()
	}
	return ds, due, nil
}

// maxPipelinedWait bounds one pipelined wait: go-redis reads a pipeline's
// replies within the client's read timeout (3 s by default). A client with
// a shorter read timeout gets waits of half of it (pipelineWaitCap).
const maxPipelinedWait = time.Second

// pipelineWaitCap is how long one pipelined wait may block on client c: a
// reply that came after the read timeout would be thrown away with the
// reservations in it (recovered only when their leases lapse).
func pipelineWaitCap(c redis.UniversalClient) time.Duration {
	var rt time.Duration
	switch cl := c.(type) {
	case *redis.Client:
		rt = cl.Options().ReadTimeout
	case *redis.ClusterClient:
		rt = cl.Options().ReadTimeout
	default:
		return maxPipelinedWait
	}
	switch {
	case rt == 0: // go-redis' default, 3 s
		return maxPipelinedWait
	case rt < 0: // no read deadline
		return maxPipelinedWait
	case rt/2 < maxPipelinedWait:
		return max(rt/2, time.Millisecond)
	}
	return maxPipelinedWait
}

// clockCheckEvery is how often Reclaim measures the clock offset again,
// should either clock be stepped.
const clockCheckEvery = time.Minute

// measureClock sets clockOffsetMs, Redis' clock minus this process's, and
// turns pipelined waits on. Without TIME (ACLs), waits are not pipelined.
func (s *Store) measureClock(ctx context.Context) {
	before := time.Now()
	s.clockChecked.Store(before.UnixMilli())
	t, err := s.rdb.Time(ctx).Result()
	if err != nil {
		return
	}
	mid := before.Add(time.Since(before) / 2)
	s.clockOffsetMs.Store(t.Sub(mid).Milliseconds())
	s.pipelineWaits.Store(true)
}

// setEmpty records that a reserve script found the lane's queue empty (it
// returned fewer deliveries than asked; the script then dropped the lane's
// signal tokens), with the lane's next delayed retry.
func (s *Store) setEmpty(lane store.Lane, due time.Time) {
	var ms int64
	if !due.IsZero() {
		ms = due.UnixMilli()
	}
	s.skipMu.Lock()
	s.emptyLane[lane], s.emptyDue[lane] = true, ms
	s.skipMu.Unlock()
}

// forgetEmpty makes every lane's next waiting Reserve run its script first.
func (s *Store) forgetEmpty() {
	s.skipMu.Lock()
	s.emptyLane = [store.NumLanes]bool{}
	s.skipMu.Unlock()
}

// takeEmpty reports (and forgets) whether the lane was last found empty.
func (s *Store) takeEmpty(lane store.Lane) (bool, int64) {
	s.skipMu.Lock()
	defer s.skipMu.Unlock()
	ok, due := s.emptyLane[lane], s.emptyDue[lane]
	s.emptyLane[lane] = false
	return ok, due
}

func (s *Store) reserveOnce(ctx context.Context, lane store.Lane, worker string, max int, lease time.Duration, now time.Time) ([]store.Delivery, time.Time, error) {
	args := append(s.header(now.UnixMilli(), 5), int(lane), worker, max, lease.Milliseconds(), promoteMax)
	v, err := s.run(ctx, call{script: s.sc.reserve, keys: s.k.globals, args: args})
	if err != nil {
		return nil, time.Time{}, err
	}
	return s.parseReserve(v, lane)
}

// parseReserve reads the reserve script's reply.
func (s *Store) parseReserve(v any, lane store.Lane) ([]store.Delivery, time.Time, error) {
	res, _ := v.([]any)
	if len(res) == 0 || (len(res)-1)%deliveryLen != 0 {
		return nil, time.Time{}, fmt.Errorf("unexpected reply of %d values", len(res))
	}
	var due time.Time
	if d, ok := res[0].(string); ok {
		if ms, err := strconv.ParseFloat(d, 64); err == nil {
			due = time.UnixMilli(int64(ms))
		}
	}
	ds := make([]store.Delivery, 0, (len(res)-1)/deliveryLen)
	for i := 1; i < len(res); i += deliveryLen {
		d, err := parseDelivery(res[i:i+deliveryLen], lane)
		if err != nil {
			return nil, due, err
		}
		ds = append(ds, d)
	}
	return ds, due, nil
}

// deliveryLen is how many values the reserve script returns per delivery.
const deliveryLen = 8

func parseDelivery(f []any, lane store.Lane) (store.Delivery, error) {
	id, _ := f[0].(string)
	ref, ok := splitID(id)
	if !ok {
		return store.Delivery{}, fmt.Errorf("%w: queue member %q", ErrMalformed, id)
	}
	d := store.Delivery{Ref: ref, Lane: lane, Parent: parentOf(ref.Path), Depth: depthOf(ref.Path)}
	d.Name, _ = f[1].(string)
	if a, _ := f[2].(string); a != "" {
		d.Args = []byte(a)
	}
	if p, ok := f[3].(string); ok {
		d.Parent = p
	}
	if h, ok := f[4].(string); ok {
		n, err := strconv.Atoi(h)
		if err != nil {
			return d, fmt.Errorf("%w: %s: depth %q", ErrMalformed, ref, h)
		}
		d.Depth = n
	}
	att, _ := f[5].(int64)
	d.Attempt = int(att)
	d.TimeoutMs, _ = f[6].(int64)
	lease, _ := f[7].(int64)
	d.LeaseID = uint64(lease)
	return d, nil
}
