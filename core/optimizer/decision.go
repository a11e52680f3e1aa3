package optimizer

import (
	"strconv"
	"time"
)

// Action is what a decision does to the mix.
type Action string

// The actions.
const (
	// Hold keeps the mix.
	Hold Action = "hold"
	// Move takes Count workers from lane From and gives them to lane To.
	Move Action = "move"
	// Grow adds Count workers to lane To.
	Grow Action = "grow"
	// Shrink removes Count workers from lane From.
	Shrink Action = "shrink"
	// Correct sets a mix that was outside the bounds to the nearest one
	// inside; the lanes may change in any direction.
	Correct Action = "correct"
)

// Reason names the rule that decided. Each rule has exactly one.
type Reason string

// The reasons, in the order the rules are tried.
const (
	// ReasonInvalidConfig: the Config fails Validate; hold.
	ReasonInvalidConfig Reason = "invalid-config"
	// ReasonInvalidObservation: a negative count, or a time not after the
	// previous tick; hold and keep the state.
	ReasonInvalidObservation Reason = "invalid-observation"
	// ReasonOutOfBounds: the observed mix breaks a bound (the bounds may
	// have changed, say with the memory); correct it at once, without
	// confirmation or cooldown, because bounds are limits, not advice.
	ReasonOutOfBounds Reason = "out-of-bounds"
	// ReasonWarmup: the first observation; rates need two ticks, hold.
	ReasonWarmup Reason = "warmup"
	// ReasonBothSaturated: both lanes at least GrowAbove and the total
	// below MaxTotal; grow the more urgent lane.
	ReasonBothSaturated Reason = "both-saturated"
	// ReasonBothIdle: both lanes at most ShrinkBelow and the total above
	// MinTotal; shrink the less urgent lane.
	ReasonBothIdle Reason = "both-idle"
	// ReasonDeadBand: the urgencies differ by no more than DeadBand; hold.
	ReasonDeadBand Reason = "dead-band"
	// ReasonAtBound: the more urgent lane is at its maximum or the other
	// at its minimum; hold.
	ReasonAtBound Reason = "at-bound"
	// ReasonOvershoot: even one worker moved would leave the receiving lane
	// less urgent than the giving one, so the next tick would move it
	// back; hold.
	ReasonOvershoot Reason = "overshoot"
	// ReasonSmallGain: the largest move that does not overshoot would
	// lower the higher urgency by less than MinGain; hold.
	ReasonSmallGain Reason = "small-gain"
	// ReasonInformedStart: the first tick with rates that sees work, and
	// the scores call for a change (a move to the balance point, however
	// far, or a grow or shrink); it is made at once, without confirmation.
	ReasonInformedStart Reason = "informed-start"
	// ReasonConfirming: a change is proposed but has not been proposed on
	// ConfirmTicks consecutive ticks yet; hold.
	ReasonConfirming Reason = "confirming"
	// ReasonCooldown: a confirmed change came within Cooldown of the last
	// change; hold (it is made at the first tick after the cooldown if it
	// is still proposed).
	ReasonCooldown Reason = "cooldown"
	// ReasonMoreUrgent: a confirmed move toward the more urgent lane.
	ReasonMoreUrgent Reason = "more-urgent"
)

// Decision is the record of one tick: what was seen, how it scored, what
// was done and why. It serializes as JSON or msgpack, and Fields flattens
// it for a Redis stream entry.
type Decision struct {
	Time   time.Time `json:"time" msgpack:"time"`
	Action Action    `json:"action" msgpack:"action"`
	// From and To are the lanes the workers leave and join (empty when not
	// applicable); Count is how many workers changed lanes or were added
	// or removed (for Correct, the sum of the changes of both lanes).
	From  Lane `json:"from,omitempty" msgpack:"from,omitempty"`
	To    Lane `json:"to,omitempty" msgpack:"to,omitempty"`
	Count int  `json:"count" msgpack:"count"`
	// Reason is the rule that decided; Detail says it with the numbers.
	Reason Reason `json:"reason" msgpack:"reason"`
	Detail string `json:"detail" msgpack:"detail"`
	// Before is the observed mix, After the one to run from now on.
	Before Mix `json:"before" msgpack:"before"`
	After  Mix `json:"after" msgpack:"after"`
	// Pending and Confirmed are the proposal waiting for confirmation after
	// this decision and how many consecutive ticks proposed it.
	Pending   Proposal `json:"pending" msgpack:"pending"`
	Confirmed int      `json:"confirmed" msgpack:"confirmed"`
	// The lanes as seen and scored.
	Async    LaneReport `json:"async" msgpack:"async"`
	Blocking LaneReport `json:"blocking" msgpack:"blocking"`
}

// Lane is the report of lane l.
func (d Decision) Lane(l Lane) LaneReport {
	if l == Async {
		return d.Async
	}
	return d.Blocking
}

// Changed reports whether the decision changes the mix.
func (d Decision) Changed() bool { return d.After != d.Before }

// Fields flattens d into string fields for XADD, one per value, so a
// dashboard can read any of them without decoding a blob. Time is in Unix
// milliseconds; lane values are prefixed with the lane name.
func (d Decision) Fields() map[string]string {
	f := map[string]string{
		"time":            strconv.FormatInt(d.Time.UnixMilli(), 10),
		"action":          string(d.Action),
		"from":            string(d.From),
		"to":              string(d.To),
		"count":           strconv.Itoa(d.Count),
		"reason":          string(d.Reason),
		"detail":          d.Detail,
		"before_async":    strconv.Itoa(d.Before.Async),
		"before_blocking": strconv.Itoa(d.Before.Blocking),
		"after_async":     strconv.Itoa(d.After.Async),
		"after_blocking":  strconv.Itoa(d.After.Blocking),
		"pending_action":  string(d.Pending.Action),
		"pending_from":    string(d.Pending.From),
		"pending_to":      string(d.Pending.To),
		"confirmed":       strconv.Itoa(d.Confirmed),
	}
	for _, l := range lanes {
		r := d.Lane(l)
		p := string(l) + "_"
		f[p+"workers"] = strconv.Itoa(r.Workers)
		f[p+"slots"] = strconv.Itoa(r.Slots)
		f[p+"depth"] = strconv.Itoa(r.Depth)
		f[p+"oldest_age_s"] = formatFloat(r.OldestAgeSeconds)
		f[p+"running"] = strconv.Itoa(r.Running)
		f[p+"arrival_rate"] = formatFloat(r.ArrivalRate)
		f[p+"completion_rate"] = formatFloat(r.CompletionRate)
		f[p+"service_s"] = formatFloat(r.ServiceSeconds)
		f[p+"utilisation"] = formatFloat(r.Utilisation)
		f[p+"drain_s"] = formatFloat(r.DrainSeconds)
		f[p+"urgency"] = formatFloat(r.Urgency)
	}
	return f
}

// formatFloat keeps 6 significant digits: charts need no more, and the
// stream entries stay short.
func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
