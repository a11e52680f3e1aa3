package frames_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/blazingflow/blazing/core/engine"
	"github.com/blazingflow/blazing/core/frames"
	"github.com/blazingflow/blazing/core/internal/msgpacktest"
	"github.com/blazingflow/blazing/core/store"
)

// batch packs commands into a batch frame.
func batch(t testing.TB, cmds ...[]any) []byte {
	t.Helper()
	arr := make([]any, len(cmds))
	for i, c := range cmds {
		arr[i] = c
	}
	return msgpacktest.Pack(t, arr)
}

func submitCmd() []any {
	return []any{frames.CmdSubmit, "unit-1", "0.3", "0", 2, "pkg.step", 1, []byte("args"), 77, 3, 100, 5000, 250, -4}
}

func completeOK() []any {
	return []any{frames.CmdComplete, "unit-1", "0.3", 1, true, []byte("result"), nil, false}
}

func completeErr() []any {
	return []any{frames.CmdComplete, "unit-2", "0", 1, false, nil, []any{"builtins.ValueError", "bad", "Traceback...", []byte("payload")}, true}
}

func capacityCmd(lane, delta int) []any { return []any{frames.CmdCapacity, lane, delta} }

func cancelCmd() []any { return []any{frames.CmdCancel, "unit-3", "", "user asked"} }

func watchCmd() []any { return []any{frames.CmdWatch, "unit-4", "0.1", 9} }

// with returns a copy of cmd with field i replaced by v.
func with(cmd []any, i int, v any) []any {
	out := append([]any(nil), cmd...)
	out[i] = v
	return out
}

func TestDecodeBatchEveryKind(t *testing.T) {
	frame := batch(t,
		capacityCmd(0, 3),  // 0
		submitCmd(),        // 1
		completeOK(),       // 2
		cancelCmd(),        // 3
		watchCmd(),         // 4
		completeErr(),      // 5
		capacityCmd(1, -2), // 6
		with(submitCmd(), 2, "0"),
	)
	b, err := frames.DecodeBatch(frame)
	require.NoError(t, err)

	require.Len(t, b.Submits, 2)
	require.Equal(t, []int{1, 7}, b.SubmitIdx)
	s := b.Submits[0]
	require.Equal(t, store.Ref{Unit: "unit-1", Path: "0.3"}, s.Ref)
	require.Equal(t, "0", s.Parent)
	require.Equal(t, 2, s.Depth)
	require.Equal(t, "pkg.step", s.Name)
	require.Equal(t, store.LaneBlocking, s.Lane)
	require.Equal(t, []byte("args"), s.Args)
	require.Equal(t, uint64(77), s.Token)
	require.Equal(t, store.Options{Retries: 3, BackoffMs: 100, BackoffMaxMs: 5000, TimeoutMs: 250, Priority: -4}, s.Opts)
	require.Empty(t, s.Inbox, "the engine sets the inbox, not the frame")
	require.Equal(t, "0", b.Submits[1].Ref.Path)

	require.Len(t, b.Completes, 2)
	ok := b.Completes[0]
	require.Equal(t, store.Ref{Unit: "unit-1", Path: "0.3"}, ok.Ref)
	require.True(t, ok.OK)
	require.Equal(t, []byte("result"), ok.Result)
	require.Nil(t, ok.Error)
	require.False(t, ok.NoRetry)
	require.Zero(t, ok.LeaseID, "the engine fills in the lease")
	bad := b.Completes[1]
	require.Equal(t, store.Ref{Unit: "unit-2", Path: "0"}, bad.Ref)
	require.False(t, bad.OK)
	require.Nil(t, bad.Result)
	require.Equal(t, &store.ErrorInfo{Type: "builtins.ValueError", Message: "bad", Traceback: "Traceback...", Payload: []byte("payload")}, bad.Error)
	require.True(t, bad.NoRetry)

	require.Equal(t, []frames.Capacity{{Lane: store.LaneAsync, Delta: 3}, {Lane: store.LaneBlocking, Delta: -2}}, b.Capacities)
	require.Equal(t, []int{0, 6}, b.CapacityIdx)

	require.Equal(t, []frames.Cancel{{Unit: "unit-3", Path: "", Reason: "user asked"}}, b.Cancels)
	require.Equal(t, []int{3}, b.CancelIdx)

	require.Equal(t, []frames.Watch{{Ref: store.Ref{Unit: "unit-4", Path: "0.1"}, Token: 9}}, b.Watches)
	require.Equal(t, []int{4}, b.WatchIdx)
}

