package optimizer

import "math"

// MaxUrgency caps every urgency: a lane with work and no worker (which has
// no finite urgency) scores it, and records stay finite for JSON.
const MaxUrgency = 1000.0

// LaneReport is one lane's observation, smoothed rates and score as a
// decision saw them. Times are in seconds and rates per second, the units
// charts want.
type LaneReport struct {
	Workers          int     `json:"workers" msgpack:"workers"`
	Slots            int     `json:"slots" msgpack:"slots"`
	Depth            int     `json:"depth" msgpack:"depth"`
	OldestAgeSeconds float64 `json:"oldest_age_s" msgpack:"oldest_age_s"`
	Running          int     `json:"running" msgpack:"running"`
	ArrivalRate      float64 `json:"arrival_rate" msgpack:"arrival_rate"`
	CompletionRate   float64 `json:"completion_rate" msgpack:"completion_rate"`
	// ServiceSeconds is the estimated mean time a task holds a slot (0:
	// unknown yet).
	ServiceSeconds float64 `json:"service_s" msgpack:"service_s"`
	// Utilisation, DrainSeconds and Urgency are the terms of the score
	// (see score).
	Utilisation  float64 `json:"utilisation" msgpack:"utilisation"`
	DrainSeconds float64 `json:"drain_s" msgpack:"drain_s"`
	Urgency      float64 `json:"urgency" msgpack:"urgency"`
}

// score rates how badly a lane needs workers. For a lane of W workers with
// `slots` concurrent tasks each, smoothed arrival rate λ, completion rate μ
// and mean service time S (the time a task holds a slot), depth q and
// oldest age A:
//
//	c = W·slots / S          completions per second with every slot busy
//	u = max(λ, μ) / c
//	D = max(q / c, A)
//	U = u + D / Horizon
//
// u is utilisation: 1 when capacity just matches demand, above 1 when work
// arrives faster than the lane can do it. μ stands in for λ when it is
// higher, because a lane draining a backlog is fully busy though arrivals
// have stopped (μ/c is the busy fraction: μ·S tasks are in service on
// average, by Little's law). D is the backlog in seconds: the time to
// drain the queue at full capacity, or the age of the oldest task when
// that is longer. Dividing by the horizon puts waiting work in the same
// units as utilisation. Until S is known (the lane has completed nothing
// yet) u is the running count over the slots and D the oldest age, which
// is what shows a lane that is stuck or has just been given work.
//
// Measuring capacity through S rather than through μ makes it independent
// of how many workers the lane has and of how busy they are, and it
// includes whatever slows a task down (an event loop short of CPU, cores
// shared with other workers), so the score reflects what a worker in
// this lane really achieves.
//
// Both terms are inversely proportional to W, so U·W estimates the number
// of workers the lane needs and U·W/(W+k) the urgency it would have with k
// more. Moving workers to the more urgent lane until no move can keep the
// order of the two (see Decide) therefore shares workers in proportion to
// need: a lane that keeps up gets what it uses, and when both lanes are
// behind, their backlogs drain in about the same time, which for a fixed
// amount of work is the mix that finishes soonest.
func score(cfg Config, r LaneRates, o LaneObservation) LaneReport {
	rep := LaneReport{
		Workers:          o.Workers,
		Slots:            o.slots(),
		Depth:            o.Depth,
		OldestAgeSeconds: o.OldestAge.Seconds(),
		Running:          o.Running,
		ArrivalRate:      r.ArrivalRate,
		CompletionRate:   r.CompletionRate,
		ServiceSeconds:   r.ServiceTime,
	}
	age := o.OldestAge.Seconds()
	if o.Workers == 0 {
		// Nothing can be said about a lane without workers except whether
		// it has work, and work without workers never finishes.
		if o.Depth > 0 || o.Running > 0 || r.ArrivalRate > 0 {
			rep.Utilisation, rep.DrainSeconds, rep.Urgency = MaxUrgency, age, MaxUrgency
		}
		return rep
	}
	slots := float64(o.Workers * o.slots())
	util := r.Running / slots
	drain := age
	if r.ServiceTime > 0 {
		capacity := slots / r.ServiceTime
		util = max(r.ArrivalRate, r.CompletionRate) / capacity
		drain = max(float64(o.Depth)/capacity, age)
	}
	horizon := cfg.Horizon.Seconds()
	rep.Utilisation = finite(util, MaxUrgency)
	rep.DrainSeconds = finite(drain, MaxUrgency*horizon)
	rep.Urgency = finite(util+drain/horizon, MaxUrgency)
	return rep
}

// finite caps v at limit, and NaN at 0, so that no record holds a value
// JSON cannot carry.
func finite(v, limit float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return min(v, limit)
}
