package main

import (
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/engine"
	"github.com/blazingflow/blazing/core/store"
)

// scrape gathers c and returns each sample as "name{k=v,...}" -> value;
// a histogram gives name_count, name_sum and name_bucket{le=...}.
func scrape(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	fams, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			key := f.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				out[key+"_count"] = float64(h.GetSampleCount())
				out[key+"_sum"] = h.GetSampleSum()
				for _, b := range h.GetBucket() {
					out[key+"_bucket{le="+strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)+"}"] = float64(b.GetCumulativeCount())
				}
			default:
				t.Fatalf("unexpected metric type %s for %s", f.GetType(), key)
			}
		}
	}
	return out
}

// buckets builds a beat's per-bucket counts (one per upper bound, then the
// overflow bucket) from (bucket index, count) pairs.
func buckets(pairs ...int) []uint64 {
	b := make([]uint64, len(engine.DurationBuckets)+1)
	for i := 0; i < len(pairs); i += 2 {
		b[pairs[i]] = uint64(pairs[i+1])
	}
	return b
}

func observed() Observed {
	var lanes [store.NumLanes]store.LaneStats
	lanes[store.LaneAsync] = store.LaneStats{Depth: 5, OldestAge: 2500 * time.Millisecond}
	lanes[store.LaneBlocking] = store.LaneStats{Depth: 1}
	return Observed{Lanes: lanes, Foremen: 2, Snapshot: Snapshot{
		Target: Mix{Async: 2, Blocking: 1}, Restarts: 3,
		Workers: []WorkerInfo{
			{ID: "async-1", Lane: laneAsync, State: "serving", Beat: Beat{State: "serving", Started: 10, Succeeded: 7,
				Failed: 1, Retried: 2, DurSum: 4.5, DurBuckets: buckets(0, 3, 4, 2, 9, 1)}},
			{ID: "async-2", Lane: laneAsync, State: "starting"},
			{ID: "blocking-3", Lane: laneBlocking, State: "draining", Beat: Beat{Started: 4, Succeeded: 4,
				DurSum: 0.5, DurBuckets: buckets(1, 4)}},
		},
	}}
}

// Each metric carries the value of the Observed it was given.
func TestCollectorValues(t *testing.T) {
	c := newCollector()
	c.update(observed())
	c.decision("hold", map[string]float64{laneAsync: 0.5, laneBlocking: 0.25})
	c.decision("hold", map[string]float64{laneAsync: 0.5, laneBlocking: 0.25})
	c.decision("move_to_async", map[string]float64{laneAsync: 0.9, laneBlocking: 0})
	m := scrape(t, c)
	want := map[string]float64{
		"blazing_queue_depth{lane=async}":                 5,
		"blazing_queue_depth{lane=blocking}":              1,
		"blazing_queue_oldest_age_seconds{lane=async}":    2.5,
		"blazing_queue_oldest_age_seconds{lane=blocking}": 0,
		"blazing_workers{lane=async,state=serving}":       1,
		"blazing_workers{lane=async,state=starting}":      1,
		"blazing_workers{lane=async,state=draining}":      0,
		"blazing_workers{lane=blocking,state=serving}":    0,
		"blazing_workers{lane=blocking,state=starting}":   0,
		"blazing_workers{lane=blocking,state=draining}":   1,
		"blazing_foremen":                                         2,
		"blazing_worker_restarts_total":                           3,
		"blazing_optimizer_urgency{lane=async}":                   0.9,
		"blazing_optimizer_urgency{lane=blocking}":                0,
		"blazing_optimizer_decisions_total{action=hold}":          2,
		"blazing_optimizer_decisions_total{action=move_to_async}": 1,
		"blazing_operations_started_total":                        14,
		"blazing_operations_succeeded_total":                      11,
		"blazing_operations_failed_total":                         1,
		"blazing_operations_retried_total":                        2,
		"blazing_operation_duration_seconds_count":                10, // 3 + 2 + 1 (overflow) + 4
		"blazing_operation_duration_seconds_sum":                  5,
		"blazing_operation_duration_seconds_bucket{le=0.001}":     3,
		"blazing_operation_duration_seconds_bucket{le=0.005}":     7,
		"blazing_operation_duration_seconds_bucket{le=0.025}":     7,
		"blazing_operation_duration_seconds_bucket{le=0.1}":       7,
		"blazing_operation_duration_seconds_bucket{le=0.5}":       9,
		"blazing_operation_duration_seconds_bucket{le=2.5}":       9,
		"blazing_operation_duration_seconds_bucket{le=10}":        9,
		"blazing_operation_duration_seconds_bucket{le=60}":        9,
		"blazing_operation_duration_seconds_bucket{le=300}":       9,
	}
	require.Equal(t, want, m)
}

