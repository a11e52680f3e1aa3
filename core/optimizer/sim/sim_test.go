package sim

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/optimizer"
)

// seeds are the seeds every target is checked with.
var seeds = []uint64{1, 2, 3, 4, 5}

// The targets, for every standard workload and seed, against the static
// mix with the smallest makespan ("best"; ties go to fewer async workers):
const (
	// maxSlower: the optimizer finishes at most 5% after the best mix.
	maxSlower = 0.05
	// maxTailRatio: its p99 queueing wait is at most 1.5 times the best
	// mix's, so that makespan is never bought with tail latency.
	maxTailRatio = 1.5
	// minSoonerThanWorst: under alternating phases, at least 25% sooner
	// than the worst mix.
	minSoonerThanWorst = 0.25
)

// TestTargets checks the optimizer against every static mix of the same
// total, on every standard workload and seed:
//   - makespan at most maxSlower behind the best static mix;
//   - p99 queueing wait at most maxTailRatio times the best static mix's;
//   - at most one change per cooldown window;
//   - steady loads: no change in the second half of the run;
//   - alternating phases: at least minSoonerThanWorst ahead of the worst.
//
// Each comparison is logged, so a failure shows the whole picture.
func TestTargets(t *testing.T) {
	m := DefaultMachine()
	cfg := optimizer.DefaultConfig()
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			t.Parallel()
			for _, w := range Workloads() {
				c, err := Compare(m, w, seed, cfg)
				require.NoError(t, err)
				opt, best := c.Optimized, c.Static[c.Best]
				t.Logf("seed %d, %s: makespan %s (best static %s: %s, %+.1f%%), p99 wait %s (best static %s, ×%.2f), changes %d, max per cooldown %d, last change %s",
					seed, w.Name, opt.Makespan, best.Start, best.Makespan, 100*c.SlowerThanBest(), opt.P99Wait, best.P99Wait,
					float64(opt.P99Wait)/float64(max(best.P99Wait, 1)), len(opt.Changes), opt.ChangesWithin(c.Cooldown), opt.LastChange())
				require.False(t, opt.Unfinished, w.Name)
				assert.LessOrEqual(t, c.SlowerThanBest(), maxSlower, "%s: makespan %s, best static %s %s",
					w.Name, opt.Makespan, best.Start, best.Makespan)
				assert.LessOrEqual(t, float64(opt.P99Wait), maxTailRatio*float64(best.P99Wait), "%s: p99 wait %s, best static %s %s",
					w.Name, opt.P99Wait, best.Start, best.P99Wait)
				assert.LessOrEqual(t, opt.ChangesWithin(c.Cooldown), 1, "%s: changes %v", w.Name, opt.Changes)
				if w.Steady {
					assert.True(t, c.Settled(), "%s: changes %v", w.Name, opt.Changes)
				}
				if w.Name == "alternating" {
					assert.GreaterOrEqual(t, c.SoonerThanWorst(), minSoonerThanWorst, "%s: optimizer %s, worst %s",
						w.Name, opt.Makespan, c.Static[c.Worst].Makespan)
				}
			}
		})
	}
}

func TestJobIsDeterministic(t *testing.T) {
	w := Workloads()[2]
	a, b := NewJob(w, 7), NewJob(w, 7)
	assert.Equal(t, a.lanes, b.lanes)
	assert.NotEqual(t, a.lanes, NewJob(w, 8).lanes)
	assert.Positive(t, a.Tasks())
}

func TestJobFollowsThePhases(t *testing.T) {
	w := Workload{Name: "two phases", AsyncTask: ioTask, BlockingTask: cpuTask, Phases: []Phase{
		{Length: 100 * time.Second, Async: 50},
		{Length: 100 * time.Second, Blocking: 5},
	}}
	j := NewJob(w, 1)
	assert.InDelta(t, 5000, len(j.lanes[0]), 300)
	assert.InDelta(t, 500, len(j.lanes[1]), 100)
	for _, tk := range j.lanes[0] {
		require.Less(t, tk.arrive, 100.0)
		require.GreaterOrEqual(t, tk.wait, 4.0)
		require.Less(t, tk.wait, 12.0)
	}
	for _, tk := range j.lanes[1] {
		require.GreaterOrEqual(t, tk.arrive, 100.0)
		require.Less(t, tk.arrive, 200.0)
	}
}

