package gateway_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/gateway"
	"github.com/chatgw/gateway/internal/wstest"
)

// Every accepted request is answered before a close the gateway starts.
// These tests run in both modes: in cluster mode a send's ack comes back
// from Redis after the handler has returned, which is where acks were lost.

// With --rate 5 --burst 5, 20 sends at once: the sends within the burst
// are stored and acknowledged, the rest refused, and the abuse close (4002)
// comes after every ack. Every stored message was acknowledged.
func TestAcksBeforeAbuseClose(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) { c.Rate, c.Burst = 5, 5 })
	a := n.dial(t, "alice")
	a.Join("general")
	time.Sleep(300 * time.Millisecond) // the join's token comes back: the burst is whole
	for i := 0; i < 20; i++ {
		a.Send(map[string]any{"type": "send", "id": fmt.Sprint("s", i), "room": "general", "text": fmt.Sprint("m", i)})
	}
	frames, code := a.UntilClose()
	if code != 4002 {
		t.Fatalf("close code %d, want 4002", code)
	}
	acks, limited := 0, 0
	for _, f := range frames {
		switch {
		case f.Str("type") == "ack":
			acks++
			if f.Num("seq") != uint64(acks) {
				t.Fatalf("ack %v: seq %d, want %d", f, f.Num("seq"), acks)
			}
		case f.Str("type") == "error" && f.Str("code") == "rate_limited":
			limited++
		}
	}
	// The burst's five, and one more for each 200 ms the node took.
	if acks < 5 || acks+limited > 20 {
		t.Fatalf("%d acks and %d rate_limited, want at least 5 acks (frames %v)", acks, limited, frames)
	}
	if stored := n.srv.Published(); stored != int64(acks) {
		t.Fatalf("%d messages stored, %d acknowledged before the close", stored, acks)
	}
}

// pumpUntilClosed keeps window sends in flight on each client (each joined
// to a room of its own, r<i>) until its connection ends, and returns how
// many acks each one got. start runs once the sends are under way.
func pumpUntilClosed(t *testing.T, cs []*client, start func()) []int {
	t.Helper()
	const window = 32
	var wg sync.WaitGroup
	acked := make([]int, len(cs))
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			room := fmt.Sprint("r", i)
			next := 0
			send := func() bool {
				b := fmt.Sprintf(`{"type":"send","id":"%d","room":"%s","text":"m%d"}`, next, room, next)
				next++
				return c.WS.WriteMessage(websocket.TextMessage, []byte(b)) == nil
			}
			for k := 0; k < window && send(); k++ {
			}
			for f := range c.Frames {
				if f.Str("type") == "ack" {
					acked[i]++
					send()
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // sends under way on every connection
	start()
	wg.Wait()
	return acked
}

// checkAllAcked checks that every client's connection ended with code and
// that the node stored exactly the messages acknowledged.
func checkAllAcked(t *testing.T, n *node, cs []*client, acked []int, code int) {
	t.Helper()
	total := 0
	for i, c := range cs {
		if err := <-c.Closed; wstest.CloseCode(err) != code {
			t.Fatalf("%s: connection ended with %v, want close %d", c.User, err, code)
		}
		if acked[i] == 0 {
			t.Fatalf("%s: no send was acknowledged before the close", c.User)
		}
		total += acked[i]
	}
	if stored := n.srv.Published(); stored != int64(total) {
		t.Fatalf("%d messages stored, %d acknowledged before their senders were closed with %d", stored, total, code)
	}
}

// A drain closes every connection with 1001 while its clients keep sending:
// each message stored was acknowledged to its sender before the close.
func TestAcksBeforeDrainClose(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) {
		c.Rate, c.Burst = 1e6, 1e6
		// The last closes come at 80% of it, and with the durable store
		// their owed acks wait for the disk behind every other client's
		// sends: leave them room (the property here is the order).
		c.DrainTimeout = 3 * time.Second
	})
	var cs []*client
	for i := 0; i < 20; i++ {
		c := n.dial(t, fmt.Sprint("u", i))
		c.Join(fmt.Sprint("r", i))
		cs = append(cs, c)
	}
	acked := pumpUntilClosed(t, cs, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.srv.Drain(ctx); err != nil {
			t.Error(err)
		}
	})
	checkAllAcked(t, n, cs, acked, 1001)
}

// Tokens that expire while their clients keep sending: closed with 4000,
// each message stored acknowledged first.
func TestAcksBeforeTokenExpiryClose(t *testing.T) {
	n := authNode(t, func(c *gateway.Config) { c.Rate, c.Burst = 1e6, 1e6 })
	var cs []*client
	for i := 0; i < 5; i++ {
		u := fmt.Sprint("u", i)
		c := tokenClient(t, n, hs(t, claims{"sub": u, "exp": in(2 * time.Second)}), u)
		c.Join(fmt.Sprint("r", i))
		cs = append(cs, c)
	}
	acked := pumpUntilClosed(t, cs, func() {})
	checkAllAcked(t, n, cs, acked, 4000)
}
