package gateway

import (
	"math"

	"github.com/chatgw/gateway/codec"
	"github.com/chatgw/gateway/gateway/history"
	"github.com/chatgw/gateway/gateway/hook"
	"github.com/chatgw/gateway/gateway/hub"
)

// A join, in steps that each may wait on the backend (in cluster mode:
// Redis), none of them on nbio's handler goroutine or under a room's lock:
//
//  0. With the join hook on, the application's decision (joinDecided,
//     hooks.go): a refusal ends the join with its error.
//  1. Subscribe: the node will receive every message of the room stored
//     from now on.
//  2. hub.JoinBegin: the connection is a pending member (see package hub).
//  3. Range: the room's position, and the history the join asked for.
//  4. hub.JoinEnd, under the room's lock: the joined frame goes out, built
//     from the read and covering whatever was fanned out meanwhile (read
//     on when the join carries messages), and the member goes live.
//
// The connection's later frames wait meanwhile (session.wait), so its
// replies keep request order.

// joining is one join in progress.
type joining struct {
	ss    *session
	id    string
	room  string
	since *codec.Since
	limit int  // messages asked for (0: none)
	asked bool // "limit" or "since" was given: the frame carries messages
	res   hub.JoinResult
	j     codec.Joined
}

func (ss *session) join(req *codec.Request) {
	if !ss.checkRoom(req, true) {
		return
	}
	if req.Limit != nil && *req.Limit < 0 {
		ss.fail(req.ID, codeBadRequest, `"limit" must not be negative`)
		return
	}
	if !ss.ident.MayUse(req.Room) {
		ss.fail(req.ID, codeForbidden, "your token does not allow room "+req.Room)
		return
	}
	inbox := codec.IsInbox(req.Room)
	if !inbox && !ss.c.IsMember(req.Room) && ss.c.RoomCount() >= ss.srv.cfg.MaxRooms {
		ss.fail(req.ID, codeTooManyRooms, "room limit reached; leave a room first")
		return
	}
	size := ss.srv.cfg.HistorySize
	jn := &joining{ss: ss, id: req.ID, room: req.Room, limit: size, asked: req.Since != nil || req.Limit != nil}
	if req.Limit != nil {
		jn.limit = min(*req.Limit, size)
	}
	if req.Since != nil {
		since := *req.Since
		jn.since = &since
	}
	ss.c.OweLater()
	ss.wait()
	// The application decides joins of rooms, not of the user's own
	// inbox (joined at connect), nor a rejoin, which only reads history
	// again in a room it was let into.
	if ss.srv.hooks.Enabled(hook.EventJoin) && !inbox && !ss.c.IsMember(jn.room) {
		ss.srv.hooks.Decide(hook.EventJoin, hook.JoinRequest{Node: ss.srv.cfg.NodeID, User: ss.c.User,
			Conn: ss.id(), Room: jn.room}, jn.joinDecided)
		return
	}
	ss.srv.backend.Subscribe(jn.room, jn.subscribed)
}

// subscribed is step 2, once the subscription is live.
func (jn *joining) subscribed(err error) {
	ss := jn.ss
	if err != nil {
		jn.end(codeUnavailable, "cluster link unavailable; retry")
		return
	}
	jn.res = ss.srv.hub.JoinBegin(ss.c, jn.room)
	if !jn.res.Added {
		// A membership holds the one reference: the rejoined one, or
		// none when the connection is closing.
		ss.srv.backend.Unsubscribe(jn.room)
	}
	if !jn.res.Added && !jn.res.Rejoin {
		jn.end("", "")
		return
	}
	switch {
	case jn.since != nil:
		ss.srv.backend.Range(jn.room, jn.since.Seq, math.MaxUint64, ss.srv.cfg.HistorySize, jn.resumed)
	case jn.asked:
		ss.srv.backend.Range(jn.room, 0, math.MaxUint64, jn.limit, jn.read)
	default:
		ss.srv.backend.Range(jn.room, 0, 0, 0, jn.read)
	}
}

