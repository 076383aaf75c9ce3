package bench

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// Proto is how the harness speaks to one kind of server: the gateway's own
// protocol, Centrifugo's JSON protocol, or a plain broadcast server (the
// gorilla/websocket chat example, a Node ws server) that sends every text
// message to every client. The scenarios that take a Target.Proto (idle,
// connect, fanout, ramp) are the same for each; only what goes over the
// socket differs:
//
//   - the handshake's path and query;
//   - setup: what to send after the upgrade, and which replies to wait for,
//     before the connection counts as joined to its rooms;
//   - the publish frame for room R with text T (the harness patches the
//     send timestamp into T in place, so T is the frame's only variable
//     part);
//   - how to recognise a delivery to room R in a received text frame and
//     find its timestamp (scan; nil for the gateway, whose deliveries carry
//     per-room seqs that fanLoad.onText checks);
//   - pings carried in text frames, which the harness must answer.
type Proto struct {
	Name string
	// Path is the WebSocket endpoint's default path (Target.Path overrides).
	Path string
	// Seqs: deliveries carry per-room sequence numbers, and a load checks
	// them for gaps and duplicates. Without them only loss is counted.
	Seqs bool
	// OneRoom: the server has a single implicit room that every
	// connection is in; a load can have only one room.
	OneRoom bool
	// Limits: the server announces its limits in a welcome frame, which a
	// load is checked against before it starts (cmd/wsbench).
	Limits bool

	// query is the handshake's query string for user ("" or "?...").
	query func(user string) string
	// setup runs right after the upgrade, on the blocking socket: it joins
	// rooms, writing to w and reading text frames with read, and returns
	// the frames it read.
	setup func(w io.Writer, read func() ([]byte, error), user string, rooms []string) ([][]byte, error)
	// publish returns what comes before and after the text in a publish to
	// room.
	publish func(room string) (head, tail string)
	// scan reports to s each delivery to c's room, and each error reply,
	// in the text frame p. nil: the gateway's (fanLoad.onText).
	scan func(p []byte, c *Conn, s sink)
	// ping reports whether text frame p carries a ping the client must
	// answer with pingReply (a masked frame). nil: none do.
	ping      func(p []byte) bool
	pingReply []byte
}

// sink takes what Proto.scan finds.
type sink interface {
	// deliver counts a delivery to c; ts is its send time (Unix ns) from
	// the message text, or -1 when the text carried none.
	deliver(c *Conn, ts int64)
	// failed counts an error reply.
	failed(c *Conn)
}

// ProtoGateway is the gateway's protocol: the user in the handshake's
// query, welcome and the inbox's joined frame first, a join per room, and
// deliveries with per-room seqs.
var ProtoGateway = &Proto{
	Name: "gateway", Path: "/ws", Seqs: true, Limits: true,
	query: func(user string) string { return "?user=" + user },
	setup: gatewaySetup,
	publish: func(room string) (string, string) {
		return `{"type":"send","room":"` + room + `","text":"`, `"}`
	},
}

// ProtoCentrifugo is Centrifugo's JSON protocol (v6, bidirectional
// WebSocket): connect, then a subscribe per room (channel), each awaited by
// its command id; publishes go to the channel; deliveries are push
// publications, several replies and pushes to a frame, one per line. The
// server's ping is an empty object, {}, answered with {}.
var ProtoCentrifugo = &Proto{
	Name: "centrifugo", Path: "/connection/websocket",
	query: func(string) string { return "" },
	setup: centrifugoSetup,
	publish: func(room string) (string, string) {
		// Every publish has the same id: the replies are not waited for.
		return `{"id":3,"publish":{"channel":"` + room + `","data":{"text":"`, `"}}}`
	},
	scan:      centrifugoScan,
	ping:      centrifugoPing,
	pingReply: Mask([]byte("{}")),
}

// ProtoBroadcast is a plain broadcast server's: no setup, one implicit
// room, the text sent as it is and sent back to everyone, the sender
// included. A frame may hold several messages separated by newlines (the
// gorilla chat example puts what is queued for a client in one frame).
var ProtoBroadcast = &Proto{
	Name: "broadcast", Path: "/ws", OneRoom: true,
	query: func(string) string { return "" },
	setup: func(io.Writer, func() ([]byte, error), string, []string) ([][]byte, error) { return nil, nil },
	publish: func(string) (string, string) {
		return "", ""
	},
	scan: broadcastScan,
}

// Protos are the protocols by name.
var Protos = []*Proto{ProtoGateway, ProtoCentrifugo, ProtoBroadcast}

