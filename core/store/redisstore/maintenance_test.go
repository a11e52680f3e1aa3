package redisstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
	"github.com/blazingflow/blazing/core/store/redisstore"
	"github.com/blazingflow/blazing/core/store/storetest"
)

// ownServer starts a redis-server for one test (one whose memory limit the
// test may change without disturbing others), with noeviction.
func ownServer(t *testing.T) *redis.Client {
	t.Helper()
	if noRedis != "" {
		t.Skip(noRedis)
	}
	srv, err := storetest.StartRedisServer("--maxmemory-policy", "noeviction")
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// fillMemory makes Redis refuse writes: a maxmemory just below what it
// uses. It returns a function that lifts the limit again.
func fillMemory(t *testing.T, c *redis.Client) func() {
	t.Helper()
	ctx := context.Background()
	used := usedMemory(t, c)
	require.NoError(t, c.ConfigSet(ctx, "maxmemory", strconv.FormatInt(used-1024, 10)).Err())
	return func() { require.NoError(t, c.ConfigSet(ctx, "maxmemory", "0").Err()) }
}

// Redis at maxmemory refuses the scripts that create or grow records before
// they start: the caller sees ErrFull and nothing was written. Those that
// keep running work alive still run; once memory is back, all goes on.
func TestOutOfMemoryRefusesWholeScripts(t *testing.T) {
	c := ownServer(t)
	ctx := context.Background()
	s := newStore(t, redisstore.Config{Client: c})
	require.NoError(t, s.OpenInbox(ctx, "client"))
	held := store.Submission{Ref: store.Ref{Unit: "held", Path: "0"}, Name: "flow", Inbox: "client"}
	storetest.MustSubmit(t, s, held)
	ds, err := s.Reserve(ctx, store.LaneAsync, "w", 1, time.Minute, 0)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	keysBefore, err := c.DBSize(ctx).Result()
	require.NoError(t, err)

	lift := fillMemory(t, c)
	_, errs := s.Submit(ctx, []store.Submission{{Ref: store.Ref{Unit: "new", Path: "0"}, Name: "flow", Inbox: "client"}})
	require.ErrorIs(t, errs[0], store.ErrFull, "a submission is refused for memory")
	_, err = s.Complete(ctx, "w", []store.Completion{{Ref: ds[0].Ref, LeaseID: ds[0].LeaseID, OK: true, Result: []byte("r")}})
	require.ErrorIs(t, err, store.ErrFull, "so is a completion (its caller retries it)")
	keysAfter, err := c.DBSize(ctx).Result()
	require.NoError(t, err)
	require.Equal(t, keysBefore, keysAfter, "nothing was written")
	op, err := s.Get(ctx, ds[0].Ref)
	require.NoError(t, err)
	require.Equal(t, store.StatusRunning, op.Status, "the refused completion changed nothing")
	lost, err := s.Renew(ctx, "w", map[store.Ref]uint64{ds[0].Ref: ds[0].LeaseID}, time.Minute)
	require.NoError(t, err, "renewals run when memory is full, so leases hold")
	require.Empty(t, lost)
	_, err = s.Reclaim(ctx, time.Now())
	require.NoError(t, err, "so does Reclaim")

	lift()
	outs, err := s.Complete(ctx, "w", []store.Completion{{Ref: ds[0].Ref, LeaseID: ds[0].LeaseID, OK: true, Result: []byte("r")}})
	require.NoError(t, err)
	require.Equal(t, []store.CompleteOutcome{store.Recorded}, outs, "the retried completion is accepted")
	notes, err := s.Pop(ctx, "client", 0, 0)
	require.NoError(t, err)
	require.Len(t, notes, 1, "and its waiter told")
	storetest.MustSubmit(t, s, store.Submission{Ref: store.Ref{Unit: "new", Path: "0"}, Name: "flow"})
}

// Trim deletes the oldest finished runs past MaxRuns, every key of them.
func TestTrimByCount(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	ns := namespace()
	s := newStore(t, redisstore.Config{Client: c, Namespace: ns, MaxRuns: 3})
	require.NoError(t, s.OpenInbox(ctx, "client"))
	var units []string
	for range 5 {
		units = append(units, runThreeStep(t, s, 1, "client")...)
	}
	r, err := s.Trim(ctx, time.Now())
	require.NoError(t, err)
	require.Equal(t, store.Trimmed{Runs: 2, Reason: "count"}, r)
	for i, u := range units {
		n, err := c.Exists(ctx, "{"+ns+"}:o:"+u+":0", "{"+ns+"}:o:"+u+":0.1", "{"+ns+"}:u:"+u).Result()
		require.NoError(t, err)
		if i < 2 {
			require.Zero(t, n, "run %d (oldest) is gone, every key of it", i)
			_, err := s.Get(ctx, store.Ref{Unit: u, Path: "0"})
			require.ErrorIs(t, err, store.ErrNotFound)
		} else {
			require.Equal(t, int64(3), n, "run %d is kept", i)
		}
	}
	r, err = s.Trim(ctx, time.Now())
	require.NoError(t, err)
	require.Zero(t, r.Runs, "within the bound: nothing more")
}

// Under memory pressure Trim deletes the oldest finished runs whatever the
// count, so that a busy app does not fill Redis.
func TestTrimByMemory(t *testing.T) {
	c := ownServer(t)
	ctx := context.Background()
	s := newStore(t, redisstore.Config{Client: c, MaxRuns: 1_000_000})
	require.NoError(t, s.OpenInbox(ctx, "client"))
	units := runThreeStep(t, s, 300, "client")
	lift := fillMemory(t, c)
	defer lift()
	r, err := s.Trim(ctx, time.Now())
	require.NoError(t, err)
	require.Equal(t, "memory", r.Reason)
	require.GreaterOrEqual(t, r.Runs, 100)
	gone := 0
	for _, u := range units {
		if _, err := s.Get(ctx, store.Ref{Unit: u, Path: "0"}); err != nil {
			require.ErrorIs(t, err, store.ErrNotFound)
			gone++
		}
	}
	require.Equal(t, r.Runs, gone, "as many runs are gone as Trim says")
}

// A requeued run is live again: Trim never deletes it.
func TestTrimSparesRequeuedRuns(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	s := newStore(t, redisstore.Config{Client: c, MaxRuns: 1})
	require.NoError(t, s.OpenInbox(ctx, "client"))
	runThreeStep(t, s, 2, "client")
	root := store.Submission{Ref: store.Ref{Unit: "again", Path: "0"}, Name: "flow"}
	storetest.MustSubmit(t, s, root)
	ds, err := s.Reserve(ctx, store.LaneAsync, "w", 1, time.Minute, 0)
	require.NoError(t, err)
	_, err = s.Complete(ctx, "w", []store.Completion{{Ref: ds[0].Ref, LeaseID: ds[0].LeaseID, Error: &store.ErrorInfo{Type: "E"}}})
	require.NoError(t, err)
	require.NoError(t, s.Requeue(ctx, "again"))
	r, err := s.Trim(ctx, time.Now())
	require.NoError(t, err)
	require.Equal(t, 2, r.Runs, "three runs, one kept: the two finished ones go")
	op, err := s.Get(ctx, root.Ref)
	require.NoError(t, err, "the requeued run is kept")
	require.Equal(t, store.StatusPending, op.Status)
}

// Each inconsistency Repair knows, planted by hand, is found, reported and
// mended.
func TestRepairMendsWhatWasPlanted(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	ns := namespace()
	s := newStore(t, redisstore.Config{Client: c, Namespace: ns})
	k := func(rest string) string { return "{" + ns + "}:" + rest }
	require.NoError(t, s.OpenInbox(ctx, "client"))
	storetest.MustSubmit(t, s,
		store.Submission{Ref: store.Ref{Unit: "orphan", Path: "0"}, Name: "flow", Inbox: "client"},
		store.Submission{Ref: store.Ref{Unit: "queued", Path: "0"}, Name: "flow"})
	ds, err := s.Reserve(ctx, store.LaneAsync, "ghost", 1, time.Minute, 0)
	require.NoError(t, err)
	require.Len(t, ds, 1)

	// A lease far in the future whose holder was never promised one.
	require.NoError(t, c.ZAdd(ctx, k("running:async"), redis.Z{Score: float64(time.Now().Add(time.Hour).UnixMilli()), Member: "orphan:0"}).Err())
	require.NoError(t, c.ZRem(ctx, k("alive"), "ghost").Err())
	// Queue entries of operations that are not there.
	require.NoError(t, c.ZAdd(ctx, k("ready:async"), redis.Z{Score: 0, Member: "000000000001nosuch:0"}).Err())
	require.NoError(t, c.ZAdd(ctx, k("delayed:blocking"), redis.Z{Score: 1, Member: "gone:0.1"}).Err())
	require.NoError(t, c.ZAdd(ctx, k("running:blocking"), redis.Z{Score: 1, Member: "gone:0.2"}).Err())
	// Counters behind what they handed out.
	require.NoError(t, c.Set(ctx, k("lease"), 0, 0).Err())
	require.NoError(t, c.Set(ctx, k("seq"), 0, 0).Err())
	// Notes for an inbox nobody has open.
	require.NoError(t, c.RPush(ctx, k("nt:nobody"), "a note", "another").Err())

	repairs, err := s.Repair(ctx, time.Now())
	require.NoError(t, err)
	kinds := map[string]int{}
	for _, r := range repairs {
		kinds[r.Kind]++
		t.Logf("%s %s: %s", r.Kind, r.Ref, r.Detail)
	}
	require.Equal(t, map[string]int{"orphan-lease": 1, "stale-queue-entry": 3, "counter-behind": 2, "orphan-notes": 1}, kinds)

	op, err := s.Get(ctx, store.Ref{Unit: "orphan", Path: "0"})
	require.NoError(t, err)
	require.Equal(t, store.StatusPending, op.Status, "the orphaned lease was taken back")
	for _, key := range []string{"ready:async", "delayed:blocking", "running:blocking"} {
		members, err := c.ZRange(ctx, k(key), 0, -1).Result()
		require.NoError(t, err)
		for _, m := range members {
			require.NotContains(t, []string{"000000000001nosuch:0", "gone:0.1", "gone:0.2"}, m, "stale entry left in %s", key)
		}
	}
	lease, err := c.Get(ctx, k("lease")).Int64()
	require.NoError(t, err)
	require.GreaterOrEqual(t, lease, int64(ds[0].LeaseID), "the lease counter is past every lease handed out")
	n, err := c.Exists(ctx, k("nt:nobody")).Result()
	require.NoError(t, err)
	require.Zero(t, n, "the orphan notes are gone")

	// Everything works on: both runs are handed out, with new lease ids.
	again, err := s.Reserve(ctx, store.LaneAsync, "w", 10, time.Minute, 0)
	require.NoError(t, err)
	require.Len(t, again, 2)
	for _, d := range again {
		require.Greater(t, d.LeaseID, ds[0].LeaseID, "no lease id handed out twice")
	}
	repairs, err = s.Repair(ctx, time.Now())
	require.NoError(t, err)
	require.Empty(t, repairs, "nothing left to mend")
}

// With a RepairGap, only one of several processes checks per period.
func TestRepairGap(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	ns := namespace()
	a := newStore(t, redisstore.Config{Client: c, Namespace: ns, RepairGap: time.Hour})
	b := newStore(t, redisstore.Config{Client: c, Namespace: ns, RepairGap: time.Hour})
	planted := func() {
		require.NoError(t, c.ZAdd(ctx, "{"+ns+"}:ready:async", redis.Z{Score: 0, Member: "000000000001nosuch:0"}).Err())
	}
	planted()
	repairs, err := a.Repair(ctx, time.Now())
	require.NoError(t, err)
	require.Len(t, repairs, 1)
	planted()
	repairs, err = b.Repair(ctx, time.Now())
	require.NoError(t, err)
	require.Empty(t, repairs, "another process checked within the gap")
	require.NoError(t, c.Del(ctx, "{"+ns+"}:repairing").Err())
	repairs, err = b.Repair(ctx, time.Now())
	require.NoError(t, err)
	require.Len(t, repairs, 1, "after the gap it checks again")
}
