package auth

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/pem"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Which algorithms a key verifies, and the tokens that must be refused
// whatever they claim.

func TestVerifyBadSignature(t *testing.T) {
	k := keys(t)
	claims := jwt.MapClaims{"sub": "alice", "exp": in(time.Hour)}
	cases := []struct {
		name   string
		cfg    Config
		method jwt.SigningMethod
		key    any // the wrong key
	}{
		{"HS256 other secret", Config{Secret: testSecret}, jwt.SigningMethodHS256, otherSecret},
		{"RS256 other key", Config{PublicKeyPEM: k.rsaPubPEM}, jwt.SigningMethodRS256, k.rsaOther},
		{"ES256 other key", Config{PublicKeyPEM: k.ecPubPEM}, jwt.SigningMethodES256, k.ecOther},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t, tc.cfg)
			refused(t, v, sign(t, tc.method, claims, tc.key), ErrInvalid, "signature")
		})
	}

	t.Run("tampered claims", func(t *testing.T) {
		v := newVerifier(t, Config{Secret: testSecret})
		good := sign(t, jwt.SigningMethodHS256, claims, testSecret)
		evil := sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "mallory", "exp": in(time.Hour)}, otherSecret)
		p, q := strings.Split(good, "."), strings.Split(evil, ".")
		accepted(t, v, good)
		refused(t, v, p[0]+"."+q[1]+"."+p[2], ErrInvalid, "signature")
	})

	t.Run("stripped signature", func(t *testing.T) {
		v := newVerifier(t, Config{Secret: testSecret})
		good := sign(t, jwt.SigningMethodHS256, claims, testSecret)
		refused(t, v, good[:strings.LastIndex(good, ".")+1], ErrInvalid, "signature")
	})
}

func TestVerifyWrongAlgorithm(t *testing.T) {
	k := keys(t)
	claims := jwt.MapClaims{"sub": "alice", "exp": in(time.Hour)}
	hsOnly := newVerifier(t, Config{Secret: testSecret})
	rsOnly := newVerifier(t, Config{PublicKeyPEM: k.rsaPubPEM})
	esOnly := newVerifier(t, Config{PublicKeyPEM: k.ecPubPEM})
	hsRS := newVerifier(t, Config{Secret: testSecret, PublicKeyPEM: k.rsaPubPEM})

	cases := []struct {
		name string
		v    *Verifier
		tok  string
	}{
		// Correctly signed with the right key material, but an algorithm
		// that was not configured.
		{"HS384 to HS256 verifier", hsOnly, sign(t, jwt.SigningMethodHS384, claims, testSecret)},
		{"HS512 to HS256 verifier", hsOnly, sign(t, jwt.SigningMethodHS512, claims, testSecret)},
		{"HS384 to HS256+RS256 verifier", hsRS, sign(t, jwt.SigningMethodHS384, claims, testSecret)},
		{"RS512 to RS256 verifier", rsOnly, sign(t, jwt.SigningMethodRS512, claims, k.rsa)},
		{"RS512 to HS256+RS256 verifier", hsRS, sign(t, jwt.SigningMethodRS512, claims, k.rsa)},
		{"PS256 to RS256 verifier", rsOnly, sign(t, jwt.SigningMethodPS256, claims, k.rsa)},
		{"RS256 to HS256 verifier", hsOnly, sign(t, jwt.SigningMethodRS256, claims, k.rsa)},
		{"ES256 to HS256 verifier", hsOnly, sign(t, jwt.SigningMethodES256, claims, k.ec)},
		{"ES256 to RS256 verifier", rsOnly, sign(t, jwt.SigningMethodES256, claims, k.ec)},
		{"RS256 to ES256 verifier", esOnly, sign(t, jwt.SigningMethodRS256, claims, k.rsa)},
		{"ES384 to ES256 verifier", esOnly, sign(t, jwt.SigningMethodES384, claims, k.ec384)},
		{"HS256 to RS256 verifier", rsOnly, sign(t, jwt.SigningMethodHS256, claims, testSecret)},
		{"HS256 to ES256 verifier", esOnly, sign(t, jwt.SigningMethodHS256, claims, testSecret)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			refused(t, tc.v, tc.tok, ErrInvalid, "")
		})
	}

	t.Run("unknown alg", func(t *testing.T) {
		// Take a valid token and swap in a header naming an unknown algorithm.
		good := sign(t, jwt.SigningMethodHS256, claims, testSecret)
		p := strings.Split(good, ".")
		hdr := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		hdr.Header["alg"] = "XS999"
		s, err := hdr.SigningString()
		if err != nil {
			t.Fatal(err)
		}
		refused(t, hsOnly, strings.Split(s, ".")[0]+"."+p[1]+"."+p[2], ErrInvalid, "")
	})
}

