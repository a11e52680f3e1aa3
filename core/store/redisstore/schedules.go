package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/blazingflow/blazing/core/store"
)

var _ store.Scheduler = (*Store)(nil)

// Schedules: one hash per schedule and a set of their names. Firing a tick
// is one script (lua/fire.lua, with submit.lua inside), so the claim and the
// run's submission are one step. A schedule's hash fields:
//
//	w workflow       s spec            z time zone        n next tick ms
//	p paused "1"     c created ms      t last tick ms     u last run (unit)
//	f last fired ms  F fired count     S skipped count    e seen ms
//
// The hash expires store.ScheduleKeep after the last registration or tick;
// Schedules drops the names whose hash is gone.

func (k *keys) sched(name string) string { return k.prefix + "sched:" + name }
func (k *keys) scheds() string           { return k.prefix + "scheds" }

// RegisterSchedule implements store.Scheduler: one MULTI of plain commands.
func (s *Store) RegisterSchedule(ctx context.Context, info store.ScheduleInfo) (store.ScheduleState, error) {
	if err := info.Validate(); err != nil {
		return store.ScheduleState{}, err
	}
	if s.closed.Load() {
		return store.ScheduleState{}, store.ErrClosed
	}
	key, now := s.k.sched(info.Name), s.nowMs()
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSetNX(ctx, key, "c", now)
		p.HSet(ctx, key, "w", info.Workflow, "s", info.Spec, "z", info.TZ, "n", info.Next.UnixMilli(), "e", now)
		p.PExpire(ctx, key, store.ScheduleKeep)
		p.SAdd(ctx, s.k.scheds(), info.Name)
		return nil
	})
	if err != nil {
		return store.ScheduleState{}, fmt.Errorf("redisstore: register schedule %s: %w", info.Name, classify(err))
	}
	st, err := s.readSchedules(ctx, []string{info.Name})
	if err != nil {
		return store.ScheduleState{}, err
	}
	if len(st) == 0 {
		return store.ScheduleState{}, fmt.Errorf("redisstore: register schedule %s: its record is gone: %w", info.Name, store.ErrNotFound)
	}
	return st[0], nil
}

