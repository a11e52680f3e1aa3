package store

import (
	"context"
	"fmt"
	"time"
)

// Schedules: a workflow run on a cron expression or an interval. The code of
// every process that serves an app computes the same ticks (instants) from
// the same schedule, and every one of them asks the store to fire each tick;
// the store makes exactly one of those calls fire it. Firing claims the tick
// and submits the tick's run as one atomic step, and the run's unit id is
// derived from the schedule and the tick (TickUnit), so no tick can run
// twice nor be claimed without its run.

// ScheduleKeep is how long a schedule's record outlives the last time a
// process registered or ticked it: a schedule no process has served for that
// long (removed from the code) drops out of the list.
const ScheduleKeep = 30 * 24 * time.Hour

// MaxScheduleName bounds a schedule name's length.
const MaxScheduleName = 200

// ScheduleInfo is what the code that declares a schedule says of it. Every
// process serving the app writes it when it registers or ticks the schedule;
// the latest writer wins.
type ScheduleInfo struct {
	// Name identifies the schedule in its namespace.
	Name string
	// Workflow is the workflow (or step) each tick runs.
	Workflow string
	// Spec describes the trigger for people ("cron */5 * * * *", "every 1s").
	Spec string
	// TZ is the time zone of a cron expression ("" for an interval).
	TZ string
	// Next is the tick after the latest one, as the writer computed it.
	Next time.Time
}

// ScheduleState is a schedule as the store knows it.
type ScheduleState struct {
	ScheduleInfo
	// Paused: ticks are claimed without a run until it is resumed.
	Paused bool
	// Created is when the schedule was first registered: no tick at or
	// before it runs.
	Created time.Time
	// LastTick is the latest tick claimed (run, skipped or paused).
	LastTick time.Time
	// LastUnit is the run of the latest tick that ran ("" if none yet), and
	// LastFired the time it was submitted.
	LastUnit  string
	LastFired time.Time
	// LastStatus is the status of LastUnit's root (0 once it has expired).
	LastStatus Status
	// Fired counts the ticks that ran; Skipped those claimed without a run
	// because the previous run was still going (paused ticks and ticks
	// nobody claimed are not counted).
	Fired, Skipped int64
	// Seen is the last time a process registered or ticked it.
	Seen time.Time
}

// Tick asks for one tick of a schedule to be fired.
type Tick struct {
	// Info is written to the schedule's record whatever the outcome; its
	// Next is the tick after At.
	Info ScheduleInfo
	// At is the tick's instant.
	At time.Time
	// Overlap: run even if the schedule's previous run has not finished
	// (otherwise the tick is skipped).
	Overlap bool
	// Run is the root submission of the tick's run. Its Ref is set by
	// FireTick (TickUnit of the schedule and At, path RootPath), so callers
	// fill in the rest: Name (Info.Workflow), Lane, Args and Opts.
	Run Submission
}

// TickOutcome says what FireTick did.
type TickOutcome uint8

const (
	// TickFired: this call claimed the tick and submitted its run.
	TickFired TickOutcome = 1
	// TickTaken: the tick (or a later one) was claimed already, by another
	// process or before the schedule existed; nothing changed.
	TickTaken TickOutcome = 2
	// TickPaused: the schedule is paused; the tick is claimed, nothing runs.
	TickPaused TickOutcome = 3
	// TickOverlap: the previous run has not finished and Overlap is off; the
	// tick is claimed and skipped.
	TickOverlap TickOutcome = 4
)

func (o TickOutcome) String() string {
	switch o {
	case TickFired:
		return "fired"
	case TickTaken:
		return "taken"
	case TickPaused:
		return "paused"
	case TickOverlap:
		return "overlap"
	}
	return fmt.Sprintf("tick_outcome(%d)", uint8(o))
}

// TickResult is what FireTick reports.
type TickResult struct {
	Outcome TickOutcome
	// Prev is the latest tick claimed before this call (zero: none), so
	// that the caller that fired can tell which ticks went unclaimed.
	Prev time.Time
	// Unit is the run: the one submitted (TickFired) or the one still
	// running (TickOverlap).
	Unit string
}

// Scheduler is the store's half of schedules. Both drivers implement it and
// pass the conformance suite's schedule scenarios.
type Scheduler interface {
	// RegisterSchedule creates the schedule's record (Created is now) or
	// updates its info, keeping its state; it returns the state.
	RegisterSchedule(ctx context.Context, info ScheduleInfo) (ScheduleState, error)

	// FireTick claims the tick t.At of t.Info.Name and, unless the schedule
	// is paused or its previous run is still going without t.Overlap,
	// submits t.Run, all as one atomic step: of any number of
	// concurrent calls for one tick exactly one claims it, and a claimed
	// tick's run exists. A tick at or before the latest claimed one, or at
	// or before the schedule's creation, is TickTaken. An unregistered
	// schedule is registered first.
	FireTick(ctx context.Context, t Tick) (TickResult, error)

	// PauseSchedule pauses or resumes a schedule and returns its state;
	// ErrNotFound if no process registered it (or it expired).
	PauseSchedule(ctx context.Context, name string, paused bool) (ScheduleState, error)

	// Schedules lists the schedules of the namespace by name.
	Schedules(ctx context.Context) ([]ScheduleState, error)
}

// ValidScheduleName reports, wrapping ErrInvalid, a name that is empty, too
// long, or has a character other than ASCII letters, digits, '_', '-' and
// '.' (it becomes part of run ids and keys).
func ValidScheduleName(name string) error {
	if name == "" || len(name) > MaxScheduleName {
		return fmt.Errorf("%w: a schedule name has 1 to %d characters, got %q", ErrInvalid, MaxScheduleName, name)
	}
	for _, c := range name {
		ok := c == '_' || c == '-' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if !ok {
			return fmt.Errorf("%w: schedule name %q: only letters, digits, '_', '-' and '.'", ErrInvalid, name)
		}
	}
	return nil
}

// Validate reports, wrapping ErrInvalid, an invalid name or a missing
// workflow: drivers call it for every registration and tick.
func (i ScheduleInfo) Validate() error {
	if err := ValidScheduleName(i.Name); err != nil {
		return err
	}
	if i.Workflow == "" {
		return fmt.Errorf("%w: schedule %s names no workflow", ErrInvalid, i.Name)
	}
	return nil
}

// TickUnit is the unit id of a schedule's run for one tick:
// "<name>@<UTC time>", e.g. "report@20300102T030000Z" (milliseconds
// appear when the tick has them: "beat@20300102T030000.5Z").
func TickUnit(name string, at time.Time) string {
	return name + "@" + at.UTC().Format("20060102T150405.999Z")
}

// Prepare validates t and sets its run's Ref: drivers call it first.
func (t *Tick) Prepare() error {
	if err := ValidScheduleName(t.Info.Name); err != nil {
		return err
	}
	if t.At.IsZero() || t.At.UnixMilli() <= 0 {
		return fmt.Errorf("%w: schedule %s: tick has no time", ErrInvalid, t.Info.Name)
	}
	if t.Info.Workflow == "" || t.Run.Name != t.Info.Workflow {
		return fmt.Errorf("%w: schedule %s: its run is %q, its workflow %q", ErrInvalid, t.Info.Name, t.Run.Name, t.Info.Workflow)
	}
	t.At = t.At.Truncate(time.Millisecond)
	t.Run.Ref = Ref{Unit: TickUnit(t.Info.Name, t.At), Path: RootPath}
	t.Run.Parent, t.Run.Depth, t.Run.Inbox = "", 0, ""
	return t.Run.Validate()
}
