package gateway

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/goccy/go-json"

	"github.com/chatgw/gateway/codec"
	"github.com/chatgw/gateway/gateway/backend"
	"github.com/chatgw/gateway/gateway/history"
)

// The server API, for the application's backend, on the admin listener
// behind --api-key. Replies are JSON; errors look like the protocol's error
// frame, {"type":"error","code":...,"message":...}, with its codes.

func (s *Server) mountAPI(mux *http.ServeMux) {
	route := func(pattern, name string, h func(http.ResponseWriter, *http.Request) (int, any)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			status, body := s.apiAuth(r)
			if status == 0 {
				status, body = h(w, r)
			}
			s.m.API(name, status)
			writeJSON(w, status, body)
		})
	}
	route("POST /api/publish", "publish", s.apiPublish)
	route("GET /api/rooms/{room}/presence", "presence", s.apiPresence)
	route("POST /api/disconnect", "disconnect", s.apiDisconnect)
	route("GET /api/stats", "stats", s.apiStats)
	route("/api/", "unknown", func(http.ResponseWriter, *http.Request) (int, any) {
		return http.StatusNotFound, apiError(codeBadRequest, "no such API route; see the README's \"Operating\" section")
	})
}

type apiErr struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func apiError(code, msg string) apiErr { return apiErr{Type: "error", Code: code, Message: msg} }

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// apiAuth checks the Bearer key; it returns status 0 when the request may
// go on.
func (s *Server) apiAuth(r *http.Request) (int, any) {
	if s.cfg.APIKey == "" {
		return http.StatusForbidden, apiError(codeForbidden, "the server API is off: start the node with --api-key")
	}
	// The header only: a key in a URL ends up in access logs.
	got := ""
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		got = strings.TrimSpace(h[7:])
	}
	if got == "" {
		return http.StatusUnauthorized, apiError(codeUnauthorized, "missing Authorization: Bearer <api key>")
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.APIKey)) != 1 {
		return http.StatusUnauthorized, apiError(codeUnauthorized, "wrong API key")
	}
	return 0, nil
}

// decodeBody reads a JSON object of at most limit bytes into v, refusing
// unknown fields so that a misspelt one is an error, not ignored.
func decodeBody(r *http.Request, limit int64, v any) *apiErr {
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		e := apiError(codeBadRequest, "reading the body: "+err.Error())
		return &e
	}
	if int64(len(body)) > limit {
		e := apiError(codeBadRequest, "body over the node's --max-message-bytes")
		return &e
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		e := apiError(codeBadRequest, "body is not the expected JSON object: "+err.Error())
		return &e
	}
	return nil
}

type publishReq struct {
	Room string          `json:"room"`
	Text *string         `json:"text"`
	Data json.RawMessage `json:"data"`
	From string          `json:"from"`
	Key  string          `json:"key"`
}

// apiFrom is the sender of API messages that name none.
const apiFrom = "server"

// apiPublish stores and fans out a message exactly as a member's send
// would: same seq, history, idempotency key (per from) and fan-out.
func (s *Server) apiPublish(_ http.ResponseWriter, r *http.Request) (int, any) {
	var req publishReq
	if e := decodeBody(r, int64(s.cfg.MaxMessageBytes), &req); e != nil {
		return http.StatusBadRequest, e
	}
	if req.From == "" {
		req.From = apiFrom
	}
	if string(req.Data) == "null" {
		req.Data = nil
	}
	switch {
	case req.Room == "":
		return http.StatusBadRequest, apiError(codeBadRequest, `missing "room"`)
	case !codec.ValidRoom(req.Room) || codec.IsInbox(req.Room):
		return http.StatusBadRequest, apiError(codeBadRequest, "invalid room name: "+codec.NameRule+" (inboxes take direct messages only)")
	case (req.Text == nil || *req.Text == "") && len(req.Data) == 0:
		return http.StatusBadRequest, apiError(codeBadRequest, `a message needs a non-empty "text" or a "data" value`)
	case !codec.ValidName(req.From):
		return http.StatusBadRequest, apiError(codeBadRequest, codec.UserFieldMessage("from"))
	case len(req.Key) > 64:
		return http.StatusBadRequest, apiError(codeBadRequest, `"key" is longer than 64 characters`)
	}
	m := codec.Message{Room: req.Room, From: req.From, Text: req.Text, Data: req.Data}
	type result struct {
		ack backend.Ack
		err error
	}
	res := make(chan result, 1)
	s.publish(req.Room, req.From, req.Key, &m, func(a backend.Ack, err error) { res <- result{a, err} })
	var ack backend.Ack
	var err error
	select {
	case r := <-res:
		ack, err = r.ack, r.err
	case <-r.Context().Done():
		return http.StatusServiceUnavailable, apiError(codeUnavailable, "request ended before the message was stored; retry with the same key")
	}
	switch {
	case errors.Is(err, history.ErrUnavailable):
		return http.StatusServiceUnavailable, apiError(codeUnavailable, "history store unavailable; retry with the same key")
	case err != nil:
		return http.StatusInternalServerError, apiError(codeInternal, "could not store the message")
	}
	return http.StatusOK, map[string]any{"room": ack.Room, "seq": ack.Seq, "ts": ack.TS, "duplicate": ack.Dup}
}

