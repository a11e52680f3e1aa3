package optimizer

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

const tick = 30 * time.Second

// load describes a lane by what it should score: with no backlog, the
// urgency is arrive·service / (workers·slots).
type load struct {
	workers, slots int
	depth          int
	age            time.Duration
	arrive         float64 // tasks per second
	service        float64 // seconds per task
}

// obs is what a foreman would observe over one tick of a lane under l,
// with completions keeping up with arrivals.
func (l load) obs() LaneObservation {
	n := int64(math.Round(l.arrive * tick.Seconds()))
	return LaneObservation{
		Workers:   l.workers,
		Slots:     l.slots,
		Depth:     l.depth,
		OldestAge: l.age,
		Arrived:   n,
		Completed: n,
		RunTime:   time.Duration(float64(n) * l.service * float64(time.Second)),
		Running:   int(math.Round(l.arrive * l.service)),
	}
}

func asyncLoad(workers int, arrive float64) load {
	return load{workers: workers, slots: 64, arrive: arrive, service: 8}
}

func blockingLoad(workers int, arrive float64) load {
	return load{workers: workers, slots: 1, arrive: arrive, service: 1}
}

// second is the state after a first observation at t0 and the second
// observation, one tick later: the first whose rates count, and they are
// taken as they are, so the scores are exact. The informed start is
// marked past, so that each rule decides alone; TestDecideInformedStart
// covers the start.
func second(a, b load) (State, Observation) {
	return State{Ticks: 1, LastTick: t0, Mix: Mix{Async: a.workers, Blocking: b.workers}, Informed: true},
		Observation{Time: t0.Add(tick), Async: a.obs(), Blocking: b.obs()}
}

// immediate is a config for 16 workers that acts on the first proposal, so
// that the rule under test decides alone.
func immediate() Config {
	cfg := DefaultConfig().WithTotal(16, 16)
	cfg.ConfirmTicks = 1
	return cfg
}

