package gateway

import (
	"github.com/chatgw/gateway/gateway/limit"

	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// admission counts WebSocket connections from the moment a handshake is
// admitted until the connection closes, so the node's cap holds even for
// handshakes still in flight. (The per-address caps are taken earlier, at
// accept: see handshakes.)
type admission struct {
	maxConns int // 0 = no cap

	mu    sync.Mutex
	total int

	hsMu     sync.Mutex
	hsBucket limit.Bucket // handshakes per second (Config.HandshakeRate)
	hsInit   bool
}

// handshakeAllowed spends a handshake token: rate per second, a burst of
// one second's worth. rate 0 allows everything.
func (a *admission) handshakeAllowed(rate float64, now int64) bool {
	if rate <= 0 {
		return true
	}
	burst := max(1, int(rate))
	a.hsMu.Lock()
	defer a.hsMu.Unlock()
	if !a.hsInit {
		a.hsBucket.Init(burst, now)
		a.hsInit = true
	}
	return a.hsBucket.Allow(rate, burst, now)
}

// admit reserves a place for a connection, or returns false at the
// node's cap.
func (a *admission) admit() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.maxConns > 0 && a.total >= a.maxConns {
		return false
	}
	a.total++
	return true
}

// release gives back a place taken by admit.
func (a *admission) release() {
	a.mu.Lock()
	a.total--
	a.mu.Unlock()
}

// remoteIP returns the client address of r without its port.
func remoteIP(r *http.Request) string { return hostOf(r.RemoteAddr) }

// hostOf returns addr (host:port) without its port.
func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// originAllowed reports whether the request's Origin is on the allowlist.
// Requests without an Origin (non-browser clients) pass; an empty list
// allows every origin.
func originAllowed(allow []string, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || len(allow) == 0 {
		return true
	}
	for _, a := range allow {
		if a == "*" || strings.EqualFold(a, origin) {
			return true
		}
	}
	return false
}

// bearer returns the token of an "Authorization: Bearer" header, or of the
// ?token= query parameter (browsers cannot set headers).
func bearer(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return queryValue(r.URL.RawQuery, "token")
}

// queryValue returns url.ParseQuery(raw).Get(key) without building the map
// of every parameter, which was garbage on every handshake. It skips what
// ParseQuery skips: segments with a semicolon, bad escapes.
func queryValue(raw, key string) string {
	if strings.Count(raw, "&") >= 1000 {
		// net/url ignores the whole query past its parameter limit
		// (10000 by default): leave long queries to it, so that the
		// answer stays the same.
		q, _ := url.ParseQuery(raw)
		return q.Get(key)
	}
	for raw != "" {
		var seg string
		seg, raw, _ = strings.Cut(raw, "&")
		if seg == "" || strings.Contains(seg, ";") {
			continue
		}
		k, v, _ := strings.Cut(seg, "=")
		k, err := url.QueryUnescape(k)
		if err != nil || k != key {
			continue
		}
		if v, err = url.QueryUnescape(v); err == nil {
			return v
		}
	}
	return ""
}
