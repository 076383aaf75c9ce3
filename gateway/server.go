package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lesismal/llib/std/crypto/tls"
	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/mempool"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/redis/go-redis/v9"

	"github.com/chatgw/gateway/codec"
	"github.com/chatgw/gateway/gateway/auth"
	"github.com/chatgw/gateway/gateway/backend"
	"github.com/chatgw/gateway/gateway/cluster"
	"github.com/chatgw/gateway/gateway/history"
	"github.com/chatgw/gateway/gateway/hook"
	"github.com/chatgw/gateway/gateway/hub"
	"github.com/chatgw/gateway/gateway/metrics"
	"github.com/chatgw/gateway/web"
)

// logFlushEvery is how often the count of suppressed log lines is written.
const logFlushEvery = 10 * time.Second

// closeGrace is how long a connection that was sent a close frame may take
// to read it before its socket is dropped.
const closeGrace = 5 * time.Second

// Server is one gateway node.
type Server struct {
	cfg     Config
	log     *slog.Logger
	hub     *hub.Hub
	backend backend.Backend // where rooms live: this node's memory, or Redis
	hooks   *hook.Hooks     // the application's hooks; nil without --hook-url
	// connectSlots bounds the handshakes waiting for a connect decision
	// (decideConnect).
	connectSlots chan struct{}
	hookSource   io.Closer // cluster mode's message source (its lease), closed after the hooks
	m            *metrics.Metrics

	shutdownOnce sync.Once
	shutdownErr  error

	started   time.Time
	published atomic.Int64 // messages stored and fanned out (clients and API)
	rates     rates

	engine    *nbhttp.Engine // made by Start
	tlsConfig *tls.Config    // nil without --tls-cert
	mux       *http.ServeMux // the public listener's routes
	admin     *http.Server

	verifier *auth.Verifier // nil without a JWT key
	admit    admission
	expiries expiries
	pending  handshakes

	addr      atomic.Value // string: the bound public address
	ln        net.Listener // bound by Start, handed to nbio once
	logs      logLimiter
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
		stopTick: make(chan struct{}),
	}
	s.admit = admission{maxConns: cfg.MaxConns}
	s.pending = newHandshakes(cfg.MaxConnsPerIP, cfg.MaxPendingPerIP)
	s.logs.init(cfg.Logger, time.Now().UnixNano())
	if cfg.AuthConfigured() {
		ac := auth.Config{Secret: []byte(cfg.JWTSecret), Audience: cfg.JWTAudience, Issuer: cfg.JWTIssuer}
		if cfg.JWTPublicKeyFile != "" {
			pem, err := os.ReadFile(cfg.JWTPublicKeyFile)
			if err != nil {
				return nil, fmt.Errorf("gateway: --jwt-public-key: %w", err)
			}
			ac.PublicKeyPEM = pem
		}
		v, err := auth.NewVerifier(ac)
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		s.verifier = v
	}
	s.m = metrics.New()
	s.hub = hub.New(hub.Config{
		MaxOutboundBytes:   cfg.OutboundMaxBytes,
		PresenceMaxMembers: cfg.PresenceMaxMembers,
		CloseGrace:         int64(closeGrace),
		Workers:            runtime.NumCPU(),
		SplitRoomsAbove:    4000,
		Budget:             cfg.FanoutBudget,
		Observer:           s.m.Observer(),
	})
	var store history.Store // a node alone's, for message notifications
	var disk *history.Disk
	if cfg.RedisURL != "" {
		redis.SetLogger(redisLogger{s.log})
		n, err := cluster.Open(cfg.RedisURL, cluster.Config{
			NodeID: cfg.NodeID, Size: cfg.HistorySize, HistoryTTL: cfg.HistoryTTL, PubSub: cfg.RedisPubSub,
			Log: s.log, PresenceRefresh: cfg.PresenceRefresh, Hub: s.hub,
		})
		if err != nil {
			s.hub.Stop()
			return nil, fmt.Errorf("gateway: %w", err)
		}
		s.backend = n
		// Redis holds the cluster's history: no cheap count, so no
		// gauge rather than a canned 0.
		s.m.Node(s.hub, nil)
	} else if cfg.DataDir != "" {
		mode, _ := history.ParseSyncMode(cfg.HistorySync) // Validate checked it
		d, err := history.OpenDisk(history.DiskConfig{
			Dir: cfg.DataDir, Sync: mode, SyncEvery: cfg.HistorySyncEvery,
			MaxAge: cfg.HistoryRetention, MaxCount: cfg.HistoryKeep, MaxDisk: cfg.HistoryMaxDisk,
			SweepEvery: cfg.HistorySweep,
		})
		if err != nil {
			s.hub.Stop()
			return nil, fmt.Errorf("gateway: %w", err)
		}
		store, disk = d, d
		s.backend = backend.NewMemory(s.hub, d)
		s.m.Node(s.hub, nil) // no cheap count of what the disk holds
		s.m.Disk(d)
	} else {
		mem := history.NewMemoryWith(history.MemoryConfig{
			Size: cfg.HistorySize, MaxBytes: cfg.HistoryMaxBytes, TTL: cfg.HistoryTTL,
			// A room is dropped only while no member can see it, so no
			// live member ever sees its seq restart.
			IfIdle: func(room string, drop func()) bool { return s.hub.IfIdle(room, drop) },
		})
		store = mem
		s.backend = backend.NewMemory(s.hub, mem)
		s.m.Node(s.hub, func() float64 { return float64(mem.Messages()) })
		s.m.History(mem)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveWS)
	if !cfg.NoPage {
		mux.Handle("/", s.oneAnswer(web.Handler()))
	}
	s.mux = mux
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("gateway: --tls-cert %s / --tls-key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
		s.tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	// Last: the hooks start goroutines, which nothing above may leave
	// behind by failing.
	h, err := s.newHooks(store, disk)
	if err != nil {
		s.hub.Stop()
		_ = s.backend.Close()
		return nil, err
	}
	s.hooks = h
	s.connectSlots = make(chan struct{}, maxConnectDecisions)
	return s, nil
}

