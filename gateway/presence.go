package gateway

import (
	"github.com/chatgw/gateway/codec"
	"github.com/chatgw/gateway/gateway/hub"
)

// presenceListMax bounds the users listed in a presence reply.
const presenceListMax = 1000

// announce records that user came online in room (its first connection
// there joined) or went offline (its last one left), and tells the room
// when event says the node's own count is within the presence cap. The
// backend records the user whatever the room's size (presence lists count
// every member) and has the last word: no event when the user is online in
// the room through another node, or when the room's entries across nodes
// pass the cap. The presence hook is told of every change the backend
// records, whatever the room's size.
func (s *Server) announce(room, user string, online bool, exclude *hub.Client, event bool) {
	max := s.hub.PresenceMaxMembers()
	done := func(elsewhere bool, entries int) {
		if elsewhere {
			return
		}
		// The application hears of every room: the cap spares a big
		// room's members a storm of events, and a hook gets one event
		// per change, batched.
		s.notifyPresence(room, user, online)
		if event && entries <= max {
			s.broadcastPresence(room, user, online, exclude)
		}
	}
	if online {
		s.backend.PresenceJoin(room, user, done)
	} else {
		s.backend.PresenceLeave(room, user, done)
	}
}

func (s *Server) broadcastPresence(room, user string, online bool, exclude *hub.Client) {
	ev := codec.OwnedFrame(func(b []byte) []byte { return codec.AppendPresenceEvent(b, room, user, online) })
	s.backend.Broadcast(room, ev, exclude, hub.KindPresence)
}

// presence lists room's users and calls done with up to presenceListMax of
// them and their count, from the backend (later, on its goroutine, in
// cluster mode). An inbox's list is this node's: the user's connections
// here.
func (s *Server) presence(room string, done func(users []string, total int, err error)) {
	if codec.IsInbox(room) {
		users, total := s.hub.Presence(room, presenceListMax)
		done(users, total, nil)
		return
	}
	s.backend.PresenceList(room, presenceListMax, done)
}
