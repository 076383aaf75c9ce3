package codec

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/valyala/bytebufferpool"
)

// headRoom is the largest server frame header: FIN/opcode, length marker and
// a 64-bit length (server frames are never masked).
const headRoom = 10

// Frame is a server text frame under construction in a pooled buffer. The
// JSON payload is appended after room reserved for the WebSocket header,
// so finishing the frame never copies the payload.
//
//	f := codec.NewFrame()
//	f.B = codec.AppendPong(f.B, id)
//	conn.Write(f.Bytes())
//	f.Release()
type Frame struct {
	// B holds headRoom reserved bytes followed by the payload. Append to it.
	B   []byte
	buf *bytebufferpool.ByteBuffer
}

var framePool bytebufferpool.Pool

// NewFrame returns an empty frame backed by a pooled buffer.
func NewFrame() *Frame {
	bb := framePool.Get()
	bb.B = append(bb.B[:0], make([]byte, headRoom)...)
	return &Frame{B: bb.B, buf: bb}
}

// Payload returns the JSON appended so far.
func (f *Frame) Payload() []byte { return f.B[headRoom:] }

// Bytes writes the header in front of the payload and returns the whole
// frame. It stays valid until Release.
func (f *Frame) Bytes() []byte {
	return finish(f.B)
}

// Release returns the buffer to the pool; f must not be used afterwards.
func (f *Frame) Release() {
	f.buf.B = f.B
	framePool.Put(f.buf)
	f.B, f.buf = nil, nil
}

// finish places the header for len(b)-headRoom payload bytes directly in
// front of the payload and returns the frame's bytes.
func finish(b []byte) []byte {
	n := len(b) - headRoom
	switch {
	case n < 126:
		b[headRoom-2] = 0x81
		b[headRoom-1] = byte(n)
		return b[headRoom-2:]
	case n <= 0xFFFF:
		b[headRoom-4] = 0x81
		b[headRoom-3] = 126
		binary.BigEndian.PutUint16(b[headRoom-2:], uint16(n))
		return b[headRoom-4:]
	default:
		b[0] = 0x81
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:headRoom], uint64(n))
		return b
	}
}

// HeaderLen returns the length of the header at the start of frame, so that
// frame[HeaderLen(frame):] is its payload.
func HeaderLen(frame []byte) int {
	switch frame[1] & 0x7F {
	case 126:
		return 4
	case 127:
		return 10
	default:
		return 2
	}
}

// Owned copies a finished frame out of f into an exact-size slice of its own,
// for bytes that outlive the pooled buffer (history and fan-out share them).
func (f *Frame) Owned() []byte {
	b := f.Bytes()
	out := make([]byte, len(b))
	copy(out, b)
	return out
}

// OwnedFrame builds a frame with build in a pooled buffer and returns a
// copy of its own (see Owned): for frames that outlive the call.
func OwnedFrame(build func(b []byte) []byte) []byte {
	f := NewFrame()
	f.B = build(f.B)
	out := f.Owned()
	f.Release()
	return out
}

// Control frames the gateway sends. Ping carries no payload; pong echoes
// the ping's; close frames carry a 2-byte code and a short reason.

// PingFrame is a server ping with an empty payload.
var PingFrame = []byte{0x89, 0x00}

// PongFrame returns the pong answering a ping with payload: the same
// application data (RFC 6455 5.5.3). Not to be confused with AppendPong,
// the JSON reply to a "ping" request. A control frame carries at most 125
// bytes, which the gateway checks before a ping is handled; a longer
// payload is cut to 125 all the same, since its length would not fit the
// 7-bit field and the bytes on the wire would stop being frames.
func PongFrame(payload string) []byte {
	if len(payload) > 125 {
		payload = payload[:125]
	}
	b := make([]byte, 2, 2+len(payload))
	b[0] = 0x8A
	b[1] = byte(len(payload))
	return append(b, payload...)
}

// Truncate cuts s to at most n bytes at a rune boundary, so that valid
// UTF-8 stays valid.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// CloseFrame returns a close frame with code and reason (truncated to fit
// the 125-byte control frame limit, at a rune boundary: the reason must stay
// valid UTF-8, RFC 6455 5.5.1).
func CloseFrame(code int, reason string) []byte {
	reason = Truncate(reason, 123)
	b := make([]byte, 4, 4+len(reason))
	b[0] = 0x88
	b[1] = byte(2 + len(reason))
	binary.BigEndian.PutUint16(b[2:], uint16(code))
	return append(b, reason...)
}