// An ES384 token signed with the configured P-256 key is cryptographically
// valid for that key (the library's ES384 verifier does not check the
// curve), so only the algorithm allowlist refuses it.
func TestVerifyES384WithP256Key(t *testing.T) {
	k := keys(t)
	tok := jwt.NewWithClaims(jwt.SigningMethodES384, jwt.MapClaims{"sub": "alice", "exp": in(time.Hour)})
	signing, err := tok.SigningString()
	if err != nil {
		t.Fatal(err)
	}
	digest := sha512.Sum384([]byte(signing))
	r, sv, err := ecdsa.Sign(rand.Reader, k.ec, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 96)
	r.FillBytes(sig[:48])
	sv.FillBytes(sig[48:])
	if err := jwt.SigningMethodES384.Verify(signing, sig, &k.ec.PublicKey); err != nil {
		t.Fatalf("precondition: ES384 signature by the P-256 key does not verify in the library: %v", err)
	}
	full := signing + "." + base64.RawURLEncoding.EncodeToString(sig)
	refused(t, newVerifier(t, Config{PublicKeyPEM: k.ecPubPEM}), full, ErrInvalid, "")
	refused(t, newVerifier(t, Config{Secret: testSecret, PublicKeyPEM: k.ecPubPEM}), full, ErrInvalid, "")
}

// The key function is a second line of defence behind the parser's
// algorithm allowlist: it never hands a secret to an asymmetric algorithm,
// a public key to HMAC, or anything to an unknown method.
func TestKeyFuncRefusesMismatch(t *testing.T) {
	k := keys(t)
	hsOnly := newVerifier(t, Config{Secret: testSecret})
	rsOnly := newVerifier(t, Config{PublicKeyPEM: k.rsaPubPEM})
	esOnly := newVerifier(t, Config{PublicKeyPEM: k.ecPubPEM})
	both := newVerifier(t, Config{Secret: testSecret, PublicKeyPEM: k.rsaPubPEM})
	tok := func(m jwt.SigningMethod) *jwt.Token {
		return &jwt.Token{Method: m, Header: map[string]any{"alg": m.Alg()}}
	}

	for _, tc := range []struct {
		name string
		v    *Verifier
		m    jwt.SigningMethod
	}{
		{"HMAC without secret (RSA)", rsOnly, jwt.SigningMethodHS256},
		{"HMAC without secret (ECDSA)", esOnly, jwt.SigningMethodHS256},
		{"RSA without public key", hsOnly, jwt.SigningMethodRS256},
		{"ECDSA without public key", hsOnly, jwt.SigningMethodES256},
		{"none", both, jwt.SigningMethodNone},
		{"Ed25519", both, jwt.SigningMethodEdDSA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if key, err := tc.v.key(tok(tc.m)); err == nil {
				t.Errorf("key(%s) = %T, want an error", tc.m.Alg(), key)
			}
		})
	}
	// And the right key for each configured algorithm.
	if key, err := both.key(tok(jwt.SigningMethodHS256)); err != nil || !reflect.DeepEqual(key, testSecret) {
		t.Errorf("key(HS256) = %v, %v; want the secret", key, err)
	}
	if key, err := both.key(tok(jwt.SigningMethodRS256)); err != nil || !k.rsa.PublicKey.Equal(key) {
		t.Errorf("key(RS256) = %T, %v; want the RSA public key", key, err)
	}
	if key, err := esOnly.key(tok(jwt.SigningMethodES256)); err != nil || !k.ec.PublicKey.Equal(key) {
		t.Errorf("key(ES256) = %T, %v; want the ECDSA public key", key, err)
	}
}

