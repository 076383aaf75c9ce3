package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// wsHeader parses an RFC 6455 frame header independently of HeaderLen.
type wsHeader struct {
	fin     bool
	rsv     byte
	opcode  byte
	masked  bool
	length  uint64
	hdrLen  int
	minimal bool // the length uses the fewest bytes possible (RFC 6455 5.2)
}

func parseWSHeader(t *testing.T, b []byte) wsHeader {
	t.Helper()
	if len(b) < 2 {
		t.Fatalf("frame of %d bytes has no header", len(b))
	}
	h := wsHeader{
		fin:    b[0]&0x80 != 0,
		rsv:    b[0] & 0x70,
		opcode: b[0] & 0x0F,
		masked: b[1]&0x80 != 0,
	}
	switch l := b[1] & 0x7F; l {
	case 126:
		if len(b) < 4 {
			t.Fatalf("truncated 16-bit length")
		}
		h.length, h.hdrLen = uint64(binary.BigEndian.Uint16(b[2:4])), 4
		h.minimal = h.length >= 126
	case 127:
		if len(b) < 10 {
			t.Fatalf("truncated 64-bit length")
		}
		h.length, h.hdrLen = binary.BigEndian.Uint64(b[2:10]), 10
		h.minimal = h.length > 0xFFFF && h.length>>63 == 0
	default:
		h.length, h.hdrLen, h.minimal = uint64(l), 2, true
	}
	if h.masked {
		h.hdrLen += 4
	}
	return h
}

func checkTextFrame(t *testing.T, frame, payload []byte) {
	t.Helper()
	h := parseWSHeader(t, frame)
	if !h.fin || h.rsv != 0 || h.opcode != 0x1 || h.masked {
		t.Fatalf("header % x: want FIN text frame, no RSV, unmasked", frame[:min(len(frame), 10)])
	}
	if frame[0] != 0x81 {
		t.Fatalf("first byte 0x%02x, want 0x81", frame[0])
	}
	if !h.minimal {
		t.Fatalf("length %d not minimally encoded: % x", h.length, frame[:h.hdrLen])
	}
	if h.length != uint64(len(payload)) || len(frame) != h.hdrLen+len(payload) {
		t.Fatalf("header says %d bytes after %d, frame has %d, payload %d", h.length, h.hdrLen, len(frame), len(payload))
	}
	if got := HeaderLen(frame); got != h.hdrLen {
		t.Fatalf("HeaderLen = %d, want %d", got, h.hdrLen)
	}
	if !bytes.Equal(frame[HeaderLen(frame):], payload) {
		t.Fatalf("payload mismatch")
	}
}

func payloadOf(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = 'a' + byte(i%26)
	}
	return p
}

var frameSizes = []int{0, 1, 2, 125, 126, 127, 65535, 65536, 70000}

func TestFrameLengths(t *testing.T) {
	for _, n := range frameSizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			payload := payloadOf(n)
			f := NewFrame()
			if len(f.Payload()) != 0 {
				t.Fatalf("new frame has %d payload bytes", len(f.Payload()))
			}
			f.B = append(f.B, payload...)
			if !bytes.Equal(f.Payload(), payload) {
				t.Fatal("Payload() differs from what was appended")
			}
			frame := f.Bytes()
			checkTextFrame(t, frame, payload)

			switch {
			case n < 126:
				if !bytes.Equal(frame[:2], []byte{0x81, byte(n)}) {
					t.Fatalf("header % x", frame[:2])
				}
			case n <= 65535:
				if !bytes.Equal(frame[:4], []byte{0x81, 126, byte(n >> 8), byte(n)}) {
					t.Fatalf("header % x", frame[:4])
				}
			default:
				want := []byte{0x81, 127, 0, 0, 0, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
				if !bytes.Equal(frame[:10], want) {
					t.Fatalf("header % x, want % x", frame[:10], want)
				}
			}

			// Bytes is idempotent.
			if again := f.Bytes(); !bytes.Equal(again, frame) {
				t.Fatal("second Bytes() differs")
			}

			owned := f.Owned()
			if !bytes.Equal(owned, frame) {
				t.Fatal("Owned() differs from Bytes()")
			}
			if len(owned) != cap(owned) {
				t.Errorf("Owned() len %d cap %d, want exact size", len(owned), cap(owned))
			}
			// independent copies, both ways
			snapshot := append([]byte(nil), owned...)
			for i := range f.B {
				f.B[i] ^= 0xFF
			}
			if !bytes.Equal(owned, snapshot) {
				t.Fatal("Owned() shares memory with the frame buffer")
			}
			for i := range f.B {
				f.B[i] ^= 0xFF
			}
			for i := range owned {
				owned[i] = 0
			}
			checkTextFrame(t, f.Bytes(), payload)
			f.Release()
			if f.B != nil {
				t.Error("Release left B set")
			}
			// after Release, the owned bytes are still the frame
			checkTextFrame(t, snapshot, payload)
		})
	}
}

