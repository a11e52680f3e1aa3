package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
	"github.com/blazingflow/blazing/core/store/redisstore"
	"github.com/blazingflow/blazing/core/store/storetest"
)

// One redis-server for the package, started by the first test that needs
// it and stopped by TestMain.
var (
	redisOnce sync.Once
	redisSrv  *storetest.RedisServer
	redisErr  error
	nsSeq     atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if redisSrv != nil {
		redisSrv.Stop()
	}
	os.Exit(code)
}

// redisClient returns a client of the package's redis-server and a
// namespace of the test's own.
func redisClient(t *testing.T) (*redis.Client, string) {
	t.Helper()
	redisOnce.Do(func() { redisSrv, redisErr = storetest.StartRedisServer() })
	if errors.Is(redisErr, storetest.ErrNoRedisServer) && !storetest.RedisRequired() {
		t.Skip(storetest.SkipReason(redisErr))
	}
	require.NoError(t, redisErr)
	c := redis.NewClient(&redis.Options{Addr: redisSrv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	// Unique across -count runs, which share the server.
	return c, fmt.Sprintf("fm_%s_%d", strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()), nsSeq.Add(1))
}

func newTestStore(t *testing.T, rdb redis.UniversalClient, ns string, maxLapses int) *redisstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	st, err := redisstore.New(ctx, redisstore.Config{Client: rdb, Namespace: ns, MaxLapses: maxLapses})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	t.Cleanup(cancel)
	return ctx
}

// regWith is a registry with an id of the test's choosing (newRegistry's
// is host-pid, the same for every registry of this process).
func regWith(rdb redis.UniversalClient, ns, id string) *registry {
	r := newRegistry(rdb, ns, 6*time.Second)
	r.id = id
	return r
}

func workersSnap(inboxes ...string) Snapshot {
	s := Snapshot{Target: Mix{Async: 2, Blocking: 1}, Restarts: 7}
	for i, in := range inboxes {
		s.Workers = append(s.Workers, WorkerInfo{ID: fmt.Sprintf("async-%d", i+1), Inbox: in, Lane: laneAsync,
			State: "serving", Pid: 100 + i, Beat: Beat{Running: 2, Succeeded: 5, Failed: 1, Current: "flow u/0"}})
	}
	return s
}

// A beat records the foreman and its workers with expiries, and counts the
// foremen alive on the namespace.
func TestRegistryBeat(t *testing.T) {
	rdb, ns := redisClient(t)
	ctx := ctxT(t)
	a := regWith(rdb, ns, "host-a")
	before := time.Now()
	alive, orphans, err := a.beat(ctx, workersSnap("in-1", "in-2"))
	require.NoError(t, err)
	require.Equal(t, 1, alive)
	require.Empty(t, orphans)

	f := rdb.HGetAll(ctx, "{"+ns+"}:foreman:host-a").Val()
	host, _ := os.Hostname()
	require.Equal(t, host, f["host"])
	require.Equal(t, strconv.Itoa(os.Getpid()), f["pid"])
	require.Equal(t, "2", f["target_async"])
	require.Equal(t, "1", f["target_blocking"])
	require.Equal(t, "2", f["workers"])
	require.Equal(t, "7", f["restarts"])
	beatMs, _ := strconv.ParseInt(f["beat"], 10, 64)
	require.GreaterOrEqual(t, beatMs, before.UnixMilli())
	require.Equal(t, map[string]string{
		"async-1": "async 100 serving 2 5 1 in-1 flow u/0",
		"async-2": "async 101 serving 2 5 1 in-2 flow u/0",
	}, rdb.HGetAll(ctx, "{"+ns+"}:workers:host-a").Val())
	ttl := rdb.PTTL(ctx, "{"+ns+"}:foreman:host-a").Val()
	require.True(t, ttl > 0 && ttl <= 6*time.Second, "%s", ttl)
	ttl = rdb.PTTL(ctx, "{"+ns+"}:workers:host-a").Val()
	require.True(t, ttl > 6*time.Second && ttl <= workersTTL*6*time.Second, "%s", ttl)
	score := rdb.ZScore(ctx, "{"+ns+"}:foremen", "host-a").Val()
	require.Equal(t, float64(beatMs), score)

	// A second foreman sees two; a beat without workers drops the record.
	b := regWith(rdb, ns, "host-b")
	alive, _, err = b.beat(ctx, Snapshot{})
	require.NoError(t, err)
	require.Equal(t, 2, alive)
	require.Zero(t, rdb.Exists(ctx, "{"+ns+"}:workers:host-b").Val())
	_, _, err = a.beat(ctx, Snapshot{})
	require.NoError(t, err)
	require.Zero(t, rdb.Exists(ctx, "{"+ns+"}:workers:host-a").Val())

	// leave takes it all back.
	a.leave(ctx)
	require.Zero(t, rdb.Exists(ctx, "{"+ns+"}:foreman:host-a").Val())
	require.Equal(t, []string{"host-b"}, rdb.ZRange(ctx, "{"+ns+"}:foremen", 0, -1).Val())
}

