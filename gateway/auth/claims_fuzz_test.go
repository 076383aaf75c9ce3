package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify feeds Verify arbitrary bytes, which essentially never carry a
// valid signature, so it only ever exercises refusals. FuzzVerifyClaims
// reaches the other branch: every token is correctly signed (HS256 with the
// test secret, or ES256 with the test P-256 key), and the fuzzer chooses
// the claims inside it and the verifier's configuration. Verify's verdict,
// its reason and the identity it returns are compared with refVerdict, the
// rules of README "Security" and docs/protocol.md "Tokens" written out
// independently of the library.

// Bits of FuzzVerifyClaims's flags: which claims the token has, how aud is
// written, what the verifier requires, and the algorithm.
const (
	fcSub     = 1 << iota // "sub" present
	fcExp                 // "exp" present: now + expOff seconds
	fcNbf                 // "nbf" present: now + nbfOff seconds
	fcAud                 // "aud" present
	fcAudList             // "aud" written as a list, aud split at ','
	fcIss                 // "iss" present
	fcRooms               // "rooms" present, split at ','; "" is the empty list
	fcCfgAud              // the verifier requires aud "chat"
	fcCfgIss              // the verifier requires iss "idp"
	fcES256               // signed ES256 (else HS256)
)

// fcOffsetRange folds the fuzzer's time offsets into ±2^40 s (35,000
// years): JSON numbers are read as float64, which stops holding whole
// seconds exactly near 2^53, and the rules here are about time, not float
// rounding.
const fcOffsetRange = 1 << 40

// refClaims is what the token says, read back from its payload with
// encoding/json: the reference judges what was signed (encoding/json has
// already turned invalid UTF-8 into U+FFFD there), not the fuzzer's raw
// strings.
type refClaims struct {
	Sub   *string         `json:"sub"`
	Exp   *int64          `json:"exp"`
	Nbf   *int64          `json:"nbf"`
	Aud   json.RawMessage `json:"aud"`
	Iss   *string         `json:"iss"`
	Rooms *[]string       `json:"rooms"`
}

// refVerdict lists the rules a token with claims c breaks when verified at
// time at by a verifier configured with cfg; none means it must be
// accepted. Each entry is a word Verify's error must contain when that rule
// is the only one broken.
//
//   - "sub" is required and must be a user id: 1-64 of A-Z a-z 0-9 _ . : -
//   - "exp", when present, must be after the moment of verification: no
//     leeway, so exp == now is expired;
//   - "nbf", when present, must not be after it;
//   - "aud" must contain cfg.Audience when one is configured (a string or a
//     list), and "iss" must equal cfg.Issuer when one is configured; both
//     are ignored otherwise.
func refVerdict(c refClaims, cfg Config, at time.Time) []string {
	var broken []string
	if c.Sub == nil || !refUserID(*c.Sub) {
		broken = append(broken, `"sub"`)
	}
	if c.Exp != nil && !at.Before(time.Unix(*c.Exp, 0)) {
		broken = append(broken, "expired")
	}
	if c.Nbf != nil && at.Before(time.Unix(*c.Nbf, 0)) {
		broken = append(broken, "not valid yet")
	}
	if cfg.Audience != "" {
		var one string
		var list []string
		if json.Unmarshal(c.Aud, &one) == nil {
			list = []string{one}
		} else {
			_ = json.Unmarshal(c.Aud, &list)
		}
		found := false
		for _, a := range list {
			found = found || a == cfg.Audience
		}
		if !found {
			broken = append(broken, "aud")
		}
	}
	if cfg.Issuer != "" && (c.Iss == nil || *c.Iss != cfg.Issuer) {
		broken = append(broken, "iss")
	}
	return broken
}

// refUserID is the protocol's user id (docs/protocol.md "Names").
func refUserID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_.:-", c) >= 0) {
			return false
		}
	}
	return true
}

