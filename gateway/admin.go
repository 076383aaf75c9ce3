package gateway

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"
)

// startAdmin serves the admin listener: health, readiness, /metrics, the
// server API and, with --pprof, profiles. None of it is on the public
// listener.
func (s *Server) startAdmin() error {
	ln, err := net.Listen("tcp", s.cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("gateway: --admin-addr %s: %w", s.cfg.AdminAddr, unwrapOp(err))
	}
	s.adminAddr = ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.draining.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		if !s.backend.Ready() {
			http.Error(w, "redis unreachable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", s.m.Handler())
	s.mountAPI(mux)
	if s.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.admin.Serve(ln) }()
	return nil
}

// rates turns the node's counters into per-second rates for /api/stats,
// sampled by the tick goroutine over windows of at least a second.
type rates struct {
	mu                   sync.Mutex
	at                   time.Time
	messages, deliveries int64   // counters at the window's start
	msgRate, delRate     float64 // over the last whole window
}

func (r *rates) sample(now time.Time, messages, deliveries int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at.IsZero() {
		r.at, r.messages, r.deliveries = now, messages, deliveries
		return
	}
	d := now.Sub(r.at).Seconds()
	if d < 1 {
		return
	}
	r.msgRate = float64(messages-r.messages) / d
	r.delRate = float64(deliveries-r.deliveries) / d
	r.at, r.messages, r.deliveries = now, messages, deliveries
}

func (r *rates) get() (messages, deliveries float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgRate, r.delRate
}
