package frames

import (
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// Schedule queries (see store.Scheduler). Times cross as Unix ms, 0 for
// none. A schedule's state is
//
//	[name, workflow, spec, tz, next_ms, paused, created_ms, last_tick_ms,
//	 last_unit, last_fired_ms, last_status, fired, skipped, seen_ms]
const (
	// QueryScheduleRegister: [11, name, workflow, spec, tz, next_ms] -> state.
	QueryScheduleRegister = 11
	// QueryScheduleFire: [12, name, workflow, spec, tz, next_ms, tick_ms,
	// overlap, lane, args, retries, backoff_ms, backoff_max_ms,
	// timeout_ms, priority] -> [outcome, prev_tick_ms, unit] (outcome: a
	// store.TickOutcome).
	QueryScheduleFire = 12
	// QuerySchedules: [13] -> [state, ...] by name.
	QuerySchedules = 13
	// QuerySchedulePause: [14, name, paused] -> state.
	QuerySchedulePause = 14
)

// ScheduleQuery is the part of a Query that the schedule kinds carry.
type ScheduleQuery struct {
	Info store.ScheduleInfo
	// Tick: for QueryScheduleFire (its Info is Info).
	Tick store.Tick
	// Paused: for QuerySchedulePause (the name is Info.Name).
	Paused bool
}

func isScheduleQuery(kind int64) bool {
	return kind >= QueryScheduleRegister && kind <= QuerySchedulePause
}

// decodeScheduleQuery reads the fields of a schedule query of n items (the
// kind read already).
func decodeScheduleQuery(r reader, kind int64, n int) (ScheduleQuery, error) {
	var q ScheduleQuery
	want := map[int64]int{QueryScheduleRegister: 6, QueryScheduleFire: 15, QuerySchedules: 1, QuerySchedulePause: 3}[kind]
	if n != want {
		return q, malformed("schedule query kind %d needs %d fields, got %d", kind, want, n)
	}
	var err error
	switch kind {
	case QuerySchedules:
		return q, nil
	case QuerySchedulePause:
		if q.Info.Name, err = r.str("name"); err != nil {
			return q, err
		}
		q.Paused, err = r.bool("paused")
		return q, err
	}
	strs := []*string{&q.Info.Name, &q.Info.Workflow, &q.Info.Spec, &q.Info.TZ}
	for i, what := range []string{"name", "workflow", "spec", "tz"} {
		if *strs[i], err = r.str(what); err != nil {
			return q, err
		}
	}
	next, err := r.int("next_ms")
	if err != nil {
		return q, err
	}
	q.Info.Next = msTime(next)
	if kind == QueryScheduleRegister {
		return q, nil
	}
	t := &q.Tick
	t.Info = q.Info
	at, err := r.int("tick_ms")
	if err != nil {
		return q, err
	}
	if at <= 0 {
		return q, malformed("tick_ms %d out of range", at)
	}
	t.At = time.UnixMilli(at)
	if t.Overlap, err = r.bool("overlap"); err != nil {
		return q, err
	}
	lane, err := r.int("lane")
	if err != nil {
		return q, err
	}
	if lane < 0 || lane >= store.NumLanes {
		return q, malformed("unknown lane %d", lane)
	}
	if t.Run.Args, err = r.bin("args"); err != nil {
		return q, err
	}
	ints := make([]int64, 5)
	for i, what := range []string{"retries", "backoff_ms", "backoff_max_ms", "timeout_ms", "priority"} {
		if ints[i], err = r.int(what); err != nil {
			return q, err
		}
		if i < 4 && ints[i] < 0 {
			return q, malformed("negative %s %d", what, ints[i])
		}
	}
	t.Run.Name, t.Run.Lane = q.Info.Workflow, store.Lane(lane)
	t.Run.Opts = store.Options{
		Retries: int(min(ints[0], MaxItems)), BackoffMs: ints[1], BackoffMaxMs: ints[2],
		TimeoutMs: ints[3], Priority: int(max(min(ints[4], MaxItems), -MaxItems)),
	}
	return q, nil
}

func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// ScheduleStates writes schedule states (see the package's schedule
// queries).
func (w *Writer) ScheduleStates(sts []store.ScheduleState) []byte {
	_ = w.enc.EncodeArrayLen(len(sts))
	for i := range sts {
		w.scheduleState(&sts[i])
	}
	return w.Bytes()
}

// ScheduleState writes one schedule's state.
func (w *Writer) ScheduleState(st store.ScheduleState) []byte {
	w.scheduleState(&st)
	return w.Bytes()
}

func (w *Writer) scheduleState(st *store.ScheduleState) {
	_ = w.enc.EncodeArrayLen(14)
	for _, s := range []string{st.Name, st.Workflow, st.Spec, st.TZ} {
		_ = w.enc.EncodeString(s)
	}
	_ = w.enc.EncodeInt(unixMs(st.Next))
	_ = w.enc.EncodeBool(st.Paused)
	_ = w.enc.EncodeInt(unixMs(st.Created))
	_ = w.enc.EncodeInt(unixMs(st.LastTick))
	_ = w.enc.EncodeString(st.LastUnit)
	_ = w.enc.EncodeInt(unixMs(st.LastFired))
	_ = w.enc.EncodeInt(int64(st.LastStatus))
	_ = w.enc.EncodeInt(st.Fired)
	_ = w.enc.EncodeInt(st.Skipped)
	_ = w.enc.EncodeInt(unixMs(st.Seen))
}

// TickResult writes what FireTick did: [outcome, prev_tick_ms, unit].
func (w *Writer) TickResult(res store.TickResult) []byte {
	_ = w.enc.EncodeArrayLen(3)
	_ = w.enc.EncodeInt(int64(res.Outcome))
	_ = w.enc.EncodeInt(unixMs(res.Prev))
	_ = w.enc.EncodeString(res.Unit)
	return w.Bytes()
}