func TestDecideRules(t *testing.T) {
	tests := []struct {
		name   string
		cfg    func() Config
		a, b   load
		action Action
		reason Reason
		after  Mix
		from   Lane
		to     Lane
	}{
		{
			// Needs 12 and 0.8 workers: far from 8+8, so the move is large.
			name: "more urgent lane gets workers up to the balance point",
			cfg:  immediate, a: asyncLoad(8, 96), b: blockingLoad(8, 0.8),
			action: Move, reason: ReasonMoreUrgent, after: Mix{15, 1}, from: Blocking, to: Async,
		},
		{
			// Needs 8 and 4.4 workers: near 8+8, so the move is small.
			name: "move cut short where more would overshoot",
			cfg:  immediate, a: asyncLoad(8, 64), b: blockingLoad(8, 4.4),
			action: Move, reason: ReasonMoreUrgent, after: Mix{10, 6}, from: Blocking, to: Async,
		},
		{
			name: "move toward the blocking lane",
			cfg:  immediate, a: asyncLoad(8, 8), b: blockingLoad(8, 12),
			action: Move, reason: ReasonMoreUrgent, after: Mix{2, 14}, from: Async, to: Blocking,
		},
		{
			name: "backlog makes a lane urgent",
			cfg:  immediate, a: asyncLoad(8, 32), b: load{workers: 8, slots: 1, arrive: 4, service: 1, depth: 800, age: 120 * time.Second},
			action: Move, reason: ReasonMoreUrgent, after: Mix{5, 11}, from: Async, to: Blocking,
		},
		{
			name: "dead band",
			cfg:  immediate, a: asyncLoad(8, 32), b: blockingLoad(8, 5.6),
			action: Hold, reason: ReasonDeadBand, after: Mix{8, 8},
		},
		{
			name: "at bound",
			cfg:  immediate, a: asyncLoad(15, 180), b: blockingLoad(1, 0.1),
			action: Hold, reason: ReasonAtBound, after: Mix{15, 1},
		},
		{
			name: "overshoot",
			cfg:  immediate, a: asyncLoad(14, 89.6), b: blockingLoad(2, 1),
			action: Hold, reason: ReasonOvershoot, after: Mix{14, 2},
		},
		{
			name: "small gain",
			cfg:  immediate, a: asyncLoad(14, 90.8), b: blockingLoad(2, 0.7),
			action: Hold, reason: ReasonSmallGain, after: Mix{14, 2},
		},
		{
			name: "both saturated grows the more urgent lane",
			cfg:  func() Config { c := immediate().WithTotal(8, 20); return c },
			a:    asyncLoad(8, 96), b: blockingLoad(8, 10),
			action: Grow, reason: ReasonBothSaturated, after: Mix{12, 8}, to: Async,
		},
		{
			name: "both saturated at the total moves instead",
			cfg:  immediate, a: asyncLoad(8, 128), b: blockingLoad(8, 10),
			action: Move, reason: ReasonMoreUrgent, after: Mix{9, 7}, from: Blocking, to: Async,
		},
		{
			name: "both idle shrinks the less urgent lane",
			cfg:  func() Config { return immediate().WithTotal(4, 16) },
			a:    asyncLoad(8, 2), b: blockingLoad(8, 0),
			action: Shrink, reason: ReasonBothIdle, after: Mix{8, 4}, from: Blocking,
		},
		{
			name: "both idle at the floor holds",
			cfg:  immediate, a: asyncLoad(8, 2), b: blockingLoad(8, 0),
			action: Hold, reason: ReasonDeadBand, after: Mix{8, 8},
		},
		{
			name: "a lane with work and no workers gets one",
			cfg: func() Config {
				c := immediate()
				c.MinBlocking = 0
				return c.WithTotal(16, 16)
			},
			a: asyncLoad(16, 8), b: load{workers: 0, slots: 1, depth: 5, age: 10 * time.Second},
			action: Move, reason: ReasonMoreUrgent, after: Mix{15, 1}, from: Async, to: Blocking,
		},
		{
			name: "lane above its maximum is corrected",
			cfg:  immediate, a: asyncLoad(16, 8), b: blockingLoad(0, 0),
			action: Correct, reason: ReasonOutOfBounds, after: Mix{15, 1},
		},
		{
			name: "total above the maximum sheds the less urgent lane",
			cfg:  func() Config { return immediate().WithTotal(12, 12) },
			a:    asyncLoad(8, 64), b: blockingLoad(8, 1),
			action: Correct, reason: ReasonOutOfBounds, after: Mix{8, 4},
		},
		{
			name: "total below the minimum grows the more urgent lane",
			cfg:  immediate, a: asyncLoad(4, 8), b: blockingLoad(4, 3.9),
			action: Correct, reason: ReasonOutOfBounds, after: Mix{4, 12},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg()
			require.NoError(t, cfg.Validate())
			st, obs := second(tt.a, tt.b)
			d, next := Decide(cfg, st, obs)
			assert.Equal(t, tt.reason, d.Reason, d.Detail)
			assert.Equal(t, tt.action, d.Action, d.Detail)
			assert.Equal(t, tt.after, d.After, d.Detail)
			assert.Equal(t, tt.from, d.From)
			assert.Equal(t, tt.to, d.To)
			assert.Equal(t, obs.Mix(), d.Before)
			assert.Equal(t, tt.after, next.Mix)
			assert.Equal(t, 2, next.Ticks)
			assert.Equal(t, obs.Time, next.LastTick)
			assert.NotEmpty(t, d.Detail)
			if tt.action == Hold {
				assert.Zero(t, d.Count)
				assert.Zero(t, next.Changes)
				assert.True(t, next.LastChange.IsZero())
				assert.False(t, d.Changed())
			} else {
				assert.Positive(t, d.Count)
				assert.Equal(t, 1, next.Changes)
				assert.Equal(t, obs.Time, next.LastChange)
				assert.True(t, d.Changed())
			}
		})
	}
}

func TestDecideMoveCountsWorkersMoved(t *testing.T) {
	st, obs := second(asyncLoad(8, 96), blockingLoad(8, 0.8))
	d, _ := Decide(immediate(), st, obs)
	require.Equal(t, Move, d.Action)
	assert.Equal(t, 7, d.Count)
}

func TestDecideWarmup(t *testing.T) {
	obs := Observation{Time: t0, Async: asyncLoad(8, 96).obs(), Blocking: blockingLoad(8, 1).obs()}
	d, next := Decide(immediate(), State{}, obs)
	assert.Equal(t, Hold, d.Action)
	assert.Equal(t, ReasonWarmup, d.Reason)
	assert.Equal(t, 1, next.Ticks)
	assert.Equal(t, t0, next.LastTick)
	assert.Equal(t, Mix{8, 8}, next.Mix)
	assert.Zero(t, next.Async.ArrivalRate, "the first tick's counts have no interval to divide by")
}

