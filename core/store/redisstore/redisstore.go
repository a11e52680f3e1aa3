// Package redisstore is the Redis store driver, on go-redis
// (UniversalClient: standalone, Sentinel or Cluster). It requires Redis 7.0
// or later (BLMPOP, LPOP with a count).
//
// Every change that touches more than one key is one Lua script (lua/*.lua,
// embedded), run with EVALSHA (EVAL when Redis lost its script cache), and
// every key of a namespace shares one hash tag (see keys.go), so the scripts
// run unchanged on Redis Cluster. Batches cost one round trip: a Submit,
// Complete, Renew or Release of N items is one script call, or one pipeline
// of script calls when N is large enough that KEYS is split into chunks.
// Reserve of N items is one script call.
//
// Timestamps come from Config.Now and reach the scripts in ARGV, never from
// Redis' clock, so one clock drives every driver and the conformance tests.
// Waits (the wait argument of Reserve and Pop) are measured on the real
// clock.
//
// Lifetimes: every key of a unit (its operation hashes and its index) gets
// FailedRetention plus a day when the unit starts, and when its root
// finishes all of them get SucceededRetention (succeeded) or FailedRetention
// (failed or cancelled); a call submitted later inherits what its unit has
// left. A unit that runs longer than FailedRetention plus a day therefore
// loses its records: raise FailedRetention for such runs. Inboxes live
// InboxTTL past their last use; the dead-letter list is trimmed by Reclaim
// past FailedRetention; lane queues hold only live work; signal lists are
// trimmed to a few tokens and expire when idle.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/blazingflow/blazing/core/store"
)

// Config configures the driver.
type Config struct {
	// Client is the Redis client. New does not take ownership: Close leaves
	// it open (Open creates and owns one).
	Client redis.UniversalClient
	// Namespace separates applications sharing one Redis; default
	// "blazing". It may not contain '{' or '}'.
	Namespace string
	// SucceededRetention is how long a succeeded run stays readable;
	// default 7 days.
	SucceededRetention time.Duration
	// FailedRetention is how long a failed or cancelled run stays readable
	// and listed in Failed; default 30 days.
	FailedRetention time.Duration
	// Now overrides the clock (tests); default time.Now.
	Now func() time.Time
	// InboxTTL is how long an inbox survives without being opened or read;
	// default 24 hours.
	InboxTTL time.Duration
	// MaxLapses is how many lease lapses in a row without progress an
	// operation survives before Reclaim fails it; default
	// store.DefaultMaxLapses.
	MaxLapses int
	// MaxRuns bounds the finished runs kept: Trim deletes the oldest past
	// it, ahead of their retention; default DefaultMaxRuns.
	MaxRuns int
	// NoHistory leaves runs out of the index of runs (Runs lists none):
	// the one write per run that history costs, for benchmarks of it.
	NoHistory bool
	// MaxBreadcrumbs bounds the user's breadcrumbs kept per run (the
	// oldest go first, counted); default store.DefaultMaxBreadcrumbs.
	MaxBreadcrumbs int
	// RepairGap: a Repair call within this long of another one (from any
	// process on the namespace) does nothing; 0 checks on every call.
	RepairGap time.Duration
	// TrimMemoryFraction: Trim also deletes the oldest finished runs while
	// Redis uses more than this fraction of its maxmemory (when one is
	// set); default 0.9.
	TrimMemoryFraction float64
	// TLS fills in the TLS options a rediss URL given to Open leaves unset
	// (New ignores it). Set with a URL that does not use TLS, Open refuses.
	TLS TLS
}

// Defaults.
const (
	DefaultNamespace          = "blazing"
	DefaultSucceededRetention = 7 * 24 * time.Hour
	DefaultFailedRetention    = 30 * 24 * time.Hour
	DefaultInboxTTL           = 24 * time.Hour
	// DefaultMaxRuns keeps about 130-200 MB of finished runs (1.3-2 KB
	// each): sized for a small Redis.
	DefaultMaxRuns            = 100_000
	DefaultTrimMemoryFraction = 0.9
)

// ErrMalformed is returned (wrapped) for a record that the driver cannot
// read, such as a hash changed by hand.
var ErrMalformed = errors.New("malformed record")

