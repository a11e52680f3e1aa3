package storetest

import (
	"sync"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

// Schedules: of many concurrent FireTick calls for one tick exactly one
// fires it, and its run exists under the tick's unit id; ticks claimed
// already (or not after the schedule's creation) are taken; pause and
// overlap claim a tick without a run; registration keeps the state; the
// list, and pausing an unknown schedule.

func (e *env) scheduler() store.Scheduler {
	e.t.Helper()
	sc, ok := e.s.(store.Scheduler)
	require.True(e.t, ok, "the driver must implement store.Scheduler")
	return sc
}

// info is the schedule "beat" running workflow "app.beat" every second.
func info(next time.Time) store.ScheduleInfo {
	return store.ScheduleInfo{Name: "beat", Workflow: "app.beat", Spec: "every 1s", Next: next}
}

// tick is FireTick's request for beat's tick at at.
func tick(at time.Time) store.Tick {
	return store.Tick{Info: info(at.Add(time.Second)), At: at,
		Run: store.Submission{Name: "app.beat", Lane: store.LaneAsync, Args: []byte("tick-args"),
			Opts: store.Options{Retries: 2}}}
}

func (e *env) fire(t store.Tick, want store.TickOutcome) store.TickResult {
	e.t.Helper()
	res, err := e.scheduler().FireTick(e.ctx, t)
	require.NoError(e.t, err, "FireTick(%s)", t.At)
	require.Equal(e.t, want, res.Outcome, "FireTick(%s): %s, want %s", t.At, res.Outcome, want)
	return res
}

func (e *env) schedule(name string) store.ScheduleState {
	e.t.Helper()
	all, err := e.scheduler().Schedules(e.ctx)
	require.NoError(e.t, err, "Schedules")
	for _, st := range all {
		if st.Name == name {
			return st
		}
	}
	e.t.Fatalf("schedule %s not listed in %+v", name, all)
	return store.ScheduleState{}
}

func testScheduleTickFiresOnce(e *env) {
	t := e.t
	sc := e.scheduler()
	created := e.clock.Now()
	st, err := sc.RegisterSchedule(e.ctx, info(created.Add(time.Second)))
	require.NoError(t, err)
	e.requireTime(created, st.Created, "Created")
	require.True(t, st.LastTick.IsZero())

	at := created.Add(time.Second)
	const callers = 8
	var wg sync.WaitGroup
	results := make([]store.TickResult, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = sc.FireTick(e.ctx, tick(at))
		}()
	}
	wg.Wait()
	fired := 0
	for i := range callers {
		require.NoError(t, errs[i], "caller %d", i)
		if results[i].Outcome == store.TickFired {
			fired++
			require.Equal(t, store.TickUnit("beat", at), results[i].Unit)
		} else {
			require.Equal(t, store.TickTaken, results[i].Outcome, "caller %d", i)
		}
	}
	require.Equal(t, 1, fired, "exactly one of %d concurrent calls fires a tick", callers)

	// The run is an ordinary root operation, ready for an async worker.
	unit := store.TickUnit("beat", at)
	require.Equal(t, "beat@20300102T030406Z", unit)
	d := e.reserveOne(store.LaneAsync, "w")
	require.Equal(t, store.Ref{Unit: unit, Path: store.RootPath}, d.Ref)
	require.Equal(t, "app.beat", d.Name)
	require.Equal(t, []byte("tick-args"), d.Args)

	st = e.schedule("beat")
	e.requireTime(at, st.LastTick, "LastTick")
	require.Equal(t, unit, st.LastUnit)
	require.Equal(t, store.StatusRunning, st.LastStatus)
	require.Equal(t, int64(1), st.Fired)
	e.requireTime(at.Add(time.Second), st.Next, "Next")

	// The same tick again, or an earlier one, is taken; the next one
	// reports the previous claim.
	e.fire(tick(at), store.TickTaken)
	e.fire(tick(at.Add(-500*time.Millisecond)), store.TickTaken)
	e.completeOne("w", store.Completion{Ref: d.Ref, LeaseID: d.LeaseID, OK: true, Result: []byte("r")})
	res := e.fire(tick(at.Add(1500*time.Millisecond)), store.TickFired)
	e.requireTime(at, res.Prev, "Prev")
	require.Equal(t, "beat@20300102T030407.5Z", res.Unit)
	require.Equal(t, int64(2), e.schedule("beat").Fired)
}

