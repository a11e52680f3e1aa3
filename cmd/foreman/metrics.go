package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/blazingflow/blazing/core/engine"
	"github.com/blazingflow/blazing/core/store"
)

// Observed is the latest view the collector exports: the store's lanes,
// this machine's workers, and the optimizer's last decision.
type Observed struct {
	Lanes    [store.NumLanes]store.LaneStats
	Snapshot Snapshot
	Foremen  int
	Urgency  map[string]float64
}

// collector turns the latest Observed into Prometheus metrics on each scrape.
// Operation counters are summed over live workers plus what workers that have
// exited had reported, so they never go backwards.
type collector struct {
	// fresh, if set, asks the supervisor for its current state at scrape
	// time, so worker counts and restarts are never a beat behind.
	fresh     func() (Snapshot, bool)
	mu        sync.Mutex
	obs       Observed
	seq       uint64          // Seq of the latest snapshot applied
	gone      engine.Counters // of exited workers
	goneSteps map[string]store.Counts
	last      map[string]Beat // latest beat per live worker id
	decisions map[string]float64

	depth, age, workers, foremen, restarts, urgency, decided *prometheus.Desc
	started, succeeded, failed, retried, duration            *prometheus.Desc
	stepOps, stepDuration                                    *prometheus.Desc
}

func newCollector() *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("blazing_"+name, help, labels, nil)
	}
	return &collector{
		last:      map[string]Beat{},
		goneSteps: map[string]store.Counts{},
		decisions: map[string]float64{},
		depth:     d("queue_depth", "Operations waiting per lane (ready or delayed).", "lane"),
		age:       d("queue_oldest_age_seconds", "Age of the oldest ready operation per lane.", "lane"),
		workers:   d("workers", "Worker processes of this foreman by lane and state.", "lane", "state"),
		foremen:   d("foremen", "Foremen registered on this Redis namespace."),
		restarts:  d("worker_restarts_total", "Worker processes restarted by this foreman."),
		urgency:   d("optimizer_urgency", "The optimizer's latest urgency score per lane.", "lane"),
		decided:   d("optimizer_decisions_total", "Optimizer decisions by action.", "action"),
		started:   d("operations_started_total", "Operations started by this machine's workers."),
		succeeded: d("operations_succeeded_total", "Operations that succeeded."),
		failed:    d("operations_failed_total", "Operations that failed for good."),
		retried:   d("operations_retried_total", "Failed attempts that were retried."),
		duration:  d("operation_duration_seconds", "How long attempts ran."),
		stepOps: d("step_operations_total",
			"Attempts of each step or workflow that ended, by outcome (succeeded, failed, retried, cancelled).",
			"name", "outcome"),
		stepDuration: d("step_duration_seconds", "How long attempts of each step or workflow ran.", "name"),
	}
}

// update stores a new view; beats of workers that vanished are folded into
// the totals of exited workers. A snapshot older than the one already
// applied (the watcher's, taken before a scrape's fresh one) keeps the newer
// workers: applying it would fold the newer workers into the totals and then
// count the older ones again, twice.
func (c *collector) update(o Observed) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o.Snapshot.Seq != 0 && o.Snapshot.Seq < c.seq {
		o.Snapshot = c.obs.Snapshot
	}
	if o.Urgency == nil {
		o.Urgency = c.obs.Urgency // set by decision, not by the watcher's view
	}
	c.seq = max(c.seq, o.Snapshot.Seq)
	live := map[string]Beat{}
	for _, w := range o.Snapshot.Workers {
		live[w.ID] = w.Beat
	}
	for id, b := range c.last {
		if _, ok := live[id]; !ok {
			addBeat(&c.gone, b)
			addSteps(c.goneSteps, b)
		}
	}
	c.last = live
	c.obs = o
}

func (c *collector) decision(action string, urgency map[string]float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.decisions[action]++
	c.obs.Urgency = urgency
}

// urgencies is the optimizer's latest score per lane (empty before its
// first decision).
func (c *collector) urgencies() map[string]float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]float64, len(c.obs.Urgency))
	for k, v := range c.obs.Urgency {
		out[k] = v
	}
	return out
}

func addBeat(t *engine.Counters, b Beat) {
	t.Started += b.Started
	t.Succeeded += b.Succeeded
	t.Failed += b.Failed
	t.Retried += b.Retried
	t.SumSecs += b.DurSum
	if t.Buckets == nil {
		t.Buckets = make([]uint64, len(engine.DurationBuckets)+1)
	}
	for i := 0; i < len(b.DurBuckets) && i < len(t.Buckets); i++ {
		t.Buckets[i] += b.DurBuckets[i]
	}
}

