package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ---- keys and token helpers -------------------------------------------------

var (
	testSecret  = []byte("test-secret-0123456789abcdef0123")
	otherSecret = []byte("other-secret-0123456789abcdef012")
)

type testKeys struct {
	rsa, rsaOther *rsa.PrivateKey
	ec, ecOther   *ecdsa.PrivateKey
	ec384         *ecdsa.PrivateKey
	rsaPubPEM     []byte
	ecPubPEM      []byte
	ec384PubPEM   []byte
}

var (
	keysOnce sync.Once
	keysVal  *testKeys
	keysErr  error
)

// keys generates the asymmetric keys once per test binary (RSA 2048 is slow,
// especially under -race).
func keys(t testing.TB) *testKeys {
	t.Helper()
	keysOnce.Do(func() {
		k := &testKeys{}
		if k.rsa, keysErr = rsa.GenerateKey(rand.Reader, 2048); keysErr != nil {
			return
		}
		if k.rsaOther, keysErr = rsa.GenerateKey(rand.Reader, 2048); keysErr != nil {
			return
		}
		if k.ec, keysErr = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); keysErr != nil {
			return
		}
		if k.ecOther, keysErr = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); keysErr != nil {
			return
		}
		if k.ec384, keysErr = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); keysErr != nil {
			return
		}
		if k.rsaPubPEM, keysErr = pubPEM(&k.rsa.PublicKey); keysErr != nil {
			return
		}
		if k.ecPubPEM, keysErr = pubPEM(&k.ec.PublicKey); keysErr != nil {
			return
		}
		if k.ec384PubPEM, keysErr = pubPEM(&k.ec384.PublicKey); keysErr != nil {
			return
		}
		keysVal = k
	})
	if keysErr != nil {
		t.Fatalf("generating keys: %v", keysErr)
	}
	return keysVal
}

func pubPEM(pub any) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

func sign(t testing.TB, m jwt.SigningMethod, c jwt.Claims, key any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatalf("signing %s token: %v", m.Alg(), err)
	}
	return s
}

func newVerifier(t testing.TB, cfg Config) *Verifier {
	t.Helper()
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	if v == nil {
		t.Fatal("NewVerifier returned nil verifier and nil error")
	}
	return v
}

func in(d time.Duration) *jwt.NumericDate { return jwt.NewNumericDate(time.Now().Add(d)) }

// baseClaims are claims a verifier with Audience "chat" and Issuer "idp"
// accepts.
func baseClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub":  "alice",
		"name": "Alice A.",
		"exp":  in(time.Hour),
		"aud":  "chat",
		"iss":  "idp",
	}
}

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func without(c jwt.MapClaims, names ...string) jwt.MapClaims {
	out := with(c)
	for _, n := range names {
		delete(out, n)
	}
	return out
}

// refused asserts that token is refused with an error wrapping want, that
// the error text does not leak the token (nor any long segment of it), and
// that the text names reason (when reason is not empty), so that a test
// cannot pass because the token failed for some other, unintended cause.
func refused(t *testing.T, v *Verifier, token string, want error, reason string) {
	t.Helper()
	id, err := v.Verify(token)
	if err == nil {
		t.Fatalf("Verify accepted the token: %+v", id)
	}
	if id != nil {
		t.Errorf("Verify returned an identity with its error: %+v", id)
	}
	if !errors.Is(err, want) {
		t.Errorf("error %q does not wrap %v", err, want)
	}
	if want == ErrInvalid && errors.Is(err, ErrNoToken) {
		t.Errorf("error %q wraps ErrNoToken too", err)
	}
	msg := err.Error()
	if token != "" && strings.Contains(msg, token) {
		t.Errorf("error text contains the token: %q", msg)
	}
	for _, seg := range strings.Split(token, ".") {
		if len(seg) >= 8 && strings.Contains(msg, seg) {
			t.Errorf("error text contains token segment %q: %q", seg, msg)
		}
	}
	if reason != "" && !strings.Contains(msg, reason) {
		t.Errorf("error %q does not give reason %q", msg, reason)
	}
}

