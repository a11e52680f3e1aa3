// Package fleet reads (and, for the foreman, writes) what the foremen of a
// namespace record in Redis about themselves: the registry of foremen and
// their workers, the time series of samples they take, and the optimizer's
// decisions. The foreman writes; btop, the charts and the CLI read through
// the same functions, so the formats live in one place.
//
//	{ns}:foremen                ZSET   foreman id -> last beat (ms)
//	{ns}:foreman:<id>           HASH   host, pid, started, beat, target mix, workers, restarts
//	{ns}:workers:<foreman id>   HASH   worker id -> "lane pid state running succeeded failed inbox current"
//	{ns}:series                 STREAM one sample per foreman per beat, field j = JSON, an hour kept
//	{ns}:series:1m              STREAM one sample per foreman per minute (averaged), a day kept
//	{ns}:decisions              STREAM the optimizer's decisions (optimizer.Decision.Fields)
package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// How long the series keep their samples.
const (
	SeriesKeep       = time.Hour
	CoarseSeriesKeep = 24 * time.Hour
)

// Key names a key of namespace ns.
func Key(ns string, parts ...string) string {
	return "{" + ns + "}:" + strings.Join(parts, ":")
}

// Worker is one worker process as its foreman last recorded it.
type Worker struct {
	ID        string `json:"id" msgpack:"id"`
	Lane      string `json:"lane" msgpack:"lane"`
	Pid       int    `json:"pid" msgpack:"pid"`
	State     string `json:"state" msgpack:"state"`
	Running   int    `json:"running" msgpack:"running"`
	Succeeded uint64 `json:"succeeded" msgpack:"succeeded"`
	Failed    uint64 `json:"failed" msgpack:"failed"`
	Inbox     string `json:"inbox" msgpack:"inbox"`
	Current   string `json:"current" msgpack:"current"` // "unit/path" it runs now, if any
}

// Foreman is one foreman as recorded: its machine, its mix and its workers.
type Foreman struct {
	ID             string    `json:"id" msgpack:"id"`
	Host           string    `json:"host" msgpack:"host"`
	Pid            int       `json:"pid" msgpack:"pid"`
	Started        time.Time `json:"started" msgpack:"started"`
	Beat           time.Time `json:"beat" msgpack:"beat"`
	TargetAsync    int       `json:"target_async" msgpack:"target_async"`
	TargetBlocking int       `json:"target_blocking" msgpack:"target_blocking"`
	Restarts       int64     `json:"restarts" msgpack:"restarts"`
	Workers        []Worker  `json:"workers" msgpack:"workers"`
}

// FormatWorker is the registry's record of a worker.
func FormatWorker(w Worker) string {
	inbox := w.Inbox
	if inbox == "" {
		inbox = "-"
	}
	return fmt.Sprintf("%s %d %s %d %d %d %s %s", w.Lane, w.Pid, w.State, w.Running, w.Succeeded, w.Failed,
		inbox, w.Current)
}

// ParseWorker reads a registry record; false if it is not one.
func ParseWorker(id, v string) (Worker, bool) {
	f := strings.Fields(v)
	if len(f) < 7 {
		return Worker{}, false
	}
	w := Worker{ID: id, Lane: f[0], State: f[2], Inbox: f[6]}
	var err error
	if w.Pid, err = strconv.Atoi(f[1]); err != nil {
		return Worker{}, false
	}
	if w.Running, err = strconv.Atoi(f[3]); err != nil {
		return Worker{}, false
	}
	if w.Succeeded, err = strconv.ParseUint(f[4], 10, 64); err != nil {
		return Worker{}, false
	}
	if w.Failed, err = strconv.ParseUint(f[5], 10, 64); err != nil {
		return Worker{}, false
	}
	if w.Inbox == "-" {
		w.Inbox = ""
	}
	if len(f) > 7 {
		w.Current = f[7]
	}
	return w, true
}

