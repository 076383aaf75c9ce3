package gateway_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/gateway"
	"github.com/chatgw/gateway/internal/wstest"
)

const secret = "test-secret-0123456789"

type claims map[string]any

func mint(t *testing.T, method jwt.SigningMethod, key any, c claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, jwt.MapClaims(c)).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hs(t *testing.T, c claims) string { return mint(t, jwt.SigningMethodHS256, []byte(secret), c) }

func in(d time.Duration) int64 { return time.Now().Add(d).Unix() }

func authNode(t *testing.T, mutate func(*gateway.Config)) *node {
	return startNode(t, func(c *gateway.Config) {
		c.JWTSecret = secret
		c.Anonymous = false
		if mutate != nil {
			mutate(c)
		}
	})
}

// handshake dials with the given query and headers and returns the HTTP
// status of a refused upgrade, or 101 with the open connection.
func handshake(t *testing.T, n *node, query string, h http.Header) (int, *websocket.Conn) {
	t.Helper()
	return wstest.Upgrade(t, n.wsURL(query), wstest.Header(h))
}

func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), strings.ReplaceAll(strings.ToLower(typ), " ", "-")+".pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// syncBuffer is a log sink the node may write from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestHandshakeAuthOutcomes(t *testing.T) {
	logs := &syncBuffer{}
	n := authNode(t, func(c *gateway.Config) {
		c.JWTAudience = "chat"
		c.JWTIssuer = "backend"
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ok := claims{"sub": "alice", "aud": "chat", "iss": "backend", "exp": in(time.Hour)}
	with := func(k string, v any) claims {
		c := claims{}
		for kk, vv := range ok {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	other := mint(t, jwt.SigningMethodHS256, []byte("another secret"), ok)
	none := mint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, ok)
	hs384 := mint(t, jwt.SigningMethodHS384, []byte(secret), ok)
	cases := []struct {
		name, token string
		want        int
	}{
		{"missing", "", 401},
		{"malformed", "not.a.jwt", 401},
		{"bad signature", other, 401},
		{"wrong algorithm", hs384, 401},
		{"alg none", none, 401},
		{"expired", hs(t, with("exp", in(-time.Second))), 401},
		{"not yet valid", hs(t, with("nbf", in(time.Hour))), 401},
		{"wrong audience", hs(t, with("aud", "other")), 401},
		{"wrong issuer", hs(t, with("iss", "other")), 401},
		{"no sub", hs(t, with("sub", nil)), 401},
		{"valid HS256", hs(t, ok), 101},
	}
	defer func() {
		out := logs.String()
		if !strings.Contains(out, "handshake refused") {
			t.Error("refused handshakes were not logged")
		}
		for _, tc := range cases {
			for _, part := range strings.Split(tc.token, ".") {
				if len(part) >= 8 && strings.Contains(out, part) {
					t.Errorf("%s: the log contains part of the token", tc.name)
				}
			}
		}
	}()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.token != "" {
				h.Set("Authorization", "Bearer "+tc.token)
			}
			if got, _ := handshake(t, n, "", h); got != tc.want {
				t.Fatalf("Authorization header: HTTP %d, want %d", got, tc.want)
			}
			q := ""
			if tc.token != "" {
				q = "token=" + tc.token
			}
			if got, _ := handshake(t, n, q, nil); got != tc.want {
				t.Fatalf("?token=: HTTP %d, want %d", got, tc.want)
			}
		})
	}
	// The token names the user; ?user= cannot override it.
	_, ws := handshake(t, n, "user=mallory&token="+hs(t, ok), nil)
	var w map[string]any
	if err := ws.ReadJSON(&w); err != nil || w["user"] != "alice" {
		t.Fatalf("welcome %v %v, want user alice", w, err)
	}
}

func TestHandshakeRS256AndES256(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rpub, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	epub, _ := x509.MarshalPKIXPublicKey(&ek.PublicKey)
	ok := claims{"sub": "alice", "exp": in(time.Hour)}

	rn := startNode(t, func(c *gateway.Config) { c.Anonymous = false; c.JWTPublicKeyFile = writePEM(t, "PUBLIC KEY", rpub) })
	if got, _ := handshake(t, rn, "token="+mint(t, jwt.SigningMethodRS256, rk, ok), nil); got != 101 {
		t.Fatalf("valid RS256: HTTP %d", got)
	}
	// Algorithm confusion: HS256 "signed" with the public key as secret.
	rpem := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rpub})
	if got, _ := handshake(t, rn, "token="+mint(t, jwt.SigningMethodHS256, rpem, ok), nil); got != 401 {
		t.Fatalf("HS256 signed with the public key: HTTP %d, want 401", got)
	}
	if got, _ := handshake(t, rn, "token="+mint(t, jwt.SigningMethodES256, ek, ok), nil); got != 401 {
		t.Fatalf("ES256 token on an RSA node: HTTP %d, want 401", got)
	}

	en := startNode(t, func(c *gateway.Config) { c.Anonymous = false; c.JWTPublicKeyFile = writePEM(t, "PUBLIC KEY", epub) })
	if got, _ := handshake(t, en, "token="+mint(t, jwt.SigningMethodES256, ek, ok), nil); got != 101 {
		t.Fatalf("valid ES256: HTTP %d", got)
	}
	if got, _ := handshake(t, en, "token="+mint(t, jwt.SigningMethodRS256, rk, ok), nil); got != 401 {
		t.Fatalf("RS256 token on an ECDSA node: HTTP %d, want 401", got)
	}
}

