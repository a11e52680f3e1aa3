package sim

import (
	"hash/fnv"
	"math/rand/v2"
	"time"
)

// TaskProfile is the mean cost of one kind of task. Each task's wait and
// CPU time are drawn uniformly from half to one and a half times the mean:
// varied enough that queues form and drain unevenly, bounded so that no
// single task dominates a run.
type TaskProfile struct {
	// Wait is time spent awaiting I/O, holding a slot but no CPU.
	Wait time.Duration
	// CPU is time spent computing, on one core.
	CPU time.Duration
}

// Phase is a stretch of time with constant Poisson arrival rates.
type Phase struct {
	Length time.Duration
	// Async and Blocking are arrival rates in tasks per second.
	Async, Blocking float64
}

// Workload describes a fixed-size job: tasks of two profiles arriving
// through a sequence of phases.
type Workload struct {
	Name string
	// Steady workloads keep one load throughout; on them the mix is
	// expected to settle.
	Steady bool
	// AsyncTask is the profile of async-lane tasks, BlockingTask of
	// blocking-lane tasks.
	AsyncTask, BlockingTask TaskProfile
	Phases                  []Phase
}

// Duration is how long tasks keep arriving.
func (w Workload) Duration() time.Duration {
	var d time.Duration
	for _, p := range w.Phases {
		d += p.Length
	}
	return d
}

// The task profiles of the standard workloads. An I/O task holds a slot for
// about 8 s (a slow API or a model call) and computes 10 ms around it, so
// one async worker of 64 slots completes about 8 per second using 0.08 of
// a core; a CPU task computes for about 1 s.
var (
	ioTask  = TaskProfile{Wait: 8 * time.Second, CPU: 10 * time.Millisecond}
	cpuTask = TaskProfile{CPU: time.Second}
)

// Workloads are the four standard workloads, sized for DefaultMachine (8
// cores, 16 workers): each keeps some lane busier than a balanced mix can
// serve, so that the mix matters.
//
//   - steady-io: 90 I/O tasks/s (about 11 workers' worth) and 1 CPU
//     task/s for 20 minutes.
//   - steady-cpu: 6.5 CPU tasks/s (most of the cores) and 8 I/O tasks/s
//     for 20 minutes.
//   - alternating: 10-minute phases, three of each, switching between an
//     I/O phase (110 I/O tasks/s, 0.5 CPU task/s) and a CPU phase (9 CPU
//     tasks/s, more than the cores can do, and 8 I/O tasks/s).
//   - bursts: idle but for a 5-second spike every 3 minutes (2000 I/O
//     tasks and 60 CPU tasks), ten times.
func Workloads() []Workload {
	alternating := make([]Phase, 0, 6)
	for range 3 {
		alternating = append(alternating,
			Phase{Length: 10 * time.Minute, Async: 110, Blocking: 0.5},
			Phase{Length: 10 * time.Minute, Async: 8, Blocking: 9})
	}
	bursts := make([]Phase, 0, 20)
	for range 10 {
		bursts = append(bursts,
			Phase{Length: 5 * time.Second, Async: 400, Blocking: 12},
			Phase{Length: 175 * time.Second})
	}
	return []Workload{
		{Name: "steady-io", Steady: true, AsyncTask: ioTask, BlockingTask: cpuTask,
			Phases: []Phase{{Length: 20 * time.Minute, Async: 90, Blocking: 1}}},
		{Name: "steady-cpu", Steady: true, AsyncTask: ioTask, BlockingTask: cpuTask,
			Phases: []Phase{{Length: 20 * time.Minute, Async: 8, Blocking: 6.5}}},
		{Name: "alternating", AsyncTask: ioTask, BlockingTask: cpuTask, Phases: alternating},
		{Name: "bursts", AsyncTask: ioTask, BlockingTask: cpuTask, Phases: bursts},
	}
}

// task is one unit of work of a job. Times are in seconds.
type task struct {
	arrive float64
	wait   float64
	cpu    float64
}

// Job is a workload drawn with one seed: the same tasks, at the same
// times, for every policy it is run under. It is read-only once made, so
// runs may share it.
type Job struct {
	Workload Workload
	Seed     uint64
	// lanes holds each lane's tasks in arrival order (phases follow each
	// other and each is drawn in order), async first.
	lanes [2][]task
	// maxWait is the longest I/O wait, which sizes the simulator's timer
	// wheel.
	maxWait float64
}

// Tasks is the number of tasks in the job.
func (j *Job) Tasks() int { return len(j.lanes[0]) + len(j.lanes[1]) }

// NewJob draws the tasks of w with seed. The random stream depends on the
// seed and the workload's name only, so a job is the same on every run and
// platform (math/rand/v2's PCG is specified exactly).
func NewJob(w Workload, seed uint64) *Job {
	h := fnv.New64a()
	h.Write([]byte(w.Name)) // a hash.Hash never fails to write
	rng := rand.New(rand.NewPCG(seed, h.Sum64()))
	j := &Job{Workload: w, Seed: seed}
	start := 0.0
	for _, p := range w.Phases {
		end := start + p.Length.Seconds()
		for i, rate := range [2]float64{p.Async, p.Blocking} {
			if rate <= 0 {
				continue
			}
			prof := w.AsyncTask
			if i == 1 {
				prof = w.BlockingTask
			}
			for t := start + rng.ExpFloat64()/rate; t < end; t += rng.ExpFloat64() / rate {
				tk := task{arrive: t, wait: spread(rng, prof.Wait), cpu: spread(rng, prof.CPU)}
				j.maxWait = max(j.maxWait, tk.wait)
				j.lanes[i] = append(j.lanes[i], tk)
			}
		}
		start = end
	}
	return j
}

// spread draws a duration uniformly from [mean/2, 3·mean/2), in seconds.
func spread(rng *rand.Rand, mean time.Duration) float64 {
	return mean.Seconds() * (0.5 + rng.Float64())
}
