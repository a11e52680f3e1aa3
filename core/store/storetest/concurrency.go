package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

// Many submitters, reservers and inbox readers at once: every operation is
// completed exactly once and every waiter told exactly once.

func testConcurrency(e *env) {
	t := e.t
	const (
		submitters   = 8
		perSubmitter = 500
		batch        = 25
		reservers    = 4
		total        = submitters * perSubmitter
	)
	for i := range submitters {
		e.open(fmt.Sprintf("sub-%d", i))
	}
	for k := range reservers {
		e.open(fmt.Sprintf("res-%d", k))
	}

	failCtx, fail := context.WithCancel(e.ctx)
	defer fail()
	runCtx, stop := context.WithCancel(failCtx) // ends the reservers
	defer stop()

	var errMu sync.Mutex
	var errs []error
	report := func(err error) {
		errMu.Lock()
		errs = append(errs, err)
		errMu.Unlock()
		fail()
	}

	var mu sync.Mutex
	completed := make(map[store.Ref]int, total)
	var done atomic.Int64
	var wg sync.WaitGroup

	for k := range reservers {
		lane := store.Lane(k % store.NumLanes)
		worker := fmt.Sprintf("res-%d", k)
		wg.Go(func() {
			for {
				ds, err := e.s.Reserve(runCtx, lane, worker, 16, time.Hour, 50*time.Millisecond)
				if err != nil {
					if runCtx.Err() == nil {
						report(fmt.Errorf("reserve: %w", err))
					}
					return
				}
				if len(ds) == 0 {
					continue
				}
				comps := make([]store.Completion, len(ds))
				for j, d := range ds {
					if d.Attempt != 1 {
						report(fmt.Errorf("%s delivered with attempt %d", d.Ref, d.Attempt))
					}
					comps[j] = ok(d, d.Ref.String())
				}
				outs, err := e.s.Complete(e.ctx, worker, comps)
				if err != nil {
					report(fmt.Errorf("complete: %w", err))
					return
				}
				for j, o := range outs {
					if o != store.Recorded {
						report(fmt.Errorf("complete %s: outcome %d", comps[j].Ref, o))
						continue
					}
					mu.Lock()
					completed[comps[j].Ref]++
					mu.Unlock()
					if done.Add(1) == total {
						stop()
					}
				}
			}
		})
	}

	received := make([]map[store.Ref]int, submitters)
	for i := range submitters {
		inbox := fmt.Sprintf("sub-%d", i)
		lane := store.Lane(i % store.NumLanes)
		wg.Go(func() {
			for j := 0; j < perSubmitter; j += batch {
				subs := make([]store.Submission, batch)
				for b := range subs {
					s := sub(fmt.Sprintf("c%d-%d", i, j+b), "0")
					s.Lane = lane
					s.Inbox = inbox
					s.Args = []byte(s.Ref.String())
					subs[b] = s
				}
				outs, serrs := e.s.Submit(failCtx, subs)
				for b := range subs {
					if serrs[b] != nil || outs[b] != store.Created {
						report(fmt.Errorf("submit %s: %v, outcome %d", subs[b].Ref, serrs[b], outs[b]))
						return
					}
				}
			}
		})
		got := make(map[store.Ref]int, perSubmitter)
		received[i] = got
		wg.Go(func() {
			n := 0
			for n < perSubmitter {
				notes, err := e.s.Pop(failCtx, inbox, 100, 100*time.Millisecond)
				if err != nil {
					if failCtx.Err() == nil {
						report(fmt.Errorf("pop %s: %w", inbox, err))
					}
					return
				}
				for _, nt := range notes {
					if nt.Kind != store.NoteFinished || nt.Status != store.StatusSucceeded || string(nt.Result) != nt.Ref.String() {
						report(fmt.Errorf("inbox %s: unexpected note %+v", inbox, nt))
					}
					got[nt.Ref]++
					n++
				}
			}
		})
	}

	wg.Wait()
	require.Empty(t, errs)
	require.NoError(t, e.ctx.Err(), "the scenario ran out of time")
	require.EqualValues(t, total, done.Load(), "completions recorded")
	require.Len(t, completed, total)
	for r, c := range completed {
		require.Equal(t, 1, c, "%s completed more than once", r)
	}
	for i, got := range received {
		require.Len(t, got, perSubmitter, "submitter %d notes", i)
		for j := range perSubmitter {
			r := ref(fmt.Sprintf("c%d-%d", i, j), "0")
			require.Equal(t, 1, got[r], "submitter %d: notes about %s", i, r)
		}
		require.Empty(t, e.pop(fmt.Sprintf("sub-%d", i)), "no extra notes")
	}
	for k := range reservers {
		require.Empty(t, e.pop(fmt.Sprintf("res-%d", k)), "no worker was told to cancel")
	}
	for i := range submitters {
		for j := range perSubmitter {
			op := e.requireStatus(ref(fmt.Sprintf("c%d-%d", i, j), "0"), store.StatusSucceeded)
			require.Equal(t, 1, op.Attempts)
		}
	}
	st := e.stats()
	for l := range st {
		require.Zero(t, st[l].Depth)
		require.Zero(t, st[l].Running)
	}
}
