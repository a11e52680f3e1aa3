package engine

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

// errAway stands for a store that cannot be reached for a while.
var errAway = errors.New("connection refused")

// awayStore fails Watch and Cancel while away is set, as a store across the
// network does during an outage.
type awayStore struct {
	store.Store
	away        atomic.Bool
	watchTries  atomic.Int32
	cancelTries atomic.Int32
}

func (s *awayStore) Watch(ctx context.Context, ref store.Ref, inbox string) error {
	s.watchTries.Add(1)
	if s.away.Load() {
		return errAway
	}
	return s.Store.Watch(ctx, ref, inbox)
}

func (s *awayStore) Cancel(ctx context.Context, unit, path, reason string) (int, error) {
	s.cancelTries.Add(1)
	if s.away.Load() {
		return 0, errAway
	}
	return s.Store.Cancel(ctx, unit, path, reason)
}

// A watch and a cancellation sent while the store is away are kept and
// carried out once it is back: the watcher gets its result, the run ends
// cancelled.
func TestWatchAndCancelOutliveAnOutage(t *testing.T) {
	mem := newStore(t)
	st := &awayStore{Store: mem}
	client := newEngine(t, st, false, func(c *Config) { c.Capacity = [store.NumLanes]int{} })
	other := newEngine(t, mem, true, func(c *Config) { c.Capacity = [store.NumLanes]int{} })
	// Two runs exist; nobody serves them.
	submit(t, other, Submit{Submission: root("watched")}, Submit{Submission: root("doomed")})

	st.away.Store(true)
	require.NoError(t, client.Enqueue(Commands{
		Watches: []WatchCmd{{Ref: store.Ref{Unit: "doomed", Path: store.RootPath}, Token: 7}},
		Cancels: []CancelCmd{{Unit: "doomed", Reason: "user"}},
	}))
	require.Eventually(t, func() bool { return st.watchTries.Load() >= 2 && st.cancelTries.Load() >= 2 },
		eventually, time.Millisecond, "both are retried while the store is away")
	op, err := mem.Get(context.Background(), store.Ref{Unit: "doomed", Path: store.RootPath})
	require.NoError(t, err)
	require.Equal(t, store.StatusPending, op.Status, "nothing reached the store yet")

	st.away.Store(false)
	var got []Event
	require.Eventually(t, func() bool {
		evs, err := client.Wait(context.Background(), 10*time.Millisecond)
		require.NoError(t, err)
		got = append(got, evs...)
		return len(got) > 0
	}, eventually, time.Millisecond)
	require.Equal(t, EventResult, got[0].Kind)
	require.Equal(t, uint64(7), got[0].Token)
	require.Equal(t, store.StatusCancelled, got[0].Note.Status, "the cancellation was carried out and the watcher told")
}

// A watch of a run the store does not know fails its waiter with the type a
// Python caller catches for it (blazing.errors.RunNotFound), not a bare
// native error; other refusals keep the generic type.
func TestRefusedWatchOfAnUnknownRunIsRunNotFound(t *testing.T) {
	client := newEngine(t, newStore(t), false, func(c *Config) { c.Capacity = [store.NumLanes]int{} })
	require.NoError(t, client.Enqueue(Commands{
		Watches: []WatchCmd{{Ref: store.Ref{Unit: "never-made", Path: store.RootPath}, Token: 9}},
	}))
	var got []Event
	require.Eventually(t, func() bool {
		evs, err := client.Wait(context.Background(), 10*time.Millisecond)
		require.NoError(t, err)
		got = append(got, evs...)
		return len(got) > 0
	}, eventually, time.Millisecond)
	require.Equal(t, uint64(9), got[0].Token)
	require.Equal(t, store.StatusFailed, got[0].Note.Status)
	require.Equal(t, "blazing.errors.RunNotFound", got[0].Note.Error.Type)
	require.Contains(t, got[0].Note.Error.Message, "never-made")

	other := failedResult(1, store.Ref{Unit: "u", Path: store.RootPath}, store.ErrInvalid)
	require.Equal(t, "blazing.errors.NativeError", other.Note.Error.Type)
}
