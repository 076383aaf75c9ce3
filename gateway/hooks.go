package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/goccy/go-json"

	"github.com/chatgw/gateway/codec"
	"github.com/chatgw/gateway/gateway/auth"
	"github.com/chatgw/gateway/gateway/cluster"
	"github.com/chatgw/gateway/gateway/history"
	"github.com/chatgw/gateway/gateway/hook"
)

// Hooks to the application behind the gateway (package hook,
// docs/hooks.md): the join and publish decisions the gateway waits for,
// and the message, presence and disconnect notifications it sends after
// the fact. Server.hooks is nil when --hook-url is not set; every hook
// method works on nil and does nothing, so the handlers call them
// unconditionally.

// newHooks starts the node's hooks, when --hook-url is set. store is a
// node alone's history store, which message notifications are read from
// (nil in cluster mode, where they come from Redis through a
// cluster.HookSource); disk is it when it is the durable one, which keeps
// the cursors.
func (s *Server) newHooks(store history.Store, disk *history.Disk) (*hook.Hooks, error) {
	cfg := &s.cfg
	if cfg.HookURL == "" {
		return nil, nil
	}
	events, _ := hook.ParseEvents(cfg.HookEvents) // Validate checked it
	hc := hook.Config{
		URL: cfg.HookURL, Events: events, Timeout: cfg.HookTimeout,
		Secret: cfg.HookSecret, FailOpen: cfg.HookFail == "open", Logger: s.log,
	}
	var src hook.Source
	switch n, ok := s.backend.(*cluster.Node); {
	case ok && events.Has(hook.EventMessage):
		// One node at a time holds the notifier lease in Redis and sends
		// the cluster's messages from cursors every node reads; the rescan
		// finds the rooms other nodes wrote.
		cs := cluster.NewHookSource(n, cluster.HookOptions{})
		src, s.hookSource, hc.Rescan = cs, cs, time.Second
	case disk != nil:
		src = diskHookSource{disk}
	case store != nil:
		src = newMemHookSource(store)
	}
	h, err := hook.New(hc, src, s.m.Registry())
	if err != nil {
		if s.hookSource != nil {
			_ = s.hookSource.Close()
		}
		return nil, fmt.Errorf("gateway: --hook-url: %w", err)
	}
	return h, nil
}

// diskHookSource is hook.Source over the durable store, which keeps the
// cursors in its own file, so notifications resume across restarts.
type diskHookSource struct{ *history.Disk }

func (d diskHookSource) Range(room string, after uint64, limit int) ([]hook.Message, error) {
	return hook.HistoryRange(d.Disk, room, after, limit)
}

// Pending: the rooms behind their cursor.
func (d diskHookSource) Pending() ([]string, error) { return d.Behind() }

// memHookSource is hook.Source over the memory store. The hook package
// calls it from its message sender's goroutine only, one call at a time,
// so its maps need no lock. Its cursors are kept here, in memory: they
// resume notifications across an outage of the application, not across a
// restart, which loses the memory history itself.
type memHookSource struct {
	store   history.Store
	cursors map[string]roomCursor
	pruneAt int               // prune the cursors of rooms dropped when there are this many
	read    map[string]string // room -> epoch of the messages Range last returned, until SetCursor
}

// roomCursor is a memory-store cursor: the last seq notified and the
// epoch it belongs to.
type roomCursor struct {
	seq   uint64
	epoch string
}

// minPrune is the fewest memory-store cursors worth a pass over them.
const minPrune = 1024

func newMemHookSource(store history.Store) *memHookSource {
	return &memHookSource{store: store, cursors: map[string]roomCursor{}, read: map[string]string{}, pruneAt: minPrune}
}

// Range implements hook.Source.
func (hs *memHookSource) Range(room string, after uint64, limit int) ([]hook.Message, error) {
	msgs, epoch, err := hook.HistoryRangeEpoch(hs.store, room, after, limit)
	if err == nil && len(msgs) > 0 {
		// SetCursor saves the seq in the epoch of the messages it names,
		// not the room's epoch by then: a room dropped and started over
		// while the batch was retried must not have its new seqs skipped.
		hs.read[room] = epoch
	}
	return msgs, err
}

// Cursor implements hook.Source: 0 for a room whose history was dropped
// and started over since the cursor was saved.
func (hs *memHookSource) Cursor(room string) (uint64, error) {
	c, ok := hs.cursors[room]
	if !ok {
		return 0, nil
	}
	p, err := hs.store.Range(room, 0, 0, 0)
	if err != nil {
		return 0, err
	}
	if p.Epoch != c.epoch {
		delete(hs.cursors, room)
		return 0, nil
	}
	return c.seq, nil
}

