package auth

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// The rooms claim: which rooms a token allows.

func TestMayUse(t *testing.T) {
	type check struct {
		room string
		want bool
	}
	cases := []struct {
		name   string
		rooms  []string
		checks []check
	}{
		{"nil rooms: any room", nil, []check{
			{"general", true}, {"team-a", true}, {"x", true}, {"@alice", true},
		}},
		{"empty rooms: only inboxes", []string{}, []check{
			{"general", false}, {"team-a", false}, {"@alice", true}, {"@x", true},
		}},
		{"prefix glob", []string{"team-*"}, []check{
			{"team-a", true}, {"team-", true}, {"team-core.dev", true},
			{"team", false}, {"teams-a", false}, {"xteam-a", false}, {"general", false},
			{"@x", true},
		}},
		{"exact name", []string{"general"}, []check{
			{"general", true}, {"General", false}, {"general2", false}, {"genera", false}, {"@x", true},
		}},
		{"single-char wildcard", []string{"a?c"}, []check{
			{"abc", true}, {"a-c", true}, {"ac", false}, {"abbc", false}, {"abd", false},
		}},
		{"character class", []string{"room-[0-9]"}, []check{
			{"room-0", true}, {"room-7", true}, {"room-a", false}, {"room-10", false},
		}},
		{"negated class", []string{"[^x]yz"}, []check{
			{"ayz", true}, {"xyz", false}, {"yz", false},
		}},
		{"set class", []string{"[abc]-*"}, []check{
			{"a-1", true}, {"c-", true}, {"d-1", false},
		}},
		{"several patterns", []string{"general", "team-*", "ops"}, []check{
			{"general", true}, {"team-x", true}, {"ops", true}, {"random", false},
		}},
		{"match everything", []string{"*"}, []check{
			{"general", true}, {"team-a", true},
		}},
		{"malformed pattern matches nothing", []string{"["}, []check{
			{"[", false}, {"general", false}, {"a", false}, {"@x", true},
		}},
		{"malformed pattern does not hide good ones", []string{"[", "team-[", "general", "x\\"}, []check{
			{"general", true}, {"team-a", false}, {"team-[", false}, {"x", false}, {"x\\", false},
		}},
		{"escaped metachar", []string{`a\*`}, []check{
			{"a*", true}, {"ab", false},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := &Identity{User: "x", Rooms: tc.rooms}
			for _, c := range tc.checks {
				var got bool
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Errorf("MayUse(%q) with rooms %q panicked: %v", c.room, tc.rooms, r)
						}
					}()
					got = id.MayUse(c.room)
				}()
				if got != c.want {
					t.Errorf("rooms %q: MayUse(%q) = %v, want %v", tc.rooms, c.room, got, c.want)
				}
			}
		})
	}

	t.Run("nil identity (anonymous mode): any room", func(t *testing.T) {
		var id *Identity
		if !id.MayUse("general") || !id.MayUse("@x") {
			t.Error("nil identity should allow any room")
		}
	})
}

// MayUse on an identity that came out of Verify, so the claim really
// reaches it.
func TestMayUseFromToken(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret})
	id := accepted(t, v, sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "x", "rooms": []string{"team-*", "["}}, testSecret))
	for room, want := range map[string]bool{"team-a": true, "general": false, "@x": true, "[": false} {
		if got := id.MayUse(room); got != want {
			t.Errorf("MayUse(%q) = %v, want %v", room, got, want)
		}
	}
}

// ---- fuzzing -----------------------------------------------------------------

// hostileTokens are inputs that must be refused without panicking; huge is
// the length of the oversized segments.
func hostileTokens(t testing.TB, huge int) []string {
	big := strings.Repeat("A", huge)
	bigJSON := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"` + strings.Repeat("a", huge) + `"}`))
	toks := []string{
		"",
		".",
		"..",
		"...",
		strings.Repeat(".", huge),
		strings.Repeat("e30.", huge/4),
		"eyJhbGciOiJub25lIn0.e30.",
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.",
		"eyJhbGciOiJIUzI1NiJ9.e30.",
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.AAAA",
		big + "." + big + "." + big,
		"eyJhbGciOiJIUzI1NiJ9." + big + ".x",
		"eyJhbGciOiJIUzI1NiJ9." + bigJSON + "." + big,
		"\x00",
		"\x00.\x00.\x00",
		"eyJhbGciOiJIUzI1NiJ9\x00.e30.\x00",
		"eyJhbGciOiJub25lIn0\x00.e30.",
		"e30.e30.e30",
		"bnVsbA.bnVsbA.bnVsbA", // null.null.null
		"W10.W10.",             // [].[].
		"IiI.IiI.",             // "".""."
		"eyJhbGciOjF9.e30.",    // {"alg":1}
		"eyJhbGciOiJSUzI1NiJ9.e30.AAAA",
		"\xff\xfe.\xff.\xff",
	}
	// Correctly signed tokens with an algorithm that is not configured, and
	// one signed with another secret, are hostile too.
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS384, jwt.SigningMethodHS512} {
		toks = append(toks, sign(t, m, jwt.MapClaims{"sub": "alice"}, testSecret))
	}
	toks = append(toks, sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice"}, otherSecret))
	toks = append(toks, sign(t, jwt.SigningMethodNone, jwt.MapClaims{"sub": "alice"}, jwt.UnsafeAllowNoneSignatureType))
	return toks
}
