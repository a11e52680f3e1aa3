package memstore

// readyHeap orders ready operations by priority (higher first), then FIFO.
type readyHeap []*op

func (h readyHeap) Len() int { return len(h) }
func (h readyHeap) Less(i, j int) bool {
	if h[i].opts.Priority != h[j].opts.Priority {
		return h[i].opts.Priority > h[j].opts.Priority
	}
	return h[i].seq < h[j].seq
}
func (h readyHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *readyHeap) Push(x any) {
	o := x.(*op)
	o.heapIdx = len(*h)
	*h = append(*h, o)
}
func (h *readyHeap) Pop() any {
	old := *h
	n := len(old)
	o := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	o.heapIdx = -1
	return o
}

// delayHeap orders retries waiting for their backoff by due time.
type delayHeap []*op

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].readyAt.Before(h[j].readyAt) }
func (h delayHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *delayHeap) Push(x any) {
	o := x.(*op)
	o.heapIdx = len(*h)
	*h = append(*h, o)
}
func (h *delayHeap) Pop() any {
	old := *h
	n := len(old)
	o := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	o.heapIdx = -1
	return o
}