// A refused handshake leaves no socket behind: the node answers and closes.
func TestRefusedHandshakeClosesSocket(t *testing.T) {
	n := authNode(t, nil)
	c, err := net.Dial("tcp", n.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("response %v %v, want 401", resp, err)
	}
	body := make([]byte, 4096)
	for {
		if _, err := resp.Body.Read(body); err != nil {
			break
		}
	}
	if _, err := c.Read(body); err == nil || isTimeout(err) {
		t.Fatalf("socket still open after a refused handshake: %v", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestAnonymousNeedsFlagWhenKeyed(t *testing.T) {
	n := authNode(t, nil)
	if got, _ := handshake(t, n, "user=alice", nil); got != 401 {
		t.Fatalf("?user= on a keyed node: HTTP %d, want 401", got)
	}
	both := authNode(t, func(c *gateway.Config) { c.Anonymous = true })
	if got, _ := handshake(t, both, "user=alice", nil); got != 101 {
		t.Fatalf("?user= with --anonymous: HTTP %d", got)
	}
	if got, _ := handshake(t, both, "token=garbage", nil); got != 401 {
		t.Fatalf("a bad token is refused even in anonymous mode: HTTP %d", got)
	}
}

func tokenClient(t *testing.T, n *node, token, user string) *client {
	t.Helper()
	c := n.dialRaw(t, "token="+token)
	c.User = user
	if w := c.Next(); w.Str("type") != "welcome" || w.Str("user") != user {
		t.Fatalf("welcome %v", w)
	}
	c.Next() // inbox joined
	return c
}

func TestRoomGlobs(t *testing.T) {
	n := authNode(t, nil)
	tok := hs(t, claims{"sub": "alice", "rooms": []string{"team-*", "lobby"}})
	a := tokenClient(t, n, tok, "alice")
	a.Join("team-red")
	a.Join("lobby")
	expectError(t, a.Request(map[string]any{"type": "join", "id": "g", "room": "general"}), "forbidden")
	expectError(t, a.Request(map[string]any{"type": "join", "id": "g2", "room": "teams"}), "forbidden")
	// Nor may it list who is in a room it does not allow.
	expectError(t, a.Request(map[string]any{"type": "presence", "id": "p", "room": "general"}), "forbidden")
	if f := a.Request(map[string]any{"type": "presence", "id": "p2", "room": "team-blue"}); f.Str("type") != "presence" {
		t.Fatalf("presence of an allowed room: %v", f)
	}
	// The claim never restricts the own inbox or dm.
	a.Join("@alice")
	if f := a.Request(map[string]any{"type": "dm", "id": "d", "to": "bob", "text": "hi"}); f.Str("type") != "ack" {
		t.Fatalf("dm with a rooms claim: %v", f)
	}
	// Refresh with a narrower claim: sending where it no longer allows is refused.
	r := a.Request(map[string]any{"type": "refresh", "id": "r", "token": hs(t, claims{"sub": "alice", "rooms": []string{"lobby"}})})
	if r.Str("type") != "ack" {
		t.Fatalf("refresh: %v", r)
	}
	expectError(t, a.Request(map[string]any{"type": "send", "id": "s", "room": "team-red", "text": "x"}), "forbidden")
	a.SendText("lobby", "still fine")
}

func TestRefreshAndExpiry(t *testing.T) {
	n := authNode(t, nil)
	a := tokenClient(t, n, hs(t, claims{"sub": "alice", "exp": in(2 * time.Second)}), "alice")
	// Refresh failures keep the current token.
	expectError(t, a.Request(map[string]any{"type": "refresh", "id": "1", "token": "junk"}), "unauthorized")
	expectError(t, a.Request(map[string]any{"type": "refresh", "id": "2", "token": hs(t, claims{"sub": "bob", "exp": in(time.Hour)})}), "unauthorized")
	// A connection whose token is not refreshed closes with 4000 at exp.
	b := tokenClient(t, n, hs(t, claims{"sub": "bob", "exp": in(2 * time.Second)}), "bob")
	ack := a.Request(map[string]any{"type": "refresh", "id": "3", "token": hs(t, claims{"sub": "alice", "exp": in(4 * time.Second)})})
	if ack.Str("type") != "ack" || ack.Str("id") != "3" {
		t.Fatalf("refresh ack %v", ack)
	}
	start := time.Now()
	b.ExpectClose(4000)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("expired connection closed after %v", took)
	}
	// alice's refresh moved her expiry on: still open, then closed.
	if f := a.Request(map[string]any{"type": "ping", "id": "p"}); f.Str("type") != "pong" {
		t.Fatalf("refreshed connection: %v", f)
	}
	a.ExpectClose(4000)
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Fatalf("refreshed connection closed after only %v", took)
	}
}

func TestOriginAllowlist(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) { c.Origins = []string{"https://chat.example.com"} })
	if got, _ := handshake(t, n, "user=a", http.Header{"Origin": {"https://evil.example.com"}}); got != 403 {
		t.Fatalf("forbidden origin: HTTP %d, want 403", got)
	}
	if got, _ := handshake(t, n, "user=a", http.Header{"Origin": {"https://chat.example.com"}}); got != 101 {
		t.Fatalf("allowed origin: HTTP %d", got)
	}
	if got, _ := handshake(t, n, "user=a", nil); got != 101 {
		t.Fatalf("no origin: HTTP %d", got)
	}
}

