package redisstore

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

// go-redis's lines go to the newest live route, and to none once undone.
func TestRouteLogs(t *testing.T) {
	var a, b bytes.Buffer
	undoA := RouteLogs(slog.New(slog.NewTextHandler(&a, nil)))
	undoB := RouteLogs(slog.New(slog.NewTextHandler(&b, nil)))
	printf := func(msg string) { router{}.Printf(t.Context(), "%s\n", msg) }

	printf("dial failed")
	require.Contains(t, b.String(), `level=WARN msg="redis: dial failed"`)
	require.Empty(t, a.String())

	undoB()
	undoB() // twice is once
	printf("pool closed")
	require.Contains(t, a.String(), `msg="redis: pool closed"`)
	require.NotContains(t, b.String(), "pool closed")

	undoA()
	printf("to stderr")
	require.NotContains(t, a.String(), "to stderr")
}

// A failed open drops go-redis's own lines about it (its error says the
// same): a refused dial neither reaches the host's log nor stderr.
func TestFailedOpenDropsGoRedisLines(t *testing.T) {
	var host bytes.Buffer
	defer RouteLogs(slog.New(slog.NewTextHandler(&host, nil)))()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now: dials are refused
	for _, timeout := range []time.Duration{100 * time.Millisecond, 3 * time.Second} {
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		_, err = Open(ctx, "redis://"+addr, Config{Namespace: "t"})
		cancel()
		require.ErrorIs(t, err, store.ErrUnavailable)
	}
	require.NotContains(t, host.String(), "failed to dial")

	// A passed check hands its held lines on.
	release := holdLogs()
	router{}.Printf(t.Context(), "%s", "held while opening")
	require.Empty(t, host.String())
	release(true)
	require.Contains(t, host.String(), `msg="redis: held while opening"`)
}
