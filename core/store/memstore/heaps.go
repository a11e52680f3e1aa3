package memstore

import "container/heap"

// opHeap is a container/heap of operations that keeps each op's index, so a
// cancelled op can be removed from the middle.
type opHeap struct {
	ops  []*op
	less func(a, b *op) bool
}

var _ heap.Interface = (*opHeap)(nil)

// byPriority orders ready operations: higher priority first, then FIFO.
func byPriority(a, b *op) bool {
	if a.opts.Priority != b.opts.Priority {
		return a.opts.Priority > b.opts.Priority
	}
	return a.seq < b.seq
}

// byDue orders retries waiting for their backoff by due time.
func byDue(a, b *op) bool { return a.readyAt.Before(b.readyAt) }

func (h *opHeap) Len() int           { return len(h.ops) }
func (h *opHeap) Less(i, j int) bool { return h.less(h.ops[i], h.ops[j]) }
func (h *opHeap) Swap(i, j int) {
	h.ops[i], h.ops[j] = h.ops[j], h.ops[i]
	h.ops[i].heapIdx = i
	h.ops[j].heapIdx = j
}

func (h *opHeap) Push(x any) {
	o := x.(*op)
	o.heapIdx = len(h.ops)
	h.ops = append(h.ops, o)
}

func (h *opHeap) Pop() any {
	n := len(h.ops)
	o := h.ops[n-1]
	h.ops[n-1] = nil
	h.ops = h.ops[:n-1]
	o.heapIdx = -1
	return o
}

// head is the first op, or nil.
func (h *opHeap) head() *op {
	if len(h.ops) == 0 {
		return nil
	}
	return h.ops[0]
}