func accepted(t *testing.T, v *Verifier, token string) *Identity {
	t.Helper()
	id, err := v.Verify(token)
	if err != nil {
		t.Fatalf("Verify refused a valid token: %v", err)
	}
	if id == nil {
		t.Fatal("Verify returned nil identity and nil error")
	}
	return id
}

// ---- valid tokens ------------------------------------------------------------

func TestVerifyValid(t *testing.T) {
	k := keys(t)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	cases := []struct {
		name   string
		cfg    Config
		method jwt.SigningMethod
		key    any
	}{
		{"HS256", Config{Secret: testSecret}, jwt.SigningMethodHS256, testSecret},
		{"RS256", Config{PublicKeyPEM: k.rsaPubPEM}, jwt.SigningMethodRS256, k.rsa},
		{"ES256", Config{PublicKeyPEM: k.ecPubPEM}, jwt.SigningMethodES256, k.ec},
		{"HS256 with RSA key also configured", Config{Secret: testSecret, PublicKeyPEM: k.rsaPubPEM}, jwt.SigningMethodHS256, testSecret},
		{"RS256 with secret also configured", Config{Secret: testSecret, PublicKeyPEM: k.rsaPubPEM}, jwt.SigningMethodRS256, k.rsa},
		{"ES256 with secret also configured", Config{Secret: testSecret, PublicKeyPEM: k.ecPubPEM}, jwt.SigningMethodES256, k.ec},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t, tc.cfg)
			rooms := []string{"team-*", "general"}
			tok := sign(t, tc.method, jwt.MapClaims{
				"sub": "alice", "name": "Alice A.", "exp": jwt.NewNumericDate(exp), "rooms": rooms,
			}, tc.key)
			id := accepted(t, v, tok)
			if id.User != "alice" {
				t.Errorf("User = %q, want alice", id.User)
			}
			if id.Name != "Alice A." {
				t.Errorf("Name = %q, want %q", id.Name, "Alice A.")
			}
			if !id.Expires.Equal(exp) {
				t.Errorf("Expires = %v, want %v", id.Expires, exp)
			}
			if !reflect.DeepEqual(id.Rooms, rooms) {
				t.Errorf("Rooms = %#v, want %#v", id.Rooms, rooms)
			}
		})
	}
}

func TestVerifyOptionalClaims(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret})

	t.Run("only sub", func(t *testing.T) {
		id := accepted(t, v, sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "bob"}, testSecret))
		if id.User != "bob" {
			t.Errorf("User = %q, want bob", id.User)
		}
		if id.Name != "" {
			t.Errorf("Name = %q, want empty", id.Name)
		}
		if !id.Expires.IsZero() {
			t.Errorf("Expires = %v, want zero (no exp claim)", id.Expires)
		}
		if id.Rooms != nil {
			t.Errorf("Rooms = %#v, want nil (no rooms claim)", id.Rooms)
		}
		if !id.MayUse("anything") {
			t.Error("absent rooms claim should allow any room")
		}
	})

	t.Run("empty rooms", func(t *testing.T) {
		id := accepted(t, v, sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "bob", "rooms": []string{}}, testSecret))
		if id.Rooms == nil {
			t.Fatal(`Rooms = nil for "rooms":[], want an empty non-nil slice`)
		}
		if len(id.Rooms) != 0 {
			t.Errorf("Rooms = %#v, want empty", id.Rooms)
		}
		if id.MayUse("general") {
			t.Error(`"rooms":[] should allow no room`)
		}
		if !id.MayUse("@bob") {
			t.Error(`"rooms":[] should still allow the user's inbox`)
		}
	})

	t.Run("64-char sub and every allowed character", func(t *testing.T) {
		for _, sub := range []string{strings.Repeat("x", 64), "Az09_.:-", "a"} {
			id := accepted(t, v, sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub}, testSecret))
			if id.User != sub {
				t.Errorf("User = %q, want %q", id.User, sub)
			}
		}
	})

	t.Run("aud and iss ignored when not configured", func(t *testing.T) {
		accepted(t, v, sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "bob", "aud": "whatever", "iss": "someone"}, testSecret))
	})
}