// Counters and the duration histogram never go backwards when a worker is
// replaced by a new one that starts counting from zero: what the gone one
// last reported stays in the totals, and is counted once.
func TestCollectorMonotonicAcrossRestarts(t *testing.T) {
	c := newCollector()
	o := observed()
	c.update(o)
	before := scrape(t, c)

	// async-1 exits; async-4 replaces it and has done one operation.
	o.Snapshot.Workers[0] = WorkerInfo{ID: "async-4", Lane: laneAsync, State: "serving",
		Beat: Beat{Started: 1, Succeeded: 1, DurSum: 0.25, DurBuckets: buckets(2, 1)}}
	o.Snapshot.Restarts = 4
	c.update(o)
	after := scrape(t, c)
	for k, v := range before {
		if strings.HasPrefix(k, "blazing_operation") || strings.HasSuffix(k, "_total") {
			require.GreaterOrEqual(t, after[k], v, k)
		}
	}
	require.Equal(t, 15.0, after["blazing_operations_started_total"])
	require.Equal(t, 12.0, after["blazing_operations_succeeded_total"])
	require.Equal(t, 11.0, after["blazing_operation_duration_seconds_count"])
	require.Equal(t, 5.25, after["blazing_operation_duration_seconds_sum"])
	require.Equal(t, 8.0, after["blazing_operation_duration_seconds_bucket{le=0.025}"])
	require.Equal(t, 4.0, after["blazing_worker_restarts_total"])

	// The same view again changes nothing; the new worker's progress adds up.
	c.update(o)
	require.Equal(t, after, scrape(t, c))
	o.Snapshot.Workers[0].Beat.Started, o.Snapshot.Workers[0].Beat.Succeeded = 3, 3
	c.update(o)
	require.Equal(t, 17.0, scrape(t, c)["blazing_operations_started_total"])

	// Every worker gone: the totals stay.
	c.update(Observed{})
	m := scrape(t, c)
	require.Equal(t, 17.0, m["blazing_operations_started_total"])
	require.Equal(t, 14.0, m["blazing_operations_succeeded_total"])
	require.Equal(t, 0.0, m["blazing_workers{lane=async,state=serving}"])
}

// At scrape time the collector asks the supervisor for its current workers
// (fresh); the store's view stays that of the last update. If the
// supervisor does not answer, the last update is used.
func TestCollectorFreshSnapshot(t *testing.T) {
	c := newCollector()
	c.update(observed())
	c.fresh = func() (Snapshot, bool) {
		return Snapshot{Restarts: 9, Workers: []WorkerInfo{{ID: "blocking-9", Lane: laneBlocking, State: "serving",
			Beat: Beat{Started: 100}}}}, true
	}
	m := scrape(t, c)
	require.Equal(t, 9.0, m["blazing_worker_restarts_total"])
	require.Equal(t, 1.0, m["blazing_workers{lane=blocking,state=serving}"])
	require.Equal(t, 0.0, m["blazing_workers{lane=async,state=serving}"])
	require.Equal(t, 5.0, m["blazing_queue_depth{lane=async}"])
	require.Equal(t, 114.0, m["blazing_operations_started_total"], "the gone workers' 14 and the new one's 100")

	c = newCollector()
	c.update(observed())
	c.fresh = func() (Snapshot, bool) { return Snapshot{}, false }
	m = scrape(t, c)
	require.Equal(t, 3.0, m["blazing_worker_restarts_total"])
	require.Equal(t, 1.0, m["blazing_workers{lane=async,state=starting}"])
	require.Equal(t, 14.0, m["blazing_operations_started_total"])
}

