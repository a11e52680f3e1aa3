// Package frames encodes and decodes the msgpack frames that cross the
// Go/Python boundary. Frames are positional arrays (no field names) because
// every step call crosses twice and the cost per field matters; decoding is
// written by hand so that malformed input becomes an error, never a panic or
// a huge allocation.
//
// A command batch is an array of commands, each an array led by its code:
//
//	[1, unit, path, parent, depth, name, lane, args, token, retries, backoff_ms, backoff_max_ms, timeout_ms, priority]  submit
//	[2, unit, path, attempt, ok, result|nil, error|nil, no_retry]                                                      complete
//	[3, lane, delta]                                                                                                   capacity
//	[4, unit, path, reason]                                                                                            cancel (path "" = whole unit)
//	[5, unit, path, token]                                                                                             watch
//	[6, paused]                                                                                                        pause (stop reserving new work) or resume
//	[7, unit, path, at_ms, message, metadata|nil]                                                                      breadcrumb (log_breadcrumb)
//
// error is [type, message, traceback, payload|nil]. A reply is
// [errors, events]: errors is [[command_index, code, message], ...] and each
// event is one of
//
//	[1, unit, path, parent, depth, name, lane, args, attempt]   deliver
//	[2, token, status, result|nil, error|nil]                   result
//	[3, unit, path, error|nil]                                  cancel
//	[4, async, blocking, async_delta, blocking_delta]           mix (embedded optimizer moved workers)
//	[5, level, message, unit, path]                             log (slog level: -4 debug, 0 info, 4 warn, 8 error)
//
// These are every command (the Cmd constants) and every event (engine's
// EventKind). The other frames are described where they are read or
// written: a ref [unit, path] (DecodeRef), queries (the Query constants) and
// the replies to reads (Writer.Operation, Operations, Stats, Counters,
// Decisions).
package frames

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/blazingflow/blazing/core/engine"
	"github.com/blazingflow/blazing/core/optimizer"
	"github.com/blazingflow/blazing/core/store"
)

// Command codes.
const (
	CmdSubmit   = 1
	CmdComplete = 2
	CmdCapacity = 3
	CmdCancel   = 4
	CmdWatch    = 5
	CmdPause    = 6
	CmdCrumb    = 7
)

// MaxItems bounds any array length read from a frame, so that a corrupt
// length cannot make the decoder allocate gigabytes.
const MaxItems = 1 << 20

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed frame")

// Capacity is a lane slot change.
type Capacity struct {
	Lane  store.Lane
	Delta int
}

// Cancel is a cancellation request.
type Cancel struct {
	Unit, Path, Reason string
}

// Watch is a request to be told when an operation finishes.
type Watch struct {
	Ref   store.Ref
	Token uint64
}

// Batch is a decoded command batch. Index fields map each item back to its
// position in the frame, for error replies.
type Batch struct {
	Submits     []engine.Submit
	SubmitIdx   []int
	Completes   []engine.Completion
	Capacities  []Capacity
	Cancels     []Cancel
	CancelIdx   []int
	Watches     []Watch
	WatchIdx    []int
	CapacityIdx []int
	// Pause is nil when the batch does not change it.
	Pause *bool
	// Breadcrumbs the user logged (log_breadcrumb).
	Breadcrumbs []store.Breadcrumb
}

// CommandError is one failed command of a batch.
type CommandError struct {
	Index   int
	Code    string
	Message string
}

// Code classifies an error for Python, which maps it to an exception type.
func Code(err error) string {
	switch {
	case errors.Is(err, engine.ErrRunLost): // before not_found, which it may wrap
		return "lost"
	case errors.Is(err, store.ErrConflict):
		return "conflict"
	case errors.Is(err, store.ErrInvalid), errors.Is(err, ErrMalformed):
		return "invalid"
	case errors.Is(err, store.ErrNotFound):
		return "not_found"
	case errors.Is(err, store.ErrClosed), errors.Is(err, engine.ErrClosed):
		return "closed"
	case errors.Is(err, store.ErrFull):
		return "full"
	case errors.Is(err, store.ErrTimeout): // before unavailable, which it also wraps
		return "timeout"
	case errors.Is(err, store.ErrUnavailable):
		return "unavailable"
	}
	return "internal"
}