func dialFrom(t *testing.T, n *node, src, user string) (int, *websocket.Conn) {
	t.Helper()
	d := websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		return (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).Dial(network, addr)
	}}
	return wstest.Upgrade(t, n.wsURL("user="+user), wstest.Dialer(&d))
}

func TestConnectionCaps(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) { c.MaxConnsPerIP = 2; c.MaxConns = 3 })
	dialFrom(t, n, "127.0.0.1", "a1")
	_, second := dialFrom(t, n, "127.0.0.1", "a2")
	if got, _ := dialFrom(t, n, "127.0.0.1", "a3"); got != 429 {
		t.Fatalf("third from one address: HTTP %d, want 429", got)
	}
	if got, _ := dialFrom(t, n, "127.0.0.2", "b1"); got != 101 {
		t.Fatalf("another address: HTTP %d", got)
	}
	if got, _ := dialFrom(t, n, "127.0.0.3", "c1"); got != 503 {
		t.Fatalf("over the node cap: HTTP %d, want 503", got)
	}
	// Closing frees a place.
	_ = second.Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		got, _ := dialFrom(t, n, "127.0.0.1", "a4")
		if got == 101 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("place not freed after close: HTTP %d", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A socket that opens and sends nothing, or dribbles its request, is
// dropped within the handshake timeout; upgraded connections are not.
func TestSlowlorisHandshake(t *testing.T) {
	const timeout = time.Second
	n := startNode(t, func(c *gateway.Config) { c.HandshakeTimeout = timeout })
	live := n.dial(t, "live")
	idle, err := net.Dial("tcp", n.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	drip, err := net.Dial("tcp", n.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer drip.Close()
	start := time.Now()
	dripDone := make(chan time.Duration, 1)
	go func() {
		req := "GET /ws?user=slow HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Pad: " + strings.Repeat("p", 200)
		for i := 0; i < len(req); i++ {
			if _, err := drip.Write([]byte{req[i]}); err != nil {
				dripDone <- time.Since(start)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		dripDone <- -1
	}()
	_ = idle.SetReadDeadline(time.Now().Add(5 * timeout))
	if _, err := idle.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("idle socket not dropped: %v", err)
	}
	if took := time.Since(start); took > timeout+time.Second {
		t.Fatalf("idle socket dropped after %v", took)
	}
	select {
	case took := <-dripDone:
		if took < 0 || took > timeout+2*time.Second {
			t.Fatalf("dribbling socket: dropped after %v (-1: never)", took)
		}
	case <-time.After(5 * timeout):
		t.Fatal("dribbling socket not dropped")
	}
	// The upgraded connection outlives the handshake timeout.
	if f := live.Request(map[string]any{"type": "ping", "id": "p"}); f.Str("type") != "pong" {
		t.Fatalf("live connection: %v", f)
	}
}

func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return writePEM(t, "CERTIFICATE", der), writePEM(t, "EC PRIVATE KEY", kder), pool
}

func TestWSSRoundTrip(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	n := startNode(t, func(c *gateway.Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	c := wstest.Dial(t, "wss://"+n.srv.Addr()+"/ws?user=alice",
		wstest.Dialer(&websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}}))
	if f := c.Next(); f.Str("type") != "welcome" {
		t.Fatalf("welcome over TLS: %v", f)
	}
	c.Next() // inbox joined
	c.Join("general")
	c.SendText("general", "over tls")
	c.WaitFor("message", func(f frame) bool { return f.Str("text") == "over tls" })
}
