package redisstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/blazingflow/blazing/core/store"
)

//go:embed lua/*.lua
var luaFS embed.FS

// scripts holds one Lua script per multi-key change. Those that change
// operations get lua/lib.lua in front of them (shared helpers and the common
// KEYS/ARGV header); the inbox and stats scripts stand alone.
//
// Every script starts with a "#!lua" shebang: without one, Redis 7 runs a
// script in a compatibility mode that lets it reach keys of any slot; with
// it, a script that touches a key outside its slot fails, on a cluster and
// on a single cluster-mode server alike, so the tests catch a key that
// escapes the namespace's hash tag.
//
// The shebang's flags also decide what happens when Redis is at maxmemory
// (with noeviction): a script with a shebang is refused before it starts
// (an OOM error, nothing written) or runs whole, never half. Scripts that
// create or grow records (submit, reserve, complete, fail, watch, requeue)
// are refused, and their callers see store.ErrFull; those that keep what
// runs alive or shrink the data (renew, release, cancel, reclaim, trim,
// repair, inbox upkeep) may run when memory is full, so leases hold and
// space can be freed.
type scripts struct {
	submit, reserve, complete, renew, release, cancel, fail, watch, reclaim, requeue *redis.Script
	reclaimWorker, trim, repair, addCrumbs                                           *redis.Script
	pop, openInbox, closeInbox, stats                                                *redis.Script
	// fire claims a schedule's tick and submits its run (lib, fire and
	// submit in one script); schedPause pauses or resumes a schedule.
	fire, schedPause *redis.Script
}

// Shebangs: refused when Redis is out of memory, allowed then, read-only.
const (
	denyOOM  = "#!lua\n"
	allowOOM = "#!lua flags=allow-oom\n"
	readOnly = "#!lua flags=no-writes\n"
)

func loadScripts() (*scripts, error) {
	read := func(name string) (string, error) {
		b, err := luaFS.ReadFile("lua/" + name + ".lua")
		if err != nil {
			return "", fmt.Errorf("redisstore: embedded script %s: %w", name, err)
		}
		return string(b), nil
	}
	lib, err := read("lib")
	if err != nil {
		return nil, err
	}
	var firstErr error
	withLib := func(shebang, name string) *redis.Script {
		src, err := read(name)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return redis.NewScript(shebang + lib + "\n" + src)
	}
	alone := func(shebang, name string) *redis.Script {
		src, err := read(name)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return redis.NewScript(shebang + src)
	}
	s := &scripts{
		submit:   withLib(denyOOM, "submit"),
		reserve:  withLib(denyOOM, "reserve"),
		complete: withLib(denyOOM, "complete"),
		fail:     withLib(denyOOM, "fail"),
		watch:    withLib(denyOOM, "watch"),
		requeue:  withLib(denyOOM, "requeue"),
		// Breadcrumbs grow a run: refused when memory is full (and dropped
		// with a log line by the engine).
		addCrumbs: alone(denyOOM, "addbc"),

		renew:         withLib(allowOOM, "renew"),
		release:       withLib(allowOOM, "release"),
		cancel:        withLib(allowOOM, "cancel"),
		reclaim:       withLib(allowOOM, "reclaim"),
		reclaimWorker: withLib(allowOOM, "reclaimworker"),
		trim:          withLib(allowOOM, "trim"),
		repair:        withLib(allowOOM, "repair"),
		pop:           alone(allowOOM, "pop"),
		openInbox:     alone(allowOOM, "openinbox"),
		closeInbox:    alone(allowOOM, "closeinbox"),

		stats: alone(readOnly, "stats"),

		// An operator's pause must work when memory is full.
		schedPause: alone(allowOOM, "schedpause"),
	}
	// Refused when memory is full, like submit: nothing is claimed then.
	fire, err1 := read("fire")
	submit, err2 := read("submit")
	if err := errors.Join(err1, err2); err != nil && firstErr == nil {
		firstErr = err
	}
	if !strings.Contains(fire, "\n--@submit\n") && firstErr == nil {
		firstErr = fmt.Errorf("redisstore: embedded script fire has no --@submit line")
	}
	s.fire = redis.NewScript(denyOOM + lib + "\n" + strings.Replace(fire, "\n--@submit\n", "\n"+submit+"\n", 1))
	return s, firstErr
}

func (s *scripts) all() []*redis.Script {
	return []*redis.Script{s.submit, s.reserve, s.complete, s.renew, s.release, s.cancel, s.fail,
		s.watch, s.reclaim, s.requeue, s.reclaimWorker, s.trim, s.repair, s.addCrumbs,
		s.pop, s.openInbox, s.closeInbox, s.stats, s.fire, s.schedPause}
}

// call is one script invocation of a batch.
type call struct {
	script *redis.Script
	keys   []string
	args   []any
}

// run runs one script: EVALSHA, falling back to EVAL when Redis lost its
// script cache (a restart, SCRIPT FLUSH).
func (s *Store) run(ctx context.Context, c call) (any, error) {
	v, err := c.script.Run(ctx, s.rdb, c.keys, c.args...).Result()
	return v, classify(err)
}

// classify marks errors the store's callers act on by kind: Redis out of
// memory (a refused script wrote nothing) is store.ErrFull.
func classify(err error) error {
	if err != nil && strings.HasPrefix(err.Error(), "OOM ") {
		return fmt.Errorf("%w: %w", store.ErrFull, err)
	}
	return err
}

// runAll runs the calls of one batch in a single pipeline (one round trip)
// and returns their results and errors in order. Calls refused with
// NOSCRIPT did not run, so they are run again, in order, with the script
// sent along.
func (s *Store) runAll(ctx context.Context, calls []call) ([]any, []error) {
	out := make([]any, len(calls))
	errs := make([]error, len(calls))
	if len(calls) == 1 {
		out[0], errs[0] = s.run(ctx, calls[0])
		return out, errs
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(calls))
	for i, c := range calls {
		cmds[i] = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // errors are read per command below
	for i, cmd := range cmds {
		out[i], errs[i] = cmd.Result()
		if isNoScript(errs[i]) {
			out[i], errs[i] = calls[i].script.Eval(ctx, s.rdb, calls[i].keys, calls[i].args...).Result()
		}
		errs[i] = classify(errs[i])
	}
	return out, errs
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
