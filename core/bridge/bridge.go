// Package bridge runs the commands that arrive over the c-shared boundary
// against an engine and writes the replies. It holds no cgo, so everything
// the Python side can send is testable (and fuzzable) with go test.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/blazingflow/blazing/core/engine"
	"github.com/blazingflow/blazing/core/fleet"
	"github.com/blazingflow/blazing/core/frames"
	"github.com/blazingflow/blazing/core/store"
	"github.com/blazingflow/blazing/core/store/memstore"
	"github.com/blazingflow/blazing/core/store/redisstore"
)

// Config is the frame given to Open (a msgpack map).
type Config struct {
	// Store selects the driver: "memory" (the default) or "redis".
	Store string `msgpack:"store"`
	// URL and Namespace locate the Redis store.
	URL              string `msgpack:"url"`
	Namespace        string `msgpack:"namespace"`
	ConnectTimeoutMs int64  `msgpack:"connect_timeout_ms"`
	// TLSCAFile, TLSCertFile and TLSKeyFile fill in the TLS options a
	// rediss URL leaves unset (see redisstore.TLS).
	TLSCAFile   string `msgpack:"tls_ca_file"`
	TLSCertFile string `msgpack:"tls_cert_file"`
	TLSKeyFile  string `msgpack:"tls_key_file"`
	// FailedRetentionS keeps failed runs (Redis); RetentionS succeeded ones.
	FailedRetentionS int64  `msgpack:"failed_retention_s"`
	Inbox            string `msgpack:"inbox"`
	LeaseMs          int64  `msgpack:"lease_ms"`
	HeartbeatMs      int64  `msgpack:"heartbeat_ms"`
	ReclaimMs        int64  `msgpack:"reclaim_ms"`
	Async            int    `msgpack:"async"`
	Blocking         int    `msgpack:"blocking"`
	RetentionS       int64  `msgpack:"retention_s"`
	// AutoOptimize runs the embedded optimizer every OptimizationIntervalMs
	// over AsyncWorkers workers of AsyncConcurrency slots and
	// BlockingWorkers threads (memory store only; off when absent).
	AutoOptimize           bool  `msgpack:"auto_optimize"`
	OptimizationIntervalMs int64 `msgpack:"optimization_interval_ms"`
	AsyncWorkers           int   `msgpack:"async_workers"`
	BlockingWorkers        int   `msgpack:"blocking_workers"`
	AsyncConcurrency       int   `msgpack:"async_concurrency"`
	// MaxLapses: lease lapses in a row without progress before an
	// operation fails with WorkerLost (0: the store's default).
	MaxLapses int `msgpack:"max_lapses"`
	// MaxRuns bounds the finished runs the store keeps (0: its default).
	MaxRuns int `msgpack:"max_runs"`
	// JanitorMs and OutageTimeoutMs: see engine.Config (0: defaults).
	JanitorMs       int64 `msgpack:"janitor_ms"`
	OutageTimeoutMs int64 `msgpack:"outage_timeout_ms"`
	// NoHistory turns off the index of runs and the per-minute counts
	// (history on is the default).
	NoHistory bool `msgpack:"no_history"`
	// MaxBreadcrumbs bounds the code's breadcrumbs kept per run (0: the
	// store's default).
	MaxBreadcrumbs int `msgpack:"max_breadcrumbs"`
}

// Session is one open engine as seen from the other side of the boundary.
type Session struct {
	eng     *engine.Engine
	writers sync.Pool
	// private: the store is in this process, so commands run on the calling
	// thread; otherwise they are handed to the engine's command loop.
	private bool
	unroute func() // ends the routing of go-redis's log lines to this engine
}

// ErrConfig wraps configuration errors.
var ErrConfig = errors.New("bad configuration")

