package storechoice

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bbolt: a copy-on-write B+tree in one mmapped file, one write
// transaction at a time; each commit writes the changed pages and fsyncs
// twice (pages, then the meta page). Mode "none" opens it with NoSync.
// Both variants use what etcd uses for a write-heavy bbolt: the hashmap
// freelist, not synced to disk (NoFreelistSync, rebuilt on open).
//
// Two ways of grouping concurrent appends into one transaction:
//
//   - "bbolt": db.Batch, bbolt's own. A batch starts with the first call and
//     runs when MaxBatchSize (1000) calls have joined or MaxBatchDelay
//     (10 ms) has passed, whichever is first: the defaults are kept, as a
//     user of db.Batch would get them.
//   - "bbolt-committer": the timer-free group commit of committer.go (the
//     same as the SQLite store's) over db.Update, to show the engine apart
//     from db.Batch's timer.
//
// Buckets: "m" (room seq -> body), "r" (room -> seq epoch), "k" (room key
// -> seq).
type boltStore struct {
	db *bolt.DB
	c  *committer // nil: db.Batch

	mu  sync.Mutex
	txs map[int]struct{} // db.Batch: the write transactions seen
}

var bucketMsgs, bucketMeta, bucketKeys = []byte("m"), []byte("r"), []byte("k")

func openBolt(dir string, sync bool) (*bolt.DB, error) {
	db, err := bolt.Open(filepath.Join(dir, "history.db"), 0o600, &bolt.Options{
		Timeout:        time.Second,
		NoSync:         !sync,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMsgs, bucketMeta, bucketKeys} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// OpenBboltBatch opens a bbolt store whose appends go through db.Batch.
func OpenBboltBatch(dir string, sync bool) (Store, error) {
	db, err := openBolt(dir, sync)
	if err != nil {
		return nil, err
	}
	return &boltStore{db: db, txs: make(map[int]struct{})}, nil
}

// OpenBboltCommitter opens a bbolt store whose appends go through the
// committer.
func OpenBboltCommitter(dir string, sync bool) (Store, error) {
	db, err := openBolt(dir, sync)
	if err != nil {
		return nil, err
	}
	s := &boltStore{db: db}
	s.c = newCommitter(func(ms []*Msg) error {
		return db.Update(func(tx *bolt.Tx) error {
			for _, m := range ms {
				if err := putMsg(tx, m); err != nil {
					return err
				}
			}
			return nil
		})
	})
	return s, nil
}

// putMsg writes m's records in tx. bbolt keeps the slices it is given
// until the transaction commits; m's are safe to keep, since its Append
// returns only after that.
func putMsg(tx *bolt.Tx, m *Msg) error {
	k := msgKey(make([]byte, 0, 12), m.Room, m.Seq)
	if err := tx.Bucket(bucketMsgs).Put(k, m.Body); err != nil {
		return err
	}
	if err := tx.Bucket(bucketMeta).Put(roomKey(make([]byte, 0, 4), m.Room), metaValue(make([]byte, 0, 16), m.Seq, m.Epoch)); err != nil {
		return err
	}
	if m.Key != nil {
		k := append(roomKey(make([]byte, 0, 4+len(m.Key)), m.Room), m.Key...)
		if err := tx.Bucket(bucketKeys).Put(k, binary.BigEndian.AppendUint64(nil, m.Seq)); err != nil {
			return err
		}
	}
	return nil
}

func (s *boltStore) Append(m *Msg) error {
	if s.c != nil {
		return s.c.Append(m)
	}
	return s.db.Batch(func(tx *bolt.Tx) error {
		s.mu.Lock()
		s.txs[tx.ID()] = struct{}{}
		s.mu.Unlock()
		return putMsg(tx, m)
	})
}

// scan visits, newest first, up to n messages of room with seq < below
// (below 0 means no bound).
func (s *boltStore) scan(room uint32, below uint64, n int, visit func(uint64, []byte)) error {
	tx, err := s.db.Begin(false)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var pb, sb [12]byte
	prefix := roomKey(pb[:0], room)
	var seek []byte
	if below == 0 {
		seek = roomKey(sb[:0], room+1)
	} else {
		seek = msgKey(sb[:0], room, below)
	}
	c := tx.Bucket(bucketMsgs).Cursor()
	k, v := c.Seek(seek)
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil && n > 0 && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
		visit(binary.BigEndian.Uint64(k[4:]), v)
		n--
	}
	return nil
}

func (s *boltStore) Newest(room uint32, n int, visit func(uint64, []byte)) error {
	return s.scan(room, 0, n, visit)
}

func (s *boltStore) Before(room uint32, seq uint64, n int, visit func(uint64, []byte)) error {
	if seq == 0 {
		return nil
	}
	return s.scan(room, seq, n, visit)
}

func (s *boltStore) Meta(room uint32) (seq, epoch uint64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		var kb [4]byte
		v := tx.Bucket(bucketMeta).Get(roomKey(kb[:0], room))
		if v == nil {
			return errors.New("no meta record")
		}
		seq, epoch, err = parseMeta(v)
		return err
	})
	return seq, epoch, err
}

func (s *boltStore) Commits() int64 {
	if s.c != nil {
		return s.c.commits.Load()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.txs))
}

func (s *boltStore) Close() error {
	if s.c != nil {
		s.c.Close()
	}
	return s.db.Close()
}
