package storetest

import (
	"context"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

// Reserve and Pop block: a test starts one with ReserveAsync or PopAsync,
// acts while it waits, then reads what it returned. Drivers' own tests use
// them too.

// Reserved is what a Reserve started by ReserveAsync returned, and when.
type Reserved struct {
	Deliveries []store.Delivery
	Err        error
	At         time.Time // when Reserve returned
}

// ReserveAsync calls s.Reserve in a goroutine, which has started when
// ReserveAsync returns; the channel receives what it returned.
func ReserveAsync(ctx context.Context, s store.Store, lane store.Lane, worker string, max int, lease, wait time.Duration) <-chan Reserved {
	started := make(chan struct{})
	res := make(chan Reserved, 1)
	go func() {
		close(started)
		ds, err := s.Reserve(ctx, lane, worker, max, lease, wait)
		res <- Reserved{Deliveries: ds, Err: err, At: time.Now()}
	}()
	<-started
	return res
}

// Popped is what a Pop started by PopAsync returned.
type Popped struct {
	Notes []store.Note
	Err   error
}

// PopAsync calls s.Pop in a goroutine, which has started when PopAsync
// returns; the channel receives what it returned.
func PopAsync(ctx context.Context, s store.Store, inbox string, max int, wait time.Duration) <-chan Popped {
	started := make(chan struct{})
	res := make(chan Popped, 1)
	go func() {
		close(started)
		notes, err := s.Pop(ctx, inbox, max, wait)
		res <- Popped{Notes: notes, Err: err}
	}()
	<-started
	return res
}

// await returns what the call (named by call, "Reserve" or "Pop") sent on
// res, failing the scenario unless it comes within wakeTimeout, which is
// far below longWait: a call that returns in time was woken.
func await[T any](e *env, res <-chan T, call, what string) T {
	e.t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(wakeTimeout):
		require.FailNow(e.t, call+" did not return in time", what)
	}
	var zero T
	return zero
}
