// Package gateway is a chat edge node: it terminates WebSocket connections
// on nbio's event loop and speaks protocol v1 (docs/protocol.md) over them.
//
// server.go wires nbio and the admin listener; session.go handles one
// client's frames; drain.go shuts down gracefully. Rooms, fan-out and
// connection bookkeeping live in package hub, stored messages in package
// history.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/mempool"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/chatgw/gateway/codec"
	"github.com/chatgw/gateway/gateway/history"
	"github.com/chatgw/gateway/gateway/hub"
)

// closeGrace is how long a connection that was sent a close frame may take
// to read it before its socket is dropped.
const closeGrace = 5 * time.Second

// Server is one gateway node.
type Server struct {
	cfg   Config
	log   *slog.Logger
	hub   *hub.Hub
	store history.Store

	engine   *nbhttp.Engine
	upgrader *websocket.Upgrader
	admin    *http.Server

	addr      atomic.Value // string: the bound public address
	adminAddr string
	draining  atomic.Bool
	stopTick  chan struct{}
	tickDone  sync.WaitGroup
}

var setMemPool sync.Once

// New builds a node from cfg; Start runs it.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	setMemPool.Do(func() {
		// nbio's default pool keeps freed buffers up to 1 GiB; bound it
		// so one burst of large frames does not pin memory forever.
		mempool.DefaultMemPool = mempool.New(4096, 1<<20)
	})
	useLogger(cfg.Logger)
	s := &Server{
		cfg: cfg, log: cfg.Logger,
		store:    history.NewMemory(cfg.HistorySize, nil),
		stopTick: make(chan struct{}),
	}
	s.hub = hub.New(hub.Config{
		MaxOutboundBytes:   cfg.OutboundMaxBytes,
		PresenceMaxMembers: cfg.PresenceMaxMembers,
		CloseGrace:         int64(closeGrace),
		Workers:            runtime.NumCPU(),
	})

	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveWS)
	backstop := 0
	if cfg.OutboundMaxBytes > 0 {
		// nbio drops a socket outright past this; our own cap (4001 with
		// a close frame) trips first, this only guards against drift.
		backstop = int(cfg.OutboundMaxBytes) + 1<<20
	}
	s.engine = nbhttp.NewEngine(nbhttp.Config{
		Name:    "gateway",
		Network: "tcp",
		Addrs:   []string{cfg.Addr},
		Listen: func(network, addr string) (net.Listener, error) {
			ln, err := net.Listen(network, addr)
			if err == nil {
				s.addr.Store(ln.Addr().String())
			}
			return ln, err
		},
		NPoller:                 runtime.NumCPU(),
		Handler:                 mux,
		ReleaseWebsocketPayload: true,
		MaxWriteBufferSize:      backstop,
		KeepaliveTime:           30 * time.Second, // idle HTTP before upgrade
		MaxLoad:                 1 << 22,
	})
	// UTF-8 is checked in onMessage, which closes with 1007 as the protocol
	// asks; nbio's own check would close with 1002.
	s.engine.CheckUtf8 = func([]byte) bool { return true }
	s.engine.OnData(s.onData)
	s.engine.OnWrittenSize(func(c *nbio.Conn, _ []byte, n int) {
		if sess := sessionOf(c); sess != nil {
			sess.c.Written(n)
		}
	})

	u := websocket.NewUpgrader()
	u.Engine = s.engine
	u.KeepaliveTime = 0 // heartbeats are the hub's sweep, not a timer per conn
	u.MessageLengthLimit = cfg.MaxMessageBytes
	u.CheckOrigin = func(*http.Request) bool { return true }
	u.OnMessage(s.onMessage)
	u.OnClose(s.onClose)
	u.SetPingHandler(s.onPing)
	u.SetPongHandler(func(ws *websocket.Conn, _ string) {
		if sess, _ := ws.Session().(*session); sess != nil {
			sess.c.Seen(time.Now().UnixNano())
		}
	})
	u.SetCloseHandler(s.onCloseFrame)
	s.upgrader = u
	return s, nil
}

// Start listens on the public and admin addresses and starts the heartbeat
// sweep. It returns once both listeners are bound.
func (s *Server) Start() error {
	if s.cfg.AdminAddr != "" {
		ln, err := net.Listen("tcp", s.cfg.AdminAddr)
		if err != nil {
			return fmt.Errorf("gateway: admin listener: %w", err)
		}
		s.adminAddr = ln.Addr().String()
		amux := http.NewServeMux()
		amux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("ok\n"))
		})
		amux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			if s.draining.Load() {
				http.Error(w, "draining", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ready\n"))
		})
		s.admin = &http.Server{Handler: amux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = s.admin.Serve(ln) }()
	}
	if err := s.engine.Start(); err != nil {
		if s.admin != nil {
			_ = s.admin.Close()
		}
		return fmt.Errorf("gateway: %w", err)
	}
	s.tickDone.Add(1)
	go s.tick()
	s.log.Info("gateway listening", "ws", "ws://"+s.Addr()+"/ws", "admin", s.adminAddr,
		"node", s.cfg.NodeID, "anonymous", s.cfg.Anonymous)
	return nil
}