// ---- refusals ----------------------------------------------------------------

func TestVerifyNoToken(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret})
	refused(t, v, "", ErrNoToken, "")
	if _, err := v.Verify(""); errors.Is(err, ErrInvalid) {
		t.Errorf("empty token: %v wraps ErrInvalid, want only ErrNoToken", err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret})
	good := sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice"}, testSecret)
	accepted(t, v, good) // control: the pieces below come from a valid token
	parts := strings.Split(good, ".")
	cases := map[string]string{
		"garbage":              "this-is-not-a-jwt-at-all",
		"two segments":         parts[0] + "." + parts[1],
		"four segments":        good + "." + parts[2],
		"one dot":              ".",
		"only dots":            "..",
		"bad base64 header":    "!!!notbase64!!!." + parts[1] + "." + parts[2],
		"bad base64 claims":    parts[0] + ".%%%%%%%%%%." + parts[2],
		"bad base64 signature": parts[0] + "." + parts[1] + ".***sig***",
		"header not JSON":      "bm90IGpzb24gYXQgYWxs." + parts[1] + "." + parts[2], // "not json at all"
		"claims not JSON":      parts[0] + ".bm90IGpzb24gYXQgYWxs." + parts[2],
		"padded base64":        parts[0] + "=." + parts[1] + "." + parts[2],
		"whitespace":           " " + good,
		"bearer prefix":        "Bearer " + good,
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			refused(t, v, tok, ErrInvalid, "")
		})
	}
	// A claim of the wrong JSON type is malformed, not a verified identity.
	for name, c := range map[string]jwt.MapClaims{
		"sub is a number":    {"sub": 42},
		"rooms is a string":  {"sub": "alice", "rooms": "team-*"},
		"exp is a string":    {"sub": "alice", "exp": "tomorrow"},
		"name is an object":  {"sub": "alice", "name": map[string]any{"x": 1}},
		"rooms has a number": {"sub": "alice", "rooms": []any{"a", 1}},
	} {
		t.Run(name, func(t *testing.T) {
			refused(t, v, sign(t, jwt.SigningMethodHS256, c, testSecret), ErrInvalid, "")
		})
	}
}

func TestVerifyTimes(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret})
	tok := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, c, testSecret) }

	t.Run("expired 1s ago, no leeway", func(t *testing.T) {
		refused(t, v, tok(jwt.MapClaims{"sub": "alice", "exp": in(-time.Second)}), ErrInvalid, "expired")
	})
	t.Run("expired long ago", func(t *testing.T) {
		refused(t, v, tok(jwt.MapClaims{"sub": "alice", "exp": in(-24 * time.Hour)}), ErrInvalid, "expired")
	})
	t.Run("exp is now", func(t *testing.T) {
		// NumericDate has second precision: exp = now (truncated) is past.
		refused(t, v, tok(jwt.MapClaims{"sub": "alice", "exp": jwt.NewNumericDate(time.Now())}), ErrInvalid, "expired")
	})
	t.Run("not valid yet", func(t *testing.T) {
		refused(t, v, tok(jwt.MapClaims{"sub": "alice", "nbf": in(time.Minute), "exp": in(time.Hour)}), ErrInvalid, "not valid yet")
	})
	t.Run("nbf in the past is fine", func(t *testing.T) {
		accepted(t, v, tok(jwt.MapClaims{"sub": "alice", "nbf": in(-time.Minute), "exp": in(time.Hour)}))
	})
	t.Run("exp soon is fine", func(t *testing.T) {
		id := accepted(t, v, tok(jwt.MapClaims{"sub": "alice", "exp": in(3 * time.Second)}))
		if d := time.Until(id.Expires); d <= 0 || d > 3*time.Second {
			t.Errorf("Expires in %v, want within (0, 3s]", d)
		}
	})
}