func TestDecodeBatchEdgeValues(t *testing.T) {
	t.Run("empty batch", func(t *testing.T) {
		b, err := frames.DecodeBatch([]byte{0x90})
		require.NoError(t, err)
		require.Empty(t, b.Submits)
		require.Empty(t, b.Completes)
	})
	t.Run("compact ints and nil args", func(t *testing.T) {
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		enc.UseCompactInts(true)
		require.NoError(t, enc.Encode([]any{[]any{1, "u", "0", "", 0, "n", 0, nil, 0, 0, 0, 0, 0, 0}}))
		b, err := frames.DecodeBatch(buf.Bytes())
		require.NoError(t, err)
		require.Len(t, b.Submits, 1)
		require.Nil(t, b.Submits[0].Args)
		require.Zero(t, b.Submits[0].Token)
	})
	t.Run("token uses all 64 bits", func(t *testing.T) {
		b, err := frames.DecodeBatch(batch(t, with(submitCmd(), 8, uint64(math.MaxUint64)), with(watchCmd(), 3, uint64(1)<<63)))
		require.NoError(t, err)
		require.Equal(t, uint64(math.MaxUint64), b.Submits[0].Token)
		require.Equal(t, uint64(1)<<63, b.Watches[0].Token)
	})
	t.Run("retries and priority are clamped", func(t *testing.T) {
		cmd := with(with(submitCmd(), 9, int64(math.MaxInt64)), 13, int64(math.MinInt64))
		b, err := frames.DecodeBatch(batch(t, cmd))
		require.NoError(t, err)
		require.Equal(t, frames.MaxItems, b.Submits[0].Opts.Retries)
		require.Equal(t, -frames.MaxItems, b.Submits[0].Opts.Priority)
	})
	t.Run("complete ok with empty result", func(t *testing.T) {
		b, err := frames.DecodeBatch(batch(t, with(completeOK(), 5, []byte{})))
		require.NoError(t, err)
		require.NotNil(t, b.Completes[0].Result)
		require.Empty(t, b.Completes[0].Result)
	})
	t.Run("error payload nil", func(t *testing.T) {
		cmd := with(completeErr(), 6, []any{"T", "M", "", nil})
		b, err := frames.DecodeBatch(batch(t, cmd))
		require.NoError(t, err)
		require.Nil(t, b.Completes[0].Error.Payload)
	})
}

// requireMalformed checks that err wraps ErrMalformed and mentions want.
func requireMalformed(t *testing.T, err error, want string) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, frames.ErrMalformed)
	require.Equal(t, "invalid", frames.Code(err))
	if want != "" {
		require.Contains(t, err.Error(), want)
	}
}

