package bridge

import (
	"context"
	"fmt"

	"github.com/blazingflow/blazing/core/frames"
	"github.com/blazingflow/blazing/core/store"
)

// scheduleQuery answers the schedule queries (see frames.QuerySchedules)
// against the store's store.Scheduler.
func (s *Session) scheduleQuery(ctx context.Context, q frames.Query, w *frames.Writer) ([]byte, error) {
	sc, ok := s.eng.Store().(store.Scheduler)
	if !ok {
		return nil, fmt.Errorf("%w: this store keeps no schedules", store.ErrInvalid)
	}
	sq := q.Schedule
	switch q.Kind {
	case frames.QueryScheduleRegister:
		st, err := sc.RegisterSchedule(ctx, sq.Info)
		if err != nil {
			return nil, fmt.Errorf("register schedule %s: %w", sq.Info.Name, err)
		}
		return s.finish(w, w.ScheduleState(st)), nil
	case frames.QueryScheduleFire:
		res, err := sc.FireTick(ctx, sq.Tick)
		if err != nil {
			return nil, fmt.Errorf("schedule %s: tick %s: %w", sq.Info.Name, sq.Tick.At.UTC().Format("2006-01-02T15:04:05.999Z"), err)
		}
		if res.Outcome == store.TickFired {
			// The run is queued in the store: have this engine look now
			// rather than at its next wake-up (as after a requeue).
			if err := s.eng.Pump(ctx); err != nil {
				return nil, err
			}
		}
		return s.finish(w, w.TickResult(res)), nil
	case frames.QuerySchedulePause:
		st, err := sc.PauseSchedule(ctx, sq.Info.Name, sq.Paused)
		if err != nil {
			return nil, err
		}
		return s.finish(w, w.ScheduleState(st)), nil
	default: // frames.QuerySchedules
		sts, err := sc.Schedules(ctx)
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		return s.finish(w, w.ScheduleStates(sts)), nil
	}
}