const (
	// pendingMargin is added to FailedRetention for the keys of a unit that
	// has not finished, so nothing lives forever if its workers vanish.
	pendingMargin = 24 * time.Hour
	// Batch chunking: at most this many KEYS per script call (a few
	// hundred keep one call short, so Redis serves others in between).
	maxKeysPerCall = 500
	// promoteMax and reclaimMax bound the work of one Reserve or Reclaim
	// script; the rest is done by the next call.
	promoteMax = 1000
	reclaimMax = 1000
	// nextDueTimeout bounds NextDue, which has no context.
	nextDueTimeout = 2 * time.Second
)

// Store is the Redis driver. Create it with New or Open.
type Store struct {
	cfg   Config
	rdb   redis.UniversalClient
	owned bool // Close closes rdb
	k     keys
	sc    *scripts
	id    string // names this instance's wake lists

	closed  atomic.Bool
	mu      sync.Mutex
	wakeSeq uint64
	waiters map[string]struct{} // wake lists of blocked calls
	// notesCursor is where Repair's SCAN for orphan notes goes on.
	notesCursor uint64

	// Round trips a blocking call may skip (see Reserve and Pop): per lane,
	// the lane's queue was found empty by this store's last reserve script
	// (emptyDue: its next delayed retry, unix ms, or 0); per inbox, when
	// the pop script last checked it exists and refreshed its lifetime.
	skipMu    sync.Mutex
	emptyLane [store.NumLanes]bool
	emptyDue  [store.NumLanes]int64
	inboxSeen map[string]time.Time

	// pipelineWaits: a waiting Reserve sends its wait and the reserve script
	// in one pipeline (see waitReserve); only with the real clock, since
	// the script then reads Redis' clock, corrected by clockOffsetMs
	// (measured at New and again by Reclaim every clockCheckEvery).
	pipelineWaits atomic.Bool
	clockOffsetMs atomic.Int64
	clockChecked  atomic.Int64 // unix ms
	realClock     bool
	maxWait       time.Duration // one pipelined wait at most (pipelineWaitCap)
	history       string        // "1" when runs are indexed (ARGV of submit.lua)
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.DueReporter = (*Store)(nil)
)

// New returns a store on cfg.Client. It loads the scripts, so it fails if
// Redis cannot be reached.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("redisstore: Config.Client is nil")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if strings.ContainsAny(cfg.Namespace, "{}") {
		return nil, fmt.Errorf("redisstore: namespace %q may not contain '{' or '}' (it becomes the hash tag)", cfg.Namespace)
	}
	if cfg.SucceededRetention <= 0 {
		cfg.SucceededRetention = DefaultSucceededRetention
	}
	if cfg.FailedRetention <= 0 {
		cfg.FailedRetention = DefaultFailedRetention
	}
	if cfg.InboxTTL <= 0 {
		cfg.InboxTTL = DefaultInboxTTL
	}
	if cfg.MaxLapses <= 0 {
		cfg.MaxLapses = store.DefaultMaxLapses
	}
	if cfg.MaxRuns <= 0 {
		cfg.MaxRuns = DefaultMaxRuns
	}
	if cfg.MaxBreadcrumbs <= 0 {
		cfg.MaxBreadcrumbs = store.DefaultMaxBreadcrumbs
	}
	if cfg.TrimMemoryFraction <= 0 || cfg.TrimMemoryFraction > 1 {
		cfg.TrimMemoryFraction = DefaultTrimMemoryFraction
	}
	realClock := cfg.Now == nil
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	sc, err := loadScripts()
	if err != nil {
		return nil, err
	}
	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, fmt.Errorf("redisstore: instance id: %w", err)
	}
	s := &Store{
		cfg:       cfg,
		rdb:       cfg.Client,
		k:         newKeys(cfg.Namespace),
		sc:        sc,
		id:        hex.EncodeToString(idb[:]),
		waiters:   make(map[string]struct{}),
		inboxSeen: make(map[string]time.Time),
		maxWait:   pipelineWaitCap(cfg.Client),
		history:   "1",
	}
	if cfg.NoHistory {
		s.history = "0"
	}
	if err := s.checkVersion(ctx); err != nil {
		return nil, err
	}
	if realClock {
		s.measureClock(ctx)
		s.realClock = true
	}
	// Loading up front makes the first pipelined EVALSHA find its script.
	for _, script := range sc.all() {
		if err := script.Load(ctx, s.rdb).Err(); err != nil {
			return nil, fmt.Errorf("redisstore: load scripts: %w", err)
		}
	}
	return s, nil
}

