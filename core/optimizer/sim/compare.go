package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/blazingflow/blazing/core/optimizer"
)

// Comparison is one workload run through the optimizer and through every
// static mix the optimizer's bounds allow.
type Comparison struct {
	Workload  Workload
	Seed      uint64
	Cooldown  time.Duration
	Optimized Result
	// Static holds one result per mix, by increasing number of async
	// workers; Best and Worst index it by makespan (ties: fewer async
	// workers first).
	Static      []Result
	Best, Worst int
}

// MachineConfig is cfg as the foreman would set it for m: the total fixed
// at m.Workers (so that the optimizer is compared with static mixes of the
// same total), each lane kept to at least its minimum, and the time
// constants scaled to m.Interval (ScaleToInterval).
func MachineConfig(m Machine, cfg optimizer.Config) optimizer.Config {
	return cfg.WithTotal(m.Workers, m.Workers).ScaleToInterval(m.Interval)
}

// Compare runs w drawn with seed under the optimizer (starting from an
// even split, the default mix) and under every static mix within cfg's
// lane bounds. cfg is bounded for m with MachineConfig.
func Compare(m Machine, w Workload, seed uint64, cfg optimizer.Config) (Comparison, error) {
	cfg = MachineConfig(m, cfg)
	job := NewJob(w, seed)
	c := Comparison{Workload: w, Seed: seed, Cooldown: cfg.Cooldown}
	startAsync := min(max(m.Workers/2, cfg.MinAsync), cfg.MaxAsync)
	var err error
	c.Optimized, err = RunOptimized(m, job, optimizer.Mix{Async: startAsync, Blocking: m.Workers - startAsync}, cfg)
	if err != nil {
		return c, fmt.Errorf("%s, seed %d, optimized: %w", w.Name, seed, err)
	}
	for a := cfg.MinAsync; a <= cfg.MaxAsync; a++ {
		mix := optimizer.Mix{Async: a, Blocking: m.Workers - a}
		if mix.Blocking < cfg.MinBlocking || mix.Blocking > cfg.MaxBlocking {
			continue
		}
		r, err := RunStatic(m, job, mix)
		if err != nil {
			return c, fmt.Errorf("%s, seed %d, static %s: %w", w.Name, seed, mix, err)
		}
		c.Static = append(c.Static, r)
		if r.Makespan < c.Static[c.Best].Makespan {
			c.Best = len(c.Static) - 1
		}
		if r.Makespan > c.Static[c.Worst].Makespan {
			c.Worst = len(c.Static) - 1
		}
	}
	return c, nil
}

// SoonerThanWorst is how much sooner the optimizer finished than the worst
// static mix, as a fraction of the worst makespan.
func (c Comparison) SoonerThanWorst() float64 {
	worst := c.Static[c.Worst].Makespan
	return float64(worst-c.Optimized.Makespan) / float64(worst)
}

// SlowerThanBest is how much later the optimizer finished than the best
// static mix, as a fraction of the best makespan (negative: sooner).
func (c Comparison) SlowerThanBest() float64 {
	best := c.Static[c.Best].Makespan
	return float64(c.Optimized.Makespan-best) / float64(best)
}

// Settled reports whether the mix stayed the same through the second half
// of the arrivals, when a steady load has long been steady. It only means
// something for steady workloads.
func (c Comparison) Settled() bool {
	return c.Optimized.LastChange() < c.Workload.Duration()/2
}

// Markdown renders comparisons as a markdown table. The p99 waits are
// printed as measured: the middle of a bucket one time step wide (50 ms is
// the first bucket), so rounding them would only shift them.
func Markdown(cs []Comparison) string {
	var b strings.Builder
	b.WriteString("| workload | optimizer | best static | worst static | vs worst | vs best | changes | max per cooldown | settled | optimizer p99 wait | best static p99 wait |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range cs {
		best, worst := c.Static[c.Best], c.Static[c.Worst]
		settled := "–"
		if c.Workload.Steady {
			settled = "no"
			if c.Settled() {
				settled = fmt.Sprintf("yes (last change %s)", c.Optimized.LastChange())
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s (%d+%d) | %s (%d+%d) | %.1f%% sooner | %+.1f%% | %d | %d | %s | %s | %s |\n",
			c.Workload.Name, minutes(c.Optimized),
			minutes(best), best.Start.Async, best.Start.Blocking,
			minutes(worst), worst.Start.Async, worst.Start.Blocking,
			100*c.SoonerThanWorst(), 100*c.SlowerThanBest(),
			len(c.Optimized.Changes), c.Optimized.ChangesWithin(c.Cooldown), settled,
			c.Optimized.P99Wait, best.P99Wait)
	}
	return b.String()
}

// minutes formats a makespan, marking runs that gave up.
func minutes(r Result) string {
	s := fmt.Sprintf("%.1f min", r.Makespan.Minutes())
	if r.Unfinished {
		s = "> " + s
	}
	return s
}
