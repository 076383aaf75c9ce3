package gateway

import (
	"time"
	"unicode/utf8"

	"github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/chatgw/gateway/gateway/limit"
)

// frameGuard reads a connection's frame headers as the bytes arrive, before
// nbio parses them, and enforces what nbio v1.6.12 does not (docs/nbio.md):
//
//   - client frames must be masked (RFC 6455 5.1): otherwise 1002;
//   - a frame, or the sum of a fragmented message's frames, over
//     --max-message-bytes closes with 1009 before nbio buffers it (nbio's
//     own sum can overflow and panic, logging a stack per frame);
//   - a connection's messages read but not yet handled are held under
//     maxInbound bytes: past it, 4002 (nbio's job queue has no bound);
//   - pings and pongs draw on a token bucket of --rate/--burst: over it
//     they are dropped unparsed, each one a rate-limit violation, and
//     limit.AbuseCount violations within limit.AbuseWindow close with 4002.
//     nbio would otherwise queue every control frame as its own job with a
//     pooled buffer, without limit.
//
// Only the header is parsed; payloads are skipped by count, so the guard
// costs a few compares per frame and no copy. It runs on the connection's
// poller goroutine only, so it needs no lock.
type frameGuard struct {
	hdr      [14]byte // a header's first bytes, held until it is complete
	hn       uint8    // bytes held in hdr
	b0, b1   byte     // the current header's first two bytes
	stage    uint8    // header bytes read so far; 0 between frames
	extLen   uint8    // bytes of extended length still to read
	maskLeft uint8    // mask key bytes still to read
	dead     bool     // closed by the guard: nothing more is read
	dropping bool     // the frame in progress is skipped, not parsed
	msgText  bool     // the data message in progress is text
	length   uint64   // payload length of the current frame
	remain   uint64   // payload bytes of the current frame still to come
	msgLen   uint64   // bytes of the data message in progress, all fragments

	ctrl     limit.Bucket   // pings and pongs
	refusals limit.Refusals // control frames over the bucket
}

// verdicts of frameGuard.frame.
const (
	framePass = iota
	frameDrop
	frameClose
)

// feed hands data to ws's parser, less the frames the guard drops, and
// closes the connection when the guard rules a frame out. A frame header
// split across reads is held back until it is complete, so nbio never sees
// a header the guard has not judged. It returns nbio's parse error, if any.
func (s *Server) feed(ss *session, ws *websocket.Conn, data []byte) error {
	g := &ss.guard
	if g.dead {
		return nil
	}
	keep := 0  // data[keep:] is not yet handed on
	here := -1 // offset of the current header, when it began in this read
	for i := 0; i < len(data); {
		if g.remain > 0 {
			n := min(uint64(len(data)-i), g.remain)
			if g.dropping {
				if err := parseSome(ws, data[keep:i]); err != nil {
					return err
				}
				keep = i + int(n)
			}
			i += int(n)
			if g.remain -= n; g.remain == 0 {
				g.dropping = false
			}
			continue
		}
		if g.stage == 0 {
			here = i
		}
		if !g.header(data[i]) {
			i++
			continue
		}
		i++
		held := g.hdr[:g.hn] // the header's start, from earlier reads
		g.hn = 0
		start := max(here, 0)
		here = -1
		code, reason, verdict := g.frame(s, ss, ws)
		switch verdict {
		case framePass:
			if err := parseSome(ws, held); err != nil {
				return err
			}
		case frameDrop:
			if err := parseSome(ws, data[keep:start]); err != nil {
				return err
			}
			keep = i
			g.dropping = g.remain > 0
		case frameClose:
			// The frames before this one are whole: let them be handled.
			if err := parseSome(ws, data[keep:start]); err != nil {
				return err
			}
			g.dead = true
			// Queued behind the jobs of the frames before it (and behind
			// serveWS, if it is still running), so their replies go out
			// first and ss.c is set.
			ws.Execute(func() { ss.c.Close(code, reason) })
			return nil
		}
	}
	if g.stage != 0 { // a header is incomplete: hold it back
		start := max(here, 0)
		if err := parseSome(ws, data[keep:start]); err != nil {
			return err
		}
		g.hn += uint8(copy(g.hdr[g.hn:], data[start:]))
		return nil
	}
	return parseSome(ws, data[keep:])
}