func (s *Server) apiPresence(_ http.ResponseWriter, r *http.Request) (int, any) {
	room := r.PathValue("room")
	if !codec.ValidRoom(room) {
		return http.StatusBadRequest, apiError(codeBadRequest, codec.InvalidRoomMessage)
	}
	type answer struct {
		users []string
		total int
		err   error
	}
	ch := make(chan answer, 1)
	s.presence(room, func(users []string, total int, err error) { ch <- answer{users, total, err} })
	a := <-ch
	users, total, err := a.users, a.total, a.err
	if err != nil {
		return http.StatusServiceUnavailable, apiError(codeUnavailable, "presence store unavailable")
	}
	return http.StatusOK, map[string]any{"room": room, "users": users, "total": total}
}

type disconnectReq struct {
	User   string `json:"user"`
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// apiDisconnect closes every connection of a user with a close code (1008
// policy violation unless given).
func (s *Server) apiDisconnect(_ http.ResponseWriter, r *http.Request) (int, any) {
	var req disconnectReq
	if e := decodeBody(r, 4096, &req); e != nil {
		return http.StatusBadRequest, e
	}
	if req.Code == 0 {
		req.Code = closePolicy
	}
	switch {
	case !codec.ValidName(req.User):
		return http.StatusBadRequest, apiError(codeBadRequest, codec.UserFieldMessage("user"))
	case req.Code != closeNormal && req.Code != closeGoingAway && req.Code != closePolicy && (req.Code < 3000 || req.Code > 4999):
		return http.StatusBadRequest, apiError(codeBadRequest, `"code" must be 1000, 1001, 1008 or 3000-4999`)
	case len(req.Reason) > 120:
		return http.StatusBadRequest, apiError(codeBadRequest, `"reason" is longer than 120 bytes (a close frame holds 123)`)
	}
	if req.Reason == "" {
		req.Reason = "disconnected by the server"
	}
	// Every connection of a user is a member of the user's inbox.
	clients := s.hub.Clients(codec.Inbox(req.User))
	for _, c := range clients {
		c.Close(req.Code, req.Reason)
	}
	return http.StatusOK, map[string]any{"user": req.User, "closed": len(clients)}
}

type statsReply struct {
	Node                string  `json:"node"`
	Version             string  `json:"version"`
	UptimeSeconds       float64 `json:"uptime_seconds"`
	Connections         int64   `json:"connections"`
	Rooms               int64   `json:"rooms"`
	Memberships         int64   `json:"memberships"`
	MessagesPerSecond   float64 `json:"messages_per_second"`
	DeliveriesPerSecond float64 `json:"deliveries_per_second"`
	MessagesTotal       int64   `json:"messages_total"`
	DeliveriesTotal     int64   `json:"deliveries_total"`
	Draining            bool    `json:"draining"`
}

func (s *Server) apiStats(http.ResponseWriter, *http.Request) (int, any) {
	st := s.hub.Stats()
	mps, dps := s.rates.get()
	return http.StatusOK, statsReply{
		Node: s.cfg.NodeID, Version: s.cfg.Version,
		UptimeSeconds: time.Since(s.started).Round(time.Millisecond).Seconds(),
		Connections:   st.Connections, Rooms: st.Rooms, Memberships: st.Memberships,
		MessagesPerSecond: mps, DeliveriesPerSecond: dps,
		MessagesTotal: s.published.Load(), DeliveriesTotal: st.Deliveries,
		Draining: s.draining.Load(),
	}
}