func TestDecideInvalidInputsKeepTheState(t *testing.T) {
	st, obs := second(asyncLoad(8, 96), blockingLoad(8, 0.8))
	bad := immediate()
	bad.Step = 0
	tests := []struct {
		name   string
		cfg    Config
		obs    func(Observation) Observation
		reason Reason
		detail string
	}{
		{"invalid config", bad, func(o Observation) Observation { return o }, ReasonInvalidConfig, "step 0"},
		{"negative depth", immediate(), func(o Observation) Observation { o.Blocking.Depth = -1; return o },
			ReasonInvalidObservation, "negative value in the blocking lane"},
		{"negative run time", immediate(), func(o Observation) Observation { o.Async.RunTime = -time.Second; return o },
			ReasonInvalidObservation, "negative value in the async lane"},
		{"time not after the last tick", immediate(), func(o Observation) Observation { o.Time = t0; return o },
			ReasonInvalidObservation, "not after the previous tick"},
		{"no time", immediate(), func(o Observation) Observation { o.Time = time.Time{}; return o },
			ReasonInvalidObservation, "no time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, next := Decide(tt.cfg, st, tt.obs(obs))
			assert.Equal(t, Hold, d.Action)
			assert.Equal(t, tt.reason, d.Reason)
			assert.Contains(t, d.Detail, tt.detail)
			assert.Equal(t, st, next)
			assert.Equal(t, d.Before, d.After)
		})
	}
}

func TestDecideNeedsConfirmation(t *testing.T) {
	cfg := immediate()
	cfg.ConfirmTicks = 2
	a, b := asyncLoad(8, 96), blockingLoad(8, 0.8)
	st, obs := second(a, b)

	d, st := Decide(cfg, st, obs)
	assert.Equal(t, Hold, d.Action)
	assert.Equal(t, ReasonConfirming, d.Reason)
	want := Proposal{Action: Move, From: Blocking, To: Async}
	assert.Equal(t, want, st.Pending)
	assert.Equal(t, 1, st.Confirmed)
	assert.Equal(t, want, d.Pending)
	assert.Equal(t, 1, d.Confirmed)

	obs.Time = obs.Time.Add(tick)
	d, st = Decide(cfg, st, obs)
	assert.Equal(t, Move, d.Action)
	assert.Equal(t, ReasonMoreUrgent, d.Reason)
	assert.Equal(t, Mix{15, 1}, d.After)
	assert.Equal(t, Proposal{}, st.Pending, "a change clears the proposal")
	assert.Zero(t, st.Confirmed)
}

func TestDecideConfirmationStartsOverOnAnotherDirection(t *testing.T) {
	cfg := immediate()
	cfg.ConfirmTicks = 2
	st, obs := second(asyncLoad(8, 96), blockingLoad(8, 0.8))
	st.Pending, st.Confirmed = Proposal{Action: Move, From: Async, To: Blocking}, 1
	d, next := Decide(cfg, st, obs)
	assert.Equal(t, ReasonConfirming, d.Reason)
	assert.Equal(t, Proposal{Action: Move, From: Blocking, To: Async}, next.Pending)
	assert.Equal(t, 1, next.Confirmed)
}

func TestDecideHoldClearsTheProposal(t *testing.T) {
	cfg := immediate()
	cfg.ConfirmTicks = 2
	st, obs := second(asyncLoad(8, 32), blockingLoad(8, 5.6))
	st.Pending, st.Confirmed = Proposal{Action: Move, From: Async, To: Blocking}, 1
	d, next := Decide(cfg, st, obs)
	assert.Equal(t, ReasonDeadBand, d.Reason)
	assert.Equal(t, Proposal{}, next.Pending)
	assert.Zero(t, next.Confirmed)
	assert.Equal(t, Proposal{}, d.Pending)
}

