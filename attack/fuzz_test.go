package attack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatgw/gateway/internal/gatewaytest"
)

// shared is the one gateway FuzzRawStream attacks for the whole run: a
// process per input would measure process start-up, not the parser. Each
// fuzz worker process has its own; TestMain kills it.
var shared struct {
	once   sync.Once
	p      *proc
	err    error
	g0     float64 // go_goroutines once warm
	logOff int     // log checked up to here
}

func sharedGateway(t testing.TB) *proc {
	shared.once.Do(func() {
		bin := gatewaytest.Build(t, "../cmd/gateway", "")
		p, err := launch(bin, nil)
		if err != nil {
			shared.err = err
			return
		}
		// One client first, so that whatever starts lazily is running
		// before the goroutine baseline is taken.
		if err := p.tryWelcome(); err != nil {
			p.kill()
			shared.err = err
			return
		}
		time.Sleep(100 * time.Millisecond)
		g, ok, err := p.metric("go_goroutines")
		if err != nil || !ok {
			p.kill()
			shared.err = err
			if err == nil {
				shared.err = errNoGoroutines
			}
			return
		}
		shared.p, shared.g0 = p, g
	})
	if shared.p == nil {
		t.Fatalf("shared gateway did not start: %v", shared.err)
	}
	return shared.p
}

var errNoGoroutines = errors.New("the node exports no go_goroutines")

func stopShared() {
	if shared.p != nil {
		shared.p.kill()
	}
}

// goroutineSlack is how far go_goroutines may stay above its warm value
// once the fuzz connections are closed: the scrape's own handler, a timer.
const goroutineSlack = 8

// Record layout of a fuzz input: a control byte c, then its fields.
//
//	c&0x0f opcode, c&0x10 FIN, c&0x20 MASK, c>>6 the record's form:
//	0: a length byte n, then n payload bytes (a frame that tells the truth)
//	1: a 16-bit claimed length (126 form), then up to 64 payload bytes
//	2: a 64-bit claimed length (127 form), then up to 64 payload bytes
//	3: a length byte n, then n bytes written as they are (no frame)
const (
	fFin  = 0x10
	fMask = 0x20
	f16   = 0x40
	f64   = 0x80
	fRaw  = 0xC0
)

// fuzzChunks decodes in into the chunks written on a connection; with
// forceMask every frame is masked, so the same input also reaches the
// parser past the mask check.
func fuzzChunks(in []byte, forceMask bool) [][]byte {
	var out [][]byte
	take := func(n int) []byte {
		n = min(n, len(in))
		b := in[:n]
		in = in[n:]
		return b
	}
	for len(in) > 0 {
		c := take(1)[0]
		masked := c&fMask != 0 || forceMask
		b0 := c & 0x0f
		if c&fFin != 0 {
			b0 |= 0x80
		}
		var m byte
		if masked {
			m = 0x80
		}
		var h []byte
		var claim uint64
		switch c & 0xC0 {
		case 0:
			l := take(1)
			if len(l) == 0 {
				return out
			}
			claim = uint64(l[0])
			h = []byte{b0, m | (l[0] & 0x7f)}
			if l[0] >= 126 {
				h = binary.BigEndian.AppendUint16([]byte{b0, m | 126}, uint16(l[0]))
			}
		case f16:
			claim = uint64(binary.BigEndian.Uint16(append(take(2), 0, 0)))
			h = binary.BigEndian.AppendUint16([]byte{b0, m | 126}, uint16(claim))
		case f64:
			claim = binary.BigEndian.Uint64(append(take(8), 0, 0, 0, 0, 0, 0, 0, 0))
			h = binary.BigEndian.AppendUint64([]byte{b0, m | 127}, claim)
		default:
			l := take(1)
			if len(l) > 0 {
				out = append(out, append([]byte(nil), take(int(l[0]))...))
			}
			continue
		}
		n := claim
		if c&0xC0 != 0 {
			n = min(n, 64)
		}
		p := append([]byte(nil), take(int(n))...)
		if masked {
			h = append(h, maskKey[:]...)
			maskAt(p, 0)
		}
		out = append(out, append(h, p...))
	}
	return out
}

// Seed encoders.
func honest(c byte, payload []byte) []byte { return append([]byte{c, byte(len(payload))}, payload...) }
func claim16(c byte, n uint16, p []byte) []byte {
	return append(binary.BigEndian.AppendUint16([]byte{c | f16}, n), p...)
}
func claim64(c byte, n uint64, p []byte) []byte {
	return append(binary.BigEndian.AppendUint64([]byte{c | f64}, n), p...)
}
func raw(b []byte) []byte { return append([]byte{fRaw, byte(len(b))}, b...) }