// Foremen reads every foreman whose beat is no older than stale (0: any
// still listed), with its workers, sorted by id.
func Foremen(ctx context.Context, rdb redis.UniversalClient, ns string, stale time.Duration) ([]Foreman, error) {
	min := "-inf"
	if stale > 0 {
		min = strconv.FormatInt(time.Now().Add(-stale).UnixMilli(), 10)
	}
	ids, err := rdb.ZRangeByScore(ctx, Key(ns, "foremen"), &redis.ZRangeBy{Min: min, Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("fleet: read foremen: %w", err)
	}
	pipe := rdb.Pipeline()
	heads := make([]*redis.MapStringStringCmd, len(ids))
	lists := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		heads[i] = pipe.HGetAll(ctx, Key(ns, "foreman", id))
		lists[i] = pipe.HGetAll(ctx, Key(ns, "workers", id))
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("fleet: read foremen: %w", err)
	}
	out := make([]Foreman, 0, len(ids))
	for i, id := range ids {
		h := heads[i].Val()
		if len(h) == 0 {
			continue // expired between the reads
		}
		f := Foreman{ID: id, Host: h["host"]}
		f.Pid, _ = strconv.Atoi(h["pid"])
		f.Started = msTime(h["started"])
		f.Beat = msTime(h["beat"])
		f.TargetAsync, _ = strconv.Atoi(h["target_async"])
		f.TargetBlocking, _ = strconv.Atoi(h["target_blocking"])
		f.Restarts, _ = strconv.ParseInt(h["restarts"], 10, 64)
		for wid, v := range lists[i].Val() {
			if w, ok := ParseWorker(wid, v); ok {
				f.Workers = append(f.Workers, w)
			}
		}
		sort.Slice(f.Workers, func(a, b int) bool { return f.Workers[a].ID < f.Workers[b].ID })
		out = append(out, f)
	}
	return out, nil
}

func msTime(v string) time.Time {
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// LaneSample is one lane at one moment.
type LaneSample struct {
	Depth    int     `json:"depth" msgpack:"depth"`
	OldestS  float64 `json:"oldest_s" msgpack:"oldest_s"`
	Running  int     `json:"running" msgpack:"running"`
	DonePerS float64 `json:"done_per_s" msgpack:"done_per_s"`     // attempts finished per second on this machine
	FailPerS float64 `json:"failed_per_s" msgpack:"failed_per_s"` // of which failed
	Workers  int     `json:"workers" msgpack:"workers"`           // this machine's workers of the lane
	Serving  int     `json:"serving" msgpack:"serving"`           // of which serving
	Starting int     `json:"starting" msgpack:"starting"`
	Draining int     `json:"draining" msgpack:"draining"`
	Urgency  float64 `json:"urgency" msgpack:"urgency"` // the optimizer's last score, 0 if none
}

// Sample is what one foreman saw at one moment: the lanes (shared by all
// machines) and its own workers.
type Sample struct {
	At       time.Time  `json:"at" msgpack:"at"`
	Foreman  string     `json:"foreman" msgpack:"foreman"`
	Host     string     `json:"host" msgpack:"host"`
	Async    LaneSample `json:"async" msgpack:"async"`
	Blocking LaneSample `json:"blocking" msgpack:"blocking"`
	Restarts int64      `json:"restarts" msgpack:"restarts"`
}

// WriteSample appends a sample to the fine series (coarse false, an hour
// kept) or the coarse one (a day kept).
func WriteSample(ctx context.Context, rdb redis.UniversalClient, ns string, s Sample, coarse bool) error {
	key, keep := Key(ns, "series"), SeriesKeep
	if coarse {
		key, keep = Key(ns, "series", "1m"), CoarseSeriesKeep
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("fleet: encode sample: %w", err)
	}
	minID := strconv.FormatInt(s.At.Add(-keep).UnixMilli(), 10)
	pipe := rdb.Pipeline()
	pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, MinID: minID, Approx: true, Values: []any{"j", b}})
	pipe.PExpire(ctx, key, keep+time.Hour)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("fleet: write sample: %w", err)
	}
	return nil
}

// Series reads the samples taken since, oldest first, from the fine series
// or the coarse one.
func Series(ctx context.Context, rdb redis.UniversalClient, ns string, since time.Time, coarse bool) ([]Sample, error) {
	key := Key(ns, "series")
	if coarse {
		key = Key(ns, "series", "1m")
	}
	start := "-"
	if !since.IsZero() {
		start = strconv.FormatInt(since.UnixMilli(), 10)
	}
	msgs, err := rdb.XRange(ctx, key, start, "+").Result()
	if err != nil {
		return nil, fmt.Errorf("fleet: read series: %w", err)
	}
	out := make([]Sample, 0, len(msgs))
	for _, m := range msgs {
		raw, _ := m.Values["j"].(string)
		var s Sample
		if json.Unmarshal([]byte(raw), &s) == nil {
			out = append(out, s)
		}
	}
	return out, nil
}

// Decisions reads the optimizer's latest decisions (at most limit), oldest
// first, each as the fields it was recorded with.
func Decisions(ctx context.Context, rdb redis.UniversalClient, ns string, limit int) ([]map[string]string, error) {
	msgs, err := rdb.XRevRangeN(ctx, Key(ns, "decisions"), "+", "-", int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("fleet: read decisions: %w", err)
	}
	out := make([]map[string]string, len(msgs))
	for i, m := range msgs {
		fields := make(map[string]string, len(m.Values))
		for k, v := range m.Values {
			fields[k], _ = v.(string)
		}
		out[len(msgs)-1-i] = fields
	}
	return out, nil
}
