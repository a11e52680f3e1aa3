package engine

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// logBook is a slog.Handler that keeps every record (for assertions) and
// writes it to the test's log.
type logBook struct {
	t     *testing.T
	mu    *sync.Mutex
	lines *[]string
	attrs []slog.Attr
}

func (b *logBook) Enabled(context.Context, slog.Level) bool { return true }

func (b *logBook) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s", r.Level, r.Message)
	for _, a := range b.attrs {
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
		return true
	})
	b.mu.Lock()
	*b.lines = append(*b.lines, sb.String())
	b.mu.Unlock()
	b.t.Log(sb.String())
	return nil
}

func (b *logBook) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *b
	c.attrs = append(append([]slog.Attr(nil), b.attrs...), attrs...)
	return &c
}

func (b *logBook) WithGroup(string) slog.Handler { return b }

// contains reports whether some record has every one of parts.
func (b *logBook) contains(parts ...string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range *b.lines {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

func (b *logBook) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var buf bytes.Buffer
	for _, l := range *b.lines {
		buf.WriteString(l + "\n")
	}
	return buf.String()
}

// newLogBook returns a logger writing to t's log and the book of its records.
func newLogBook(t *testing.T) (*slog.Logger, *logBook) {
	b := &logBook{t: t, mu: &sync.Mutex{}, lines: &[]string{}}
	return slog.New(b), b
}

// testLogger is the engines' logger in tests: the test's own log.
func testLogger(t *testing.T) *slog.Logger {
	l, _ := newLogBook(t)
	return l
}
