package gateway

import (
	"encoding/binary"
	"time"
	"unicode/utf8"

	"github.com/lesismal/nbio"
	"github.com/valyala/bytebufferpool"

	"github.com/chatgw/gateway/codec"
	"github.com/chatgw/gateway/gateway/limit"
)

// wsread.go is the node's WebSocket reader: RFC 6455 frames are parsed as
// the bytes arrive, on the socket's poller goroutine, and each complete
// message or control frame is handed to the connection's handler through
// nbio's per-connection job queue (nbio.Conn.Execute), which runs one job
// at a time, in order. nbio's own WebSocket connection is not used: it
// cost 176 bytes per connection plus the upgrade's leftovers, it closed
// sockets from handler goroutines (the descriptor race, docs/nbio.md), and
// the limits below had to be enforced in front of it anyway.
//
// What the reader enforces, each with its close code:
//
//   - client frames must be masked (RFC 6455 5.1), reserved bits clear, a
//     known opcode, control frames whole and at most 125 bytes, and a
//     continuation only inside a message (a data frame only outside one):
//     otherwise 1002;
//   - a frame, or the sum of a fragmented message's frames, over
//     --max-message-bytes: 1009, before any of it is buffered;
//   - a connection's messages read but not yet handled are held under
//     maxInbound bytes: past it, 4002;
//   - pings and pongs draw on a token bucket of --rate/--burst: over it
//     they are dropped unread, each one a rate-limit violation, and
//     limit.AbuseCount violations within limit.AbuseWindow close with 4002.
//
// An idle connection holds no buffer: a message's bytes are gathered in a
// pooled buffer only while it is arriving.
type frameReader struct {
	b0, b1   byte    // the current header's first two bytes
	stage    uint8   // header bytes read so far; 0 between frames
	extLen   uint8   // bytes of extended length still to read
	maskLeft uint8   // mask key bytes still to read
	dead     bool    // closed by the reader: nothing more is read
	dropping bool    // the frame in progress is skipped, not read
	msgText  bool    // the data message in progress is text
	mask     [4]byte // the current frame's masking key, turned to the next byte's
	remain   uint64  // payload bytes of the current frame still to come

	msg *bytebufferpool.ByteBuffer // the data message in progress; nil between messages
	ctl *bytebufferpool.ByteBuffer // the control frame in progress; nil between them

	ctrl     limit.Bucket   // pings and pongs
	refusals limit.Refusals // control frames over the bucket
}

// read parses data, which arrived on socket c for ss, and hands on every
// message and control frame it completes. It runs on c's poller goroutine
// only, so the reader needs no lock; data is only valid during the call
// (it is unmasked in place).
func (s *Server) read(ss *session, c *nbio.Conn, data []byte) {
	r := &ss.reader
	for i := 0; i < len(data) && !r.dead; {
		if r.stage == 0 && r.remain > 0 { // in a payload
			n := int(min(uint64(len(data)-i), r.remain))
			if !r.dropping {
				r.payload(data[i : i+n])
			}
			i += n
			r.remain -= uint64(n)
			if r.remain == 0 {
				s.frameDone(ss, c)
			}
			continue
		}
		if !r.header(data[i]) {
			i++
			continue
		}
		i++
		if code, reason := s.frameStart(ss); code != 0 {
			r.dead = true
			r.release()
			// Queued behind the jobs of the frames before it (and behind
			// serveWS, if it is still running), so their replies go out
			// first and ss.c is set.
			c.Execute(func() { ss.c.Close(code, reason) })
			return
		}
		if r.remain == 0 {
			s.frameDone(ss, c)
		}
	}
}

// header takes one header byte and reports whether the header is complete.
func (r *frameReader) header(b byte) bool {
	switch r.stage {
	case 0:
		r.b0 = b
		r.stage = 1
		return false
	case 1:
		r.b1 = b
		r.stage = 2
		r.remain = uint64(b & 0x7F)
		switch r.remain {
		case 126:
			r.extLen, r.remain = 2, 0
		case 127:
			r.extLen, r.remain = 8, 0
		default:
			r.extLen = 0
		}
		r.maskLeft = 0
		if b&0x80 != 0 {
			r.maskLeft = 4
		}
	default:
		if r.extLen > 0 {
			r.remain = r.remain<<8 | uint64(b)
			r.extLen--
		} else {
			r.mask[4-r.maskLeft] = b
			r.maskLeft--
		}
	}
	if r.extLen > 0 || r.maskLeft > 0 {
		return false
	}
	r.stage = 0
	return true
}