// addSteps folds a beat's per-name counts into m (copying, never aliasing
// the beat's buckets).
func addSteps(m map[string]store.Counts, b Beat) {
	for name, s := range b.Steps {
		c := m[name]
		c.Buckets = append([]int64(nil), c.Buckets...)
		c.Add(s.counts())
		m[name] = c
	}
}

// stepBucketEvery picks every fourth of the store's √2 bucket bounds for
// the per-step histogram: a factor 4 apart (0.5 ms, 2 ms, 8 ms, ... 35
// min), so each Prometheus bucket is an exact sum of the workers' buckets
// and a series per name stays at 12 buckets.
const stepBucketEvery = 4

// stepHistogram turns per-name counts into a Prometheus histogram: the
// cumulative count at each kept bound, the count of every timed attempt,
// and the sum in seconds.
func stepHistogram(c store.Counts) (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = map[float64]uint64{}
	var cum int64
	for i, ub := range store.StatBucketsMs {
		if i < len(c.Buckets) {
			cum += c.Buckets[i]
		}
		if i%stepBucketEvery == 0 {
			buckets[ub/1000] = uint64(cum)
		}
	}
	if n := len(store.StatBucketsMs); n < len(c.Buckets) {
		cum += c.Buckets[n]
	}
	return uint64(cum), float64(c.SumMs) / 1000, buckets
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.depth, c.age, c.workers, c.foremen, c.restarts, c.urgency,
		c.decided, c.started, c.succeeded, c.failed, c.retried, c.duration, c.stepOps, c.stepDuration} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	if c.fresh != nil {
		if snap, ok := c.fresh(); ok {
			c.mu.Lock()
			o := c.obs
			o.Snapshot = snap
			c.mu.Unlock()
			c.update(o)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	for l, st := range c.obs.Lanes {
		lane := store.Lane(l).String()
		gauge(c.depth, float64(st.Depth), lane)
		gauge(c.age, st.OldestAge.Seconds(), lane)
	}
	states := map[[2]string]int{}
	for _, lane := range []string{laneAsync, laneBlocking} {
		for _, s := range []string{"starting", "serving", "draining"} {
			states[[2]string{lane, s}] = 0
		}
	}
	total := c.gone
	total.Buckets = append([]uint64(nil), c.gone.Buckets...)
	for _, w := range c.obs.Snapshot.Workers {
		states[[2]string{w.Lane, w.State}]++
	}
	steps := map[string]store.Counts{}
	for name, n := range c.goneSteps {
		n.Buckets = append([]int64(nil), n.Buckets...)
		steps[name] = n
	}
	for _, b := range c.last {
		addBeat(&total, b)
		addSteps(steps, b)
	}
	for name, n := range steps {
		for outcome, v := range map[string]int64{"succeeded": n.Succeeded, "failed": n.Failed,
			"retried": n.Retried, "cancelled": n.Cancelled} {
			counter(c.stepOps, float64(v), name, outcome)
		}
		count, sum, buckets := stepHistogram(n)
		ch <- prometheus.MustNewConstHistogram(c.stepDuration, count, sum, buckets, name)
	}
	for k, n := range states {
		gauge(c.workers, float64(n), k[0], k[1])
	}
	gauge(c.foremen, float64(c.obs.Foremen))
	counter(c.restarts, float64(c.obs.Snapshot.Restarts))
	for lane, u := range c.obs.Urgency {
		gauge(c.urgency, u, lane)
	}
	for action, n := range c.decisions {
		counter(c.decided, n, action)
	}
	counter(c.started, float64(total.Started))
	counter(c.succeeded, float64(total.Succeeded))
	counter(c.failed, float64(total.Failed))
	counter(c.retried, float64(total.Retried))
	buckets := map[float64]uint64{}
	var cum, count uint64
	for i, ub := range engine.DurationBuckets {
		if i < len(total.Buckets) {
			cum += total.Buckets[i]
		}
		buckets[ub] = cum
	}
	count = cum
	if n := len(engine.DurationBuckets); n < len(total.Buckets) {
		count += total.Buckets[n]
	}
	ch <- prometheus.MustNewConstHistogram(c.duration, count, total.SumSecs, buckets)
}

// serveMetrics serves /metrics until the returned stop is called. It returns
// once listening, or with the error that kept it from listening.
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String())
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}
	return stop, nil
}
