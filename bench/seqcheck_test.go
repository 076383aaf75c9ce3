package bench

import (
	"fmt"
	"testing"
	"time"
)

// The harness's own bookkeeping: gaps and duplicates by seq per member,
// deliveries counted once, other rooms and errors told apart.
func TestFanLoadCountsGapsAndDuplicates(t *testing.T) {
	f := &fanLoad{}
	f.resetHist()
	c := &Conn{ID: 1, User: "u1", Room: "r"}
	msg := func(room string, seq int) []byte {
		return []byte(fmt.Sprintf(`{"type":"message","room":"%s","seq":%d,"ts":1,"from":"p","text":"b%019d"}`,
			room, seq, time.Now().UnixNano()))
	}
	for _, seq := range []int{1, 2, 3, 3, 2, 6, 7, 9} { // dup 3, dup 2, gap 4-5, gap 8
		f.onText(c, msg("r", seq))
	}
	f.onText(c, msg("@u1", 1)) // the inbox: not this load's room
	f.onText(c, msg("r2", 10)) // a room whose name extends "r"
	f.onText(c, []byte(`{"type":"error","code":"rate_limited","message":"x"}`))
	f.onText(c, []byte(`{"type":"ack","id":"1"}`))
	if got := f.delivered.Load(); got != 6 {
		t.Errorf("delivered %d, want 6 (1,2,3,6,7,9)", got)
	}
	if got := f.dups.Load(); got != 2 {
		t.Errorf("duplicates %d, want 2", got)
	}
	if got := f.gaps.Load(); got != 3 {
		t.Errorf("gaps %d, want 3 (4, 5, 8)", got)
	}
	if got := f.errs.Load(); got != 1 {
		t.Errorf("errors %d, want 1", got)
	}
	if c.LastSeq != 9 {
		t.Errorf("LastSeq %d, want 9", c.LastSeq)
	}
	var n int64
	for _, h := range f.hist {
		n += h.Count()
	}
	if n != 6 {
		t.Errorf("latencies recorded %d, want 6", n)
	}
}

func TestFanLoadDMCountsOnlyReceived(t *testing.T) {
	f := &fanLoad{dm: true}
	f.resetHist()
	c := &Conn{ID: 2, User: "a", Room: "@a"}
	f.onText(c, []byte(`{"type":"message","room":"@a","seq":1,"ts":1,"from":"b","to":"a","text":"b0000000000000000001"}`))
	f.onText(c, []byte(`{"type":"message","room":"@a","seq":2,"ts":1,"from":"a","to":"b","text":"b0000000000000000001"}`))
	f.onText(c, []byte(`{"type":"message","room":"@a","seq":4,"ts":1,"from":"b","to":"a","text":"b0000000000000000001"}`))
	if f.delivered.Load() != 2 || f.gaps.Load() != 1 || c.LastSeq != 4 {
		t.Fatalf("delivered %d gaps %d last %d; want 2, 1, 4 (own copies are seq-checked, not counted)",
			f.delivered.Load(), f.gaps.Load(), c.LastSeq)
	}
}

// The client parser must reassemble frames split anywhere across reads.
func TestParseSplitFrames(t *testing.T) {
	var frames [][]byte
	var stream []byte
	for _, n := range []int{0, 5, 125, 126, 300, 65535, 65536, 70000} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte('a' + i%26)
		}
		frames = append(frames, p)
		switch {
		case n < 126:
			stream = append(stream, 0x81, byte(n))
		case n <= 0xFFFF:
			stream = append(stream, 0x81, 126, byte(n>>8), byte(n))
		default:
			stream = append(stream, 0x81, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		}
		stream = append(stream, p...)
	}
	for _, chunk := range []int{1, 2, 3, 7, 1000, len(stream)} {
		var got [][]byte
		e := &Engine{OnText: func(_ *Conn, p []byte) { got = append(got, append([]byte(nil), p...)) }}
		c := &Conn{}
		for i := 0; i < len(stream); i += chunk {
			e.parse(c, stream[i:min(i+chunk, len(stream))])
		}
		if len(got) != len(frames) {
			t.Fatalf("chunk %d: %d frames, want %d", chunk, len(got), len(frames))
		}
		for i := range frames {
			if string(got[i]) != string(frames[i]) {
				t.Fatalf("chunk %d: frame %d differs (len %d, want %d)", chunk, i, len(got[i]), len(frames[i]))
			}
		}
	}
}

func TestMaskRoundTrip(t *testing.T) {
	for _, n := range []int{0, 10, 125, 126, 70000} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i)
		}
		f := Mask(p)
		h := 2
		switch {
		case n >= 126 && n <= 0xFFFF:
			h = 4
		case n > 0xFFFF:
			h = 10
		}
		if f[0] != 0x81 || f[1]&0x80 == 0 {
			t.Fatalf("len %d: header % x is not a masked text frame", n, f[:2])
		}
		key := f[h : h+4]
		body := f[h+4:]
		for i := range body {
			if body[i]^key[i&3] != p[i] {
				t.Fatalf("len %d: byte %d does not unmask", n, i)
			}
		}
	}
}
