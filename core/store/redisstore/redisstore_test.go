package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
	"github.com/blazingflow/blazing/core/store/redisstore"
	"github.com/blazingflow/blazing/core/store/storetest"
)

// One redis-server serves the whole test binary; every store gets a
// namespace of its own, so tests never see each other's keys.
var (
	redisAddr string
	noRedis   string // why the tests skip, when redis-server is missing
	nsSeq     atomic.Int64
)

func TestMain(m *testing.M) {
	srv, err := storetest.StartRedisServer()
	switch {
	case errors.Is(err, storetest.ErrNoRedisServer) && !storetest.RedisRequired():
		noRedis = storetest.SkipReason(err)
	case err != nil:
		fmt.Fprintln(os.Stderr, "redisstore tests:", err)
		os.Exit(1)
	default:
		redisAddr = srv.Addr
	}
	code := m.Run()
	if srv != nil {
		srv.Stop()
	}
	os.Exit(code)
}

// client returns a client of the test server, closed when t ends.
func client(t testing.TB) *redis.Client {
	t.Helper()
	if noRedis != "" {
		t.Skip(noRedis)
	}
	c := redis.NewClient(&redis.Options{Addr: redisAddr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// namespace is new for every call, across processes too (a server may
// outlive one test process: BLAZING_TEST_REDIS_ADDR).
func namespace() string { return fmt.Sprintf("t%d-%d", os.Getpid(), nsSeq.Add(1)) }

// newStore returns a store on a fresh namespace, closed when t ends.
func newStore(t testing.TB, cfg redisstore.Config) *redisstore.Store {
	t.Helper()
	if cfg.Client == nil {
		cfg.Client = client(t)
	}
	if cfg.Namespace == "" {
		cfg.Namespace = namespace()
	}
	s, err := redisstore.New(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	c := client(t)
	storetest.Run(t, func(t *testing.T, clock *storetest.Clock) store.Store {
		return newStore(t, redisstore.Config{Client: c, Now: clock.Now})
	})
}
