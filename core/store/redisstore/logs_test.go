package redisstore

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
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
