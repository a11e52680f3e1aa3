package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
	"github.com/blazingflow/blazing/core/store/redisstore"
	"github.com/blazingflow/blazing/core/store/storetest"
)

func unitID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) // like the Python client's uuid4().hex
}

func mustComplete(t testing.TB, s store.Store, worker string, ds []store.Delivery, result []byte) {
	t.Helper()
	comps := make([]store.Completion, len(ds))
	for i, d := range ds {
		comps[i] = store.Completion{Ref: d.Ref, LeaseID: d.LeaseID, OK: true, Result: result}
	}
	outs, err := s.Complete(context.Background(), worker, comps)
	require.NoError(t, err)
	for i, o := range outs {
		require.Equal(t, store.Recorded, o, "completion %d", i)
	}
}

// runThreeStep runs n runs of a root and three calls to success, the way the
// engine does (waiters on every op, batches of n), and returns the units.
func runThreeStep(t testing.TB, s store.Store, n int, inbox string) []string {
	t.Helper()
	ctx := context.Background()
	args := []byte("twenty-byte-argument")
	result := []byte("twenty-bytes-result!")
	units := make([]string, n)
	roots := make([]store.Submission, n)
	for i := range roots {
		units[i] = unitID()
		roots[i] = store.Submission{Ref: store.Ref{Unit: units[i], Path: "0"}, Name: "app.flow", Args: args, Inbox: inbox}
	}
	storetest.MustSubmit(t, s, roots...)
	ds, err := s.Reserve(ctx, store.LaneAsync, "host-4242-async", n, time.Minute, 0)
	require.NoError(t, err)
	require.Len(t, ds, n)
	var kids []store.Submission
	for _, u := range units {
		for k := 1; k <= 3; k++ {
			kids = append(kids, store.Submission{
				Ref: store.Ref{Unit: u, Path: "0." + strconv.Itoa(k)}, Parent: "0", Depth: 1,
				Name: "app.step", Lane: store.LaneBlocking, Args: args, Inbox: inbox,
			})
		}
	}
	storetest.MustSubmit(t, s, kids...)
	kds, err := s.Reserve(ctx, store.LaneBlocking, "host-4242-blocking", len(kids), time.Minute, 0)
	require.NoError(t, err)
	require.Len(t, kds, len(kids))
	mustComplete(t, s, "host-4242-blocking", kds, result)
	mustComplete(t, s, "host-4242-async", ds, result)
	notes, err := s.Pop(ctx, inbox, 0, 0)
	require.NoError(t, err)
	require.Len(t, notes, 4*n)
	return units
}

func usedMemory(t testing.TB, c *redis.Client) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "memory").Result()
	require.NoError(t, err)
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no used_memory in INFO memory")
	return 0
}

// The target: at most 2 KiB of Redis memory per finished 3-step run with
// small arguments, everything it keeps for its retention included.
func TestMemoryPerFinishedRun(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	s := newStore(t, redisstore.Config{Client: c})
	require.NoError(t, s.OpenInbox(ctx, "client"))
	runThreeStep(t, s, 100, "client") // warm up: scripts, counters, pools
	const runs = 1000
	before := usedMemory(t, c)
	for range runs / 100 {
		runThreeStep(t, s, 100, "client")
	}
	after := usedMemory(t, c)
	per := float64(after-before) / runs
	t.Logf("Redis memory per finished 3-step run: %.0f bytes (%d runs, used_memory %d -> %d)", per, runs, before, after)
	require.LessOrEqual(t, per, 2048.0, "memory per finished run")
}

