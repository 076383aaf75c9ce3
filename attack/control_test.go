package attack

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The default --rate is 20 frames/s, --burst 40; ten refusals within 10 s
// close the connection with 4002.
const (
	burst     = 40
	abuseCode = 4002
)

// TestControlFramesBudgeted: pings and pongs draw on the same budget as
// messages. Exempt, they are free work for an attacker: every ping costs a
// pong write, every pong a parse, forever, on one connection.
func TestControlFramesBudgeted(t *testing.T) {
	t.Parallel()
	// A page socket whose client does not close after Connection: close is
	// shut by the handshake sweep: 1 s here keeps the waits short.
	p := startGateway(t, "--handshake-timeout", "1s")

	t.Run("pong flood closes 4002", func(t *testing.T) {
		total := pick(10000, 100*mB/131) // 131 bytes per masked 125-byte pong
		base := p.rss()
		peak := p.watchRSS()
		c := dialWS(t, p.Addr, "pong", "")
		written := floodFrames(c, opPong, total)
		c.expectClose(t, abuseCode, 5*time.Second)
		c.Close()
		grown := peak() - base
		t.Logf("%d pongs written before the close; RSS peak +%d MB", written(), grown/mB)
		if grown > 20*mB {
			t.Errorf("RSS grew by %d MB under a pong flood; want < 20 MB", grown/mB)
		}
		p.assertHealthy(t)
	})

	t.Run("pings within the budget are answered", func(t *testing.T) {
		c := dialWS(t, p.Addr, "honest", "")
		for i := range 5 {
			c.write(t, clientFrame(true, opPing, true, []byte{'a' + byte(i)}))
		}
		for i := 0; i < 5; {
			f, err := c.next(2 * time.Second)
			if err != nil {
				t.Fatalf("%d of 5 pings answered: %v", i, err)
			}
			switch f.op {
			case opClose:
				t.Fatalf("5 pings closed the connection with %d", f.closeCode())
			case opPong:
				if want := []byte{'a' + byte(i)}; !bytes.Equal(f.payload, want) {
					t.Fatalf("pong %d carries %q, want %q", i+1, f.payload, want)
				}
				i++
			}
		}
		c.Close()
	})

	t.Run("ping flood answered at most burst+10", func(t *testing.T) {
		total := pick(1000, 100000)
		c := dialWS(t, p.Addr, "ping", "")
		floodFrames(c, opPing, total)
		before := c.expectClose(t, abuseCode, 5*time.Second)
		pongs := 0
		for _, f := range before {
			if f.op == opPong {
				pongs++
			}
		}
		// Pongs written after the close frame count too: what matters is
		// the work one client could make the node do.
		for {
			f, err := c.next(time.Second)
			if err != nil {
				break
			}
			if f.op == opPong {
				pongs++
			}
		}
		t.Logf("%d pings sent, %d pongs", total, pongs)
		if pongs > burst+10 {
			t.Errorf("%d pongs answered a flood of %d pings; want at most burst+10 = %d", pongs, total, burst+10)
		}
		c.Close()
		p.assertHealthy(t)
	})

	t.Run("two pipelined page requests", func(t *testing.T) {
		c := dialTCP(t, p.Addr)
		if _, err := io.WriteString(c, strings.Repeat("GET /client.js HTTP/1.1\r\nHost: x\r\n\r\n", 2)); err != nil {
			t.Fatal(err)
		}
		answers, closed, first := readResponses(c, 2, 3*time.Second)
		if first == nil || first.StatusCode != 200 {
			t.Fatalf("GET /client.js not answered 200: %v", first)
		}
		if !first.Close {
			t.Errorf("a page response lacks Connection: close: %v", first.Header)
		}
		if answers != 1 || !closed {
			t.Errorf("2 pipelined requests: %d answers, closed %v; want 1 answer, then the socket closed by the sweep", answers, closed)
		}
	})

	t.Run("pipelined page request flood", func(t *testing.T) {
		total := pick(1000, 100000)
		base := p.rss()
		peak := p.watchRSS()
		c := dialTCP(t, p.Addr)
		req := strings.Repeat("GET /client.js HTTP/1.1\r\nHost: x\r\n\r\n", 100)
		go func() {
			for i := 0; i < total; i += 100 {
				_ = c.SetWriteDeadline(time.Now().Add(3 * time.Second))
				if _, err := io.WriteString(c, req); err != nil {
					return
				}
			}
		}()
		answers, closed, first := readResponses(c, total, 4*time.Second)
		grown := peak() - base
		t.Logf("%d pipelined requests: %d answers (first %v), closed %v; RSS peak +%d MB", total, answers, statusText(first), closed, grown/mB)
		// The first answer is the page, or 431 when more than
		// --max-header-bytes arrived before the node read the first
		// request: both end the socket.
		if first == nil || (first.StatusCode != 200 && first.StatusCode != 431) {
			t.Fatalf("GET /client.js x %d answered %v; want 200 (or 431)", total, statusText(first))
		}
		if answers > 3 {
			t.Errorf("%d of %d pipelined requests answered on one socket; want at most a few", answers, total)
		}
		if !closed {
			t.Errorf("the socket was not closed after the first response (by the client's close or the sweep)")
		}
		if grown > 20*mB {
			t.Errorf("RSS grew by %d MB under pipelined page requests; want < 20 MB", grown/mB)
		}
		p.assertHealthy(t)
	})
}

