package store

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Timeline is a run's whole story, oldest first: what its operations'
// records show (each queued, its last attempt started, how it ended)
// merged with the breadcrumbs stored for it (the user's, and the store's
// own for retries, lapses, timeouts, cancellations and replays).
//
// Breadcrumbs are kept to the millisecond, so times alone cannot order an
// operation's events; their order is known instead: queued, the
// breadcrumbs up to the last retry or lapse (earlier attempts), the last
// attempt started, its breadcrumbs, the end, then replays (which happen
// after the end). Operations are then merged by time.
func Timeline(ops []Operation, crumbs []Breadcrumb) []Breadcrumb {
	byPath := map[string][]Breadcrumb{}
	for _, b := range crumbs {
		byPath[b.Ref.Path] = append(byPath[b.Ref.Path], b)
	}
	var events []timed
	seq := 0
	add := func(b Breadcrumb, floor time.Time) time.Time {
		key := b.At.Truncate(time.Millisecond)
		if key.Before(floor) {
			key = floor // an operation's events never go back in time
		}
		events = append(events, timed{b: b, key: key, seq: seq})
		seq++
		return key
	}
	for _, op := range ops {
		var floor time.Time
		for _, b := range opEvents(op, byPath[op.Ref.Path]) {
			floor = add(b, floor)
		}
		delete(byPath, op.Ref.Path)
	}
	for _, bs := range byPath { // breadcrumbs of operations whose records are gone
		for _, b := range bs {
			add(b, time.Time{})
		}
	}
	sort.SliceStable(events, func(i, j int) bool {
		a, b := events[i], events[j]
		if !a.key.Equal(b.key) {
			return a.key.Before(b.key)
		}
		if a.b.Ref.Path == b.b.Ref.Path {
			return a.seq < b.seq
		}
		return sameMs(a.b, b.b)
	})
	out := make([]Breadcrumb, len(events))
	for i, e := range events {
		out[i] = e.b
	}
	return out
}

type timed struct {
	b   Breadcrumb
	key time.Time // the time it is sorted by (ms; never before its operation's earlier events)
	seq int
}

// opEvents is one operation's events in the order they happened.
func opEvents(op Operation, crumbs []Breadcrumb) []Breadcrumb {
	var out []Breadcrumb
	if !op.CreatedAt.IsZero() {
		out = append(out, Breadcrumb{Ref: op.Ref, At: op.CreatedAt, Kind: "queued",
			Message: fmt.Sprintf("%s queued on the %s lane", op.Name, op.Lane)})
	}
	// Breadcrumbs up to the last retry or lapse belong to earlier attempts.
	earlier := 0
	for i, b := range crumbs {
		if b.Kind == "retry" || b.Kind == "lapse" {
			earlier = i + 1
		}
	}
	var replays []Breadcrumb
	last := crumbs[earlier:]
	out = append(out, crumbs[:earlier]...)
	if !op.StartedAt.IsZero() {
		out = append(out, Breadcrumb{Ref: op.Ref, At: op.StartedAt, Kind: "started",
			Message: fmt.Sprintf("attempt %d started on %s", op.Attempts, op.Worker)})
	}
	for _, b := range last {
		if b.Kind == "replay" {
			replays = append(replays, b)
		} else {
			out = append(out, b)
		}
	}
	if !op.FinishedAt.IsZero() && op.Status.Finished() {
		ended := Breadcrumb{Ref: op.Ref, At: op.FinishedAt, Kind: op.Status.String()}
		took := ""
		if !op.StartedAt.IsZero() && !op.FinishedAt.Before(op.StartedAt) {
			took = " after " + op.FinishedAt.Sub(op.StartedAt).Round(time.Microsecond).String()
		}
		switch {
		case op.Status == StatusSucceeded:
			ended.Message = "succeeded" + took
		case op.Error != nil:
			ended.Message = fmt.Sprintf("%s%s: %s: %s", op.Status, took, op.Error.Type, op.Error.Message)
		default:
			ended.Message = op.Status.String() + took
		}
		out = append(out, ended)
	}
	return append(out, replays...)
}

// PathLess orders operation paths as they were called: "0" < "0.1" <
// "0.1.1" < "0.2" < "0.10" (each part compared as a number).
func PathLess(a, b string) bool {
	for a != "" && b != "" {
		pa, ra, _ := strings.Cut(a, ".")
		pb, rb, _ := strings.Cut(b, ".")
		if pa != pb {
			na, ea := strconv.Atoi(pa)
			nb, eb := strconv.Atoi(pb)
			if ea == nil && eb == nil {
				return na < nb
			}
			return pa < pb
		}
		a, b = ra, rb
	}
	return a == "" && b != ""
}

// sameMs orders two events of one millisecond: an operation is queued,
// earlier attempts end (retry, lapse, timeout), the last attempt starts,
// things are noted, and it ends; a caller starts before the calls it makes
// are queued, and ends after they do. Notes of different operations keep
// the order they were stored in.
func sameMs(a, b Breadcrumb) bool {
	ka, kb := kindOrder(a.Kind), kindOrder(b.Kind)
	if a.Ref.Path == b.Ref.Path {
		return ka < kb
	}
	begins := func(k int) bool { return k == 0 || k == 2 }
	switch {
	case begins(ka) && begins(kb): // the caller's first
		return PathLess(a.Ref.Path, b.Ref.Path)
	case ka == 4 && kb == 4: // both end: the callee's first
		return PathLess(b.Ref.Path, a.Ref.Path)
	case !begins(ka) && ka != 4 && !begins(kb) && kb != 4:
		return false
	}
	return ka < kb
}

// kindOrder ranks one operation's events: queued (0), earlier attempts
// ending (1), the last attempt started (2), notes (3), its end (4).
func kindOrder(kind string) int {
	switch kind {
	case "queued":
		return 0
	case "retry", "lapse", "timeout":
		return 1
	case "started":
		return 2
	case "succeeded", "failed", "cancelled":
		return 4
	}
	return 3
}
