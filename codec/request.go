package codec

import (
	"errors"
	"fmt"

	json "github.com/goccy/go-json"
)

// MaxIDLen bounds request ids and idempotency keys, in bytes.
const MaxIDLen = 64

// Since is the resume point of a join: the last seq and epoch a client saw.
type Since struct {
	Seq   uint64 `json:"seq"`
	Epoch string `json:"epoch"`
}

// Request is one decoded client frame. Pointer fields distinguish "absent"
// from a zero value, because the protocol gives absence its own meaning
// (join without limit, history without before).
type Request struct {
	Type   string          `json:"type"`
	ID     string          `json:"id"`
	Room   string          `json:"room"`
	To     string          `json:"to"`
	Text   *string         `json:"text"`
	Data   json.RawMessage `json:"data"`
	Key    string          `json:"key"`
	Since  *Since          `json:"since"`
	Limit  *int            `json:"limit"`
	Before *uint64         `json:"before"`
	Seq    *uint64         `json:"seq"`
	Token  string          `json:"token"`
}

// ErrBadRequest is wrapped by every decoding error; its text is shown to the
// client in the error frame's message.
var ErrBadRequest = errors.New("bad request")

// Reset clears r for reuse without giving up its storage.
func (r *Request) Reset() {
	data := r.Data[:0]
	*r = Request{Data: data}
}

type idOnly struct {
	ID json.RawMessage `json:"id"`
}

// DecodeRequest decodes one client frame into r (which it resets first).
// Strings in r never alias b, so b may be reused after the call. On error,
// r.ID still holds the frame's id when one could be recovered, so the reply
// can carry it.
func DecodeRequest(b []byte, r *Request) error {
	r.Reset()
	if err := json.Unmarshal(b, r); err != nil {
		r.ID = recoverID(b)
		return fmt.Errorf("%w: malformed frame: %v", ErrBadRequest, shortErr(err))
	}
	// The id is checked first: every error reply may carry r.ID.
	if len(r.ID) > MaxIDLen {
		r.ID = ""
		return fmt.Errorf("%w: id longer than %d bytes", ErrBadRequest, MaxIDLen)
	}
	if r.Type == "" {
		return fmt.Errorf("%w: missing string field \"type\"", ErrBadRequest)
	}
	if len(r.Key) > MaxIDLen {
		return fmt.Errorf("%w: key longer than %d bytes", ErrBadRequest, MaxIDLen)
	}
	if string(r.Data) == "null" {
		r.Data = r.Data[:0]
	}
	return nil
}

// recoverID fishes a string id out of a frame that failed to decode as a
// whole (say "limit" had the wrong type), so the error can still be matched
// to its request.
func recoverID(b []byte) string {
	var o idOnly
	if json.Unmarshal(b, &o) != nil || len(o.ID) < 2 || o.ID[0] != '"' {
		return ""
	}
	var s string
	if json.Unmarshal(o.ID, &s) != nil || len(s) > MaxIDLen {
		return ""
	}
	return s
}

// shortErr keeps decoder messages to one readable line.
func shortErr(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}
