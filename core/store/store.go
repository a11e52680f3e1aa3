// Package store defines what Blazing Flow needs from a backing store: the
// records of runs (units) and step calls (operations), two work lanes, leases,
// and per-process inboxes that carry finished results to waiters.
//
// Every method that changes more than one record is written so that a Redis
// driver can implement it with one Lua script over keys sharing a hash tag
// (the unit id), and so that in-process drivers can implement it under one
// lock. Drivers must pass the conformance suite in package storetest.
package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Lane is the kind of worker an operation needs.
type Lane uint8

const (
	// LaneAsync is served by event-loop workers (workflows and async steps).
	LaneAsync Lane = 0
	// LaneBlocking is served by thread workers (sync and BLOCKING steps).
	LaneBlocking Lane = 1
	// NumLanes is the number of lanes.
	NumLanes = 2
)

func (l Lane) String() string {
	switch l {
	case LaneAsync:
		return "async"
	case LaneBlocking:
		return "blocking"
	}
	return fmt.Sprintf("lane(%d)", uint8(l))
}

// Valid reports whether l names a lane.
func (l Lane) Valid() bool { return l < NumLanes }

// Status is the life-cycle state of an operation.
type Status uint8

const (
	StatusPending   Status = 1
	StatusRunning   Status = 2
	StatusSucceeded Status = 3
	StatusFailed    Status = 4
	StatusCancelled Status = 5
)

