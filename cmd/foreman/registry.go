package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// registry records this foreman and its workers in Redis, so that foremen
// sharing a namespace see each other and dashboards see every worker. Every
// record expires a few beats after its writer stops.
//
//	{ns}:foremen                ZSET   foreman id -> last beat (ms)
//	{ns}:foreman:<id>           HASH   host, pid, started, target mix, workers
//	{ns}:workers:<foreman id>   HASH   worker id -> "lane pid state running succeeded failed inbox current"
//
// A foreman's workers die with it (Pdeathsig). When a foreman stops beating
// (its machine died), the first peer to notice takes back what its workers
// held: their inboxes are in its workers record, which outlives the beat
// entry for that reason.
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
// are alive on the namespace (itself included) and the inboxes of the
// workers of foremen that stopped beating (each reported to one caller).
func (r *registry) beat(ctx context.Context, snap Snapshot) (int, []string, error) {
	now := time.Now()
	host, _ := os.Hostname()
	workers := map[string]any{}
	for _, w := range snap.Workers {
		workers[w.ID] = fmt.Sprintf("%s %d %s %d %d %d %s %s", w.Lane, w.Pid, w.State, w.Beat.Running,
			w.Beat.Succeeded, w.Beat.Failed, w.Inbox, w.Beat.Current)
	}
	orphans, err := r.vanished(ctx, now)
	if err != nil {
		return 0, nil, err
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
		pipe.PExpire(ctx, wk, workersTTL*r.ttl)
	}
	pipe.ZAdd(ctx, all, redis.Z{Score: float64(now.UnixMilli()), Member: r.id})
	pipe.ZRemRangeByScore(ctx, all, "-inf", strconv.FormatInt(now.Add(-r.ttl).UnixMilli(), 10))
	pipe.PExpire(ctx, all, 24*time.Hour)
	alive := pipe.ZCard(ctx, all)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, nil, fmt.Errorf("register foreman %s: %w", r.id, err)
	}
	return int(alive.Val()), orphans, nil
}

// workersTTL: a workers record outlives its foreman's beat entry this many
// times over, so a peer can still read it when the entry goes stale.
const workersTTL = 5

// vanished finds foremen whose beat entry went stale and claims each (one
// peer wins the ZREM); it returns their workers' inboxes and drops their
// records.
func (r *registry) vanished(ctx context.Context, now time.Time) ([]string, error) {
	all := r.key("foremen")
	stale, err := r.rdb.ZRangeByScore(ctx, all, &redis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(now.Add(-r.ttl).UnixMilli(), 10)}).Result()
	if err != nil {
		return nil, fmt.Errorf("read foremen: %w", err)
	}
	var inboxes []string
	for _, id := range stale {
		if id == r.id {
			continue
		}
		won, err := r.rdb.ZRem(ctx, all, id).Result()
		if err != nil {
			return nil, fmt.Errorf("claim vanished foreman %s: %w", id, err)
		}
		if won == 0 {
			continue // another peer took it
		}
		ws, err := r.rdb.HGetAll(ctx, r.key("workers", id)).Result()
		if err != nil {
			return nil, fmt.Errorf("read workers of vanished foreman %s: %w", id, err)
		}
		for _, v := range ws {
			if f := strings.Fields(v); len(f) >= 7 {
				inboxes = append(inboxes, f[6])
			}
		}
		r.rdb.Del(ctx, r.key("workers", id), r.key("foreman", id))
	}
	return inboxes, nil
}

// leave removes this foreman's records (a clean exit).
func (r *registry) leave(ctx context.Context) {
	pipe := r.rdb.TxPipeline()
	pipe.Del(ctx, r.key("foreman", r.id), r.key("workers", r.id))
	pipe.ZRem(ctx, r.key("foremen"), r.id)
	_, _ = pipe.Exec(ctx)
}