// Redis Cluster: one cluster-mode server that owns every slot. It checks
// what a real cluster checks in scripts (keys outside the script's slot are
// refused), and the suite runs through a ClusterClient.
func TestConformanceCluster(t *testing.T) {
	if noRedis != "" {
		t.Skip(noRedis)
	}
	srv, err := storetest.StartRedisServer("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	ctx := context.Background()
	node := redis.NewClient(&redis.Options{Addr: srv.Addr})
	require.NoError(t, node.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err())
	require.Eventually(t, func() bool {
		info, err := node.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	}, 10*time.Second, 20*time.Millisecond, "the one-node cluster comes up")
	_ = node.Close()

	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr}})
	t.Cleanup(func() { _ = cc.Close() })
	storetest.Run(t, func(t *testing.T, clock *storetest.Clock) store.Store {
		return newStore(t, redisstore.Config{Client: cc, Now: clock.Now})
	})
}

// scanTTLs returns the remaining life of every key of a namespace.
func scanTTLs(t *testing.T, c *redis.Client, ns string) map[string]time.Duration {
	t.Helper()
	ctx := context.Background()
	out := make(map[string]time.Duration)
	iter := c.Scan(ctx, 0, "{"+ns+"}:*", 1000).Iterator()
	for iter.Next(ctx) {
		ttl, err := c.PTTL(ctx, iter.Val()).Result()
		require.NoError(t, err)
		out[iter.Val()] = ttl
	}
	require.NoError(t, iter.Err())
	return out
}

// globalKey reports whether key is one of the few namespace-wide keys that
// are bounded by trimming rather than a TTL.
func globalKey(ns, key string) bool {
	rest := strings.TrimPrefix(key, "{"+ns+"}:")
	for _, p := range []string{"ready:", "delayed:", "running:"} {
		if strings.HasPrefix(rest, p) {
			return true
		}
	}
	return rest == "seq" || rest == "lease" || rest == "dead"
}

func TestEveryKeyHasABoundedLifetime(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	ns := namespace()
	const (
		succeeded = 3 * time.Hour
		failed    = 5 * time.Hour
		inboxTTL  = 2 * time.Hour
		pending   = failed + 24*time.Hour
	)
	s := newStore(t, redisstore.Config{Client: c, Namespace: ns,
		SucceededRetention: succeeded, FailedRetention: failed, InboxTTL: inboxTTL})
	require.NoError(t, s.OpenInbox(ctx, "client"))
	done := runThreeStep(t, s, 1, "client")[0]

	// A failed run, a cancelled one, one still pending with a running call,
	// and a delayed retry.
	storetest.MustSubmit(t, s, store.Submission{Ref: store.Ref{Unit: "failed", Path: "0"}, Name: "flow"})
	ds, err := s.Reserve(ctx, store.LaneAsync, "w", 1, time.Minute, 0)
	require.NoError(t, err)
	outs, err := s.Complete(ctx, "w", []store.Completion{{Ref: ds[0].Ref, LeaseID: ds[0].LeaseID, Error: &store.ErrorInfo{Type: "E"}}})
	require.NoError(t, err)
	require.Equal(t, []store.CompleteOutcome{store.Recorded}, outs)
	storetest.MustSubmit(t, s, store.Submission{Ref: store.Ref{Unit: "cancelled", Path: "0"}, Name: "flow"})
	_, err = s.Cancel(ctx, "cancelled", "", "")
	require.NoError(t, err)
	storetest.MustSubmit(t, s, store.Submission{Ref: store.Ref{Unit: "live", Path: "0"}, Name: "flow", Inbox: "client"})
	storetest.MustSubmit(t, s, store.Submission{Ref: store.Ref{Unit: "live", Path: "0.1"}, Parent: "0", Depth: 1, Name: "step",
		Lane: store.LaneBlocking, Opts: store.Options{Retries: 3, BackoffMs: 60_000}})
	storetest.MustSubmit(t, s, store.Submission{Ref: store.Ref{Unit: "live", Path: "0.2"}, Parent: "0", Depth: 1, Name: "step",
		Lane: store.LaneBlocking})
	ds, err = s.Reserve(ctx, store.LaneBlocking, "w", 1, time.Minute, 0)
	require.NoError(t, err)
	outs, err = s.Complete(ctx, "w", []store.Completion{{Ref: ds[0].Ref, LeaseID: ds[0].LeaseID, Error: &store.ErrorInfo{Type: "E"}}})
	require.NoError(t, err)
	require.Equal(t, []store.CompleteOutcome{store.Retrying}, outs)
	_, err = s.Reserve(ctx, store.LaneBlocking, "w", 1, time.Minute, 0)
	require.NoError(t, err)

	within := func(want, got time.Duration, key string) {
		t.Helper()
		require.InDelta(t, want.Seconds(), got.Seconds(), 60, "TTL of %s", key)
	}
	ttls := scanTTLs(t, c, ns)
	require.NotEmpty(t, ttls)
	for key, ttl := range ttls {
		if globalKey(ns, key) {
			continue
		}
		require.Positive(t, ttl, "%s has no TTL", key)
		rest := strings.TrimPrefix(key, "{"+ns+"}:")
		switch {
		case rest == "alive", rest == "runs":
			// The indexes of finished runs and of live workers outlive no
			// run they could list.
			within(pending, ttl, key)
		case strings.Contains(rest, done):
			within(succeeded, ttl, key)
		case strings.HasPrefix(rest, "o:failed:"), rest == "u:failed",
			strings.HasPrefix(rest, "o:cancelled:"), rest == "u:cancelled":
			within(failed, ttl, key)
		case strings.HasPrefix(rest, "o:live:"), rest == "u:live", rest == "bc:live":
			within(pending, ttl, key)
		case rest == "in:client", rest == "nt:client":
			within(inboxTTL, ttl, key)
		case strings.HasPrefix(rest, "signal:"):
			require.LessOrEqual(t, ttl, time.Minute, key)
		default:
			t.Errorf("unexpected key %s", key)
		}
	}
	for _, k := range []string{"o:" + done + ":0", "o:" + done + ":0.3", "u:" + done, "o:failed:0", "o:live:0.1", "in:client"} {
		require.Contains(t, ttls, "{"+ns+"}:"+k)
	}

	// The dead-letter list is trimmed past the failed retention.
	dead, err := s.Failed(ctx, 0, 10)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	_, err = s.Reclaim(ctx, time.Now().Add(failed+time.Minute))
	require.NoError(t, err)
	n, err := c.ZCard(ctx, "{"+ns+"}:dead").Result()
	require.NoError(t, err)
	require.Zero(t, n, "dead letters past the retention are trimmed")
}