// refMayUse is the rooms claim (docs/protocol.md "Tokens"): absent allows
// every room, the user's inbox is always allowed, otherwise some pattern
// must match. decided is false when a pattern that might match uses syntax
// the docs leave open.
func refMayUse(rooms *[]string, room string) (allowed, decided bool) {
	if rooms == nil || strings.HasPrefix(room, "@") {
		return true, true
	}
	decided = true
	for _, p := range *rooms {
		m, d := refGlob(p, room)
		if d && m {
			return true, true
		}
		decided = decided && d
	}
	return false, decided
}

// globTok is one element of a parsed pattern: a literal character, '?',
// '*', or a class of inclusive ranges.
type globTok struct {
	op    byte // 'c' literal, '?', '*', '['
	r     rune
	class [][2]rune
}

// refGlob matches room against one rooms pattern by the documented rules:
// '*' is any run of characters, '?' one character, "[...]" one character
// of a class of characters and ranges such as 0-9 (a reversed range holds
// none); a malformed pattern, here an unclosed or empty class, matches
// nothing. decided is false for what the docs do not define: a '\', a
// class opening with '^' or '!', a '-' that is not inside a range.
func refGlob(pattern, room string) (match, decided bool) {
	var toks []globTok
	p := []rune(pattern)
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			return false, false
		case '*', '?':
			toks = append(toks, globTok{op: byte(p[i])})
		case '[':
			j := i + 1
			if j < len(p) && (p[j] == '^' || p[j] == '!') {
				return false, false
			}
			var class [][2]rune
			for ; j < len(p) && p[j] != ']'; j++ {
				switch {
				case p[j] == '\\' || p[j] == '-':
					return false, false
				case j+1 < len(p) && p[j+1] == '-':
					if j+2 >= len(p) || p[j+2] == ']' || p[j+2] == '-' || p[j+2] == '\\' {
						return false, false
					}
					class = append(class, [2]rune{p[j], p[j+2]})
					j += 2
				default:
					class = append(class, [2]rune{p[j], p[j]})
				}
			}
			if j >= len(p) || len(class) == 0 {
				return false, true // malformed: matches nothing
			}
			toks = append(toks, globTok{op: '[', class: class})
			i = j
		default:
			toks = append(toks, globTok{op: 'c', r: p[i]})
		}
	}
	// ok[i][j]: toks[i:] matches s[j:]; filled backwards, no backtracking
	// blow-up on patterns of many stars.
	s := []rune(room)
	ok := make([][]bool, len(toks)+1)
	for i := range ok {
		ok[i] = make([]bool, len(s)+1)
	}
	ok[len(toks)][len(s)] = true
	for i := len(toks) - 1; i >= 0; i-- {
		for j := len(s); j >= 0; j-- {
			t := toks[i]
			if t.op == '*' {
				ok[i][j] = ok[i+1][j] || j < len(s) && ok[i][j+1]
				continue
			}
			if j == len(s) {
				continue
			}
			one := t.op == '?' || t.op == 'c' && t.r == s[j]
			for _, rg := range t.class {
				one = one || rg[0] <= s[j] && s[j] <= rg[1]
			}
			ok[i][j] = one && ok[i+1][j+1]
		}
	}
	return ok[0][0], true
}

// globExample is a room pattern p should match: each '*' empty, each '?'
// and class the first character it allows. The fuzzer rarely writes a room
// that matches a pattern it also wrote; this makes the "allowed" side of
// MayUse as likely as the "refused" side.
func globExample(p string) string {
	var b strings.Builder
	rs := []rune(p)
	for i := 0; i < len(rs); i++ {
		switch rs[i] {
		case '*':
		case '?':
			b.WriteByte('x')
		case '[':
			if i+1 < len(rs) {
				b.WriteRune(rs[i+1])
			}
			for i < len(rs) && rs[i] != ']' {
				i++
			}
		default:
			b.WriteRune(rs[i])
		}
	}
	return b.String()
}