// newEngine builds nbio's engine, in Start: nbio starts
// goroutines as soon as an engine is made, and a node that is never
// started (a test's) must not leave them behind.
func (s *Server) newEngine() {
	cfg := &s.cfg
	backstop := 0
	if cfg.OutboundMaxBytes > 0 {
		// nbio drops a socket outright past this; our own cap (4001 with
		// a close frame) trips first, this only guards against drift.
		backstop = int(cfg.OutboundMaxBytes) + 1<<20
	}
	ecfg := nbhttp.Config{
		Name:    "gateway",
		Network: "tcp",
		// Start binds before nbio starts anything: nbio v1.6.12 hangs
		// in Engine.Stop when its own listen fails (docs/nbio.md).
		Listen: func(string, string) (net.Listener, error) {
			if s.ln == nil {
				return nil, errors.New("listener not bound")
			}
			ln := gateListener{Listener: s.ln, h: &s.pending, refused: func() {
				s.m.Refused("max_conns_per_ip")
				s.logs.line("handshake refused at accept", "status", http.StatusTooManyRequests,
					"reason", "too many sockets from one address")
			}}
			s.ln = nil
			return ln, nil
		},
		NPoller:                 runtime.NumCPU(),
		Handler:                 s.mux,
		ReleaseWebsocketPayload: true,
		MaxWriteBufferSize:      backstop,
		// Plain sockets are held to --max-header-bytes by onData as bytes
		// arrive; this bounds what nbio buffers for TLS sockets (which
		// bypass onData) and for a partial WebSocket frame.
		ReadLimit: max(cfg.MaxHeaderBytes, cfg.MaxMessageBytes) + 64<<10,
		// The handshake timeout is enforced by s.pending (handshake.go);
		// nbio's own pre-upgrade deadline is pushed out of the way.
		KeepaliveTime: farFuture,
		MaxLoad:       1 << 22,
	}
	if s.tlsConfig != nil {
		ecfg.AddrsTLS = []string{cfg.Addr}
		ecfg.TLSConfig = s.tlsConfig
	} else {
		ecfg.Addrs = []string{cfg.Addr}
	}
	s.engine = nbhttp.NewEngine(ecfg)
	// UTF-8 is checked in onMessage, which closes with 1007 as the protocol
	// asks; nbio's own check would close with 1002.
	s.engine.CheckUtf8 = func([]byte) bool { return true }
	s.engine.OnData(s.onData)
	local := s.ln.Addr()
	s.engine.OnOpen(func(c net.Conn) {
		slimAddrs(c, local)
		s.pending.add(c, time.Now().UnixNano())
	})
	// nbio calls this as a job on the socket's queue (after its messages'
	// jobs), once the poller has closed it.
	s.engine.OnClose(func(c net.Conn, _ error) {
		s.pending.closed(c)
		if sess := sessionOf(c); sess != nil {
			s.onClose(sess, c)
		}
	})
	// A socket carries one request (onPlain drops the reads after the
	// one that completes the first request head; oneAnswer answers one
	// page request), and page answers say Connection: close so that the
	// client closes. nbio's own close after an answer (r.Close) would run
	// on a handler goroutine and race the poller over a reused descriptor
	// (docs/nbio.md).
	s.engine.OnWrittenSize(func(c *nbio.Conn, _ []byte, n int) {
		// nbio calls this with c's lock held; serveWS sets sess.c under it.
		if sess := sessionOf(c); sess != nil && sess.c != nil {
			sess.c.Written(n)
		}
	})

}

