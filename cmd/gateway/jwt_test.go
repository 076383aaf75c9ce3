package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/internal/wstest"
)

// The JWT promises of the README's "Flags" and "Security" sections, through
// the real binary: a key switches anonymous mode off wherever it comes from,
// and an unrefreshed token closes its connection within 1 s of exp.

const testSecret = "cmd-gateway-test-secret-0123456789"

func mintToken(t *testing.T, sub string, exp time.Time) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "exp": exp.Unix()}).
		SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestJWTKeyTurnsAnonymousOff: "--anonymous: on only without a JWT key;
// with a key it must be given explicitly". The library's default is on;
// only the command's parse turns it off, so each way of giving the key
// (flag, GATEWAY_JWT_SECRET, --config file) is run: with the key and no
// --anonymous, ?user= without a token gets 401; with --anonymous (in the
// same three ways) it is let in. A valid token is let in either way (the
// key is the one given), and --print-config shows the effective value.
func TestJWTKeyTurnsAnonymousOff(t *testing.T) {
	keyFile := writeFile(t, "key.toml", fmt.Sprintf("jwt-secret = %q\n", testSecret))
	keyAnonFile := writeFile(t, "key-anon.toml", fmt.Sprintf("jwt-secret = %q\nanonymous = true\n", testSecret))
	envKey := "GATEWAY_JWT_SECRET=" + testSecret
	for _, c := range []struct {
		name      string
		env       []string
		args      []string
		anonymous bool // the effective setting wanted
		key       bool
	}{
		{"no key", nil, nil, true, false},
		{"flag key", nil, []string{"--jwt-secret", testSecret}, false, true},
		{"flag key and --anonymous", nil, []string{"--jwt-secret", testSecret, "--anonymous"}, true, true},
		{"env key", []string{envKey}, nil, false, true},
		{"env key and GATEWAY_ANONYMOUS", []string{envKey, "GATEWAY_ANONYMOUS=true"}, nil, true, true},
		{"env key and --anonymous", []string{envKey}, []string{"--anonymous"}, true, true},
		{"file key", nil, []string{"--config", keyFile}, false, true},
		{"file key and anonymous in the file", nil, []string{"--config", keyAnonFile}, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			out, err := gatewayCmd(t, c.env, append(c.args, "--print-config")...).Output()
			if err != nil {
				t.Fatalf("--print-config: %v", err)
			}
			if want := fmt.Sprintf("\nanonymous = %v\n", c.anonymous); !strings.Contains(string(out), want) {
				t.Errorf("--print-config does not show %q:\n%s", strings.TrimSpace(want), out)
			}

			p := startGateway(t, c.env, c.args...)
			want := 401
			if c.anonymous {
				want = 101
			}
			if got, _ := upgrade(t, p.wsURL("user=alice"), nil); got != want {
				t.Errorf("?user=alice without a token: HTTP %d, want %d", got, want)
			}
			if !c.key {
				return
			}
			code, ws := upgrade(t, p.wsURL("token="+mintToken(t, "bob", time.Now().Add(time.Hour))), nil)
			if code != 101 {
				t.Fatalf("valid token: HTTP %d, want 101", code)
			}
			if w := wstest.New(t, ws, "bob").WaitFor("welcome", nil); w["user"] != "bob" {
				t.Errorf("welcome for a token of bob: %v", w)
			}
		})
	}
}

// TestTokenExpiryClosesWithinASecond: "otherwise the connection is closed
// with 4000 within 1 s of exp". exp has whole seconds, so the token expires
// 2 to 3 s ahead; the close must arrive at or after exp (no leeway) and
// less than 1 s after it, plus 250 ms for scheduling on a loaded machine.
func TestTokenExpiryClosesWithinASecond(t *testing.T) {
	const slack = 250 * time.Millisecond
	p := startGateway(t, []string{"GATEWAY_JWT_SECRET=" + testSecret})
	exp := time.Unix(time.Now().Add(2*time.Second).Unix()+1, 0)
	code, ws := upgrade(t, p.wsURL("token="+mintToken(t, "carol", exp)), nil)
	if code != 101 {
		t.Fatalf("token expiring at %v: HTTP %d", exp, code)
	}
	_ = ws.SetReadDeadline(exp.Add(5 * time.Second))
	var err error
	for err == nil {
		_, _, err = ws.ReadMessage()
	}
	at := time.Now()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4000 {
		t.Fatalf("connection ended with %v, want close 4000", err)
	}
	late := at.Sub(exp)
	t.Logf("closed with 4000 %v after exp", late.Round(time.Millisecond))
	if late < 0 {
		t.Fatalf("closed %v before exp", -late)
	}
	if late >= time.Second+slack {
		t.Fatalf("closed %v after exp, want within 1 s (+%v slack)", late, slack)
	}
}