// Open decodes a Config frame and starts an engine on the chosen store.
func Open(ctx context.Context, frame []byte) (*Session, error) {
	var cfg Config
	if len(frame) == 0 {
		return nil, fmt.Errorf("%w: empty config frame", ErrConfig)
	}
	if err := msgpack.Unmarshal(frame, &cfg); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if cfg.Inbox == "" {
		return nil, fmt.Errorf("%w: inbox is required", ErrConfig)
	}
	if cfg.Async < 0 || cfg.Blocking < 0 || cfg.LeaseMs < 0 || cfg.HeartbeatMs < 0 || cfg.ReclaimMs < 0 || cfg.RetentionS < 0 ||
		cfg.MaxLapses < 0 || cfg.MaxRuns < 0 || cfg.MaxBreadcrumbs < 0 || cfg.JanitorMs < 0 || cfg.OutageTimeoutMs < 0 {
		return nil, fmt.Errorf("%w: negative setting in %+v", ErrConfig, cfg)
	}
	var st store.Store
	private := false
	switch cfg.Store {
	case "", "memory":
		st = memstore.New(memstore.Config{Retention: time.Duration(cfg.RetentionS) * time.Second,
			MaxLapses: cfg.MaxLapses, MaxRuns: cfg.MaxRuns, MaxBreadcrumbs: cfg.MaxBreadcrumbs,
			NoHistory: cfg.NoHistory})
		private = true // the memory store belongs to this engine alone
	case "redis":
		if cfg.URL == "" {
			return nil, fmt.Errorf("%w: the redis store needs a url", ErrConfig)
		}
		timeout := time.Duration(cfg.ConnectTimeoutMs) * time.Millisecond
		if timeout <= 0 {
			timeout = 5 * time.Second
		}
		octx, cancel := context.WithTimeout(ctx, timeout)
		rs, err := redisstore.Open(octx, cfg.URL, redisstore.Config{
			Namespace:          cfg.Namespace,
			SucceededRetention: time.Duration(cfg.RetentionS) * time.Second,
			FailedRetention:    time.Duration(cfg.FailedRetentionS) * time.Second,
			MaxLapses:          cfg.MaxLapses,
			MaxRuns:            cfg.MaxRuns,
			NoHistory:          cfg.NoHistory,
			MaxBreadcrumbs:     cfg.MaxBreadcrumbs,
			RepairGap:          time.Duration(cfg.JanitorMs) * time.Millisecond * 9 / 10,
			TLS:                redisstore.TLS{CAFile: cfg.TLSCAFile, CertFile: cfg.TLSCertFile, KeyFile: cfg.TLSKeyFile},
		})
		cancel()
		if err != nil {
			return nil, err
		}
		st = rs
	default:
		return nil, fmt.Errorf("%w: unknown store %q (known: memory, redis)", ErrConfig, cfg.Store)
	}
	var opt engine.Optimize
	if cfg.AutoOptimize && private {
		if cfg.OptimizationIntervalMs <= 0 {
			_ = st.Close()
			return nil, fmt.Errorf("%w: auto_optimize needs a positive optimization_interval_ms", ErrConfig)
		}
		opt = engine.Optimize{
			Interval:         time.Duration(cfg.OptimizationIntervalMs) * time.Millisecond,
			AsyncWorkers:     cfg.AsyncWorkers,
			BlockingWorkers:  cfg.BlockingWorkers,
			AsyncConcurrency: cfg.AsyncConcurrency,
		}
	}
	eng, err := engine.New(ctx, engine.Config{
		Store:         st,
		Inbox:         cfg.Inbox,
		Lease:         time.Duration(cfg.LeaseMs) * time.Millisecond,
		Heartbeat:     time.Duration(cfg.HeartbeatMs) * time.Millisecond,
		ReclaimEvery:  time.Duration(cfg.ReclaimMs) * time.Millisecond,
		Capacity:      [store.NumLanes]int{cfg.Async, cfg.Blocking},
		OwnsStore:     true,
		Private:       private,
		Optimize:      opt,
		JanitorEvery:  time.Duration(cfg.JanitorMs) * time.Millisecond,
		NoStats:       cfg.NoHistory,
		OutageTimeout: time.Duration(cfg.OutageTimeoutMs) * time.Millisecond,
	})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	s := &Session{eng: eng, private: private, unroute: func() {}}
	if !private {
		s.unroute = redisstore.RouteLogs(eng.Logger()) // go-redis's own lines reach the host's logging
	}
	return s, nil
}

func (s *Session) writer() *frames.Writer {
	if w, ok := s.writers.Get().(*frames.Writer); ok {
		w.Reset()
		return w
	}
	return frames.NewWriter()
}

// finish copies the frame out of a pooled writer.
func (s *Session) finish(w *frames.Writer, b []byte) []byte {
	out := append([]byte(nil), b...)
	s.writers.Put(w)
	return out
}