// Start listens on the public and admin addresses and starts the heartbeat
// sweep. It returns once both listeners are bound.
func (s *Server) Start() error {
	s.started = time.Now()
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("gateway: --addr %s: %w", s.cfg.Addr, unwrapOp(err))
	}
	s.ln = ln
	s.addr.Store(ln.Addr().String())
	if s.cfg.AdminAddr != "" {
		if err := s.startAdmin(); err != nil {
			_ = ln.Close()
			return err
		}
	}
	s.newEngine()
	if err := s.engine.Start(); err != nil {
		_ = ln.Close()
		if s.admin != nil {
			_ = s.admin.Close()
		}
		return fmt.Errorf("gateway: %w", err)
	}
	s.tickDone.Add(1)
	go s.tick()
	if s.verifier == nil && !isLoopback(s.Addr()) {
		s.log.Warn("listening on a non-loopback address with no authentication: anyone who can reach it may connect as any user",
			"addr", s.Addr())
	}
	ws, page := "ws://", "http://"
	if s.cfg.TLSCert != "" {
		ws, page = "wss://", "https://"
	}
	args := []any{"ws", ws + s.Addr() + "/ws"}
	if !s.cfg.NoPage {
		args = append(args, "page", page+s.Addr()+"/")
	}
	s.log.Info("gateway listening", append(args, "admin", s.adminAddr,
		"node", s.cfg.NodeID, "anonymous", s.cfg.Anonymous)...)
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
	// Token expiry and pending handshakes are checked four times a second:
	// a connection is closed within 1 s of its exp, a stalled handshake
	// within a quarter second of the handshake timeout.
	exp := time.NewTicker(250 * time.Millisecond)
	defer exp.Stop()
	lastFlush := time.Now()
	for i := 0; ; {
		select {
		case <-s.stopTick:
			return
		case now := <-t.C:
			s.hub.Tick(i, now.UnixNano(), idle)
			i++
		case now := <-exp.C:
			for range s.pending.expire(now.Add(-s.cfg.HandshakeTimeout).UnixNano()) {
				s.m.Refused("timeout")
			}
			s.rates.sample(now, s.published.Load(), s.hub.Stats().Deliveries)
			if now.Sub(lastFlush) >= logFlushEvery {
				lastFlush = now
				s.logs.flush()
				nbioLogs.flush()
			}
			for _, ss := range s.expiries.due(now) {
				ss.c.Close(closeTokenExpired, "token expired; refresh and reconnect")
			}
		}
	}
}