func TestRunsAreDeterministic(t *testing.T) {
	m := DefaultMachine()
	job := NewJob(Workloads()[2], 3)
	cfg := MachineConfig(m, optimizer.DefaultConfig())
	a, err := RunOptimized(m, job, optimizer.Mix{Async: 8, Blocking: 8}, cfg)
	require.NoError(t, err)
	b, err := RunOptimized(m, job, optimizer.Mix{Async: 8, Blocking: 8}, cfg)
	require.NoError(t, err)
	assert.Equal(t, a, b)
	assert.NotEmpty(t, a.Changes)
}

// light is a load any mix keeps up with.
func light() Workload {
	return Workload{Name: "light", AsyncTask: ioTask, BlockingTask: cpuTask,
		Phases: []Phase{{Length: 10 * time.Minute, Async: 10, Blocking: 1}}}
}

func TestLightLoadFinishesWithTheArrivals(t *testing.T) {
	m := DefaultMachine()
	r, err := RunStatic(m, NewJob(light(), 1), optimizer.Mix{Async: 8, Blocking: 8})
	require.NoError(t, err)
	assert.False(t, r.Unfinished)
	assert.Greater(t, r.Makespan, 10*time.Minute)
	assert.Less(t, r.Makespan, 10*time.Minute+15*time.Second, "the last tasks take at most 12 s")
	assert.Less(t, r.P99Wait, 200*time.Millisecond, "nothing queues but for a step")
	assert.Empty(t, r.Changes)
}

func TestAsyncWorkersAreBoundBySlots(t *testing.T) {
	// One async worker of 64 slots with 8 s waits completes 8 tasks/s:
	// 4800 tasks take about 600 s however fast they arrive.
	m := DefaultMachine()
	w := Workload{Name: "slots", AsyncTask: ioTask, BlockingTask: cpuTask,
		Phases: []Phase{{Length: 10 * time.Second, Async: 480}}}
	r, err := RunStatic(m, NewJob(w, 1), optimizer.Mix{Async: 1, Blocking: 15})
	require.NoError(t, err)
	assert.InDelta(t, 600, r.Makespan.Seconds(), 30)
}

func TestBlockingWorkersBeyondTheCoresAddNothing(t *testing.T) {
	// 1200 CPU-seconds on 8 cores take about 150 s with 8 blocking
	// workers or 15.
	m := DefaultMachine()
	w := Workload{Name: "cpu", AsyncTask: ioTask, BlockingTask: cpuTask,
		Phases: []Phase{{Length: 10 * time.Second, Blocking: 120}}}
	job := NewJob(w, 1)
	eight, err := RunStatic(m, job, optimizer.Mix{Async: 8, Blocking: 8})
	require.NoError(t, err)
	fifteen, err := RunStatic(m, job, optimizer.Mix{Async: 1, Blocking: 15})
	require.NoError(t, err)
	four, err := RunStatic(m, job, optimizer.Mix{Async: 12, Blocking: 4})
	require.NoError(t, err)
	assert.InDelta(t, 150, eight.Makespan.Seconds(), 15)
	assert.InDelta(t, eight.Makespan.Seconds(), fifteen.Makespan.Seconds(), 5)
	assert.InDelta(t, 300, four.Makespan.Seconds(), 20)
}