// A frame that grows after Bytes gets a fresh header: a frame crossing the
// 7-bit/16-bit/64-bit boundaries must not keep a stale header.
func TestFrameGrowsAcrossLengthForms(t *testing.T) {
	f := NewFrame()
	defer f.Release()
	var payload []byte
	for _, n := range []int{0, 125, 126, 65535, 65536, 70000} {
		add := payloadOf(n - len(payload))
		payload = append(payload, add...)
		f.B = append(f.B, add...)
		checkTextFrame(t, f.Bytes(), payload)
	}
}

// Pooled buffers come back clean: a small frame after a big one has the
// right header and no leftover payload.
func TestFramePoolReuse(t *testing.T) {
	for i := 0; i < 50; i++ {
		big := NewFrame()
		big.B = append(big.B, payloadOf(70000)...)
		_ = big.Bytes()
		big.Release()

		mid := NewFrame()
		mid.B = append(mid.B, payloadOf(300)...)
		_ = mid.Bytes()
		mid.Release()

		f := NewFrame()
		if len(f.B) != headRoom || len(f.Payload()) != 0 {
			t.Fatalf("reused frame has len %d", len(f.B))
		}
		for j, c := range f.B {
			if c != 0 {
				t.Fatalf("reused frame has stale byte 0x%02x at %d", c, j)
			}
		}
		f.B = AppendPong(f.B, "8")
		want := append([]byte{0x81, byte(len(`{"type":"pong","id":"8"}`))}, `{"type":"pong","id":"8"}`...)
		if got := f.Owned(); !bytes.Equal(got, want) {
			t.Fatalf("got % x\nwant % x", got, want)
		}
		f.Release()
	}
}

func TestFrameWithEncodedPayload(t *testing.T) {
	f := NewFrame()
	defer f.Release()
	f.B = AppendMessage(f.B, &Message{Room: "general", Seq: 58, TS: 1763779200123, From: "alice", Text: strp("hi")})
	want := `{"type":"message","room":"general","seq":58,"ts":1763779200123,"from":"alice","text":"hi"}`
	if string(f.Payload()) != want {
		t.Fatalf("payload %s", f.Payload())
	}
	checkTextFrame(t, f.Bytes(), []byte(want))
}

func TestHeaderLen(t *testing.T) {
	tests := []struct {
		frame []byte
		want  int
	}{
		{[]byte{0x81, 0x00}, 2},
		{[]byte{0x81, 125}, 2},
		{[]byte{0x81, 126, 0, 126}, 4},
		{[]byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}, 10},
		{[]byte{0x89, 0x00}, 2},
		{[]byte{0x88, 0x02, 0x03, 0xe8}, 2},
	}
	for _, tc := range tests {
		if got := HeaderLen(tc.frame); got != tc.want {
			t.Errorf("HeaderLen(% x) = %d, want %d", tc.frame, got, tc.want)
		}
	}
}

func TestPingFrame(t *testing.T) {
	if !bytes.Equal(PingFrame, []byte{0x89, 0x00}) {
		t.Fatalf("PingFrame = % x", PingFrame)
	}
	h := parseWSHeader(t, PingFrame)
	if !h.fin || h.opcode != 0x9 || h.masked || h.length != 0 {
		t.Fatalf("PingFrame header %+v", h)
	}
}

