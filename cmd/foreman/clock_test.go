package main

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// bound is how long a test waits for something that must happen promptly
// (a process to exit, a loop to answer). It is a failure bound only: no test
// waits it out when things work.
const bound = 20 * time.Second

// fakeClock is a clock that moves only when the test advances it. Every
// timer, ticker and AfterFunc it is asked for is reported on made (as
// "after 500ms", "ticker 15m0s", "timer 35s"), so a test knows what the
// supervisor scheduled, and when, without watching real time.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	made   chan string
}

type fakeTimer struct {
	at     time.Time
	period time.Duration  // tickers only
	f      func()         // AfterFunc only
	c      chan time.Time // timers (buffered) and tickers (unbuffered)
	done   chan struct{}  // closed on stop
	clk    *fakeClock
	once   sync.Once
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), made: make(chan string, 1000)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) add(kind string, t *fakeTimer, d time.Duration) {
	c.mu.Lock()
	t.at, t.clk, t.done = c.now.Add(d), c, make(chan struct{})
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	c.made <- fmt.Sprintf("%s %s", kind, d)
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) {
	if d <= 0 {
		c.made <- fmt.Sprintf("after %s", d)
		go f()
		return
	}
	c.add("after", &fakeTimer{f: f}, d)
}

func (c *fakeClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := &fakeTimer{period: d, c: make(chan time.Time)}
	c.add("ticker", t, d)
	return t.c, t.stop
}

func (c *fakeClock) NewTimer(d time.Duration) (<-chan time.Time, func()) {
	t := &fakeTimer{c: make(chan time.Time, 1)}
	c.add("timer", t, d)
	return t.c, t.stop
}

func (t *fakeTimer) stop() {
	t.once.Do(func() { close(t.done) })
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	for i, o := range t.clk.timers {
		if o == t {
			t.clk.timers = append(t.clk.timers[:i], t.clk.timers[i+1:]...)
			return
		}
	}
}

// Advance moves the clock by d and fires what came due, in order: an
// AfterFunc runs on its own goroutine (as time.AfterFunc does), a timer's
// channel gets its value, and a ticker delivers one tick (later ones are
// dropped, as a real ticker does) — and Advance returns only once the tick
// has been received, so whatever the receiver does next happens after it.
func (c *fakeClock) Advance(t *testing.T, d time.Duration) {
	t.Helper()
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	var due []*fakeTimer
	keep := c.timers[:0]
	for _, tm := range c.timers {
		if tm.at.After(now) {
			keep = append(keep, tm)
			continue
		}
		due = append(due, tm)
		if tm.period > 0 {
			for !tm.at.After(now) {
				tm.at = tm.at.Add(tm.period)
			}
			keep = append(keep, tm)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	sort.SliceStable(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, tm := range due {
		switch {
		case tm.f != nil:
			go tm.f()
		case tm.period > 0:
			select {
			case tm.c <- now:
			case <-tm.done:
			case <-time.After(bound):
				t.Fatalf("nobody took the tick at %s", now)
			}
		default:
			select {
			case tm.c <- now:
			default:
			}
		}
	}
}

// expect takes the next thing the code under test scheduled and checks it.
func (c *fakeClock) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-c.made:
		if got != want {
			t.Fatalf("scheduled %q, want %q", got, want)
		}
	case <-time.After(bound):
		t.Fatalf("nothing scheduled, want %q", want)
	}
}

// nothingScheduled checks that nothing more was scheduled so far.
func (c *fakeClock) nothingScheduled(t *testing.T) {
	t.Helper()
	select {
	case got := <-c.made:
		t.Fatalf("unexpectedly scheduled %q", got)
	default:
	}
}

// realClock is the time package's: its timers fire and its ticker ticks.
func TestRealClock(t *testing.T) {
	var c clock = realClock{}
	require.WithinDuration(t, time.Now(), c.Now(), time.Second)
	fired := make(chan struct{})
	c.AfterFunc(time.Millisecond, func() { close(fired) })
	tick, stopTick := c.NewTicker(time.Millisecond)
	defer stopTick()
	timer, stopTimer := c.NewTimer(time.Millisecond)
	defer stopTimer()
	for _, ch := range []<-chan time.Time{tick, timer} {
		select {
		case <-ch:
		case <-time.After(bound):
			t.Fatal("did not fire")
		}
	}
	select {
	case <-fired:
	case <-time.After(bound):
		t.Fatal("AfterFunc did not run")
	}
}
