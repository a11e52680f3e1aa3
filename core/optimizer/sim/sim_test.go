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

// TestTargets checks the optimizer against every static mix of the same
// total, on every standard workload and seed:
//   - alternating phases: at least 25% sooner than the worst static mix,
//     at most 10% later than the best one;
//   - everywhere: at most one change per cooldown window;
//   - steady loads: no change in the second half of the run.
func TestTargets(t *testing.T) {
	m := DefaultMachine()
	cfg := optimizer.DefaultConfig()
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			t.Parallel()
			for _, w := range Workloads() {
				// Only the alternating workload needs the static mixes.
				var c Comparison
				var err error
				if w.Name == "alternating" {
					c, err = Compare(m, w, seed, cfg)
				} else {
					c.Workload = w
					c.Optimized, err = RunOptimized(m, NewJob(w, seed), optimizer.Mix{Async: 8, Blocking: 8}, MachineConfig(m, cfg))
				}
				require.NoError(t, err)
				opt := c.Optimized
				require.False(t, opt.Unfinished, w.Name)
				assert.LessOrEqual(t, opt.ChangesWithin(MachineConfig(m, cfg).Cooldown), 1, "%s: changes %v", w.Name, opt.Changes)
				if w.Steady {
					assert.True(t, c.Settled(), "%s: changes %v", w.Name, opt.Changes)
				}
				if w.Name == "alternating" {
					assert.GreaterOrEqual(t, c.SoonerThanWorst(), 0.25, "%s: optimizer %s, worst %s",
						w.Name, opt.Makespan, c.Static[c.Worst].Makespan)
					assert.LessOrEqual(t, c.SlowerThanBest(), 0.10, "%s: optimizer %s, best %s",
						w.Name, opt.Makespan, c.Static[c.Best].Makespan)
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