// checkVersion refuses servers older than 7.0. A server that hides INFO
// (ACLs, proxies) is given the benefit of the doubt.
func (s *Store) checkVersion(ctx context.Context) error {
	info, err := s.rdb.Info(ctx, "server").Result()
	if err != nil {
		var rerr redis.Error
		if errors.As(err, &rerr) {
			return nil
		}
		return fmt.Errorf("redisstore: reach Redis: %w", err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:")
		if !ok {
			continue
		}
		major, _, _ := strings.Cut(v, ".")
		if n, err := strconv.Atoi(major); err == nil && n < 7 {
			return fmt.Errorf("redisstore: Redis %s is too old: 7.0 or later is needed", v)
		}
	}
	return nil
}

func (s *Store) nowMs() int64 { return s.cfg.Now().UnixMilli() }

// header is the common start of ARGV (see lua/lib.lua), plus room for more.
func (s *Store) header(nowMs int64, extra int) []any {
	out := make([]any, 6, 6+extra)
	out[0] = s.k.prefix
	out[1] = nowMs
	out[2] = (s.cfg.FailedRetention + pendingMargin).Milliseconds()
	out[3] = s.cfg.SucceededRetention.Milliseconds()
	out[4] = s.cfg.FailedRetention.Milliseconds()
	out[5] = s.cfg.InboxTTL.Milliseconds()
	return out
}

// ---------------------------------------------------------------------------
// Renew, Complete, Release

type leaseItem struct {
	ref   store.Ref
	lease uint64
}

func leaseItems(leases map[store.Ref]uint64) []leaseItem {
	out := make([]leaseItem, 0, len(leases))
	for r, id := range leases {
		out = append(out, leaseItem{r, id})
	}
	return out
}

// leaseCalls builds the calls of a Renew or Release: one op key per item
// in KEYS, (unit, path, lease) per item in ARGV after head.
func (s *Store) leaseCalls(script *redis.Script, items []leaseItem, head func() []any) ([]call, [][]int) {
	var calls []call
	var idx [][]int
	per := maxKeysPerCall - numGlobals
	for start := 0; start < len(items); start += per {
		end := min(start+per, len(items))
		c := call{script: script, keys: s.k.withGlobals(end - start), args: head()}
		var ix []int
		for i := start; i < end; i++ {
			it := items[i]
			c.keys = append(c.keys, s.k.op(it.ref))
			c.args = append(c.args, it.ref.Unit, it.ref.Path, strconv.FormatUint(it.lease, 10))
			ix = append(ix, i)
		}
		calls = append(calls, c)
		idx = append(idx, ix)
	}
	return calls, idx
}

// Renew implements store.Store.
func (s *Store) Renew(ctx context.Context, worker string, leases map[store.Ref]uint64, lease time.Duration) ([]store.Ref, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if len(leases) == 0 {
		return nil, nil
	}
	items := leaseItems(leases)
	now := s.nowMs()
	calls, idx := s.leaseCalls(s.sc.renew, items, func() []any {
		return append(s.header(now, 2+3*len(items)), worker, lease.Milliseconds())
	})
	results, errs := s.runAll(ctx, calls)
	var lost []store.Ref
	for c := range calls {
		if errs[c] != nil {
			return nil, fmt.Errorf("redisstore: renew for %q: %w", worker, errs[c])
		}
		res, _ := results[c].([]any)
		for _, v := range res {
			j, _ := v.(int64)
			if j < 1 || int(j) > len(idx[c]) {
				return nil, fmt.Errorf("redisstore: renew for %q: unexpected reply %v", worker, res)
			}
			lost = append(lost, items[idx[c][j-1]].ref)
		}
	}
	return lost, nil
}

// Release implements store.Store.
func (s *Store) Release(ctx context.Context, worker string, leases map[store.Ref]uint64) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if len(leases) == 0 {
		return nil
	}
	items := leaseItems(leases)
	now := s.nowMs()
	calls, _ := s.leaseCalls(s.sc.release, items, func() []any {
		return append(s.header(now, 1+3*len(items)), worker)
	})
	_, errs := s.runAll(ctx, calls)
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("redisstore: release for %q: %w", worker, err)
		}
	}
	return nil
}

