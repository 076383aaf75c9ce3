package history

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The Disk store's database: bbolt, a B+tree in one memory-mapped file
// (chosen over pebble and SQLite by bench/storechoice: see its README).
// One writer at a time suits the store, whose committer already batches
// appends into one transaction; keys are ordered, so a room's messages
// are one cursor walk. The few operations the store needs are here.

// ErrInUse is OpenDisk's error when another process holds the database.
var ErrInUse = errors.New("the history database is in use by another process")

// kv is the store's database.
type kv struct {
	db *bolt.DB
	mu sync.Mutex // writers, so that each sets NoSync for its own commit
}

var bucket = []byte("h")

// openKV opens (creating) the database in dir. Another process holding
// it is an error within a second, not a hang.
func openKV(dir string) (*kv, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(dir, "history.db"), 0o600, &bolt.Options{
		Timeout: time.Second,
		// As etcd runs it: the hashmap freelist, not written at each
		// commit but rebuilt when the file is opened (a commit writes
		// less; bench/storechoice measured this configuration).
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, ErrInUse
	}
	if err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, err
	}
	return &kv{db: db}, nil
}

// kvBatch is a list of writes applied in one transaction.
type kvBatch struct{ ops []kvOp }

type kvOp struct {
	key, val []byte
	end      []byte // deleteRange: [key, end)
	del      bool
}

func (b *kvBatch) set(k, v []byte) { b.ops = append(b.ops, kvOp{key: k, val: v}) }
func (b *kvBatch) del(k []byte)    { b.ops = append(b.ops, kvOp{key: k, del: true}) }
func (b *kvBatch) deleteRange(lo, hi []byte) {
	b.ops = append(b.ops, kvOp{key: lo, end: hi, del: true})
}

// commit applies b in one transaction; with sync, it is on disk when
// commit returns (bbolt fsyncs each transaction unless NoSync).
func (s *kv) commit(b *kvBatch, sync bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.db.NoSync = !sync
	return s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		for _, op := range b.ops {
			switch {
			case op.end != nil:
				c := bk.Cursor()
				for k, _ := c.Seek(op.key); k != nil && bytes.Compare(k, op.end) < 0; k, _ = c.Seek(op.key) {
					if err := c.Delete(); err != nil {
						return err
					}
				}
			case op.del:
				if err := bk.Delete(op.key); err != nil {
					return err
				}
			default:
				if err := bk.Put(op.key, op.val); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// get returns a copy of key's value.
func (s *kv) get(key []byte) ([]byte, bool, error) {
	var out []byte
	ok := false
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucket).Get(key); v != nil {
			out, ok = append([]byte(nil), v...), true
		}
		return nil
	})
	return out, ok, err
}

// scan calls fn with the keys in [lo, hi), descending when rev, until fn
// returns false. k and v are only valid during the call.
func (s *kv) scan(lo, hi []byte, rev bool, fn func(k, v []byte) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		if !rev {
			for k, v := c.Seek(lo); k != nil && bytes.Compare(k, hi) < 0; k, v = c.Next() {
				if !fn(k, v) {
					return nil
				}
			}
			return nil
		}
		k, v := c.Seek(hi)
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.Compare(k, lo) >= 0; k, v = c.Prev() {
			if bytes.Compare(k, hi) >= 0 {
				continue
			}
			if !fn(k, v) {
				return nil
			}
		}
		return nil
	})
}

// sync flushes what NoSync commits left to the operating system.
func (s *kv) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db.Sync()
}

// size is the database file's size.
func (s *kv) size() int64 {
	var n int64
	_ = s.db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// used is the size less the free pages bbolt keeps for reuse: what
// retention's disk budget counts.
func (s *kv) used() int64 {
	st := s.db.Stats()
	return s.size() - int64(st.FreePageN+st.PendingPageN)*int64(s.db.Info().PageSize)
}

func (s *kv) close() error { return s.db.Close() }
