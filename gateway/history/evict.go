package history

import (
	"math"
	"slices"
)

// A room seen by an eviction pass, with its last append when seen.
type candidate struct {
	room string
	last int64
}

// candidates lists the rooms whose last append is before cutoff (Unix ns),
// idle longest first.
func (m *Memory) candidates(cutoff int64) []candidate {
	var out []candidate
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for name, r := range s.rooms {
			if r.last < cutoff {
				out = append(out, candidate{name, r.last})
			}
		}
		s.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b candidate) int {
		switch {
		case a.last < b.last:
			return -1
		case a.last > b.last:
			return 1
		}
		return 0
	})
	return out
}

// drop forgets a room if nothing was appended to it since the pass saw it
// and no member can see it (MemoryConfig.IfIdle). Its next message starts
// again at seq 1 under a new epoch.
func (m *Memory) drop(c candidate) bool {
	if m.cfg.IfIdle == nil {
		return false
	}
	dropped := false
	m.cfg.IfIdle(c.room, func() {
		s := m.shard(c.room)
		s.mu.Lock()
		if r := s.rooms[c.room]; r != nil && r.last == c.last {
			delete(s.rooms, c.room)
			m.held.Add(-int64(r.n))
			m.bytes.Add(-r.bytes)
			m.rooms.Add(-1)
			m.gen.Add(1)
			dropped = true
		}
		s.mu.Unlock()
	})
	return dropped
}

// expire drops the rooms whose last message is older than cutoff.
func (m *Memory) expire(cutoff int64) {
	m.evict.Lock()
	defer m.evict.Unlock()
	for _, c := range m.candidates(cutoff) {
		m.drop(c)
	}
}

// shrink brings the store under 90% of MaxBytes, so that passes are rare:
// first by dropping the rooms idle longest that no member can see, then,
// if every room left is in use, by trimming the oldest messages of the
// rooms idle longest (their seqs go on; resumes from before the trim get
// recovered: false). One pass runs at a time; appends meanwhile go on,
// unless the store is far over its cap (wait): then they wait for the pass
// in progress and run one of their own if still needed, so appends faster
// than a pass cannot outrun the cap.
func (m *Memory) shrink(wait bool) {
	if wait {
		m.evict.Lock()
	} else if !m.evict.TryLock() {
		return
	}
	defer m.evict.Unlock()
	if m.bytes.Load() <= m.cfg.MaxBytes {
		return // the pass this one waited for did the work
	}
	low := m.cfg.MaxBytes / 10 * 9
	cs := m.candidates(math.MaxInt64)
	for _, c := range cs {
		if m.bytes.Load() <= low {
			return
		}
		m.drop(c)
	}
	for _, c := range cs {
		if m.bytes.Load() <= low {
			return
		}
		s := m.shard(c.room)
		s.mu.Lock()
		if r := s.rooms[c.room]; r != nil {
			for r.n > 0 && m.bytes.Load() > low {
				b := r.popOldest()
				r.bytes -= b
				m.bytes.Add(-b)
				m.held.Add(-1)
			}
		}
		s.mu.Unlock()
	}
}
