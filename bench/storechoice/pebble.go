package storechoice

import (
	"encoding/binary"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Pebble: an LSM. Group commit is Pebble's own: each Append commits its
// own batch with pebble.Sync from the caller's goroutine, and concurrent
// commits share the WAL's fsync (the WAL writer syncs everything queued
// while the previous sync ran). Mode "none" commits with pebble.NoSync:
// the WAL is still written, not fsynced. Options are the defaults (8 MB
// block cache, 4 MB memtables) with the newest on-disk format, as a new
// deployment would open it.
//
// One key space, a prefix byte per record kind:
//
//	'm' room seq -> message body
//	'r' room     -> seq epoch
//	'k' room key -> seq
type pebbleStore struct {
	db   *pebble.DB
	wo   *pebble.WriteOptions
	fs   *syncCountFS
	sync bool

	stallStart atomic.Int64 // unix ns; 0: not stalled
	stalled    atomic.Int64 // ns of write stalls ended so far
}

// OpenPebble opens a Pebble store in dir.
func OpenPebble(dir string, sync bool) (Store, error) { return openPebble(dir, sync, 0) }

// openPebble opens a Pebble store in dir with a block cache of cache
// bytes (0: the default, 8 MB).
func openPebble(dir string, sync bool, cache int64) (*pebbleStore, error) {
	s := &pebbleStore{fs: &syncCountFS{FS: vfs.Default}, wo: pebble.NoSync, sync: sync}
	if sync {
		s.wo = pebble.Sync
	}
	var err error
	s.db, err = pebble.Open(dir, &pebble.Options{
		FS:                 s.fs,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             quietLogger{},
		CacheSize:          cache,
		EventListener: &pebble.EventListener{
			WriteStallBegin: func(pebble.WriteStallBeginInfo) {
				s.stallStart.Store(time.Now().UnixNano())
			},
			WriteStallEnd: func() {
				if t := s.stallStart.Swap(0); t != 0 {
					s.stalled.Add(time.Now().UnixNano() - t)
				}
			},
		},
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (s *pebbleStore) Append(m *Msg) error {
	var kb [64]byte
	b := s.db.NewBatch()
	defer b.Close()
	k := msgKey(append(kb[:0], 'm'), m.Room, m.Seq)
	if err := b.Set(k, m.Body, nil); err != nil {
		return err
	}
	k = roomKey(append(kb[:0], 'r'), m.Room)
	var vb [16]byte
	if err := b.Set(k, metaValue(vb[:0], m.Seq, m.Epoch), nil); err != nil {
		return err
	}
	if m.Key != nil {
		k = append(roomKey(append(kb[:0], 'k'), m.Room), m.Key...)
		var sb [8]byte
		if err := b.Set(k, binary.BigEndian.AppendUint64(sb[:0], m.Seq), nil); err != nil {
			return err
		}
	}
	return b.Commit(s.wo)
}

// scan visits, newest first, up to n messages of room with seq < below
// (below 0 means no bound).
func (s *pebbleStore) scan(room uint32, below uint64, n int, visit func(uint64, []byte)) error {
	var lo, hi [16]byte
	o := pebble.IterOptions{LowerBound: msgKey(append(lo[:0], 'm'), room, 0)}
	if below == 0 {
		o.UpperBound = roomKey(append(hi[:0], 'm'), room+1)
	} else {
		o.UpperBound = msgKey(append(hi[:0], 'm'), room, below)
	}
	it, err := s.db.NewIter(&o)
	if err != nil {
		return err
	}
	for ok := it.Last(); ok && n > 0; ok = it.Prev() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		k := it.Key()
		visit(binary.BigEndian.Uint64(k[5:]), v)
		n--
	}
	return it.Close()
}

func (s *pebbleStore) Newest(room uint32, n int, visit func(uint64, []byte)) error {
	return s.scan(room, 0, n, visit)
}

func (s *pebbleStore) Before(room uint32, seq uint64, n int, visit func(uint64, []byte)) error {
	if seq == 0 {
		return nil
	}
	return s.scan(room, seq, n, visit)
}

func (s *pebbleStore) Meta(room uint32) (uint64, uint64, error) {
	var kb [8]byte
	v, closer, err := s.db.Get(roomKey(append(kb[:0], 'r'), room))
	if err != nil {
		return 0, 0, err
	}
	defer closer.Close()
	return parseMeta(v)
}

// Stalled is how long Pebble has held writes back (write stalls: too many
// memtables waiting for a flush, or too many files in L0) since it opened.
func (s *pebbleStore) Stalled() time.Duration {
	d := s.stalled.Load()
	if t := s.stallStart.Load(); t != 0 {
		d += time.Now().UnixNano() - t
	}
	return time.Duration(d)
}

func (s *pebbleStore) Commits() int64 {
	if !s.sync {
		return 0
	}
	return s.fs.syncs.Load()
}

// Settle writes the memtable out to sstables and waits for the
// compactions that follow (at most a minute), so that reads after a bulk
// load see a settled LSM rather than one being compacted under them.
func (s *pebbleStore) Settle() error {
	if err := s.db.Flush(); err != nil {
		return err
	}
	idle := 0
	for deadline := time.Now().Add(time.Minute); idle < 5 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		if m := s.db.Metrics(); m.Compact.NumInProgress == 0 && m.Flush.NumInProgress == 0 {
			idle++
		} else {
			idle = 0
		}
	}
	return nil
}

func (s *pebbleStore) Close() error { return s.db.Close() }

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic("pebble: fatal: " + format)
}

// syncCountFS counts the syncs of WAL files (*.log), that is how many
// fsyncs the appends shared.
type syncCountFS struct {
	vfs.FS
	syncs atomic.Int64
}

func (fs *syncCountFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &syncCountFile{File: f, n: &fs.syncs}, nil
}

func (fs *syncCountFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

func (fs *syncCountFS) ReuseForWrite(old, name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(old, name, c)
	return fs.wrap(name, f, err)
}

func (fs *syncCountFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	return fs.wrap(name, f, err)
}

type syncCountFile struct {
	vfs.File
	n *atomic.Int64
}

func (f *syncCountFile) Sync() error     { f.n.Add(1); return f.File.Sync() }
func (f *syncCountFile) SyncData() error { f.n.Add(1); return f.File.SyncData() }
func (f *syncCountFile) SyncTo(length int64) (bool, error) {
	f.n.Add(1)
	return f.File.SyncTo(length)
}
