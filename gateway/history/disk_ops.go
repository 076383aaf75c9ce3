package history

import (
	"encoding/binary"
	"fmt"
	"time"
)

// OpenDisk opens (creating) the store under cfg.Dir and starts its
// committer and retention goroutines.
func OpenDisk(cfg DiskConfig) (*Disk, error) {
	if cfg.SyncEvery <= 0 {
		cfg.SyncEvery = 100 * time.Millisecond
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = time.Minute
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 1 << 16
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	db, err := openKV(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("--data-dir %s: %w", cfg.Dir, err)
	}
	d := &Disk{cfg: cfg, db: db, queue: make(chan *pending, cfg.QueueLen), stop: make(chan struct{})}
	for i := range d.shards {
		d.shards[i].rooms = map[string]*diskRoom{}
		d.keys[i].keys = map[string]keyAck{}
	}
	e, ok, err := db.get(storeEpochKey)
	switch {
	case err != nil:
		_ = db.close()
		return nil, fmt.Errorf("--data-dir %s: %w", cfg.Dir, err)
	case ok:
		d.epoch = string(e)
	default:
		d.epoch = newEpoch()
		b := &kvBatch{}
		b.set(storeEpochKey, []byte(d.epoch))
		if err := db.commit(b, true); err != nil {
			_ = db.close()
			return nil, fmt.Errorf("--data-dir %s: %w", cfg.Dir, err)
		}
	}
	d.done.Add(2)
	go d.committer()
	go d.sweeper()
	return d, nil
}

// room returns room's state, loading it from disk on first use. s.mu held.
func (d *Disk) room(s *diskShard, room string) (*diskRoom, error) {
	r := s.rooms[room]
	if r != nil {
		return r, nil
	}
	r = &diskRoom{epoch: d.epoch}
	if e, ok, err := d.db.get(metaKey(room)); err != nil {
		return nil, err
	} else if ok {
		r.epoch = string(e)
		lo, hi := seqKey(room, 0), seqKey(room, maxSeq)
		if err := d.db.scan(lo, hi, true, func(k, _ []byte) bool {
			r.latest = binary.BigEndian.Uint64(k[len(k)-8:])
			return false
		}); err != nil {
			return nil, err
		}
		r.oldest = r.latest + 1
		if err := d.db.scan(lo, hi, false, func(k, _ []byte) bool {
			r.oldest = binary.BigEndian.Uint64(k[len(k)-8:])
			return false
		}); err != nil {
			return nil, err
		}
		if r.latest == 0 { // every message removed by retention: the seq goes on
			r.latest = d.metaLatest(room)
			r.oldest = r.latest + 1
		}
	} else {
		r.oldest = 1
	}
	r.next = r.latest
	s.rooms[room] = r
	return r, nil
}

// maxSeq bounds seq keys from above.
const maxSeq = ^uint64(0)

// metaLatest is the seq a room whose messages were all removed had reached
// (kept in its meta record after the epoch).
func (d *Disk) metaLatest(room string) uint64 {
	v, ok, err := d.db.get(append(metaKey(room), 0))
	if err != nil || !ok || len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// AppendAsync stores the message enc builds at room's next seq: the seq and
// ts are assigned now, in the order of the calls per room, and done is
// called once the message is durable (or failed), in the same order, from
// the committer goroutine. A key user had accepted within KeyTTL stores
// nothing: done gets the original ack and dup true, after the original is
// durable.
func (d *Disk) AppendAsync(room, user, key string, enc Encoder, done func(Message, Ack, bool, error)) {
	if d.closed.Load() {
		done(Message{}, Ack{}, false, ErrUnavailable)
		return
	}
	now := d.cfg.Now()
	s := d.shard(room)
	ks := d.keyShard(user)
	p := &pending{room: room, user: user, key: key, done: done}
	s.mu.Lock()
	defer s.mu.Unlock()
	if key != "" {
		ks.mu.Lock()
		defer ks.mu.Unlock()
		if ka, ok := ks.keys[user+"\x00"+key]; ok && ka.expires > now.UnixNano() {
			p.dupOf = ka.pend
			p.msg.Seq = ka.ack.Seq
			d.enqueue(p, ka.ack)
			return
		}
		if ack, ok := d.keyOnDisk(user, key, now); ok {
			p.dupOf = &pending{} // durable already
			d.enqueue(p, ack)
			return
		}
	}
	r, err := d.room(s, room)
	if err != nil {
		done(Message{}, Ack{}, false, fmt.Errorf("%w: %v", ErrUnavailable, err))
		return
	}
	seq := r.next + 1
	ts := now.UnixMilli()
	p.msg = Message{Seq: seq, TS: ts, Frame: enc(seq, ts)}
	p.first = r.next == 0 && r.latest == 0
	ack := Ack{Room: room, Seq: seq, TS: ts}
	if !d.enqueue(p, ack) {
		return
	}
	r.next = seq
	r.pending++
	if key != "" {
		ks.keys[user+"\x00"+key] = keyAck{ack: ack, expires: now.Add(KeyTTL).UnixNano(), pend: p}
	}
}

// enqueue hands p to the committer; a full queue fails it at once.
func (d *Disk) enqueue(p *pending, ack Ack) bool {
	if p.dupOf != nil {
		orig := p.done
		p.done = func(Message, Ack, bool, error) { orig(Message{}, ack, true, nil) }
	}
	select {
	case d.queue <- p:
		return true
	default:
		p.done(Message{}, Ack{}, false, ErrUnavailable)
		return false
	}
}

// keyOnDisk looks up an idempotency key accepted before a restart.
func (d *Disk) keyOnDisk(user, key string, now time.Time) (Ack, bool) {
	v, ok, err := d.db.get(idemKey(user, key))
	if err != nil || !ok {
		return Ack{}, false
	}
	a, exp, err := decodeKeyRecord(v)
	if err != nil || exp <= now.UnixNano() {
		return Ack{}, false
	}
	return a, true
}

// Append implements Store: AppendAsync, waiting for durability.
func (d *Disk) Append(room, user, key string, enc Encoder) (Message, Ack, bool, error) {
	type result struct {
		m   Message
		a   Ack
		dup bool
		err error
	}
	ch := make(chan result, 1)
	d.AppendAsync(room, user, key, enc, func(m Message, a Ack, dup bool, err error) { ch <- result{m, a, dup, err} })
	r := <-ch
	return r.m, r.a, r.dup, r.err
}

// Range implements Store over the durable messages.
func (d *Disk) Range(room string, after, before uint64, limit int) (Page, error) {
	s := d.shard(room)
	s.mu.Lock()
	r, err := d.room(s, room)
	var latest, oldest uint64
	var epoch string
	if err == nil {
		latest, oldest, epoch = r.latest, r.oldest, r.epoch
	}
	s.mu.Unlock()
	if err != nil {
		return Page{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	p := Page{Latest: latest, Epoch: epoch}
	if before > latest+1 {
		before = latest + 1
	}
	empty := after >= before || after+1 == before
	p.Complete = empty || after+1 >= oldest
	if limit <= 0 || empty {
		return p, nil
	}
	var msgs []Message
	err = d.db.scan(seqKey(room, after+1), seqKey(room, before), true, func(k, v []byte) bool {
		m, derr := decodeMessage(k, v)
		if derr != nil {
			err = derr
			return false
		}
		msgs = append(msgs, m)
		return len(msgs) < limit
	})
	if err != nil {
		return Page{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	// Whether nothing is missing is what the read found, not what the
	// room's state said before it: a removal may have committed between.
	p.Complete = len(msgs) > 0 && msgs[len(msgs)-1].Seq == after+1
	for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
		msgs[i], msgs[j] = msgs[j], msgs[i]
	}
	p.Messages = msgs
	return p, nil
}

// encodeMessage is a message record: ts, then the JSON payload.
func encodeMessage(m Message) []byte {
	v := binary.BigEndian.AppendUint64(nil, uint64(m.TS))
	return append(v, m.Payload()...)
}

func decodeMessage(k, v []byte) (Message, error) {
	if len(v) < 8 || len(k) < 9 {
		return Message{}, fmt.Errorf("history: bad record %q", k)
	}
	return Message{
		Seq:   binary.BigEndian.Uint64(k[len(k)-8:]),
		TS:    int64(binary.BigEndian.Uint64(v)),
		Frame: TextFrame(string(v[8:])),
	}, nil
}

// encodeKeyRecord is an idempotency key's record: expiry, seq, ts, room.
func encodeKeyRecord(a Ack, expires int64) []byte {
	v := binary.BigEndian.AppendUint64(nil, uint64(expires))
	v = binary.BigEndian.AppendUint64(v, a.Seq)
	v = binary.BigEndian.AppendUint64(v, uint64(a.TS))
	return append(v, a.Room...)
}

func decodeKeyRecord(v []byte) (Ack, int64, error) {
	if len(v) < 24 {
		return Ack{}, 0, fmt.Errorf("history: bad key record")
	}
	return Ack{
		Seq:  binary.BigEndian.Uint64(v[8:]),
		TS:   int64(binary.BigEndian.Uint64(v[16:])),
		Room: string(v[24:]),
	}, int64(binary.BigEndian.Uint64(v)), nil
}