func TestMalformedRecords(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	ns := namespace()
	s := newStore(t, redisstore.Config{Client: c, Namespace: ns})
	require.NoError(t, s.OpenInbox(ctx, "client"))
	sub := func(u string) store.Submission {
		return store.Submission{Ref: store.Ref{Unit: u, Path: "0"}, Name: "flow", Args: []byte("x"), Inbox: "client"}
	}
	storetest.MustSubmit(t, s, sub("garbled"), sub("wrongtype"), sub("good"))
	key := func(u string) string { return "{" + ns + "}:o:" + u + ":0" }
	require.NoError(t, c.HSet(ctx, key("garbled"), "s", "garbage").Err())
	require.NoError(t, c.Del(ctx, key("wrongtype")).Err())
	require.NoError(t, c.Set(ctx, key("wrongtype"), "not a hash", 0).Err())

	_, err := s.Get(ctx, store.Ref{Unit: "garbled", Path: "0"})
	require.ErrorIs(t, err, redisstore.ErrMalformed)
	require.Contains(t, err.Error(), "garbled/0")
	require.Contains(t, err.Error(), "garbage")
	_, err = s.Get(ctx, store.Ref{Unit: "wrongtype", Path: "0"})
	require.Error(t, err)
	require.Contains(t, err.Error(), "wrongtype/0")
	require.Contains(t, err.Error(), "WRONGTYPE")
	op, err := s.Get(ctx, store.Ref{Unit: "good", Path: "0"})
	require.NoError(t, err)
	require.Equal(t, store.StatusPending, op.Status)

	ds, err := s.Reserve(ctx, store.LaneAsync, "w", 10, time.Minute, 0)
	require.NoError(t, err, "a malformed record does not break Reserve")
	require.Len(t, ds, 1, "malformed records are skipped")
	require.Equal(t, "good", ds[0].Ref.Unit)

	outs, errs := s.Submit(ctx, []store.Submission{sub("garbled"), sub("other"), sub("wrongtype")})
	require.ErrorIs(t, errs[0], redisstore.ErrMalformed)
	require.NoError(t, errs[1], "the rest of the batch goes through")
	require.Equal(t, store.Created, outs[1])
	require.ErrorIs(t, errs[2], redisstore.ErrMalformed)
	require.ErrorIs(t, s.Watch(ctx, store.Ref{Unit: "garbled", Path: "0"}, "client"), redisstore.ErrMalformed)

	couts, err := s.Complete(ctx, "w", []store.Completion{
		{Ref: store.Ref{Unit: "garbled", Path: "0"}, LeaseID: 1, OK: true},
		{Ref: ds[0].Ref, LeaseID: ds[0].LeaseID, OK: true, Result: []byte("fine")},
		{Ref: store.Ref{Unit: "wrongtype", Path: "0"}, LeaseID: 1},
	})
	require.NoError(t, err)
	require.Equal(t, []store.CompleteOutcome{store.Stale, store.Recorded, store.Stale}, couts)

	// A damaged stored error fails Get of that op only.
	require.NoError(t, c.HSet(ctx, key("good"), "e", "\xff\x00").Err())
	_, err = s.Get(ctx, store.Ref{Unit: "good", Path: "0"})
	require.ErrorIs(t, err, redisstore.ErrMalformed)

	// A damaged note is dropped; the others are delivered.
	require.NoError(t, c.LPush(ctx, "{"+ns+"}:nt:client", "\xc1 not a note").Err())
	notes, err := s.Pop(ctx, "client", 0, 0)
	require.NoError(t, err)
	require.Len(t, notes, 1)
	require.Equal(t, []byte("fine"), notes[0].Result)

	_, err = s.Stats(ctx)
	require.NoError(t, err)
	n, err := s.Cancel(ctx, "garbled", "", "")
	require.NoError(t, err)
	require.Zero(t, n, "nothing readable to cancel")
}

