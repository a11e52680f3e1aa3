package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/blazingflow/blazing/core/optimizer"
	"github.com/blazingflow/blazing/core/store"
)

func optimizerLane(l string) optimizer.Lane {
	if l == laneBlocking {
		return optimizer.Blocking
	}
	return optimizer.Async
}

// beatEvery is how often the foreman reads the queues, refreshes its
// registration and its metrics.
const beatEvery = 2 * time.Second

// watcher is the foreman's main loop: it observes the store and the
// supervisor, keeps the registration and metrics fresh, and feeds the
// optimizer.
type watcher struct {
	cfg     *Config
	log     *slog.Logger
	st      store.Store
	reg     *registry
	col     *collector
	snaps   chan chan Snapshot
	targets chan Mix
	supDone chan error
	tuner   *tuner
	nextOpt time.Time
	// reclaim takes back the leases of a gone worker (see reclaimer).
	reclaim func(inbox string)
	// sampler writes the beat's sample to the time series (nil: none).
	sampler *sampler

	redisDown time.Time // since when Redis has been failing, zero if fine
}

// loop runs until ctx ends (nil) or the supervisor stops on its own (its
// error, e.g. a crash loop).
func (w *watcher) loop(ctx context.Context) error {
	tick := time.NewTicker(min(beatEvery, w.cfg.OptimizationInterval))
	defer tick.Stop()
	for {
		if err := w.observe(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-w.supDone:
			w.supDone <- err // main waits on it too
			return err
		case <-tick.C:
		}
	}
}

// observe takes one look at everything and publishes it.
func (w *watcher) observe(ctx context.Context) error {
	reply := make(chan Snapshot, 1)
	select {
	case w.snaps <- reply:
	case err := <-w.supDone:
		w.supDone <- err
		return err
	case <-ctx.Done():
		return nil
	}
	snap := <-reply
	obs := Observed{Snapshot: snap}
	rctx, cancel := context.WithTimeout(ctx, beatEvery)
	defer cancel()
	lanes, err := w.st.Stats(rctx)
	if err == nil {
		obs.Lanes = lanes
		var orphans []string
		obs.Foremen, orphans, err = w.reg.beat(rctx, snap)
		for _, inbox := range orphans {
			w.reclaim(inbox)
		}
		if err == nil && w.sampler != nil {
			err = w.sampler.sample(rctx, time.Now(), lanes, snap, w.col.urgencies())
		}
	}
	if now := time.Now(); err == nil && w.tuner != nil && !now.Before(w.nextOpt) {
		w.nextOpt = now.Add(w.cfg.OptimizationInterval)
		d, mix, apply, terr := w.tuner.tick(rctx, now, lanes, snap)
		err = terr
		urgency := map[string]float64{}
		for _, l := range []string{laneAsync, laneBlocking} {
			urgency[l] = d.Lane(optimizerLane(l)).Urgency
		}
		w.col.decision(string(d.Action), urgency)
		if apply {
			w.log.Info("optimizer moves workers", "from", d.Before.String(), "to", d.After.String(), "reason", d.Reason, "detail", d.Detail)
			select {
			case w.targets <- mix:
			case <-ctx.Done():
			}
		}
	}
	w.reportRedis(err)
	w.col.update(obs)
	return nil
}

// reportRedis logs when Redis goes away and when it comes back, once each;
// the go-redis client reconnects by itself with backoff.
func (w *watcher) reportRedis(err error) {
	switch {
	case err != nil && w.redisDown.IsZero():
		w.redisDown = time.Now()
		w.log.Error("Redis unreachable; workers keep what they hold and retry", "err", err)
	case err == nil && !w.redisDown.IsZero():
		w.log.Info("Redis reachable again", "after", time.Since(w.redisDown).Round(time.Second))
		w.redisDown = time.Time{}
	}
}
