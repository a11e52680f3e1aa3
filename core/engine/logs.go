package engine

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/blazingflow/blazing/core/store"
)

// The engine says what goes wrong (failed renewals, reclaimed leases,
// refused completions, outbox retries and give-ups, repairs) through
// log/slog. Unless Config.Logger says otherwise, its records become
// EventLog events, so the process that hosts the engine logs them its own
// way (Python's logging, under "blazing.core") with the rest of its output.
//
// Records name what they concern with the attributes "run" (unit id) and
// "step" (operation path); the message says the rest, step names included.

// LogRecord is one log line for the host process (EventLog).
type LogRecord struct {
	Level   slog.Level
	Message string
	Unit    string // "" when not about one run
	Path    string
}

// maxQueuedLogs bounds the records waiting for the host; older ones are
// dropped first and the drop is itself reported.
const maxQueuedLogs = 10_000

// logQueue holds records until the forwarder hands them to the event queue.
// It has its own lock: a record may be logged while the engine's mu is held.
type logQueue struct {
	mu      sync.Mutex
	recs    []LogRecord
	dropped int
	wake    chan struct{}
}

func newLogQueue() *logQueue { return &logQueue{wake: make(chan struct{}, 1)} }

func (q *logQueue) add(r LogRecord) {
	q.mu.Lock()
	if len(q.recs) >= maxQueuedLogs {
		q.recs = q.recs[1:]
		q.dropped++
	}
	q.recs = append(q.recs, r)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *logQueue) take() []LogRecord {
	q.mu.Lock()
	defer q.mu.Unlock()
	recs := q.recs
	q.recs = nil
	if q.dropped > 0 {
		recs = append([]LogRecord{{Level: slog.LevelWarn,
			Message: fmt.Sprintf("%d engine log records were dropped: the process did not read them in time", q.dropped)}}, recs...)
		q.dropped = 0
	}
	return recs
}

// forwardLogs moves queued records into the event queue until ctx ends.
func (e *Engine) forwardLogs(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.logs.wake:
		}
		recs := e.logs.take()
		if len(recs) == 0 {
			continue
		}
		evs := make([]Event, len(recs))
		for i, r := range recs {
			evs[i] = Event{Kind: EventLog, Log: r}
		}
		e.mu.Lock()
		if !e.closed {
			e.push(evs...)
		}
		e.mu.Unlock()
	}
}

// eventHandler is the slog.Handler that queues records for the host.
type eventHandler struct {
	q     *logQueue
	attrs []slog.Attr
	group string
}

func (h *eventHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *eventHandler) Handle(_ context.Context, r slog.Record) error {
	rec := LogRecord{Level: r.Level}
	var extra strings.Builder
	add := func(a slog.Attr) bool {
		switch a.Key {
		case "run":
			rec.Unit = a.Value.String()
		case "step":
			rec.Path = a.Value.String()
		default:
			key := a.Key
			if h.group != "" {
				key = h.group + "." + key
			}
			fmt.Fprintf(&extra, " %s=%v", key, a.Value.Any())
		}
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	rec.Message = r.Message + extra.String()
	h.q.add(rec)
	return nil
}

func (h *eventHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &eventHandler{q: h.q, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...), group: h.group}
}

func (h *eventHandler) WithGroup(name string) slog.Handler {
	g := name
	if h.group != "" {
		g = h.group + "." + name
	}
	return &eventHandler{q: h.q, attrs: h.attrs, group: g}
}

// opAttrs are the attributes that name an operation in a record.
func opAttrs(ref store.Ref) []any {
	return []any{slog.String("run", ref.Unit), slog.String("step", ref.Path)}
}
