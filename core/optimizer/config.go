package optimizer

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid optimizer config")

// Config holds the optimizer's bounds and hysteresis settings. The zero value
// is not usable; start from DefaultConfig and adjust.
type Config struct {
	// Per-lane bounds on the number of workers. MinAsync is at least 1 by
	// default because workflows only run on async workers.
	MinAsync    int `json:"min_async" msgpack:"min_async"`
	MaxAsync    int `json:"max_async" msgpack:"max_async"`
	MinBlocking int `json:"min_blocking" msgpack:"min_blocking"`
	MaxBlocking int `json:"max_blocking" msgpack:"max_blocking"`

	// MinTotal and MaxTotal bound the sum of both lanes. MaxTotal comes from
	// BoundTotal (CPUs and memory). Set both to the starting total to keep
	// the total fixed and only move workers between lanes: then the grow and
	// shrink rules never fire.
	MinTotal int `json:"min_total" msgpack:"min_total"`
	MaxTotal int `json:"max_total" msgpack:"max_total"`

	// DeadBand is how much more urgent one lane must be than the other
	// before a move is considered; below it, differences are noise.
	DeadBand float64 `json:"dead_band" msgpack:"dead_band"`
	// ConfirmTicks is how many consecutive decisions must propose the same
	// change before it is made, so that one noisy tick does not restart
	// workers. The informed start (see Decide) does not wait for it.
	ConfirmTicks int `json:"confirm_ticks" msgpack:"confirm_ticks"`
	// Cooldown is the least time between two changes: a change restarts
	// workers, and its effect must show in the rates before the next one is
	// judged.
	Cooldown time.Duration `json:"cooldown" msgpack:"cooldown"`
	// Step is the most workers one grow or shrink adds or removes. Moves
	// between the lanes are not capped by it: a move goes to the balance
	// point of the scores (see Decide), so it is large when the mix is far
	// from what the load needs and one worker when it is close.
	Step int `json:"step" msgpack:"step"`
	// MinGain is the least a move must lower the higher urgency by to be
	// worth restarting workers for. Without it, a lane with noisy rates
	// and a balance that is almost as good one worker either way would
	// trade that worker back and forth over the minutes.
	MinGain float64 `json:"min_gain" msgpack:"min_gain"`

	// Horizon converts waiting work into urgency: a backlog that takes one
	// Horizon to drain (or whose oldest task has waited one Horizon) adds as
	// much urgency as a fully busy lane. Shorter favours latency, longer
	// lets backlogs build before workers move.
	Horizon time.Duration `json:"horizon" msgpack:"horizon"`
	// Smoothing is the time constant of the moving averages of the rates
	// and of the running count: a sample's weight decays by e every
	// Smoothing, whatever the tick length.
	Smoothing time.Duration `json:"smoothing" msgpack:"smoothing"`

	// GrowAbove and ShrinkBelow are the urgencies above which both lanes
	// count as saturated (grow the total) and below which both count as idle
	// (shrink it). They only matter when MinTotal < MaxTotal.
	GrowAbove   float64 `json:"grow_above" msgpack:"grow_above"`
	ShrinkBelow float64 `json:"shrink_below" msgpack:"shrink_below"`
}

// Default settings. The tick itself (optimization_interval, 5 s by default
// in the Python settings and the foreman) is the caller's. The time constants are those of
// a 30 s tick; callers scale them to theirs with ScaleToInterval. The
// simulation in package sim checks them at 5 s ticks (its targets) and
// can run them at 30 s (cmd/optsim -interval 30s).
const (
	DefaultDeadBand     = 0.25
	DefaultConfirmTicks = 2
	DefaultCooldown     = 60 * time.Second
	DefaultStep         = 4
	DefaultMinGain      = 0.1
	DefaultHorizon      = 180 * time.Second
	DefaultSmoothing    = 45 * time.Second
	DefaultGrowAbove    = 1.0
	DefaultShrinkBelow  = 0.1
)

// DefaultConfig is the configuration for the default mix of the Python
// settings (4 async + 4 blocking workers) with the total held at 8. Callers
// with another total use WithTotal.
func DefaultConfig() Config {
	return Config{
		MinAsync:     1,
		MinBlocking:  1,
		DeadBand:     DefaultDeadBand,
		ConfirmTicks: DefaultConfirmTicks,
		Cooldown:     DefaultCooldown,
		Step:         DefaultStep,
		MinGain:      DefaultMinGain,
		Horizon:      DefaultHorizon,
		Smoothing:    DefaultSmoothing,
		GrowAbove:    DefaultGrowAbove,
		ShrinkBelow:  DefaultShrinkBelow,
	}.WithTotal(8, 8)
}

