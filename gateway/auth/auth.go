// Package auth verifies the JWTs clients present at the handshake and in
// refresh requests, and decides which rooms a user may use.
//
// Verification is github.com/golang-jwt/jwt/v5's: this package only chooses
// which algorithms a key may verify, so that "alg: none" and algorithm
// confusion (an HS256 token whose "secret" is the server's public key) are
// refused by construction.
package auth

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/chatgw/gateway/codec"
)

// Errors returned by Verify. Their text never includes the token.
var (
	// ErrNoToken is returned for an empty token.
	ErrNoToken = errors.New("auth: no token")
	// ErrInvalid wraps every reason a token is refused.
	ErrInvalid = errors.New("auth: invalid token")
)

// Config selects the keys tokens are verified with. At least one of Secret
// and PublicKeyPEM must be set for a Verifier.
type Config struct {
	Secret       []byte // HS256 shared secret
	PublicKeyPEM []byte // RSA (RS256) or ECDSA P-256 (ES256) public key, PEM
	Audience     string // required "aud" when set
	Issuer       string // required "iss" when set
}

// Identity is what a verified token says about its holder.
type Identity struct {
	User    string    // "sub"
	Name    string    // "name", may be empty
	Expires time.Time // "exp"; zero when the token does not expire
	Rooms   []string  // "rooms" glob patterns; nil means any room
}

// MayUse reports whether the identity's rooms claim allows room. A user's
// own inbox is always allowed; other inboxes never are (that is checked
// elsewhere, with its own error).
func (id *Identity) MayUse(room string) bool {
	if id == nil || id.Rooms == nil || codec.IsInbox(room) {
		return true
	}
	for _, p := range id.Rooms {
		if ok, err := path.Match(p, room); err == nil && ok {
			return true
		}
	}
	return false
}

type claims struct {
	jwt.RegisteredClaims
	Name  string    `json:"name"`
	Rooms *[]string `json:"rooms"`
}

// Verifier checks tokens against the configured keys.
type Verifier struct {
	cfg     Config
	pub     any // *rsa.PublicKey or *ecdsa.PublicKey
	methods []string
	parser  *jwt.Parser
}

// NewVerifier builds a Verifier, parsing the public key if any.
func NewVerifier(cfg Config) (*Verifier, error) {
	v := &Verifier{cfg: cfg}
	if len(cfg.Secret) > 0 {
		v.methods = append(v.methods, jwt.SigningMethodHS256.Alg())
	}
	if len(cfg.PublicKeyPEM) > 0 {
		block, _ := pem.Decode(cfg.PublicKeyPEM)
		if block == nil {
			return nil, fmt.Errorf("auth: public key: no PEM block found")
		}
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth: public key: %w", err)
		}
		switch k := key.(type) {
		case *rsa.PublicKey:
			v.methods = append(v.methods, jwt.SigningMethodRS256.Alg())
		case *ecdsa.PublicKey:
			if k.Curve.Params().BitSize != 256 {
				return nil, fmt.Errorf("auth: public key: ES256 needs a P-256 key, got %s", k.Curve.Params().Name)
			}
			v.methods = append(v.methods, jwt.SigningMethodES256.Alg())
		default:
			return nil, fmt.Errorf("auth: public key: %T is not RSA or ECDSA", key)
		}
		v.pub = key
	}
	if len(v.methods) == 0 {
		return nil, errors.New("auth: no key configured")
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(v.methods)} // exp is optional in the protocol
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// key hands the library the key for the token's algorithm. The parser has
// already refused algorithms outside v.methods; the type switch makes sure
// a secret never verifies an asymmetric algorithm and vice versa.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if len(v.cfg.Secret) == 0 {
			return nil, errors.New("HMAC tokens are not accepted")
		}
		return v.cfg.Secret, nil
	case *jwt.SigningMethodRSA, *jwt.SigningMethodECDSA:
		if v.pub == nil {
			return nil, errors.New("public-key tokens are not accepted")
		}
		return v.pub, nil
	}
	return nil, fmt.Errorf("algorithm %s is not accepted", t.Method.Alg())
}

// Verify checks token's signature, algorithm, exp, nbf, aud and iss, and
// returns the identity it names. Errors wrap ErrNoToken or ErrInvalid.
func (v *Verifier) Verify(token string) (*Identity, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	var c claims
	if _, err := v.parser.ParseWithClaims(token, &c, v.key); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, reason(err))
	}
	if !codec.ValidName(c.Subject) {
		return nil, fmt.Errorf("%w: \"sub\" must be a user id (1-64 of A-Z a-z 0-9 _ . : -)", ErrInvalid)
	}
	id := &Identity{User: c.Subject, Name: c.Name}
	if c.ExpiresAt != nil {
		id.Expires = c.ExpiresAt.Time
	}
	if c.Rooms != nil {
		id.Rooms = append([]string{}, *c.Rooms...)
	}
	return id, nil
}

// reason maps the library's errors to short, token-free explanations.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature or algorithm"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "a required claim (aud or iss) is missing"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unverifiable (algorithm not accepted)"
	}
	return "rejected"
}
