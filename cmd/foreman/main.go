// Command foreman supervises the worker processes of one machine: it starts
// them, restarts them, replaces those that stop heartbeating, drains them on
// SIGTERM, registers itself and them in Redis, serves Prometheus metrics, and
// every optimization interval asks the optimizer for a new async/blocking mix.
//
// Start it with `python -m blazing.foreman` (same flags), which passes its
// own interpreter for the workers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/blazingflow/blazing/core/optimizer"
	"github.com/blazingflow/blazing/core/store/redisstore"
)

// Exit codes.
const (
	exitOK        = 0
	exitFailure   = 1
	exitUsage     = 2
	exitCrashLoop = 4
	exitRedis     = 5
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

// checkMachineBound refuses a total of workers this machine cannot carry:
// at most four per CPU, and no more than ¾ of the memory at
// optimizer.DefaultPerWorkerBytes each (see optimizer.BoundTotal).
func checkMachineBound(cfg *Config) error {
	var si syscall.Sysinfo_t
	var mem uint64
	if syscall.Sysinfo(&si) == nil {
		mem = uint64(si.Totalram) * uint64(si.Unit)
	}
	total := cfg.AsyncWorkers + cfg.BlockingWorkers
	cpus := runtime.NumCPU()
	if bound := optimizer.BoundTotal(cpus, mem, optimizer.DefaultPerWorkerBytes, total); total > bound {
		return fmt.Errorf("%w: --async-workers + --blocking-workers = %d, more than this machine can run (%d: at most 4 per CPU on %d CPUs, and 3/4 of %d MiB at %d MiB per worker)",
			errUsage, total, bound, cpus, mem>>20, optimizer.DefaultPerWorkerBytes>>20)
	}
	return nil
}

func run(args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "foreman: %v\n", err)
		return exitUsage
	}
	if err := checkMachineBound(&cfg); err != nil {
		fmt.Fprintf(stderr, "foreman: %v\n", err)
		return exitUsage
	}
	log := newLogger(cfg.LogFormat, stderr).With("foreman", os.Getpid())
	// fail says why the foreman stops: a line for a human, or with
	// --log-format json an error record like every other line.
	fail := func(format string, args ...any) {
		if cfg.LogFormat == "json" {
			log.Error("foreman: " + fmt.Sprintf(format, args...))
			return
		}
		fmt.Fprintf(stderr, "foreman: "+format+"\n", args...)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	defer redisstore.RouteLogs(log)() // go-redis's own lines, in the foreman's format
	shown := redisstore.Redact(cfg.RedisURL)
	rdb, err := redisstore.Client(cfg.RedisURL, cfg.TLS)
	if err != nil {
		fail("%v", err)
		return exitUsage
	}
	defer rdb.Close()
	octx, cancel := context.WithTimeout(ctx, redisstore.OpenTimeout)
	st, err := redisstore.New(octx, redisstore.Config{Client: rdb, Namespace: cfg.Namespace})
	cancel()
	if err != nil {
		fail("Redis at %s: %v", shown, err)
		return exitRedis
	}
	defer st.Close()

	snaps := make(chan chan Snapshot)
	col := newCollector()
	col.fresh = func() (Snapshot, bool) {
		reply := make(chan Snapshot, 1)
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case snaps <- reply:
		case <-t.C:
			return Snapshot{}, false
		}
		select {
		case s := <-reply:
			return s, true
		case <-t.C:
			return Snapshot{}, false
		}
	}
	prom := prometheus.NewRegistry()
	prom.MustRegister(col, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.MetricsAddr != "" {
		stopMetrics, err := serveMetrics(cfg.MetricsAddr, prom, log)
		if err != nil {
			fail("%v", err)
			return exitUsage
		}
		defer stopMetrics()
	}

	rec := &reclaimer{st: st, log: log}
	defer rec.wait() // before the store closes (deferred earlier, so later)
	reg := newRegistry(rdb, cfg.Namespace, 3*beatEvery)
	sup := NewSupervisor(&cfg, log)
	sup.workerOutput = func(id, line string) { fmt.Fprintf(stderr, "worker %s: %s\n", id, line) }
	if cfg.LogFormat == "json" {
		// One JSON object per line throughout, the workers' output included.
		sup.workerOutput = func(id, line string) { log.Info("worker output", "worker", id, "line", line) }
	}
	sup.inboxPrefix = reg.id + "-"
	sup.reclaim = rec.worker
	targets := make(chan Mix)
	supDone := make(chan error, 1)
	supCtx, supCancel := context.WithCancel(context.Background())
	defer supCancel()
	go func() { supDone <- sup.Run(supCtx, targets, snaps) }()
	log.Info("foreman started", "redis", shown, "namespace", cfg.Namespace, "app", cfg.App,
		"async", cfg.AsyncWorkers, "blocking", cfg.BlockingWorkers, "auto_optimize", cfg.AutoOptimize)

	tn, err := newTuner(&cfg, rdb, reg.id)
	if err != nil {
		fail("%v", err)
		supCancel()
		<-supDone
		return exitUsage
	}
	host, _ := os.Hostname()
	w := &watcher{cfg: &cfg, log: log, st: st, reg: reg, reclaim: rec.worker,
		sampler: &sampler{rdb: rdb, ns: cfg.Namespace, id: reg.id, host: host},
		col:     col, snaps: snaps, targets: targets, supDone: supDone, tuner: tn}
	err = w.loop(ctx)
	if !errors.Is(err, errCrashLoop) {
		supCancel() // drain the workers
		err = errors.Join(err, <-supDone)
	}
	lctx, lcancel := context.WithTimeout(context.Background(), 2*time.Second)
	w.reg.leave(lctx)
	lcancel()
	switch {
	case errors.Is(err, errCrashLoop):
		fail("%v", err)
		return exitCrashLoop
	case err != nil:
		fail("%v", err)
		return exitFailure
	}
	log.Info("foreman stopped")
	return exitOK
}

// newLogger writes the foreman's records to w as key=value text, or as one
// JSON object per line for log shippers.
func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}
