package history

import (
	"crypto/rand"
	"encoding/hex"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

var _ Store = (*Memory)(nil)

const memShards = 64

// What a room and a held message count against MemoryConfig.MaxBytes
// besides their frames: map entry, ring and Message headers, rounded up.
const (
	roomOverhead = 192
	msgOverhead  = 48
)

// MemoryConfig configures a Memory store.
type MemoryConfig struct {
	Size     int              // messages kept per room (0: none, seqs only)
	MaxBytes int64            // bytes held in all rooms, overheads included (0: no cap)
	TTL      time.Duration    // a room is dropped this long after its last message (0: never)
	Now      func() time.Time // the clock; time.Now when nil
	// IfIdle runs drop only while no member can see the room (the hub's
	// IfIdle), so that no live member sees a room's seq restart. With
	// IfIdle nil rooms are never dropped, only trimmed to fit MaxBytes.
	IfIdle func(room string, drop func()) bool
}

// Memory is the embedded Store: each room keeps its newest Size messages in
// a ring. Every retained byte is bounded: rooms idle past TTL are dropped,
// and over MaxBytes the rooms idle longest are dropped first, then the
// oldest messages of the rest. A dropped room starts again at seq 1 under a
// new epoch, so resuming clients are told that its history was reset.
type Memory struct {
	cfg    MemoryConfig
	epoch  string // the process's epoch; rooms add a generation to it
	seed   maphash.Seed
	shards [memShards]memShard
	keys   keyTable
	held   atomic.Int64  // messages in all rings
	bytes  atomic.Int64  // what MaxBytes is compared with
	rooms  atomic.Int64  // rooms held
	gen    atomic.Uint64 // rooms dropped so far: new rooms' epochs differ
	evict  sync.Mutex    // one eviction pass at a time
	stop   chan struct{}
	done   sync.WaitGroup
}

type memShard struct {
	mu    sync.Mutex
	rooms map[string]*ring
}

// ring holds a room's newest messages: n of them from buf[head], wrapping.
// buf grows up to the store's Size, then wraps.
type ring struct {
	buf    []Message
	head   int
	n      int
	latest uint64
	last   int64 // Unix ns of the last append
	bytes  int64 // what this room counts against MaxBytes
	epoch  string
}

// NewMemory returns a Memory store keeping size messages per room, with
// no byte cap and no expiry. now is the clock (time.Now when nil).
func NewMemory(size int, now func() time.Time) *Memory {
	return NewMemoryWith(MemoryConfig{Size: size, Now: now})
}

// NewMemoryWith returns a Memory store configured by cfg.
func NewMemoryWith(cfg MemoryConfig) *Memory {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var e [4]byte
	_, _ = rand.Read(e[:])
	m := &Memory{cfg: cfg, epoch: hex.EncodeToString(e[:]),
		seed: maphash.MakeSeed(), stop: make(chan struct{})}
	for i := range m.shards {
		m.shards[i].rooms = make(map[string]*ring)
	}
	m.keys.init()
	m.done.Add(1)
	go m.sweep()
	return m
}

// Messages returns how many messages the store holds, in all rooms.
func (m *Memory) Messages() int64 { return m.held.Load() }

// Bytes returns what the store holds, as counted against MaxBytes.
func (m *Memory) Bytes() int64 { return m.bytes.Load() }

// Rooms returns how many rooms the store holds.
func (m *Memory) Rooms() int64 { return m.rooms.Load() }

// Dropped returns how many rooms were dropped (idle past TTL or over
// MaxBytes) since the store started.
func (m *Memory) Dropped() uint64 { return m.gen.Load() }

// Epoch returns the epoch a room not held now would get.
func (m *Memory) Epoch() string { return m.epochOf(m.gen.Load()) }

// epochOf names one life of a room: the process's epoch, and how many rooms
// had been dropped when it began.
func (m *Memory) epochOf(gen uint64) string {
	if gen == 0 {
		return m.epoch
	}
	return m.epoch + "." + strconv.FormatUint(gen, 36)
}

func (m *Memory) shard(room string) *memShard {
	return &m.shards[maphash.String(m.seed, room)%memShards]
}

// Append implements Store.
func (m *Memory) Append(room, user, key string, enc Encoder) (Message, Ack, bool, error) {
	now := m.cfg.Now()
	if key != "" {
		if ack, ok := m.keys.get(user, key, now); ok {
			return Message{}, ack, true, nil
		}
	}
	s := m.shard(room)
	s.mu.Lock()
	r := s.rooms[room]
	if r == nil {
		r = &ring{epoch: m.epochOf(m.gen.Load()), bytes: roomOverhead + int64(len(room))}
		s.rooms[room] = r
		m.rooms.Add(1)
		m.bytes.Add(r.bytes)
	}
	seq := r.latest + 1
	ts := now.UnixMilli()
	msg := Message{Seq: seq, TS: ts, Frame: enc(seq, ts)}
	r.latest = seq
	r.last = now.UnixNano()
	if m.cfg.Size > 0 {
		add := msgOverhead + int64(len(msg.Frame))
		if old, ok := r.push(msg, m.cfg.Size); ok {
			add -= msgOverhead + int64(len(old.Frame))
		} else {
			m.held.Add(1)
		}
		r.bytes += add
		m.bytes.Add(add)
	}
	s.mu.Unlock()
	ack := Ack{Room: room, Seq: seq, TS: ts}
	if key != "" {
		m.keys.put(user, key, ack, now)
	}
	if m.cfg.MaxBytes > 0 && m.bytes.Load() > m.cfg.MaxBytes {
		m.shrink(m.bytes.Load() > m.cfg.MaxBytes+m.cfg.MaxBytes/8)
	}
	return msg, ack, false, nil
}

// push adds msg as the newest message, growing buf up to size; when full
// it overwrites the oldest and returns it.
func (r *ring) push(msg Message, size int) (Message, bool) {
	if r.n == len(r.buf) && len(r.buf) < size {
		if r.head != 0 { // trimmed, then refilled: straighten before growing
			r.buf = append(r.buf[r.head:len(r.buf):len(r.buf)], r.buf[:r.head]...)
			r.head = 0
		}
		r.buf = append(r.buf, msg)
		r.n++
		return Message{}, false
	}
	if r.n < len(r.buf) {
		r.buf[(r.head+r.n)%len(r.buf)] = msg
		r.n++
		return Message{}, false
	}
	old := r.buf[r.head]
	r.buf[r.head] = msg
	r.head = (r.head + 1) % len(r.buf)
	return old, true
}

// at returns the i-th oldest held message.
func (r *ring) at(i int) Message { return r.buf[(r.head+i)%len(r.buf)] }

// popOldest forgets the oldest held message and returns what it counted.
func (r *ring) popOldest() int64 {
	old := r.buf[r.head]
	r.buf[r.head] = Message{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return msgOverhead + int64(len(old.Frame))
}

// Range implements Store.
func (m *Memory) Range(room string, after, before uint64, limit int) (Page, error) {
	s := m.shard(room)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[room]
	if r == nil {
		return Page{Epoch: m.Epoch(), Complete: after == 0}, nil
	}
	if before > r.latest+1 {
		before = r.latest + 1
	}
	oldest := r.latest + 1 - uint64(r.n) // seq of the oldest held message
	// empty: no seq lies strictly between after and before (not after+1 >=
	// before, which wraps to 0 when after is the largest seq).
	empty := after >= before || after+1 == before
	complete := empty || after+1 >= oldest
	if limit <= 0 || empty {
		return Page{Latest: r.latest, Epoch: r.epoch, Complete: complete}, nil
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
		out = append(out, r.at(int(seq-oldest)))
	}
	return Page{Messages: out, Latest: r.latest, Epoch: r.epoch, Complete: complete}, nil
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

// sweep forgets expired idempotency keys and rooms idle past TTL. It
// runs at least every 10 s, and every TTL/4 for a shorter TTL, so a room
// outlives its TTL by at most a quarter of it.
func (m *Memory) sweep() {
	defer m.done.Done()
	every := 10 * time.Second
	if ttl := m.cfg.TTL; ttl > 0 && ttl/4 < every {
		every = max(ttl/4, 10*time.Millisecond)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			now := m.cfg.Now()
			m.keys.sweep(now)
			if m.cfg.TTL > 0 {
				m.expire(now.Add(-m.cfg.TTL).UnixNano())
			}
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
