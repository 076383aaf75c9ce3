package history

import (
	"crypto/rand"
	"encoding/hex"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

var _ Store = (*Memory)(nil)

const memShards = 64

// Memory is the embedded Store: each room keeps its newest Size messages in a
// ring. Its epoch is random per process, since a restart loses every history.
type Memory struct {
	size   int
	epoch  string
	now    func() time.Time
	seed   maphash.Seed
	shards [memShards]memShard
	keys   keyTable
	held   atomic.Int64 // messages in all rings
	stop   chan struct{}
	done   sync.WaitGroup
}

type memShard struct {
	mu    sync.Mutex
	rooms map[string]*ring
}

// ring holds a room's newest messages. buf grows up to size, then wraps.
type ring struct {
	buf    []Message
	head   int // index of the oldest message once buf is full
	latest uint64
}

// NewMemory returns a Memory store keeping size messages per room. now is
// the clock (time.Now when nil).
func NewMemory(size int, now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	var e [4]byte
	_, _ = rand.Read(e[:])
	m := &Memory{size: size, epoch: hex.EncodeToString(e[:]), now: now,
		seed: maphash.MakeSeed(), stop: make(chan struct{})}
	for i := range m.shards {
		m.shards[i].rooms = make(map[string]*ring)
	}
	m.keys.init()
	m.done.Add(1)
	go m.sweepKeys()
	return m
}

// Messages returns how many messages the store holds, in all rooms.
func (m *Memory) Messages() int64 { return m.held.Load() }

// Epoch returns the store's epoch (the same for every room).
func (m *Memory) Epoch() string { return m.epoch }

func (m *Memory) shard(room string) *memShard {
	return &m.shards[maphash.String(m.seed, room)%memShards]
}

// Append implements Store.
func (m *Memory) Append(room, user, key string, enc Encoder) (Message, Ack, bool, error) {
	now := m.now()
	if key != "" {
		if ack, ok := m.keys.get(user, key, now); ok {
			return Message{}, ack, true, nil
		}
	}
	s := m.shard(room)
	s.mu.Lock()
	r := s.rooms[room]
	if r == nil {
		r = &ring{}
		s.rooms[room] = r
	}
	seq := r.latest + 1
	ts := now.UnixMilli()
	msg := Message{Seq: seq, TS: ts, Frame: enc(seq, ts)}
	r.latest = seq
	if m.size > 0 {
		if len(r.buf) < m.size {
			r.buf = append(r.buf, msg)
			m.held.Add(1)
		} else {
			r.buf[r.head] = msg
			r.head = (r.head + 1) % m.size
		}
	}
	s.mu.Unlock()
	ack := Ack{Room: room, Seq: seq, TS: ts}
	if key != "" {
		m.keys.put(user, key, ack, now)
	}
	return msg, ack, false, nil
}

// Range implements Store.
func (m *Memory) Range(room string, after, before uint64, limit int) ([]Message, uint64, string, bool, error) {
	s := m.shard(room)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[room]
	if r == nil {
		return nil, 0, m.epoch, after == 0, nil
	}
	if before > r.latest+1 {
		before = r.latest + 1
	}
	n := len(r.buf)
	oldest := r.latest + 1 - uint64(n) // seq of the oldest held message
	// empty: no seq lies strictly between after and before (not after+1 >=
	// before, which wraps to 0 when after is the largest seq).
	empty := after >= before || after+1 == before
	complete := empty || after+1 >= oldest
	if limit <= 0 || empty {
		return nil, r.latest, m.epoch, complete, nil
	}
	lo := after + 1
	if lo < oldest {
		lo = oldest
	}
	if before > lo && before-lo > uint64(limit) {
		lo = before - uint64(limit)
		complete = false
	}
	var out []Message
	for seq := lo; seq < before; seq++ {
		i := int(seq - oldest)
		if len(r.buf) == m.size {
			i = (r.head + i) % m.size
		}
		out = append(out, r.buf[i])
	}
	return out, r.latest, m.epoch, complete, nil
}

// Close stops the key sweeper.
func (m *Memory) Close() error {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	m.done.Wait()
	return nil
}

func (m *Memory) sweepKeys() {
	defer m.done.Done()
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.keys.sweep(m.now())
		}
	}
}

// keyTable maps (user, key) to the ack of the message first accepted with it.
type keyTable struct {
	mu sync.Mutex
	m  map[string]keyEntry
}

type keyEntry struct {
	ack     Ack
	expires time.Time
}

func (k *keyTable) init() { k.m = make(map[string]keyEntry) }

func keyOf(user, key string) string { return user + "\x00" + key }

func (k *keyTable) get(user, key string, now time.Time) (Ack, bool) {
	k.mu.Lock()
	e, ok := k.m[keyOf(user, key)]
	k.mu.Unlock()
	if !ok || now.After(e.expires) {
		return Ack{}, false
	}
	return e.ack, true
}

func (k *keyTable) put(user, key string, ack Ack, now time.Time) {
	k.mu.Lock()
	k.m[keyOf(user, key)] = keyEntry{ack: ack, expires: now.Add(KeyTTL)}
	k.mu.Unlock()
}

func (k *keyTable) sweep(now time.Time) {
	k.mu.Lock()
	for key, e := range k.m {
		if now.After(e.expires) {
			delete(k.m, key)
		}
	}
	k.mu.Unlock()
}