func TestPongFrame(t *testing.T) {
	tests := []struct {
		payload string
		want    []byte
	}{
		{"", []byte{0x8A, 0x00}},
		{"hi", []byte{0x8A, 0x02, 'h', 'i'}},
		{"\x00\xff", []byte{0x8A, 0x02, 0x00, 0xFF}}, // binary data is echoed as is
		{strings.Repeat("p", 125), append([]byte{0x8A, 125}, strings.Repeat("p", 125)...)},
		// Never sent (the frame guard closes on a ping over 125 bytes),
		// but a longer payload must still give one well-formed frame.
		{strings.Repeat("p", 126), append([]byte{0x8A, 125}, strings.Repeat("p", 125)...)},
		{strings.Repeat("p", 1000), append([]byte{0x8A, 125}, strings.Repeat("p", 125)...)},
	}
	for _, tc := range tests {
		b := PongFrame(tc.payload)
		if !bytes.Equal(b, tc.want) {
			t.Errorf("PongFrame(%.20q) = % x, want % x", tc.payload, b, tc.want)
			continue
		}
		h := parseWSHeader(t, b)
		if !h.fin || h.opcode != 0xA || h.masked || h.hdrLen != 2 || len(b) != 2+int(h.length) {
			t.Errorf("PongFrame(%.20q): header %+v", tc.payload, h)
		}
	}
	// Each pong has its own bytes: the client's write queue may hold one
	// while the next ping is answered.
	a, b := PongFrame("a"), PongFrame("b")
	if a[2] != 'a' || b[2] != 'b' {
		t.Errorf("PongFrame results share bytes: % x, % x", a, b)
	}
}

func TestCloseFrame(t *testing.T) {
	tests := []struct {
		code       int
		reason     string
		wantReason string
	}{
		{1000, "", ""},
		{1000, "heartbeat timeout", "heartbeat timeout"},
		{1001, "node draining; reconnect elsewhere", "node draining; reconnect elsewhere"},
		{1002, "protocol error", "protocol error"},
		{1007, "invalid UTF-8 in text frame", "invalid UTF-8 in text frame"},
		{1009, "x", "x"},
		{1011, "é", "é"},
		{4000, "token expired", "token expired"},
		{4001, "slow consumer", "slow consumer"},
		{4002, "repeated rate limit violations", "repeated rate limit violations"},
		{0xFFFF, "max", "max"},
		{3000, strings.Repeat("r", 122), strings.Repeat("r", 122)},
		{3000, strings.Repeat("r", 123), strings.Repeat("r", 123)},
		{3000, strings.Repeat("r", 124), strings.Repeat("r", 123)},
		{3000, strings.Repeat("r", 1000), strings.Repeat("r", 123)},
		// Truncation must not split a UTF-8 sequence: the reason of a close
		// frame must be valid UTF-8 (RFC 6455 5.5.1), or the peer fails
		// the connection with 1007.
		{3000, strings.Repeat("é", 70), strings.Repeat("é", 61)},             // 2-byte runes: 122 bytes
		{3000, strings.Repeat("€", 50), strings.Repeat("€", 41)},             // 3-byte runes: 123 bytes
		{3000, "r" + strings.Repeat("€", 50), "r" + strings.Repeat("€", 40)}, // 121 bytes
		{3000, strings.Repeat("😀", 40), strings.Repeat("😀", 30)},             // 4-byte runes: 120 bytes
		{3000, strings.Repeat("r", 122) + "é", strings.Repeat("r", 122)},
		{3000, strings.Repeat("r", 121) + "é", strings.Repeat("r", 121) + "é"},
	}
	for _, tc := range tests {
		b := CloseFrame(tc.code, tc.reason)
		h := parseWSHeader(t, b)
		if b[0] != 0x88 || !h.fin || h.opcode != 0x8 || h.masked {
			t.Errorf("CloseFrame(%d, %.20q): header % x", tc.code, tc.reason, b[:2])
			continue
		}
		if h.hdrLen != 2 || h.length > 125 || len(b) != 2+int(h.length) {
			t.Errorf("CloseFrame(%d, %.20q): %d-byte payload in a %d-byte frame, want <= 125 in a 7-bit length",
				tc.code, tc.reason, h.length, len(b))
			continue
		}
		if got := int(binary.BigEndian.Uint16(b[2:4])); got != tc.code || b[2] != byte(tc.code>>8) || b[3] != byte(tc.code) {
			t.Errorf("CloseFrame(%d): code bytes % x", tc.code, b[2:4])
		}
		reason := string(b[4:])
		if reason != tc.wantReason {
			t.Errorf("CloseFrame(%d, %q): reason %q (%d bytes), want %q", tc.code, tc.reason, reason, len(reason), tc.wantReason)
		}
		if !utf8.ValidString(reason) {
			t.Errorf("CloseFrame(%d, %q): reason is not valid UTF-8: %q", tc.code, tc.reason, reason)
		}
	}
}
