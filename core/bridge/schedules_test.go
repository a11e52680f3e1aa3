package bridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/blazingflow/blazing/core/engine"
	"github.com/blazingflow/blazing/core/frames"
	"github.com/blazingflow/blazing/core/internal/msgpacktest"
	"github.com/blazingflow/blazing/core/store"
)

// The schedule queries end to end on an embedded session: register, fire a
// tick (its run is delivered to this engine's async slot), the same tick
// again (taken), list, pause, and the errors Python maps to exceptions.
func TestScheduleQueries(t *testing.T) {
	ctx := context.Background()
	s := open(t, map[string]any{"inbox": "sched", "async": 1})
	query := func(q ...any) []any {
		t.Helper()
		out, err := s.Query(ctx, msgpacktest.Pack(t, q))
		require.NoError(t, err)
		var v []any
		require.NoError(t, msgpack.Unmarshal(out, &v))
		return v
	}
	now := time.Now().UnixMilli()
	tickMs := now + 1000
	st := query(frames.QueryScheduleRegister, "beat", "app.beat", "every 1s", "", tickMs)
	require.Equal(t, "beat", st[0])
	require.Equal(t, "app.beat", st[1])

	fire := func() []any {
		return query(frames.QueryScheduleFire, "beat", "app.beat", "every 1s", "", tickMs+1000, tickMs,
			false, 0, []byte("args"), 0, 0, 0, 0, 0)
	}
	res := fire()
	require.EqualValues(t, store.TickFired, res[0])
	unit := store.TickUnit("beat", time.UnixMilli(tickMs))
	require.Equal(t, unit, res[2])
	out, err := s.Wait(ctx, 5*time.Second)
	require.NoError(t, err)
	evs := decodeReply(t, out).Events
	require.NotEmpty(t, evs, "the fired run is delivered")
	require.EqualValues(t, engine.EventDeliver, evs[0][0])
	require.Equal(t, unit, evs[0][1])
	require.EqualValues(t, store.TickTaken, fire()[0])

	var list []any
	require.NoError(t, msgpack.Unmarshal(must(s.Query(ctx, msgpacktest.Pack(t, []any{frames.QuerySchedules}))), &list))
	require.Len(t, list, 1)
	row := list[0].([]any)
	require.Equal(t, unit, row[8], "last unit")
	require.EqualValues(t, store.StatusRunning, row[10], "last status")
	require.EqualValues(t, 1, row[11], "fired")

	require.Equal(t, true, query(frames.QuerySchedulePause, "beat", true)[5])
	_, err = s.Query(ctx, msgpacktest.Pack(t, []any{frames.QuerySchedulePause, "nobody", true}))
	require.Equal(t, "not_found", frames.Code(err))
	_, err = s.Query(ctx, msgpacktest.Pack(t, []any{frames.QueryScheduleRegister, "bad name", "w", "", "", 0}))
	require.Equal(t, "invalid", frames.Code(err))
	_, err = s.Query(ctx, msgpacktest.Pack(t, []any{frames.QueryScheduleFire, "beat"}))
	require.ErrorIs(t, err, frames.ErrMalformed)
}