// readResponses reads up to max HTTP responses from c within d, dropping
// their bodies. closed reports whether the socket then ended.
func readResponses(c net.Conn, limit int, d time.Duration) (answers int, closed bool, first *http.Response) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	br := bufio.NewReader(c)
	for answers < limit {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return answers, closedErr(err) || err == io.ErrUnexpectedEOF, first
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if first == nil {
			first = resp
		}
		answers++
		if err != nil {
			return answers, closedErr(err), first
		}
	}
	// As many answers as requests: see whether the socket ends now.
	_, err := br.ReadByte()
	return answers, closedErr(err), first
}

func statusText(r *http.Response) string {
	if r == nil {
		return "nothing"
	}
	return r.Status
}

// floodFrames writes total masked control frames of op with 125-byte
// payloads, 100 per write, in the background, until the node closes the
// socket. It returns a func reporting how many went out.
func floodFrames(c *wsConn, op byte, total int) func() int64 {
	one := clientFrame(true, op, true, bytes.Repeat([]byte{'p'}, 125))
	batch := bytes.Repeat(one, 100)
	var written atomic.Int64
	go func() {
		for written.Load() < int64(total) {
			_ = c.SetWriteDeadline(time.Now().Add(3 * time.Second))
			if _, err := c.Write(batch); err != nil {
				return
			}
			written.Add(100)
		}
	}()
	return written.Load
}

// TestEmptyTextFrame: an empty text frame is a bad request like any other
// and costs a rate-limit token; free, a client can spin the handler with
// six-byte frames (header and mask key) without ever being closed.
func TestEmptyTextFrame(t *testing.T) {
	t.Parallel()
	p := startGateway(t)
	c := dialWS(t, p.Addr, "empty", "")
	empty := clientFrame(true, opText, true, nil)
	c.write(t, empty)
	e := c.await(t, 2*time.Second, "error for an empty frame", isType("error", ""))
	if e["code"] != "bad_request" {
		t.Fatalf("empty text frame answered %v; want code bad_request", e)
	}
	// Without an id, a refused frame gets no rate_limited reply; the close
	// after ten refusals shows the tokens were spent.
	c.write(t, bytes.Repeat(empty, burst+10))
	c.expectClose(t, abuseCode, 3*time.Second)
	c.Close()
	p.assertHealthy(t)
}
