// Package optimizer decides how many workers each lane (async, blocking)
// should have. It is a pure function of configuration, state and one
// observation: no goroutines, no clock, no I/O. The foreman (and the
// embedded runtime, for its async slots and blocking threads) calls Decide
// every optimization_interval, applies the decision's After mix, keeps the
// returned State for the next call and records the Decision.
//
// See score for how urgency is computed and Decide for the rules that turn
// it into changes.
package optimizer

import (
	"fmt"
	"math"
	"time"
)

// Decide folds obs into st, scores both lanes and decides the mix to run.
//
// The rules, tried in this order, each give the decision its Reason:
//
//  1. invalid-config, invalid-observation: hold, state unchanged.
//  2. out-of-bounds: a mix outside the bounds is corrected at once.
//  3. warmup: the first observation only starts the clock for the rates.
//  4. both-saturated / both-idle: with room between MinTotal and MaxTotal,
//     grow the more urgent lane when both score at least GrowAbove, or
//     shrink the less urgent when both score at most ShrinkBelow.
//  5. dead-band: the urgencies differ by at most DeadBand: hold.
//  6. at-bound: the more urgent lane is full or the other at its minimum.
//  7. overshoot: a lane of urgency U with W workers would, with W' workers,
//     score about U·W/W' (both terms of the score scale as 1/W). The move
//     is the largest k that leaves the receiving lane at least as urgent as
//     the giving one: it goes to the balance point, so it is many workers
//     when the mix is far from what the load needs and one when it is
//     close. If not even k = 1 does, hold. This is what keeps the mix from
//     flapping: right after a move the dead band cannot be crossed the
//     other way unless the load itself changed.
//  8. small-gain: that move must lower the higher urgency by MinGain.
//  9. informed-start: the first tick with rates that sees work (tasks
//     arriving, queued or running), outside a cooldown, makes the change
//     rules 4 to 8 propose at once, without confirmation; a lane still
//     holding most of the tasks it took is scored by what it will hold one
//     window later (see ahead). After that tick, whatever it decided, the
//     rules below apply.
//  10. confirming: a change (rule 4, or 7 and 8) is only made once the same
//     direction has been proposed on ConfirmTicks consecutive ticks; any
//     tick that proposes something else, or nothing, starts the count over.
//  11. cooldown: nor within Cooldown of the previous change (the count of
//     confirmations goes on meanwhile).
//  12. more-urgent (or both-saturated / both-idle): the change is made.
func Decide(cfg Config, st State, obs Observation) (Decision, State) {
	mix := obs.Mix()
	d := Decision{Time: obs.Time, Action: Hold, Before: mix, After: mix, Pending: st.Pending, Confirmed: st.Confirmed}
	if err := cfg.Validate(); err != nil {
		return d.hold(ReasonInvalidConfig, err.Error()), st
	}
	if err := obs.check(st); err != nil {
		return d.hold(ReasonInvalidObservation, err.Error()), st
	}

	next := st
	next.Ticks++
	next.LastTick = obs.Time
	next.Mix = mix
	var reports [2]LaneReport
	for i, l := range lanes {
		r := st.Lane(l)
		if st.Ticks > 0 {
			r = r.update(obs.Lane(l), obs.Time.Sub(st.LastTick), cfg.Smoothing, st.Ticks == 1)
			next.setLane(l, r)
		}
		reports[i] = score(cfg, r, obs.Lane(l))
	}
	d.Async, d.Blocking = reports[0], reports[1]

	// Bounds are limits, not advice: they are enforced even before the
	// rates are known.
	if fixed := cfg.clamp(mix, d); fixed != mix {
		next.Pending, next.Confirmed = Proposal{}, 0
		return d.change(&next, Correct, "", "", fixed, ReasonOutOfBounds,
			fmt.Sprintf("%s is outside the bounds; nearest inside is %s", mix, fixed)), next
	}
	if st.Ticks == 0 {
		return d.hold(ReasonWarmup, "first observation: rates need a second one"), next
	}

	// The informed start: the first tick with rates and work is the first
	// real look at the load, and the configured starting mix is a guess.
	// Waiting ConfirmTicks from it lets a backlog build while the load is
	// plain to see, so the mix the scores call for is set at once.
	inCooldown := !st.LastChange.IsZero() && obs.Time.Sub(st.LastChange) < cfg.Cooldown
	starting := !st.Informed && !inCooldown && hasWork(d)
	if starting {
		next.Informed = true
		window := obs.Time.Sub(st.LastTick)
		d.Async = ahead(cfg, d.Async, obs.Async, window)
		d.Blocking = ahead(cfg, d.Blocking, obs.Blocking, window)
	}
	p, after, reason, detail := cfg.propose(mix, d)
	if starting && p.Action != Hold {
		next.Pending, next.Confirmed = Proposal{}, 0
		return d.change(&next, p.Action, p.From, p.To, after, ReasonInformedStart, "first look at the load: "+detail), next
	}
	if p.Action == Hold {
		next.Pending, next.Confirmed = Proposal{}, 0
		d.Pending, d.Confirmed = next.Pending, 0
		return d.hold(reason, detail), next
	}
	if p == st.Pending {
		next.Confirmed = st.Confirmed + 1
	} else {
		next.Pending, next.Confirmed = p, 1
	}
	d.Pending, d.Confirmed = next.Pending, next.Confirmed
	if next.Confirmed < cfg.ConfirmTicks {
		return d.hold(ReasonConfirming, fmt.Sprintf("%s (%d of %d ticks): %s",
			p, next.Confirmed, cfg.ConfirmTicks, detail)), next
	}
	if since := obs.Time.Sub(st.LastChange); !st.LastChange.IsZero() && since < cfg.Cooldown {
		return d.hold(ReasonCooldown, fmt.Sprintf("%s confirmed, but the last change was %s ago (cooldown %s): %s",
			p, since, cfg.Cooldown, detail)), next
	}
	next.Pending, next.Confirmed = Proposal{}, 0
	return d.change(&next, p.Action, p.From, p.To, after, reason, detail), next
}

