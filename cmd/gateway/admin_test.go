package main

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// --pprof and --history-ttl through the real binary: what each mounts or
// drops, observed on the listeners a client and an operator can reach.

// TestPprofOnlyOnAdminWithFlag: "pprof only with --pprof", "on the admin
// listener (never the public one)". With the flag the admin listener
// serves the index and /debug/pprof/cmdline; without it both are 404; the
// public listener answers 404 for them either way.
func TestPprofOnlyOnAdminWithFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want int
	}{{[]string{"--pprof"}, 200}, {nil, 404}} {
		p := startGateway(t, nil, c.args...)
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline"} {
			code, body := httpGet(t, "http://"+p.admin+path)
			if code != c.want {
				t.Errorf("%v: admin %s: HTTP %d, want %d", c.args, path, code, c.want)
			}
			if c.want == 200 && path == "/debug/pprof/" && !strings.Contains(body, "goroutine") {
				t.Errorf("%v: admin %s is not the pprof index:\n%.300s", c.args, path, body)
			}
			// The public listener has the chat page under "/", which
			// has nothing under /debug/.
			if code := pageStatus(t, p.addr, path); code != 404 {
				t.Errorf("%v: public %s: HTTP %d, want 404", c.args, path, code)
			}
		}
	}
}

// TestHistoryTTLDropsIdleRooms: "a room's history is dropped this long
// after its last message (memory store: once it also has no members on the
// node)". Two nodes, --history-ttl 1s and the default 24h, get the same
// story at the same time: alice sends one message and leaves. On the 1 s
// node the store's rooms go to 0 (gateway_history_rooms), not before 1 s
// after the message; a resume from that message then gets recovered:false
// and seq 0 under a new epoch. On the default node, at that moment, the same
// resume is recovered with nothing missed.
func TestHistoryTTLDropsIdleRooms(t *testing.T) {
	const ttl = time.Second
	short := startGateway(t, nil, "--history-ttl", ttl.String(), "--data-dir=") // the memory store's TTL
	long := startGateway(t, nil, "--data-dir=")
	type sent struct {
		epoch string
		seq   float64
		at    time.Time // before the send: the message is stored after it
	}
	send := func(p *gwProc) sent {
		alice := dialNode(t, p.addr, "alice")
		j := alice.Request(map[string]any{"type": "join", "id": "j", "room": "ttl"})
		at := time.Now()
		ack := alice.Request(map[string]any{"type": "send", "id": "s", "room": "ttl", "text": "hi"})
		if ack["type"] != "ack" || ack["seq"] != 1.0 {
			t.Fatalf("send: %v", ack)
		}
		if err := alice.Close(); err != nil {
			t.Fatal(err)
		}
		epoch, _ := j["epoch"].(string)
		return sent{epoch, ack["seq"].(float64), at}
	}
	s, l := send(short), send(long)
	if n := metric(t, short.admin, "gateway_history_rooms"); n < 1 {
		t.Fatalf("gateway_history_rooms %v after a message, want at least 1", n)
	}
	poll(t, ttl*3, "gateway_history_rooms back to 0 with --history-ttl 1s", func() bool {
		return metric(t, short.admin, "gateway_history_rooms") == 0
	})
	if took := time.Since(s.at); took < ttl {
		t.Fatalf("history dropped %v after the last message, before --history-ttl %v", took, ttl)
	}
	if n := metric(t, short.admin, "gateway_history_rooms_dropped_total"); n < 1 {
		t.Errorf("gateway_history_rooms_dropped_total %v after the drop, want at least 1", n)
	}
	if n := metric(t, long.admin, "gateway_history_rooms"); n < 1 {
		t.Fatalf("default --history-ttl: gateway_history_rooms %v, want the room still held", n)
	}

	resume := func(p *gwProc, from sent) wsFrame {
		bob := dialNode(t, p.addr, "bob")
		return bob.Request(map[string]any{"type": "join", "id": "r", "room": "ttl",
			"since": map[string]any{"seq": from.seq, "epoch": from.epoch}})
	}
	if j := resume(short, s); j["recovered"] != false || j["seq"] != 0.0 || j["epoch"] == s.epoch {
		t.Errorf("resume after --history-ttl %v: %v, want recovered:false, seq 0, a new epoch", ttl, j)
	}
	if j := resume(long, l); j["recovered"] != true || j["seq"] != l.seq || j["epoch"] != l.epoch {
		t.Errorf("resume with the default --history-ttl: %v, want recovered:true at seq %v", j, l.seq)
	}
}

// pageStatus is the HTTP status the public listener answers for a GET of
// path. The node answers one request per socket with Connection: close;
// the client closes, as net/http's does.
func pageStatus(t *testing.T, addr, path string) int {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s on the public listener: %v", path, err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestDefaultGOGC: the binary sets the collector's target to defaultGOGC
// unless GOGC is set in its environment, which wins.
func TestDefaultGOGC(t *testing.T) {
	for _, c := range []struct {
		env  []string
		want float64
	}{{nil, defaultGOGC}, {[]string{"GOGC=100"}, 100}} {
		if _, set := os.LookupEnv("GOGC"); set && c.env == nil {
			continue // this environment's own GOGC would reach the process
		}
		p := startGateway(t, c.env)
		if got := metric(t, p.admin, "go_gc_gogc_percent"); got != c.want {
			t.Errorf("env %v: go_gc_gogc_percent %v, want %v", c.env, got, c.want)
		}
	}
}