// WithTotal returns c with the total bounded to [minTotal, maxTotal] and
// each lane's maximum set to what the total leaves once the other lane has
// its minimum.
func (c Config) WithTotal(minTotal, maxTotal int) Config {
	c.MinTotal, c.MaxTotal = minTotal, maxTotal
	c.MaxAsync = maxTotal - c.MinBlocking
	c.MaxBlocking = maxTotal - c.MinAsync
	return c
}

// Validate reports every inconsistency in c, each wrapped in
// ErrInvalidConfig.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.MinAsync < 0 || c.MinBlocking < 0 {
		bad("lane minimums must not be negative (async %d, blocking %d)", c.MinAsync, c.MinBlocking)
	}
	if c.MaxAsync < c.MinAsync {
		bad("max_async %d is below min_async %d", c.MaxAsync, c.MinAsync)
	}
	if c.MaxBlocking < c.MinBlocking {
		bad("max_blocking %d is below min_blocking %d", c.MaxBlocking, c.MinBlocking)
	}
	if c.MaxTotal < 1 {
		bad("max_total %d must be at least 1", c.MaxTotal)
	}
	if c.MinTotal > c.MaxTotal {
		bad("min_total %d is above max_total %d", c.MinTotal, c.MaxTotal)
	}
	if c.MinAsync+c.MinBlocking > c.MaxTotal {
		bad("the lane minimums (%d + %d) exceed max_total %d", c.MinAsync, c.MinBlocking, c.MaxTotal)
	}
	if c.MaxAsync+c.MaxBlocking < c.MinTotal {
		bad("the lane maximums (%d + %d) cannot reach min_total %d", c.MaxAsync, c.MaxBlocking, c.MinTotal)
	}
	if c.DeadBand < 0 {
		bad("dead_band %g must not be negative", c.DeadBand)
	}
	if c.ConfirmTicks < 1 {
		bad("confirm_ticks %d must be at least 1", c.ConfirmTicks)
	}
	if c.Cooldown < 0 {
		bad("cooldown %s must not be negative", c.Cooldown)
	}
	if c.Step < 1 {
		bad("step %d must be at least 1", c.Step)
	}
	if c.MinGain < 0 {
		bad("min_gain %g must not be negative", c.MinGain)
	}
	if c.Horizon <= 0 {
		bad("horizon %s must be positive", c.Horizon)
	}
	if c.Smoothing <= 0 {
		bad("smoothing %s must be positive", c.Smoothing)
	}
	if c.ShrinkBelow < 0 || c.GrowAbove <= c.ShrinkBelow {
		bad("need 0 <= shrink_below (%g) < grow_above (%g)", c.ShrinkBelow, c.GrowAbove)
	}
	return errors.Join(errs...)
}

// DefaultPerWorkerBytes is the memory budgeted per worker process when the
// caller has no better figure: an idle Python worker measures about 42 MiB
// (benchmarks/results), and the budget leaves room for the values and
// libraries user steps bring in.
const DefaultPerWorkerBytes = 256 << 20

// BoundTotal is the largest total number of workers one machine should run:
//
//	min(configured or 2·cpus, 4·cpus, ⌊¾·memBytes / perWorkerBytes⌋), at least 2
//
// Without a configured total, two workers per CPU keep every core busy when
// the work is mixed: a blocking worker occupies a core, an async worker
// mostly waits. A configured total is honoured up to four per CPU; beyond
// that async workers fight over cores and the scheduler, not over I/O. A
// quarter of the memory is left to the OS, the foreman and the page cache;
// memBytes or perWorkerBytes 0 means no memory bound. The result is never
// below 2, one worker per lane, the least that can run every kind of step:
// if memory cannot hold that, the machine is too small whatever the bound
// says, and the per-worker figure is only an estimate.
func BoundTotal(cpus int, memBytes uint64, perWorkerBytes uint64, configured int) int {
	cpus = max(cpus, 1)
	limit := configured
	if limit <= 0 {
		limit = 2 * cpus
	}
	limit = min(limit, 4*cpus)
	if memBytes > 0 && perWorkerBytes > 0 {
		if byMem := memBytes / 4 * 3 / perWorkerBytes; byMem < uint64(limit) {
			limit = int(byMem)
		}
	}
	return max(limit, 2)
}