func parseSome(ws *websocket.Conn, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return ws.Parse(b)
}

// header takes one header byte and reports whether the header is complete.
func (g *frameGuard) header(b byte) bool {
	switch g.stage {
	case 0:
		g.b0 = b
		g.stage = 1
		return false
	case 1:
		g.b1 = b
		g.stage = 2
		g.length = uint64(b & 0x7F)
		switch g.length {
		case 126:
			g.extLen, g.length = 2, 0
		case 127:
			g.extLen, g.length = 8, 0
		default:
			g.extLen = 0
		}
		g.maskLeft = 0
		if b&0x80 != 0 {
			g.maskLeft = 4
		}
	default:
		if g.extLen > 0 {
			g.length = g.length<<8 | uint64(b)
			g.extLen--
		} else {
			g.maskLeft--
		}
	}
	if g.extLen > 0 || g.maskLeft > 0 {
		return false
	}
	g.stage = 0
	g.remain = g.length
	return true
}

// frame judges the frame whose header was just read: whether it passes to
// nbio, is dropped, or closes the connection (with code and reason).
func (g *frameGuard) frame(s *Server, ss *session, ws *websocket.Conn) (int, string, int) {
	if g.b1&0x80 == 0 {
		return closeProtocolError, "client frames must be masked", frameClose
	}
	max := uint64(s.cfg.MaxMessageBytes)
	switch op := g.b0 & 0x0F; op {
	case 0x1, 0x2: // first frame of a message
		g.msgLen = 0
		g.msgText = op == 0x1
		fallthrough
	case 0x0: // continuation
		if g.length > max || g.msgLen+g.length > max {
			return closeTooBig, "message over the size limit", frameClose
		}
		g.msgLen += g.length
		if ss.inbound.Add(int64(g.length)) > s.maxInbound() {
			// nbio queues each message as a job for the handler; a client
			// that sends faster than its handler keeps up would grow
			// that queue without bound.
			return closeAbuse, "requests arriving faster than they can be handled", frameClose
		}
		if g.b0&0x80 != 0 && g.msgLen == 0 {
			// nbio drops empty messages without a callback; they are
			// requests like any other (bad_request, and a token).
			text := g.msgText
			ws.Execute(func() { ss.handleFrame(text, nil, time.Now().UnixNano()) })
		}
	case 0x9, 0xA: // ping, pong
		if g.length > 125 {
			return closeProtocolError, "control frame over 125 bytes", frameClose
		}
		now := time.Now().UnixNano()
		if g.ctrl.Allow(s.cfg.Rate, s.cfg.Burst, now) {
			return 0, "", framePass
		}
		s.m.RateLimited()
		if g.refusals.Add(now) {
			return closeAbuse, "repeated rate limit violations", frameClose
		}
		return 0, "", frameDrop
	}
	return 0, "", framePass
}

// validCloseFrame reports the close code a client's close frame must be
// answered with when it breaks RFC 6455 7.4 (a code that must never be
// sent, or a reason that is not UTF-8), or 0 when it is valid. nbio
// itself answers 1004-1006 and the other undefined codes with 1002 before
// the handler runs, and reports an empty close as 1005.
func validCloseFrame(code int, reason string) int {
	switch {
	case code == closeTLSHandshake:
		return closeProtocolError
	case !utf8.ValidString(reason):
		return closeInvalidUTF8
	}
	return 0
}

// maxInbound is how many bytes of a connection's messages may wait for its
// handler: far above what a client within its rate limit ever queues.
func (s *Server) maxInbound() int64 {
	return max(1<<20, 4*int64(s.cfg.MaxMessageBytes))
}
