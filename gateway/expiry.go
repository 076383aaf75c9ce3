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

// expiry is a session and when its token runs out (Unix ns), kept here
// rather than in the session: anonymous sessions have none.
type expiry struct {
	ss *session
	at int64
}

type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].ss.expIdx, h[j].ss.expIdx = int32(i), int32(j)
}
func (h *expiryHeap) Push(x any) {
	e := x.(expiry)
	e.ss.expIdx = int32(len(*h))
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = expiry{}
	*h = old[:len(old)-1]
	e.ss.expIdx = -1
	return e
}

// set (re)schedules ss to expire at t (Unix ns); 0 removes it.
func (e *expiries) set(ss *session, t int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case ss.expIdx >= 0 && t == 0:
		heap.Remove(&e.h, int(ss.expIdx))
	case ss.expIdx >= 0:
		e.h[ss.expIdx].at = t
		heap.Fix(&e.h, int(ss.expIdx))
	case t != 0:
		heap.Push(&e.h, expiry{ss: ss, at: t})
	}
}

// due removes and returns the sessions whose expiry is at or before now.
func (e *expiries) due(now time.Time) []*session {
	t := now.UnixNano()
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*session
	for len(e.h) > 0 && e.h[0].at <= t {
		out = append(out, heap.Pop(&e.h).(expiry).ss)
	}
	return out
}
