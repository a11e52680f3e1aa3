// Command optsim runs the standard workloads of package sim through the
// optimizer and through every static mix of the same total, and prints how
// they compare.
//
//	go run ./cmd/optsim [-seed 1] [-markdown] [-mixes] [-interval 5s]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/blazingflow/blazing/core/optimizer"
	"github.com/blazingflow/blazing/core/optimizer/sim"
)

func main() {
	seed := flag.Uint64("seed", 1, "random seed of the workloads")
	markdown := flag.Bool("markdown", false, "print a markdown table")
	mixes := flag.Bool("mixes", false, "also print the makespan of every static mix")
	interval := flag.Duration("interval", sim.DefaultMachine().Interval, "optimization interval (the optimizer's time constants scale with it)")
	flag.Parse()
	m := sim.DefaultMachine()
	m.Interval = *interval
	if err := run(os.Stdout, m, *seed, *markdown, *mixes); err != nil {
		fmt.Fprintln(os.Stderr, "optsim:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, m sim.Machine, seed uint64, markdown, mixes bool) error {
	var cs []sim.Comparison
	for _, w := range sim.Workloads() {
		c, err := sim.Compare(m, w, seed, optimizer.DefaultConfig())
		if err != nil {
			return fmt.Errorf("comparing %s: %w", w.Name, err)
		}
		cs = append(cs, c)
	}
	cfg := sim.MachineConfig(m, optimizer.DefaultConfig())
	// In markdown the two lines are list items, so that the whole output
	// can be pasted into a document as it is.
	item := ""
	if markdown {
		item = "- "
	}
	fmt.Fprintf(out, "%smachine: %d cores, %d workers, %d async slots, restart %s, interval %s, step %s; seed %d\n",
		item, m.Cores, m.Workers, m.AsyncSlots, m.RestartDelay, m.Interval, m.TimeStep, seed)
	fmt.Fprintf(out, "%soptimizer: dead band %g, confirm %d ticks, cooldown %s, grow/shrink step %d, horizon %s, smoothing %s\n\n",
		item, cfg.DeadBand, cfg.ConfirmTicks, cfg.Cooldown, cfg.Step, cfg.Horizon, cfg.Smoothing)
	if markdown {
		fmt.Fprint(out, sim.Markdown(cs))
	} else {
		text(out, cs)
	}
	if mixes {
		fmt.Fprintln(out)
		static(out, cs)
	}
	return nil
}

// text prints the comparison as an aligned plain-text table.
func text(out io.Writer, cs []sim.Comparison) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\toptimizer\tbest static\tworst static\tvs worst\tvs best\tchanges\tmax/cooldown\tsettled\tp99 wait\tbest p99 wait\t")
	for _, c := range cs {
		best, worst := c.Static[c.Best], c.Static[c.Worst]
		settled := "-"
		if c.Workload.Steady {
			settled = fmt.Sprint(c.Settled())
		}
		fmt.Fprintf(tw, "%s\t%.1f min\t%.1f min (%s)\t%.1f min (%s)\t%.1f%% sooner\t%+.1f%%\t%d\t%d\t%s\t%s\t%s\t\n",
			c.Workload.Name, c.Optimized.Makespan.Minutes(),
			best.Makespan.Minutes(), best.Start, worst.Makespan.Minutes(), worst.Start,
			100*c.SoonerThanWorst(), 100*c.SlowerThanBest(),
			len(c.Optimized.Changes), c.Optimized.ChangesWithin(c.Cooldown), settled,
			c.Optimized.P99Wait, best.P99Wait)
	}
	tw.Flush()
}

// static prints every static mix's makespan and the optimizer's changes.
func static(out io.Writer, cs []sim.Comparison) {
	for _, c := range cs {
		fmt.Fprintf(out, "%s:\n  static:", c.Workload.Name)
		for _, r := range c.Static {
			fmt.Fprintf(out, " %d+%d=%.1f", r.Start.Async, r.Start.Blocking, r.Makespan.Minutes())
		}
		var changes []string
		for _, ch := range c.Optimized.Changes {
			changes = append(changes, fmt.Sprintf("%s→%d+%d", ch.At.Round(time.Second), ch.Mix.Async, ch.Mix.Blocking))
		}
		fmt.Fprintf(out, "\n  optimizer: %.1f min, p99 wait %s; changes: %s\n",
			c.Optimized.Makespan.Minutes(), c.Optimized.P99Wait, strings.Join(changes, ", "))
	}
}
