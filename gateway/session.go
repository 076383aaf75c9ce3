package gateway

import (
	"encoding/hex"
	"math"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/chatgw/gateway/codec"
	"github.com/chatgw/gateway/gateway/auth"
	"github.com/chatgw/gateway/gateway/history"
	"github.com/chatgw/gateway/gateway/hub"
	"github.com/chatgw/gateway/gateway/limit"
)

// Error codes of protocol v1.
const (
	codeBadRequest   = "bad_request"
	codeUnknownType  = "unknown_type"
	codeUnauthorized = "unauthorized"
	codeForbidden    = "forbidden"
	codeNotJoined    = "not_joined"
	codeRateLimited  = "rate_limited"
	codeTooManyRooms = "too_many_rooms"
	codeUnavailable  = "unavailable"
	codeInternal     = "internal"
)

// handleHook, when set (by tests only, before any node starts), runs
// before each decoded request is handled: it lets a test provoke a
// handler panic through the real read path.
var handleHook func(*codec.Request)

// typingEvery is the typing throttle per user and room (docs/protocol.md).
const typingEvery = int64(2 * time.Second)

// session is the gateway's state for one connection. nbio runs a
// connection's frames one at a time, so the fields below the hub client are
// only touched from that one handler at a time.
type session struct {
	srv *Server
	c   *hub.Client

	ident *auth.Identity // nil in anonymous mode; replaced by refresh

	bucket   limit.Bucket
	refusals limit.Refusals
	reader   frameReader  // the WebSocket reader's state, on the poller goroutine
	inbound  atomic.Int64 // bytes of messages read and not yet handled (frameReader)
	pending  *codec.Frame // the reply being built (see frame)
	sid      [4]byte      // session id (see id); random
	expIdx   int32        // place in Server.expiries, -1 when absent; beside sid, in one word
	order    order        // requests handled in order (see order.go)
}

// id is the session id announced in welcome: 8 hex digits.
func (ss *session) id() string { return hex.EncodeToString(ss.sid[:]) }

// welcome sends the first frames: welcome, then the inbox's joined.
func (ss *session) welcome() {
	cfg := &ss.srv.cfg
	f := codec.NewFrame()
	f.B = codec.AppendWelcome(f.B, ss.c.User, ss.id(), cfg.NodeID, int(cfg.Heartbeat/time.Second),
		codec.Limits{MaxMessageBytes: cfg.MaxMessageBytes, Rate: cfg.Rate, Burst: cfg.Burst, MaxRooms: cfg.MaxRooms})
	ss.c.Send(f.Bytes())
	f.Release()
	ss.srv.m.Reply("welcome")
	ss.join(&codec.Request{Type: "join", Room: codec.Inbox(ss.c.User)})
}

// handleFrame handles one client message (text or binary) that arrived at
// now. data is only valid during the call.
func (ss *session) handleFrame(text bool, data []byte, now int64) {
	ss.c.Seen(now)
	// The frame is owed its reply: a close started meanwhile (here, or by
	// a drain or a token's expiry elsewhere) waits until it is written.
	// After a close has started, frames are dropped.
	if !ss.c.Owe() {
		return
	}
	defer ss.c.Repay()
	// A bug in a handler must cost one connection (1011), not the node.
	defer func() {
		if r := recover(); r != nil {
			ss.srv.log.Error("handler panic", "user", ss.c.User, "session", ss.id(), "panic", r,
				"stack", string(debug.Stack()))
			ss.c.Close(closeInternal, "internal error")
		}
	}()
	if !text {
		ss.srv.m.In("invalid")
		if ss.allow(now, "") {
			ss.fail("", codeBadRequest, "binary frames are not supported; send JSON text frames")
		}
		return
	}
	if !utf8.Valid(data) {
		ss.c.Close(closeInvalidUTF8, "invalid UTF-8 in text frame")
		return
	}
	var req codec.Request
	err := codec.DecodeRequest(data, &req)
	if err != nil {
		ss.srv.m.In("invalid")
	} else {
		ss.srv.m.In(req.Type)
	}
	// Application pings are exempt from the rate limit; a frame that failed
	// to decode is not a ping, whatever its type field said.
	if (err != nil || req.Type != "ping") && !ss.allow(now, req.ID) {
		return
	}
	if len(data) == 0 {
		ss.fail("", codeBadRequest, "empty frame: send one JSON object per text frame")
		return
	}
	if err != nil {
		ss.fail(req.ID, codeBadRequest, err.Error())
		return
	}
	ss.handle(&req, now)
}