func FuzzVerifyClaims(f *testing.F) {
	k := keys(f)
	// One verifier per combination of required aud and iss, each taking
	// both HS256 and ES256 tokens.
	var verifiers [4]*Verifier
	for i := range verifiers {
		cfg := Config{Secret: testSecret, PublicKeyPEM: k.ecPubPEM}
		if i&1 != 0 {
			cfg.Audience = "chat"
		}
		if i&2 != 0 {
			cfg.Issuer = "idp"
		}
		verifiers[i] = newVerifier(f, cfg)
	}

	all := uint16(fcSub | fcExp | fcNbf | fcAud | fcIss | fcRooms | fcCfgAud | fcCfgIss)
	for _, s := range []struct {
		sub            string
		expOff, nbfOff int64
		aud, iss       string
		rooms, room    string
		flags          uint16
	}{
		// accepted, HS256 and ES256
		{"alice", 3600, -60, "chat", "idp", "team-*,general", "team-core", all},
		{"alice", 3600, -60, "chat", "idp", "team-*,general", "random", all | fcES256},
		{"Az09_.:-", 0, 0, "", "", "", "", fcSub},
		{strings.Repeat("x", 64), 2, 0, "other", "someone", "", "general", fcSub | fcExp | fcNbf | fcAud | fcIss},
		// exp and nbf at the edges: exp == now is expired, nbf == now is valid
		{"alice", -1, 0, "chat", "idp", "", "", all &^ fcRooms},
		{"alice", 0, 0, "chat", "idp", "", "", fcSub | fcExp},
		{"alice", 1, 0, "", "", "", "", fcSub | fcExp},
		{"alice", 3600, 1, "", "", "", "", fcSub | fcExp | fcNbf},
		{"alice", 3600, 60, "", "", "", "", fcSub | fcExp | fcNbf | fcES256},
		{"alice", -86400, 0, "", "", "", "", fcSub | fcExp},
		// aud and iss: a list holding the audience, wrong, missing, empty
		{"alice", 3600, 0, "x,chat", "idp", "", "", all&^(fcNbf|fcRooms) | fcAudList},
		{"alice", 3600, 0, "other,chat2", "idp", "", "", all&^(fcNbf|fcRooms) | fcAudList},
		{"alice", 3600, 0, "Chat", "idp", "", "", all &^ (fcNbf | fcRooms)},
		{"alice", 3600, 0, "", "idp", "", "", all &^ (fcNbf | fcRooms)},
		{"alice", 3600, 0, "chat", "evil", "", "", all &^ (fcNbf | fcRooms)},
		{"alice", 3600, 0, "chat", "", "", "", all &^ (fcNbf | fcRooms | fcIss)},
		{"alice", 3600, 0, "chat", "idp", "", "", all &^ (fcNbf | fcRooms | fcAud)},
		// sub that is not a user id, or none
		{"a b", 3600, 0, "", "", "", "", fcSub | fcExp},
		{"@alice", 0, 0, "", "", "", "", fcSub},
		{strings.Repeat("x", 65), 0, 0, "", "", "", "", fcSub},
		{"alicé", 0, 0, "", "", "", "", fcSub},
		{"*", 0, 0, "", "", "", "", fcSub},
		{"", 0, 0, "", "", "", "", fcSub},
		{"alice", 0, 0, "", "", "", "", 0},
		// rooms: empty list, classes, wildcards, malformed, undocumented
		{"bob", 0, 0, "", "", "", "general", fcSub | fcRooms},
		{"bob", 0, 0, "", "", "room-[0-9],a?c", "room-7", fcSub | fcRooms},
		{"bob", 0, 0, "", "", "[abc]-*,[z-a]", "d-1", fcSub | fcRooms},
		{"bob", 0, 0, "", "", "[,team-[,general", "team-a", fcSub | fcRooms},
		{"bob", 0, 0, "", "", "[]a],x*y*z", "xaaybbz", fcSub | fcRooms | fcES256},
		{"bob", 0, 0, "", "", `a\*,[^x]yz`, "@bob", fcSub | fcRooms},
		{"bob", 0, 0, "", "", "*", "anything", fcSub | fcRooms},
	} {
		f.Add(s.sub, s.expOff, s.nbfOff, s.aud, s.iss, s.rooms, s.room, s.flags)
	}

	f.Fuzz(func(t *testing.T, sub string, expOff, nbfOff int64, aud, iss, rooms, room string, flags uint16) {
		now := time.Now().Unix()
		c := jwt.MapClaims{}
		if flags&fcSub != 0 {
			c["sub"] = sub
		}
		if flags&fcExp != 0 {
			c["exp"] = now + expOff%fcOffsetRange
		}
		if flags&fcNbf != 0 {
			c["nbf"] = now + nbfOff%fcOffsetRange
		}
		if flags&fcAud != 0 {
			if flags&fcAudList != 0 {
				c["aud"] = strings.Split(aud, ",")
			} else {
				c["aud"] = aud
			}
		}
		if flags&fcIss != 0 {
			c["iss"] = iss
		}
		if flags&fcRooms != 0 {
			list := []string{}
			if rooms != "" {
				list = strings.Split(rooms, ",")
			}
			c["rooms"] = list
		}
		v := verifiers[flags/fcCfgAud%4]
		var tok string
		if flags&fcES256 != 0 {
			tok = sign(t, jwt.SigningMethodES256, c, k.ec)
		} else {
			tok = sign(t, jwt.SigningMethodHS256, c, testSecret)
		}

		var said refClaims
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
		if err != nil || json.Unmarshal(payload, &said) != nil {
			t.Fatalf("cannot read back the claims just signed: %v %s", err, payload)
		}

		before := time.Now()
		id, err := v.Verify(tok)
		after := time.Now()

		// The verdict is only certain when it is the same at both ends of
		// the call (a second may tick over meanwhile).
		brokenBefore, brokenAfter := refVerdict(said, v.cfg, before), refVerdict(said, v.cfg, after)
		if (len(brokenBefore) == 0) != (len(brokenAfter) == 0) {
			return
		}
		if len(brokenBefore) > 0 {
			if err == nil {
				t.Fatalf("accepted a token that breaks %q: %s\n-> %+v", brokenBefore, payload, id)
			}
			if id != nil || !errors.Is(err, ErrInvalid) || errors.Is(err, ErrNoToken) {
				t.Fatalf("refusal returned identity %+v, error %v", id, err)
			}
			if strings.Contains(err.Error(), tok) {
				t.Fatalf("error text contains the token: %v", err)
			}
			if len(brokenBefore) == 1 && reflect.DeepEqual(brokenBefore, brokenAfter) && !strings.Contains(err.Error(), brokenBefore[0]) {
				t.Fatalf("token breaks only %q, but the error says %q: %s", brokenBefore[0], err, payload)
			}
			return
		}
		if err != nil {
			t.Fatalf("refused a valid token (%s, cfg aud %q iss %q): %v", payload, v.cfg.Audience, v.cfg.Issuer, err)
		}
		if id == nil {
			t.Fatal("nil identity and nil error")
		}

		// The identity is the claims, copied.
		if id.User != *said.Sub || id.Name != "" {
			t.Fatalf("identity %+v for %s", id, payload)
		}
		if said.Exp == nil && !id.Expires.IsZero() || said.Exp != nil && !id.Expires.Equal(time.Unix(*said.Exp, 0)) {
			t.Fatalf("Expires %v for %s", id.Expires, payload)
		}
		if said.Rooms == nil && id.Rooms != nil || said.Rooms != nil && (id.Rooms == nil || !reflect.DeepEqual(id.Rooms, *said.Rooms)) {
			t.Fatalf("Rooms %#v for %s", id.Rooms, payload)
		}

		// The rooms claim, on the fuzzer's room, the user's inbox and a
		// room each pattern should match.
		probes := []string{room, "@" + id.User}
		if said.Rooms != nil {
			for _, p := range (*said.Rooms)[:min(len(*said.Rooms), 8)] {
				probes = append(probes, globExample(p))
			}
		}
		for _, r := range probes {
			if !refUserID(strings.TrimPrefix(r, "@")) {
				continue // the gateway checks names before MayUse
			}
			want, decided := refMayUse(said.Rooms, r)
			if got := id.MayUse(r); decided && got != want {
				t.Fatalf("rooms %q: MayUse(%q) = %v, want %v", id.Rooms, r, got, want)
			}
		}
	})
}
