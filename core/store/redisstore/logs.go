package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// go-redis logs through one process-wide logger (dial failures, pool
// trouble) that writes to stderr. RouteLogs sends those lines to a
// *slog.Logger instead, so they reach the host's logging with the rest: an
// engine's records (Python's "blazing.core"), the foreman's text or JSON.

var logRoutes struct {
	sync.Mutex
	installed bool
	stack     []*slog.Logger // the newest route gets the lines
}

// RouteLogs sends go-redis's log lines to log, as warnings, until undo is
// called; with several routes the newest live one gets them, with none
// they go to stderr as go-redis writes them.
func RouteLogs(log *slog.Logger) (undo func()) {
	logRoutes.Lock()
	defer logRoutes.Unlock()
	if !logRoutes.installed {
		redis.SetLogger(router{})
		logRoutes.installed = true
	}
	logRoutes.stack = append(logRoutes.stack, log)
	var once sync.Once
	return func() {
		once.Do(func() {
			logRoutes.Lock()
			defer logRoutes.Unlock()
			for i := len(logRoutes.stack) - 1; i >= 0; i-- {
				if logRoutes.stack[i] == log {
					logRoutes.stack = append(logRoutes.stack[:i], logRoutes.stack[i+1:]...)
					break
				}
			}
		})
	}
}

type router struct{}

func (router) Printf(_ context.Context, format string, v ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	if !strings.HasPrefix(msg, "redis: ") { // most of go-redis's lines say it already
		msg = "redis: " + msg
	}
	logRoutes.Lock()
	var log *slog.Logger
	if n := len(logRoutes.stack); n > 0 {
		log = logRoutes.stack[n-1]
	}
	logRoutes.Unlock()
	if log == nil {
		fmt.Fprintln(os.Stderr, msg)
		return
	}
	log.Warn(msg)
}

// holdLogs keeps go-redis's lines to itself until release: Open holds those
// of its check that Redis answers. A failed check drops them (release(false):
// its error carries their cause, and they would reach stderr, since no
// engine has routed them yet); a passed one passes them on (release(true)).
func holdLogs() (release func(pass bool)) {
	held := &heldLines{}
	undo := RouteLogs(slog.New(held))
	return func(pass bool) {
		undo()
		if !pass {
			return
		}
		held.mu.Lock()
		lines := held.lines
		held.lines = nil
		held.mu.Unlock()
		for _, line := range lines {
			router{}.Printf(context.Background(), "%s", line)
		}
	}
}

// heldLines is a slog.Handler that keeps the messages it gets.
type heldLines struct {
	mu    sync.Mutex
	lines []string
}

func (*heldLines) Enabled(context.Context, slog.Level) bool { return true }

func (h *heldLines) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, r.Message)
	return nil
}

func (h *heldLines) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *heldLines) WithGroup(string) slog.Handler      { return h }
