package bridge

import (
	"context"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// BenchmarkStepCycle measures one step call through the bridge: a batch that
// submits it (reply delivers it) and a batch that completes it (reply
// carries the result), as the embedded Python runtime does.
func BenchmarkStepCycle(b *testing.B) {
	ctx := context.Background()
	cfg, _ := msgpack.Marshal(map[string]any{"inbox": "bench", "async": 64, "blocking": 4})
	s, err := Open(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	args := []byte{0x92, 0x91, 0x01, 0x80}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		path := "0"
		unit := "u" + string(rune('a'+i%26)) + itoa(i)
		sub, _ := msgpack.Marshal([]any{[]any{1, unit, path, "", 0, "noop", 0, args, uint64(i + 1), 0, 0, 0, 0, 0}})
		if _, err := s.Batch(ctx, sub); err != nil {
			b.Fatal(err)
		}
		comp, _ := msgpack.Marshal([]any{[]any{2, unit, path, 1, true, args, nil, false}})
		if _, err := s.Batch(ctx, comp); err != nil {
			b.Fatal(err)
		}
	}
}

func itoa(i int) string {
	buf := [20]byte{}
	n := len(buf)
	for {
		n--
		buf[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			break
		}
	}
	return string(buf[n:])
}