// retryDelays computes, in Go (Lua has no good random source), the backoff
// of each failing attempt that will be retried. It reads the attempts and
// options of the failing operations in one pipeline; a lease that changes
// meanwhile makes the completion stale, so the read is never acted on
// wrongly.
func (s *Store) retryDelays(ctx context.Context, refs []store.Ref, noRetry []bool) ([]int64, error) {
	delays := make([]int64, len(refs))
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(refs))
	queued := false
	for i, r := range refs {
		if noRetry[i] {
			continue
		}
		cmds[i] = pipe.HMGet(ctx, s.k.op(r), "t", "R", "B", "M")
		queued = true
	}
	if !queued {
		return delays, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		var rerr redis.Error
		if !errors.As(err, &rerr) { // a malformed record only makes its item stale
			return nil, err
		}
	}
	for i, cmd := range cmds {
		if cmd == nil || cmd.Err() != nil {
			continue
		}
		v := cmd.Val()
		num := func(j int) int64 {
			str, _ := v[j].(string)
			n, _ := strconv.ParseInt(str, 10, 64)
			return n
		}
		attempts := int(num(0))
		o := store.Options{Retries: int(num(1)), BackoffMs: num(2), BackoffMaxMs: num(3)}
		if attempts <= o.Retries {
			delays[i] = store.Backoff(o, attempts).Milliseconds()
		}
	}
	return delays, nil
}

var noDetails = store.ErrorInfo{Type: "blazing.errors.RemoteError", Message: "failed without error details"}

// Complete implements store.Store.
func (s *Store) Complete(ctx context.Context, worker string, comps []store.Completion) ([]store.CompleteOutcome, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	outs := make([]store.CompleteOutcome, len(comps))
	if len(comps) == 0 {
		return outs, nil
	}
	var failRefs []store.Ref
	var failNoRetry []bool
	var failIdx []int
	for i := range comps {
		if !comps[i].OK {
			failRefs = append(failRefs, comps[i].Ref)
			failNoRetry = append(failNoRetry, comps[i].NoRetry)
			failIdx = append(failIdx, i)
		}
	}
	delays := make([]int64, len(comps))
	if len(failRefs) > 0 {
		// A retry may be scheduled sooner than the due time a skipping
		// Reserve would wait for: make the next Reserve run its script.
		s.forgetEmpty()
		d, err := s.retryDelays(ctx, failRefs, failNoRetry)
		if err != nil {
			return nil, fmt.Errorf("redisstore: complete for %q: read retry options: %w", worker, err)
		}
		for j, i := range failIdx {
			delays[i] = d[j]
		}
	}

	now := s.nowMs()
	const perItem = 2
	per := (maxKeysPerCall - numGlobals) / perItem
	var calls []call
	var idx [][]int
	for start := 0; start < len(comps); start += per {
		end := min(start+per, len(comps))
		c := call{script: s.sc.complete, keys: s.k.withGlobals(perItem * (end - start)),
			args: append(s.header(now, 2+7*(end-start)), worker, end-start)}
		var ix []int
		for i := start; i < end; i++ {
			cp := &comps[i]
			c.keys = append(c.keys, s.k.op(cp.Ref), s.k.unit(cp.Ref.Unit))
			okFlag, payload := "1", cp.Result
			if !cp.OK {
				okFlag = "0"
				info := cp.Error
				if info == nil {
					info = &noDetails
				}
				var err error
				if payload, err = encodeError(info); err != nil {
					return nil, fmt.Errorf("redisstore: complete %s: %w", cp.Ref, err)
				}
			}
			noRetry := "0"
			if cp.NoRetry {
				noRetry = "1"
			}
			c.args = append(c.args, cp.Ref.Unit, cp.Ref.Path, strconv.FormatUint(cp.LeaseID, 10),
				okFlag, payload, noRetry, delays[i])
			ix = append(ix, i)
		}
		calls = append(calls, c)
		idx = append(idx, ix)
	}
	results, errs := s.runAll(ctx, calls)
	for c := range calls {
		if errs[c] != nil {
			return nil, fmt.Errorf("redisstore: complete for %q: %w", worker, errs[c])
		}
		res, _ := results[c].([]any)
		if len(res) != len(idx[c]) {
			return nil, fmt.Errorf("redisstore: complete for %q: unexpected reply %v", worker, res)
		}
		for j, i := range idx[c] {
			code, _ := res[j].(int64)
			outs[i] = store.CompleteOutcome(code)
		}
	}
	return outs, nil
}

// ---------------------------------------------------------------------------
// Cancel, Fail, Watch, Requeue

