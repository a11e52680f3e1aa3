package store

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Timeline is a run's whole story, oldest first: what its operations'
// records show (each queued, started, and how it ended) merged with the
// breadcrumbs stored for it (the user's, and the store's own for retries,
// lapses, timeouts, cancellations and replays).
func Timeline(ops []Operation, crumbs []Breadcrumb) []Breadcrumb {
	out := make([]Breadcrumb, 0, 3*len(ops)+len(crumbs))
	for _, op := range ops {
		if !op.CreatedAt.IsZero() {
			out = append(out, Breadcrumb{Ref: op.Ref, At: op.CreatedAt, Kind: "queued",
				Message: fmt.Sprintf("%s queued on the %s lane", op.Name, op.Lane)})
		}
		if !op.StartedAt.IsZero() {
			out = append(out, Breadcrumb{Ref: op.Ref, At: op.StartedAt, Kind: "started",
				Message: fmt.Sprintf("attempt %d started on %s", op.Attempts, op.Worker)})
		}
		if op.FinishedAt.IsZero() || !op.Status.Finished() {
			continue
		}
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
	out = append(out, crumbs...)
	// Times are compared to the millisecond, as breadcrumbs are kept; within
	// one, events go in the order they happen.
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].At.Truncate(time.Millisecond), out[j].At.Truncate(time.Millisecond)
		if !a.Equal(b) {
			return a.Before(b)
		}
		return kindOrder(out[i].Kind) < kindOrder(out[j].Kind)
	})
	return out
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

// kindOrder puts events of the same millisecond in the order they happen.
func kindOrder(kind string) int {
	switch kind {
	case "queued":
		return 0
	case "started":
		return 1
	case "succeeded", "failed", "cancelled":
		return 3
	}
	return 2
}