func fuzzSeeds() [][]byte {
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	text := func(s string) []byte { return honest(fFin|fMask|opText, []byte(s)) }
	seeds := [][]byte{
		cat(text(`{"type":"join","id":"1","room":"general"}`), text(`{"type":"send","id":"2","room":"general","text":"hi"}`)),
		honest(fFin|opText, []byte(`{"type":"ping"}`)), // unmasked
		honest(fFin|fMask|opClose, closePayload(1000, "bye\xff\xfe")),
		cat(honest(fMask|opText, []byte("0123456789")), claim64(fFin|fMask|opCont, maxLength, []byte("jjjj"))),
		claim64(fFin|fMask|opText, maxLength, []byte("j")),
		claim64(fFin|fMask|opText, 1<<63|5, []byte("hello")), // most significant bit set
		claim16(fFin|fMask|opText, 5, []byte("hello")),       // length not in its shortest form
		claim16(fFin|fMask|opText, 17000, []byte("{")),       // over --max-message-bytes, never sent
		honest(fFin|fMask|opClose, closePayload(1000, "")),
		bytes.Repeat(text(""), 50),
		bytes.Repeat(honest(fFin|fMask|opPong, bytes.Repeat([]byte{'p'}, 125)), 60),
		bytes.Repeat(honest(fFin|fMask|opPing, bytes.Repeat([]byte{'p'}, 125)), 60),
		raw([]byte("GET /client.js HTTP/1.1\r\nHost: x\r\n\r\n")),
		text("\xff\xfe"),
		claim16(fFin|fMask|opPing, 200, bytes.Repeat([]byte{'p'}, 64)), // control frame over 125
		raw([]byte{0xF1, 0x80, 1, 2, 3, 4}),                            // reserved bits
		honest(fMask|opPing, []byte("x")),                              // fragmented control frame
		cat(honest(fMask|opText, []byte(`{"ty`)), text(`{"type":"ping"}`)),
		honest(fFin|fMask|opCont, []byte("orphan")),
		honest(fFin|fMask|0x3, []byte("reserved opcode")),
		honest(fFin|fMask|opBinary, []byte{0, 1, 2}),
		cat(honest(fMask|opText, []byte(`{"type":"send",`)), honest(fFin|fMask|opPing, []byte("mid")),
			honest(fFin|fMask|opCont, []byte(`"id":"1","room":"general","text":"x"}`))),
	}
	for _, code := range []uint16{1004, 1005, 1006, 1015, 999, 2999} {
		seeds = append(seeds, honest(fFin|fMask|opClose, closePayload(code, "")))
	}
	return seeds
}

// FuzzRawStream writes a fuzzed stream of frames after a valid handshake
// on four connections to one gateway, each cutting the stream differently:
// a write per frame, one write, 7-byte writes, every frame masked. Then it
// half-closes them and reads until the node closes. Whatever the bytes, the
// node must not panic or log a stack trace, must keep running, and must be
// back to its goroutine count once the connections are gone.
func FuzzRawStream(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	p := sharedGateway(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 8*kB {
			in = in[:8*kB]
		}
		var wg sync.WaitGroup
		for k := range 4 {
			c, err := tryDialWS(p.Addr, "fz"+string(rune('a'+k)), "")
			if err != nil {
				t.Fatalf("connection %d: %v", k, err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				writeVariant(c, k, in)
				_ = c.Conn.(*net.TCPConn).CloseWrite()
				readToClose(c, time.Second)
			}()
		}
		wg.Wait()

		if !p.alive() {
			t.Fatalf("the gateway died: %v\n%s", p.cmd.ProcessState, tail(p.log.String(), 30))
		}
		log := p.log.since(shared.logOff)
		if i := strings.LastIndexByte(log, '\n'); i >= 0 {
			shared.logOff += i + 1
		}
		if s := stackText(log); s != "" {
			t.Fatalf("the gateway logged a panic or stack trace: %q\n%s", s, tail(p.log.String(), 30))
		}
		deadline := time.Now().Add(3 * time.Second)
		for {
			g, ok, err := p.metric("go_goroutines")
			if err != nil || !ok {
				t.Fatalf("go_goroutines: %v %v", ok, err)
			}
			if g <= shared.g0+goroutineSlack {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("go_goroutines %v 3s after the connections closed; it was %v before", g, shared.g0)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// writeVariant writes in's chunks on c the way connection k cuts them.
// Write errors are expected: the node may close the connection midway.
func writeVariant(c net.Conn, k int, in []byte) {
	_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	chunks := fuzzChunks(in, k == 3)
	switch k {
	case 1:
		_, _ = c.Write(bytes.Join(chunks, nil))
	case 2:
		all := bytes.Join(chunks, nil)
		for len(all) > 0 {
			n := min(7, len(all))
			if _, err := c.Write(all[:n]); err != nil {
				return
			}
			all = all[n:]
		}
	default:
		for _, ch := range chunks {
			if _, err := c.Write(ch); err != nil {
				return
			}
		}
	}
}