// plantVanished records foreman id with workers on inboxes, as its last
// beat did `ago` before now.
func plantVanished(t *testing.T, rdb redis.UniversalClient, ns, id string, ago time.Duration, inboxes ...string) {
	t.Helper()
	ctx := ctxT(t)
	_, _, err := regWith(rdb, ns, id).beat(ctx, workersSnap(inboxes...))
	require.NoError(t, err)
	require.NoError(t, rdb.ZAdd(ctx, "{"+ns+"}:foremen", redis.Z{Score: float64(time.Now().Add(-ago).UnixMilli()), Member: id}).Err())
}

// A foreman whose beat entry went stale is found by the next peer's beat:
// the peer gets its workers' inboxes (once) and drops its records. A fresh
// one is left alone.
func TestRegistryVanishedForeman(t *testing.T) {
	rdb, ns := redisClient(t)
	ctx := ctxT(t)
	plantVanished(t, rdb, ns, "alive", time.Second, "in-3") // first: its beat would claim "dead"
	plantVanished(t, rdb, ns, "dead", time.Minute, "in-1", "in-2")
	peer := regWith(rdb, ns, "peer")
	alive, orphans, err := peer.beat(ctx, Snapshot{})
	require.NoError(t, err)
	sort.Strings(orphans)
	require.Equal(t, []string{"in-1", "in-2"}, orphans)
	require.Equal(t, 2, alive, "peer and alive")
	require.Zero(t, rdb.Exists(ctx, "{"+ns+"}:workers:dead", "{"+ns+"}:foreman:dead").Val())
	require.EqualValues(t, 1, rdb.Exists(ctx, "{"+ns+"}:workers:alive").Val())

	_, orphans, err = peer.beat(ctx, Snapshot{})
	require.NoError(t, err)
	require.Empty(t, orphans, "reported once")

	// A malformed workers record yields nothing, and no error.
	require.NoError(t, rdb.HSet(ctx, "{"+ns+"}:workers:odd", "w", "async 1 serving").Err())
	require.NoError(t, rdb.ZAdd(ctx, "{"+ns+"}:foremen", redis.Z{Score: 1, Member: "odd"}).Err())
	_, orphans, err = peer.beat(ctx, Snapshot{})
	require.NoError(t, err)
	require.Empty(t, orphans)

	// Its own stale entry is not a vanished foreman.
	require.NoError(t, rdb.ZAdd(ctx, "{"+ns+"}:foremen", redis.Z{Score: 1, Member: "peer"}).Err())
	orphans, err = peer.vanished(ctx, time.Now())
	require.NoError(t, err)
	require.Empty(t, orphans)
}

// When several peers notice the same vanished foreman at once, exactly one
// of them takes back its workers.
func TestRegistryVanishedClaimedOnce(t *testing.T) {
	rdb, ns := redisClient(t)
	plantVanished(t, rdb, ns, "dead", time.Minute, "in-1", "in-2", "in-3")
	var wg sync.WaitGroup
	got := make([][]string, 8)
	errs := make([]error, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = regWith(rdb, ns, fmt.Sprint("peer-", i)).vanished(context.Background(), time.Now())
		}()
	}
	wg.Wait()
	var all []string
	winners := 0
	for i := range got {
		require.NoError(t, errs[i])
		if len(got[i]) > 0 {
			winners++
		}
		all = append(all, got[i]...)
	}
	sort.Strings(all)
	require.Equal(t, 1, winners)
	require.Equal(t, []string{"in-1", "in-2", "in-3"}, all)
}

// Redis errors come back from beat, naming what failed.
func TestRegistryBeatRedisDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	_, _, err := regWith(rdb, "x", "a").beat(ctxT(t), Snapshot{})
	require.ErrorContains(t, err, "read foremen")
}

// reserve gives worker inbox one operation of a fresh run.
func reserve(t *testing.T, st store.Store, unit, inbox string) store.Ref {
	t.Helper()
	ref := store.Ref{Unit: unit, Path: "0"}
	storetest.MustSubmit(t, st, store.Submission{Ref: ref, Name: "flow"})
	ds, err := st.Reserve(ctxT(t), store.LaneAsync, inbox, 1, time.Hour, 0)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	return ref
}