func TestDecideCooldown(t *testing.T) {
	cfg := immediate()
	st, obs := second(asyncLoad(8, 96), blockingLoad(8, 0.8))
	st.LastChange, st.Changes = t0, 1 // 30 s before obs, cooldown 60 s
	d, next := Decide(cfg, st, obs)
	assert.Equal(t, Hold, d.Action)
	assert.Equal(t, ReasonCooldown, d.Reason)
	assert.Contains(t, d.Detail, "30s ago")
	assert.Equal(t, 1, next.Confirmed, "confirmations keep counting during the cooldown")
	assert.Equal(t, 1, next.Changes)

	// At the cooldown's end the confirmed move is made.
	obs.Time = obs.Time.Add(tick)
	d, next = Decide(cfg, next, obs)
	assert.Equal(t, Move, d.Action)
	assert.Equal(t, 2, next.Changes)
}

func TestDecideCorrectionIgnoresConfirmationAndCooldown(t *testing.T) {
	cfg := immediate()
	cfg.ConfirmTicks = 3
	st, obs := second(asyncLoad(16, 8), blockingLoad(0, 0))
	st.LastChange = t0
	d, _ := Decide(cfg, st, obs)
	assert.Equal(t, Correct, d.Action)
	assert.Equal(t, ReasonOutOfBounds, d.Reason)
	assert.Equal(t, Mix{15, 1}, d.After)
	assert.Equal(t, 2, d.Count)
}

func TestDecideIsDeterministic(t *testing.T) {
	cfg := DefaultConfig().WithTotal(16, 16)
	st, obs := second(asyncLoad(8, 96), blockingLoad(8, 0.8))
	d1, s1 := Decide(cfg, st, obs)
	d2, s2 := Decide(cfg, st, obs)
	assert.Equal(t, d1, d2)
	assert.Equal(t, s1, s2)
}

func TestDecideSettlesOnASteadyLoad(t *testing.T) {
	// Feeding the same load tick after tick moves workers toward the busy
	// lane, then stops for good.
	cfg := DefaultConfig().WithTotal(16, 16)
	mix := Mix{8, 8}
	var st State
	var changes []time.Time
	for i := range 60 {
		now := t0.Add(time.Duration(i) * tick)
		a, b := asyncLoad(mix.Async, 90), blockingLoad(mix.Blocking, 1)
		d, next := Decide(cfg, st, Observation{Time: now, Async: a.obs(), Blocking: b.obs()})
		st, mix = next, d.After
		if d.Changed() {
			changes = append(changes, now)
		}
	}
	require.NotEmpty(t, changes)
	assert.Less(t, changes[len(changes)-1].Sub(t0), 10*time.Minute, "changes: %v", changes)
	assert.Equal(t, Mix{14, 2}, mix)
}

func TestDecideCorrectsEvenOnTheFirstTick(t *testing.T) {
	obs := Observation{Time: t0, Async: asyncLoad(16, 8).obs(), Blocking: blockingLoad(0, 0).obs()}
	d, next := Decide(immediate(), State{}, obs)
	assert.Equal(t, ReasonOutOfBounds, d.Reason)
	assert.Equal(t, Mix{15, 1}, d.After)
	assert.Equal(t, 1, next.Ticks, "the rates' clock starts all the same")
}

// first is the state after the warmup tick at t0, before the informed
// start, and the observation one tick later.
func first(a, b load) (State, Observation) {
	st, obs := second(a, b)
	st.Informed = false
	return st, obs
}

func TestDecideInformedStart(t *testing.T) {
	// The default config wants two confirming ticks; the first look at
	// the load moves at once, and the whole way (needs: 12 and 0.8).
	cfg := DefaultConfig().WithTotal(16, 16)
	st, obs := first(asyncLoad(8, 96), blockingLoad(8, 0.8))
	d, next := Decide(cfg, st, obs)
	assert.Equal(t, ReasonInformedStart, d.Reason, d.Detail)
	assert.Equal(t, Move, d.Action)
	assert.Equal(t, Mix{15, 1}, d.After)
	assert.Equal(t, 7, d.Count)
	assert.True(t, next.Informed)
	assert.Equal(t, 1, next.Changes)
	assert.Equal(t, obs.Time, next.LastChange)

	// Once past, moves need confirming again.
	st, obs = first(asyncLoad(8, 96), blockingLoad(8, 0.8))
	st.Informed = true
	d, _ = Decide(cfg, st, obs)
	assert.Equal(t, ReasonConfirming, d.Reason)
}