func TestVerifyAudienceIssuer(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret, Audience: "chat", Issuer: "idp"})
	tok := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, c, testSecret) }
	base := baseClaims()

	accepted(t, v, tok(base))                                     // control
	accepted(t, v, tok(with(base, "aud", []string{"x", "chat"}))) // aud as a list

	cases := []struct {
		name   string
		c      jwt.MapClaims
		reason string
	}{
		{"wrong audience", with(base, "aud", "other"), "audience"},
		{"wrong audience list", with(base, "aud", []string{"other", "chat2"}), "audience"},
		{"audience case differs", with(base, "aud", "Chat"), "audience"},
		{"empty audience", with(base, "aud", ""), ""},
		{"missing audience", without(base, "aud"), ""}, // library reports "required claim missing"
		{"wrong issuer", with(base, "iss", "evil"), "issuer"},
		{"empty issuer", with(base, "iss", ""), ""},
		{"missing issuer", without(base, "iss"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			refused(t, v, tok(tc.c), ErrInvalid, tc.reason)
		})
	}

	t.Run("only audience configured", func(t *testing.T) {
		va := newVerifier(t, Config{Secret: testSecret, Audience: "chat"})
		accepted(t, va, tok(without(base, "iss")))
		refused(t, va, tok(without(base, "aud")), ErrInvalid, "")
		refused(t, va, tok(with(base, "aud", "other")), ErrInvalid, "audience")
	})
	t.Run("only issuer configured", func(t *testing.T) {
		vi := newVerifier(t, Config{Secret: testSecret, Issuer: "idp"})
		accepted(t, vi, tok(without(base, "aud")))
		refused(t, vi, tok(without(base, "iss")), ErrInvalid, "")
		refused(t, vi, tok(with(base, "iss", "evil")), ErrInvalid, "issuer")
	})
}

func TestVerifySubject(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret})
	cases := map[string]jwt.MapClaims{
		"missing":       {"name": "Alice", "exp": in(time.Hour)},
		"empty":         {"sub": "", "exp": in(time.Hour)},
		"space":         {"sub": "a b", "exp": in(time.Hour)},
		"65 chars":      {"sub": strings.Repeat("x", 65), "exp": in(time.Hour)},
		"slash":         {"sub": "a/b", "exp": in(time.Hour)},
		"at sign":       {"sub": "@alice", "exp": in(time.Hour)},
		"non-ASCII":     {"sub": "alicé", "exp": in(time.Hour)},
		"NUL":           {"sub": "ali\x00ce", "exp": in(time.Hour)},
		"trailing LF":   {"sub": "alice\n", "exp": in(time.Hour)},
		"glob wildcard": {"sub": "*", "exp": in(time.Hour)},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			refused(t, v, sign(t, jwt.SigningMethodHS256, c, testSecret), ErrInvalid, "sub")
		})
	}
}

// ---- NewVerifier -------------------------------------------------------------