type reader struct {
	d  *msgpack.Decoder
	br *bytes.Reader // the decoder reads straight from it (no buffering)
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

func (r reader) arrayLen(what string) (int, error) {
	n, err := r.d.DecodeArrayLen()
	if err != nil {
		return 0, malformed("%s: expected an array: %v", what, err)
	}
	if n < 0 || n > MaxItems {
		return 0, malformed("%s: array length %d out of range", what, n)
	}
	return n, nil
}

func (r reader) str(what string) (string, error) {
	c, err := r.d.PeekCode()
	if err != nil {
		return "", malformed("%s: expected a string: %v", what, err)
	}
	if !msgpcode.IsString(c) {
		return "", malformed("%s: expected a string, got code 0x%02x", what, c)
	}
	s, err := r.d.DecodeString()
	if err != nil {
		return "", malformed("%s: expected a string: %v", what, err)
	}
	if !utf8.ValidString(s) {
		return "", malformed("%s: string is not valid UTF-8", what)
	}
	return s, nil
}

func (r reader) int(what string) (int64, error) {
	c, err := r.d.PeekCode()
	if err != nil {
		return 0, malformed("%s: expected an integer: %v", what, err)
	}
	if !msgpcode.IsFixedNum(c) && (c < msgpcode.Uint8 || c > msgpcode.Int64) {
		return 0, malformed("%s: expected an integer, got code 0x%02x", what, c)
	}
	v, err := r.d.DecodeInt64()
	if err != nil {
		return 0, malformed("%s: expected an integer: %v", what, err)
	}
	return v, nil
}

func (r reader) bool(what string) (bool, error) {
	c, err := r.d.PeekCode()
	if err != nil {
		return false, malformed("%s: expected a bool: %v", what, err)
	}
	if c != msgpcode.True && c != msgpcode.False {
		return false, malformed("%s: expected a bool, got code 0x%02x", what, c)
	}
	v, err := r.d.DecodeBool()
	if err != nil {
		return false, malformed("%s: expected a bool: %v", what, err)
	}
	return v, nil
}

// bin reads bytes or nil.
func (r reader) bin(what string) ([]byte, error) {
	c, err := r.d.PeekCode()
	if err != nil {
		return nil, malformed("%s: expected bytes: %v", what, err)
	}
	if c == msgpcode.Nil {
		_ = r.d.Skip()
		return nil, nil
	}
	if !msgpcode.IsBin(c) {
		return nil, malformed("%s: expected bytes, got code 0x%02x", what, c)
	}
	n, err := r.d.DecodeBytesLen()
	if err != nil {
		return nil, malformed("%s: expected bytes: %v", what, err)
	}
	// Check the claimed length against what the frame holds before
	// allocating: a corrupt header must not reserve gigabytes.
	if n < 0 || n > r.br.Len() {
		return nil, malformed("%s: length %d exceeds the %d bytes left in the frame", what, n, r.br.Len())
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.br, b); err != nil {
		return nil, malformed("%s: %v", what, err)
	}
	return b, nil
}

func (r reader) isNil() (bool, error) {
	c, err := r.d.PeekCode()
	if err != nil {
		return false, malformed("unexpected end: %v", err)
	}
	if c == msgpcode.Nil {
		return true, r.d.Skip()
	}
	return false, nil
}

func (r reader) errorInfo(what string) (*store.ErrorInfo, error) {
	if isNil, err := r.isNil(); err != nil || isNil {
		return nil, err
	}
	n, err := r.arrayLen(what)
	if err != nil {
		return nil, err
	}
	if n != 4 {
		return nil, malformed("%s: error must have 4 fields, has %d", what, n)
	}
	var info store.ErrorInfo
	if info.Type, err = r.str(what + ".type"); err != nil {
		return nil, err
	}
	if info.Message, err = r.str(what + ".message"); err != nil {
		return nil, err
	}
	if info.Traceback, err = r.str(what + ".traceback"); err != nil {
		return nil, err
	}
	if info.Payload, err = r.bin(what + ".payload"); err != nil {
		return nil, err
	}
	return &info, nil
}

func newReader(b []byte) reader {
	br := bytes.NewReader(b)
	return reader{d: msgpack.NewDecoder(br), br: br}
}

// DecodeBatch decodes a command batch.
func DecodeBatch(frame []byte) (*Batch, error) {
	if len(frame) == 0 {
		return nil, malformed("empty frame")
	}
	r := newReader(frame)
	n, err := r.arrayLen("batch")
	if err != nil {
		return nil, err
	}
	b := &Batch{}
	for i := 0; i < n; i++ {
		if err := decodeCommand(r, b, i); err != nil {
			return nil, fmt.Errorf("command %d: %w", i, err)
		}
	}
	if _, err := r.d.PeekCode(); err == nil {
		return nil, malformed("trailing bytes after batch")
	}
	return b, nil
}

func fieldCount(r reader, want int, what string) error {
	n, err := r.arrayLen(what)
	if err != nil {
		return err
	}
	if n != want {
		return malformed("%s needs %d fields, got %d", what, want, n)
	}
	return nil
}

func decodeCommand(r reader, b *Batch, idx int) error {
	n, err := r.arrayLen("command")
	if err != nil {
		return err
	}
	if n < 1 {
		return malformed("empty command")
	}
	code, err := r.int("command code")
	if err != nil {
		return err
	}
	need := map[int64]int{CmdSubmit: 14, CmdComplete: 8, CmdCapacity: 3, CmdCancel: 4, CmdWatch: 4, CmdPause: 2,
		CmdCrumb: 6}[code]
	if need == 0 {
		return malformed("unknown command code %d", code)
	}
	if n != need {
		return malformed("command %d needs %d fields, got %d", code, need, n)
	}
	switch code {
	case CmdSubmit:
		s, err := decodeSubmit(r)
		if err != nil {
			return err
		}
		b.Submits = append(b.Submits, s)
		b.SubmitIdx = append(b.SubmitIdx, idx)
	case CmdComplete:
		c, err := decodeComplete(r)
		if err != nil {
			return err
		}
		b.Completes = append(b.Completes, c)
	case CmdCapacity:
		lane, err := r.int("lane")
		if err != nil {
			return err
		}
		delta, err := r.int("delta")
		if err != nil {
			return err
		}
		if lane < 0 || lane >= store.NumLanes || delta < -MaxItems || delta > MaxItems {
			return malformed("capacity: lane %d delta %d out of range", lane, delta)
		}
		b.Capacities = append(b.Capacities, Capacity{Lane: store.Lane(lane), Delta: int(delta)})
		b.CapacityIdx = append(b.CapacityIdx, idx)
	case CmdCancel:
		var c Cancel
		if c.Unit, err = r.str("unit"); err != nil {
			return err
		}
		if c.Path, err = r.str("path"); err != nil {
			return err
		}
		if c.Reason, err = r.str("reason"); err != nil {
			return err
		}
		b.Cancels = append(b.Cancels, c)
		b.CancelIdx = append(b.CancelIdx, idx)
	case CmdCrumb:
		var c store.Breadcrumb
		if c.Ref, err = decodeRef(r); err != nil {
			return err
		}
		at, err := r.int("breadcrumb time")
		if err != nil {
			return err
		}
		c.At = time.UnixMilli(at)
		c.Kind = "user"
		if c.Message, err = r.str("message"); err != nil {
			return err
		}
		if c.Data, err = r.bin("metadata"); err != nil {
			return err
		}
		b.Breadcrumbs = append(b.Breadcrumbs, c)
	case CmdPause:
		p, err := r.bool("paused")
		if err != nil {
			return err
		}
		b.Pause = &p
	case CmdWatch:
		var w Watch
		if w.Ref, err = decodeRef(r); err != nil {
			return err
		}
		tok, err := r.int("token")
		if err != nil {
			return err
		}
		w.Token = uint64(tok)
		b.Watches = append(b.Watches, w)
		b.WatchIdx = append(b.WatchIdx, idx)
	}
	return nil
}

func decodeRef(r reader) (store.Ref, error) {
	var ref store.Ref
	var err error
	if ref.Unit, err = r.str("unit"); err != nil {
		return ref, err
	}
	if ref.Path, err = r.str("path"); err != nil {
		return ref, err
	}
	return ref, nil
}

func decodeSubmit(r reader) (engine.Submit, error) {
	var s engine.Submit
	var err error
	if s.Ref, err = decodeRef(r); err != nil {
		return s, err
	}
	if s.Parent, err = r.str("parent"); err != nil {
		return s, err
	}
	ints := make([]int64, 0, 9)
	read := func(what string) error {
		v, err := r.int(what)
		ints = append(ints, v)
		return err
	}
	if err = read("depth"); err != nil {
		return s, err
	}
	if s.Name, err = r.str("name"); err != nil {
		return s, err
	}
	if err = read("lane"); err != nil {
		return s, err
	}
	if s.Args, err = r.bin("args"); err != nil {
		return s, err
	}
	for _, what := range []string{"token", "retries", "backoff_ms", "backoff_max_ms", "timeout_ms", "priority"} {
		if err = read(what); err != nil {
			return s, err
		}
	}
	depth, lane, tok := ints[0], ints[1], ints[2]
	if depth < 0 || depth > MaxItems {
		return s, malformed("depth %d out of range", depth)
	}
	if lane < 0 || lane >= store.NumLanes {
		return s, malformed("unknown lane %d", lane)
	}
	for _, v := range ints[3:7] {
		if v < 0 {
			return s, malformed("negative retry or time option %d", v)
		}
	}
	s.Depth = int(depth)
	s.Lane = store.Lane(lane)
	s.Token = uint64(tok)
	s.Opts = store.Options{
		Retries: int(min(ints[3], MaxItems)), BackoffMs: ints[4], BackoffMaxMs: ints[5],
		TimeoutMs: ints[6], Priority: int(max(min(ints[7], MaxItems), -MaxItems)),
	}
	return s, nil
}

func decodeComplete(r reader) (engine.Completion, error) {
	var c engine.Completion
	var err error
	if c.Ref, err = decodeRef(r); err != nil {
		return c, err
	}
	attempt, err := r.int("attempt")
	if err != nil {
		return c, err
	}
	if attempt < 1 || attempt > MaxItems {
		return c, malformed("attempt %d out of range", attempt)
	}
	c.Attempt = int(attempt)
	if c.OK, err = r.bool("ok"); err != nil {
		return c, err
	}
	if c.Result, err = r.bin("result"); err != nil {
		return c, err
	}
	if c.Error, err = r.errorInfo("error"); err != nil {
		return c, err
	}
	if c.NoRetry, err = r.bool("no_retry"); err != nil {
		return c, err
	}
	if !c.OK && c.Error == nil {
		return c, malformed("a failed completion needs an error")
	}
	return c, nil
}

// DecodeRef decodes [unit, path].
func DecodeRef(frame []byte) (store.Ref, error) {
	if len(frame) == 0 {
		return store.Ref{}, malformed("empty frame")
	}
	r := newReader(frame)
	if err := fieldCount(r, 2, "ref"); err != nil {
		return store.Ref{}, err
	}
	return decodeRef(r)
}

// Query kinds: read-mostly requests for operators (dead letters, requeue).
const (
	QueryFailed  = 1 // [1, offset, limit] -> [operation, ...]
	QueryRequeue = 2 // [2, unit] -> nil
	// QueryCounters: [3] -> [started, succeeded, failed, retried, sum_secs,
	// [bucket counts...]] of this process's engine.
	QueryCounters = 3
	// QueryDecisions: [4] -> [{decision}, ...], the latest optimizer
	// decisions, oldest first: the embedded optimizer's (see
	// Writer.Decisions), or on Redis the foremen's from {ns}:decisions (maps
	// of strings, each naming its foreman).
	QueryDecisions = 4
	// QueryRuns: [5, since_ms, until_ms, status, name, limit] -> [operation,
	// ...], newest first (0 and "" mean any).
	QueryRuns = 5
	// QueryUnit: [6, unit] -> [operation, ...] in call order.
	QueryUnit = 6
	// QueryTimeline: [7, unit] -> [dropped, [[at_ms, path, kind, message,
	// data|nil], ...]] (see Writer.Timeline).
	QueryTimeline = 7
	// QueryStats: [8, since_ms] -> [bucket bounds ms, {name: counts}] (see
	// Writer.StatsTable).
	QueryStats = 8
	// QueryFleet: [9] -> {"foremen": [...]} and QuerySeries: [10, since_ms,
	// coarse] -> [sample, ...]: what the foremen record (Redis only; see
	// core/fleet).
	QueryFleet  = 9
	QuerySeries = 10
)

// Query is a decoded query frame.
type Query struct {
	Kind          int
	Offset, Limit int
	Unit          string
	// QueryRuns, QueryStats, QuerySeries.
	Since, Until time.Time
	Status       store.Status
	Name         string
	Coarse       bool
	// Schedule: the schedule kinds (see schedules.go).
	Schedule ScheduleQuery
}

// DecodeQuery decodes a query frame.
func DecodeQuery(frame []byte) (Query, error) {
	var q Query
	if len(frame) == 0 {
		return q, malformed("empty frame")
	}
	r := newReader(frame)
	n, err := r.arrayLen("query")
	if err != nil {
		return q, err
	}
	if n < 1 {
		return q, malformed("empty query")
	}
	kind, err := r.int("query kind")
	if err != nil {
		return q, err
	}
	q.Kind = int(kind)
	switch kind {
	case QueryFailed:
		if n != 3 {
			return q, malformed("failed query needs 3 fields, got %d", n)
		}
		off, err := r.int("offset")
		if err != nil {
			return q, err
		}
		lim, err := r.int("limit")
		if err != nil {
			return q, err
		}
		if off < 0 || lim < 0 || off > MaxItems || lim > MaxItems {
			return q, malformed("offset %d or limit %d out of range", off, lim)
		}
		q.Offset, q.Limit = int(off), int(lim)
	case QueryCounters, QueryDecisions, QueryFleet:
		if n != 1 {
			return q, malformed("query kind %d takes no fields, got %d", kind, n-1)
		}
	case QueryRequeue, QueryUnit, QueryTimeline:
		if n != 2 {
			return q, malformed("query kind %d needs 2 fields, got %d", kind, n)
		}
		if q.Unit, err = r.str("unit"); err != nil {
			return q, err
		}
	case QueryRuns:
		if n != 6 {
			return q, malformed("runs query needs 6 fields, got %d", n)
		}
		since, err := r.int("since")
		if err != nil {
			return q, err
		}
		until, err := r.int("until")
		if err != nil {
			return q, err
		}
		st, err := r.int("status")
		if err != nil {
			return q, err
		}
		if st < 0 || st > int64(store.StatusCancelled) {
			return q, malformed("unknown status %d", st)
		}
		if q.Name, err = r.str("name"); err != nil {
			return q, err
		}
		lim, err := r.int("limit")
		if err != nil {
			return q, err
		}
		if lim < 0 || lim > MaxItems {
			return q, malformed("limit %d out of range", lim)
		}
		q.Since, q.Until, q.Status, q.Limit = msTime(since), msTime(until), store.Status(st), int(lim)
	case QueryStats:
		if n != 2 {
			return q, malformed("stats query needs 2 fields, got %d", n)
		}
		since, err := r.int("since")
		if err != nil {
			return q, err
		}
		q.Since = msTime(since)
	case QuerySeries:
		if n != 3 {
			return q, malformed("series query needs 3 fields, got %d", n)
		}
		since, err := r.int("since")
		if err != nil {
			return q, err
		}
		if q.Coarse, err = r.bool("coarse"); err != nil {
			return q, err
		}
		q.Since = msTime(since)
	default:
		if !isScheduleQuery(kind) {
			return q, malformed("unknown query kind %d", kind)
		}
		if q.Schedule, err = decodeScheduleQuery(r, kind, n); err != nil {
			return q, err
		}
	}
	return q, nil
}

// Writer builds reply frames.
type Writer struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

// NewWriter returns a writer with an empty buffer.
func NewWriter() *Writer {
	w := &Writer{}
	w.enc = msgpack.NewEncoder(&w.buf)
	w.enc.UseCompactInts(true)
	return w
}

// Bytes is the encoded frame.
func (w *Writer) Bytes() []byte { return w.buf.Bytes() }

// Reset empties the writer for reuse.
func (w *Writer) Reset() { w.buf.Reset() }

func (w *Writer) errorInfo(info *store.ErrorInfo) {
	if info == nil {
		_ = w.enc.EncodeNil()
		return
	}
	_ = w.enc.EncodeArrayLen(4)
	_ = w.enc.EncodeString(info.Type)
	_ = w.enc.EncodeString(info.Message)
	_ = w.enc.EncodeString(info.Traceback)
	w.bin(info.Payload)
}

func (w *Writer) bin(b []byte) {
	if b == nil {
		_ = w.enc.EncodeNil()
		return
	}
	_ = w.enc.EncodeBytes(b)
}

// Reply writes [errors, events].
func (w *Writer) Reply(errs []CommandError, evs []engine.Event) []byte {
	_ = w.enc.EncodeArrayLen(2)
	_ = w.enc.EncodeArrayLen(len(errs))
	for _, e := range errs {
		_ = w.enc.EncodeArrayLen(3)
		_ = w.enc.EncodeInt(int64(e.Index))
		_ = w.enc.EncodeString(e.Code)
		_ = w.enc.EncodeString(e.Message)
	}
	w.Events(evs)
	return w.Bytes()
}

// Events writes an array of events.
func (w *Writer) Events(evs []engine.Event) {
	_ = w.enc.EncodeArrayLen(len(evs))
	for i := range evs {
		ev := &evs[i]
		switch ev.Kind {
		case engine.EventDeliver:
			d := &ev.Delivery
			_ = w.enc.EncodeArrayLen(9)
			_ = w.enc.EncodeInt(int64(engine.EventDeliver))
			_ = w.enc.EncodeString(d.Ref.Unit)
			_ = w.enc.EncodeString(d.Ref.Path)
			_ = w.enc.EncodeString(d.Parent)
			_ = w.enc.EncodeInt(int64(d.Depth))
			_ = w.enc.EncodeString(d.Name)
			_ = w.enc.EncodeInt(int64(d.Lane))
			w.bin(d.Args)
			_ = w.enc.EncodeInt(int64(d.Attempt))
		case engine.EventResult:
			_ = w.enc.EncodeArrayLen(5)
			_ = w.enc.EncodeInt(int64(engine.EventResult))
			_ = w.enc.EncodeUint(ev.Token)
			_ = w.enc.EncodeInt(int64(ev.Note.Status))
			w.bin(ev.Note.Result)
			w.errorInfo(ev.Note.Error)
		case engine.EventCancel:
			_ = w.enc.EncodeArrayLen(4)
			_ = w.enc.EncodeInt(int64(engine.EventCancel))
			_ = w.enc.EncodeString(ev.Note.Ref.Unit)
			_ = w.enc.EncodeString(ev.Note.Ref.Path)
			w.errorInfo(ev.Note.Error)
		case engine.EventMix:
			m := ev.Mix
			_ = w.enc.EncodeArrayLen(5)
			_ = w.enc.EncodeInt(int64(engine.EventMix))
			_ = w.enc.EncodeInt(int64(m.Async))
			_ = w.enc.EncodeInt(int64(m.Blocking))
			_ = w.enc.EncodeInt(int64(m.AsyncDelta))
			_ = w.enc.EncodeInt(int64(m.BlockingDelta))
		case engine.EventLog:
			r := &ev.Log
			_ = w.enc.EncodeArrayLen(5)
			_ = w.enc.EncodeInt(int64(engine.EventLog))
			_ = w.enc.EncodeInt(int64(r.Level))
			_ = w.enc.EncodeString(r.Message)
			_ = w.enc.EncodeString(r.Unit)
			_ = w.enc.EncodeString(r.Path)
		default:
			_ = w.enc.EncodeNil()
		}
	}
}

// Operations writes an array of operation records.
func (w *Writer) Operations(ops []store.Operation) []byte {
	_ = w.enc.EncodeArrayLen(len(ops))
	for _, op := range ops {
		w.Operation(op)
	}
	return w.Bytes()
}

// Counters writes an engine's counters (see QueryCounters).
func (w *Writer) Counters(c engine.Counters) []byte {
	_ = w.enc.EncodeArrayLen(7)
	for _, v := range []uint64{c.Started, c.Succeeded, c.Failed, c.Retried} {
		_ = w.enc.EncodeUint(v)
	}
	_ = w.enc.EncodeFloat64(c.SumSecs)
	_ = w.enc.EncodeArrayLen(len(c.Buckets))
	for _, b := range c.Buckets {
		_ = w.enc.EncodeUint(b)
	}
	w.countsMap(c.ByName)
	return w.Bytes()
}

// countsMap writes {name: counts} (see counts).
func (w *Writer) countsMap(m map[string]store.Counts) {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	_ = w.enc.EncodeMapLen(len(names))
	for _, n := range names {
		_ = w.enc.EncodeString(n)
		w.counts(m[n])
	}
}

// counts writes [succeeded, failed, retried, cancelled, sum_ms, [bucket, ...]]
// (buckets as store.StatBucketsMs, plus one for longer; empty if none timed).
func (w *Writer) counts(c store.Counts) {
	_ = w.enc.EncodeArrayLen(6)
	for _, v := range []int64{c.Succeeded, c.Failed, c.Retried, c.Cancelled, c.SumMs} {
		_ = w.enc.EncodeInt(v)
	}
	_ = w.enc.EncodeArrayLen(len(c.Buckets))
	for _, b := range c.Buckets {
		_ = w.enc.EncodeInt(b)
	}
}

// Stats writes the store's counts since a time (see QueryStats): the
// histogram's bucket bounds in ms, then {name or @lane: counts}.
func (w *Writer) StatsTable(m map[string]store.Counts) []byte {
	_ = w.enc.EncodeArrayLen(2)
	_ = w.enc.EncodeArrayLen(len(store.StatBucketsMs))
	for _, b := range store.StatBucketsMs {
		_ = w.enc.EncodeFloat64(b)
	}
	w.countsMap(m)
	return w.Bytes()
}

// Timeline writes a run's timeline (see QueryTimeline): [dropped,
// [[at_ms, path, kind, message, data|nil], ...]].
func (w *Writer) Timeline(events []store.Breadcrumb, dropped int) []byte {
	_ = w.enc.EncodeArrayLen(2)
	_ = w.enc.EncodeInt(int64(dropped))
	_ = w.enc.EncodeArrayLen(len(events))
	for _, b := range events {
		_ = w.enc.EncodeArrayLen(5)
		_ = w.enc.EncodeInt(b.At.UnixMilli())
		_ = w.enc.EncodeString(b.Ref.Path)
		_ = w.enc.EncodeString(b.Kind)
		_ = w.enc.EncodeString(b.Message)
		w.bin(b.Data)
	}
	return w.Bytes()
}

// Value writes any value msgpack can encode (maps and lists of the fleet
// reads).
func (w *Writer) Value(v any) []byte {
	_ = w.enc.Encode(v)
	return w.Bytes()
}

// decisionRecord is how Decisions writes one decision: an optimizer.Decision
// with its time in Unix seconds, so the other side needs no timestamp type.
type decisionRecord struct {
	Time      float64              `msgpack:"time"`
	Action    optimizer.Action     `msgpack:"action"`
	From      optimizer.Lane       `msgpack:"from"`
	To        optimizer.Lane       `msgpack:"to"`
	Count     int                  `msgpack:"count"`
	Reason    optimizer.Reason     `msgpack:"reason"`
	Detail    string               `msgpack:"detail"`
	Before    optimizer.Mix        `msgpack:"before"`
	After     optimizer.Mix        `msgpack:"after"`
	Confirmed int                  `msgpack:"confirmed"`
	Async     optimizer.LaneReport `msgpack:"async"`
	Blocking  optimizer.LaneReport `msgpack:"blocking"`
}

// Decisions writes optimizer decisions (see QueryDecisions) as maps: time
// (Unix seconds), action, from, to, count, reason, detail, before and after
// ({async, blocking} workers), confirmed, and the async and blocking lane
// reports (workers, slots, depth, oldest_age_s, running, arrival_rate,
// completion_rate, service_s, utilisation, drain_s, urgency).
func (w *Writer) Decisions(ds []optimizer.Decision) []byte {
	_ = w.enc.EncodeArrayLen(len(ds))
	for _, d := range ds {
		_ = w.enc.Encode(decisionRecord{
			Time:   float64(d.Time.UnixNano()) / 1e9,
			Action: d.Action, From: d.From, To: d.To, Count: d.Count,
			Reason: d.Reason, Detail: d.Detail, Before: d.Before, After: d.After,
			Confirmed: d.Confirmed, Async: d.Async, Blocking: d.Blocking,
		})
	}
	return w.Bytes()
}

// Nil writes a msgpack nil.
func (w *Writer) Nil() []byte {
	_ = w.enc.EncodeNil()
	return w.Bytes()
}

// Operation writes one operation record:
// [unit, path, parent, depth, name, lane, status, attempts, worker,
// created_ns, started_ns, finished_ns, result|nil, error|nil].
func (w *Writer) Operation(op store.Operation) []byte {
	_ = w.enc.EncodeArrayLen(15)
	_ = w.enc.EncodeString(op.Ref.Unit)
	_ = w.enc.EncodeString(op.Ref.Path)
	_ = w.enc.EncodeString(op.Parent)
	_ = w.enc.EncodeInt(int64(op.Depth))
	_ = w.enc.EncodeString(op.Name)
	_ = w.enc.EncodeInt(int64(op.Lane))
	_ = w.enc.EncodeInt(int64(op.Status))
	_ = w.enc.EncodeInt(int64(op.Attempts))
	_ = w.enc.EncodeString(op.Worker)
	for _, t := range []int64{unixNano(op.CreatedAt), unixNano(op.StartedAt), unixNano(op.FinishedAt)} {
		_ = w.enc.EncodeInt(t)
	}
	w.bin(op.Result)
	w.errorInfo(op.Error)
	w.bin(op.Args)
	return w.Bytes()
}

// Stats writes [[depth, oldest_age_ms, running, capacity, inflight], ...]
// per lane.
func (w *Writer) Stats(st [store.NumLanes]store.LaneStats, capacity, inflight [store.NumLanes]int) []byte {
	_ = w.enc.EncodeArrayLen(store.NumLanes)
	for l := range st {
		_ = w.enc.EncodeArrayLen(5)
		_ = w.enc.EncodeInt(int64(st[l].Depth))
		_ = w.enc.EncodeFloat64(float64(st[l].OldestAge.Microseconds()) / 1000)
		_ = w.enc.EncodeInt(int64(st[l].Running))
		_ = w.enc.EncodeInt(int64(capacity[l]))
		_ = w.enc.EncodeInt(int64(inflight[l]))
	}
	return w.Bytes()
}
