package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// FuzzHandleFrames feeds arbitrary client frames (one per line of the
// input) to the request handler of one connection, with a second
// connection of another user in the same rooms, and checks that nothing
// panics (a recovered panic would show as close 1011), that every frame the
// node writes is one valid JSON object, and that nothing meant for the first
// connection, or changing its state, reaches the second.
//
// It drives the handler without an nbio server (the sinks record bytes),
// so the properties are about request handling, not the socket.
func FuzzHandleFrames(f *testing.F) {
	for _, seed := range []string{
		`{"type":"join","id":"1","room":"general"}` + "\n" + `{"type":"send","id":"2","room":"general","text":"hi"}`,
		`{"type":"dm","id":"1","to":"victim","text":"x","key":"k"}` + "\n" + `{"type":"dm","id":"1","to":"victim","text":"x","key":"k"}`,
		`{"type":"join","id":"1","room":"@victim"}`,
		`{"type":"leave","id":"1","room":"general"}` + "\n" + `{"type":"leave","room":"@victim"}`,
		`{"type":"history","id":"h","room":"@victim","before":18446744073709551615,"limit":1e999}`,
		`{"type":"join","id":"1","room":"general","since":{"seq":18446744073709551615,"epoch":"\u0000"},"limit":-1}`,
		`{"type":"send","room":"general","data":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
		`{"type":"typing","room":"general"}` + "\n" + `{"type":"read","room":"general","seq":3}`,
		`{"type":"send","type":"dm","id":"dup","id":"dup2","to":"victim","room":"general","text":"\ud800"}`,
		`{"type":"presence","id":"p","room":"general"}` + "\n" + `{"type":"refresh","id":"r","token":"a.b.c"}`,
		`{"type":"ping","id":"` + "\x00" + `"}`, `{"type":null}`, `[]`, `"x"`, `{"type":"join","room":123}`,
		`{"type":"send","id":"s","room":"general","text":"<img src=x onerror=alert(1)>","key":"` + string(bytes.Repeat([]byte("k"), 64)) + `"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s := fuzzServer(t)
		attacker, aSink := s.fuzzSession(t, "mallory")
		victim, vSink := s.fuzzSession(t, "victim")
		for _, room := range []string{"general", "other"} {
			for _, ss := range []*session{attacker, victim} {
				ss.handleFrame(true, []byte(`{"type":"join","id":"setup","room":"`+room+`"}`), time.Now().UnixNano())
			}
		}
		vBefore := len(splitFrames(t, vSink.bytes()))
		for _, line := range bytes.Split(in, []byte("\n")) {
			attacker.handleFrame(true, line, time.Now().UnixNano())
		}
		s.hub.Stop() // flush fan-out
		for _, fr := range splitFrames(t, aSink.bytes()) {
			checkFrame(t, "attacker", fr)
		}
		for i, fr := range splitFrames(t, vSink.bytes()) {
			m := checkFrame(t, "victim", fr)
			if i < vBefore || m == nil {
				continue
			}
			if _, ok := m["id"]; ok {
				t.Fatalf("victim received a reply meant for another connection: %s", fr.payload)
			}
			switch m["type"] {
			case "message", "presence", "typing", "read":
			default:
				t.Fatalf("victim received %s", fr.payload)
			}
		}
		for _, room := range []string{"general", "other", "@victim"} {
			if !victim.c.IsMember(room) {
				t.Fatalf("the attacker's frames removed the victim from %s", room)
			}
		}
	})
}

func fuzzServer(t *testing.T) *Server {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Rate, cfg.Burst = 1e6, 1000000
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

func (s *Server) fuzzSession(t *testing.T, user string) (*session, *memSink) {
	sink := &memSink{}
	now := time.Now().UnixNano()
	ss := &session{srv: s, expIdx: -1}
	ss.bucket.Init(s.cfg.Burst, now)
	ss.c = s.hub.NewClient(user, sink, now)
	ss.welcome()
	return ss, sink
}

// memSink records what the node writes to one connection.
type memSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (m *memSink) Write(b []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.buf.Write(b)
}
func (m *memSink) Close() error { return nil }
func (m *memSink) bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.buf.Bytes()...)
}

type wsFrame struct {
	op      byte
	payload []byte
}

// splitFrames parses unmasked server frames.
func splitFrames(t *testing.T, b []byte) []wsFrame {
	var out []wsFrame
	for len(b) > 0 {
		if len(b) < 2 || b[1]&0x80 != 0 {
			t.Fatalf("bad frame header % x", b[:min(len(b), 10)])
		}
		n, h := int(b[1]&0x7F), 2
		switch n {
		case 126:
			n, h = int(binary.BigEndian.Uint16(b[2:4])), 4
		case 127:
			n, h = int(binary.BigEndian.Uint64(b[2:10])), 10
		}
		if len(b) < h+n {
			t.Fatalf("truncated frame")
		}
		out = append(out, wsFrame{op: b[0] & 0x0F, payload: b[h : h+n]})
		b = b[h+n:]
	}
	return out
}

// checkFrame fails on a close 1011 (a recovered panic) or a text frame that
// is not one JSON object; it returns the decoded object of a text frame.
func checkFrame(t *testing.T, who string, fr wsFrame) map[string]any {
	switch fr.op {
	case 1:
		var m map[string]any
		if err := json.Unmarshal(fr.payload, &m); err != nil {
			t.Fatalf("%s got a frame that is not a JSON object: %q: %v", who, fr.payload, err)
		}
		return m
	case 8:
		if len(fr.payload) >= 2 && binary.BigEndian.Uint16(fr.payload) == closeInternal {
			t.Fatalf("%s: handler panicked (close 1011: %s)", who, fr.payload[2:])
		}
	}
	return nil
}