// The reclaimer takes back at once what a gone worker held: queued again,
// or failed for good once it has lapsed MaxLapses times; each logged.
func TestReclaimerTakesBackAGoneWorkersLeases(t *testing.T) {
	rdb, ns := redisClient(t)
	ctx := ctxT(t)
	st := newTestStore(t, rdb, ns, 1)
	log, buf := testLogger()
	rec := &reclaimer{st: st, log: log}

	ref := reserve(t, st, "u1", "fm-async-1")
	rec.worker("")            // no inbox: nothing to do
	rec.worker("fm-async-1")  // lapse 1: queued again
	rec.worker("fm-nobody-9") // holds nothing
	rec.wait()
	op, err := st.Get(ctx, ref)
	require.NoError(t, err)
	require.Equal(t, store.StatusPending, op.Status)
	require.Contains(t, buf.String(), "took back flow u1/0 from gone worker; queued again")
	require.Contains(t, buf.String(), "inbox=fm-async-1")

	ds, err := st.Reserve(ctx, store.LaneAsync, "fm-async-2", 1, time.Hour, 0)
	require.NoError(t, err)
	require.Len(t, ds, 1, "another worker gets it at once, not after the hour's lease")
	rec.worker("fm-async-2") // lapse 2: more than MaxLapses
	rec.wait()
	op, err = st.Get(ctx, ref)
	require.NoError(t, err)
	require.Equal(t, store.StatusFailed, op.Status)
	require.Contains(t, buf.String(), "failed with WorkerLost: 2 workers in a row died running it without progress")

	require.NoError(t, st.Close())
	rec.worker("fm-async-3")
	rec.wait()
	require.Contains(t, buf.String(), "could not take back a gone worker's leases")
}

// flakyStore fails Stats while down is set, as an unreachable Redis does.
type flakyStore struct {
	store.Store
	down atomic.Bool
}

func (f *flakyStore) Stats(ctx context.Context) ([store.NumLanes]store.LaneStats, error) {
	if f.down.Load() {
		return [store.NumLanes]store.LaneStats{}, errors.New("dial tcp: connection refused")
	}
	return f.Store.Stats(ctx)
}

type watcherHarness struct {
	w       *watcher
	st      *flakyStore
	log     *logBuf
	snap    Snapshot
	reclaim chan string
	targets chan Mix
}

// newWatcher makes a watcher on a real store; a goroutine answers its
// snapshot requests with snap.
func newWatcher(t *testing.T, rdb redis.UniversalClient, ns string, auto bool, snap Snapshot) *watcherHarness {
	t.Helper()
	cfg := supConfig()
	cfg.Namespace, cfg.AutoOptimize, cfg.OptimizationInterval = ns, auto, time.Hour
	cfg.AsyncWorkers, cfg.BlockingWorkers, cfg.MinAsync, cfg.MinBlocking = 1, 1, 1, 0
	log, buf := testLogger()
	tn, err := newTuner(&cfg, rdb, "me")
	require.NoError(t, err)
	h := &watcherHarness{st: &flakyStore{Store: newTestStore(t, rdb, ns, 0)}, log: buf, snap: snap,
		reclaim: make(chan string, 100), targets: make(chan Mix, 10)}
	snaps := make(chan chan Snapshot)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case r := <-snaps:
				r <- snap
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	h.w = &watcher{cfg: &cfg, log: log, st: h.st, reg: regWith(rdb, ns, "me"), col: newCollector(),
		snaps: snaps, targets: h.targets, supDone: make(chan error, 1), tuner: tn,
		reclaim: func(inbox string) { h.reclaim <- inbox }}
	return h
}

