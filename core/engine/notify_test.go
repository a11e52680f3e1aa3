package engine

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

// readable reports whether r has bytes to read within d.
func readable(t *testing.T, r *os.File, d time.Duration) int {
	t.Helper()
	require.NoError(t, r.SetReadDeadline(time.Now().Add(d)))
	buf := make([]byte, 64)
	n, err := r.Read(buf)
	if err != nil {
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	}
	return n
}

// With a notify fd, queued events are announced once per batch until they
// are drained, and a closed engine never writes to the fd again.
func TestNotifyAnnouncesEventsOncePerDrain(t *testing.T) {
	st := newStore(t)
	e := newEngine(t, st, false, nil)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	require.NoError(t, e.SetNotify(int(w.Fd())))

	submit(t, e, Submit{Submission: root("a")}, Submit{Submission: root("b")})
	require.Equal(t, 8, readable(t, r, eventually), "one 8-byte announcement for the delivery")
	require.Equal(t, 0, readable(t, r, 50*time.Millisecond), "no second write before a drain")
	evs := e.Drain()
	require.NotEmpty(t, evs)

	held := evs[0].Delivery
	complete(t, e, store.Completion{Ref: held.Ref, LeaseID: held.LeaseID, OK: true})
	require.NoError(t, e.Pump(context.Background())) // capacity 1: now b is delivered
	require.Equal(t, 8, readable(t, r, eventually), "announced again after the drain")

	require.ErrorContains(t, e.SetNotify(-2), "not a file descriptor")
	require.NoError(t, e.Close())
	_ = e.Drain()
	e.mu.Lock()
	e.push(Event{Kind: EventMix})
	e.mu.Unlock()
	require.Equal(t, 0, readable(t, r, 50*time.Millisecond), "nothing written once closed")
}