// Addr returns the bound public address (host:port).
func (s *Server) Addr() string { v, _ := s.addr.Load().(string); return v }

// AdminAddr returns the bound admin address, or "" without one.
func (s *Server) AdminAddr() string { return s.adminAddr }

// Hub exposes the node's hub (for stats and tests).
func (s *Server) Hub() *hub.Hub { return s.hub }

// tick is the node's only periodic goroutine: it visits one registry shard
// per step, so each connection is pinged once per heartbeat and closed when
// silent for over two.
func (s *Server) tick() {
	defer s.tickDone.Done()
	step := s.cfg.Heartbeat / hub.ClientShards
	t := time.NewTicker(step)
	defer t.Stop()
	idle := int64(2 * s.cfg.Heartbeat)
	for i := 0; ; i++ {
		select {
		case <-s.stopTick:
			return
		case now := <-t.C:
			s.hub.Tick(i, now.UnixNano(), idle)
		}
	}
}

// Shutdown stops the node at once: no drain (see Drain).
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	select {
	case <-s.stopTick:
	default:
		close(s.stopTick)
	}
	s.tickDone.Wait()
	err := s.engine.Shutdown(ctx)
	s.hub.Stop()
	if s.admin != nil {
		_ = s.admin.Close()
	}
	_ = s.store.Close()
	return err
}

// onData replaces nbio's read dispatch for plain WebSocket connections so
// that a protocol error is answered with a 1002 close frame (nbio would drop
// the socket silently) and a closing connection's input is discarded.
func (s *Server) onData(c *nbio.Conn, data []byte) {
	ws, ok := c.Session().(*websocket.Conn)
	if !ok || socketOf(ws) != net.Conn(c) {
		c.DataHandler()(c, data)
		return
	}
	sess, _ := ws.Session().(*session)
	if sess != nil && sess.c.Closing() {
		return
	}
	err := ws.Parse(data)
	if err == nil {
		return
	}
	if sess == nil {
		_ = c.CloseWithError(err)
		return
	}
	if errors.Is(err, websocket.ErrMessageTooLarge) || errors.Is(err, websocket.ErrControlMessageTooBig) {
		// nbio has already written the 1009 close frame.
		sess.c.MarkClosing()
		return
	}
	sess.c.Close(1002, "protocol error")
}

// socketOf returns the connection a WebSocket writes to, unwrapped from
// nbhttp's hijack wrapper: *nbio.Conn for plain connections.
func socketOf(ws *websocket.Conn) net.Conn {
	c := ws.UnderlayerConn()
	if hc, ok := c.(*nbhttp.Conn); ok {
		return hc.Conn
	}
	return c
}

func sessionOf(c *nbio.Conn) *session {
	ws, ok := c.Session().(*websocket.Conn)
	if !ok {
		return nil
	}
	sess, _ := ws.Session().(*session)
	return sess
}

func (s *Server) onPing(ws *websocket.Conn, data string) {
	sess, _ := ws.Session().(*session)
	if sess == nil {
		return
	}
	sess.c.Seen(time.Now().UnixNano())
	b := make([]byte, 2, 2+len(data))
	b[0], b[1] = 0x8A, byte(len(data))
	sess.c.Send(append(b, data...))
}

// onCloseFrame answers a client's close frame with the same code, unless
// the gateway started the closing handshake itself. nbio closes the socket
// right after.
func (s *Server) onCloseFrame(ws *websocket.Conn, code int, _ string) {
	sess, _ := ws.Session().(*session)
	if sess == nil {
		return
	}
	if code == 1005 {
		code = 1000
	}
	sess.c.Close(code, "")
}

func (s *Server) onClose(ws *websocket.Conn, _ error) {
	sess, _ := ws.Session().(*session)
	if sess == nil {
		return
	}
	s.hub.Remove(sess.c, sess.offline)
}

func newSessionID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// serveWS admits a connection: it names the user, upgrades, greets the
// client and joins its inbox.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		http.Error(w, "node is draining", http.StatusServiceUnavailable)
		return
	}
	user := r.URL.Query().Get("user")
	if user == "" {
		user = "guest-" + newSessionID()
	}
	if !codec.ValidName(user) {
		http.Error(w, "invalid user id: 1-64 characters of A-Z a-z 0-9 _ . : -", http.StatusBadRequest)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with an HTTP error
	}
	now := time.Now().UnixNano()
	sess := &session{srv: s, ws: ws}
	sess.bucket.Init(s.cfg.Burst, now)
	sess.c = s.hub.NewClient(user, newSessionID(), socketOf(ws), now)
	sess.c.Value = sess
	ws.SetSession(sess)
	sess.welcome()
}