func TestDecodeBatchErrors(t *testing.T) {
	valid := batch(t, submitCmd())
	tests := []struct {
		name  string
		frame []byte
		want  string // substring of the message
	}{
		{"nil frame", nil, "empty frame"},
		{"empty frame", []byte{}, "empty frame"},
		{"not an array: int", []byte{0x01}, "batch: expected an array"},
		{"not an array: string", msgpacktest.Pack(t, "hello"), "batch: expected an array"},
		{"not an array: map", msgpacktest.Pack(t, map[string]int{"a": 1}), "batch: expected an array"},
		{"nil batch", []byte{0xc0}, "batch: array length -1"},
		{"command not an array", batch(t), ""}, // placeholder, replaced below
		{"empty command", msgpacktest.Pack(t, []any{[]any{}}), "empty command"},
		{"command code is a string", batch(t, []any{"1", "u", "0", ""}), "command code: expected an integer"},
		{"command code is a float", batch(t, []any{1.0, "u", "0", ""}), "command code: expected an integer"},
		{"unknown command code 0", batch(t, []any{0, "u"}), "unknown command code 0"},
		{"unknown command code 8", batch(t, []any{8, "u", "0", 1}), "unknown command code 8"},
		{"breadcrumb without its fields", batch(t, []any{7, "u", "0", 1}), "command 7 needs 6 fields"},
		{"breadcrumb message is an int", batch(t, []any{7, "u", "0", 1, 2, nil}), "message: expected a string"},
		{"breadcrumb metadata is a string", batch(t, []any{7, "u", "0", 1, "m", "x"}), "metadata: expected bytes"},
		{"pause with a non-bool", batch(t, []any{6, 1}), "paused: expected a bool"},
		{"negative command code", batch(t, []any{-1, "u"}), "unknown command code -1"},
		{"huge command code", batch(t, []any{uint64(math.MaxUint64), "u"}), "unknown command code -1"},
		{"submit with 13 fields", batch(t, submitCmd()[:13]), "command 1 needs 14 fields, got 13"},
		{"submit with 15 fields", batch(t, append(submitCmd(), 0)), "command 1 needs 14 fields, got 15"},
		{"complete with 6 fields", batch(t, completeOK()[:6]), "command 2 needs 8 fields, got 6"},
		{"capacity with 2 fields", batch(t, capacityCmd(0, 1)[:2]), "command 3 needs 3 fields, got 2"},
		{"capacity with 4 fields", batch(t, append(capacityCmd(0, 1), 0)), "command 3 needs 3 fields, got 4"},
		{"cancel with 3 fields", batch(t, cancelCmd()[:3]), "command 4 needs 4 fields, got 3"},
		{"watch with 5 fields", batch(t, append(watchCmd(), 1)), "command 5 needs 4 fields, got 5"},

		{"submit unit is an int", batch(t, with(submitCmd(), 1, 5)), "unit: expected a string"},
		{"submit parent is bool", batch(t, with(submitCmd(), 3, false)), "parent: expected a string"},
		{"submit depth is a string", batch(t, with(submitCmd(), 4, "2")), "depth: expected an integer"},
		{"submit depth is a bool", batch(t, with(submitCmd(), 4, true)), "depth: expected an integer"},
		{"submit depth is a float", batch(t, with(submitCmd(), 4, 2.0)), "depth: expected an integer"},
		{"submit depth is nil", batch(t, with(submitCmd(), 4, nil)), "depth: expected an integer"},
		{"submit name is an int", batch(t, with(submitCmd(), 5, 1)), "name: expected a string"},
		{"submit lane is a string", batch(t, with(submitCmd(), 6, "async")), "lane: expected an integer"},
		{"submit args is an int", batch(t, with(submitCmd(), 7, 1)), "args: expected bytes"},
		{"submit args is a string", batch(t, with(submitCmd(), 7, "args")), "args: expected bytes"},
		{"submit args is an array", batch(t, with(submitCmd(), 7, []any{1})), "args: expected bytes"},
		{"submit token is a bool", batch(t, with(submitCmd(), 8, true)), "token: expected an integer"},
		{"submit token is bytes", batch(t, with(submitCmd(), 8, []byte{1})), "token: expected an integer"},
		{"submit retries is a string", batch(t, with(submitCmd(), 9, "3")), "retries: expected an integer"},
		{"submit backoff is a float", batch(t, with(submitCmd(), 10, 0.5)), "backoff_ms: expected an integer"},
		{"submit backoff max is nil", batch(t, with(submitCmd(), 11, nil)), "backoff_max_ms: expected an integer"},
		{"submit timeout is a bool", batch(t, with(submitCmd(), 12, false)), "timeout_ms: expected an integer"},
		{"submit priority is a string", batch(t, with(submitCmd(), 13, "hi")), "priority: expected an integer"},
		{"negative depth", batch(t, with(submitCmd(), 4, -1)), "depth -1 out of range"},
		{"huge depth", batch(t, with(submitCmd(), 4, frames.MaxItems+1)), "out of range"},
		{"depth beyond int64", batch(t, with(submitCmd(), 4, uint64(math.MaxUint64))), "depth -1 out of range"},
		{"negative lane", batch(t, with(submitCmd(), 6, -1)), "unknown lane -1"},
		{"lane 2", batch(t, with(submitCmd(), 6, 2)), "unknown lane 2"},
		{"lane 255", batch(t, with(submitCmd(), 6, 255)), "unknown lane 255"},
		{"negative retries", batch(t, with(submitCmd(), 9, -1)), "negative retry or time option -1"},
		{"negative backoff", batch(t, with(submitCmd(), 10, -5)), "negative retry or time option -5"},
		{"negative backoff max", batch(t, with(submitCmd(), 11, -6)), "negative retry or time option -6"},
		{"negative timeout", batch(t, with(submitCmd(), 12, -50)), "negative retry or time option -50"},

		{"complete ok is an int", batch(t, with(completeOK(), 4, 1)), "ok: expected a bool"},
		{"complete no_retry is a string", batch(t, with(completeOK(), 7, "no")), "no_retry: expected a bool"},
		{"error message is an int", batch(t, with(completeErr(), 6, []any{"T", 3, "TB", nil})), "error.message: expected a string"},
		{"complete result is a string", batch(t, with(completeOK(), 5, "r")), "result: expected bytes"},
		{"failed completion without error", batch(t, with(completeErr(), 6, nil)), "a failed completion needs an error"},
		{"error with 3 fields", batch(t, with(completeErr(), 6, []any{"T", "M", "TB"})), "error must have 4 fields, has 3"},
		{"error with 5 fields", batch(t, with(completeErr(), 6, []any{"T", "M", "TB", nil, nil})), "error must have 4 fields, has 5"},
		{"error with 0 fields", batch(t, with(completeErr(), 6, []any{})), "error must have 4 fields, has 0"},
		{"error is a string", batch(t, with(completeErr(), 6, "boom")), "error: expected an array"},
		{"error type is an int", batch(t, with(completeErr(), 6, []any{1, "M", "TB", nil})), "error.type: expected a string"},
		{"error payload is a string", batch(t, with(completeErr(), 6, []any{"T", "M", "TB", "p"})), "error.payload: expected bytes"},

		{"capacity lane -1", batch(t, capacityCmd(-1, 1)), "capacity: lane -1 delta 1 out of range"},
		{"capacity lane 2", batch(t, capacityCmd(2, 1)), "capacity: lane 2 delta 1 out of range"},
		{"capacity huge delta", batch(t, capacityCmd(0, frames.MaxItems+1)), "out of range"},
		{"capacity huge negative delta", batch(t, capacityCmd(0, -frames.MaxItems-1)), "out of range"},
		{"capacity delta is a bool", batch(t, []any{frames.CmdCapacity, 0, true}), "delta: expected an integer"},
		{"capacity lane is a string", batch(t, []any{frames.CmdCapacity, "0", 1}), "lane: expected an integer"},

		{"cancel reason is an int", batch(t, with(cancelCmd(), 3, 0)), "reason: expected a string"},
		{"cancel unit is an array", batch(t, with(cancelCmd(), 1, []any{})), "unit: expected a string"},
		{"watch token is a string", batch(t, with(watchCmd(), 3, "9")), "token: expected an integer"},
		{"watch path is an int", batch(t, with(watchCmd(), 2, 0)), "path: expected a string"},

		{"trailing byte", append(append([]byte(nil), valid...), 0xc0), "trailing bytes after batch"},
		{"trailing batch", append(append([]byte(nil), valid...), valid...), "trailing bytes after batch"},
		{"truncated", valid[:len(valid)-1], ""},
		{"second command truncated", batch(t, submitCmd(), submitCmd())[:len(valid)+5], "command 1:"},

		{"array32 batch claiming 2^32-1", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, "out of range"},
		{"array32 batch claiming MaxItems+1", []byte{0xdd, 0x00, 0x10, 0x00, 0x01}, "array length 1048577 out of range"},
		{"array32 batch claiming MaxItems with nothing after", []byte{0xdd, 0x00, 0x10, 0x00, 0x00}, "command 0:"},
		{"array16 batch claiming 65535 with nothing after", []byte{0xdc, 0xff, 0xff}, "command 0:"},
		{"array32 header cut short", []byte{0xdd, 0xff, 0xff}, "batch: expected an array"},
		{"command claiming 2^32-1 fields", []byte{0x91, 0xdd, 0xff, 0xff, 0xff, 0xff}, "out of range"},
		{"error claiming 2^32-1 fields", errorHeaderFrame(t), "out of range"},
		{"deeply nested arrays", nested(100_000), "command code: expected an integer"},
		{"nested arrays as fields", batch(t, with(submitCmd(), 1, []any{[]any{[]any{}}})), "unit: expected a string"},
		{"fixext where string expected", append([]byte{0x91, 0x94, 0x04, 0xd4, 0x01, 0x00}, msgpacktest.Pack(t, "0")...), "unit: expected a string"},
		{"not msgpack at all", []byte("GET / HTTP/1.1\r\n\r\n"), ""},
		{"reserved code 0xc1", []byte{0xc1}, "batch: expected an array"},
	}
	// A batch whose command is not an array.
	tests[6].frame = msgpacktest.Pack(t, []any{"submit"})
	tests[6].want = "command: expected an array"

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := frames.DecodeBatch(tt.frame)
			require.Nil(t, b)
			requireMalformed(t, err, tt.want)
		})
	}
}