// Cancel implements store.Store.
func (s *Store) Cancel(ctx context.Context, unit, path, reason string) (int, error) {
	if s.closed.Load() {
		return 0, store.ErrClosed
	}
	if reason == "" {
		reason = "cancelled"
	}
	keys := append(s.k.withGlobals(1), s.k.unit(unit))
	args := append(s.header(s.nowMs(), 3), unit, path, reason)
	v, err := s.run(ctx, call{script: s.sc.cancel, keys: keys, args: args})
	if err != nil {
		return 0, fmt.Errorf("redisstore: cancel %s/%s: %w", unit, path, err)
	}
	n, _ := v.(int64)
	switch n {
	case -1:
		return 0, fmt.Errorf("cancel %s: %w", unit, store.ErrNotFound)
	case -2:
		return 0, fmt.Errorf("cancel %s/%s: %w", unit, path, store.ErrNotFound)
	}
	return int(n), nil
}

// Fail implements store.Store.
func (s *Store) Fail(ctx context.Context, ref store.Ref, leaseID uint64, info store.ErrorInfo) (store.CompleteOutcome, error) {
	if s.closed.Load() {
		return 0, store.ErrClosed
	}
	delays, err := s.retryDelays(ctx, []store.Ref{ref}, []bool{false})
	if err != nil {
		return 0, fmt.Errorf("redisstore: fail %s: read retry options: %w", ref, err)
	}
	enc, err := encodeError(&info)
	if err != nil {
		return 0, fmt.Errorf("redisstore: fail %s: %w", ref, err)
	}
	keys := append(s.k.withGlobals(2), s.k.op(ref), s.k.unit(ref.Unit))
	args := append(s.header(s.nowMs(), 5), ref.Unit, ref.Path, strconv.FormatUint(leaseID, 10), enc, delays[0])
	v, err := s.run(ctx, call{script: s.sc.fail, keys: keys, args: args})
	if err != nil {
		return 0, fmt.Errorf("redisstore: fail %s: %w", ref, err)
	}
	code, _ := v.(int64)
	return store.CompleteOutcome(code), nil
}

// Watch implements store.Store.
func (s *Store) Watch(ctx context.Context, ref store.Ref, inbox string) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	keys := append(s.k.withGlobals(1), s.k.op(ref))
	args := append(s.header(s.nowMs(), 3), ref.Unit, ref.Path, inbox)
	v, err := s.run(ctx, call{script: s.sc.watch, keys: keys, args: args})
	if err != nil {
		return fmt.Errorf("redisstore: watch %s: %w", ref, err)
	}
	switch n, _ := v.(int64); n {
	case -1:
		return fmt.Errorf("watch %s: %w", ref, store.ErrNotFound)
	case -3:
		return fmt.Errorf("redisstore: watch %s: %w", ref, ErrMalformed)
	}
	return nil
}

// Requeue implements store.Store.
func (s *Store) Requeue(ctx context.Context, unit string) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	root := store.Ref{Unit: unit, Path: store.RootPath}
	keys := append(s.k.withGlobals(2), s.k.unit(unit), s.k.op(root))
	args := append(s.header(s.nowMs(), 1), unit)
	v, err := s.run(ctx, call{script: s.sc.requeue, keys: keys, args: args})
	if err != nil {
		return fmt.Errorf("redisstore: requeue %s: %w", unit, err)
	}
	r, _ := v.([]any)
	code := int64(0)
	if len(r) > 0 {
		code, _ = r[0].(int64)
	}
	switch code {
	case 1:
		return nil
	case -1:
		return fmt.Errorf("requeue %s: %w", unit, store.ErrNotFound)
	case -2:
		st := int64(0)
		if len(r) > 1 {
			st, _ = r[1].(int64)
		}
		return fmt.Errorf("requeue %s: %w: the run is %s, not failed or cancelled", unit, store.ErrInvalid, store.Status(st))
	case -3:
		return fmt.Errorf("redisstore: requeue %s: %w", unit, ErrMalformed)
	}
	return fmt.Errorf("redisstore: requeue %s: unexpected reply %v", unit, v)
}

// Client is the Redis client, for reads beside the store's own (the fleet's
// registry and series: see core/fleet).
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Namespace is the store's namespace.
func (s *Store) Namespace() string { return s.cfg.Namespace }

// Close implements store.Store: blocked calls return ErrClosed, and the
// client is closed if Open created it.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.mu.Lock()
	wakes := make([]string, 0, len(s.waiters))
	for w := range s.waiters {
		wakes = append(wakes, w)
	}
	s.mu.Unlock()
	if len(wakes) > 0 {
		s.poke(wakes...)
	}
	if s.owned {
		if err := s.rdb.Close(); err != nil {
			return fmt.Errorf("redisstore: close client: %w", err)
		}
	}
	return nil
}