func TestDecideInformedStartHoldsWhenTheMixFits(t *testing.T) {
	cfg := DefaultConfig().WithTotal(16, 16)
	st, obs := first(asyncLoad(8, 32), blockingLoad(8, 5.6))
	d, next := Decide(cfg, st, obs)
	assert.Equal(t, ReasonDeadBand, d.Reason)
	assert.True(t, next.Informed, "the first look happened; later moves are confirmed")
	assert.Zero(t, next.Changes)
}

func TestDecideInformedStartWaitsForWork(t *testing.T) {
	cfg := DefaultConfig().WithTotal(16, 16)
	st, obs := first(asyncLoad(8, 0), blockingLoad(8, 0))
	d, next := Decide(cfg, st, obs)
	assert.Equal(t, ReasonDeadBand, d.Reason)
	assert.False(t, next.Informed, "an idle start says nothing about the load")

	// The first tick with work is the informed start.
	obs = Observation{Time: obs.Time.Add(tick), Async: asyncLoad(8, 96).obs(), Blocking: blockingLoad(8, 0.8).obs()}
	d, next = Decide(cfg, next, obs)
	assert.Equal(t, ReasonInformedStart, d.Reason, d.Detail)
	assert.Equal(t, Move, d.Action)
	assert.Greater(t, d.After.Async, 8)
}

func TestDecideInformedStartKeepsTheCooldown(t *testing.T) {
	// A correction just before: the start waits for the cooldown, and
	// the normal rules decide meanwhile.
	cfg := DefaultConfig().WithTotal(16, 16)
	st, obs := first(asyncLoad(8, 96), blockingLoad(8, 0.8))
	st.LastChange, st.Changes = t0, 1 // 30 s before obs, cooldown 60 s
	d, next := Decide(cfg, st, obs)
	assert.Equal(t, ReasonConfirming, d.Reason)
	assert.False(t, next.Informed)

	obs.Time = obs.Time.Add(tick)
	d, next = Decide(cfg, next, obs)
	assert.Equal(t, ReasonInformedStart, d.Reason, d.Detail)
	assert.True(t, next.Informed)
}

func TestDecideInformedStartLooksAhead(t *testing.T) {
	// Five seconds into a load of 90 I/O tasks a second holding a slot
	// for 4-12 s (and 2 CPU tasks a second): 443 are running and one has
	// finished, after 4.4 s, so the measured service time is about half
	// the real one. The lane will hold 443 + 88.6·5 tasks a window later,
	// 1.73 times its 512 slots: taken as its utilisation, it gets 13
	// workers (it needs 12.5), where the measured service time would give
	// it 12.
	cfg := DefaultConfig().WithTotal(16, 16).ScaleToInterval(5 * time.Second)
	st := State{Ticks: 1, LastTick: t0, Mix: Mix{8, 8}}
	obs := Observation{
		Time:     t0.Add(5 * time.Second),
		Async:    LaneObservation{Workers: 8, Slots: 64, Arrived: 444, Completed: 1, RunTime: 4400 * time.Millisecond, Running: 443},
		Blocking: LaneObservation{Workers: 8, Slots: 1, Arrived: 10, Completed: 10, RunTime: 10 * time.Second, Running: 2},
	}
	d, next := Decide(cfg, st, obs)
	assert.Equal(t, ReasonInformedStart, d.Reason, d.Detail)
	assert.InDelta(t, (443+(88.8-0.2)*5)/512, d.Async.Utilisation, 1e-9)
	assert.Equal(t, Mix{13, 3}, d.After, d.Detail)
	assert.InDelta(t, 4.4, next.Async.ServiceTime, 1e-9, "the smoothed rates keep what was measured")

	// A lane that finished a quarter as many tasks as it runs is scored by
	// what it measured: here, with more finished, 12 workers.
	obs.Async.Completed = 111
	obs.Async.RunTime = 111 * 4400 * time.Millisecond
	obs.Async.Arrived = 554
	d, _ = Decide(cfg, st, obs)
	assert.InDelta(t, 110.8*4.4/512, d.Async.Utilisation, 1e-9, "a quarter of the running count finished: measured well enough")
	assert.Equal(t, Mix{12, 4}, d.After, d.Detail)
}
