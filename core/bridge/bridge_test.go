package bridge_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/blazingflow/blazing/core/bridge"
	"github.com/blazingflow/blazing/core/engine"
	"github.com/blazingflow/blazing/core/frames"
	"github.com/blazingflow/blazing/core/internal/msgpacktest"
	"github.com/blazingflow/blazing/core/store"
)

func open(t *testing.T, cfg map[string]any) *bridge.Session {
	t.Helper()
	s, err := bridge.Open(context.Background(), msgpacktest.Pack(t, cfg))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func submitCmd(unit, path, parent, name string, args []byte, token uint64, timeoutMs int) []any {
	depth := 0
	if parent != "" {
		depth = 1
	}
	return []any{frames.CmdSubmit, unit, path, parent, depth, name, 0, args, token, 0, 0, 0, timeoutMs, 0}
}

func completeCmd(unit, path string, result []byte) []any {
	return []any{frames.CmdComplete, unit, path, 1, true, result, nil, false}
}

// reply is a decoded [errors, events] frame.
type reply struct {
	Errors [][]any
	Events [][]any
}

func decodeReply(t *testing.T, b []byte) reply {
	t.Helper()
	var raw []any
	require.NoError(t, msgpack.Unmarshal(b, &raw))
	require.Len(t, raw, 2)
	var r reply
	for _, e := range raw[0].([]any) {
		r.Errors = append(r.Errors, e.([]any))
	}
	for _, e := range raw[1].([]any) {
		r.Events = append(r.Events, e.([]any))
	}
	return r
}

func batch(t *testing.T, s *bridge.Session, cmds ...[]any) reply {
	t.Helper()
	arr := make([]any, len(cmds))
	for i, c := range cmds {
		arr[i] = c
	}
	out, err := s.Batch(context.Background(), msgpacktest.Pack(t, arr))
	require.NoError(t, err)
	return decodeReply(t, out)
}

func TestOpenBadConfig(t *testing.T) {
	ctx := context.Background()
	for name, frame := range map[string][]byte{
		"nil":                  nil,
		"empty":                {},
		"garbage":              []byte("\xc1\xc1\xc1"),
		"not msgpack":          []byte("inbox=t"),
		"truncated map":        msgpacktest.Pack(t, map[string]any{"inbox": "t", "async": 1})[:6],
		"a string":             msgpacktest.Pack(t, "inbox"),
		"an int":               msgpacktest.Pack(t, 5),
		"no inbox":             msgpacktest.Pack(t, map[string]any{"async": 1}),
		"empty inbox":          msgpacktest.Pack(t, map[string]any{"inbox": ""}),
		"inbox is an int":      msgpacktest.Pack(t, map[string]any{"inbox": 7}),
		"async is a string":    msgpacktest.Pack(t, map[string]any{"inbox": "t", "async": "4"}),
		"negative async":       msgpacktest.Pack(t, map[string]any{"inbox": "t", "async": -1}),
		"negative blocking":    msgpacktest.Pack(t, map[string]any{"inbox": "t", "blocking": -1}),
		"negative lease":       msgpacktest.Pack(t, map[string]any{"inbox": "t", "lease_ms": -1}),
		"negative heartbeat":   msgpacktest.Pack(t, map[string]any{"inbox": "t", "heartbeat_ms": -1}),
		"negative reclaim":     msgpacktest.Pack(t, map[string]any{"inbox": "t", "reclaim_ms": -1}),
		"negative retention":   msgpacktest.Pack(t, map[string]any{"inbox": "t", "retention_s": -1}),
		"unknown store":        msgpacktest.Pack(t, map[string]any{"inbox": "t", "store": "etcd"}),
		"redis without url":    msgpacktest.Pack(t, map[string]any{"inbox": "t", "store": "redis"}),
		"store name wrong":     msgpacktest.Pack(t, map[string]any{"inbox": "t", "store": "Memory"}),
		"huge str header":      {0x81, 0xa5, 'i', 'n', 'b', 'o', 'x', 0xdb, 0xff, 0xff, 0xff, 0xff, 't'},
		"huge map header":      {0xdf, 0xff, 0xff, 0xff, 0xff},
		"deeply nested arrays": append(repeat(0x91, 10_000), 0xc0),
	} {
		t.Run(name, func(t *testing.T) {
			s, err := bridge.Open(ctx, frame)
			if s != nil {
				_ = s.Close()
			}
			require.Nil(t, s)
			require.ErrorIs(t, err, bridge.ErrConfig)
		})
	}
}

// The TLS files of the config frame reach the Redis store, and an open
// that fails on the settings or on an unreachable Redis is classified so
// that Python raises the right error.
func TestOpenRedisTLSConfig(t *testing.T) {
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := l.Addr().String()
	require.NoError(t, l.Close())
	missing := filepath.Join(t.TempDir(), "ca.pem")
	for _, c := range []struct {
		cfg       map[string]any
		code, msg string
	}{
		{map[string]any{"url": "redis://" + dead + "/0", "tls_ca_file": missing},
			"invalid", "tls_ca_file is set but redis:// does not use TLS"},
		{map[string]any{"url": "rediss://" + dead + "/0", "tls_ca_file": missing},
			"invalid", "tls_ca_file " + missing + ": cannot read it"},
		{map[string]any{"url": "rediss://" + dead + "/0", "tls_key_file": missing},
			"invalid", "tls_key_file " + missing + " is given without tls_cert_file"},
		{map[string]any{"url": "redis://:s3cret@" + dead + "/0"},
			"unavailable", "Redis does not answer"},
	} {
		c.cfg["inbox"], c.cfg["store"], c.cfg["connect_timeout_ms"] = "t", "redis", 1000
		s, err := bridge.Open(ctx, msgpacktest.Pack(t, c.cfg))
		require.Nil(t, s)
		require.ErrorContains(t, err, c.msg)
		require.Equal(t, c.code, frames.Code(err), "%v", err)
		require.NotContains(t, err.Error(), "s3cret")
	}
}

// A Redis that accepts connections and never answers fails the open within
// connect_timeout_ms (go-redis alone would wait for its own 3 s read
// timeout, then more), classified as a timeout: Python raises StoreTimeout,
// a ConnectionError and a TimeoutError.
func TestOpenSilentRedisHonoursConnectTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	var held []net.Conn // accepted and never answered
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return // closed by the cleanup
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			_ = c.Close()
		}
	})
	cfg := map[string]any{"inbox": "t", "store": "redis", "url": "redis://" + l.Addr().String() + "/0",
		"connect_timeout_ms": 500}
	began := time.Now()
	s, err := bridge.Open(context.Background(), msgpacktest.Pack(t, cfg))
	took := time.Since(began)
	require.Nil(t, s)
	// It says what it had left of the 500 ms when it began, to 10 ms: the decoding
	// before it takes a few on a loaded machine.
	require.Error(t, err)
	require.Regexp(t, `Redis does not answer \(waited up to (4\d0|500)ms\)`, err.Error())
	require.ErrorIs(t, err, store.ErrTimeout)
	require.ErrorIs(t, err, store.ErrUnavailable)
	require.Equal(t, "timeout", frames.Code(err), "%v", err)
	// Far below what go-redis's own timeouts give (>= 3 s), whatever the machine's load.
	require.Less(t, took, 2900*time.Millisecond, "the open waited past connect_timeout_ms")
}