// errorHeaderFrame is a failing completion whose error array claims 2^32-1
// fields.
func errorHeaderFrame(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	require.NoError(t, enc.EncodeArrayLen(1))
	require.NoError(t, enc.EncodeArrayLen(8))
	require.NoError(t, enc.Encode(frames.CmdComplete))
	require.NoError(t, enc.Encode("u"))
	require.NoError(t, enc.Encode("0"))
	require.NoError(t, enc.Encode(1))
	require.NoError(t, enc.Encode(false))
	require.NoError(t, enc.EncodeNil())
	buf.Write([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	return buf.Bytes()
}

// nested is depth levels of one-element arrays around a nil.
func nested(depth int) []byte {
	b := bytes.Repeat([]byte{0x91}, depth)
	return append(b, 0xc0)
}

// submitPrefix is a batch with one submit, encoded up to (not including)
// field i, so a test can put any raw bytes there.
func submitPrefix(t *testing.T, i int) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	require.NoError(t, enc.EncodeArrayLen(1))
	require.NoError(t, enc.EncodeArrayLen(14))
	for _, v := range submitCmd()[:i] {
		require.NoError(t, enc.Encode(v))
	}
	return buf.Bytes()
}

func completePrefix(t *testing.T, i int, cmd []any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	require.NoError(t, enc.EncodeArrayLen(1))
	require.NoError(t, enc.EncodeArrayLen(7))
	for _, v := range cmd[:i] {
		require.NoError(t, enc.Encode(v))
	}
	return buf.Bytes()
}

// hugeHeaderFrames are frames whose bin or str header claims far more bytes
// than follow. Decoding them must fail at once without allocating the
// claimed length.
func hugeHeaderFrames(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tail := []byte("only a few bytes follow")
	for name, hdr := range map[string][]byte{
		"bin32 2^32-1": {0xc6, 0xff, 0xff, 0xff, 0xff},
		"str32 2^32-1": {0xdb, 0xff, 0xff, 0xff, 0xff},
		"str32 1GiB":   {0xdb, 0x40, 0x00, 0x00, 0x00},
	} {
		isBin := hdr[0] == 0xc6
		if isBin {
			out["submit args "+name] = append(append(submitPrefix(t, 7), hdr...), tail...)
			out["complete result "+name] = append(append(completePrefix(t, 4, completeOK()), hdr...), tail...)
			errPrefix := append(completePrefix(t, 5, completeErr()), 0x94, 0xa1, 'T', 0xa1, 'M', 0xa0)
			out["error payload "+name] = append(append(errPrefix, hdr...), tail...)
		} else {
			out["submit unit "+name] = append(append(submitPrefix(t, 1), hdr...), tail...)
			out["submit name "+name] = append(append(submitPrefix(t, 5), hdr...), tail...)
			out["cancel reason "+name] = append([]byte{0x91, 0x94, 0x04, 0xa1, 'u', 0xa0}, append(hdr, tail...)...)
			out["error type "+name] = append(append(completePrefix(t, 5, completeErr()), 0x94), append(hdr, tail...)...)
		}
	}
	return out
}

func TestDecodeBatchHugeLengthHeadersDoNotAllocate(t *testing.T) {
	const limit = 64 << 20
	for name, frame := range hugeHeaderFrames(t) {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			b, err := frames.DecodeBatch(frame)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			require.Nil(t, b)
			requireMalformed(t, err, "")
			allocated := after.TotalAlloc - before.TotalAlloc
			require.Less(t, allocated, uint64(limit),
				"decoding a %d-byte frame allocated %d MiB", len(frame), allocated>>20)
			require.Less(t, elapsed, 2*time.Second)
		})
	}
}

