package history

import (
	"errors"
	"time"

	"github.com/chatgw/gateway/codec"
)

// KeyTTL is how long an idempotency key is remembered (docs/protocol.md,
// "Idempotency keys").
const KeyTTL = 2 * time.Minute

// ErrUnavailable is returned when the backing store cannot be reached.
var ErrUnavailable = errors.New("history: store unavailable")

// Message is one stored message: its seq, its timestamp and the complete
// WebSocket frame that carries it, shared read-only by history replies and
// every live delivery.
type Message struct {
	Seq   uint64
	TS    int64
	Frame []byte
}

// Payload returns the message's JSON object, without the frame header.
func (m *Message) Payload() []byte { return m.Frame[codec.HeaderLen(m.Frame):] }

// Ack is what the sender of a stored message is told.
type Ack struct {
	Room string
	Seq  uint64
	TS   int64
}

// Page is what Range returns.
type Page struct {
	Messages []Message // ascending by seq
	Latest   uint64    // the room's latest seq
	Epoch    string    // the room's epoch
	Complete bool      // every message with after < seq < before was held and returned
}

// Encoder builds the frame of a message once its seq and ts are known.
type Encoder func(seq uint64, ts int64) []byte

// Store keeps room histories.
//
// Seq is per room, starts at 1 and grows by exactly 1 per appended message.
// Epoch names one life of a room's history and changes only when that
// history is lost. Callers serialise Append per room with any reads that must
// agree with it (the hub's room lock); implementations are safe for
// concurrent use across rooms.
type Store interface {
	// Append stores the message built by enc at the room's next seq, with ts
	// the current Unix time in milliseconds. When key is not empty and user
	// had a message with that key accepted within KeyTTL, nothing is stored,
	// dup is true and ack is the original one.
	Append(room, user, key string, enc Encoder) (msg Message, ack Ack, dup bool, err error)

	// Range returns the newest limit messages of room with
	// after < seq < before (Complete is false when limit cut the answer
	// short). With limit <= 0 it returns no messages: a query for Latest
	// and Epoch.
	Range(room string, after, before uint64, limit int) (Page, error)

	// Close releases the store's resources.
	Close() error
}

// AsyncStore is a Store whose appends become durable later (Disk):
// AppendAsync assigns the seq and ts at once, in call order per room, and
// calls done once the message is stored (or failed), in the same order.
type AsyncStore interface {
	Store
	AppendAsync(room, user, key string, enc Encoder, done func(msg Message, ack Ack, dup bool, err error))
}