// SetCursor implements hook.Source.
func (hs *memHookSource) SetCursor(room string, seq uint64) error {
	epoch, ok := hs.read[room]
	delete(hs.read, room)
	if !ok {
		p, err := hs.store.Range(room, 0, 0, 0)
		if err != nil {
			return err
		}
		epoch = p.Epoch
	}
	hs.cursors[room] = roomCursor{seq: seq, epoch: epoch}
	if len(hs.cursors) >= hs.pruneAt {
		hs.prune()
	}
	return nil
}

// prune forgets the cursors of rooms the memory store dropped (their epoch
// is not the room's any more), so that the map follows the rooms the store
// holds rather than every room ever notified. Run when the map doubled
// since the last pass: its cost is spread over the cursors saved.
func (hs *memHookSource) prune() {
	for room, c := range hs.cursors {
		if p, err := hs.store.Range(room, 0, 0, 0); err == nil && p.Epoch != c.epoch {
			delete(hs.cursors, room)
		}
	}
	hs.pruneAt = max(minPrune, 2*len(hs.cursors))
}

// Pending implements hook.Source: the memory store starts empty with the
// process, and every message this node stores is reported by Stored: none
// is behind at start.
func (hs *memHookSource) Pending() ([]string, error) { return nil, nil }

// The application's texts go to clients in error frames, whose message is
// bounded like any the gateway writes.
const maxHookReason = 256

// hookReason is the application's deny reason as a client is shown it:
// valid UTF-8, at most maxHookReason bytes, cut at a character.
func hookReason(reason string) string {
	return codec.Truncate(strings.ToValidUTF8(reason, "\uFFFD"), maxHookReason)
}

// joinDecided is a join's answer from the application: on Allow the join
// goes on (step 1, Subscribe); otherwise it ends with the client's error.
func (jn *joining) joinDecided(d hook.Decision) {
	jn.ss.srv.hookFailed(hook.EventJoin, d)
	switch d.Verdict {
	case hook.Allow:
		jn.ss.srv.backend.Subscribe(jn.room, jn.subscribed)
	case hook.Deny:
		jn.end(codeForbidden, hookReason(d.Reason))
	default:
		jn.end(codeUnavailable, "the application could not be asked about this join; retry")
	}
}

// hookFailed logs a decision whose call failed (the fail mode decided),
// within the node's log rate limit: an application that is down fails
// every decision, and gateway_hook_failures_total counts them all.
func (s *Server) hookFailed(e hook.Event, d hook.Decision) {
	if d.Err != nil {
		s.logs.line("hook decision failed", "event", e.String(), "verdict", d.Verdict.String(), "err", d.Err)
	}
}

// askPublish holds a send or DM (its reply owed: OweLater) for the
// application's publish decision, then calls publish, which hands m to the
// backend, with m's text and data as the application replaced them. The
// connection's later frames wait meanwhile, and until publish has
// returned, so that its sends are stored in the order it made them. A
// refused message is answered with its error here.
//
// The answer may come after the connection closed; the message is still
// published when allowed, as a send handled just before a close is: the
// client sent it first. Replies to a closed connection are dropped by the
// hub.
func (ss *session) askPublish(id, to string, m *codec.Message, publish func()) {
	ss.wait()
	req := hook.PublishRequest{Node: ss.srv.cfg.NodeID, User: ss.c.User, Conn: ss.id(),
		Room: m.Room, To: to, Text: m.Text, Data: m.Data}
	ss.srv.hooks.Decide(hook.EventPublish, req, func(d hook.Decision) {
		defer ss.resume()
		ss.srv.hookFailed(hook.EventPublish, d)
		code, msg := "", ""
		switch d.Verdict {
		case hook.Deny:
			code, msg = codeForbidden, hookReason(d.Reason)
		case hook.Unavailable:
			code, msg = codeUnavailable, "the application could not be asked about this message; retry with the same key"
		default:
			msg = ss.rewrite(m, d)
			code = codeInternal
		}
		if msg != "" {
			ss.fail(id, code, msg)
			ss.c.Repay()
			return
		}
		publish()
	})
}

// rewrite applies an allowing decision's replacements to m, and returns
// why the result cannot be published ("" when it can). An empty text
// replacement removes the text. A message left empty, or larger than a
// client may send (text and data bytes over --max-message-bytes), is the
// application's mistake, not the client's: the send fails with internal
// rather than storing what the client could never have sent.
func (ss *session) rewrite(m *codec.Message, d hook.Decision) string {
	if d.Text == nil && d.Data == nil {
		return ""
	}
	text, data := m.Text, m.Data
	if d.Text != nil {
		text = nil
		if *d.Text != "" {
			t := *d.Text
			text = &t
		}
	}
	if d.Data != nil {
		data = d.Data
	}
	n := len(data)
	if text != nil {
		n += len(*text)
	}
	switch {
	case n == 0:
		return "the application's rewrite left the message empty"
	case n > ss.srv.cfg.MaxMessageBytes:
		return fmt.Sprintf("the application's rewrite made the message %d bytes, over the %d allowed", n, ss.srv.cfg.MaxMessageBytes)
	}
	m.Text, m.Data = text, data
	return ""
}

