package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/blazingflow/blazing/core/frames"
	"github.com/blazingflow/blazing/core/store/storetest"
)

// These tests drive the exports as Python's ctypes does, through C memory
// (see cdrive.go), with no Python: every malformed input comes back as an
// error code and a message, replies that do not fit arrive in a malloc'd
// buffer, and nothing panics or writes past the caller's buffer.

const bound = 20 * time.Second

func pack(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return b
}

func submitCmd(unit string, args []byte) []any {
	return []any{frames.CmdSubmit, unit, "0", "", 0, "flow", 0, args, 1, 0, 0, 0, 0, 0}
}

// ok checks a successful reply; it never overruns the buffer.
func ok(t *testing.T, r cResult) []byte {
	t.Helper()
	require.False(t, r.overrun, "wrote past the buffer")
	require.Contains(t, []int64{rcOK, rcBig}, r.rc, "rc %d: %s", r.rc, r.out)
	return r.out
}

// fails checks an error: the code, and a message that says something.
func fails(t *testing.T, want int64, r cResult, msgAndArgs ...any) string {
	t.Helper()
	require.False(t, r.overrun, "wrote past the buffer")
	require.Equal(t, want, r.rc, append([]any{"message %q"}, r.out)...)
	require.False(t, r.big)
	require.NotEmpty(t, r.out, msgAndArgs...)
	return string(r.out)
}

func open(t *testing.T, cfg map[string]any) int64 {
	t.Helper()
	r := cOpen(cCall{in: pack(t, cfg), capacity: 4096})
	require.Greater(t, r.rc, int64(0), "bz_open: rc %d: %s", r.rc, r.out)
	h := r.rc
	t.Cleanup(func() { cClose(h, cCall{capacity: 256}) })
	return h
}

func memSession(t *testing.T) int64 {
	return open(t, map[string]any{"inbox": "t", "async": 64, "blocking": 0})
}

func TestVersion(t *testing.T) {
	require.Equal(t, version, string(ok(t, cVersion(cCall{capacity: 64}))))
	require.Equal(t, version, string(ok(t, cVersion(cCall{capacity: len(version)}))))

	// Too small: an error, its message cut to the buffer; never the big path.
	r := cVersion(cCall{capacity: 4})
	require.Equal(t, "repl", fails(t, rcInternal, r))
	r = cVersion(cCall{capacity: 0})
	require.EqualValues(t, rcInternal, r.rc)
	require.Equal(t, 0, r.outn)
	require.False(t, r.overrun)
	r = cVersion(cCall{capacity: -5})
	require.EqualValues(t, rcInternal, r.rc)
	require.False(t, r.overrun)
	r = cVersion(cCall{capacity: 64, noOut: true})
	require.EqualValues(t, rcInternal, r.rc)
	require.Equal(t, 0, r.outn)
	require.EqualValues(t, rcOK, cVersion(cCall{capacity: 64, noOutn: true}).rc, "no outn: nothing to report")
}

