// Package msgpacktest builds and reads msgpack values for the tests of the
// packages whose frames are msgpack (frames, bridge), so each helper is
// written once.
package msgpacktest

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// Pack encodes v with the default encoder (full-width ints), the way a
// generic msgpack client might.
func Pack(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return b
}

// Int64 turns any decoded msgpack integer into an int64: the decoder picks
// the narrowest type that holds the value.
func Int64(t testing.TB, v any) int64 {
	t.Helper()
	switch n := v.(type) {
	case int8:
		return int64(n)
	case int16:
		return int64(n)
	case int32:
		return int64(n)
	case int64:
		return n
	case uint8:
		return int64(n)
	case uint16:
		return int64(n)
	case uint32:
		return int64(n)
	case uint64:
		require.LessOrEqual(t, n, uint64(math.MaxInt64))
		return int64(n)
	}
	require.Failf(t, "not an integer", "%T %v", v, v)
	return 0
}