func TestVerifyAlgNone(t *testing.T) {
	k := keys(t)
	tok := sign(t, jwt.SigningMethodNone, jwt.MapClaims{"sub": "alice", "exp": in(time.Hour)}, jwt.UnsafeAllowNoneSignatureType)
	if !strings.HasSuffix(tok, ".") {
		t.Fatalf("alg none token %q should have an empty signature", tok)
	}
	for name, cfg := range map[string]Config{
		"HS256":        {Secret: testSecret},
		"RS256":        {PublicKeyPEM: k.rsaPubPEM},
		"ES256":        {PublicKeyPEM: k.ecPubPEM},
		"HS256+RS256":  {Secret: testSecret, PublicKeyPEM: k.rsaPubPEM},
		"with aud/iss": {Secret: testSecret, Audience: "chat", Issuer: "idp"},
	} {
		t.Run(name, func(t *testing.T) {
			refused(t, newVerifier(t, cfg), tok, ErrInvalid, "")
		})
	}
	// "none" with a (bogus) signature appended, and spelled differently.
	p := strings.Split(tok, ".")
	refused(t, newVerifier(t, Config{Secret: testSecret}), p[0]+"."+p[1]+".c2lnbmF0dXJl", ErrInvalid, "")
	for _, alg := range []string{"None", "NONE", "nOnE"} {
		h := jwt.New(jwt.SigningMethodNone)
		h.Header["alg"] = alg
		s, err := h.SigningString()
		if err != nil {
			t.Fatal(err)
		}
		refused(t, newVerifier(t, Config{Secret: testSecret}), strings.Split(s, ".")[0]+"."+p[1]+".", ErrInvalid, "")
	}
}

func TestVerifyAlgorithmConfusion(t *testing.T) {
	k := keys(t)
	claims := jwt.MapClaims{"sub": "mallory", "exp": in(time.Hour)}
	for _, pk := range []struct {
		name string
		pem  []byte
	}{{"RSA", k.rsaPubPEM}, {"ECDSA", k.ecPubPEM}} {
		// The attacker knows the public key and uses its PEM bytes as an
		// HMAC secret.
		tok := sign(t, jwt.SigningMethodHS256, claims, pk.pem)
		// Sanity: a verifier that did treat the PEM as a secret would
		// accept it, so the refusals below are meaningful.
		accepted(t, newVerifier(t, Config{Secret: pk.pem}), tok)

		t.Run(pk.name+" public key only", func(t *testing.T) {
			refused(t, newVerifier(t, Config{PublicKeyPEM: pk.pem}), tok, ErrInvalid, "")
		})
		t.Run(pk.name+" public key and a different secret", func(t *testing.T) {
			refused(t, newVerifier(t, Config{Secret: testSecret, PublicKeyPEM: pk.pem}), tok, ErrInvalid, "signature")
		})
		t.Run(pk.name+" DER bytes as secret", func(t *testing.T) {
			block, _ := pem.Decode(pk.pem)
			tok := sign(t, jwt.SigningMethodHS256, claims, block.Bytes)
			refused(t, newVerifier(t, Config{PublicKeyPEM: pk.pem}), tok, ErrInvalid, "")
			refused(t, newVerifier(t, Config{Secret: testSecret, PublicKeyPEM: pk.pem}), tok, ErrInvalid, "signature")
		})
	}
}