// FireTick implements store.Scheduler (lua/fire.lua).
func (s *Store) FireTick(ctx context.Context, t store.Tick) (store.TickResult, error) {
	if err := t.Prepare(); err != nil {
		return store.TickResult{}, err
	}
	if err := t.Info.Validate(); err != nil {
		return store.TickResult{}, err
	}
	if err := validate(&t.Run); err != nil {
		return store.TickResult{}, err
	}
	if s.closed.Load() {
		return store.TickResult{}, store.ErrClosed
	}
	run := &t.Run
	op := s.k.op(run.Ref)
	keys := append(s.k.withGlobals(5), op, s.k.unit(run.Ref.Unit), op, s.k.sched(t.Info.Name), s.k.scheds())
	fields := newOpFields(run)
	args := append(s.header(s.nowMs(), 18+len(fields)), 1, s.history,
		run.Ref.Unit, run.Ref.Path, "", run.Name, int(run.Lane), run.Opts.Priority, "", len(fields))
	args = append(args, fields...)
	args = append(args, t.Info.Name, t.Info.Workflow, t.Info.Spec, t.Info.TZ, t.At.UnixMilli(),
		t.Info.Next.UnixMilli(), flag(t.Overlap), store.ScheduleKeep.Milliseconds())
	v, err := s.run(ctx, call{script: s.sc.fire, keys: keys, args: args})
	if err != nil {
		return store.TickResult{}, fmt.Errorf("redisstore: schedule %s: fire tick %s: %w", t.Info.Name, run.Ref.Unit, err)
	}
	r, _ := v.([]any)
	if len(r) != 5 {
		return store.TickResult{}, fmt.Errorf("redisstore: schedule %s: fire tick %s: unexpected reply %v", t.Info.Name, run.Ref.Unit, v)
	}
	outcome, _ := r[0].(string)
	prev, _ := r[1].(int64)
	unit, _ := r[2].(string)
	res := store.TickResult{Prev: msToTime(prev), Unit: unit}
	switch outcome {
	case "taken":
		res.Outcome = store.TickTaken
	case "paused":
		res.Outcome = store.TickPaused
	case "overlap":
		res.Outcome = store.TickOverlap
	case "fired":
		res.Outcome = store.TickFired
	default:
		code, _ := r[3].(int64)
		detail, _ := r[4].(string)
		_, err := submitOutcome(run, []any{[]any{code, detail}}, 0)
		return res, fmt.Errorf("redisstore: schedule %s: tick claimed but its run refused: %w", t.Info.Name, err)
	}
	return res, nil
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func msToTime(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// PauseSchedule implements store.Scheduler (lua/schedpause.lua).
func (s *Store) PauseSchedule(ctx context.Context, name string, paused bool) (store.ScheduleState, error) {
	if err := store.ValidScheduleName(name); err != nil {
		return store.ScheduleState{}, err
	}
	if s.closed.Load() {
		return store.ScheduleState{}, store.ErrClosed
	}
	v, err := s.run(ctx, call{script: s.sc.schedPause, keys: []string{s.k.sched(name)}, args: []any{flag(paused)}})
	if err != nil {
		return store.ScheduleState{}, fmt.Errorf("redisstore: pause schedule %s: %w", name, err)
	}
	if n, _ := v.(int64); n == 0 {
		return store.ScheduleState{}, fmt.Errorf("%w: no schedule %q", store.ErrNotFound, name)
	}
	st, err := s.readSchedules(ctx, []string{name})
	if err != nil {
		return store.ScheduleState{}, err
	}
	if len(st) == 0 {
		return store.ScheduleState{}, fmt.Errorf("%w: no schedule %q", store.ErrNotFound, name)
	}
	return st[0], nil
}

// Schedules implements store.Scheduler.
func (s *Store) Schedules(ctx context.Context) ([]store.ScheduleState, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	names, err := s.rdb.SMembers(ctx, s.k.scheds()).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: list schedules: %w", err)
	}
	sort.Strings(names)
	return s.readSchedules(ctx, names)
}

// readSchedules reads the named schedules (two pipelined round trips: their
// hashes, then their last runs' status), leaving out those whose hash has
// expired and dropping their names from the set.
func (s *Store) readSchedules(ctx context.Context, names []string) ([]store.ScheduleState, error) {
	if len(names) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	hashes := make([]*redis.MapStringStringCmd, len(names))
	for i, n := range names {
		hashes[i] = pipe.HGetAll(ctx, s.k.sched(n))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: read schedules: %w", err)
	}
	var out []store.ScheduleState
	var gone []any
	pipe = s.rdb.Pipeline()
	var status []*redis.StringCmd
	for i, n := range names {
		h := hashes[i].Val()
		if len(h) == 0 {
			gone = append(gone, n)
			continue
		}
		st := scheduleState(n, h)
		out = append(out, st)
		if st.LastUnit != "" {
			status = append(status, pipe.HGet(ctx, s.k.op(store.Ref{Unit: st.LastUnit, Path: store.RootPath}), "s"))
		} else {
			status = append(status, nil)
		}
	}
	if len(gone) > 0 {
		pipe.SRem(ctx, s.k.scheds(), gone...)
	}
	if pipe.Len() > 0 {
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("redisstore: read schedules: %w", err)
		}
	}
	for i, cmd := range status {
		if cmd != nil {
			if v, err := strconv.Atoi(cmd.Val()); err == nil {
				out[i].LastStatus = store.Status(v)
			}
		}
	}
	return out, nil
}

// scheduleState decodes a schedule's hash (fields above).
func scheduleState(name string, h map[string]string) store.ScheduleState {
	ms := func(f string) time.Time {
		v, _ := strconv.ParseInt(h[f], 10, 64)
		return msToTime(v)
	}
	n := func(f string) int64 {
		v, _ := strconv.ParseInt(h[f], 10, 64)
		return v
	}
	return store.ScheduleState{
		ScheduleInfo: store.ScheduleInfo{Name: name, Workflow: h["w"], Spec: h["s"], TZ: h["z"], Next: ms("n")},
		Paused:       h["p"] == "1",
		Created:      ms("c"),
		LastTick:     ms("t"),
		LastUnit:     h["u"],
		LastFired:    ms("f"),
		Fired:        n("F"),
		Skipped:      n("S"),
		Seen:         ms("e"),
	}
}