// serveMetrics serves the registry on /metrics until stopped, and names a
// listen failure.
func TestServeMetrics(t *testing.T) {
	log, buf := testLogger()
	c := newCollector()
	c.update(observed())
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	stop, err := serveMetrics("127.0.0.1:0", reg, log)
	require.NoError(t, err)
	addr := regexp.MustCompile(`msg="serving metrics" addr=(\S+)`).FindStringSubmatch(buf.String())
	require.NotNil(t, addr, buf.String())
	client := &http.Client{Timeout: bound}
	resp, err := client.Get("http://" + addr[1] + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), `blazing_queue_depth{lane="async"} 5`)
	require.Contains(t, string(body), `blazing_operation_duration_seconds_bucket{le="+Inf"} 10`)
	stop()
	_, err = client.Get("http://" + addr[1] + "/metrics")
	require.Error(t, err, "stopped")

	_, err = serveMetrics("127.0.0.1:99999", reg, log)
	require.ErrorContains(t, err, "metrics: listen on 127.0.0.1:99999")
}

// A scrape's fresh snapshot can be newer than the one the watcher took
// before its Redis round trips and applies after them. Applying the older
// one must not fold the newer workers into the totals and count the older
// ones again.
func TestCollectorIgnoresAnOlderSnapshot(t *testing.T) {
	c := newCollector()
	first := observed() // the watcher's previous round
	first.Snapshot.Seq = 1
	c.update(first)
	stale := observed() // the watcher's, taken before async-1 was replaced
	stale.Snapshot.Seq = 2
	fresh := observed().Snapshot
	fresh.Workers[0] = WorkerInfo{ID: "async-4", Lane: laneAsync, State: "serving", Beat: Beat{Started: 1}}
	fresh.Restarts, fresh.Seq = 4, 3
	c.fresh = func() (Snapshot, bool) { return fresh, true }
	scrape(t, c)    // async-1's 10 folded into the totals
	c.update(stale) // lanes and foremen from it, workers not
	fresh.Seq = 4
	m := scrape(t, c)
	require.Equal(t, 15.0, m["blazing_operations_started_total"], "async-1 10 + blocking-3 4 + async-4 1")
	require.Equal(t, 4.0, m["blazing_worker_restarts_total"])
	require.Equal(t, 5.0, m["blazing_queue_depth{lane=async}"])
	require.Equal(t, 2.0, m["blazing_foremen"])
}

// Snapshots are numbered in the order the supervisor takes them.
func TestSnapshotsAreNumbered(t *testing.T) {
	h := startSup(t, supConfig(), "exec sleep 1000")
	h.waitSpawn(laneAsync)
	a, b := h.snapshot(), h.snapshot()
	require.Less(t, a.Seq, b.Seq)
	require.NotZero(t, a.Seq)
}

// The optimizer's urgency stays exported after the watcher's next update
// (which carries none: decision sets it).
func TestCollectorKeepsUrgencyAcrossUpdates(t *testing.T) {
	c := newCollector()
	c.decision("hold", map[string]float64{laneAsync: 0.75, laneBlocking: 0.5})
	c.update(observed())
	m := scrape(t, c)
	require.Equal(t, 0.75, m["blazing_optimizer_urgency{lane=async}"])
	require.Equal(t, 0.5, m["blazing_optimizer_urgency{lane=blocking}"])
}

