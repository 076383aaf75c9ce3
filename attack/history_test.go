package attack

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHistoryBounded: the memory history store keeps at most
// --history-max-bytes in all rooms together, and forgets idle rooms after
// --history-ttl. A per-room message count alone does not bound it: every DM
// to a new name makes a new inbox room, so a few clients fill the heap.
func TestHistoryBounded(t *testing.T) {
	t.Parallel()
	t.Run("budget", func(t *testing.T) {
		t.Parallel()
		historyBudget(t)
	})
	t.Run("ttl", func(t *testing.T) {
		t.Parallel()
		historyTTL(t)
	})
}

func historyBudget(t *testing.T) {
	const budget = 4 * mB // --history-max-bytes
	const textLen = 15000 // a DM of ~15 KB, under the 16 KB message cap
	p := startGateway(t, "--history-max-bytes", strconv.Itoa(budget), "--rate", "1000", "--burst", "1000")
	clients, perClient, runFor := 20, pick(400, 4000), pick(4*time.Second, 20*time.Second)

	base := p.rss()
	peak := p.watchRSS()
	var maxBytes, maxRooms atomic.Int64
	var pollErr atomic.Value
	stopPoll, polled := make(chan struct{}), make(chan struct{})
	poll := func() {
		for name, hi := range map[string]*atomic.Int64{"gateway_history_bytes": &maxBytes, "gateway_history_rooms": &maxRooms} {
			v, ok, err := p.metric(name)
			if err == nil && !ok {
				err = fmt.Errorf("the node exports no metric %s", name)
			}
			if err != nil {
				pollErr.CompareAndSwap(nil, err.Error())
				continue
			}
			for cur := hi.Load(); int64(v) > cur && !hi.CompareAndSwap(cur, int64(v)); cur = hi.Load() {
			}
		}
	}
	go func() {
		defer close(polled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopPoll:
				return
			case <-tick.C:
				poll()
			}
		}
	}()

	text := strings.Repeat("h", textLen)
	var sent, dms atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(runFor)
	for i := range clients {
		c := dialWS(t, p.Addr, "s"+strconv.Itoa(i), "")
		go drain(c) // the echo of every DM comes back to the sender's inbox
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < perClient && time.Now().Before(deadline); n++ {
				var r [6]byte
				_, _ = rand.Read(r[:])
				msg := `{"type":"dm","id":"` + strconv.Itoa(n) + `","to":"u` + hex.EncodeToString(r[:]) + `","text":"` + text + `"}`
				_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write(clientFrame(true, opText, true, []byte(msg))); err != nil {
					return
				}
				sent.Add(int64(len(msg)))
				dms.Add(1)
			}
		}()
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond) // the last frames are stored
	close(stopPoll)
	<-polled
	poll()
	grown := peak() - base

	t.Logf("%d DMs (%d MB) sent; history peak %d bytes in %d rooms; RSS %d MB -> peak +%d MB",
		dms.Load(), sent.Load()/mB, maxBytes.Load(), maxRooms.Load(), base/mB, grown/mB)
	if e := pollErr.Load(); e != nil {
		t.Fatal(e)
	}
	if sent.Load() < 10*budget {
		t.Fatalf("only %d MB of DMs went out; the attack needs at least 10x the %d MB budget to prove anything",
			sent.Load()/mB, budget/mB)
	}
	if b := maxBytes.Load(); b > budget+mB {
		t.Errorf("gateway_history_bytes reached %d; want at most the budget %d + 1 MB", b, budget)
	}
	// Rooms hold at least one ~15 KB message each, so the budget bounds
	// them; every connected sender's inbox may count on top.
	if r, limit := maxRooms.Load(), int64((budget+mB)/textLen+2*clients+16); r > limit {
		t.Errorf("gateway_history_rooms reached %d; want at most %d under a %d byte budget", r, limit, budget)
	}
	if grown > 60*mB {
		t.Errorf("RSS grew by %d MB under a %d MB history budget; want < 60 MB", grown/mB, budget/mB)
	}
	p.assertHealthy(t)
}

// drain reads and drops server frames until the socket ends.
func drain(c *wsConn) {
	_ = c.SetReadDeadline(time.Time{})
	for {
		if _, err := readFrame(c.br, 4*mB); err != nil {
			return
		}
	}
}

func historyTTL(t *testing.T) {
	p := startGateway(t, "--history-ttl", "1s")
	c := dialWS(t, p.Addr, "ttl", "")
	c.sendJSON(t, map[string]any{"type": "join", "id": "1", "room": "r1"})
	joined := c.await(t, 2*time.Second, "joined r1", isType("joined", "1"))
	epoch, _ := joined["epoch"].(string)
	c.sendJSON(t, map[string]any{"type": "send", "id": "2", "room": "r1", "text": "hi"})
	c.await(t, 2*time.Second, "ack", isType("ack", "2"))
	if n := p.mustMetric(t, "gateway_history_rooms"); n < 1 {
		t.Fatalf("gateway_history_rooms is %v with a message in r1; want >= 1", n)
	}
	c.write(t, clientFrame(true, opClose, true, closePayload(1000, "")))
	c.expectClose(t, 1000, 2*time.Second)
	c.Close()

	// The sweep runs at least every ttl/2 (here at most every second):
	// the room is gone within ttl + a sweep, 3 s is generous.
	left := time.Now()
	for {
		n := p.mustMetric(t, "gateway_history_rooms")
		if n == 0 {
			t.Logf("history emptied %v after the disconnect", time.Since(left).Round(10*time.Millisecond))
			break
		}
		if time.Since(left) > 3500*time.Millisecond {
			t.Fatalf("gateway_history_rooms is %v 3.5s after the last message with --history-ttl 1s; want 0", n)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A client resuming from before the expiry must learn its history is
	// gone: not recovered, and a new epoch (seq 1 now names another message).
	r := dialWS(t, p.Addr, "ttl2", "")
	r.sendJSON(t, map[string]any{"type": "join", "id": "3", "room": "r1", "since": map[string]any{"seq": 1, "epoch": epoch}})
	j := r.await(t, 2*time.Second, "joined r1 since seq 1", isType("joined", "3"))
	if j["recovered"] == true {
		t.Errorf("joined after expiry says recovered: %v", j)
	}
	if j["epoch"] == epoch {
		t.Errorf("joined after expiry keeps the old epoch %q; want a new one", epoch)
	}
	r.write(t, clientFrame(true, opClose, true, closePayload(1000, "")))
	p.assertHealthy(t)
}

// mustMetric is metric that fails t when the scrape fails or name is absent.
func (p *proc) mustMetric(t testing.TB, name string) float64 {
	t.Helper()
	v, ok, err := p.metric(name)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("the node exports no metric %s", name)
	}
	return v
}