// notifyPresence tells the application that user came online in room, or
// went offline, on this node (and, in cluster mode, on no other).
func (s *Server) notifyPresence(room, user string, online bool) {
	if !s.hooks.Enabled(hook.EventPresence) {
		return
	}
	s.hooks.Notify(hook.EventPresence, hook.PresenceEvent{Node: s.cfg.NodeID, Room: room, User: user,
		Online: online, TS: time.Now().UnixMilli()})
}

// notifyDisconnect tells the application that a connection ended, with the
// close code it is counted with and what that code means.
func (s *Server) notifyDisconnect(ss *session, code int) {
	if !s.hooks.Enabled(hook.EventDisconnect) {
		return
	}
	s.hooks.Notify(hook.EventDisconnect, hook.DisconnectEvent{Node: s.cfg.NodeID, User: ss.c.User, Conn: ss.id(),
		Code: closeCodeOf(code), Reason: closeReason(code), TS: time.Now().UnixMilli()})
}

// maxConnectDecisions bounds the handshakes waiting for the application's
// connect decision at once; past it a handshake is refused with 503 at
// once (clients retry with backoff).
const maxConnectDecisions = 64

// decideConnect asks the application whether the handshake r, of user
// (ident: its token's identity, nil for ?user=), may connect, and returns
// the user and identity to connect as, or the HTTP status and reason
// refusing it.
//
// It waits on the handler goroutine serving this one request: nbio answers
// an HTTP request when its handler returns, and the 403 the application
// asked for must be the handshake's answer, which browsers' clients can
// then tell from a network failure by retrying only on 503. What keeps
// that wait from holding up other connections is the bound: at most
// maxConnectDecisions handler goroutines of nbio's pool (thousands;
// every other connection's frames run on the others) wait at once, each
// for at most --hook-timeout, and the rest are refused with 503 without
// waiting.
func (s *Server) decideConnect(r *http.Request, user string, ident *auth.Identity, ip string) (string, *auth.Identity, int, string) {
	select {
	case s.connectSlots <- struct{}{}:
		defer func() { <-s.connectSlots }()
	default:
		return "", nil, http.StatusServiceUnavailable, "node busy: too many connections waiting for the application; retry with backoff"
	}
	req := hook.ConnectRequest{Node: s.cfg.NodeID, User: user, RemoteAddr: ip, Query: connectQuery(r)}
	if ident != nil {
		req.Claims = identityClaims(ident)
	}
	answer := make(chan hook.Decision, 1)
	s.hooks.Decide(hook.EventConnect, req, func(d hook.Decision) { answer <- d })
	d := <-answer
	s.hookFailed(hook.EventConnect, d)
	switch d.Verdict {
	case hook.Deny:
		return "", nil, http.StatusForbidden, hookReason(d.Reason)
	case hook.Unavailable:
		return "", nil, http.StatusServiceUnavailable, "the application could not be asked about this connection; retry with backoff"
	}
	if d.User == "" && d.Rooms == nil {
		return user, ident, 0, ""
	}
	if d.User != "" && !codec.ValidName(d.User) {
		s.logs.line("hook connect answer refused", "reason", "user is not a valid name")
		return "", nil, http.StatusServiceUnavailable, "the application answered with an invalid user name"
	}
	id := auth.Identity{User: user}
	if ident != nil {
		id = *ident
	}
	if d.User != "" {
		id.User = d.User
	}
	if d.Rooms != nil {
		id.Rooms = d.Rooms
	}
	return id.User, &id, 0, ""
}

// connectQuery is the upgrade's query parameters for the connect
// decision, the token left out (it is a credential; its claims go
// verified in token_claims).
func connectQuery(r *http.Request) map[string]string {
	q := r.URL.Query()
	q.Del("token")
	if len(q) == 0 {
		return nil
	}
	out := make(map[string]string, len(q))
	for k, v := range q {
		out[k] = v[0]
	}
	return out
}

// identityClaims is what the node verified of a token, as JSON claims: the
// application gets what the node will act on, not the raw token.
func identityClaims(id *auth.Identity) json.RawMessage {
	c := struct {
		Sub   string   `json:"sub"`
		Name  string   `json:"name,omitempty"`
		Exp   int64    `json:"exp,omitempty"`
		Rooms []string `json:"rooms,omitempty"`
	}{Sub: id.User, Name: id.Name, Rooms: id.Rooms}
	if !id.Expires.IsZero() {
		c.Exp = id.Expires.Unix()
	}
	b, _ := json.Marshal(c)
	return b
}