func testScheduleRules(e *env) {
	t := e.t
	sc := e.scheduler()
	created := e.clock.Now()
	_, err := sc.RegisterSchedule(e.ctx, info(created.Add(time.Second)))
	require.NoError(t, err)
	sec := func(n int) time.Time { return created.Add(time.Duration(n) * time.Second) }

	// No tick at or before the schedule's creation runs.
	e.fire(tick(created), store.TickTaken)
	e.fire(tick(sec(-5)), store.TickTaken)

	// Paused: the tick is claimed, nothing runs, and it stays claimed.
	st, err := sc.PauseSchedule(e.ctx, "beat", true)
	require.NoError(t, err)
	require.True(t, st.Paused)
	e.fire(tick(sec(1)), store.TickPaused)
	e.fire(tick(sec(1)), store.TickTaken)
	e.requireNoWork()
	st, err = sc.PauseSchedule(e.ctx, "beat", false)
	require.NoError(t, err)
	require.False(t, st.Paused)

	// Overlap off: while the previous run goes on, a tick is skipped.
	first := e.fire(tick(sec(3)), store.TickFired)
	res := e.fire(tick(sec(4)), store.TickOverlap)
	require.Equal(t, first.Unit, res.Unit, "overlap names the run still going")
	e.requireMissing(store.Ref{Unit: store.TickUnit("beat", sec(4)), Path: store.RootPath})
	require.Equal(t, int64(1), e.schedule("beat").Skipped)
	// Overlap on: it runs beside it.
	over := tick(sec(5))
	over.Overlap = true
	e.fire(over, store.TickFired)
	ds := e.reserve(store.LaneAsync, "w", 10)
	require.Len(t, ds, 2)
	for _, d := range ds {
		e.completeOne("w", store.Completion{Ref: d.Ref, LeaseID: d.LeaseID, OK: true})
	}
	// Once the last run has finished, the next tick runs.
	e.fire(tick(sec(6)), store.TickFired)
	st = e.schedule("beat")
	require.Equal(t, int64(3), st.Fired)
	require.Equal(t, store.StatusPending, st.LastStatus)
}

func testScheduleRegistryAndErrors(e *env) {
	t := e.t
	sc := e.scheduler()
	now := e.clock.Now()
	_, err := sc.RegisterSchedule(e.ctx, info(now.Add(time.Second)))
	require.NoError(t, err)
	_, err = sc.PauseSchedule(e.ctx, "beat", true)
	require.NoError(t, err)
	e.fire(tick(now.Add(time.Second)), store.TickPaused)

	// A later registration (another process, a new deploy) updates what
	// the code says and keeps the state.
	e.clock.Advance(10 * time.Second)
	later := info(now.Add(20 * time.Second))
	later.Spec, later.TZ = "cron * * * * *", "Europe/Paris"
	st, err := sc.RegisterSchedule(e.ctx, later)
	require.NoError(t, err)
	require.True(t, st.Paused, "registration keeps the pause")
	require.Equal(t, "cron * * * * *", st.Spec)
	require.Equal(t, "Europe/Paris", st.TZ)
	e.requireTime(now, st.Created, "Created is the first registration")
	e.requireTime(now.Add(time.Second), st.LastTick, "LastTick")
	e.requireTime(e.clock.Now(), st.Seen, "Seen")

	// FireTick registers a schedule it does not know; the list is by name.
	other := tick(e.clock.Now())
	other.Info.Name = "another"
	e.fire(other, store.TickTaken) // created by this call: its tick is not after it
	other.At = e.clock.Now().Add(time.Second)
	e.fire(other, store.TickFired)
	all, err := sc.Schedules(e.ctx)
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, "another", all[0].Name)
	require.Equal(t, "beat", all[1].Name)

	_, err = sc.PauseSchedule(e.ctx, "nobody", true)
	require.ErrorIs(t, err, store.ErrNotFound)
	bad := info(now)
	bad.Name = "no spaces"
	_, err = sc.RegisterSchedule(e.ctx, bad)
	require.ErrorIs(t, err, store.ErrInvalid)
	badTick := tick(now.Add(time.Second))
	badTick.Run.Name = "app.other"
	_, err = sc.FireTick(e.ctx, badTick)
	require.ErrorIs(t, err, store.ErrInvalid, "a tick's run is its schedule's workflow")
}
