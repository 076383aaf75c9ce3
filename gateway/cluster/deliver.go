package cluster

import (
	"github.com/chatgw/gateway/codec"
	"github.com/chatgw/gateway/gateway/backend"
	"github.com/chatgw/gateway/gateway/hub"
)

// hubSink delivers what the node's subscription carries to the node's hub.
type hubSink struct{ n *Node }

// Message fans a stored message out to the room's local members; the
// subscriber calls it in seq order.
func (k hubSink) Message(room string, seq uint64, frame []byte) {
	k.n.cfg.Hub.Publish(room, func() ([]byte, uint64, bool) { return frame, seq, true })
}

// Event delivers another node's typing, read or presence frame.
func (k hubSink) Event(room string, kind hub.Kind, frame []byte) {
	k.n.cfg.Hub.Broadcast(room, frame, nil, kind)
}

// Offline tells the room, on every node, that user went offline: its
// presence expired (a node died without cleaning up) and this node swept it.
func (k hubSink) Offline(room, user string) {
	ev := codec.OwnedFrame(func(b []byte) []byte { return codec.AppendPresenceEvent(b, room, user, false) })
	k.n.Broadcast(room, ev, nil, hub.KindPresence)
}

// Lost tells the room's members that its history was lost, as
// docs/protocol.md says: an unsolicited joined with the new epoch,
// recovered false and the room's current seq, from which the seq order
// continues.
func (k hubSink) Lost(room string, latest uint64, epoch string) {
	j := codec.Joined{Room: room, Seq: latest, Epoch: epoch, Messages: [][]byte{}}
	frame := codec.OwnedFrame(func(b []byte) []byte { return codec.AppendJoined(b, &j) })
	k.n.cfg.Hub.Reset(room, latest, frame)
}

// Broadcast sends a frame outside history (typing, read, presence) to the
// room's members: this node's through its hub at once (but exclude), the
// other nodes' through Redis. Best effort: dropped for the other nodes when
// the queue is full or Redis is down.
func (n *Node) Broadcast(room string, frame []byte, exclude *hub.Client, kind hub.Kind) {
	if n.cfg.Hub != nil {
		n.cfg.Hub.Broadcast(room, frame, exclude, kind)
	}
	n.Event(room, kind, frame[codec.HeaderLen(frame):])
}

// Node is the Redis backend.
var _ backend.Backend = (*Node)(nil)
