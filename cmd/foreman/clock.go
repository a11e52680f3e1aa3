package main

import "time"

// clock is the supervisor's time. Production uses realClock; tests give it
// a fake one, so that backoff, the crash-loop window and heartbeat timeouts
// are exercised without waiting for them.
type clock interface {
	Now() time.Time
	// AfterFunc runs f on its own goroutine once d has passed.
	AfterFunc(d time.Duration, f func())
	// NewTicker ticks every d until stop is called.
	NewTicker(d time.Duration) (c <-chan time.Time, stop func())
	// NewTimer fires once after d (stop releases it).
	NewTimer(d time.Duration) (c <-chan time.Time, stop func())
}

// realClock is the time package's clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) { time.AfterFunc(d, f) }

func (realClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

func (realClock) NewTimer(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}
