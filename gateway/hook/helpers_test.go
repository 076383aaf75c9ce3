package hook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// request is one call a receiver saw.
type request struct {
	path   string
	header http.Header
	body   []byte
}

// receiver is a real HTTP server standing for the application. answer
// decides each reply; it may block, until the request's context ends.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []request
	answer func(w http.ResponseWriter, r *http.Request, body []byte)
}

// newReceiver starts a receiver, closed when the test ends (after the
// hooks, which are closed by cleanups registered later).
func newReceiver(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, body []byte)) *receiver {
	t.Helper()
	rc := &receiver{answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, request{path: r.URL.Path, header: r.Header.Clone(), body: body})
		rc.mu.Unlock()
		rc.answer(w, r, body)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.reqs...)
}

// status answers every call with code and body.
func status(code int, body string) func(http.ResponseWriter, *http.Request, []byte) {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

// refusedURL is a URL nothing listens on.
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// start makes hooks closed when the test ends.
func start(t *testing.T, cfg Config, src Source, reg *prometheus.Registry) *Hooks {
	t.Helper()
	h, err := New(cfg, src, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// decide runs Decide and waits for its decision.
func decide(t *testing.T, h *Hooks, e Event, body any) Decision {
	t.Helper()
	ch := make(chan Decision, 2)
	h.Decide(e, body, func(d Decision) { ch <- d })
	select {
	case d := <-ch:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no decision")
	}
	return Decision{}
}

// eventually polls cond until it holds, or fails the test.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metric reads one series from reg (0 when absent).
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

// memSource is an in-memory Source for tests: rooms' messages (seq i at
// index i-1) and persisted cursors, shared by successive Hooks the way a
// store on disk outlives a restart.
type memSource struct {
	mu           sync.Mutex
	msgs         map[string][]Message
	cursors      map[string]uint64
	failSet      bool // SetCursor fails (a crash before the cursor was saved)
	failPending  int  // Pending fails this many times first
	pendingCalls int
}

func newMemSource() *memSource {
	return &memSource{msgs: map[string][]Message{}, cursors: map[string]uint64{}}
}

// add stores a message in room and returns its seq.
func (s *memSource) add(room, text string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := uint64(len(s.msgs[room]) + 1)
	s.msgs[room] = append(s.msgs[room], Message{Room: room, Seq: seq, TS: int64(seq), From: "u", Text: &text})
	return seq
}

// drop forgets room's messages up to seq, as history eviction does.
func (s *memSource) drop(room string, upTo uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.msgs[room][:upTo] {
		s.msgs[room][i].Seq = 0 // gone
	}
}

func (s *memSource) Range(room string, after uint64, limit int) ([]Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.msgs[room] {
		if m.Seq > after && len(out) < limit {
			out = append(out, m)
		}
	}
	return out, nil
}

func (s *memSource) Cursor(room string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursors[room], nil
}

func (s *memSource) SetCursor(room string, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failSet {
		return errors.New("cursor store down")
	}
	s.cursors[room] = seq
	return nil
}

func (s *memSource) Pending() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pendingCalls++
	if s.failPending > 0 {
		s.failPending--
		return nil, errors.New("store down")
	}
	var rooms []string
	for r, msgs := range s.msgs {
		if len(msgs) > 0 && msgs[len(msgs)-1].Seq > s.cursors[r] {
			rooms = append(rooms, r)
		}
	}
	sort.Strings(rooms)
	return rooms, nil
}

// set runs f under the source's lock (to change its failure knobs while
// a sender uses it).
func (s *memSource) set(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

func (s *memSource) cursor(room string) uint64 {
	c, _ := s.Cursor(room)
	return c
}

// batch is a notification body as a receiver reads it.
type batch struct {
	Events []json.RawMessage `json:"events"`
}

func decodeBatch(t *testing.T, body []byte) batch {
	t.Helper()
	var b batch
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("batch %q: %v", body, err)
	}
	return b
}

// messages decodes the message events of body.
func messages(t *testing.T, body []byte) []Message {
	t.Helper()
	var out []Message
	for _, raw := range decodeBatch(t, body).Events {
		var m Message
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("event %s: %v", raw, err)
		}
		out = append(out, m)
	}
	return out
}

func key(m Message) string { return fmt.Sprintf("%s/%d", m.Room, m.Seq) }
