package store

import (
	"math"
	"math/rand/v2"
	"time"
)

// Backoff is the delay before retry number attempt (1-based): exponential in
// BackoffMs, capped by BackoffMaxMs (default 60 s), with "equal jitter" so
// that retries of many failed calls spread out instead of arriving together.
func Backoff(o Options, attempt int) time.Duration {
	if o.BackoffMs <= 0 {
		return 0
	}
	capMs := o.BackoffMaxMs
	if capMs <= 0 {
		capMs = 60_000
	}
	// Keep the delay representable as a time.Duration and the doubling
	// free of overflow, whatever the options say.
	const maxMs = int64(math.MaxInt64 / int64(time.Millisecond))
	capMs = min(capMs, maxMs)
	d := min(o.BackoffMs, capMs)
	for i := 1; i < attempt && d < capMs; i++ {
		if d > capMs/2 {
			d = capMs
		} else {
			d *= 2
		}
	}
	if d > capMs {
		d = capMs
	}
	half := d / 2
	return time.Duration(half+rand.Int64N(half+1)) * time.Millisecond
}