// Batch runs a command batch and replies with per-command errors and every
// event ready now. Capacity changes run first, then completions (which free
// slots), submissions, watches and cancellations.
func (s *Session) Batch(ctx context.Context, frame []byte) ([]byte, error) {
	b, err := frames.DecodeBatch(frame)
	if err != nil {
		return nil, err
	}
	s.eng.BeginSync()
	defer s.eng.EndSync()
	var cerrs []frames.CommandError
	fail := func(idx int, err error) {
		cerrs = append(cerrs, frames.CommandError{Index: idx, Code: frames.Code(err), Message: err.Error()})
	}
	for i, c := range b.Capacities {
		if err := s.eng.AddCapacity(c.Lane, c.Delta); err != nil {
			fail(b.CapacityIdx[i], err)
		}
	}
	if !s.private {
		// Across the network: never make the caller's event loop wait on a
		// round trip. Refusals come back as failed results.
		if err := s.eng.Enqueue(commands(b)); err != nil {
			return nil, err
		}
		w := s.writer()
		return s.finish(w, w.Reply(cerrs, s.eng.Drain())), nil
	}
	if b.Pause != nil {
		s.eng.SetPaused(*b.Pause)
	}
	// What an attempt logged comes before what its completion records.
	s.eng.AddBreadcrumbs(ctx, b.Breadcrumbs)
	if _, err := s.eng.Complete(ctx, b.Completes); err != nil {
		return nil, err
	}
	for i, err := range s.eng.Submit(ctx, b.Submits) {
		if err != nil {
			fail(b.SubmitIdx[i], err)
		}
	}
	for i, w := range b.Watches {
		if err := s.eng.Watch(ctx, w.Ref, w.Token); err != nil {
			fail(b.WatchIdx[i], err)
		}
	}
	for i, c := range b.Cancels {
		if _, err := s.eng.Cancel(ctx, c.Unit, c.Path, c.Reason); err != nil {
			fail(b.CancelIdx[i], err)
		}
	}
	// Pumping here only saves a wait for the background loops; if the store
	// is unreachable they retry, so the batch itself has succeeded.
	if err := s.eng.Pump(ctx); errors.Is(err, engine.ErrClosed) || errors.Is(err, store.ErrClosed) {
		return nil, err
	}
	w := s.writer()
	return s.finish(w, w.Reply(cerrs, s.eng.Drain())), nil
}

// commands converts a decoded batch for the engine's command loop.
func commands(b *frames.Batch) engine.Commands {
	c := engine.Commands{Pause: b.Pause, Completes: b.Completes, Submits: b.Submits, Breadcrumbs: b.Breadcrumbs}
	for _, w := range b.Watches {
		c.Watches = append(c.Watches, engine.WatchCmd{Ref: w.Ref, Token: w.Token})
	}
	for _, k := range b.Cancels {
		c.Cancels = append(c.Cancels, engine.CancelCmd{Unit: k.Unit, Path: k.Path, Reason: k.Reason})
	}
	return c
}

// Wait blocks up to timeout for events. It replies like Batch, with no
// errors. It returns engine.ErrClosed when the session is closed.
func (s *Session) Wait(ctx context.Context, timeout time.Duration) ([]byte, error) {
	evs, err := s.eng.Wait(ctx, timeout)
	if err != nil {
		return nil, err
	}
	w := s.writer()
	return s.finish(w, w.Reply(nil, evs)), nil
}

// Get reads one operation; frame is [unit, path].
func (s *Session) Get(ctx context.Context, frame []byte) ([]byte, error) {
	ref, err := frames.DecodeRef(frame)
	if err != nil {
		return nil, err
	}
	op, err := s.eng.Store().Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	w := s.writer()
	return s.finish(w, w.Operation(op)), nil
}

