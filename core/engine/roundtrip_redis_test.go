package engine_test

import (
	"context"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/blazingflow/blazing/core/engine"
	"github.com/blazingflow/blazing/core/store"
	"github.com/blazingflow/blazing/core/store/redisstore"
	"github.com/blazingflow/blazing/core/store/storetest"
)

// BenchmarkRoundTripRedis measures one submit-to-result round trip between
// two engines (a client and a worker, as in two processes) over a real
// redis-server, with no Python: the floor the Python layers add to.
//
//	go test ./core/engine -run '^$' -bench RoundTripRedis -benchtime 2000x
func BenchmarkRoundTripRedis(b *testing.B) {
	addr := os.Getenv("BLAZING_BENCH_REDIS") // an outside server, e.g. to watch it with MONITOR
	if addr == "" {
		addr = storetest.StartRedis(b)
	}
	ctx := context.Background()
	open := func() store.Store {
		s, err := redisstore.Open(ctx, "redis://"+addr+"/0", redisstore.Config{Namespace: "rt"})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	client, err := engine.New(ctx, engine.Config{Store: open(), OwnsStore: true, Inbox: "client"})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	var caps [store.NumLanes]int
	caps[store.LaneAsync] = 8
	worker, err := engine.New(ctx, engine.Config{Store: open(), OwnsStore: true, Inbox: "worker", Capacity: caps})
	if err != nil {
		b.Fatal(err)
	}
	defer worker.Close()
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { // the worker "runs" each delivery at once
		for wctx.Err() == nil {
			evs, err := worker.Wait(wctx, time.Second)
			if err != nil {
				return
			}
			var c engine.Commands
			for _, ev := range evs {
				if ev.Kind == engine.EventDeliver {
					c.Completes = append(c.Completes, engine.Completion{Completion: store.Completion{
						Ref: ev.Delivery.Ref, LeaseID: ev.Delivery.LeaseID, OK: true, Result: []byte{0xc0}},
						Attempt: ev.Delivery.Attempt})
				}
			}
			_ = worker.Enqueue(c)
		}
	}()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t := time.Now()
		ref := store.Ref{Unit: "u" + strconv.Itoa(i), Path: "0"}
		if err := client.Enqueue(engine.Commands{Submits: []engine.Submit{{Submission: store.Submission{
			Ref: ref, Name: "noop", Args: []byte{0x90}, Inbox: "client"}, Token: uint64(i + 1)}}}); err != nil {
			b.Fatal(err)
		}
		for got := false; !got; {
			evs, err := client.Wait(ctx, 10*time.Second)
			if err != nil || len(evs) == 0 {
				b.Fatalf("no result: %v", err)
			}
			for _, ev := range evs {
				got = got || (ev.Kind == engine.EventResult && ev.Token == uint64(i+1))
			}
		}
		lat = append(lat, time.Since(t))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}