func repeat(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func neg(n int) *int { return &n }

func TestOpenRefusesBadConfigs(t *testing.T) {
	for name, tc := range map[string]struct {
		call cCall
		rc   int64
		msg  string
	}{
		"NULL":                 {cCall{}, rcInvalid, "empty config frame"},
		"empty":                {cCall{in: []byte{}}, rcInvalid, "empty config frame"},
		"NULL with a length":   {cCall{n: neg(12)}, rcInvalid, "empty config frame"},
		"negative length":      {cCall{in: pack(t, map[string]any{"inbox": "t"}), n: neg(-1)}, rcInvalid, "negative frame length -1"},
		"garbage":              {cCall{in: []byte("\xc1\xc1\xc1")}, rcInvalid, "bad configuration"},
		"a string":             {cCall{in: pack(t, "inbox")}, rcInvalid, "bad configuration"},
		"an array":             {cCall{in: pack(t, []any{"t", 1})}, rcInvalid, "bad configuration"},
		"nil":                  {cCall{in: []byte{0xc0}}, rcInvalid, "inbox is required"},
		"no inbox":             {cCall{in: pack(t, map[string]any{})}, rcInvalid, "inbox is required"},
		"inbox is an int":      {cCall{in: pack(t, map[string]any{"inbox": 5})}, rcInvalid, "bad configuration"},
		"async is a string":    {cCall{in: pack(t, map[string]any{"inbox": "t", "async": "4"})}, rcInvalid, "bad configuration"},
		"negative lease":       {cCall{in: pack(t, map[string]any{"inbox": "t", "lease_ms": -1})}, rcInvalid, "negative setting"},
		"unknown store":        {cCall{in: pack(t, map[string]any{"inbox": "t", "store": "etcd"})}, rcInvalid, `unknown store "etcd"`},
		"huge unknown store":   {cCall{in: pack(t, map[string]any{"inbox": "t", "store": strings.Repeat("x", 4<<20)})}, rcInvalid, "unknown store"},
		"redis without url":    {cCall{in: pack(t, map[string]any{"inbox": "t", "store": "redis"})}, rcInvalid, "needs a url"},
		"redis bad url":        {cCall{in: pack(t, map[string]any{"inbox": "t", "store": "redis", "url": "http://x"})}, rcInvalid, "http://x"},
		"redis unreachable":    {cCall{in: pack(t, map[string]any{"inbox": "t", "store": "redis", "url": "redis://127.0.0.1:1", "connect_timeout_ms": 2000})}, rcUnavailable, "connection refused"},
		"optimize no interval": {cCall{in: pack(t, map[string]any{"inbox": "t", "auto_optimize": true})}, rcInvalid, "optimization_interval_ms"},
		"huge str header":      {cCall{in: []byte{0x81, 0xa5, 'i', 'n', 'b', 'o', 'x', 0xdb, 0xff, 0xff, 0xff, 0xff, 't'}}, rcInvalid, "bad configuration"},
		"huge map header":      {cCall{in: []byte{0xdf, 0xff, 0xff, 0xff, 0xff}}, rcInvalid, "bad configuration"},
		"deeply nested":        {cCall{in: append(repeat(0x91, 100_000), 0xc0)}, rcInvalid, "bad configuration"},
	} {
		t.Run(name, func(t *testing.T) {
			tc.call.capacity = 4096
			msg := fails(t, tc.rc, cOpen(tc.call))
			require.Contains(t, msg, tc.msg)
			// The message is cut to a small buffer, not written past it.
			tc.call.capacity = 5
			r := cOpen(tc.call)
			require.Equal(t, tc.rc, r.rc)
			require.Equal(t, msg[:5], string(r.out))
			require.False(t, r.overrun)
		})
	}
}

// A valid submit, and batches that are not batches: each is refused as
// invalid, with a message, and the session keeps working.
func TestBatchRefusesMalformedFrames(t *testing.T) {
	h := memSession(t)
	valid := pack(t, []any{submitCmd("v", nil)})
	bad := map[string][]byte{
		"empty buffer":                       {},
		"nil":                                {0xc0},
		"an int":                             {0x05},
		"a map":                              pack(t, map[string]any{"a": 1}),
		"a string":                           pack(t, "hello"),
		"reserved code":                      {0xc1},
		"text":                               []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"json":                               []byte(`[[1, "u", "0", "", 0, "flow", 0, null, 1, 0, 0, 0, 0, 0]]`),
		"zeros":                              make([]byte, 64),
		"ff":                                 repeat(0xff, 64),
		"array32 claiming 2^32-1":            {0xdd, 0xff, 0xff, 0xff, 0xff},
		"array32 claiming 2^32-1 with items": append([]byte{0xdd, 0xff, 0xff, 0xff, 0xff}, valid[1:]...),
		"array16 claiming 65535":             {0xdc, 0xff, 0xff, 0x90},
		"bin32 claiming 2^32-1":              append([]byte{0xc6, 0xff, 0xff, 0xff, 0xff}, repeat('x', 10)...),
		"command claiming 2^32-1 fields":     {0x91, 0xdd, 0xff, 0xff, 0xff, 0xff},
		"deeply nested arrays":               append(repeat(0x91, 100_000), 0xc0),
		"trailing bytes":                     append(append([]byte{}, valid...), 0xc0),
		"unknown command":                    pack(t, []any{[]any{42, "u"}}),
		"command code is a string":           pack(t, []any{[]any{"1", "u"}}),
		"empty command":                      pack(t, []any{[]any{}}),
		"command is a map":                   pack(t, []any{map[string]any{"code": 1}}),
		"unit is an int":                     pack(t, []any{[]any{frames.CmdSubmit, 5, "0", "", 0, "flow", 0, nil, 1, 0, 0, 0, 0, 0}}),
		"negative depth":                     pack(t, []any{[]any{frames.CmdSubmit, "u", "0", "", -1, "flow", 0, nil, 1, 0, 0, 0, 0, 0}}),
		"lane out of range":                  pack(t, []any{[]any{frames.CmdSubmit, "u", "0", "", 0, "flow", 2, nil, 1, 0, 0, 0, 0, 0}}),
		"args is a string":                   pack(t, []any{[]any{frames.CmdSubmit, "u", "0", "", 0, "flow", 0, "args", 1, 0, 0, 0, 0, 0}}),
		"negative timeout":                   pack(t, []any{[]any{frames.CmdSubmit, "u", "0", "", 0, "flow", 0, nil, 1, 0, 0, 0, -1, 0}}),
		"submit too short":                   pack(t, []any{[]any{frames.CmdSubmit, "u", "0", "", 0, "flow", 0, nil, 1, 0, 0, 0, 0}}),
		"capacity lane 9":                    pack(t, []any{[]any{frames.CmdCapacity, 9, 1}}),
		"capacity delta is a string":         pack(t, []any{[]any{frames.CmdCapacity, 0, "1"}}),
		"complete ok is an int":              pack(t, []any{[]any{frames.CmdComplete, "u", "0", 1, 1, nil, nil, false}}),
		"watch token is a string":            pack(t, []any{[]any{frames.CmdWatch, "u", "0", "1"}}),
		"valid then bad":                     pack(t, []any{submitCmd("before-bad", nil), []any{42}}),
	}
	// Every truncation of the valid submit.
	for n := range len(valid) {
		bad[fmt.Sprintf("truncated to %d", n)] = valid[:n]
	}
	// Huge lengths inside a command, with few bytes behind them.
	prefix := []byte{0x91, 0x9e}
	for i, v := range submitCmd("u", nil)[:7] {
		for _, header := range [][]byte{{0xdb, 0xff, 0xff, 0xff, 0xff}, {0xc6, 0xff, 0xff, 0xff, 0xff}} {
			bad[fmt.Sprintf("field %d claims 2^32-1 bytes (%x)", i, header[0])] = append(append(append([]byte{}, prefix...), header...), "only a few bytes"...)
		}
		prefix = append(prefix, pack(t, v)...)
	}
	for name, frame := range bad {
		msg := fails(t, rcInvalid, cBatch(h, cCall{in: frame, capacity: 1024}), name)
		require.Contains(t, msg, "malformed", "%s: %s", name, msg)
	}
	fails(t, rcInvalid, cBatch(h, cCall{n: neg(7), capacity: 1024}), "NULL frame with a length")
	msg := fails(t, rcInvalid, cBatch(h, cCall{in: valid, n: neg(-3), capacity: 1024}))
	require.Contains(t, msg, "negative frame length -3")
	msg = fails(t, rcInvalid, cBatch(h, cCall{in: valid, n: neg(-1 << 31), capacity: 1024}))
	require.Contains(t, msg, "negative frame length")

	// None of it ran (not even the valid command in front of a bad one),
	// and the session still works.
	fails(t, rcNotFound, cGet(h, cCall{in: pack(t, []any{"before-bad", "0"}), capacity: 1024}))
	require.Equal(t, []byte{0x92, 0x90, 0x90}, ok(t, cBatch(h, cCall{in: []byte{0x90}, capacity: 64})), "[[], []]")
	var reply []any
	require.NoError(t, msgpack.Unmarshal(ok(t, cBatch(h, cCall{in: valid, capacity: 4096})), &reply))
	require.Len(t, reply, 2)
	require.Empty(t, reply[0], "no command errors")
	ok(t, cGet(h, cCall{in: pack(t, []any{"v", "0"}), capacity: 4096}))
}

// Get and Query refuse malformed frames too.
func TestGetAndQueryRefuseMalformedFrames(t *testing.T) {
	h := memSession(t)
	for _, frame := range [][]byte{nil, {}, {0xc1}, {0xdd, 0xff, 0xff, 0xff, 0xff}, pack(t, []any{"u"}),
		pack(t, []any{"u", 0}), pack(t, []any{"u", "0", "x"}), append(repeat(0x91, 100_000), 0xc0)} {
		fails(t, rcInvalid, cGet(h, cCall{in: frame, capacity: 256}), "get %x", frame)
	}
	for _, frame := range [][]byte{nil, {}, {0xc1}, pack(t, []any{}), pack(t, []any{99}), pack(t, []any{"1"}),
		pack(t, []any{frames.QueryFailed, 0}), pack(t, []any{frames.QueryFailed, -1, 10}),
		pack(t, []any{frames.QueryFailed, 0, frames.MaxItems + 1}), pack(t, []any{frames.QueryRequeue}),
		pack(t, []any{frames.QueryRequeue, 5}), pack(t, []any{frames.QueryCounters, 1})} {
		fails(t, rcInvalid, cQuery(h, cCall{in: frame, capacity: 256}), "query %x", frame)
	}
	fails(t, rcNotFound, cGet(h, cCall{in: pack(t, []any{"nope", "0"}), capacity: 256}))
	ok(t, cQuery(h, cCall{in: pack(t, []any{frames.QueryCounters}), capacity: 256}))
	ok(t, cQuery(h, cCall{in: pack(t, []any{frames.QueryFailed, 0, 10}), capacity: 256}))
	ok(t, cStats(h, cCall{capacity: 256}))
}

// Every export given a handle that is not open says so (rcBadHandle).
func TestBadHandles(t *testing.T) {
	closed := open(t, map[string]any{"inbox": "c"})
	require.EqualValues(t, rcOK, cClose(closed, cCall{capacity: 64}).rc)
	for _, h := range []int64{0, -1, -8, 1 << 62, closed} {
		want := fmt.Sprintf("no open engine with handle %d", h)
		call := cCall{in: []byte{0x90}, capacity: 256}
		for name, r := range map[string]cResult{
			"batch":  cBatch(h, call),
			"get":    cGet(h, call),
			"query":  cQuery(h, call),
			"wait":   cWait(h, 10, call),
			"stats":  cStats(h, call),
			"notify": cNotify(h, -1, call),
			"close":  cClose(h, call),
		} {
			require.Equal(t, want, fails(t, rcBadHandle, r), "%s(%d)", name, h)
		}
	}
}

// A reply bigger than the caller's buffer comes back whole in a malloc'd
// buffer (rc 1, freed with bz_free); with no big pointer it is an error.
func TestBigReplies(t *testing.T) {
	h := memSession(t)
	args := repeat('a', 2048)
	cmds := make([]any, 40)
	for i := range cmds {
		cmds[i] = submitCmd(fmt.Sprint("big-", i), args)
	}
	r := cBatch(h, cCall{in: pack(t, cmds), capacity: 16})
	require.EqualValues(t, rcBig, r.rc)
	require.True(t, r.big)
	require.False(t, r.overrun)
	require.Greater(t, len(r.out), 40*2048, "every delivery with its args")
	var reply []any
	require.NoError(t, msgpack.Unmarshal(r.out, &reply))
	require.Len(t, reply, 2)
	require.Len(t, reply[1], 40, "40 deliveries")

	// The same reply, read where it fits, is the same bytes.
	small := ok(t, cStats(h, cCall{capacity: 4096}))
	r = cStats(h, cCall{capacity: 1})
	require.EqualValues(t, rcBig, r.rc)
	require.Equal(t, small, r.out)
	r = cStats(h, cCall{capacity: 0, noOut: true})
	require.EqualValues(t, rcBig, r.rc)
	require.Equal(t, small, r.out)

	// Without a big pointer (Python always passes one) a reply that does
	// not fit is an error saying so.
	msg := fails(t, rcInternal, cBatch(h, cCall{in: pack(t, []any{submitCmd("big-x", args)}), capacity: 256, noBig: true}))
	require.Regexp(t, `^reply of \d+ bytes does not fit a 256-byte buffer$`, msg)
	cFreeNull()
}

// A session whose engine closed answers every call with rcClosed; after
// bz_close its handle is gone (rcBadHandle); closing twice is an error, not
// a crash.
func TestClosedSessions(t *testing.T) {
	h := open(t, map[string]any{"inbox": "w", "async": 1})
	s, err := sessionOf(h)
	require.NoError(t, err)
	require.NoError(t, s.Close()) // the engine is closed, the handle still open
	require.Equal(t, "engine closed", fails(t, rcClosed, cWait(h, 1000, cCall{capacity: 256})))
	fails(t, rcClosed, cBatch(h, cCall{in: pack(t, []any{submitCmd("u", nil)}), capacity: 256}))

	require.EqualValues(t, rcOK, cClose(h, cCall{capacity: 256}).rc, "closing is idempotent below the handle")
	fails(t, rcBadHandle, cClose(h, cCall{capacity: 256}))
	fails(t, rcBadHandle, cWait(h, 0, cCall{capacity: 256}))

	// bz_close while a bz_wait is blocked ends the wait at once, with an
	// error (rcClosed if the wait had found the session, rcBadHandle if
	// not), not after its 30 s.
	h = open(t, map[string]any{"inbox": "w2", "async": 1})
	done := make(chan cResult, 1)
	go func() { done <- cWait(h, 30_000, cCall{capacity: 256}) }()
	require.EqualValues(t, rcOK, cClose(h, cCall{capacity: 256}).rc)
	select {
	case r := <-done:
		require.Contains(t, []int64{rcClosed, rcBadHandle}, r.rc, "%s", r.out)
		require.NotEmpty(t, r.out)
	case <-time.After(bound):
		t.Fatal("bz_wait did not return on bz_close")
	}
}

func TestWaitAndNotify(t *testing.T) {
	h := memSession(t)
	r := ok(t, cWait(h, 0, cCall{capacity: 64}))
	require.Equal(t, []byte{0x92, 0x90, 0x90}, r, "nothing ready: [[], []]")
	ok(t, cWait(h, -5, cCall{capacity: 64}))   // a negative timeout is 0
	ok(t, cNotify(h, -1, cCall{capacity: 64})) // -1: stop
	msg := fails(t, rcInternal, cNotify(h, -2, cCall{capacity: 256}))
	require.Contains(t, msg, "not a file descriptor")
}

// A panic inside an export is turned into rcPanic with the panic and its
// stack as the message.
func TestPanicsBecomeErrors(t *testing.T) {
	msg := fails(t, rcPanic, cPanicking(cCall{capacity: 8192}))
	require.True(t, strings.HasPrefix(msg, "internal panic: boom\n"), msg)
	require.Contains(t, msg, "goroutine")
	r := cPanicking(cCall{capacity: 8})
	require.Equal(t, "internal", string(r.out))
	require.False(t, r.overrun)
	require.EqualValues(t, rcPanic, cPanicking(cCall{noOut: true, noOutn: true}).rc)
}

// Many goroutines sending good and bad frames to one session at once (under
// -race), then closing it while some still call.
func TestConcurrentCalls(t *testing.T) {
	h := open(t, map[string]any{"inbox": "cc", "async": 1000})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				var r cResult
				switch i % 4 {
				case 0:
					r = cBatch(h, cCall{in: pack(t, []any{submitCmd(fmt.Sprintf("c%d-%d", g, i), nil)}), capacity: 64})
				case 1:
					r = cBatch(h, cCall{in: []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, capacity: 64})
					if r.rc != rcInvalid {
						errs <- fmt.Errorf("garbage: rc %d", r.rc)
					}
				case 2:
					r = cStats(h, cCall{capacity: 8})
				case 3:
					r = cWait(h, 1, cCall{capacity: 64})
				}
				if r.overrun || r.rc < rcBadHandle || r.rc > rcBig {
					errs <- fmt.Errorf("call %d: rc %d overrun %v", i%4, r.rc, r.overrun)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A session on Redis (the networked path: spare P, wake-ups on the way out).
func TestRedisSession(t *testing.T) {
	srv, err := storetest.StartRedisServer()
	if errors.Is(err, storetest.ErrNoRedisServer) && !storetest.RedisRequired() {
		t.Skip(storetest.SkipReason(err))
	}
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	h := open(t, map[string]any{"inbox": "r", "store": "redis", "url": "redis://" + srv.Addr + "/0",
		"namespace": "cgo", "async": 4})
	ok(t, cBatch(h, cCall{in: pack(t, []any{submitCmd("r1", nil)}), capacity: 4096}))
	deadline := time.Now().Add(bound)
	delivered := false
	for !delivered && time.Now().Before(deadline) {
		var reply []any
		require.NoError(t, msgpack.Unmarshal(ok(t, cWait(h, 1000, cCall{capacity: 4096})), &reply))
		delivered = len(reply[1].([]any)) > 0
	}
	require.True(t, delivered, "the submission is delivered back")
	ok(t, cStats(h, cCall{capacity: 4096}))
	fails(t, rcInvalid, cBatch(h, cCall{in: []byte{0xc1}, capacity: 256}))
	require.EqualValues(t, rcOK, cClose(h, cCall{capacity: 256}).rc)
}