func (s Status) String() string {
	switch s {
	case StatusPending:
		return "pending"
	case StatusRunning:
		return "running"
	case StatusSucceeded:
		return "succeeded"
	case StatusFailed:
		return "failed"
	case StatusCancelled:
		return "cancelled"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Finished reports whether s is terminal.
func (s Status) Finished() bool { return s >= StatusSucceeded }

// Ref names one operation: the unit (run) it belongs to and its call path.
// The root operation of a unit (the workflow itself, or a step called
// directly by a client) has path "0"; the n-th call issued by an operation
// with path p has path p + "." + n. Paths are therefore the same every time a
// deterministic caller is replayed, which is what makes replay possible.
type Ref struct {
	Unit string `msgpack:"u"`
	Path string `msgpack:"p"`
}

func (r Ref) String() string { return r.Unit + "/" + r.Path }

// RootPath is the path of a unit's root operation.
const RootPath = "0"

// Options are per-call execution settings.
type Options struct {
	// Retries is how many times a failed attempt is re-queued.
	Retries int
	// BackoffMs is the base of the exponential retry delay; 0 retries at once.
	BackoffMs int64
	// BackoffMaxMs caps the retry delay; 0 means 60 s.
	BackoffMaxMs int64
	// TimeoutMs fails an attempt that runs longer; 0 means no limit.
	TimeoutMs int64
	// Priority orders work inside a lane: higher first, FIFO among equals.
	Priority int
}

// Submission asks for one operation to exist.
type Submission struct {
	Ref    Ref
	Parent string // path of the calling operation, "" for a root
	Depth  int
	Name   string
	Lane   Lane
	Args   []byte
	Opts   Options
	// Inbox, if set, receives a Note when the operation finishes (or at once
	// if it already has).
	Inbox string
}

// Validate reports, wrapping ErrInvalid, what makes s malformed in itself:
// an empty unit, path or name, an unknown lane, or a path other than
// RootPath without a parent. Whether the parent exists is the store's to
// say (ErrNotFound). Drivers call it for every item of a Submit.
func (s *Submission) Validate() error {
	switch {
	case s.Ref.Unit == "" || s.Ref.Path == "":
		return fmt.Errorf("%w: empty unit or path", ErrInvalid)
	case s.Name == "":
		return fmt.Errorf("%w: %s has no name", ErrInvalid, s.Ref)
	case !s.Lane.Valid():
		return fmt.Errorf("%w: %s has unknown lane %d", ErrInvalid, s.Ref, s.Lane)
	case s.Parent == "" && s.Ref.Path != RootPath:
		return fmt.Errorf("%w: %s is not a root but has no parent", ErrInvalid, s.Ref)
	}
	return nil
}

// Outcome tells a submitter what it found.
type Outcome uint8

const (
	// Created: the operation is new and queued.
	Created Outcome = 1
	// Joined: the operation already existed and has not finished; the
	// submitter's inbox will be told when it does.
	Joined Outcome = 2
	// Replayed: the operation had already finished; its Note has been put in
	// the submitter's inbox.
	Replayed Outcome = 3
)

// Delivery is one operation handed to a worker under a lease.
type Delivery struct {
	Ref       Ref
	Parent    string
	Depth     int
	Name      string
	Lane      Lane
	Args      []byte
	Attempt   int // 1 for the first attempt
	TimeoutMs int64
	LeaseID   uint64 // must be presented to complete or renew
}

// ErrorInfo describes a failure. Payload is codec-encoded and opaque here.
type ErrorInfo struct {
	Type      string `msgpack:"t"`
	Message   string `msgpack:"m"`
	Traceback string `msgpack:"tb"`
	Payload   []byte `msgpack:"p"`
}

// Completion reports the end of one attempt.
type Completion struct {
	Ref     Ref
	LeaseID uint64
	OK      bool
	Result  []byte     // when OK
	Error   *ErrorInfo // when !OK
	// NoRetry fails the operation even if retries remain (for errors that a
	// retry cannot fix, such as a malformed argument).
	NoRetry bool
}

// CompleteOutcome tells a worker what its completion did.
type CompleteOutcome uint8

const (
	// Recorded: the result (or final failure) was stored and waiters told.
	Recorded CompleteOutcome = 1
	// Retrying: the failure was recorded and another attempt is scheduled.
	Retrying CompleteOutcome = 2
	// Stale: the lease was no longer held (lapsed, cancelled, already
	// finished); nothing changed. The first result wins.
	Stale CompleteOutcome = 3
)

// NoteKind is what a Note reports.
type NoteKind uint8

const (
	// NoteFinished: an operation the inbox waits on has finished.
	NoteFinished NoteKind = 1
	// NoteCancel: an operation held by the inbox's owner was cancelled or
	// timed out and must stop running.
	NoteCancel NoteKind = 2
)

// Note is one message in an inbox.
type Note struct {
	Kind   NoteKind
	Ref    Ref
	Status Status
	Result []byte
	Error  *ErrorInfo
	// LeaseID is, for NoteCancel, the lease that was cancelled, so a holder
	// never stops a later attempt of the same operation by mistake.
	LeaseID uint64
}

// Operation is the full record of one operation, for status and history.
type Operation struct {
	Ref        Ref
	Parent     string
	Depth      int
	Name       string
	Lane       Lane
	Status     Status
	Args       []byte
	Result     []byte
	Error      *ErrorInfo
	Attempts   int
	Worker     string
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
}

// LaneStats is what the optimizer reads about one lane.
type LaneStats struct {
	Depth     int           // operations waiting (ready or delayed)
	OldestAge time.Duration // age of the oldest ready operation, 0 if none
	Running   int           // operations held under a lease
}

// DefaultMaxLapses is how many lease lapses without progress an operation
// survives, unless a driver is configured otherwise, before Reclaim fails it
// instead of handing it to yet another worker (see Reclaim).
const DefaultMaxLapses = 10

// WorkerLostType is the error type of an operation failed by Reclaim.
const WorkerLostType = "blazing.errors.WorkerLost"

// Lapse is one operation whose lease Reclaim (or ReclaimWorker) took back.
type Lapse struct {
	Ref    Ref
	Name   string
	Worker string // the holder whose lease lapsed
	// Lapses is how many lapses in a row it has had without progress
	// (0 after a lapse in which it made progress).
	Lapses int
	// Progress: during the lapsed attempt a call it made was created or
	// finished, it was waiting on a call it made, or its lease was renewed.
	Progress bool
	// Failed: it had lapsed too often without progress and was failed
	// with WorkerLostType instead of being queued again.
	Failed bool
}

// Reclaimed reports what Reclaim or ReclaimWorker did.
type Reclaimed struct {
	// Moved counts operations moved: lapsed leases taken back (queued again
	// or failed) and delayed retries made ready.
	Moved int
	// Lapsed lists the lapsed leases taken back (at most a bounded number
	// per call; Moved counts them all).
	Lapsed []Lapse
}

// Repair is one inconsistency a Repair call found and mended.
type Repair struct {
	// Kind names what was wrong, e.g. "orphan-lease", "stale-queue-entry",
	// "orphan-notes", "counter-behind".
	Kind string
	// Ref is the operation concerned, if any.
	Ref Ref
	// Detail says what was found and done, for the log.
	Detail string
}

// Trimmed reports what Trim deleted.
type Trimmed struct {
	// Runs is how many finished runs were deleted ahead of their retention.
	Runs int
	// Reason says why: "count" (more finished runs than the configured
	// maximum) or "memory" (the store is close to its memory limit).
	Reason string
}

// Breadcrumb is one event of a run's timeline: written by user code
// (log_breadcrumb, Kind "user") or by the store where something happened
// that an operation's record does not show (Kind "retry", "lapse",
// "timeout", "cancelled", "replay"). What the record shows (queued,
// started, succeeded, failed) is not stored twice: see Timeline.
type Breadcrumb struct {
	Ref     Ref
	At      time.Time
	Kind    string
	Message string
	// Data is the user's metadata, msgpack-encoded by the caller; opaque.
	Data []byte
}

// DefaultMaxBreadcrumbs bounds the breadcrumbs kept per run, unless a
// driver is configured otherwise: past it the oldest go first and are
// counted.
const DefaultMaxBreadcrumbs = 1000

// RunQuery selects runs (units, by their root operation) from the index
// of runs by creation time.
type RunQuery struct {
	// Since and Until bound the creation time; zero means unbounded.
	Since, Until time.Time
	// Status, if not 0, keeps runs whose root has that status.
	Status Status
	// Name, if not "", keeps runs of that workflow or step.
	Name string
	// Limit is the most runs returned (0: 100).
	Limit int
}

// StatBucketsMs are the upper bounds, in milliseconds, of the duration
// histograms the store keeps per step name and lane: a factor of √2 apart
// from 0.5 ms to about 50 minutes, plus one bucket for longer.
var StatBucketsMs = func() []float64 {
	out := make([]float64, 46)
	for i := range out {
		out[i] = 0.5 * math.Pow(2, float64(i)/2)
	}
	return out
}()

// BucketOf is the histogram bucket of a duration (len(StatBucketsMs) for
// the longest).
func BucketOf(d time.Duration) int {
	ms := float64(d) / float64(time.Millisecond)
	for i, ub := range StatBucketsMs {
		if ms <= ub {
			return i
		}
	}
	return len(StatBucketsMs)
}

// Counts are what happened to the attempts of one step name (or lane) in a
// period: how they ended and how long they took.
type Counts struct {
	Succeeded, Failed, Retried, Cancelled int64
	// Buckets[i] counts attempts that took at most StatBucketsMs[i]; the
	// last counts longer ones. Nil when no attempt was timed.
	Buckets []int64
	SumMs   int64
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Succeeded += o.Succeeded
	c.Failed += o.Failed
	c.Retried += o.Retried
	c.Cancelled += o.Cancelled
	c.SumMs += o.SumMs
	if len(o.Buckets) > 0 && len(c.Buckets) < len(o.Buckets) {
		c.Buckets = append(c.Buckets, make([]int64, len(o.Buckets)-len(c.Buckets))...)
	}
	for i, n := range o.Buckets {
		c.Buckets[i] += n
	}
}

// Observe counts one attempt that ended with outcome ("succeeded",
// "failed", "retried" or "cancelled") after d.
func (c *Counts) Observe(outcome string, d time.Duration) {
	switch outcome {
	case "succeeded":
		c.Succeeded++
	case "failed":
		c.Failed++
	case "retried":
		c.Retried++
	case "cancelled":
		c.Cancelled++
	}
	if d >= 0 {
		if c.Buckets == nil {
			c.Buckets = make([]int64, len(StatBucketsMs)+1)
		}
		c.Buckets[BucketOf(d)]++
		c.SumMs += d.Milliseconds()
	}
}

// LaneKey is the Counts key of a lane's totals ("@async", "@blocking"):
// step names cannot start with '@'.
func LaneKey(l Lane) string { return "@" + l.String() }

// StatsDelta is what one process counted in one minute, added to the
// store's per-minute totals (merged across processes and machines).
type StatsDelta struct {
	Minute time.Time         // the minute the counts belong to (truncated)
	Counts map[string]Counts // by step name, and by LaneKey
}

// Errors returned by drivers. Wrap them with context; test with errors.Is.
var (
	ErrNotFound     = errors.New("not found")
	ErrInvalid      = errors.New("invalid request")
	ErrClosed       = errors.New("store closed")
	ErrConflict     = errors.New("conflicting submission")
	ErrUnknownInbox = errors.New("unknown inbox")
	// ErrFull: the store refused a write because it is out of memory
	// (Redis at maxmemory). Nothing was written; the same request may
	// succeed once memory is freed.
	ErrFull = errors.New("store is out of memory")
	// ErrUnavailable: the store cannot be reached, or refuses this
	// process (credentials, TLS).
	ErrUnavailable = errors.New("store unavailable")
	// ErrTimeout: the store accepted the connection but did not answer in
	// time. Errors that wrap it wrap ErrUnavailable too.
	ErrTimeout = errors.New("store did not answer in time")
)

// Store is the storage driver interface.
//
// Methods taking a wait duration return as soon as they have something, or
// after wait with nothing; wait 0 never blocks. None of them poll.
type Store interface {
	// Submit creates operations, or joins/replays existing ones with the
	// same Ref. A submission whose Ref exists with a different Name is
	// ErrConflict for that item only.
	Submit(ctx context.Context, subs []Submission) ([]Outcome, []error)

	// Reserve hands up to max ready operations of a lane to worker under a
	// lease of the given length. worker is also the inbox that receives
	// NoteCancel for what it holds.
	Reserve(ctx context.Context, lane Lane, worker string, max int, lease time.Duration, wait time.Duration) ([]Delivery, error)

	// Renew extends the leases worker holds. It returns the refs whose lease
	// was lost (lapsed and reclaimed, cancelled or finished).
	Renew(ctx context.Context, worker string, leases map[Ref]uint64, lease time.Duration) ([]Ref, error)

	// Complete records attempt outcomes and tells waiters.
	Complete(ctx context.Context, worker string, comps []Completion) ([]CompleteOutcome, error)

	// Release hands held operations back to the queue at once (a draining
	// worker that will not finish them), without counting an attempt.
	Release(ctx context.Context, worker string, leases map[Ref]uint64) error

	// Cancel cancels one operation (and the operations it called), or the
	// whole unit when path is "". Holders of running ones get NoteCancel;
	// waiters get NoteFinished with StatusCancelled. It returns how many
	// operations it cancelled.
	Cancel(ctx context.Context, unit, path string, reason string) (int, error)

	// Fail fails a running operation on behalf of its holder or the system
	// (timeouts), honoring retries; the holder gets NoteCancel.
	Fail(ctx context.Context, ref Ref, leaseID uint64, info ErrorInfo) (CompleteOutcome, error)

	// Watch adds inbox to the waiters of an operation; if it has finished the
	// Note is delivered at once. ErrNotFound if it does not exist.
	Watch(ctx context.Context, ref Ref, inbox string) error

	// Get reads one operation.
	Get(ctx context.Context, ref Ref) (Operation, error)

	// OpenInbox registers an inbox for a process or client; CloseInbox drops
	// it and anything in it.
	OpenInbox(ctx context.Context, inbox string) error
	CloseInbox(ctx context.Context, inbox string) error

	// Pop takes up to max notes from an inbox.
	Pop(ctx context.Context, inbox string, max int, wait time.Duration) ([]Note, error)

	// Reclaim returns operations whose lease lapsed before now to their
	// queue and moves delayed retries that are due. A lapse is the worker's
	// fault, not the operation's, so it does not use up Retries. An
	// operation whose lease lapses more than the driver's MaxLapses times
	// in a row without progress is failed with type WorkerLostType: it
	// keeps killing its workers. Progress during the lapsed attempt (a call
	// it made was created or finished, it was waiting on a call it made, or
	// its lease was renewed at least once) clears the count, so work that
	// keeps moving survives any number of worker deaths.
	Reclaim(ctx context.Context, now time.Time) (Reclaimed, error)

	// ReclaimWorker takes back at once every lease worker holds, as Reclaim
	// would once they lapse: for a worker known to be gone (its process
	// exited), so that its work need not wait out the lease.
	ReclaimWorker(ctx context.Context, worker string, now time.Time) (Reclaimed, error)

	// Trim deletes the oldest finished runs (with all their operations)
	// ahead of their retention while there are more of them than the
	// driver's maximum, or while the store is close to its memory limit.
	// One call deletes a bounded number; it reports how many.
	Trim(ctx context.Context, now time.Time) (Trimmed, error)

	// Repair looks for states no single failure should leave behind but a
	// bug or a partial restore might (a lease held by a worker that is not
	// alive, queue entries of operations that are not queued, notes for an
	// inbox nobody reads, counters behind the values already handed out)
	// and mends them. It does a bounded amount of work per call and
	// reports each repair.
	Repair(ctx context.Context, now time.Time) ([]Repair, error)

	// Stats reads the lanes.
	Stats(ctx context.Context) ([NumLanes]LaneStats, error)

	// Failed lists the dead letters: root operations (runs) that failed,
	// most recent first, skipping offset and returning at most limit.
	Failed(ctx context.Context, offset, limit int) ([]Operation, error)

	// Requeue puts a failed or cancelled unit back to work: its root becomes
	// pending again with its attempts reset, and its failed or cancelled
	// operations are forgotten, so that the replay re-runs them while the
	// ones that succeeded return their stored results. It leaves the dead
	// letter list. ErrNotFound for an unknown unit, ErrInvalid for a unit
	// whose root has not finished or succeeded.
	Requeue(ctx context.Context, unit string) error

	// AddBreadcrumbs appends breadcrumbs to their runs' timelines (runs
	// the store does not have are skipped). Each run keeps its newest
	// MaxBreadcrumbs; the dropped ones are counted.
	AddBreadcrumbs(ctx context.Context, crumbs []Breadcrumb) error

	// Breadcrumbs reads what was stored of a run's timeline, oldest first,
	// and how many older ones were dropped. ErrNotFound for an unknown run.
	Breadcrumbs(ctx context.Context, unit string) ([]Breadcrumb, int, error)

	// Runs lists runs (their root operations) newest first, from the index
	// of runs by creation time.
	Runs(ctx context.Context, q RunQuery) ([]Operation, error)

	// Unit reads every operation of a run, in call order (by path).
	// ErrNotFound for an unknown run.
	Unit(ctx context.Context, unit string) ([]Operation, error)

	// AddStats adds a process's counts to the store's per-minute totals.
	AddStats(ctx context.Context, d StatsDelta) error

	// ReadStats sums the per-minute totals from since to now, by step name
	// and lane key. Minutes are kept for a day.
	ReadStats(ctx context.Context, since, now time.Time) (map[string]Counts, error)

	// Close releases the driver; blocked calls return ErrClosed.
	Close() error
}

// DueReporter is implemented by drivers that can say when their next delayed
// retry comes due. An engine that is its store's only user uses it to arm
// one timer instead of keeping a goroutine blocked in Reserve.
type DueReporter interface {
	NextDue() (time.Time, bool)
}