// TestDecodeBatchStrictStringAndBoolFields: integer and bytes fields check
// the msgpack type code before decoding, but string and bool fields go
// through msgpack's lenient DecodeString/DecodeBool, which take nil as ""
// or false and bin as a string (without UTF-8 validation). By the frame
// format these are malformed and should be refused like the other type
// errors; invalid UTF-8 in a unit or path would also come back in deliver
// events as a msgpack str that Python's msgpack.unpackb cannot decode.
func TestDecodeBatchStrictStringAndBoolFields(t *testing.T) {
	for _, tt := range []struct {
		name  string
		frame []byte
		want  string
	}{
		{"submit unit is nil", batch(t, with(submitCmd(), 1, nil)), "unit: expected a string"},
		{"submit path is bytes", batch(t, with(submitCmd(), 2, []byte("0"))), "path: expected a string"},
		{"submit name is invalid UTF-8", append(submitPrefix(t, 5), append([]byte{0xa2, 0xff, 0xfe}, msgpacktest.Pack(t, submitCmd()[6:])[1:]...)...), "name"},
		{"error message is nil", batch(t, with(completeErr(), 6, []any{"T", nil, "TB", nil})), "error.message: expected a string"},
		{"error traceback is bytes", batch(t, with(completeErr(), 6, []any{"T", "M", []byte("TB"), nil})), "error.traceback: expected a string"},
		{"complete ok is nil", batch(t, with(completeErr(), 4, nil)), "ok: expected a bool"},
		{"complete no_retry is nil", batch(t, with(completeOK(), 7, nil)), "no_retry: expected a bool"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := frames.DecodeBatch(tt.frame)
			require.Nil(t, b, "accepted as %+v", b)
			requireMalformed(t, err, tt.want)
		})
	}
}