// Shutdown stops the node at once: no drain (see Drain). Calls after the
// first do nothing and return its result (nbio's engine must stop once).
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Server) shutdown(ctx context.Context) error {
	defer s.logs.flush()
	s.draining.Store(true)
	select {
	case <-s.stopTick:
	default:
		close(s.stopTick)
	}
	s.tickDone.Wait()
	var err error
	if s.engine != nil { // nil: never started
		err = s.engine.Shutdown(ctx)
	}
	s.hub.Stop()
	if s.admin != nil {
		_ = s.admin.Close()
	}
	// No client publishes any more (an API call still running only marks
	// a room, which the durable store lists at the next start): the hooks
	// make their last notifications from the store, which closes after.
	s.hooks.Close()
	if s.hookSource != nil {
		_ = s.hookSource.Close() // releases the notifier lease; uses the node's Redis client
	}
	_ = s.backend.Close()
	return err
}

// onClose ends the session of socket c, which nbio has closed.
func (s *Server) onClose(sess *session, c net.Conn) {
	sess.reader.release()
	for _, r := range s.hub.Remove(sess.c, sess.offline) {
		s.backend.Unsubscribe(r) // each membership held a reference
	}
	s.expiries.set(sess, 0)
	code := sess.c.CloseCode()
	s.m.Closed(code)
	s.notifyDisconnect(sess, code)
	if code != closeNormal && code != closeGoingAway {
		// At most one line per connection that ended for a reason worth
		// knowing, never one per message, and rate-limited as a whole.
		s.logs.line("connection closed", "user", sess.c.User, "session", sess.id(),
			"code", closeCodeOf(code), "reason", closeReason(code), "remote", c.RemoteAddr().String())
	}
	s.admit.release()
}

