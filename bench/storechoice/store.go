package storechoice

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
)

// Msg is one append: the message body under (Room, Seq), the room's
// metadata record set to (Seq, Epoch), and, when Key is not nil, an
// idempotency record Key -> Seq in the room. The three land in one atomic
// write.
type Msg struct {
	Room  uint32
	Seq   uint64
	Epoch uint64
	Body  []byte
	Key   []byte
}

// Store is what each candidate implements for the benchmarks.
type Store interface {
	// Append writes m atomically; in mode "always" it returns only once the
	// write is on disk (fsync). Safe for concurrent use; m and its slices
	// are not retained after it returns.
	Append(m *Msg) error
	// Newest visits the newest n messages of room, newest first.
	Newest(room uint32, n int, visit func(seq uint64, body []byte)) error
	// Before visits the n messages of room just below seq, newest first.
	Before(room uint32, seq uint64, n int, visit func(seq uint64, body []byte)) error
	// Meta returns the room's metadata record (for the tests).
	Meta(room uint32) (seq, epoch uint64, err error)
	// Commits is how many durable commits (fsyncs of the log, or write
	// transactions) the store has done since it opened; 0 when unknown.
	Commits() int64
	Close() error
}

// Candidate opens a Store in dir with fsync on (sync) or off.
type Candidate struct {
	Name string
	Open func(dir string, sync bool) (Store, error)
}

// Candidates is every store compared, in the order of the tables.
var Candidates = []Candidate{
	{"pebble", OpenPebble},
	{"bbolt", OpenBboltBatch},
	{"bbolt-committer", OpenBboltCommitter},
	{"sqlite", OpenSQLite},
}

// Key layout shared by the key-value stores: big-endian so that byte order
// is (room, seq) order and a room's messages are one contiguous range.

func roomKey(dst []byte, room uint32) []byte {
	return binary.BigEndian.AppendUint32(dst, room)
}

func msgKey(dst []byte, room uint32, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(roomKey(dst, room), seq)
}

func metaValue(dst []byte, seq, epoch uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(dst, seq), epoch)
}

func parseMeta(v []byte) (seq, epoch uint64, err error) {
	if len(v) != 16 {
		return 0, 0, fmt.Errorf("meta record of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), nil
}

// DirSize is the bytes on disk under dir (apparent sizes of regular files).
func DirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