func TestDecodeRef(t *testing.T) {
	ref, err := frames.DecodeRef(msgpacktest.Pack(t, []any{"u", "0.1"}))
	require.NoError(t, err)
	require.Equal(t, store.Ref{Unit: "u", Path: "0.1"}, ref)

	for name, frame := range map[string][]byte{
		"empty":          nil,
		"not an array":   msgpacktest.Pack(t, "u"),
		"one field":      msgpacktest.Pack(t, []any{"u"}),
		"three fields":   msgpacktest.Pack(t, []any{"u", "0", "x"}),
		"int unit":       msgpacktest.Pack(t, []any{1, "0"}),
		"huge array":     {0xdd, 0xff, 0xff, 0xff, 0xff},
		"huge str":       {0x92, 0xdb, 0xff, 0xff, 0xff, 0xff, 'u'},
		"truncated path": msgpacktest.Pack(t, []any{"u", "0.1"})[:4],
	} {
		t.Run(name, func(t *testing.T) {
			_, err := frames.DecodeRef(frame)
			requireMalformed(t, err, "")
		})
	}
}

func TestCode(t *testing.T) {
	for want, err := range map[string]error{
		"conflict":    fmt.Errorf("x: %w", store.ErrConflict),
		"invalid":     fmt.Errorf("x: %w", store.ErrInvalid),
		"not_found":   fmt.Errorf("x: %w", store.ErrNotFound),
		"unavailable": fmt.Errorf("x: %w", store.ErrUnavailable),
		"closed":      engine.ErrClosed,
		"internal":    errors.New("boom"),
	} {
		require.Equal(t, want, frames.Code(err))
	}
	require.Equal(t, "closed", frames.Code(fmt.Errorf("y: %w", store.ErrClosed)))
	require.Equal(t, "invalid", frames.Code(fmt.Errorf("y: %w", frames.ErrMalformed)))
}

// unpack decodes a reply frame into generic values.
func unpack(t *testing.T, b []byte) []any {
	t.Helper()
	var v []any
	require.NoError(t, msgpack.Unmarshal(b, &v))
	return v
}

func unum(t *testing.T, v any) uint64 {
	t.Helper()
	if u, ok := v.(uint64); ok {
		return u
	}
	n := msgpacktest.Int64(t, v)
	require.GreaterOrEqual(t, n, int64(0))
	return uint64(n)
}

func list(t *testing.T, v any, n int) []any {
	t.Helper()
	l, ok := v.([]any)
	require.True(t, ok, "want an array, got %T", v)
	require.Len(t, l, n)
	return l
}

func TestWriterReply(t *testing.T) {
	info := &store.ErrorInfo{Type: "builtins.KeyError", Message: "k", Traceback: "tb", Payload: []byte{1, 2}}
	evs := []engine.Event{
		{Kind: engine.EventDeliver, Delivery: store.Delivery{
			Ref: store.Ref{Unit: "u1", Path: "0.2"}, Parent: "0", Depth: 1, Name: "step",
			Lane: store.LaneBlocking, Args: []byte("a"), Attempt: 3, TimeoutMs: 9, LeaseID: 44,
		}},
		{Kind: engine.EventDeliver, Delivery: store.Delivery{Ref: store.Ref{Unit: "u2", Path: "0"}, Name: "flow"}},
		{Kind: engine.EventResult, Token: math.MaxUint64, Note: store.Note{Status: store.StatusSucceeded, Result: []byte("r")}},
		{Kind: engine.EventResult, Token: 5, Note: store.Note{Status: store.StatusFailed, Error: info}},
		{Kind: engine.EventCancel, Note: store.Note{Ref: store.Ref{Unit: "u3", Path: "0.1"}, Error: info}},
		{Kind: engine.EventCancel, Note: store.Note{Ref: store.Ref{Unit: "u4", Path: "0"}}},
		{Kind: 99},
	}
	errs := []frames.CommandError{{Index: 0, Code: "conflict", Message: "m0"}, {Index: 7, Code: "invalid", Message: ""}}
	w := frames.NewWriter()
	reply := unpack(t, w.Reply(errs, evs))
	require.Len(t, reply, 2)

	gotErrs := list(t, reply[0], 2)
	e0 := list(t, gotErrs[0], 3)
	require.Equal(t, int64(0), msgpacktest.Int64(t, e0[0]))
	require.Equal(t, "conflict", e0[1])
	require.Equal(t, "m0", e0[2])
	e1 := list(t, gotErrs[1], 3)
	require.Equal(t, int64(7), msgpacktest.Int64(t, e1[0]))
	require.Equal(t, "invalid", e1[1])
	require.Equal(t, "", e1[2])

	gotEvs := list(t, reply[1], len(evs))
	d := list(t, gotEvs[0], 9)
	require.Equal(t, int64(engine.EventDeliver), msgpacktest.Int64(t, d[0]))
	require.Equal(t, "u1", d[1])
	require.Equal(t, "0.2", d[2])
	require.Equal(t, "0", d[3])
	require.Equal(t, int64(1), msgpacktest.Int64(t, d[4]))
	require.Equal(t, "step", d[5])
	require.Equal(t, int64(store.LaneBlocking), msgpacktest.Int64(t, d[6]))
	require.Equal(t, []byte("a"), d[7])
	require.Equal(t, int64(3), msgpacktest.Int64(t, d[8]))

	d = list(t, gotEvs[1], 9)
	require.Equal(t, "", d[3])
	require.Nil(t, d[7], "nil args stay nil")
	require.Equal(t, int64(0), msgpacktest.Int64(t, d[8]))

	r := list(t, gotEvs[2], 5)
	require.Equal(t, int64(engine.EventResult), msgpacktest.Int64(t, r[0]))
	require.Equal(t, uint64(math.MaxUint64), unum(t, r[1]))
	require.Equal(t, int64(store.StatusSucceeded), msgpacktest.Int64(t, r[2]))
	require.Equal(t, []byte("r"), r[3])
	require.Nil(t, r[4])

	r = list(t, gotEvs[3], 5)
	require.Equal(t, uint64(5), unum(t, r[1]))
	require.Equal(t, int64(store.StatusFailed), msgpacktest.Int64(t, r[2]))
	require.Nil(t, r[3])
	ei := list(t, r[4], 4)
	require.Equal(t, []any{"builtins.KeyError", "k", "tb", []byte{1, 2}}, ei)

	c := list(t, gotEvs[4], 4)
	require.Equal(t, int64(engine.EventCancel), msgpacktest.Int64(t, c[0]))
	require.Equal(t, "u3", c[1])
	require.Equal(t, "0.1", c[2])
	require.Equal(t, []any{"builtins.KeyError", "k", "tb", []byte{1, 2}}, list(t, c[3], 4))

	c = list(t, gotEvs[5], 4)
	require.Equal(t, "u4", c[1])
	require.Nil(t, c[3])

	require.Nil(t, gotEvs[6], "an unknown event kind is written as nil")

	// Reset makes the writer reusable; an empty reply is [[], []].
	w.Reset()
	empty := unpack(t, w.Reply(nil, nil))
	require.Equal(t, []any{[]any{}, []any{}}, empty)
}