func newSessionID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// serveWS admits a connection: it checks the origin, the connection caps
// and the user's identity, all before upgrading, then greets the client and
// joins its inbox. A refused handshake gets its HTTP status and no socket.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	ip := remoteIP(r)
	// label is the metrics' reason; reason the client's and the log's.
	refuse := func(status int, label, reason string) {
		s.m.Refused(label)
		s.logs.line("handshake refused", "status", status, "reason", reason, "remote", ip)
		s.refuseHTTP(w, status, reason)
	}
	if status, reason := checkUpgrade(r); status != 0 {
		// RFC 6455 4.2.1, checked before any other work; the node
		// answers the upgrade itself (serveWS, after the checks).
		refuse(status, "bad_request", reason)
		return
	}
	if s.draining.Load() {
		refuse(http.StatusServiceUnavailable, "draining", "node is draining")
		return
	}
	if !originAllowed(s.cfg.Origins, r) {
		refuse(http.StatusForbidden, "origin", "origin not allowed")
		return
	}
	if !s.admit.handshakeAllowed(s.cfg.HandshakeRate, time.Now().UnixNano()) {
		// A reconnect storm: shed what is over the rate cheaply, before
		// any token check or upgrade, so that connected clients keep
		// their CPU; clients retry with backoff.
		refuse(http.StatusServiceUnavailable, "handshake_rate", "node busy: too many handshakes at once; retry with backoff")
		return
	}
	user, ident, status, reason := s.identify(r)
	if status != 0 {
		label := "unauthorized"
		if status == http.StatusBadRequest {
			label = "bad_request"
		}
		refuse(status, label, reason)
		return
	}
	if s.hooks.Enabled(hook.EventConnect) {
		var status int
		var reason string
		if user, ident, status, reason = s.decideConnect(r, user, ident, ip); status != 0 {
			refuse(status, "hook", reason)
			return
		}
	}
	if !s.admit.admit() {
		refuse(http.StatusServiceUnavailable, "max_conns", "node is at its connection cap")
		return
	}
	nc, sock := hijack(w)
	if nc == nil {
		s.admit.release()
		s.m.Refused("upgrade")
		s.logs.line("handshake refused", "status", http.StatusInternalServerError, "reason", "not an nbio socket", "remote", ip)
		return
	}
	now := time.Now().UnixNano()
	sess := &session{srv: s, ident: ident, expIdx: -1}
	sess.reader.ctrl.Init(s.cfg.Burst, now)
	sess.bucket.Init(s.cfg.Burst, now)
	_, _ = rand.Read(sess.sid[:])
	// The session is the socket's before the 101 goes out, so that the
	// frames a client sends once it has the 101 find it; they are handled
	// as jobs queued behind this handler, so sess.c, set after the 101, is
	// there when they run. The hub client is made after the 101: from
	// then on the heartbeat sweep may ping it, and a ping before the 101
	// would corrupt the handshake.
	if tc, ok := sock.(*tls.Conn); ok {
		nc.SetSession(&tlsSession{session: sess, tc: tc})
	} else {
		nc.SetSession(sess)
	}
	// nbhttp's read deadline (a timer) and its HTTP data handler are not
	// needed any more: heartbeats are the hub's sweep, reads are s.read.
	_ = nc.SetReadDeadline(time.Time{})
	nc.OnData(nil)
	s.pending.upgraded(nc)
	_, _ = sock.Write(switchingProtocols(r.Header.Get("Sec-WebSocket-Key")))
	// Under the socket's lock, which nbio holds while it reports written
	// bytes (OnWrittenSize): bytes written before sess.c is set (the 101)
	// are not the hub's, and a ping the sweep sends as soon as the client
	// is registered waits for the lock, so it is counted. No cycle: the
	// sweep takes a socket's lock only for clients already registered,
	// and this one is registered inside NewClient.
	nc.Lock()
	sess.c = s.hub.NewClient(user, sock, now)
	nc.Unlock()
	if ident != nil {
		s.expiries.set(sess, unixNano(ident.Expires))
	}
	s.m.Opened()
	sess.welcome()
}

// identify names the user of a handshake: from a verified JWT when one is
// presented, else from ?user= in anonymous mode, where the identity is nil
// (no room claims, no expiry: nothing worth an allocation per connection).
// It returns an HTTP status and reason when the handshake must be refused.
// The token never reaches a log line or a reply.
func (s *Server) identify(r *http.Request) (string, *auth.Identity, int, string) {
	token := bearer(r)
	if token != "" || !s.cfg.Anonymous {
		if s.verifier == nil {
			return "", nil, http.StatusUnauthorized, "this node does not accept tokens; connect with ?user="
		}
		id, err := s.verifier.Verify(token)
		if err != nil {
			return "", nil, http.StatusUnauthorized, err.Error()
		}
		return id.User, id, 0, ""
	}
	user := queryValue(r.URL.RawQuery, "user")
	if user == "" {
		return "guest-" + newSessionID(), nil, 0, ""
	}
	if !codec.ValidName(user) {
		return "", nil, http.StatusBadRequest, codec.InvalidUserMessage
	}
	// The name is a slice of the request line; a copy of its own keeps
	// the whole request URI from living as long as the connection.
	return strings.Clone(user), nil, 0, ""
}

// isLoopback reports whether the host of addr is a loopback address.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// refuseHTTP answers a handshake with status and closes the connection:
// a refused client keeps no socket on the node (nbio would keep an HTTP
// connection alive for the next request).
func (s *Server) refuseHTTP(w http.ResponseWriter, status int, reason string) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, reason, status)
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		http.Error(w, reason, status)
		return
	}
	extra := ""
	switch status {
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		extra = "Retry-After: 1\r\n"
	case http.StatusUpgradeRequired:
		extra = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
	}
	_, _ = io.WriteString(conn, rawHTTP(status, reason, extra))
	s.pending.shutdown(conn)
}
