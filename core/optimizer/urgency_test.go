package optimizer

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestScoreFormula(t *testing.T) {
	cfg := DefaultConfig() // horizon 180 s
	tests := []struct {
		name  string
		rates LaneRates
		obs   LaneObservation
		util  float64
		drain float64
	}{
		{
			// c = 4·1/2 = 2/s; u = max(3, 2)/2; D = max(20/2, 5).
			name:  "backlog drain time",
			rates: LaneRates{ArrivalRate: 3, CompletionRate: 2, ServiceTime: 2},
			obs:   LaneObservation{Workers: 4, Slots: 1, Depth: 20, OldestAge: 5 * time.Second},
			util:  1.5, drain: 10,
		},
		{
			// A lane draining a backlog with no arrivals is fully busy.
			name:  "completions stand in for arrivals",
			rates: LaneRates{ArrivalRate: 0, CompletionRate: 2, ServiceTime: 2},
			obs:   LaneObservation{Workers: 4, Slots: 1, Depth: 2},
			util:  1, drain: 1,
		},
		{
			name:  "oldest age when longer than the drain time",
			rates: LaneRates{ArrivalRate: 64, CompletionRate: 64, ServiceTime: 8},
			obs:   LaneObservation{Workers: 2, Slots: 64, Depth: 16, OldestAge: 90 * time.Second},
			util:  4, drain: 90,
		},
		{
			name:  "unknown service time: running over slots, and the age",
			rates: LaneRates{ArrivalRate: 5, Running: 3},
			obs:   LaneObservation{Workers: 4, Slots: 1, Depth: 7, OldestAge: 36 * time.Second},
			util:  0.75, drain: 36,
		},
		{
			name:  "slots default to one",
			rates: LaneRates{ArrivalRate: 1, CompletionRate: 1, ServiceTime: 1},
			obs:   LaneObservation{Workers: 2},
			util:  0.5, drain: 0,
		},
		{
			name: "idle lane",
			obs:  LaneObservation{Workers: 3, Slots: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := score(cfg, tt.rates, tt.obs)
			assert.InDelta(t, tt.util, r.Utilisation, 1e-9)
			assert.InDelta(t, tt.drain, r.DrainSeconds, 1e-9)
			assert.InDelta(t, tt.util+tt.drain/180, r.Urgency, 1e-9)
		})
	}
}

func TestScoreWithoutWorkers(t *testing.T) {
	cfg := DefaultConfig()
	assert.Equal(t, MaxUrgency, score(cfg, LaneRates{}, LaneObservation{Depth: 1}).Urgency)
	assert.Equal(t, MaxUrgency, score(cfg, LaneRates{ArrivalRate: 0.1}, LaneObservation{}).Urgency)
	assert.Zero(t, score(cfg, LaneRates{}, LaneObservation{}).Urgency)
}

func TestScoreStaysFinite(t *testing.T) {
	cfg := DefaultConfig()
	r := score(cfg, LaneRates{ArrivalRate: 1e300, CompletionRate: 1, ServiceTime: 1e300},
		LaneObservation{Workers: 1, Slots: 1, Depth: math.MaxInt, OldestAge: math.MaxInt64})
	for _, v := range []float64{r.Utilisation, r.DrainSeconds, r.Urgency} {
		assert.False(t, math.IsInf(v, 0) || math.IsNaN(v), "%v", r)
	}
	assert.Equal(t, MaxUrgency, r.Urgency)
}

func TestRatesUpdate(t *testing.T) {
	o := LaneObservation{Arrived: 60, Completed: 30, RunTime: 60 * time.Second, Running: 4}

	first := LaneRates{}.update(o, 30*time.Second, 45*time.Second, true)
	assert.InDelta(t, 2, first.ArrivalRate, 1e-12)
	assert.InDelta(t, 1, first.CompletionRate, 1e-12)
	assert.InDelta(t, 4, first.Running, 1e-12)
	assert.InDelta(t, 2, first.ServiceTime, 1e-12, "run time per completion")

	// One smoothing time later a new sample weighs 1-1/e.
	w := 1 - 1/math.E
	quiet := first.update(LaneObservation{}, 45*time.Second, 45*time.Second, false)
	assert.InDelta(t, 2*(1-w), quiet.ArrivalRate, 1e-12)
	assert.InDelta(t, 1*(1-w), quiet.CompletionRate, 1e-12)
	assert.InDelta(t, 2, quiet.ServiceTime, 1e-12, "a tick without completions keeps the estimate")

	// Without run times the service time comes from Little's law.
	little := LaneRates{}.update(LaneObservation{Completed: 60, Running: 6}, 30*time.Second, 45*time.Second, true)
	assert.InDelta(t, 3, little.ServiceTime, 1e-12)
}
