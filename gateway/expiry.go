package gateway

import (
	"container/heap"
	"sync"
	"time"
)

// expiries orders authenticated sessions by token expiry, so one ticker
// can close each with 4000 when its token runs out: no timer per
// connection. A session sits in it at most once (ss.expIdx).
type expiries struct {
	mu sync.Mutex
	h  expiryHeap
}

type expiryHeap []*session

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires < h[j].expires }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].expIdx, h[j].expIdx = int32(i), int32(j)
}
func (h *expiryHeap) Push(x any) {
	ss := x.(*session)
	ss.expIdx = int32(len(*h))
	*h = append(*h, ss)
}
func (h *expiryHeap) Pop() any {
	old := *h
	ss := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	ss.expIdx = -1
	return ss
}

// set (re)schedules ss to expire at t (Unix ns); 0 removes it.
func (e *expiries) set(ss *session, t int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ss.expires = t
	switch {
	case ss.expIdx >= 0 && t == 0:
		heap.Remove(&e.h, int(ss.expIdx))
	case ss.expIdx >= 0:
		heap.Fix(&e.h, int(ss.expIdx))
	case t != 0:
		heap.Push(&e.h, ss)
	}
}

// due removes and returns the sessions whose expiry is at or before now.
func (e *expiries) due(now time.Time) []*session {
	t := now.UnixNano()
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*session
	for len(e.h) > 0 && e.h[0].expires <= t {
		out = append(out, heap.Pop(&e.h).(*session))
	}
	return out
}