// hold completes d as a decision to keep the mix.
func (d Decision) hold(reason Reason, detail string) Decision {
	d.Action, d.Reason, d.Detail = Hold, reason, detail
	return d
}

// change completes d as a change to mix after and records it in next.
func (d Decision) change(next *State, action Action, from, to Lane, after Mix, reason Reason, detail string) Decision {
	d.Action, d.From, d.To, d.After, d.Reason, d.Detail = action, from, to, after, reason, detail
	d.Count = abs(after.Async-d.Before.Async) + abs(after.Blocking-d.Before.Blocking)
	if action == Move {
		d.Count = abs(after.Async - d.Before.Async)
	}
	d.Pending, d.Confirmed = Proposal{}, 0
	next.Mix = after
	next.LastChange = d.Time
	next.Changes++
	return d
}

func (p Proposal) String() string {
	switch p.Action {
	case Move:
		return fmt.Sprintf("move %s→%s", p.From, p.To)
	case Grow:
		return fmt.Sprintf("grow %s", p.To)
	case Shrink:
		return fmt.Sprintf("shrink %s", p.From)
	}
	return string(p.Action)
}

// clamp returns the mix nearest to m within the bounds: each lane within
// its own bounds, then the total brought within its bounds by taking from
// the less urgent lane first (or giving to the more urgent one).
func (c Config) clamp(m Mix, d Decision) Mix {
	m.Async = min(max(m.Async, c.MinAsync), c.MaxAsync)
	m.Blocking = min(max(m.Blocking, c.MinBlocking), c.MaxBlocking)
	hi, lo := ranked(d)
	for _, l := range [2]Lane{lo, hi} {
		if extra := m.Total() - c.MaxTotal; extra > 0 {
			m = m.with(l, m.Of(l)-min(extra, m.Of(l)-c.floor(l)))
		}
	}
	for _, l := range [2]Lane{hi, lo} {
		if short := c.MinTotal - m.Total(); short > 0 {
			m = m.with(l, m.Of(l)+min(short, c.ceiling(l)-m.Of(l)))
		}
	}
	return m
}

