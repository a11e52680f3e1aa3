package optimizer

import (
	"math"
	"time"
)

// State is what the optimizer carries from one tick to the next. The zero
// value is the state before the first observation. It serializes (JSON,
// msgpack) so a restarted foreman can resume without re-learning the rates.
type State struct {
	// Ticks counts the observations folded in.
	Ticks int `json:"ticks" msgpack:"ticks"`
	// LastTick is the time of the previous observation.
	LastTick time.Time `json:"last_tick" msgpack:"last_tick"`
	// LastChange is when the mix last changed (zero: never), for the
	// cooldown.
	LastChange time.Time `json:"last_change" msgpack:"last_change"`
	// Informed is set once the informed start is past: the first tick with
	// rates that saw work (see Decide).
	Informed bool `json:"informed" msgpack:"informed"`
	// Changes counts the changes made.
	Changes int `json:"changes" msgpack:"changes"`
	// Mix is the mix after the latest decision. The next decision starts
	// from the observed mix instead, which is the truth if the two differ.
	Mix Mix `json:"mix" msgpack:"mix"`
	// Pending is the change proposed at the latest ticks and Confirmed how
	// many consecutive ticks have proposed it.
	Pending   Proposal `json:"pending" msgpack:"pending"`
	Confirmed int      `json:"confirmed" msgpack:"confirmed"`
	// Smoothed measurements per lane.
	Async    LaneRates `json:"async" msgpack:"async"`
	Blocking LaneRates `json:"blocking" msgpack:"blocking"`
}

// Proposal is a direction of change: which action, from which lane, to
// which. Its size is left out on purpose: a move of 2 then of 3 workers
// toward the same lane confirms one direction.
type Proposal struct {
	Action Action `json:"action,omitempty" msgpack:"action,omitempty"`
	From   Lane   `json:"from,omitempty" msgpack:"from,omitempty"`
	To     Lane   `json:"to,omitempty" msgpack:"to,omitempty"`
}

// LaneRates are the smoothed measurements of one lane.
type LaneRates struct {
	// ArrivalRate and CompletionRate are in tasks per second.
	ArrivalRate    float64 `json:"arrival_rate" msgpack:"arrival_rate"`
	CompletionRate float64 `json:"completion_rate" msgpack:"completion_rate"`
	// Running is the smoothed number of tasks running.
	Running float64 `json:"running" msgpack:"running"`
	// ServiceTime is the smoothed mean time a task occupies a slot, in
	// seconds; 0 while unknown.
	ServiceTime float64 `json:"service_time" msgpack:"service_time"`
}

// Lane is the smoothed state of lane l.
func (s State) Lane(l Lane) LaneRates {
	if l == Async {
		return s.Async
	}
	return s.Blocking
}

// setLane replaces the smoothed state of lane l.
func (s *State) setLane(l Lane, r LaneRates) {
	if l == Async {
		s.Async = r
	} else {
		s.Blocking = r
	}
}

// update folds one observation, elapsed after the previous one, into the
// moving averages. The first update takes the sample as it is.
//
// The weight of the new sample is 1-exp(-elapsed/smoothing), so that a late
// or missed tick weighs as much as the time it covers.
func (r LaneRates) update(o LaneObservation, elapsed, smoothing time.Duration, first bool) LaneRates {
	secs := elapsed.Seconds()
	alpha := 1.0
	if !first {
		alpha = -math.Expm1(-secs / smoothing.Seconds())
	}
	mix := func(old, sample float64) float64 { return old + alpha*(sample-old) }
	r.ArrivalRate = mix(r.ArrivalRate, float64(o.Arrived)/secs)
	r.CompletionRate = mix(r.CompletionRate, float64(o.Completed)/secs)
	r.Running = mix(r.Running, float64(o.Running))
	// The mean service time comes from the run times of the tasks that
	// completed, or else by Little's law (tasks in service = completion
	// rate × time in service). A tick without completions says nothing
	// about it and keeps the last estimate.
	if o.Completed == 0 {
		return r
	}
	sample := o.RunTime.Seconds() / float64(o.Completed)
	if o.RunTime == 0 {
		sample = r.Running / r.CompletionRate
	}
	if r.ServiceTime == 0 {
		r.ServiceTime = sample
	} else {
		r.ServiceTime = mix(r.ServiceTime, sample)
	}
	return r
}