// One look: the queues and this machine's workers reach the metrics, the
// registration is written, a vanished peer's workers are reclaimed, and the
// optimizer decides once per interval (recorded in the decisions stream).
func TestWatcherObserve(t *testing.T) {
	rdb, ns := redisClient(t)
	ctx := ctxT(t)
	snap := workersSnap("fm-async-1")
	snap.Target = Mix{Async: 1, Blocking: 1} // inside the bounds: the optimizer holds
	h := newWatcher(t, rdb, ns, false, snap)
	storetest.MustSubmit(t, h.st, store.Submission{Ref: store.Ref{Unit: "a", Path: "0"}, Name: "flow"},
		store.Submission{Ref: store.Ref{Unit: "b", Path: "0"}, Name: "flow"},
		store.Submission{Ref: store.Ref{Unit: "c", Path: "0"}, Name: "flow", Lane: store.LaneBlocking})
	plantVanished(t, rdb, ns, "dead", time.Minute, "dead-inbox")

	require.NoError(t, h.w.observe(ctx))
	require.Equal(t, "dead-inbox", <-h.reclaim)
	m := scrape(t, h.w.col)
	require.Equal(t, 2.0, m["blazing_queue_depth{lane=async}"])
	require.Equal(t, 1.0, m["blazing_queue_depth{lane=blocking}"])
	require.Equal(t, 1.0, m["blazing_foremen"])
	require.Equal(t, 1.0, m["blazing_workers{lane=async,state=serving}"])
	require.Equal(t, 7.0, m["blazing_worker_restarts_total"])
	require.Equal(t, 1.0, m["blazing_optimizer_decisions_total{action=hold}"], "%v", m)
	require.Contains(t, m, "blazing_optimizer_urgency{lane=async}")
	require.Equal(t, "1", rdb.HGet(ctx, "{"+ns+"}:foreman:me", "workers").Val())
	msgs := rdb.XRange(ctx, "{"+ns+"}:decisions", "-", "+").Val()
	require.Len(t, msgs, 1)
	require.Equal(t, "warmup", msgs[0].Values["reason"])
	require.Equal(t, "false", msgs[0].Values["applied"])

	// Within the optimization interval: no second decision.
	require.NoError(t, h.w.observe(ctx))
	require.EqualValues(t, 1, rdb.XLen(ctx, "{"+ns+"}:decisions").Val())
	require.Equal(t, 1.0, scrape(t, h.w.col)["blazing_optimizer_decisions_total{action=hold}"])
	require.Empty(t, h.targets)
	require.NotContains(t, h.log.String(), "Redis")
}

// With auto-optimize on, a decision that changes the mix is sent to the
// supervisor (here: a target outside the bounds, corrected at once); with
// it off, the same decision is only recorded.
func TestWatcherAppliesDecisions(t *testing.T) {
	for _, auto := range []bool{true, false} {
		t.Run(fmt.Sprint("auto=", auto), func(t *testing.T) {
			rdb, ns := redisClient(t)
			ctx := ctxT(t)
			h := newWatcher(t, rdb, ns, auto, Snapshot{Target: Mix{Async: 0, Blocking: 2}})
			require.NoError(t, h.w.observe(ctx))
			msgs := rdb.XRange(ctx, "{"+ns+"}:decisions", "-", "+").Val()
			require.Len(t, msgs, 1)
			require.Equal(t, "correct", msgs[0].Values["action"])
			require.Equal(t, fmt.Sprint(auto), msgs[0].Values["applied"])
			if auto {
				require.Equal(t, Mix{Async: 1, Blocking: 1}, <-h.targets)
				require.Contains(t, h.log.String(), "optimizer moves workers")
			} else {
				require.Empty(t, h.targets)
			}
		})
	}
}

// Redis going away is logged once, however many looks fail, and coming back
// once; meanwhile the metrics still show this machine's workers.
func TestWatcherReportsRedisDownAndUpOnce(t *testing.T) {
	rdb, ns := redisClient(t)
	ctx := ctxT(t)
	h := newWatcher(t, rdb, ns, false, workersSnap("fm-async-1"))
	require.NoError(t, h.w.observe(ctx))
	h.st.down.Store(true)
	for range 3 {
		require.NoError(t, h.w.observe(ctx))
	}
	require.Equal(t, 1, strings.Count(h.log.String(), "Redis unreachable; workers keep what they hold and retry"))
	require.Contains(t, h.log.String(), "connection refused")
	require.Equal(t, 1.0, scrape(t, h.w.col)["blazing_workers{lane=async,state=serving}"])
	h.st.down.Store(false)
	for range 2 {
		require.NoError(t, h.w.observe(ctx))
	}
	require.Equal(t, 1, strings.Count(h.log.String(), "Redis reachable again"))
	require.Equal(t, 1, strings.Count(h.log.String(), "Redis unreachable"))
}

// The loop ends with the supervisor's error (leaving it for main too), or
// with nil when its context ends.
func TestWatcherLoopEnds(t *testing.T) {
	rdb, ns := redisClient(t)
	h := newWatcher(t, rdb, ns, false, Snapshot{})
	h.w.supDone <- errCrashLoop
	h.w.snaps = make(chan chan Snapshot) // nobody answers: the supervisor is gone
	require.ErrorIs(t, h.w.loop(context.Background()), errCrashLoop)
	require.ErrorIs(t, <-h.w.supDone, errCrashLoop, "put back for main")

	h = newWatcher(t, rdb, ns, false, Snapshot{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, h.w.loop(ctx))
}