func TestRestartDelay(t *testing.T) {
	// Workers moved to a lane join it RestartDelay later: with a delay
	// longer than the job the optimizer does no better than the mix it
	// started with, with a short one it does much better.
	m := DefaultMachine()
	job := NewJob(Workloads()[0], 1)
	cfg := MachineConfig(m, optimizer.DefaultConfig())
	start := optimizer.Mix{Async: 8, Blocking: 8}
	static, err := RunStatic(m, job, start)
	require.NoError(t, err)
	quick, err := RunOptimized(m, job, start, cfg)
	require.NoError(t, err)
	m.RestartDelay = time.Hour
	never, err := RunOptimized(m, job, start, cfg)
	require.NoError(t, err)
	require.NotEmpty(t, never.Changes)
	assert.InEpsilon(t, static.Makespan.Seconds(), never.Makespan.Seconds(), 0.01)
	assert.Less(t, quick.Makespan.Seconds(), 0.8*static.Makespan.Seconds())
}

func TestChangesWithin(t *testing.T) {
	r := Result{Changes: []Change{{At: 60 * time.Second}, {At: 120 * time.Second}, {At: 180 * time.Second}, {At: 400 * time.Second}}}
	assert.Equal(t, 1, r.ChangesWithin(60*time.Second), "windows are half-open")
	assert.Equal(t, 2, r.ChangesWithin(61*time.Second))
	assert.Equal(t, 3, r.ChangesWithin(121*time.Second))
	assert.Equal(t, 0, Result{}.ChangesWithin(time.Minute))
	assert.Equal(t, 400*time.Second, r.LastChange())
}

func TestRunRejectsImpossibleSetups(t *testing.T) {
	m := DefaultMachine()
	job := NewJob(light(), 1)
	_, err := RunStatic(m, job, optimizer.Mix{Async: 8, Blocking: 7})
	assert.True(t, errors.Is(err, ErrInvalid), "%v", err)
	bad := m
	bad.Cores = 0
	_, err = RunStatic(bad, job, optimizer.Mix{Async: 8, Blocking: 8})
	assert.True(t, errors.Is(err, ErrInvalid), "%v", err)
	cfg := optimizer.DefaultConfig()
	cfg.Step = 0
	_, err = RunOptimized(m, job, optimizer.Mix{Async: 8, Blocking: 8}, cfg)
	assert.True(t, errors.Is(err, optimizer.ErrInvalidConfig), "%v", err)
}

func TestHopelessMixGivesUp(t *testing.T) {
	m := DefaultMachine()
	w := Workload{Name: "hopeless", AsyncTask: ioTask, BlockingTask: cpuTask,
		Phases: []Phase{{Length: time.Second, Blocking: 10}}}
	r, err := RunStatic(m, NewJob(w, 1), optimizer.Mix{Async: 16, Blocking: 0})
	require.NoError(t, err)
	assert.True(t, r.Unfinished)
	assert.Equal(t, giveUpFactor*m.Interval, r.Makespan, "the job is shorter than one interval")
}

func TestMarkdown(t *testing.T) {
	m := DefaultMachine()
	c, err := Compare(m, light(), 1, optimizer.DefaultConfig())
	require.NoError(t, err)
	out := Markdown([]Comparison{c})
	assert.Contains(t, out, "| workload | optimizer | best static |")
	assert.Contains(t, out, "| light |")
	assert.Len(t, c.Static, 15)
}

// TestInformedStart checks that the optimizer converges in seconds on the
// steady loads: its first change is the informed start, at the first tick
// with rates (one interval after the look at the start).
func TestInformedStart(t *testing.T) {
	m := DefaultMachine()
	cfg := MachineConfig(m, optimizer.DefaultConfig())
	for _, w := range Workloads() {
		if !w.Steady {
			continue
		}
		r, err := RunOptimized(m, NewJob(w, 1), optimizer.Mix{Async: 8, Blocking: 8}, cfg)
		require.NoError(t, err)
		require.NotEmpty(t, r.Changes, w.Name)
		assert.Equal(t, m.Interval, r.Changes[0].At, w.Name)
		var first optimizer.Decision
		for _, d := range r.Decisions {
			if d.Changed() {
				first = d
				break
			}
		}
		assert.Equal(t, optimizer.ReasonInformedStart, first.Reason, "%s: %s", w.Name, first.Detail)
	}
}