// A Redis that lost its script cache (restart, SCRIPT FLUSH) is served by
// EVAL, for single calls and for pipelined batches alike.
func TestScriptCacheFlushed(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	s := newStore(t, redisstore.Config{Client: c})
	require.NoError(t, c.ScriptFlush(ctx).Err())
	subs := make([]store.Submission, 400) // several script calls in one pipeline
	for i := range subs {
		subs[i] = store.Submission{Ref: store.Ref{Unit: "u" + strconv.Itoa(i), Path: "0"}, Name: "flow"}
	}
	storetest.MustSubmit(t, s, subs...)
	require.NoError(t, c.ScriptFlush(ctx).Err())
	ds, err := s.Reserve(ctx, store.LaneAsync, "w", 400, time.Minute, 0)
	require.NoError(t, err)
	require.Len(t, ds, 400)
	require.NoError(t, c.ScriptFlush(ctx).Err())
	mustComplete(t, s, "w", ds, []byte("ok"))
}

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestOpen(t *testing.T) {
	client(t) // skips without redis-server
	ctx := context.Background()
	// go-redis's own lines go nowhere while connections fail on purpose; through
	// a route of their own, so the package's router stays installed for later tests.
	t.Cleanup(redisstore.RouteLogs(slog.New(slog.NewTextHandler(io.Discard, nil))))

	s, err := redisstore.Open(ctx, "redis://"+redisAddr+"/0", redisstore.Config{Namespace: namespace()})
	require.NoError(t, err)
	storetest.MustSubmit(t, s, store.Submission{Ref: store.Ref{Unit: "u", Path: "0"}, Name: "flow"})
	_, err = s.Stats(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	dead := closedPort(t)
	bad := []struct {
		url, shown, why string
		kind            error
	}{
		{"redis://user:s3cret@" + dead + "/0", "redis://user:xxxxx@" + dead + "/0", "unreachable", store.ErrUnavailable},
		{"rediss://:s3cret@" + dead, "rediss://:xxxxx@" + dead, "unreachable over TLS", store.ErrUnavailable},
		{"redis+sentinel://u:s3cret@" + dead + "," + dead + "/mymaster/0", "redis+sentinel://u:xxxxx@" + dead + "," + dead + "/mymaster/0", "no sentinel", store.ErrUnavailable},
		{"redis+cluster://:s3cret@" + dead + "," + dead, "redis+cluster://:xxxxx@" + dead + "," + dead, "no cluster node", store.ErrUnavailable},
		{"redis+sentinel://:s3cret@" + dead, "redis+sentinel://:xxxxx@" + dead, "no master name", store.ErrInvalid},
		{"http://u:s3cret@example.com", "http://u:xxxxx@example.com", "unknown scheme", store.ErrInvalid},
		{"redis://u:s3cret@host:notaport", "redis://u:xxxxx@host:notaport", "bad port", store.ErrInvalid},
		{"redis://" + dead + "/0?password=s3cret", "redis://" + dead + "/0?password=xxxxx", "password option", store.ErrInvalid},
	}
	for _, b := range bad {
		begin := time.Now()
		_, err := redisstore.Open(ctx, b.url, redisstore.Config{})
		took := time.Since(begin)
		require.Error(t, err, b.why)
		require.ErrorIs(t, err, b.kind, b.why)
		require.Contains(t, err.Error(), b.shown, "%s: the error names the URL", b.why)
		require.NotContains(t, err.Error(), "s3cret", "%s: the password is redacted", b.why)
		require.Less(t, took, redisstore.OpenTimeout+2*time.Second, "%s: Open gives up in bounded time", b.why)
		t.Logf("%s (%v): %v", b.why, took.Round(time.Millisecond), err)
	}
}

// A wrong password or an unknown user reads as refused credentials, not as
// a Redis that does not answer, and the password stays hidden.
func TestOpenWithWrongCredentials(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	user := "blazing-" + namespace()
	require.NoError(t, c.Do(ctx, "ACL", "SETUSER", user, "on", ">right-s3cret", "~*", "+@all").Err())
	t.Cleanup(func() { c.Do(context.Background(), "ACL", "DELUSER", user) })

	s, err := redisstore.Open(ctx, "redis://"+user+":right-s3cret@"+redisAddr+"/0", redisstore.Config{Namespace: namespace()})
	require.NoError(t, err, "the right password opens")
	require.NoError(t, s.Close())

	for _, u := range []string{
		"redis://" + user + ":wrong-s3cret@" + redisAddr + "/0",
		"redis://no-such-user:wrong-s3cret@" + redisAddr + "/0",
	} {
		_, err := redisstore.Open(ctx, u, redisstore.Config{})
		require.ErrorIs(t, err, store.ErrUnavailable, u)
		require.ErrorContains(t, err, "Redis refused the credentials (WRONGPASS", u)
		require.Contains(t, err.Error(), ":xxxxx@"+redisAddr, "the URL is named, its password hidden")
		require.NotContains(t, err.Error(), "s3cret")
	}
}

// BenchmarkSubmitReserveComplete drives batches of 100 root steps through
// submit, reserve, complete and the caller's pop, with history on (each run
// indexed) and off; `-count N` alternates the two N times
// (benchmarks/history_cost.py reads them).
func BenchmarkSubmitReserveComplete(b *testing.B) {
	for _, h := range []struct {
		name string
		off  bool
	}{{"history=on", false}, {"history=off", true}} {
		b.Run(h.name, func(b *testing.B) { benchSubmitReserveComplete(b, h.off) })
	}
}

func benchSubmitReserveComplete(b *testing.B, noHistory bool) {
	c := client(b)
	ctx := context.Background()
	s := newStore(b, redisstore.Config{Client: c, NoHistory: noHistory})
	require.NoError(b, s.OpenInbox(ctx, "client"))
	const batch = 100
	subs := make([]store.Submission, batch)
	comps := make([]store.Completion, batch)
	n := 0
	redisUsec := func() float64 { // time Redis spent inside commands, all of them
		info, err := c.Info(ctx, "commandstats").Result()
		require.NoError(b, err)
		var total float64
		for _, line := range strings.Split(info, "\n") {
			if _, rest, ok := strings.Cut(line, ",usec="); ok {
				v, _, _ := strings.Cut(rest, ",")
				f, err := strconv.ParseFloat(v, 64)
				require.NoError(b, err)
				total += f
			}
		}
		return total
	}
	before := redisUsec()
	b.ResetTimer()
	for b.Loop() {
		for i := range subs {
			n++
			subs[i] = store.Submission{Ref: store.Ref{Unit: "b" + strconv.Itoa(n), Path: "0"}, Name: "noop",
				Args: []byte("args"), Inbox: "client"}
		}
		if _, errs := s.Submit(ctx, subs); errs[0] != nil {
			b.Fatal(errs[0])
		}
		ds, err := s.Reserve(ctx, store.LaneAsync, "w", batch, time.Minute, 0)
		if err != nil || len(ds) != batch {
			b.Fatalf("reserve: %v, %d", err, len(ds))
		}
		for i, d := range ds {
			comps[i] = store.Completion{Ref: d.Ref, LeaseID: d.LeaseID, OK: true, Result: []byte("ok")}
		}
		if _, err := s.Complete(ctx, "w", comps); err != nil {
			b.Fatal(err)
		}
		if notes, err := s.Pop(ctx, "client", 0, 0); err != nil || len(notes) != batch {
			b.Fatalf("pop: %v, %d", err, len(notes))
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "steps/s")
	// Redis's own time per step: what history adds inside Redis, without the
	// scheduling noise of a shared machine in the wall-clock rate.
	b.ReportMetric((redisUsec()-before)/float64(b.N*batch), "redis-µs/step")
}

// With the real clock, a Reserve blocked on an empty lane returns when a
// delayed retry comes due, well before its wait ends; NextDue reports it.
func TestReserveWakesForDueRetry(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, redisstore.Config{})
	_, ok := s.NextDue()
	require.False(t, ok, "nothing delayed")
	storetest.MustSubmit(t, s, store.Submission{Ref: store.Ref{Unit: "u", Path: "0"}, Name: "flow",
		Opts: store.Options{Retries: 1, BackoffMs: 400, BackoffMaxMs: 400}})
	ds, err := s.Reserve(ctx, store.LaneAsync, "w", 1, time.Minute, 0)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	failedAt := time.Now()
	outs, err := s.Complete(ctx, "w", []store.Completion{{Ref: ds[0].Ref, LeaseID: ds[0].LeaseID, Error: &store.ErrorInfo{Type: "E"}}})
	require.NoError(t, err)
	require.Equal(t, []store.CompleteOutcome{store.Retrying}, outs)

	due, ok := s.NextDue()
	require.True(t, ok)
	require.WithinRange(t, due, failedAt.Add(150*time.Millisecond), failedAt.Add(450*time.Millisecond), "backoff 400ms with jitter: 200-400ms")

	begin := time.Now()
	ds, err = s.Reserve(ctx, store.LaneAsync, "w", 1, time.Minute, 10*time.Second)
	took := time.Since(begin)
	require.NoError(t, err)
	require.Len(t, ds, 1, "the retry, once due")
	require.Equal(t, 2, ds[0].Attempt)
	require.Less(t, took, 2*time.Second, "woken by the due time, not the end of the wait")
	_, ok = s.NextDue()
	require.False(t, ok)
}

// Parent and depth are stored only when they differ from what the path
// says, and read back either way.
func TestParentAndDepthRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, redisstore.Config{})
	storetest.MustSubmit(t, s,
		store.Submission{Ref: store.Ref{Unit: "u", Path: "0"}, Name: "flow"},
		store.Submission{Ref: store.Ref{Unit: "u", Path: "0.1"}, Parent: "0", Depth: 1, Name: "a", Lane: store.LaneBlocking},
		store.Submission{Ref: store.Ref{Unit: "u", Path: "0.1.5"}, Parent: "0", Depth: 7, Name: "b", Lane: store.LaneBlocking})
	for _, want := range []struct {
		path, parent string
		depth        int
	}{{"0", "", 0}, {"0.1", "0", 1}, {"0.1.5", "0", 7}} {
		op, err := s.Get(ctx, store.Ref{Unit: "u", Path: want.path})
		require.NoError(t, err)
		require.Equal(t, want.parent, op.Parent, want.path)
		require.Equal(t, want.depth, op.Depth, want.path)
	}
	ds, err := s.Reserve(ctx, store.LaneBlocking, "w", 10, time.Minute, 0)
	require.NoError(t, err)
	require.Len(t, ds, 2)
	require.Equal(t, "0", ds[1].Parent)
	require.Equal(t, 7, ds[1].Depth)

	// Finishing the root cancels its calls by the parent they were
	// submitted with, whatever their paths say.
	root, err := s.Reserve(ctx, store.LaneAsync, "w", 1, time.Minute, 0)
	require.NoError(t, err)
	mustComplete(t, s, "w", root, nil)
	for _, p := range []string{"0.1", "0.1.5"} {
		op, err := s.Get(ctx, store.Ref{Unit: "u", Path: p})
		require.NoError(t, err)
		require.Equal(t, store.StatusCancelled, op.Status, p)
	}
}