// resumed is step 3 of a join with since: the messages after since.seq,
// when nothing was lost in between; else the newest limit messages.
func (jn *joining) resumed(p history.Page, err error) {
	if err == nil && p.Epoch == jn.since.Epoch && jn.since.Seq <= p.Latest && p.Complete {
		jn.j.Recovered = true
		jn.read(p, nil)
		return
	}
	if err != nil {
		jn.read(p, err)
		return
	}
	jn.ss.srv.backend.Range(jn.room, 0, math.MaxUint64, jn.limit, jn.read)
}

// read is step 3's answer: the room's position and the messages for the
// frame; then step 4.
func (jn *joining) read(p history.Page, err error) {
	if err != nil {
		jn.abandon()
		return
	}
	jn.j.ID, jn.j.Room, jn.j.Seq, jn.j.Epoch = jn.id, jn.room, p.Latest, p.Epoch
	if jn.j.Messages == nil {
		jn.j.Messages = [][]byte{}
	}
	jn.add(p.Messages)
	jn.finish()
}

// add appends messages after those the frame holds, keeping the newest
// limit when the join asked for a limit rather than a resume.
func (jn *joining) add(msgs []history.Message) {
	for i := range msgs {
		jn.j.Messages = append(jn.j.Messages, msgs[i].Payload())
		// A message stored between the read of the position and of the
		// messages is covered by the frame: the live stream goes on after.
		jn.j.Seq = max(jn.j.Seq, msgs[i].Seq)
	}
	if !jn.j.Recovered && len(jn.j.Messages) > jn.limit {
		jn.j.Messages = jn.j.Messages[len(jn.j.Messages)-jn.limit:]
	}
}

// finish is step 4: the frame goes out and the member goes live, unless
// messages were fanned out past what the frame covers, which a frame with
// messages must then read first.
func (jn *joining) finish() {
	ss := jn.ss
	var more uint64 // read on up to this seq
	var f *codec.Frame
	in := ss.srv.hub.JoinEnd(ss.c, jn.room, func(noted uint64) ([]byte, uint64, bool) {
		if noted > jn.j.Seq {
			if jn.asked {
				more = noted
				return nil, 0, false
			}
			jn.j.Seq = noted // no messages in the frame: it starts later
		}
		f = codec.NewFrame()
		f.B = codec.AppendJoined(f.B, &jn.j)
		return f.Bytes(), jn.j.Seq, true
	})
	if f != nil {
		f.Release()
	}
	switch {
	case !in: // the connection closed, or a leave overtook the join
		jn.end("", "")
	case more > 0:
		ss.srv.backend.Range(jn.room, jn.j.Seq, more+1, ss.srv.cfg.HistorySize, func(p history.Page, err error) {
			if err != nil {
				jn.abandon()
				return
			}
			jn.add(p.Messages)
			jn.j.Seq = max(jn.j.Seq, more)
			jn.finish()
		})
	default:
		ss.srv.m.Reply("joined")
		if jn.res.FirstConn && !codec.IsInbox(jn.room) {
			ss.srv.announce(jn.room, ss.c.User, true, ss.c, jn.res.Users <= ss.srv.hub.PresenceMaxMembers())
		}
		jn.end("", "")
	}
}

// abandon undoes a join whose history could not be read.
func (jn *joining) abandon() {
	ss := jn.ss
	if jn.res.Added && ss.srv.hub.Leave(ss.c, jn.room, nil) {
		ss.srv.backend.Unsubscribe(jn.room)
	}
	jn.end(codeUnavailable, "history store unavailable")
}

// end answers with an error (when code is set), repays the reply and lets
// the connection's next frames in.
func (jn *joining) end(code, msg string) {
	ss := jn.ss
	if code != "" {
		ss.fail(jn.id, code, msg)
	}
	ss.c.Repay()
	ss.resume()
}
