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
	msg := "redis: " + strings.TrimSpace(fmt.Sprintf(format, v...))
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
