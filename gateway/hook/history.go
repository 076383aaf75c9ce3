package hook

import (
	"fmt"
	"math"

	"github.com/goccy/go-json"

	"github.com/chatgw/gateway/gateway/history"
)

// DecodeMessage reads a stored message's payload (history.Message.Payload,
// a protocol "message" frame's JSON object) into a Message.
func DecodeMessage(payload []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(payload, &m); err != nil {
		return Message{}, fmt.Errorf("hook: stored message: %w", err)
	}
	return m, nil
}

// HistoryRange is Source.Range over a history store: up to limit messages
// of room with seq > after, oldest first.
//
// history.Store.Range returns the newest messages of a window, so the
// window asked for is exactly limit seqs wide. When history has already
// dropped that whole window (the notifier fell behind its retention), the
// oldest seq still held is found by bisection on Page.Complete, so that
// what is still held is read rather than skipped.
func HistoryRange(st history.Store, room string, after uint64, limit int) ([]Message, error) {
	if limit <= 0 {
		return nil, nil
	}
	page, err := st.Range(room, after, window(after, limit), limit)
	if err != nil {
		return nil, err
	}
	if len(page.Messages) == 0 && !page.Complete && page.Latest > after {
		// Complete(x) for (x, latest]: true once x+1 is at or past the
		// oldest held seq; false at after, true at latest.
		lo, hi := after, page.Latest
		for lo < hi {
			mid := lo + (hi-lo)/2
			p, err := st.Range(room, mid, page.Latest+1, 0)
			if err != nil {
				return nil, err
			}
			if p.Complete {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		if page, err = st.Range(room, lo, window(lo, limit), limit); err != nil {
			return nil, err
		}
	}
	out := make([]Message, 0, len(page.Messages))
	for i := range page.Messages {
		m, err := DecodeMessage(page.Messages[i].Payload())
		if err != nil {
			return nil, fmt.Errorf("hook: %s seq %d: %w", room, page.Messages[i].Seq, err)
		}
		// The store's seq and ts are authoritative; the payload's agree.
		m.Seq, m.TS = page.Messages[i].Seq, page.Messages[i].TS
		if m.Room == "" {
			m.Room = room
		}
		out = append(out, m)
	}
	return out, nil
}

// window is the exclusive upper bound of the limit seqs after after.
func window(after uint64, limit int) uint64 {
	if after > math.MaxUint64-uint64(limit)-1 {
		return math.MaxUint64
	}
	return after + uint64(limit) + 1
}

// HistoryRangeEpoch is HistoryRange that also returns the epoch of the
// room's history the messages were read from, for a Source that saves a
// cursor in the epoch of what it notified: a room lost and started over
// while a batch was retried must not have its new seqs skipped.
func HistoryRangeEpoch(st history.Store, room string, after uint64, limit int) ([]Message, string, error) {
	e := &epochNoter{Store: st}
	msgs, err := HistoryRange(e, room, after, limit)
	return msgs, e.epoch, err
}

// epochNoter is a store whose Range notes the epoch of the page it read;
// HistoryRange's last Range is the one its messages come from.
type epochNoter struct {
	history.Store
	epoch string
}

func (e *epochNoter) Range(room string, after, before uint64, limit int) (history.Page, error) {
	p, err := e.Store.Range(room, after, before, limit)
	if err == nil {
		e.epoch = p.Epoch
	}
	return p, err
}