// A Reserve that follows one which found the lane empty blocks at once
// (skipping its script); work submitted before it blocks still wakes it,
// and a retry another worker schedules meanwhile is not missed.
func TestReserveAfterEmptyStillWakes(t *testing.T) {
	ctx := context.Background()
	ns := namespace()
	s := newStore(t, redisstore.Config{Namespace: ns})
	ds, err := s.Reserve(ctx, store.LaneAsync, "w", 4, time.Minute, 0)
	require.NoError(t, err)
	require.Empty(t, ds, "nothing submitted yet: the lane is found empty")
	storetest.MustSubmit(t, s, store.Submission{Ref: store.Ref{Unit: "late", Path: "0"}, Name: "flow"})
	begin := time.Now()
	ds, err = s.Reserve(ctx, store.LaneAsync, "w", 4, time.Minute, 10*time.Second)
	require.NoError(t, err)
	require.Len(t, ds, 1, "the submission's signal token wakes the skipping Reserve")
	require.Less(t, time.Since(begin), 5*time.Second)

	// The lane is empty again (1 < 4 delivered); a failure schedules a retry.
	other := newStore(t, redisstore.Config{Namespace: ns}) // another worker process
	storetest.MustSubmit(t, s, store.Submission{Ref: store.Ref{Unit: "retry", Path: "0"}, Name: "flow",
		Opts: store.Options{Retries: 1, BackoffMs: 300, BackoffMaxMs: 300}})
	got, err := other.Reserve(ctx, store.LaneAsync, "w2", 1, time.Minute, 0)
	require.NoError(t, err)
	require.Len(t, got, 1)
	_, err = other.Complete(ctx, "w2", []store.Completion{{Ref: got[0].Ref, LeaseID: got[0].LeaseID, Error: &store.ErrorInfo{Type: "E"}}})
	require.NoError(t, err)
	begin = time.Now()
	ds, err = s.Reserve(ctx, store.LaneAsync, "w", 4, time.Minute, 10*time.Second)
	require.NoError(t, err)
	require.Len(t, ds, 1, "the retry comes due and is reserved")
	require.Less(t, time.Since(begin), 5*time.Second, "well before the 10 s wait ends")
}