func TestWriterOperation(t *testing.T) {
	created := time.Unix(1700000000, 123456789)
	finished := created.Add(1500 * time.Millisecond)
	op := store.Operation{
		Ref: store.Ref{Unit: "u", Path: "0.4"}, Parent: "0", Depth: 1, Name: "step",
		Lane: store.LaneBlocking, Status: store.StatusFailed, Args: []byte("args"),
		Result: nil, Error: &store.ErrorInfo{Type: "T", Message: "M", Traceback: "TB"},
		Attempts: 2, Worker: "proc-1", CreatedAt: created, FinishedAt: finished,
	}
	w := frames.NewWriter()
	rec := list(t, unpack1(t, w.Operation(op)), 15)
	require.Equal(t, []byte("args"), rec[14], "the arguments come last")
	require.Equal(t, "u", rec[0])
	require.Equal(t, "0.4", rec[1])
	require.Equal(t, "0", rec[2])
	require.Equal(t, int64(1), msgpacktest.Int64(t, rec[3]))
	require.Equal(t, "step", rec[4])
	require.Equal(t, int64(store.LaneBlocking), msgpacktest.Int64(t, rec[5]))
	require.Equal(t, int64(store.StatusFailed), msgpacktest.Int64(t, rec[6]))
	require.Equal(t, int64(2), msgpacktest.Int64(t, rec[7]))
	require.Equal(t, "proc-1", rec[8])
	require.Equal(t, created.UnixNano(), msgpacktest.Int64(t, rec[9]))
	require.Equal(t, int64(0), msgpacktest.Int64(t, rec[10]), "a zero time is 0, not year-1 nanoseconds")
	require.Equal(t, finished.UnixNano(), msgpacktest.Int64(t, rec[11]))
	require.Nil(t, rec[12])
	require.Equal(t, []any{"T", "M", "TB", nil}, list(t, rec[13], 4))

	w.Reset()
	op = store.Operation{Ref: store.Ref{Unit: "v", Path: "0"}, Status: store.StatusSucceeded, Result: []byte{}}
	rec = list(t, unpack1(t, w.Operation(op)), 15)
	require.Equal(t, []byte{}, rec[12])
	require.Nil(t, rec[13])
}

func unpack1(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	require.NoError(t, msgpack.Unmarshal(b, &v))
	return v
}