// Query answers an operator's query (see frames.DecodeQuery).
func (s *Session) Query(ctx context.Context, frame []byte) ([]byte, error) {
	q, err := frames.DecodeQuery(frame)
	if err != nil {
		return nil, err
	}
	st := s.eng.Store()
	w := s.writer()
	switch q.Kind {
	case frames.QueryFailed:
		ops, err := st.Failed(ctx, q.Offset, q.Limit)
		if err != nil {
			return nil, fmt.Errorf("list failed runs: %w", err)
		}
		return s.finish(w, w.Operations(ops)), nil
	case frames.QueryCounters:
		return s.finish(w, w.Counters(s.eng.Counters())), nil
	case frames.QueryDecisions:
		if fl, ok := st.(fleetStore); ok {
			ds, err := fleet.Decisions(ctx, fl.Client(), fl.Namespace(), decisionsRead)
			if err != nil {
				return nil, err
			}
			return s.finish(w, w.Value(ds)), nil
		}
		return s.finish(w, w.Decisions(s.eng.Decisions())), nil
	case frames.QueryRuns:
		ops, err := st.Runs(ctx, store.RunQuery{Since: q.Since, Until: q.Until, Status: q.Status, Name: q.Name, Limit: q.Limit})
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		return s.finish(w, w.Operations(ops)), nil
	case frames.QueryUnit:
		ops, err := st.Unit(ctx, q.Unit)
		if err != nil {
			return nil, err
		}
		return s.finish(w, w.Operations(ops)), nil
	case frames.QueryTimeline:
		ops, err := st.Unit(ctx, q.Unit)
		if err != nil {
			return nil, err
		}
		crumbs, dropped, err := st.Breadcrumbs(ctx, q.Unit)
		if err != nil {
			return nil, err
		}
		return s.finish(w, w.Timeline(store.Timeline(ops, crumbs), dropped)), nil
	case frames.QueryStats:
		// This process's own counts not yet written go first.
		if err := s.eng.FlushStats(ctx); err != nil {
			return nil, fmt.Errorf("read stats: %w", err)
		}
		counts, err := st.ReadStats(ctx, q.Since, time.Now())
		if err != nil {
			return nil, fmt.Errorf("read stats: %w", err)
		}
		return s.finish(w, w.StatsTable(counts)), nil
	case frames.QueryFleet:
		fl, ok := st.(fleetStore)
		if !ok {
			return s.finish(w, w.Value(map[string]any{"foremen": []fleet.Foreman{}})), nil
		}
		fs, err := fleet.Foremen(ctx, fl.Client(), fl.Namespace(), 0)
		if err != nil {
			return nil, err
		}
		return s.finish(w, w.Value(map[string]any{"foremen": fs})), nil
	case frames.QuerySeries:
		fl, ok := st.(fleetStore)
		if !ok {
			return s.finish(w, w.Value([]fleet.Sample{})), nil
		}
		samples, err := fleet.Series(ctx, fl.Client(), fl.Namespace(), q.Since, q.Coarse)
		if err != nil {
			return nil, err
		}
		return s.finish(w, w.Value(samples)), nil
	case frames.QueryScheduleRegister, frames.QueryScheduleFire, frames.QuerySchedules, frames.QuerySchedulePause:
		return s.scheduleQuery(ctx, q, w)
	default: // frames.QueryRequeue; DecodeQuery refuses other kinds
		if err := st.Requeue(ctx, q.Unit); err != nil {
			return nil, err
		}
		if err := s.eng.Pump(ctx); err != nil {
			return nil, err
		}
		return s.finish(w, w.Nil()), nil
	}
}

// decisionsRead is how many of the foremen's latest decisions a query reads.
const decisionsRead = 256

// fleetStore is a store shared by the processes of many machines, whose
// foremen record themselves beside it (Redis).
type fleetStore interface {
	Client() redis.UniversalClient
	Namespace() string
}

// Stats reads the lanes and this process's slots.
func (s *Session) Stats(ctx context.Context) ([]byte, error) {
	st, err := s.eng.Store().Stats(ctx)
	if err != nil {
		return nil, err
	}
	var capacity, inflight [store.NumLanes]int
	for l := range capacity {
		capacity[l], inflight[l] = s.eng.Capacity(store.Lane(l))
	}
	w := s.writer()
	return s.finish(w, w.Stats(st, capacity, inflight)), nil
}

// Remote reports whether the session's store is across the network (Redis).
func (s *Session) Remote() bool { return !s.private }

// SetNotify has the engine write to the eventfd fd when events are queued
// (-1: stop); see engine.SetNotify.
func (s *Session) SetNotify(fd int) error { return s.eng.SetNotify(fd) }

// Close stops the engine.
func (s *Session) Close() error {
	s.unroute()
	return s.eng.Close()
}
