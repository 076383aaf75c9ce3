package codec

import (
	"strconv"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"", false},
		{"a", true},
		{"Z", true},
		{"0", true},
		{"alice", true},
		{"Alice_Bob-01.dev:eu", true},
		{"_", true},
		{".", true},
		{":", true},
		{"-", true},
		{"a_b", true},
		{"a.b", true},
		{"a:b", true},
		{"a-b", true},
		{"..", true},
		{"team-*", false},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{strings.Repeat("é", 32), false}, // 64 bytes, not allowed characters
		{"a b", false},
		{" a", false},
		{"a ", false},
		{"a\tb", false},
		{"a\nb", false},
		{"a\x00", false},
		{"é", false},
		{"ａ", false}, // fullwidth a
		{"😀", false},
		{"\xff", false},
		{"@", false},
		{"@bob", false},
		{"a@b", false},
		{"a/b", false},
		{"a\\b", false},
		{`a"b`, false},
		{"a+b", false},
		{"a,b", false},
		{"a;b", false},
		{"a#b", false},
		{"a?b", false},
		{"a*b", false},
		{"a~b", false},
		{"a%b", false},
		{"a<b>", false},
		{"a\x7fb", false},
	}
	// every ASCII byte: exactly the 66 documented characters pass
	allowed := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"
	for c := 0; c < 256; c++ {
		s := string([]byte{byte(c)})
		want := strings.Contains(allowed, s)
		if got := ValidName(s); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", s, got, want)
		}
		if got := ValidName("x" + s + "y"); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", "x"+s+"y", got, want)
		}
	}
	for _, tc := range tests {
		if got := ValidName(tc.s); got != tc.want {
			t.Errorf("ValidName(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func TestValidRoom(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"", false},
		{"general", true},
		{"team-a.b:c_d", true},
		{strings.Repeat("r", 64), true},
		{strings.Repeat("r", 65), false},
		{"@", false},
		{"@bob", true},
		{"@a", true},
		{"@@x", false},
		{"@@", false},
		{"@bob@", false},
		{"a@b", false},
		{"bob@", false},
		{"@ bob", false},
		{"@bob ", false},
		{"@é", false},
		{"@" + strings.Repeat("u", 64), true}, // inbox of a 64-char user: 65 bytes
		{"@" + strings.Repeat("u", 65), false},
		{"gen eral", false},
		{"général", false},
		{"@-", true},
		{"@_", true},
	}
	for _, tc := range tests {
		if got := ValidRoom(tc.s); got != tc.want {
			t.Errorf("ValidRoom(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
	// Every valid user's inbox is a valid room.
	for _, u := range []string{"a", "bob", strings.Repeat("x", 64), "A_b.c:d-e"} {
		if !ValidRoom(Inbox(u)) || !IsInbox(Inbox(u)) {
			t.Errorf("Inbox(%q) = %q: ValidRoom %v IsInbox %v", u, Inbox(u), ValidRoom(Inbox(u)), IsInbox(Inbox(u)))
		}
	}
}

func TestIsInbox(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"", false},
		{"@", true},
		{"@bob", true},
		{"@@x", true},
		{"bob", false},
		{"bob@x", false},
		{" @bob", false},
		{"general", false},
	}
	for _, tc := range tests {
		if got := IsInbox(tc.s); got != tc.want {
			t.Errorf("IsInbox(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func TestInbox(t *testing.T) {
	if got := Inbox("bob"); got != "@bob" {
		t.Fatalf("Inbox(bob) = %q", got)
	}
	if got := Inbox(""); got != "@" || ValidRoom(got) {
		t.Fatalf("Inbox(\"\") = %q, ValidRoom %v", got, ValidRoom(got))
	}
}

// The messages are compared byte for byte by clients and tests: pin them.
func TestNameRuleMessages(t *testing.T) {
	tests := []struct{ got, want string }{
		{NameRule, "1-64 characters of A-Z a-z 0-9 _ . : -"},
		{RoomRule, "1-64 characters of A-Z a-z 0-9 _ . : - (or @user)"},
		{InvalidRoomMessage, "invalid room name: 1-64 characters of A-Z a-z 0-9 _ . : - (or @user)"},
		{InvalidUserMessage, "invalid user id: 1-64 characters of A-Z a-z 0-9 _ . : -"},
		{UserFieldMessage("to"), `"to" must be a user id: 1-64 characters of A-Z a-z 0-9 _ . : -`},
		{UserFieldMessage("user"), `"user" must be a user id: 1-64 characters of A-Z a-z 0-9 _ . : -`},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// NameRule must say what ValidName does: the length bound and, byte for
// byte, the characters it accepts.
func TestNameRuleMatchesValidName(t *testing.T) {
	lengths, chars, ok := strings.Cut(NameRule, " characters of ")
	if !ok || lengths != "1-"+strconv.Itoa(MaxNameLen) {
		t.Fatalf("NameRule %q: want the lengths 1-%d", NameRule, MaxNameLen)
	}
	var listed [256]bool
	for _, tok := range strings.Fields(chars) {
		switch {
		case len(tok) == 3 && tok[1] == '-':
			for c := int(tok[0]); c <= int(tok[2]); c++ {
				listed[c] = true
			}
		case len(tok) == 1:
			listed[tok[0]] = true
		default:
			t.Fatalf("NameRule %q: cannot read %q", NameRule, tok)
		}
	}
	for c := 0; c < 256; c++ {
		if got := ValidName(string([]byte{byte(c)})); got != listed[c] {
			t.Errorf("byte %#x: ValidName %v, listed in NameRule %v", c, got, listed[c])
		}
	}
	if !ValidName(strings.Repeat("a", MaxNameLen)) || ValidName(strings.Repeat("a", MaxNameLen+1)) || ValidName("") {
		t.Errorf("ValidName does not take 1-%d characters", MaxNameLen)
	}
}
