package history

import (
	"encoding/binary"
	"time"
)

// maxCommit bounds the appends one commit carries.
const maxCommit = 1024

// committer writes the queued appends in batches: everything waiting goes
// in one transaction, made durable once (SyncAlways), then each append's
// done is called in queue order. A batch that fails fails every append in
// it; nothing of it was stored.
func (d *Disk) committer() {
	defer d.done.Done()
	var tick <-chan time.Time
	if d.cfg.Sync == SyncInterval {
		t := time.NewTicker(d.cfg.SyncEvery)
		defer t.Stop()
		tick = t.C
	}
	batch := make([]*pending, 0, maxCommit)
	for {
		select {
		case <-d.stop:
			d.drain(batch[:0])
			return
		case <-tick:
			if err := d.db.sync(); err == nil {
				d.syncs.Add(1)
			}
			continue
		case p := <-d.queue:
			batch = append(batch[:0], p)
		}
	fill:
		for len(batch) < maxCommit {
			select {
			case p := <-d.queue:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		d.commit(batch)
		clear(batch)
	}
}

// drain commits what is still queued at Close.
func (d *Disk) drain(batch []*pending) {
	for {
		select {
		case p := <-d.queue:
			batch = append(batch, p)
			if len(batch) == maxCommit {
				d.commit(batch)
				batch = batch[:0]
			}
		default:
			if len(batch) > 0 {
				d.commit(batch)
			}
			return
		}
	}
}

// commit writes one batch and answers its appends.
func (d *Disk) commit(batch []*pending) {
	b := &kvBatch{}
	now := d.cfg.Now()
	for _, p := range batch {
		if p.dupOf != nil {
			continue
		}
		b.set(seqKey(p.room, p.msg.Seq), encodeMessage(p.msg))
		if p.first {
			b.set(metaKey(p.room), []byte(d.roomEpoch(p.room)))
		}
		if p.key != "" {
			ack := Ack{Room: p.room, Seq: p.msg.Seq, TS: p.msg.TS}
			b.set(idemKey(p.user, p.key), encodeKeyRecord(ack, now.Add(KeyTTL).UnixNano()))
		}
	}
	d.countCuts(batch, b)
	var err error
	if len(b.ops) > 0 {
		err = d.db.commit(b, d.cfg.Sync == SyncAlways)
		if err == nil && d.cfg.Sync == SyncAlways {
			d.syncs.Add(1)
		}
	}
	for _, p := range batch {
		if p.dupOf != nil {
			p.done(Message{}, Ack{}, true, nil) // enqueue made it answer the original ack
			continue
		}
		s := d.shard(p.room)
		s.mu.Lock()
		r := s.rooms[p.room]
		if r != nil {
			r.pending--
			if err == nil {
				r.latest = max(r.latest, p.msg.Seq)
			} else if r.pending == 0 {
				// Nothing after it is durable either: take the seqs back,
				// so the room's seq has no hole.
				r.next = r.latest
			}
		}
		s.mu.Unlock()
		if err != nil {
			p.done(Message{}, Ack{}, false, ErrUnavailable)
			continue
		}
		d.batched.Add(1)
		p.done(p.msg, Ack{Room: p.room, Seq: p.msg.Seq, TS: p.msg.TS}, false, nil)
	}
}

// countCuts adds to b the removal of what MaxCount no longer keeps in the
// batch's rooms, so that the count bound holds at every commit, and
// raises those rooms' oldest seq first (see removeBelow).
func (d *Disk) countCuts(batch []*pending, b *kvBatch) {
	if d.cfg.MaxCount <= 0 {
		return
	}
	top := map[string]uint64{}
	for _, p := range batch {
		if p.dupOf == nil {
			top[p.room] = max(top[p.room], p.msg.Seq)
		}
	}
	for room, latest := range top {
		if latest < uint64(d.cfg.MaxCount) {
			continue
		}
		cut := latest - uint64(d.cfg.MaxCount) + 1
		s := d.shard(room)
		s.mu.Lock()
		oldest := uint64(0)
		if r := s.rooms[room]; r != nil {
			oldest = r.oldest
		}
		s.mu.Unlock()
		if cut > oldest {
			b.deleteRange(seqKey(room, oldest), seqKey(room, cut))
			s.mu.Lock()
			if r := s.rooms[room]; r != nil { // before the commit, as removeBelow does
				r.oldest = max(r.oldest, cut)
			}
			s.mu.Unlock()
		}
	}
}

// roomEpoch is room's epoch as its state holds it.
func (d *Disk) roomEpoch(room string) string {
	s := d.shard(room)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.rooms[room]; r != nil {
		return r.epoch
	}
	return d.epoch
}

// sweeper applies retention and forgets expired idempotency keys.
func (d *Disk) sweeper() {
	defer d.done.Done()
	t := time.NewTicker(d.cfg.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			d.Sweep()
		}
	}
}

// Sweep runs retention once: it removes the messages older than MaxAge or
// beyond the newest MaxCount of their room, then, while the database holds
// more than MaxDisk, the oldest messages of the rooms with the oldest
// messages; and the idempotency keys past KeyTTL. The seq of a room goes on
// after its messages are removed; resumes from before get recovered false.
func (d *Disk) Sweep() {
	now := d.cfg.Now()
	d.forgetKeys(now)
	rooms := d.roomNames()
	for _, room := range rooms {
		d.retain(room, now)
	}
	for d.cfg.MaxDisk > 0 && d.db.used() > d.cfg.MaxDisk {
		if !d.dropOldest(rooms) {
			break
		}
	}
}

// roomNames lists every room with a record on disk.
func (d *Disk) roomNames() []string {
	var out []string
	_ = d.db.scan([]byte{'r'}, []byte{'s'}, false, func(k, _ []byte) bool {
		if len(k) > 1 && k[len(k)-1] != 0 { // not the "latest" record after a removal
			out = append(out, string(k[1:]))
		}
		return true
	})
	return out
}

// retain removes room's messages beyond MaxCount or older than MaxAge.
func (d *Disk) retain(room string, now time.Time) {
	if d.cfg.MaxAge <= 0 && d.cfg.MaxCount <= 0 {
		return
	}
	s := d.shard(room)
	s.mu.Lock()
	r, err := d.room(s, room)
	if err != nil {
		s.mu.Unlock()
		return
	}
	latest, oldest := r.latest, r.oldest
	s.mu.Unlock()
	cut := oldest // remove seqs below cut
	if d.cfg.MaxCount > 0 && latest >= uint64(d.cfg.MaxCount) && latest-uint64(d.cfg.MaxCount)+1 > cut {
		cut = latest - uint64(d.cfg.MaxCount) + 1
	}
	if d.cfg.MaxAge > 0 {
		edge := now.Add(-d.cfg.MaxAge).UnixMilli()
		_ = d.db.scan(seqKey(room, cut), seqKey(room, latest+1), false, func(k, v []byte) bool {
			if len(v) < 8 || int64(binary.BigEndian.Uint64(v)) >= edge {
				return false
			}
			cut = binary.BigEndian.Uint64(k[len(k)-8:]) + 1
			return true
		})
	}
	d.removeBelow(room, cut)
}

// removeBelow deletes room's messages with seq < cut and records where the
// room's seq stands, so that it goes on after a restart.
func (d *Disk) removeBelow(room string, cut uint64) {
	s := d.shard(room)
	s.mu.Lock()
	r, err := d.room(s, room)
	if err != nil || cut <= r.oldest {
		s.mu.Unlock()
		return
	}
	latest := r.latest
	// Raised before the removal commits, so that no position read in
	// between promises what is going: a failed commit only makes resumes
	// from before cut less lucky.
	r.oldest = cut
	s.mu.Unlock()
	b := &kvBatch{}
	b.deleteRange(seqKey(room, 0), seqKey(room, cut))
	b.set(append(metaKey(room), 0), binary.BigEndian.AppendUint64(nil, latest))
	_ = d.db.commit(b, d.cfg.Sync == SyncAlways)
}

// dropOldest removes the oldest tenth (at least one message) of the room
// whose oldest message is oldest, for the disk budget. It reports whether
// anything was removed.
func (d *Disk) dropOldest(rooms []string) bool {
	best, bestTS, bestLatest, bestOldest := "", int64(0), uint64(0), uint64(0)
	for _, room := range rooms {
		s := d.shard(room)
		s.mu.Lock()
		r, err := d.room(s, room)
		latest, oldest := uint64(0), uint64(0)
		if err == nil {
			latest, oldest = r.latest, r.oldest
		}
		s.mu.Unlock()
		if err != nil || oldest > latest {
			continue
		}
		v, ok, err := d.db.get(seqKey(room, oldest))
		if err != nil || !ok || len(v) < 8 {
			continue
		}
		if ts := int64(binary.BigEndian.Uint64(v)); best == "" || ts < bestTS {
			best, bestTS, bestLatest, bestOldest = room, ts, latest, oldest
		}
	}
	if best == "" {
		return false
	}
	n := max((bestLatest-bestOldest+1)/10, 1)
	d.removeBelow(best, bestOldest+n)
	return true
}

// forgetKeys deletes the idempotency keys past their expiry, in memory and
// on disk.
func (d *Disk) forgetKeys(now time.Time) {
	t := now.UnixNano()
	for i := range d.keys {
		s := &d.keys[i]
		s.mu.Lock()
		for k, ka := range s.keys {
			if ka.expires <= t {
				delete(s.keys, k)
			}
		}
		s.mu.Unlock()
	}
	b := &kvBatch{}
	_ = d.db.scan([]byte{'k'}, []byte{'l'}, false, func(k, v []byte) bool {
		if _, exp, err := decodeKeyRecord(v); err != nil || exp <= t {
			b.del(append([]byte(nil), k...))
		}
		return len(b.ops) < 10000
	})
	if len(b.ops) > 0 {
		_ = d.db.commit(b, false)
	}
}

// Close stops the goroutines after committing what is queued, and closes
// the database. Appends after Close fail with ErrUnavailable.
func (d *Disk) Close() error {
	d.once.Do(func() {
		d.closed.Store(true)
		close(d.stop)
		d.done.Wait()
		if d.cfg.Sync != SyncAlways {
			_ = d.db.sync()
		}
		d.closeErr = d.db.close()
	})
	return d.closeErr
}

// The figures metrics.Disk reports, each read on its own (a scrape reads
// each gauge once): database bytes, bytes in use, appends made durable,
// fsyncs made, appends queued.

func (d *Disk) DiskBytes() int64   { return d.db.size() }
func (d *Disk) DiskUsed() int64    { return d.db.used() }
func (d *Disk) DiskAppends() int64 { return d.batched.Load() }
func (d *Disk) DiskSyncs() int64   { return d.syncs.Load() }
func (d *Disk) DiskQueued() int    { return len(d.queue) }
