package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// registry records this foreman and its workers in Redis, so that foremen
// sharing a namespace see each other and dashboards see every worker. Every
// record expires a few beats after its writer stops.
//
//	{ns}:foremen                ZSET   foreman id -> last beat (ms)
//	{ns}:foreman:<id>           HASH   host, pid, started, target mix, workers
//	{ns}:workers:<foreman id>   HASH   worker id -> "lane pid state running succeeded failed current"
type registry struct {
	rdb   redis.UniversalClient
	ns    string
	id    string
	ttl   time.Duration
	start time.Time
}

func newRegistry(rdb redis.UniversalClient, ns string, ttl time.Duration) *registry {
	host, _ := os.Hostname()
	return &registry{rdb: rdb, ns: ns, id: fmt.Sprintf("%s-%d", host, os.Getpid()), ttl: ttl, start: time.Now()}
}

func (r *registry) key(parts ...string) string {
	k := "{" + r.ns + "}"
	for _, p := range parts {
		k += ":" + p
	}
	return k
}

// beat writes this foreman and its workers, and returns how many foremen
// are alive on the namespace (itself included).
func (r *registry) beat(ctx context.Context, snap Snapshot) (int, error) {
	now := time.Now()
	host, _ := os.Hostname()
	workers := map[string]any{}
	for _, w := range snap.Workers {
		workers[w.ID] = fmt.Sprintf("%s %d %s %d %d %d %s", w.Lane, w.Pid, w.State, w.Beat.Running,
			w.Beat.Succeeded, w.Beat.Failed, w.Beat.Current)
	}
	fk, wk, all := r.key("foreman", r.id), r.key("workers", r.id), r.key("foremen")
	pipe := r.rdb.TxPipeline()
	pipe.HSet(ctx, fk, map[string]any{
		"host": host, "pid": os.Getpid(), "started": r.start.UnixMilli(), "beat": now.UnixMilli(),
		"target_async": snap.Target.Async, "target_blocking": snap.Target.Blocking,
		"workers": len(snap.Workers), "restarts": snap.Restarts,
	})
	pipe.PExpire(ctx, fk, r.ttl)
	pipe.Del(ctx, wk)
	if len(workers) > 0 {
		pipe.HSet(ctx, wk, workers)
		pipe.PExpire(ctx, wk, r.ttl)
	}
	pipe.ZAdd(ctx, all, redis.Z{Score: float64(now.UnixMilli()), Member: r.id})
	pipe.ZRemRangeByScore(ctx, all, "-inf", strconv.FormatInt(now.Add(-r.ttl).UnixMilli(), 10))
	pipe.PExpire(ctx, all, 24*time.Hour)
	alive := pipe.ZCard(ctx, all)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("register foreman %s: %w", r.id, err)
	}
	return int(alive.Val()), nil
}

// leave removes this foreman's records (a clean exit).
func (r *registry) leave(ctx context.Context) {
	pipe := r.rdb.TxPipeline()
	pipe.Del(ctx, r.key("foreman", r.id), r.key("workers", r.id))
	pipe.ZRem(ctx, r.key("foremen"), r.id)
	_, _ = pipe.Exec(ctx)
}
