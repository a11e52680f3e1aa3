package redisstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/blazingflow/blazing/core/store"
)

// Blocking Reserve and Pop wait in BLMPOP on the list that announces their
// event (the lane's signal list, the inbox's notes) and on a private wake
// list of their own. Three things push to the wake list: a timer at the end
// of the wait (BLMPOP's own timeout has whole-second granularity in
// go-redis, and waits are often shorter), the caller's context ending, and
// Close. So a blocked call returns on time, on cancellation and on Close,
// whoever owns the client, with no polling and no connection torn down.

// wakeTTL bounds the life of a wake list that got its token after its call
// had already returned for another reason.
const wakeTTL = time.Minute

// pokeTimeout bounds one wake-up push.
const pokeTimeout = 2 * time.Second

// block waits up to d for an element on key. It returns what it popped from
// key (up to count elements), or nothing when the wait ran out or was cut
// short. It returns ctx's error if ctx ended and ErrClosed if the store was
// closed meanwhile.
func (s *Store) block(ctx context.Context, key string, count int, d time.Duration) ([]string, error) {
	wake, done, err := s.addWaiter()
	if err != nil {
		return nil, err
	}
	defer done()
	timer := time.AfterFunc(d, func() { s.poke(wake) })
	defer timer.Stop()
	stop := context.AfterFunc(ctx, func() { s.poke(wake) })
	defer stop()

	// BLMPOP's own timeout is only a safety net, should a push get lost.
	secs := d.Truncate(time.Second) + 2*time.Second
	got, vals, err := s.rdb.BLMPop(ctx, secs, "left", int64(count), key, wake).Result()
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if got != key {
		return nil, nil // woken through the wake list
	}
	return vals, nil
}

// addWaiter registers a blocked call so that Close can wake it, and returns
// the name of its wake list and the function that unregisters it.
func (s *Store) addWaiter() (string, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return "", nil, store.ErrClosed
	}
	s.wakeSeq++
	wake := s.k.wake(s.id + ":" + strconv.FormatUint(s.wakeSeq, 10))
	s.waiters[wake] = struct{}{}
	return wake, func() {
		s.mu.Lock()
		delete(s.waiters, wake)
		s.mu.Unlock()
	}, nil
}

// poke2 wakes a pipelined wait (waitReserve): one token ends its BLMPOP,
// the second tells the script that follows it to reserve nothing.
func (s *Store) poke2(wake string) {
	ctx, cancel := context.WithTimeout(context.Background(), pokeTimeout)
	defer cancel()
	pipe := s.rdb.Pipeline()
	pipe.RPush(ctx, wake, "1", "1")
	pipe.PExpire(ctx, wake, wakeTTL)
	_, _ = pipe.Exec(ctx)
}

// poke wakes the call blocked on wake. Errors are ignored: the call's
// BLMPOP times out on its own a little later.
func (s *Store) poke(wakes ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), pokeTimeout)
	defer cancel()
	pipe := s.rdb.Pipeline()
	for _, w := range wakes {
		pipe.RPush(ctx, w, "1")
		pipe.PExpire(ctx, w, wakeTTL)
	}
	_, _ = pipe.Exec(ctx)
}
