package history

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Disk is the durable history store of a node alone: every room's
// messages, its epoch and the idempotency keys live in an embedded
// database under a directory, and survive restarts and crashes.
//
// Appends are made durable in batches by one committer goroutine (group
// commit): AppendAsync assigns the seq and ts at once, in the caller's
// order per room, and calls done once the message is on disk per the sync
// mode, in the order of the appends. So the caller (the node's backend)
// holds no lock while the disk works, every send waiting at the same time
// shares one fsync, and the fan-out that done starts comes in seq order.
// Reads (Range) see durable messages only.
type Disk struct {
	cfg DiskConfig
	db  *kv

	epoch string // the store's: rooms never written report it

	shards [64]diskShard
	keys   [64]keyShard

	queue chan *pending
	stop  chan struct{}
	done  sync.WaitGroup

	syncs    atomic.Int64 // commits made durable with an fsync
	batched  atomic.Int64 // appends committed
	closed   atomic.Bool
	closeErr error
	once     sync.Once
}

// SyncMode says when an append is durable (DiskConfig.Sync).
type SyncMode int

const (
	// SyncAlways: fsync before the ack; appends waiting together share it.
	SyncAlways SyncMode = iota
	// SyncInterval: acked once written to the operating system; fsync at
	// most every SyncEvery. A machine crash (not a process kill) may lose
	// the last SyncEvery of acknowledged messages.
	SyncInterval
	// SyncNone: never fsync; the operating system writes when it likes.
	// A machine crash may lose any acknowledged message not yet written.
	SyncNone
)

// ParseSyncMode reads --history-sync: always, interval or none.
func ParseSyncMode(s string) (SyncMode, error) {
	switch s {
	case "always":
		return SyncAlways, nil
	case "interval":
		return SyncInterval, nil
	case "none":
		return SyncNone, nil
	}
	return 0, fmt.Errorf("history sync %q: want always, interval or none", s)
}

// DiskConfig configures a Disk store.
type DiskConfig struct {
	Dir       string
	Sync      SyncMode      // default SyncAlways
	SyncEvery time.Duration // SyncInterval's period (default 100 ms)
	// Retention: messages older than MaxAge, and beyond the newest
	// MaxCount of their room, are removed in the background; over MaxDisk
	// bytes of database files, the oldest messages of all rooms go first.
	// 0: no such limit.
	MaxAge   time.Duration
	MaxCount int
	MaxDisk  int64
	// SweepEvery: how often retention runs (default 1 minute).
	SweepEvery time.Duration
	// QueueLen bounds appends waiting for the committer; beyond it Append
	// fails with ErrUnavailable (default 65536).
	QueueLen int
	Now      func() time.Time // clock (tests); default time.Now
}

// diskShard holds the state of its rooms in memory: where each room's seq
// stands and what is durable.
type diskShard struct {
	mu    sync.Mutex
	rooms map[string]*diskRoom
}

// keyShard holds the idempotency keys accepted within KeyTTL (pending
// included), by user + "\x00" + key. Lock order: diskShard, then keyShard.
type keyShard struct {
	mu   sync.Mutex
	keys map[string]keyAck
}

type diskRoom struct {
	next    uint64 // the last seq assigned (durable or not)
	latest  uint64 // the last seq durable
	oldest  uint64 // the oldest seq retained (latest+1 when none)
	epoch   string
	pending int // appends assigned and not yet durable
}

// keyAck is an idempotency key's original ack, its expiry (Unix ns), and,
// while the message is not durable yet, the append that stores it.
type keyAck struct {
	ack     Ack
	expires int64
	pend    *pending
}

// pending is one append on its way to disk.
type pending struct {
	room  string
	user  string
	key   string
	msg   Message
	first bool     // the room's first message: its meta is written too
	dupOf *pending // a repeated key whose original is still pending: answered after it
	done  func(Message, Ack, bool, error)
}

// errClosed is returned by appends after Close.
var errClosed = errors.New("history: store closed")

func (d *Disk) shard(room string) *diskShard { return &d.shards[fnv(room)%uint32(len(d.shards))] }

func (d *Disk) keyShard(user string) *keyShard { return &d.keys[fnv(user)%uint32(len(d.keys))] }

func fnv(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// seqKey is a message's key: "m" room 0x00 seq (big-endian), so that a
// room's messages sort by seq and a range of them is one scan.
func seqKey(room string, seq uint64) []byte {
	k := make([]byte, 0, 1+len(room)+1+8)
	k = append(k, 'm')
	k = append(k, room...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

// metaKey is a room's record: its epoch.
func metaKey(room string) []byte { return append([]byte{'r'}, room...) }

// idemKey is an idempotency key's record.
func idemKey(user, key string) []byte {
	k := append([]byte{'k'}, user...)
	k = append(k, 0)
	return append(k, key...)
}

// storeEpochKey holds the store's own epoch.
var storeEpochKey = []byte("e")
