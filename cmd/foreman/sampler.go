package main

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/blazingflow/blazing/core/fleet"
	"github.com/blazingflow/blazing/core/store"
)

// sampler writes what this foreman sees at each beat into the namespace's
// time series (core/fleet): the lanes, its workers by lane and state, how
// many attempts its workers finished and failed per second; and once a
// minute the minute's average into the coarse series, for charts over a
// day. Nothing here is kept in memory beyond one minute of samples.
type sampler struct {
	rdb  redis.UniversalClient
	ns   string
	id   string
	host string

	prev     map[string]laneDone // per lane, at the previous beat
	prevAt   time.Time
	minute   []fleet.Sample // this minute's samples, for the coarse series
	minuteAt time.Time
}

type laneDone struct{ done, failed uint64 }

// sample takes one sample from the foreman's view and writes it.
func (s *sampler) sample(ctx context.Context, now time.Time, lanes [store.NumLanes]store.LaneStats,
	snap Snapshot, urgency map[string]float64) error {
	smp := fleet.Sample{At: now, Foreman: s.id, Host: s.host, Restarts: snap.Restarts}
	done := map[string]laneDone{}
	for _, w := range snap.Workers {
		d := done[w.Lane]
		d.done += w.Beat.Succeeded + w.Beat.Failed + w.Beat.Retried
		d.failed += w.Beat.Failed + w.Beat.Retried
		done[w.Lane] = d
	}
	for l := range store.NumLanes {
		name := store.Lane(l).String()
		ls := fleet.LaneSample{Depth: lanes[l].Depth, OldestS: lanes[l].OldestAge.Seconds(),
			Running: lanes[l].Running, Urgency: urgency[name]}
		for _, w := range snap.Workers {
			if w.Lane != name {
				continue
			}
			ls.Workers++
			switch w.State {
			case "serving":
				ls.Serving++
			case "starting":
				ls.Starting++
			case "draining":
				ls.Draining++
			}
		}
		// Rates from the workers' cumulative counts; a worker that exited
		// takes its counts with it, so a drop reads as no progress.
		if p, ok := s.prev[name]; ok && now.After(s.prevAt) {
			secs := now.Sub(s.prevAt).Seconds()
			if d := done[name]; d.done >= p.done && d.failed >= p.failed {
				ls.DonePerS = float64(d.done-p.done) / secs
				ls.FailPerS = float64(d.failed-p.failed) / secs
			}
		}
		if name == store.LaneAsync.String() {
			smp.Async = ls
		} else {
			smp.Blocking = ls
		}
	}
	s.prev, s.prevAt = done, now
	if err := fleet.WriteSample(ctx, s.rdb, s.ns, smp, false); err != nil {
		return err
	}
	return s.rollMinute(ctx, smp)
}

// rollMinute keeps the minute's samples and, when a minute has passed,
// writes their average to the coarse series.
func (s *sampler) rollMinute(ctx context.Context, smp fleet.Sample) error {
	if s.minuteAt.IsZero() {
		s.minuteAt = smp.At.Truncate(time.Minute)
	}
	if smp.At.Sub(s.minuteAt) < time.Minute {
		s.minute = append(s.minute, smp)
		return nil
	}
	avg := average(s.minute, s.minuteAt)
	s.minute, s.minuteAt = []fleet.Sample{smp}, smp.At.Truncate(time.Minute)
	if avg == nil {
		return nil
	}
	return fleet.WriteSample(ctx, s.rdb, s.ns, *avg, true)
}

// average is one sample for a minute: means of the gauges and rates, the
// oldest age's maximum, the last restarts count.
func average(ss []fleet.Sample, at time.Time) *fleet.Sample {
	if len(ss) == 0 {
		return nil
	}
	out := fleet.Sample{At: at, Foreman: ss[0].Foreman, Host: ss[0].Host, Restarts: ss[len(ss)-1].Restarts}
	n := float64(len(ss))
	mean := func(get func(fleet.Sample) fleet.LaneSample) fleet.LaneSample {
		var m fleet.LaneSample
		var depth, running, workers, serving, starting, draining float64
		for _, s := range ss {
			l := get(s)
			depth += float64(l.Depth)
			running += float64(l.Running)
			workers += float64(l.Workers)
			serving += float64(l.Serving)
			starting += float64(l.Starting)
			draining += float64(l.Draining)
			m.DonePerS += l.DonePerS / n
			m.FailPerS += l.FailPerS / n
			m.Urgency += l.Urgency / n
			m.OldestS = max(m.OldestS, l.OldestS)
		}
		m.Depth, m.Running = int(depth/n+0.5), int(running/n+0.5)
		m.Workers, m.Serving = int(workers/n+0.5), int(serving/n+0.5)
		m.Starting, m.Draining = int(starting/n+0.5), int(draining/n+0.5)
		return m
	}
	out.Async = mean(func(s fleet.Sample) fleet.LaneSample { return s.Async })
	out.Blocking = mean(func(s fleet.Sample) fleet.LaneSample { return s.Blocking })
	return &out
}