// allow spends a rate-limit token. A refused frame with an id gets
// rate_limited; too many refusals close the connection with 4002.
func (ss *session) allow(now int64, id string) bool {
	cfg := &ss.srv.cfg
	if ss.bucket.Allow(cfg.Rate, cfg.Burst, now) {
		return true
	}
	ss.srv.m.RateLimited()
	if ss.refusals.Add(now) {
		ss.c.Close(closeAbuse, "repeated rate limit violations")
		return false
	}
	if id != "" {
		ss.fail(id, codeRateLimited, "rate limit exceeded; slow down")
	}
	return false
}

func (ss *session) handle(req *codec.Request, now int64) {
	if handleHook != nil {
		handleHook(req)
	}
	switch req.Type {
	case "join":
		ss.join(req)
	case "leave":
		ss.leave(req)
	case "send":
		ss.send(req)
	case "dm":
		ss.dm(req)
	case "typing":
		ss.typing(req, now)
	case "read":
		ss.read(req)
	case "history":
		ss.history(req)
	case "presence":
		ss.presence(req)
	case "refresh":
		ss.refresh(req)
	case "ping":
		ss.reply("pong", codec.AppendPong(ss.frame(), req.ID))
	default:
		ss.fail(req.ID, codeUnknownType, "unknown type "+quoteShort(req.Type))
	}
}

// frame starts a reply in a pooled buffer; reply finishes and sends it.
// Replies go to one client and are written at once, so the buffer is free
// again as soon as Send returns (nbio copies what the socket does not take).
func (ss *session) frame() []byte {
	f := codec.NewFrame()
	ss.pending = f
	return f.B
}

// typ is the reply's frame type, for gateway_replies_out_total.
func (ss *session) reply(typ string, b []byte) {
	ss.srv.m.Reply(typ)
	f := ss.pending
	ss.pending = nil
	f.B = b
	ss.c.Send(f.Bytes())
	f.Release()
}

func (ss *session) fail(id, code, msg string) {
	ss.srv.m.Error(code)
	ss.sendReply("error", func(b []byte) []byte { return codec.AppendError(b, id, code, msg) })
}

// sendReply builds a reply in a frame of its own and sends it: for replies
// made outside the handler (a cluster publish's ack), which must not touch
// the handler's pending frame.
func (ss *session) sendReply(typ string, build func([]byte) []byte) {
	f := codec.NewFrame()
	f.B = build(f.B)
	ss.srv.m.Reply(typ)
	ss.c.Send(f.Bytes())
	f.Release()
}

// checkRoom validates req.Room for an operation on it; own reports whether
// the room may be the user's own inbox. It replies with the error itself.
func (ss *session) checkRoom(req *codec.Request, allowInbox bool) bool {
	switch {
	case req.Room == "":
		ss.fail(req.ID, codeBadRequest, `missing "room"`)
	case !codec.ValidRoom(req.Room):
		ss.fail(req.ID, codeBadRequest, codec.InvalidRoomMessage)
	case codec.IsInbox(req.Room) && req.Room[1:] != ss.c.User:
		ss.fail(req.ID, codeForbidden, "that is someone else's inbox")
	case codec.IsInbox(req.Room) && !allowInbox:
		ss.fail(req.ID, codeForbidden, "inboxes take direct messages only; use dm")
	default:
		return true
	}
	return false
}

func (ss *session) offline(room string, usersBefore int) {
	if codec.IsInbox(room) {
		return
	}
	ss.srv.announce(room, ss.c.User, false, nil, usersBefore <= ss.srv.hub.PresenceMaxMembers())
}

func (ss *session) leave(req *codec.Request) {
	if !ss.checkRoom(req, true) {
		return
	}
	if codec.IsInbox(req.Room) {
		ss.fail(req.ID, codeForbidden, "the personal inbox cannot be left")
		return
	}
	if !ss.srv.hub.Leave(ss.c, req.Room, ss.offline) {
		ss.fail(req.ID, codeNotJoined, "not joined to "+req.Room)
		return
	}
	ss.srv.backend.Unsubscribe(req.Room)
	ss.reply("left", codec.AppendLeft(ss.frame(), req.ID, req.Room))
}