// stepBuckets builds per-name bucket counts over store.StatBucketsMs (then
// the overflow bucket) from (bucket index, count) pairs.
func stepBuckets(pairs ...int) []int64 {
	b := make([]int64, len(store.StatBucketsMs)+1)
	for i := 0; i < len(pairs); i += 2 {
		b[pairs[i]] = int64(pairs[i+1])
	}
	return b
}

// Per step name: attempts by outcome and a duration histogram, summed over
// the workers, kept when a worker is replaced, one series per name.
func TestCollectorPerStep(t *testing.T) {
	c := newCollector()
	o := observed()
	// async-1 ran charge 5 times (3 ok, 1 failed, 1 retried; 1 ms ×3, 3 ms,
	// 10 s) and checkout twice; blocking-3 ran charge once more (4 ms).
	o.Snapshot.Workers[0].Beat.Steps = map[string]StepBeat{
		"charge":   {OK: 3, Failed: 1, Retried: 1, SumMs: 10006, Buckets: stepBuckets(2, 3, 6, 1, 28, 1)},
		"checkout": {OK: 2, Cancelled: 1, SumMs: 40, Buckets: stepBuckets(12, 2)},
	}
	o.Snapshot.Workers[2].Beat.Steps = map[string]StepBeat{
		"charge": {OK: 1, SumMs: 4, Buckets: stepBuckets(6, 1)},
	}
	c.update(o)
	m := scrape(t, c)
	require.Equal(t, 4.0, m["blazing_step_operations_total{name=charge,outcome=succeeded}"])
	require.Equal(t, 1.0, m["blazing_step_operations_total{name=charge,outcome=failed}"])
	require.Equal(t, 1.0, m["blazing_step_operations_total{name=charge,outcome=retried}"])
	require.Equal(t, 0.0, m["blazing_step_operations_total{name=charge,outcome=cancelled}"])
	require.Equal(t, 1.0, m["blazing_step_operations_total{name=checkout,outcome=cancelled}"])
	require.Equal(t, 6.0, m["blazing_step_duration_seconds{name=charge}_count"])
	require.Equal(t, 10.01, m["blazing_step_duration_seconds{name=charge}_sum"])
	// Bounds 0.5 ms × 4^k: bucket 2 (1 ms) is under 2 ms, bucket 6 (4 ms)
	// under 8 ms, bucket 28 (8.2 s) under 8.192 s.
	require.Equal(t, 0.0, m["blazing_step_duration_seconds{name=charge}_bucket{le=0.0005}"])
	require.Equal(t, 3.0, m["blazing_step_duration_seconds{name=charge}_bucket{le=0.002}"])
	require.Equal(t, 5.0, m["blazing_step_duration_seconds{name=charge}_bucket{le=0.008}"])
	require.Equal(t, 5.0, m["blazing_step_duration_seconds{name=charge}_bucket{le=2.048}"])
	require.Equal(t, 6.0, m["blazing_step_duration_seconds{name=charge}_bucket{le=8.192}"])
	require.Equal(t, 2.0, m["blazing_step_duration_seconds{name=checkout}_bucket{le=0.032}"])
	var bounds int
	for k := range m {
		if strings.HasPrefix(k, "blazing_step_duration_seconds{name=charge}_bucket") {
			bounds++
		}
	}
	require.Equal(t, 12, bounds, "every fourth √2 bound")

	// async-1 is replaced by a worker that ran charge once: nothing goes back.
	o.Snapshot.Workers[0] = WorkerInfo{ID: "async-4", Lane: laneAsync, State: "serving",
		Beat: Beat{Steps: map[string]StepBeat{"charge": {OK: 1, SumMs: 1, Buckets: stepBuckets(2, 1)}}}}
	c.update(o)
	c.update(o) // the same view twice counts once
	m = scrape(t, c)
	require.Equal(t, 5.0, m["blazing_step_operations_total{name=charge,outcome=succeeded}"])
	require.Equal(t, 7.0, m["blazing_step_duration_seconds{name=charge}_count"])
	require.Equal(t, 2.0, m["blazing_step_operations_total{name=checkout,outcome=succeeded}"])
}
