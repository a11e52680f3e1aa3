package redisstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/blazingflow/blazing/core/store"
)

// Submit: the submit script creates each operation, or joins its waiters or
// replays its result; a batch takes as few script calls as maxKeysPerCall
// allows, run in one pipeline.

// validate adds to Submission.Validate what only this driver refuses: a
// path with ':', since queue members are "<unit>:<path>", split at the last
// colon. It is checked where the driver always checked it, after the empty
// unit or path and before the rest, so the error is the same as ever.
func validate(sub *store.Submission) error {
	if sub.Ref.Unit != "" && strings.ContainsRune(sub.Ref.Path, ':') {
		return fmt.Errorf("%w: %s: a path may not contain ':'", store.ErrInvalid, sub.Ref)
	}
	return sub.Validate()
}

// newOpFields are the hash fields of a new operation that Go decides (the
// script adds name, creation time, waiters and queue fields).
func newOpFields(sub *store.Submission) []any {
	var f []any
	if sub.Lane != store.LaneAsync {
		f = append(f, "l", int(sub.Lane))
	}
	if len(sub.Args) > 0 {
		f = append(f, "a", sub.Args)
	}
	if sub.Parent != parentOf(sub.Ref.Path) {
		f = append(f, "p", sub.Parent)
	}
	if sub.Depth != depthOf(sub.Ref.Path) {
		f = append(f, "h", sub.Depth)
	}
	o := &sub.Opts
	for _, kv := range []struct {
		name string
		v    int64
	}{{"R", int64(o.Retries)}, {"B", o.BackoffMs}, {"M", o.BackoffMaxMs}, {"T", o.TimeoutMs}, {"P", int64(o.Priority)}} {
		if kv.v != 0 {
			f = append(f, kv.name, kv.v)
		}
	}
	return f
}

// Submit implements store.Store.
func (s *Store) Submit(ctx context.Context, subs []store.Submission) ([]store.Outcome, []error) {
	outs := make([]store.Outcome, len(subs))
	errs := make([]error, len(subs))
	if s.closed.Load() {
		for i := range errs {
			errs[i] = store.ErrClosed
		}
		return outs, errs
	}
	now := s.nowMs()
	var calls []call
	var items [][]int // indexes into subs, per call
	var cur call
	var curItems []int
	flushCall := func() {
		if len(curItems) == 0 {
			return
		}
		cur.args[6] = len(curItems)
		calls = append(calls, cur)
		items = append(items, curItems)
		curItems = nil
	}
	for i := range subs {
		sub := &subs[i]
		if err := validate(sub); err != nil {
			errs[i] = err
			continue
		}
		if len(curItems) == 0 {
			cur = call{script: s.sc.submit, keys: s.k.withGlobals(3 * 64), args: append(s.header(now, 2+10*64), 0, s.history)}
		}
		op := s.k.op(sub.Ref)
		parentKey := op
		if sub.Parent != "" {
			parentKey = s.k.op(store.Ref{Unit: sub.Ref.Unit, Path: sub.Parent})
		}
		cur.keys = append(cur.keys, op, s.k.unit(sub.Ref.Unit), parentKey)
		fields := newOpFields(sub)
		cur.args = append(cur.args, sub.Ref.Unit, sub.Ref.Path, sub.Parent, sub.Name,
			int(sub.Lane), sub.Opts.Priority, sub.Inbox, len(fields))
		cur.args = append(cur.args, fields...)
		curItems = append(curItems, i)
		if len(cur.keys)+3 > maxKeysPerCall {
			flushCall()
		}
	}
	flushCall()
	if len(calls) == 0 {
		return outs, errs
	}
	results, callErrs := s.runAll(ctx, calls)
	for c, idx := range items {
		if callErrs[c] != nil {
			for _, i := range idx {
				errs[i] = fmt.Errorf("redisstore: submit %s: %w", subs[i].Ref, callErrs[c])
			}
			continue
		}
		res, _ := results[c].([]any)
		for j, i := range idx {
			outs[i], errs[i] = submitOutcome(&subs[i], res, j)
		}
	}
	return outs, errs
}

func submitOutcome(sub *store.Submission, res []any, j int) (store.Outcome, error) {
	if j >= len(res) {
		return 0, fmt.Errorf("redisstore: submit %s: short reply from the script", sub.Ref)
	}
	r, _ := res[j].([]any)
	code := int64(0)
	if len(r) > 0 {
		code, _ = r[0].(int64)
	}
	switch code {
	case 1, 2, 3:
		return store.Outcome(code), nil
	case -1:
		name := ""
		if len(r) > 1 {
			name, _ = r[1].(string)
		}
		return 0, fmt.Errorf("%w: %s is %q, not %q", store.ErrConflict, sub.Ref, name, sub.Name)
	case -2:
		return 0, fmt.Errorf("%w: parent %s/%s of %s", store.ErrNotFound, sub.Ref.Unit, sub.Parent, sub.Ref)
	case -3:
		return 0, fmt.Errorf("redisstore: submit %s: %w in the way (it or its parent)", sub.Ref, ErrMalformed)
	}
	return 0, fmt.Errorf("redisstore: submit %s: unexpected reply %v", sub.Ref, r)
}