func (ss *session) typing(req *codec.Request, now int64) {
	if !ss.checkRoom(req, false) {
		return
	}
	member, forward := ss.srv.hub.Typing(ss.c, req.Room, now, typingEvery)
	if !member {
		ss.fail(req.ID, codeNotJoined, "join "+req.Room+" first")
		return
	}
	if forward {
		ev := codec.OwnedFrame(func(b []byte) []byte { return codec.AppendTyping(b, req.Room, ss.c.User) })
		ss.srv.backend.Broadcast(req.Room, ev, ss.c, hub.KindTyping)
	}
}

func (ss *session) read(req *codec.Request) {
	if !ss.checkRoom(req, false) {
		return
	}
	if req.Seq == nil || *req.Seq == 0 {
		ss.fail(req.ID, codeBadRequest, `"seq" must be a positive integer`)
		return
	}
	member, forward := ss.srv.hub.Read(ss.c, req.Room, *req.Seq)
	if !member {
		ss.fail(req.ID, codeNotJoined, "join "+req.Room+" first")
		return
	}
	if forward {
		ev := codec.OwnedFrame(func(b []byte) []byte { return codec.AppendRead(b, req.Room, ss.c.User, *req.Seq) })
		ss.srv.backend.Broadcast(req.Room, ev, ss.c, hub.KindRead)
	}
}

func (ss *session) history(req *codec.Request) {
	if !ss.checkRoom(req, true) {
		return
	}
	if req.Limit != nil && *req.Limit < 0 {
		ss.fail(req.ID, codeBadRequest, `"limit" must not be negative`)
		return
	}
	if !ss.c.IsMember(req.Room) {
		ss.fail(req.ID, codeNotJoined, "join "+req.Room+" before reading its history")
		return
	}
	limit := min(50, ss.srv.cfg.HistorySize)
	if req.Limit != nil {
		limit = min(*req.Limit, ss.srv.cfg.HistorySize)
	}
	before := uint64(math.MaxUint64)
	if req.Before != nil {
		before = *req.Before
	}
	id, room := req.ID, req.Room
	ss.c.OweLater()
	ss.wait()
	ss.srv.backend.Range(room, 0, before, limit, func(p history.Page, err error) {
		defer ss.resume()
		defer ss.c.Repay()
		if err != nil {
			ss.fail(id, codeUnavailable, "history store unavailable")
			return
		}
		raws := make([][]byte, len(p.Messages))
		for i := range p.Messages {
			raws[i] = p.Messages[i].Payload()
		}
		ss.sendReply("history", func(b []byte) []byte { return codec.AppendHistory(b, id, room, raws) })
	})
}

func (ss *session) presence(req *codec.Request) {
	if !ss.checkRoom(req, true) {
		return
	}
	if !ss.ident.MayUse(req.Room) {
		// Who is in a room is the room's business: the list needs no
		// join, but it needs the claim a join needs.
		ss.fail(req.ID, codeForbidden, "your token does not allow room "+req.Room)
		return
	}
	id, room := req.ID, req.Room
	ss.c.OweLater() // in cluster mode the answer comes from Redis, later
	ss.wait()
	ss.srv.presence(room, func(users []string, total int, err error) {
		defer ss.resume()
		defer ss.c.Repay()
		if err != nil {
			ss.fail(id, codeUnavailable, "presence store unavailable")
			return
		}
		ss.sendReply("presence", func(b []byte) []byte { return codec.AppendPresenceList(b, id, room, users, total) })
	})
}

// quoteShort bounds client-chosen text echoed in error messages.
func quoteShort(s string) string {
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	return `"` + s + `"`
}

// refresh replaces the connection's token with req.Token when it verifies
// and names the same user; otherwise the current token stays.
func (ss *session) refresh(req *codec.Request) {
	v := ss.srv.verifier
	if v == nil {
		ss.fail(req.ID, codeUnauthorized, "token refresh needs JWT authentication, which this node does not use")
		return
	}
	id, err := v.Verify(req.Token)
	switch {
	case err != nil:
		ss.fail(req.ID, codeUnauthorized, err.Error())
		return
	case id.User != ss.c.User:
		ss.fail(req.ID, codeUnauthorized, "the token is for another user")
		return
	}
	ss.ident = id
	ss.srv.expiries.set(ss, unixNano(id.Expires))
	ss.reply("ack", codec.AppendAck(ss.frame(), req.ID, "", 0, 0))
}

// unixNano is t in Unix ns, or 0 for the zero time (no expiry).
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