func repeat(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func TestOpenDefaults(t *testing.T) {
	for _, cfg := range []map[string]any{
		{"inbox": "t"},
		{"inbox": "t", "store": "memory", "async": 0, "blocking": 0, "lease_ms": 0},
		{"inbox": "t", "store": "", "async": 3, "blocking": 2, "lease_ms": 1000, "heartbeat_ms": 100, "reclaim_ms": 50, "retention_s": 60},
	} {
		open(t, cfg)
	}
}

func TestBatchCycle(t *testing.T) {
	s := open(t, map[string]any{"inbox": "b", "async": 1})
	args := []byte{0x92, 0x91, 0x01, 0x80}

	r := batch(t, s, submitCmd("u", "0", "", "flow", args, 5, 0))
	require.Empty(t, r.Errors)
	require.Len(t, r.Events, 1)
	ev := r.Events[0]
	require.Len(t, ev, 9)
	require.Equal(t, int64(engine.EventDeliver), msgpacktest.Int64(t, ev[0]))
	require.Equal(t, "u", ev[1])
	require.Equal(t, "0", ev[2])
	require.Equal(t, "", ev[3])
	require.Equal(t, int64(0), msgpacktest.Int64(t, ev[4]))
	require.Equal(t, "flow", ev[5])
	require.Equal(t, int64(store.LaneAsync), msgpacktest.Int64(t, ev[6]))
	require.Equal(t, args, ev[7])
	require.Equal(t, int64(1), msgpacktest.Int64(t, ev[8]))

	r = batch(t, s, completeCmd("u", "0", []byte("result")))
	require.Empty(t, r.Errors)
	require.Len(t, r.Events, 1)
	ev = r.Events[0]
	require.Len(t, ev, 5)
	require.Equal(t, int64(engine.EventResult), msgpacktest.Int64(t, ev[0]))
	require.Equal(t, int64(5), msgpacktest.Int64(t, ev[1]))
	require.Equal(t, int64(store.StatusSucceeded), msgpacktest.Int64(t, ev[2]))
	require.Equal(t, []byte("result"), ev[3])
	require.Nil(t, ev[4])

	// Nothing else is pending: an empty batch replies [[], []].
	r = batch(t, s)
	require.Empty(t, r.Errors)
	require.Empty(t, r.Events)
}

func TestBatchCompleteThenSubmitInOneBatch(t *testing.T) {
	// The reply to a batch carries the next delivery the freed slot allows.
	s := open(t, map[string]any{"inbox": "b", "async": 1})
	r := batch(t, s, submitCmd("a", "0", "", "flow", nil, 1, 0))
	require.Len(t, r.Events, 1)
	r = batch(t, s, submitCmd("b", "0", "", "flow", nil, 2, 0), completeCmd("a", "0", []byte("ra")))
	require.Empty(t, r.Errors)
	kinds := map[int64][]any{}
	for _, ev := range r.Events {
		kinds[msgpacktest.Int64(t, ev[0])] = ev
	}
	require.Len(t, r.Events, 2)
	require.Equal(t, "b", kinds[int64(engine.EventDeliver)][1])
	require.Equal(t, int64(1), msgpacktest.Int64(t, kinds[int64(engine.EventResult)][1]))
}

func TestBatchMalformedKeepsSessionUsable(t *testing.T) {
	ctx := context.Background()
	s := open(t, map[string]any{"inbox": "b", "async": 1})
	for name, frame := range map[string][]byte{
		"nil":             nil,
		"garbage":         []byte("\xc1"),
		"not an array":    msgpacktest.Pack(t, map[string]any{"a": 1}),
		"unknown command": msgpacktest.Pack(t, []any{[]any{9}}),
		"bad lane":        msgpacktest.Pack(t, []any{[]any{frames.CmdSubmit, "u", "0", "", 0, "flow", 7, nil, 1, 0, 0, 0, 0, 0}}),
		"trailing":        append(msgpacktest.Pack(t, []any{}), 0x00),
		"huge array":      {0xdd, 0xff, 0xff, 0xff, 0xff},
		"nested":          append(repeat(0x91, 100_000), 0xc0),
	} {
		t.Run(name, func(t *testing.T) {
			out, err := s.Batch(ctx, frame)
			require.Nil(t, out)
			require.ErrorIs(t, err, frames.ErrMalformed)
			require.Equal(t, "invalid", frames.Code(err))
		})
	}
	// A malformed batch runs none of its commands, even the valid ones
	// before the bad one.
	bad := msgpacktest.Pack(t, []any{submitCmd("x", "0", "", "flow", nil, 1, 0), []any{frames.CmdCapacity, 5, 1}})
	_, err := s.Batch(ctx, bad)
	require.ErrorIs(t, err, frames.ErrMalformed)
	_, err = s.Get(ctx, msgpacktest.Pack(t, []any{"x", "0"}))
	require.ErrorIs(t, err, store.ErrNotFound)

	r := batch(t, s, submitCmd("u", "0", "", "flow", nil, 1, 0))
	require.Len(t, r.Events, 1)
	r = batch(t, s, completeCmd("u", "0", nil))
	require.Len(t, r.Events, 1)
	require.Equal(t, int64(store.StatusSucceeded), msgpacktest.Int64(t, r.Events[0][2]))
}

func TestPerCommandErrors(t *testing.T) {
	s := open(t, map[string]any{"inbox": "b", "async": 0})
	r := batch(t, s, submitCmd("u", "0", "", "flow", nil, 1, 0))
	require.Empty(t, r.Errors)

	r = batch(t, s,
		submitCmd("v", "0", "", "flow", nil, 2, 0),                             // 0: fine
		submitCmd("u", "0", "", "other", nil, 3, 0),                            // 1: conflict
		[]any{frames.CmdCapacity, 0, -1},                                       // 2: below zero
		[]any{frames.CmdCancel, "nobody", "", "x"},                             // 3: not found
		[]any{frames.CmdWatch, "nobody", "0", 4},                               // 4: not found
		submitCmd("w", "0.1", "0", "step", nil, 5, 0),                          // 5: parent missing: lost
		submitCmd("u", "0", "", "flow", nil, 6, 0),                             // 6: joins
		[]any{frames.CmdSubmit, "", "0", "", 0, "f", 0, nil, 7, 0, 0, 0, 0, 0}, // 7: empty unit
	)
	got := map[int64][]any{}
	for _, e := range r.Errors {
		require.Len(t, e, 3)
		got[msgpacktest.Int64(t, e[0])] = e
	}
	require.Len(t, got, 6, "errors: %v", r.Errors)
	for idx, code := range map[int64]string{1: "conflict", 2: "invalid", 3: "not_found", 4: "not_found", 5: "lost", 7: "invalid"} {
		require.Contains(t, got, idx)
		require.Equal(t, code, got[idx][1], "command %d", idx)
		require.NotEmpty(t, got[idx][2])
	}
	require.Contains(t, got[1][2], "u/0")

	// The refused submission's token gets nothing; the join's does.
	r = batch(t, s, []any{frames.CmdCapacity, 0, 1})
	require.Len(t, r.Events, 1)
	u := r.Events[0]
	require.Equal(t, "u", u[1], "FIFO: u was submitted first")
	r = batch(t, s, completeCmd("u", "0", []byte("r")))
	var tokens []int64
	for _, ev := range r.Events {
		if msgpacktest.Int64(t, ev[0]) == int64(engine.EventResult) {
			tokens = append(tokens, msgpacktest.Int64(t, ev[1]))
		}
	}
	require.ElementsMatch(t, []int64{1, 6}, tokens)
}

func TestGetAndStats(t *testing.T) {
	ctx := context.Background()
	s := open(t, map[string]any{"inbox": "b", "async": 1, "blocking": 2})
	batch(t, s, submitCmd("u", "0", "", "flow", []byte("a"), 1, 0), submitCmd("v", "0", "", "flow", nil, 2, 0))

	out, err := s.Stats(ctx)
	require.NoError(t, err)
	var st [][]any
	require.NoError(t, msgpack.Unmarshal(out, &st))
	require.Len(t, st, store.NumLanes)
	async := st[0]
	require.Len(t, async, 5)
	require.Equal(t, int64(1), msgpacktest.Int64(t, async[0]), "depth: v waits")
	require.IsType(t, float64(0), async[1])
	require.GreaterOrEqual(t, async[1].(float64), 0.0)
	require.Equal(t, int64(1), msgpacktest.Int64(t, async[2]), "running")
	require.Equal(t, int64(1), msgpacktest.Int64(t, async[3]), "capacity")
	require.Equal(t, int64(1), msgpacktest.Int64(t, async[4]), "inflight")
	blocking := st[1]
	require.Equal(t, []int64{0, 0, 2, 0}, []int64{msgpacktest.Int64(t, blocking[0]), msgpacktest.Int64(t, blocking[2]), msgpacktest.Int64(t, blocking[3]), msgpacktest.Int64(t, blocking[4])})

	batch(t, s, completeCmd("u", "0", []byte("done")))
	out, err = s.Get(ctx, msgpacktest.Pack(t, []any{"u", "0"}))
	require.NoError(t, err)
	var op []any
	require.NoError(t, msgpack.Unmarshal(out, &op))
	require.Len(t, op, 15)
	require.Equal(t, "u", op[0])
	require.Equal(t, "0", op[1])
	require.Equal(t, "", op[2])
	require.Equal(t, int64(0), msgpacktest.Int64(t, op[3]))
	require.Equal(t, "flow", op[4])
	require.Equal(t, int64(store.LaneAsync), msgpacktest.Int64(t, op[5]))
	require.Equal(t, int64(store.StatusSucceeded), msgpacktest.Int64(t, op[6]))
	require.Equal(t, int64(1), msgpacktest.Int64(t, op[7]))
	require.Equal(t, "b", op[8])
	created, started, finished := msgpacktest.Int64(t, op[9]), msgpacktest.Int64(t, op[10]), msgpacktest.Int64(t, op[11])
	require.Positive(t, created)
	require.GreaterOrEqual(t, started, created)
	require.GreaterOrEqual(t, finished, started)
	require.Equal(t, []byte("done"), op[12])
	require.Nil(t, op[13])

	out, err = s.Get(ctx, msgpacktest.Pack(t, []any{"v", "0"}))
	require.NoError(t, err)
	var op2 []any
	require.NoError(t, msgpack.Unmarshal(out, &op2))
	require.Equal(t, int64(store.StatusRunning), msgpacktest.Int64(t, op2[6]), "v took u's slot")

	_, err = s.Get(ctx, msgpacktest.Pack(t, []any{"nope", "0"}))
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Equal(t, "not_found", frames.Code(err))
	for _, bad := range [][]byte{nil, []byte("\xc1"), msgpacktest.Pack(t, []any{"u"}), msgpacktest.Pack(t, []any{"u", 0})} {
		_, err = s.Get(ctx, bad)
		require.ErrorIs(t, err, frames.ErrMalformed)
	}
}

func TestWaitGetsTimerEvents(t *testing.T) {
	ctx := context.Background()
	s := open(t, map[string]any{"inbox": "b", "async": 1})
	r := batch(t, s, submitCmd("slow", "0", "", "flow", nil, 9, 50))
	require.Len(t, r.Events, 1)

	// The timeout fires on a timer, outside any batch: Wait gets it.
	var events [][]any
	deadline := time.Now().Add(5 * time.Second)
	for len(events) < 2 && time.Now().Before(deadline) {
		out, err := s.Wait(ctx, time.Until(deadline))
		require.NoError(t, err)
		events = append(events, decodeReply(t, out).Events...)
	}
	require.Len(t, events, 2, "events: %v", events)
	kinds := map[int64][]any{}
	for _, ev := range events {
		kinds[msgpacktest.Int64(t, ev[0])] = ev
	}
	res := kinds[int64(engine.EventResult)]
	require.Equal(t, int64(9), msgpacktest.Int64(t, res[1]))
	require.Equal(t, int64(store.StatusFailed), msgpacktest.Int64(t, res[2]))
	require.Equal(t, "builtins.TimeoutError", res[4].([]any)[0])
	cn := kinds[int64(engine.EventCancel)]
	require.Equal(t, "slow", cn[1])
	require.Equal(t, "0", cn[2])
	require.Equal(t, "builtins.TimeoutError", cn[3].([]any)[0])

	out, err := s.Wait(ctx, 10*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, reply{}, decodeReply(t, out), "a timed-out Wait replies [[], []]")
}

func TestWaitAndBatchAfterClose(t *testing.T) {
	ctx := context.Background()
	s, err := bridge.Open(ctx, msgpacktest.Pack(t, map[string]any{"inbox": "b", "async": 1}))
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() {
		_, err := s.Wait(ctx, 5*time.Second)
		done <- err
	}()
	require.NoError(t, s.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, engine.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return on Close")
	}
	_, err = s.Wait(ctx, time.Second)
	require.ErrorIs(t, err, engine.ErrClosed)
	require.Equal(t, "closed", frames.Code(err))

	_, err = s.Batch(ctx, msgpacktest.Pack(t, []any{submitCmd("u", "0", "", "flow", nil, 1, 0)}))
	require.Error(t, err)
	require.Equal(t, "closed", frames.Code(err), "got %v", err)
	require.NoError(t, s.Close(), "Close is idempotent")
}

// tryBatch is batch for goroutines other than the test's own: it returns
// errors instead of failing the test.
func tryBatch(s *bridge.Session, cmds ...[]any) ([]engine.EventKind, []string, []uint64, error) {
	arr := make([]any, len(cmds))
	for i, c := range cmds {
		arr[i] = c
	}
	frame, err := msgpack.Marshal(arr)
	if err != nil {
		return nil, nil, nil, err
	}
	out, err := s.Batch(context.Background(), frame)
	if err != nil {
		return nil, nil, nil, err
	}
	var r struct {
		_msgpack struct{} `msgpack:",as_array"`
		Errors   [][]any
		Events   [][]any
	}
	if err := msgpack.Unmarshal(out, &r); err != nil {
		return nil, nil, nil, err
	}
	if len(r.Errors) > 0 {
		return nil, nil, nil, fmt.Errorf("command errors: %v", r.Errors)
	}
	var kinds []engine.EventKind
	var units []string
	var tokens []uint64
	for _, ev := range r.Events {
		var k, tok uint64
		if err := msgpack.Unmarshal(must(msgpack.Marshal(ev[0])), &k); err != nil {
			return nil, nil, nil, err
		}
		kinds = append(kinds, engine.EventKind(k))
		switch engine.EventKind(k) {
		case engine.EventDeliver, engine.EventCancel:
			units = append(units, ev[1].(string))
			tokens = append(tokens, 0)
		case engine.EventResult:
			if err := msgpack.Unmarshal(must(msgpack.Marshal(ev[1])), &tok); err != nil {
				return nil, nil, nil, err
			}
			units = append(units, "")
			tokens = append(tokens, tok)
		}
	}
	return kinds, units, tokens, nil
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestConcurrentBatches runs submit/complete cycles from several goroutines
// on one session. Events of one goroutine's work may come back in another
// goroutine's reply, so they are pooled; a goroutine that has not seen its
// event yet sends an empty batch (which pumps) until it has.
func TestConcurrentBatches(t *testing.T) {
	const workers, cycles = 8, 200
	s := open(t, map[string]any{"inbox": "b", "async": workers})
	var mu sync.Mutex
	delivered := map[string]bool{}
	results := map[uint64]bool{}
	run := func(cmds ...[]any) error {
		kinds, units, tokens, err := tryBatch(s, cmds...)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for i, k := range kinds {
			switch k {
			case engine.EventDeliver:
				delivered[units[i]] = true
			case engine.EventResult:
				results[tokens[i]] = true
			}
		}
		return nil
	}
	seen := func(unit string, token uint64) (bool, bool) {
		mu.Lock()
		defer mu.Unlock()
		return delivered[unit], results[token]
	}
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				for i := 0; i < cycles; i++ {
					unit := fmt.Sprintf("w%d-%d", w, i)
					token := uint64(w*cycles + i + 1)
					if err := run(submitCmd(unit, "0", "", "flow", nil, token, 0)); err != nil {
						return err
					}
					deadline := time.Now().Add(5 * time.Second)
					for d, _ := seen(unit, token); !d; d, _ = seen(unit, token) {
						if time.Now().After(deadline) {
							return fmt.Errorf("%s never delivered", unit)
						}
						if err := run(); err != nil {
							return err
						}
					}
					if err := run(completeCmd(unit, "0", nil)); err != nil {
						return err
					}
					for _, r := seen(unit, token); !r; _, r = seen(unit, token) {
						if time.Now().After(deadline) {
							return fmt.Errorf("%s: no result for token %d", unit, token)
						}
						if err := run(); err != nil {
							return err
						}
					}
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, results, workers*cycles)
}

func TestEmbeddedOptimizerMovesSlotsAndRecordsDecisions(t *testing.T) {
	ctx := context.Background()
	s := open(t, map[string]any{"inbox": "opt", "async": 2, "blocking": 1, "auto_optimize": true,
		"optimization_interval_ms": 20, "async_workers": 2, "blocking_workers": 1, "async_concurrency": 1})
	var cmds [][]any
	for i := range 5 {
		// A blocking-lane run nobody completes: the lane stays behind.
		cmds = append(cmds, []any{frames.CmdSubmit, fmt.Sprint("u", i), "0", "", 0, "cpu", 1, nil, 0, 0, 0, 0, 0, 0})
	}
	out, err := s.Batch(ctx, msgpacktest.Pack(t, cmds))
	require.NoError(t, err)
	require.Empty(t, decodeReply(t, out).Errors)
	deadline := time.Now().Add(5 * time.Second)
	var mix []any
	for mix == nil {
		require.True(t, time.Now().Before(deadline), "no mix event")
		out, err := s.Wait(ctx, time.Until(deadline))
		require.NoError(t, err)
		for _, ev := range decodeReply(t, out).Events {
			if ev[0] == int8(engine.EventMix) {
				mix = ev
			}
		}
	}
	require.Equal(t, []any{int8(engine.EventMix), int8(1), int8(2), int8(-1), int8(1)}, mix)

	out, err = s.Query(ctx, msgpacktest.Pack(t, []any{frames.QueryDecisions}))
	require.NoError(t, err)
	var ds []map[string]any
	require.NoError(t, msgpack.Unmarshal(out, &ds))
	last := ds[len(ds)-1]
	require.Equal(t, "move", last["action"])
	require.Equal(t, "blocking", last["to"])
	require.Equal(t, map[string]any{"async": int8(1), "blocking": int8(2)}, last["after"])
	require.Contains(t, last["blocking"], "urgency")
}

func TestEmbeddedOptimizerOffOrBad(t *testing.T) {
	ctx := context.Background()
	s := open(t, map[string]any{"inbox": "off", "async": 1})
	out, err := s.Query(ctx, msgpacktest.Pack(t, []any{frames.QueryDecisions}))
	require.NoError(t, err)
	var ds []any
	require.NoError(t, msgpack.Unmarshal(out, &ds))
	require.Empty(t, ds)
	_, err = bridge.Open(ctx, msgpacktest.Pack(t, map[string]any{"inbox": "bad", "auto_optimize": true, "async_workers": 1}))
	require.ErrorIs(t, err, bridge.ErrConfig)
}
