package redisstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/blazingflow/blazing/core/store"
)

// What the store keeps for history and inspection, off the hot path:
// breadcrumbs per run, the index of runs by creation time (written by the
// submit script), every operation of a run, and per-minute counts by step
// name and lane merged across processes.

const (
	// statsKeep is how long a minute of counts is kept.
	statsKeep = 25 * time.Hour
	// runsPage is how many index entries one round of Runs reads.
	runsPage = 200
)

// rootFields are the fields Runs reads of each root: everything but the
// arguments and the result, which can be large.
var rootFields = []string{"n", "l", "s", "t", "k", "c", "b", "f", "e", "p", "h"}

// AddBreadcrumbs implements store.Store: one script call for the batch.
func (s *Store) AddBreadcrumbs(ctx context.Context, crumbs []store.Breadcrumb) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if len(crumbs) == 0 {
		return nil
	}
	byUnit := map[string][]store.Breadcrumb{}
	var order []string
	for _, b := range crumbs {
		if _, ok := byUnit[b.Ref.Unit]; !ok {
			order = append(order, b.Ref.Unit)
		}
		byUnit[b.Ref.Unit] = append(byUnit[b.Ref.Unit], b)
	}
	keys := make([]string, 0, 3*len(order))
	args := []any{s.cfg.MaxBreadcrumbs, (s.cfg.FailedRetention + pendingMargin).Milliseconds()}
	for _, u := range order {
		keys = append(keys, s.k.unit(u), s.k.crumbs(u), s.k.dropped(u))
		args = append(args, len(byUnit[u]))
		for _, b := range byUnit[u] {
			enc, err := msgpack.Marshal([]any{b.At.UnixMilli(), b.Ref.Path, b.Kind, b.Message, b.Data})
			if err != nil {
				return fmt.Errorf("redisstore: breadcrumb of %s: %w", b.Ref, err)
			}
			args = append(args, enc)
		}
	}
	if _, err := s.run(ctx, call{script: s.sc.addCrumbs, keys: keys, args: args}); err != nil {
		return fmt.Errorf("redisstore: add %d breadcrumbs: %w", len(crumbs), err)
	}
	return nil
}

// Breadcrumbs implements store.Store.
func (s *Store) Breadcrumbs(ctx context.Context, unit string) ([]store.Breadcrumb, int, error) {
	if s.closed.Load() {
		return nil, 0, store.ErrClosed
	}
	pipe := s.rdb.Pipeline()
	exists := pipe.Exists(ctx, s.k.unit(unit))
	list := pipe.LRange(ctx, s.k.crumbs(unit), 0, -1)
	dropped := pipe.Get(ctx, s.k.dropped(unit))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, fmt.Errorf("redisstore: breadcrumbs of %s: %w", unit, err)
	}
	if exists.Val() == 0 && len(list.Val()) == 0 {
		return nil, 0, fmt.Errorf("breadcrumbs of %s: %w", unit, store.ErrNotFound)
	}
	out := make([]store.Breadcrumb, 0, len(list.Val()))
	for _, raw := range list.Val() {
		b, err := decodeCrumb(unit, raw)
		if err != nil {
			continue // written by hand: not ours to read
		}
		out = append(out, b)
	}
	n, _ := strconv.Atoi(dropped.Val())
	return out, n, nil
}

// decodeCrumb reads a breadcrumb: {at ms, path, kind, message[, data]}.
func decodeCrumb(unit, raw string) (store.Breadcrumb, error) {
	dec := msgpack.NewDecoder(bytes.NewReader([]byte(raw)))
	n, err := dec.DecodeArrayLen()
	if err != nil || n < 4 {
		return store.Breadcrumb{}, fmt.Errorf("%w: breadcrumb", ErrMalformed)
	}
	at, err := dec.DecodeInt64()
	if err != nil {
		return store.Breadcrumb{}, fmt.Errorf("%w: breadcrumb time: %w", ErrMalformed, err)
	}
	b := store.Breadcrumb{Ref: store.Ref{Unit: unit}, At: time.UnixMilli(at).UTC()}
	for _, dst := range []*string{&b.Ref.Path, &b.Kind, &b.Message} {
		if *dst, err = dec.DecodeString(); err != nil {
			return store.Breadcrumb{}, fmt.Errorf("%w: breadcrumb: %w", ErrMalformed, err)
		}
	}
	if n > 4 {
		if b.Data, err = dec.DecodeBytes(); err != nil {
			return store.Breadcrumb{}, fmt.Errorf("%w: breadcrumb data: %w", ErrMalformed, err)
		}
	}
	return b, nil
}

// Runs implements store.Store: newest first from the index (a stream
// whose ids are creation times), a page at a time, each root read in one
// pipeline; runs whose records are gone are skipped.
func (s *Store) Runs(ctx context.Context, q store.RunQuery) ([]store.Operation, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if q.Limit <= 0 {
		q.Limit = 100
	}
	newest, oldest := "+", "-"
	if !q.Until.IsZero() {
		newest = strconv.FormatInt(q.Until.UnixMilli(), 10)
	}
	if !q.Since.IsZero() {
		oldest = strconv.FormatInt(q.Since.UnixMilli(), 10)
	}
	var out []store.Operation
	for len(out) < q.Limit {
		msgs, err := s.rdb.XRevRangeN(ctx, s.k.runs, newest, oldest, runsPage).Result()
		if err != nil {
			return nil, fmt.Errorf("redisstore: runs: %w", err)
		}
		if len(msgs) == 0 {
			return out, nil
		}
		units := make([]string, len(msgs))
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.SliceCmd, len(msgs))
		for i, m := range msgs {
			units[i], _ = m.Values["u"].(string)
			cmds[i] = pipe.HMGet(ctx, s.k.op(store.Ref{Unit: units[i], Path: store.RootPath}), rootFields...)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("redisstore: runs: %w", err)
		}
		for i, cmd := range cmds {
			op, ok := rootOf(units[i], cmd.Val())
			if !ok || (q.Status != 0 && op.Status != q.Status) || (q.Name != "" && op.Name != q.Name) {
				continue
			}
			out = append(out, op)
			if len(out) == q.Limit {
				break
			}
		}
		if len(msgs) < runsPage {
			return out, nil
		}
		newest = "(" + msgs[len(msgs)-1].ID // the next page starts past this one
	}
	return out, nil
}

