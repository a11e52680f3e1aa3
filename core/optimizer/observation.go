package optimizer

import (
	"errors"
	"fmt"
	"time"
)

// Lane names one kind of worker. The values match store.Lane's String, so
// records and metrics use the same words.
type Lane string

// The two lanes.
const (
	Async    Lane = "async"
	Blocking Lane = "blocking"
)

// lanes fixes the order in which both lanes are visited, so that every
// computation (and its ties) is deterministic.
var lanes = [2]Lane{Async, Blocking}

// other is the lane that is not l.
func (l Lane) other() Lane {
	if l == Async {
		return Blocking
	}
	return Async
}

// Mix is a number of workers per lane.
type Mix struct {
	Async    int `json:"async" msgpack:"async"`
	Blocking int `json:"blocking" msgpack:"blocking"`
}

// Total is the number of workers in both lanes.
func (m Mix) Total() int { return m.Async + m.Blocking }

// Of is the number of workers in lane l.
func (m Mix) Of(l Lane) int {
	if l == Async {
		return m.Async
	}
	return m.Blocking
}

// with returns m with lane l set to n workers.
func (m Mix) with(l Lane, n int) Mix {
	if l == Async {
		m.Async = n
	} else {
		m.Blocking = n
	}
	return m
}

func (m Mix) String() string { return fmt.Sprintf("%d async + %d blocking", m.Async, m.Blocking) }

// LaneObservation is what the caller measured about one lane at one tick.
type LaneObservation struct {
	// Workers is the number of workers the lane has been given: the mix
	// last applied, counting workers still starting and not those draining
	// to leave. It is the mix the next decision starts from.
	Workers int `json:"workers" msgpack:"workers"`
	// Slots is how many tasks one worker runs at once: async_concurrency
	// for the async lane, 1 for blocking workers. 0 counts as 1.
	Slots int `json:"slots" msgpack:"slots"`
	// Depth is the number of tasks ready to run and not yet taken.
	Depth int `json:"depth" msgpack:"depth"`
	// OldestAge is how long the oldest of them has been waiting.
	OldestAge time.Duration `json:"oldest_age" msgpack:"oldest_age"`
	// Arrived and Completed count the tasks that became ready, and that
	// finished (whatever the outcome), since the previous observation.
	Arrived   int64 `json:"arrived" msgpack:"arrived"`
	Completed int64 `json:"completed" msgpack:"completed"`
	// RunTime is the summed run time (taken to finished) of the tasks
	// counted in Completed. It gives the mean service time directly; left
	// 0, the service time is inferred from Running by Little's law, which
	// is noisier because Running is one instant's count.
	RunTime time.Duration `json:"run_time" msgpack:"run_time"`
	// Running is the number of tasks being run now.
	Running int `json:"running" msgpack:"running"`
}

// slots is Slots with its default.
func (o LaneObservation) slots() int { return max(o.Slots, 1) }

// Observation is one tick's measurement of both lanes.
type Observation struct {
	// Time is when the observation was taken. The optimizer has no clock:
	// rates and the cooldown are measured between observation times.
	Time     time.Time       `json:"time" msgpack:"time"`
	Async    LaneObservation `json:"async" msgpack:"async"`
	Blocking LaneObservation `json:"blocking" msgpack:"blocking"`
}

// Lane is the observation of lane l.
func (o Observation) Lane(l Lane) LaneObservation {
	if l == Async {
		return o.Async
	}
	return o.Blocking
}

// Mix is the observed number of workers per lane.
func (o Observation) Mix() Mix { return Mix{Async: o.Async.Workers, Blocking: o.Blocking.Workers} }

// errInvalidObservation is wrapped by every observation problem; it only
// shows in a Decision's Detail.
var errInvalidObservation = errors.New("invalid observation")

// check rejects observations no measurement can produce, and those that do
// not come after the previous one.
func (o Observation) check(st State) error {
	if o.Time.IsZero() {
		return fmt.Errorf("%w: no time", errInvalidObservation)
	}
	if st.Ticks > 0 && !o.Time.After(st.LastTick) {
		return fmt.Errorf("%w: time %s is not after the previous tick %s",
			errInvalidObservation, o.Time.Format(time.RFC3339Nano), st.LastTick.Format(time.RFC3339Nano))
	}
	for _, l := range lanes {
		lo := o.Lane(l)
		if lo.Workers < 0 || lo.Slots < 0 || lo.Depth < 0 || lo.OldestAge < 0 ||
			lo.Arrived < 0 || lo.Completed < 0 || lo.RunTime < 0 || lo.Running < 0 {
			return fmt.Errorf("%w: negative value in the %s lane: %+v", errInvalidObservation, l, lo)
		}
	}
	return nil
}