// propose applies rules 4 to 8 to a mix within the bounds: the change the
// scores call for, the mix it leads to, and why; or Hold and why not.
func (c Config) propose(m Mix, d Decision) (Proposal, Mix, Reason, string) {
	hi, lo := ranked(d)
	uHi, uLo := d.Lane(hi).Urgency, d.Lane(lo).Urgency
	scores := fmt.Sprintf("urgency %s %.3g, %s %.3g", hi, uHi, lo, uLo)

	if total := m.Total(); total < c.MaxTotal && uLo >= c.GrowAbove {
		for _, l := range [2]Lane{hi, lo} {
			if k := min(c.Step, c.MaxTotal-total, c.ceiling(l)-m.Of(l)); k > 0 {
				return Proposal{Action: Grow, To: l}, m.with(l, m.Of(l)+k), ReasonBothSaturated,
					fmt.Sprintf("%s, both at least %.3g: %d more %s", scores, c.GrowAbove, k, l)
			}
		}
	}
	if total := m.Total(); total > c.MinTotal && uHi <= c.ShrinkBelow {
		for _, l := range [2]Lane{lo, hi} {
			if k := min(c.Step, total-c.MinTotal, m.Of(l)-c.floor(l)); k > 0 {
				return Proposal{Action: Shrink, From: l}, m.with(l, m.Of(l)-k), ReasonBothIdle,
					fmt.Sprintf("%s, both at most %.3g: %d fewer %s", scores, c.ShrinkBelow, k, l)
			}
		}
	}
	if uHi-uLo <= c.DeadBand {
		return Proposal{Action: Hold}, m, ReasonDeadBand,
			fmt.Sprintf("%s differ by %.3g, within the dead band %.3g", scores, uHi-uLo, c.DeadBand)
	}
	room := min(c.ceiling(hi)-m.Of(hi), m.Of(lo)-c.floor(lo))
	if room <= 0 {
		return Proposal{Action: Hold}, m, ReasonAtBound,
			fmt.Sprintf("%s, but %s has %d of at most %d and %s %d of at least %d",
				scores, hi, m.Of(hi), c.ceiling(hi), lo, m.Of(lo), c.floor(lo))
	}
	if m.Of(hi) == 0 {
		// A lane with work and no workers has no rates to predict from:
		// it gets one worker, and its next scores tell how many more.
		return Proposal{Action: Move, From: lo, To: hi}, m.with(hi, 1).with(lo, m.Of(lo)-1), ReasonMoreUrgent,
			fmt.Sprintf("%s: %s has work and no workers, move 1", scores, hi)
	}
	// The move goes all the way to the balance point, so its size follows
	// the distance: many workers when the lanes are far apart, one when
	// they are close. Not a worker past it, or the next tick would move
	// it back.
	for k := room; k >= 1; k-- {
		after := m.with(hi, m.Of(hi)+k).with(lo, m.Of(lo)-k)
		pHi, pLo := predict(d.Lane(hi), m.Of(hi), after.Of(hi)), predict(d.Lane(lo), m.Of(lo), after.Of(lo))
		if pHi < pLo {
			continue
		}
		predicted := fmt.Sprintf("move %d: predicted %s %.3g, %s %.3g", k, hi, pHi, lo, pLo)
		if uHi-pHi < c.MinGain {
			return Proposal{Action: Hold}, m, ReasonSmallGain,
				fmt.Sprintf("%s, but %s would gain %.3g, less than %.3g", scores, predicted, uHi-pHi, c.MinGain)
		}
		return Proposal{Action: Move, From: lo, To: hi}, after, ReasonMoreUrgent, scores + ": " + predicted
	}
	return Proposal{Action: Hold}, m, ReasonOvershoot,
		fmt.Sprintf("%s, but one worker moved would give %s %.3g and %s %.3g", scores,
			hi, predict(d.Lane(hi), m.Of(hi), m.Of(hi)+1), lo, predict(d.Lane(lo), m.Of(lo), m.Of(lo)-1))
}

// ahead is r as the informed start scores it. A lane that finished fewer
// than a quarter as many tasks in the window as it has running holds its
// tasks longer than the window, and the few that did finish are the short
// ones: its service time, and with it its utilisation, is underestimated
// (at the start of a steady I/O load, by about half). Its utilisation is
// then taken as at least the share of its slots it will fill one window
// later if arrivals go on: the tasks running and queued now, plus what
// arrives faster than it completes. The decision reports the raised
// figures, so its record shows what the move was based on.
func ahead(cfg Config, r LaneReport, o LaneObservation, window time.Duration) LaneReport {
	if r.Workers == 0 || 4*o.Completed >= int64(o.Running) {
		return r
	}
	slots := float64(r.Workers * r.Slots)
	held := float64(o.Running+o.Depth) + max(0, r.ArrivalRate-r.CompletionRate)*window.Seconds()
	if u := held / slots; u > r.Utilisation {
		r.Utilisation = finite(u, MaxUrgency)
		r.Urgency = finite(u+r.DrainSeconds/cfg.Horizon.Seconds(), MaxUrgency)
	}
	return r
}

// hasWork reports whether either lane has anything to do: tasks arriving,
// queued or running.
func hasWork(d Decision) bool {
	for _, r := range [2]LaneReport{d.Async, d.Blocking} {
		if r.Depth > 0 || r.Running > 0 || r.ArrivalRate > 0 {
			return true
		}
	}
	return false
}

// predict is the urgency a lane scored r with w > 0 workers would have
// with n: both terms of the score scale as 1/workers. A lane left with no
// workers and some urgency would be starved.
func predict(r LaneReport, w, n int) float64 {
	switch {
	case n == 0 && r.Urgency > 0:
		return math.Inf(1)
	case n == 0:
		return 0
	}
	return r.Urgency * float64(w) / float64(n)
}

// ranked returns the more urgent lane first; on a tie, async first, so
// that decisions do not depend on anything but the numbers.
func ranked(d Decision) (hi, lo Lane) {
	if d.Blocking.Urgency > d.Async.Urgency {
		return Blocking, Async
	}
	return Async, Blocking
}

// floor is lane l's minimum.
func (c Config) floor(l Lane) int {
	if l == Async {
		return c.MinAsync
	}
	return c.MinBlocking
}

// ceiling is lane l's maximum.
func (c Config) ceiling(l Lane) int {
	if l == Async {
		return c.MaxAsync
	}
	return c.MaxBlocking
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
