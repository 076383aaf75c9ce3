package gateway

import (
	"errors"
	"time"

	"github.com/chatgw/gateway/codec"
	"github.com/chatgw/gateway/gateway/backend"
	"github.com/chatgw/gateway/gateway/history"
	"github.com/chatgw/gateway/gateway/hook"
)

// Publishing: a member's send and dm, and the path every message takes
// (the server API's too) to the backend, which stores it, gives it its
// seq and fans it out. Acks come back through the backend: at once on a
// node alone, from Redis's round trip in cluster mode; they are replies
// owed (hub.Client.OweLater) but do not hold the connection's later
// requests back (order.go), except while the application's publish hook
// decides about a message (askPublish, hooks.go): then the connection's
// later frames wait, so that its messages are stored in request order.

// checkBody validates a send or dm body: text (a string) or data (any JSON
// value but null), at least one.
func (ss *session) checkBody(req *codec.Request) bool {
	if (req.Text == nil || *req.Text == "") && len(req.Data) == 0 {
		ss.fail(req.ID, codeBadRequest, `a message needs a non-empty "text" or a "data" value`)
		return false
	}
	return true
}

func (ss *session) send(req *codec.Request) {
	if !ss.checkRoom(req, false) || !ss.checkBody(req) {
		return
	}
	if !ss.c.IsMember(req.Room) {
		ss.fail(req.ID, codeNotJoined, "join "+req.Room+" before sending to it")
		return
	}
	if !ss.ident.MayUse(req.Room) { // a refresh may have narrowed the claim
		ss.fail(req.ID, codeForbidden, "your token does not allow room "+req.Room)
		return
	}
	ss.c.OweLater() // repaid by ackOrFail, which may run on another goroutine
	m := &codec.Message{Room: req.Room, From: ss.c.User, Text: req.Text, Data: req.Data}
	id, key := req.ID, req.Key
	if ss.srv.hooks.Enabled(hook.EventPublish) {
		ss.askPublish(id, "", m, func() { ss.publishSend(id, key, m) })
		return
	}
	ss.publishSend(id, key, m)
}

// publishSend hands a send's message to the backend; ackOrFail answers.
func (ss *session) publishSend(id, key string, m *codec.Message) {
	ss.srv.publish(m.Room, ss.c.User, key, m, func(ack backend.Ack, err error) { ss.ackOrFail(id, ack, err) })
}

func (ss *session) dm(req *codec.Request) {
	if req.To == "" || !codec.ValidName(req.To) {
		ss.fail(req.ID, codeBadRequest, codec.UserFieldMessage("to"))
		return
	}
	if !ss.checkBody(req) {
		return
	}
	ss.c.OweLater() // repaid by ackOrFail, which may run on another goroutine
	to := &codec.Message{From: ss.c.User, To: req.To, Text: req.Text, Data: req.Data, Room: codec.Inbox(req.To)}
	id, key := req.ID, req.Key
	if ss.srv.hooks.Enabled(hook.EventPublish) {
		ss.askPublish(id, req.To, to, func() { ss.publishDM(id, key, to) })
		return
	}
	ss.publishDM(id, key, to)
}

// publishDM hands a DM to the backend, in the recipient's inbox, then a
// copy in the sender's; ackOrFail answers.
func (ss *session) publishDM(id, key string, to *codec.Message) {
	self := to.To == ss.c.User
	ss.srv.publish(to.Room, ss.c.User, key, to, func(ack backend.Ack, err error) {
		if err != nil || ack.Dup || self {
			ss.ackOrFail(id, ack, err)
			return
		}
		// The sender's other connections see what it sent, in its inbox.
		echo := *to
		echo.Room = codec.Inbox(ss.c.User)
		ss.srv.publish(echo.Room, ss.c.User, "", &echo, func(_ backend.Ack, err error) { ss.ackOrFail(id, ack, err) })
	})
}

// publish stores m in room (setting its seq and ts) and fans it out through
// the backend, then calls done with the ack. With a key already used by
// user, the ack is the original one and nothing else happens. done runs
// before publish returns on a node alone, later and on the backend's
// goroutine in cluster mode.
func (s *Server) publish(room, user, key string, m *codec.Message, done func(backend.Ack, error)) {
	enc := func(seq uint64, ts int64) []byte {
		m.Seq, m.TS = seq, ts
		return codec.OwnedFrame(func(b []byte) []byte { return codec.AppendMessage(b, m) })
	}
	start := time.Now()
	s.backend.Publish(room, user, key, enc, func(a backend.Ack, err error) {
		if err == nil && !a.Dup {
			s.published.Add(1)
			s.m.Published(time.Since(start))
			// Stored, and readable by Range: the message notifier may
			// read it (a repeated key stored nothing new).
			s.hooks.Stored(room, a.Seq)
		}
		done(a, err)
	})
}

// ackOrFail answers a send or dm, whose reply was owed (see hub.Client.Owe);
// it may run outside the handler.
func (ss *session) ackOrFail(id string, ack backend.Ack, err error) {
	defer ss.c.Repay()
	switch {
	case errors.Is(err, history.ErrUnavailable):
		ss.fail(id, codeUnavailable, "history store unavailable; retry with the same key")
	case err != nil:
		ss.fail(id, codeInternal, "could not store the message")
	default:
		ss.sendReply("ack", func(b []byte) []byte { return codec.AppendAck(b, id, ack.Room, ack.Seq, ack.TS) })
	}
}
