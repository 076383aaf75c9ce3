package codec

import (
	"strconv"
	"unicode/utf8"
)

// The Append* functions append one server frame's JSON object to b. Field
// order is fixed and matches the examples in docs/protocol.md. Names (rooms, users,
// epochs) are restricted to characters that need no escaping; anything a
// client chose freely (ids, text, error messages) goes through AppendString.

func appendID(b []byte, id string) []byte {
	if id == "" {
		return b
	}
	b = append(b, `,"id":`...)
	return AppendString(b, id)
}

func appendKV(b []byte, key, val string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":`...)
	return AppendString(b, val)
}

func appendUint(b []byte, key string, v uint64) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":`...)
	return strconv.AppendUint(b, v, 10)
}

func appendRaws(b []byte, key string, raws [][]byte) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":[`...)
	for i, r := range raws {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, r...)
	}
	return append(b, ']')
}

// Message is a chat message about to be encoded for a room.
type Message struct {
	Room string
	Seq  uint64
	TS   int64
	From string
	To   string  // set for direct messages
	Text *string // nil when absent
	Data []byte  // raw JSON, verbatim; empty when absent
}

// AppendMessage appends a "message" frame.
func AppendMessage(b []byte, m *Message) []byte {
	b = append(b, `{"type":"message","room":`...)
	b = AppendString(b, m.Room)
	b = appendUint(b, "seq", m.Seq)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, m.TS, 10)
	b = appendKV(b, "from", m.From)
	if m.To != "" {
		b = appendKV(b, "to", m.To)
	}
	if m.Text != nil {
		b = appendKV(b, "text", *m.Text)
	}
	if len(m.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, m.Data...)
	}
	return append(b, '}')
}

// AppendAck appends an "ack" frame.
func AppendAck(b []byte, id, room string, seq uint64, ts int64) []byte {
	b = append(b, `{"type":"ack"`...)
	b = appendID(b, id)
	if room != "" {
		b = appendKV(b, "room", room)
		b = appendUint(b, "seq", seq)
		b = append(b, `,"ts":`...)
		b = strconv.AppendInt(b, ts, 10)
	}
	return append(b, '}')
}

// Joined describes a "joined" frame. Messages are stored message payloads.
type Joined struct {
	ID        string
	Room      string
	Seq       uint64
	Epoch     string
	Recovered bool
	Messages  [][]byte
}

// AppendJoined appends a "joined" frame.
func AppendJoined(b []byte, j *Joined) []byte {
	b = append(b, `{"type":"joined"`...)
	b = appendID(b, j.ID)
	b = appendKV(b, "room", j.Room)
	b = appendUint(b, "seq", j.Seq)
	b = appendKV(b, "epoch", j.Epoch)
	b = append(b, `,"recovered":`...)
	b = strconv.AppendBool(b, j.Recovered)
	b = appendRaws(b, "messages", j.Messages)
	return append(b, '}')
}

// AppendHistory appends a "history" frame.
func AppendHistory(b []byte, id, room string, msgs [][]byte) []byte {
	b = append(b, `{"type":"history"`...)
	b = appendID(b, id)
	b = appendKV(b, "room", room)
	b = appendRaws(b, "messages", msgs)
	return append(b, '}')
}

// AppendLeft appends a "left" frame.
func AppendLeft(b []byte, id, room string) []byte {
	b = append(b, `{"type":"left"`...)
	b = appendID(b, id)
	b = appendKV(b, "room", room)
	return append(b, '}')
}

// AppendPong appends a "pong" frame.
func AppendPong(b []byte, id string) []byte {
	b = append(b, `{"type":"pong"`...)
	b = appendID(b, id)
	return append(b, '}')
}

// AppendTyping appends a "typing" event.
func AppendTyping(b []byte, room, user string) []byte {
	b = append(b, `{"type":"typing","room":`...)
	b = AppendString(b, room)
	b = appendKV(b, "user", user)
	return append(b, '}')
}

// AppendRead appends a "read" event.
func AppendRead(b []byte, room, user string, seq uint64) []byte {
	b = append(b, `{"type":"read","room":`...)
	b = AppendString(b, room)
	b = appendKV(b, "user", user)
	b = appendUint(b, "seq", seq)
	return append(b, '}')
}

// AppendPresenceEvent appends a "presence" online/offline event.
func AppendPresenceEvent(b []byte, room, user string, online bool) []byte {
	b = append(b, `{"type":"presence","room":`...)
	b = AppendString(b, room)
	b = appendKV(b, "user", user)
	b = append(b, `,"online":`...)
	b = strconv.AppendBool(b, online)
	return append(b, '}')
}

// AppendPresenceList appends the reply to a "presence" request.
func AppendPresenceList(b []byte, id, room string, users []string, total int) []byte {
	b = append(b, `{"type":"presence"`...)
	b = appendID(b, id)
	b = appendKV(b, "room", room)
	b = append(b, `,"users":[`...)
	for i, u := range users {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, u)
	}
	b = append(b, ']')
	b = appendUint(b, "total", uint64(total))
	return append(b, '}')
}

// AppendError appends an "error" frame.
func AppendError(b []byte, id, code, message string) []byte {
	b = append(b, `{"type":"error"`...)
	b = appendID(b, id)
	b = appendKV(b, "code", code)
	b = appendKV(b, "message", message)
	return append(b, '}')
}

// Limits are the per-connection limits announced in "welcome".
type Limits struct {
	MaxMessageBytes int
	Rate            float64
	Burst           int
	MaxRooms        int
}

// AppendWelcome appends the "welcome" frame.
func AppendWelcome(b []byte, user, session, node string, heartbeatSec int, l Limits) []byte {
	b = append(b, `{"type":"welcome","user":`...)
	b = AppendString(b, user)
	b = appendKV(b, "session", session)
	b = appendKV(b, "node", node)
	b = appendUint(b, "heartbeat", uint64(heartbeatSec))
	b = append(b, `,"limits":{"max_message_bytes":`...)
	b = strconv.AppendInt(b, int64(l.MaxMessageBytes), 10)
	b = append(b, `,"rate":`...)
	b = strconv.AppendFloat(b, l.Rate, 'f', -1, 64)
	b = append(b, `,"burst":`...)
	b = strconv.AppendInt(b, int64(l.Burst), 10)
	b = append(b, `,"max_rooms":`...)
	b = strconv.AppendInt(b, int64(l.MaxRooms), 10)
	return append(b, "}}"...)
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, so
// the output is always valid JSON and valid UTF-8 (a text frame must be).
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript string
		// literals; escape them as encoding/json does.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