// ProtoNamed returns the protocol called name.
func ProtoNamed(name string) (*Proto, error) {
	for _, p := range Protos {
		if p.Name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("bench: unknown protocol %q (gateway, centrifugo or broadcast)", name)
}

// gatewaySetup reads welcome and the inbox's joined frame, then joins rooms
// one by one, reading each joined reply.
func gatewaySetup(w io.Writer, read func() ([]byte, error), _ string, rooms []string) ([][]byte, error) {
	var frames [][]byte
	for i := 0; i < 2; i++ {
		p, err := read()
		if err != nil {
			return nil, err
		}
		frames = append(frames, p)
	}
	for _, room := range rooms {
		if _, err := w.Write(Mask([]byte(`{"type":"join","id":"j","room":"` + room + `"}`))); err != nil {
			return nil, err
		}
		for {
			p, err := read()
			if err != nil {
				return nil, err
			}
			if bytes.HasPrefix(p, []byte(`{"type":"joined","id":"j"`)) {
				frames = append(frames, p)
				break
			}
		}
	}
	return frames, nil
}

// centrifugoSetup connects (command id 1) and subscribes to each room (ids
// 2, 3, ...), waiting for each reply.
func centrifugoSetup(w io.Writer, read func() ([]byte, error), _ string, rooms []string) ([][]byte, error) {
	var frames [][]byte
	await := func(cmd string, id int) error {
		if _, err := w.Write(Mask([]byte(cmd))); err != nil {
			return err
		}
		want := []byte(`{"id":` + strconv.Itoa(id) + `,`)
		for {
			p, err := read()
			if err != nil {
				return err
			}
			frames = append(frames, p)
			for rest := p; len(rest) > 0; {
				var line []byte
				line, rest = nextLine(rest)
				if !bytes.HasPrefix(line, want) {
					continue
				}
				if bytes.HasPrefix(line[len(want):], []byte(`"error"`)) {
					return fmt.Errorf("bench: centrifugo refused %s: %s", cmd, line)
				}
				return nil
			}
		}
	}
	if err := await(`{"id":1,"connect":{}}`, 1); err != nil {
		return nil, err
	}
	for i, room := range rooms {
		if err := await(`{"id":`+strconv.Itoa(i+2)+`,"subscribe":{"channel":"`+room+`"}}`, i+2); err != nil {
			return nil, err
		}
	}
	return frames, nil
}

var (
	cfPush  = []byte(`{"push":{"channel":"`)
	cfPub   = []byte(`"pub":{`)
	cfReply = []byte(`{"id":`)
	cfError = []byte(`"error":{`)
)

// centrifugoScan reports each publication pushed to c's room (channel) and
// each error reply in p, one JSON object per line.
func centrifugoScan(p []byte, c *Conn, s sink) {
	for len(p) > 0 {
		var line []byte
		line, p = nextLine(p)
		switch {
		case bytes.HasPrefix(line, cfPush):
			rest := line[len(cfPush):]
			if !bytes.HasPrefix(rest, []byte(c.Room)) || len(rest) <= len(c.Room) || rest[len(c.Room)] != '"' {
				continue // another channel's
			}
			if !bytes.Contains(rest[len(c.Room):], cfPub) {
				continue // a push other than a publication (unsubscribe, join, ...)
			}
			ts := int64(-1)
			if v, ok := field(line, `"text":"b`); ok {
				ts = int64(v)
			}
			s.deliver(c, ts)
		case bytes.HasPrefix(line, cfReply) && bytes.Contains(line, cfError):
			s.failed(c)
		}
	}
}

// centrifugoPing reports whether p holds Centrifugo's ping, an empty object
// on a line of its own.
func centrifugoPing(p []byte) bool {
	for len(p) > 0 {
		var line []byte
		line, p = nextLine(p)
		if len(line) == 2 && line[0] == '{' && line[1] == '}' {
			return true
		}
	}
	return false
}

// broadcastScan reports each message in p, one per line, that is a
// harness message ("b" and the send timestamp's digits first).
func broadcastScan(p []byte, c *Conn, s sink) {
	for len(p) > 0 {
		var line []byte
		line, p = nextLine(p)
		if len(line) < 1+tsDigits || line[0] != 'b' {
			continue
		}
		var ts int64
		for _, d := range line[1 : 1+tsDigits] {
			if d < '0' || d > '9' {
				ts = -1
				break
			}
			ts = ts*10 + int64(d-'0')
		}
		if ts >= 0 {
			s.deliver(c, ts)
		}
	}
}

// nextLine splits p at its first newline.
func nextLine(p []byte) (line, rest []byte) {
	if i := bytes.IndexByte(p, '\n'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return p, nil
}

// proto returns t's protocol (the gateway's when none is set).
func (t Target) proto() *Proto {
	if t.Proto == nil {
		return ProtoGateway
	}
	return t.Proto
}

// path returns the handshake path for t.
func (t Target) path() string {
	if t.Path != "" {
		return t.Path
	}
	return t.proto().Path
}

// newEngineFor starts a client engine that speaks t's protocol.
func newEngineFor(t Target, pollers int) (*Engine, error) {
	e, err := NewEngine(t.Addr, t.Srcs, pollers)
	if err != nil {
		return nil, err
	}
	e.proto, e.path = t.proto(), t.path()
	return e, nil
}

// checkRooms refuses a load of more than one room on a one-room protocol.
func (t Target) checkRooms(rooms int) error {
	if p := t.proto(); p.OneRoom && rooms != 1 {
		return fmt.Errorf("bench: the %s protocol has one implicit room: rooms must be 1 (got %d)", p.Name, rooms)
	}
	return nil
}
