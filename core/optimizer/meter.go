package optimizer

import "time"

// LaneTotals is what a caller can read about one lane at any moment: the
// current mix and queue, and running totals of what finished.
type LaneTotals struct {
	Workers, Slots, Depth, Running int
	OldestAge                      time.Duration
	// Done counts finished attempts and RunSecs their summed run time,
	// since some start. After a decrease (a worker restarted) an interval
	// counts nothing finished: its share is unknown.
	Done    uint64
	RunSecs float64
}

// Meter turns running totals into the per-interval counts an Observation
// needs. Arrivals are not counted anywhere, so they are inferred: what
// finished plus what the queue grew by is what arrived.
type Meter struct {
	prev [2]LaneTotals
	seen bool
}

// Observe builds the observation at now; the first one has no counts.
func (m *Meter) Observe(now time.Time, async, blocking LaneTotals) Observation {
	obs := Observation{Time: now}
	for i, pair := range []struct {
		cur LaneTotals
		out *LaneObservation
	}{{async, &obs.Async}, {blocking, &obs.Blocking}} {
		c, lo := pair.cur, pair.out
		lo.Workers, lo.Slots, lo.Depth, lo.Running, lo.OldestAge = c.Workers, c.Slots, c.Depth, c.Running, c.OldestAge
		if m.seen {
			p := m.prev[i]
			if c.Done >= p.Done {
				lo.Completed = int64(c.Done - p.Done)
				lo.RunTime = time.Duration((c.RunSecs - p.RunSecs) * float64(time.Second))
			}
			lo.Arrived = max(lo.Completed+int64(c.Depth-p.Depth), 0)
		}
		m.prev[i] = c
	}
	m.seen = true
	return obs
}

// ScaleToInterval sets the time constants from the decision interval, so a
// short interval reacts as a long one does, in proportion: cooldown 2×,
// smoothing 1.5×, horizon 6×.
func (c Config) ScaleToInterval(interval time.Duration) Config {
	c.Cooldown = 2 * interval
	c.Smoothing = interval * 3 / 2
	c.Horizon = 6 * interval
	return c
}