// Opcodes (RFC 6455 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// frameStart judges the frame whose header was just read, and returns the
// close code and reason when it ends the connection. r.remain is still the
// frame's whole length. A frame it keeps has its buffer ready; one it
// drops is skipped (r.dropping).
func (s *Server) frameStart(ss *session) (int, string) {
	r := &ss.reader
	if r.b1&0x80 == 0 {
		return closeProtocolError, "client frames must be masked"
	}
	if r.b0&0x70 != 0 {
		return closeProtocolError, "reserved bits set: no extension was negotiated"
	}
	fin := r.b0&0x80 != 0
	limit := uint64(s.cfg.MaxMessageBytes)
	r.dropping = false
	switch op := r.b0 & 0x0F; op {
	case opText, opBinary, opContinuation:
		if op == opContinuation && r.msg == nil {
			return closeProtocolError, "continuation frame with no message in progress"
		}
		if op != opContinuation && r.msg != nil {
			return closeProtocolError, "new message before the last one's final frame"
		}
		so := 0
		if r.msg != nil {
			so = len(r.msg.B)
		}
		if r.remain > limit || uint64(so)+r.remain > limit {
			return closeTooBig, "message over the size limit"
		}
		if ss.inbound.Add(int64(r.remain)) > s.maxInbound() {
			// Each message waits in nbio's job queue for the handler; a
			// client that sends faster than its handler keeps up would
			// grow that queue without bound.
			return closeAbuse, "requests arriving faster than they can be handled"
		}
		if r.msg == nil {
			r.msg = bytebufferpool.Get()
			r.msgText = op == opText
		}
	case opClose, opPing, opPong:
		if !fin {
			return closeProtocolError, "fragmented control frame"
		}
		if r.remain > 125 {
			return closeProtocolError, "control frame over 125 bytes"
		}
		if op != opClose {
			now := time.Now().UnixNano()
			if !r.ctrl.Allow(s.cfg.Rate, s.cfg.Burst, now) {
				s.m.RateLimited()
				if r.refusals.Add(now) {
					return closeAbuse, "repeated rate limit violations"
				}
				r.dropping = true
				return 0, ""
			}
		}
		r.ctl = bytebufferpool.Get()
	default:
		return closeProtocolError, "unknown opcode"
	}
	return 0, ""
}

// payload unmasks p in place and adds it to the frame in progress.
func (r *frameReader) payload(p []byte) {
	r.mask = unmask(p, r.mask)
	if r.b0&0x08 != 0 { // control
		r.ctl.B = append(r.ctl.B, p...)
	} else {
		r.msg.B = append(r.msg.B, p...)
	}
}

// unmask XORs p with the masking key, key[0] first, eight bytes at a time,
// and returns the key turned so that key[0] applies to the byte after p.
func unmask(p []byte, key [4]byte) [4]byte {
	k32 := binary.LittleEndian.Uint32(key[:])
	k64 := uint64(k32) | uint64(k32)<<32
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, binary.LittleEndian.Uint64(p)^k64)
		p = p[8:]
	}
	for j := range p {
		p[j] ^= key[j&3]
	}
	n := len(p) & 3
	return [4]byte{key[n], key[(n+1)&3], key[(n+2)&3], key[(n+3)&3]}
}

// frameDone is called once a frame's payload is all read: a final data
// frame completes its message, a control frame is handled.
func (s *Server) frameDone(ss *session, c *nbio.Conn) {
	r := &ss.reader
	if r.dropping {
		r.dropping = false
		return
	}
	op := r.b0 & 0x0F
	if op&0x08 == 0 {
		if r.b0&0x80 == 0 {
			return // more fragments to come
		}
		msg, text, at := r.msg, r.msgText, time.Now().UnixNano()
		r.msg = nil
		if !c.Execute(func() { ss.deliver(text, msg.B, at); bytebufferpool.Put(msg) }) {
			bytebufferpool.Put(msg) // closed meanwhile
		}
		return
	}
	p := r.ctl
	r.ctl = nil
	if op == opClose {
		// Nothing after a close frame is read (RFC 6455 5.5.1).
		r.dead = true
		r.release()
	}
	if !c.Execute(func() { s.control(ss, c, op, p.B); bytebufferpool.Put(p) }) {
		bytebufferpool.Put(p)
	}
}

// release gives back the buffers of a frame or message in progress.
func (r *frameReader) release() {
	if r.msg != nil {
		bytebufferpool.Put(r.msg)
		r.msg = nil
	}
	if r.ctl != nil {
		bytebufferpool.Put(r.ctl)
		r.ctl = nil
	}
}

// control handles a client's ping, pong or close frame, in order with its
// messages (a job on the connection's queue).
func (s *Server) control(ss *session, c *nbio.Conn, op byte, p []byte) {
	now := time.Now().UnixNano()
	switch op {
	case opPing:
		ss.c.Seen(now)
		ss.c.Send(codec.PongFrame(string(p)))
	case opPong:
		ss.c.Seen(now)
	case opClose:
		// The close handshake: answered with the client's code (unless
		// the node had started it), then the socket is shut down and
		// nbio's poller closes it (a close from here would race the
		// poller over the descriptor, docs/nbio.md).
		code, reason := closeNormal, "" // an empty close frame: 1005, answered 1000
		if len(p) >= 2 {
			code, reason = int(binary.BigEndian.Uint16(p)), string(p[2:])
		}
		switch bad := validCloseFrame(code, reason); {
		case len(p) == 1:
			ss.c.Close(closeProtocolError, "invalid close frame")
		case bad != 0:
			ss.c.Close(bad, "invalid close frame")
		default:
			ss.c.Close(code, "")
		}
		shutdownOpen(c)
	}
}

// validCloseFrame reports the close code a client's close frame must be
// answered with when it breaks RFC 6455 7.4 (a code outside 1000-1003,
// 1007-1011 and 3000-4999, or a reason that is not UTF-8), or 0 when it
// is valid.
func validCloseFrame(code int, reason string) int {
	switch {
	case !(code >= 1000 && code <= 1003 || code >= 1007 && code <= 1011 || code >= 3000 && code <= 4999):
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