func TestNewVerifierErrors(t *testing.T) {
	k := keys(t)
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaPKCS8, err := x509.MarshalPKCS8PrivateKey(k.rsa)
	if err != nil {
		t.Fatal(err)
	}
	ecPKCS8, err := x509.MarshalPKCS8PrivateKey(k.ec)
	if err != nil {
		t.Fatal(err)
	}
	ecSEC1, err := x509.MarshalECPrivateKey(k.ec)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(typ string, der []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	}
	cases := map[string]Config{
		"no key":                  {},
		"no key, only aud/iss":    {Audience: "chat", Issuer: "idp"},
		"empty secret":            {Secret: []byte{}},
		"PEM garbage":             {PublicKeyPEM: []byte("this is not PEM at all")},
		"PEM block of garbage":    {PublicKeyPEM: pemOf("PUBLIC KEY", []byte("garbage bytes"))},
		"RSA private key PKCS1":   {PublicKeyPEM: pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k.rsa))},
		"RSA private key PKCS8":   {PublicKeyPEM: pemOf("PRIVATE KEY", rsaPKCS8)},
		"EC private key SEC1":     {PublicKeyPEM: pemOf("EC PRIVATE KEY", ecSEC1)},
		"EC private key PKCS8":    {PublicKeyPEM: pemOf("PRIVATE KEY", ecPKCS8)},
		"P-384 public key":        {PublicKeyPEM: k.ec384PubPEM},
		"Ed25519 public key":      {PublicKeyPEM: mustPubPEM(t, edPub)},
		"private key with secret": {Secret: testSecret, PublicKeyPEM: pemOf("PRIVATE KEY", rsaPKCS8)},
		"P-384 with secret":       {Secret: testSecret, PublicKeyPEM: k.ec384PubPEM},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			v, err := NewVerifier(cfg)
			if err == nil {
				t.Fatalf("NewVerifier accepted %s", name)
			}
			if v != nil {
				t.Errorf("NewVerifier returned a verifier with its error")
			}
			if !strings.HasPrefix(err.Error(), "auth: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	// The P-384 refusal names the curve, so it is not refused for another reason.
	if _, err := NewVerifier(Config{PublicKeyPEM: k.ec384PubPEM}); err == nil || !strings.Contains(err.Error(), "P-384") {
		t.Errorf("P-384 error = %v, want one naming P-384", err)
	}
}

func mustPubPEM(t *testing.T, pub any) []byte {
	t.Helper()
	b, err := pubPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---- MayUse ------------------------------------------------------------------

func TestVerifyHostile(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret})
	for i, tok := range hostileTokens(t, 1<<20) {
		want := ErrInvalid
		if tok == "" {
			want = ErrNoToken
		}
		start := time.Now()
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("token #%d (%d bytes): Verify panicked: %v", i, len(tok), r)
				}
			}()
			refused(t, v, tok, want, "")
		}()
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("token #%d (%d bytes) took %v", i, len(tok), d)
		}
	}
}

func FuzzVerify(f *testing.F) {
	v, err := NewVerifier(Config{Secret: testSecret})
	if err != nil {
		f.Fatal(err)
	}
	// Seeds stay a few KiB: the fuzzer minimises every new interesting
	// input, and multi-MiB seeds stall it. TestVerifyHostile runs the same
	// shapes at 1 MiB.
	for _, s := range hostileTokens(f, 4<<10) {
		f.Add(s)
	}
	// Fixed texts an error may contain; a short fuzzed token that happens to
	// be a substring of one of them is not a leak.
	fixed := ErrNoToken.Error() + "\n" + ErrInvalid.Error() + "\n"
	for _, e := range []error{jwt.ErrTokenMalformed, jwt.ErrTokenSignatureInvalid, jwt.ErrTokenExpired,
		jwt.ErrTokenNotValidYet, jwt.ErrTokenInvalidAudience, jwt.ErrTokenInvalidIssuer,
		jwt.ErrTokenUnverifiable, errors.New("other")} {
		fixed += reason(e) + "\n"
	}
	if _, err := v.Verify(sign(f, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "a b"}, testSecret)); err != nil {
		fixed += err.Error() + "\n"
	}
	f.Fuzz(func(t *testing.T, token string) {
		id, err := v.Verify(token)
		if err == nil {
			t.Fatalf("arbitrary token verified: %q -> %+v", token, id)
		}
		if id != nil {
			t.Fatalf("identity returned with error %v", err)
		}
		if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNoToken) {
			t.Fatalf("error %v wraps neither ErrInvalid nor ErrNoToken", err)
		}
		if len(token) >= 4 && strings.Contains(err.Error(), token) && !strings.Contains(fixed, token) {
			t.Fatalf("error text contains the token: %q", err)
		}
	})
}