// rootOf parses the rootFields of a run's root; false if they are gone.
func rootOf(unit string, vals []any) (store.Operation, bool) {
	m := make(map[string]string, len(rootFields))
	for i, v := range vals {
		if str, ok := v.(string); ok {
			m[rootFields[i]] = str
		}
	}
	if len(m) == 0 {
		return store.Operation{}, false
	}
	op, err := parseOp(store.Ref{Unit: unit, Path: store.RootPath}, m)
	return op, err == nil
}

// Unit implements store.Store.
func (s *Store) Unit(ctx context.Context, unit string) ([]store.Operation, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	idx, err := s.rdb.HGetAll(ctx, s.k.unit(unit)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: unit %s: %w", unit, err)
	}
	if len(idx) == 0 {
		return nil, fmt.Errorf("unit %s: %w", unit, store.ErrNotFound)
	}
	paths := make([]string, 0, len(idx))
	for p := range idx {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool { return store.PathLess(paths[i], paths[j]) })
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(paths))
	for i, p := range paths {
		cmds[i] = pipe.HGetAll(ctx, s.k.op(store.Ref{Unit: unit, Path: p}))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redisstore: unit %s: %w", unit, err)
	}
	out := make([]store.Operation, 0, len(paths))
	for i, cmd := range cmds {
		if len(cmd.Val()) == 0 {
			continue // expired between the two reads
		}
		op, err := parseOp(store.Ref{Unit: unit, Path: paths[i]}, cmd.Val())
		if err != nil {
			continue // damaged by hand: shown without it
		}
		out = append(out, op)
	}
	return out, nil
}

// AddStats implements store.Store: one pipeline of HINCRBYs on the
// minute's hash.
func (s *Store) AddStats(ctx context.Context, d store.StatsDelta) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if len(d.Counts) == 0 {
		return nil
	}
	key := s.k.minute(d.Minute.Truncate(time.Minute).UnixMilli())
	pipe := s.rdb.Pipeline()
	for name, c := range d.Counts {
		for _, f := range countFields(c) {
			pipe.HIncrBy(ctx, key, name+"|"+f.name, f.n)
		}
	}
	pipe.PExpire(ctx, key, statsKeep)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redisstore: add stats: %w", classify(err))
	}
	return nil
}

type countField struct {
	name string
	n    int64
}

// countFields are the non-zero fields of c: ok, fail, retry, cancel, ms,
// and b<i> per histogram bucket.
func countFields(c store.Counts) []countField {
	var out []countField
	for _, f := range []countField{{"ok", c.Succeeded}, {"fail", c.Failed}, {"retry", c.Retried},
		{"cancel", c.Cancelled}, {"ms", c.SumMs}} {
		if f.n != 0 {
			out = append(out, f)
		}
	}
	for i, n := range c.Buckets {
		if n != 0 {
			out = append(out, countField{"b" + strconv.Itoa(i), n})
		}
	}
	return out
}

// ReadStats implements store.Store: the minutes from since to now, read in
// one pipeline and summed.
func (s *Store) ReadStats(ctx context.Context, since, now time.Time) (map[string]store.Counts, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	from := since.Truncate(time.Minute)
	if now.Sub(from) > statsKeep {
		from = now.Add(-statsKeep).Truncate(time.Minute)
	}
	pipe := s.rdb.Pipeline()
	var cmds []*redis.MapStringStringCmd
	for m := from; !m.After(now); m = m.Add(time.Minute) {
		cmds = append(cmds, pipe.HGetAll(ctx, s.k.minute(m.UnixMilli())))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redisstore: read stats: %w", err)
	}
	out := map[string]store.Counts{}
	for _, cmd := range cmds {
		for field, v := range cmd.Val() {
			name, what, ok := strings.Cut(field, "|")
			n, err := strconv.ParseInt(v, 10, 64)
			if !ok || err != nil {
				continue
			}
			c := out[name]
			addField(&c, what, n)
			out[name] = c
		}
	}
	return out, nil
}

// addField adds one stored field's value to c.
func addField(c *store.Counts, what string, n int64) {
	switch what {
	case "ok":
		c.Succeeded += n
	case "fail":
		c.Failed += n
	case "retry":
		c.Retried += n
	case "cancel":
		c.Cancelled += n
	case "ms":
		c.SumMs += n
	default:
		if i, err := strconv.Atoi(strings.TrimPrefix(what, "b")); err == nil && i >= 0 && i <= len(store.StatBucketsMs) {
			if c.Buckets == nil {
				c.Buckets = make([]int64, len(store.StatBucketsMs)+1)
			}
			c.Buckets[i] += n
		}
	}
}