func TestWriterStats(t *testing.T) {
	st := [store.NumLanes]store.LaneStats{
		{Depth: 4, OldestAge: 1500 * time.Microsecond, Running: 2},
		{Depth: 0, OldestAge: 0, Running: 1},
	}
	w := frames.NewWriter()
	out := list(t, unpack1(t, w.Stats(st, [store.NumLanes]int{8, 3}, [store.NumLanes]int{2, 1})), store.NumLanes)
	l0 := list(t, out[0], 5)
	require.Equal(t, int64(4), msgpacktest.Int64(t, l0[0]))
	require.Equal(t, 1.5, l0[1])
	require.Equal(t, int64(2), msgpacktest.Int64(t, l0[2]))
	require.Equal(t, int64(8), msgpacktest.Int64(t, l0[3]))
	require.Equal(t, int64(2), msgpacktest.Int64(t, l0[4]))
	l1 := list(t, out[1], 5)
	require.Equal(t, int64(0), msgpacktest.Int64(t, l1[0]))
	require.Equal(t, 0.0, l1[1])
	require.Equal(t, int64(1), msgpacktest.Int64(t, l1[2]))
	require.Equal(t, int64(3), msgpacktest.Int64(t, l1[3]))
	require.Equal(t, int64(1), msgpacktest.Int64(t, l1[4]))
}

// TestReplyErrorInfoMatchesCommandErrorInfo checks the two directions
// agree on the shape of error info: an error written by the Writer decodes as a
// completion's error.
func TestReplyErrorInfoMatchesCommandErrorInfo(t *testing.T) {
	info := &store.ErrorInfo{Type: "T", Message: "M", Traceback: "TB", Payload: []byte("p")}
	w := frames.NewWriter()
	reply := unpack(t, w.Reply(nil, []engine.Event{{Kind: engine.EventCancel, Note: store.Note{Ref: store.Ref{Unit: "u", Path: "0"}, Error: info}}}))
	ev := list(t, list(t, reply[1], 1)[0], 4)
	cmd := []any{frames.CmdComplete, "u", "0", 1, false, nil, ev[3], false}
	b, err := frames.DecodeBatch(batch(t, cmd))
	require.NoError(t, err)
	require.Equal(t, info, b.Completes[0].Error)
}

// seedFrames are valid frames of every kind plus their truncations.
func seedFrames(t testing.TB) [][]byte {
	valid := [][]byte{
		batch(t, submitCmd()),
		batch(t, completeOK()),
		batch(t, completeErr()),
		batch(t, capacityCmd(1, -1)),
		batch(t, cancelCmd()),
		batch(t, watchCmd()),
		batch(t, capacityCmd(0, 2), submitCmd(), completeOK(), completeErr(), cancelCmd(), watchCmd()),
		{0x90},
	}
	out := append([][]byte(nil), valid...)
	for _, v := range valid[:6] {
		for _, n := range []int{0, 1, 2, len(v) / 2, len(v) - 1} {
			if n < len(v) {
				out = append(out, v[:n])
			}
		}
	}
	out = append(out, nested(64), []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, []byte{0x91, 0xc1})
	return out
}

func TestSeedTruncationsAllFail(t *testing.T) {
	v := batch(t, capacityCmd(0, 2), submitCmd(), completeOK(), completeErr(), cancelCmd(), watchCmd())
	for n := 0; n < len(v); n++ {
		_, err := frames.DecodeBatch(v[:n])
		requireMalformed(t, err, "")
	}
	_, err := frames.DecodeBatch(v)
	require.NoError(t, err)
}

func FuzzDecodeBatch(f *testing.F) {
	for _, s := range seedFrames(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		b, err := frames.DecodeBatch(frame)
		if err != nil {
			if !errors.Is(err, frames.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			if b != nil {
				t.Fatalf("error with a batch")
			}
			if !strings.HasPrefix(err.Error(), "malformed frame") && !strings.HasPrefix(err.Error(), "command ") {
				t.Fatalf("unexpected message shape: %v", err)
			}
			return
		}
		if len(b.SubmitIdx) != len(b.Submits) || len(b.CancelIdx) != len(b.Cancels) ||
			len(b.WatchIdx) != len(b.Watches) || len(b.CapacityIdx) != len(b.Capacities) {
			t.Fatalf("index slices out of step: %+v", b)
		}
		for _, s := range b.Submits {
			if s.Depth < 0 || !s.Lane.Valid() || s.Opts.Retries < 0 || s.Opts.BackoffMs < 0 ||
				s.Opts.BackoffMaxMs < 0 || s.Opts.TimeoutMs < 0 {
				t.Fatalf("out-of-range submit accepted: %+v", s)
			}
		}
		for _, c := range b.Completes {
			if !c.OK && c.Error == nil {
				t.Fatalf("failed completion without error accepted")
			}
		}
		for _, c := range b.Capacities {
			if !c.Lane.Valid() {
				t.Fatalf("bad lane accepted: %+v", c)
			}
		}
	})
}
