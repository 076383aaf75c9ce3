package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// parseObject checks that b is exactly one valid JSON object in valid UTF-8
// and returns it decoded with numbers kept exact, and its keys in order.
func parseObject(t *testing.T, b []byte) (map[string]any, []string) {
	t.Helper()
	if !utf8.Valid(b) {
		t.Fatalf("output is not valid UTF-8: %q", b)
	}
	if !json.Valid(b) {
		t.Fatalf("output is not valid JSON: %s", b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("more than one value in %s", b)
	}
	if m == nil {
		t.Fatalf("not an object: %s", b)
	}
	return m, topKeys(t, b)
}

// topKeys lists the keys of the object b in the order they appear, once
// each (a duplicate key fails the test).
func topKeys(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", b)
	}
	var keys []string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("keys of %s: %v", b, err)
		}
		k := tok.(string)
		if seen[k] {
			t.Fatalf("duplicate key %q in %s", k, b)
		}
		seen[k] = true
		keys = append(keys, k)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("value of %q in %s: %v", k, b, err)
		}
	}
	return keys
}

// checkAppend runs an Append* function behind a prefix, checks the prefix is
// kept, and returns what was appended.
func checkAppend(t *testing.T, f func([]byte) []byte) []byte {
	t.Helper()
	prefix := []byte("PREFIX")
	out := f(append([]byte(nil), prefix...))
	if !bytes.HasPrefix(out, prefix) {
		t.Fatalf("prefix lost: %q", out)
	}
	appended := out[len(prefix):]
	// appending to nil gives the same bytes
	if again := f(nil); !bytes.Equal(again, appended) {
		t.Fatalf("output depends on b:\n%s\n%s", again, appended)
	}
	return appended
}

func num(n any) json.Number { return json.Number(fmt.Sprint(n)) }

func wantFields(t *testing.T, b []byte, want map[string]any, order []string) {
	t.Helper()
	got, keys := parseObject(t, b)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s\n got  %#v\n want %#v", b, got, want)
	}
	if order != nil && !reflect.DeepEqual(keys, order) {
		t.Errorf("%s: key order %q, want %q", b, keys, order)
	}
}

func TestAppendMessage(t *testing.T) {
	tricky := "a\"b\\c\n\x00\u2028😀<img src=x onerror=alert(1)>"
	tests := []struct {
		name  string
		m     Message
		want  map[string]any
		order []string
	}{
		{"text", Message{Room: "general", Seq: 58, TS: 1763779200123, From: "alice", Text: strp("hi")},
			map[string]any{"type": "message", "room": "general", "seq": num(58), "ts": num(1763779200123), "from": "alice", "text": "hi"},
			[]string{"type", "room", "seq", "ts", "from", "text"}},
		{"dm", Message{Room: "@bob", Seq: 7, TS: 1763779200200, From: "alice", To: "bob", Text: strp("hi")},
			map[string]any{"type": "message", "room": "@bob", "seq": num(7), "ts": num(1763779200200), "from": "alice", "to": "bob", "text": "hi"},
			[]string{"type", "room", "seq", "ts", "from", "to", "text"}},
		{"empty text is present", Message{Room: "r", Seq: 1, TS: 0, From: "u", Text: strp("")},
			map[string]any{"type": "message", "room": "r", "seq": num(1), "ts": num(0), "from": "u", "text": ""}, nil},
		{"no text no data", Message{Room: "r", Seq: 0, TS: -1, From: "u"},
			map[string]any{"type": "message", "room": "r", "seq": num(0), "ts": num(-1), "from": "u"}, nil},
		{"tricky text", Message{Room: "r", Seq: 1<<64 - 1, TS: math.MaxInt64, From: "u", Text: &tricky},
			map[string]any{"type": "message", "room": "r", "seq": num(uint64(1<<64 - 1)), "ts": num(int64(math.MaxInt64)), "from": "u", "text": tricky}, nil},
		{"min ts", Message{Room: "r", TS: math.MinInt64, From: "u"},
			map[string]any{"type": "message", "room": "r", "seq": num(0), "ts": num(int64(math.MinInt64)), "from": "u"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := checkAppend(t, func(b []byte) []byte { return AppendMessage(b, &tc.m) })
			wantFields(t, out, tc.want, tc.order)
		})
	}

	t.Run("data verbatim", func(t *testing.T) {
		for _, data := range []string{`{"kind":"img","w":640,"tags":["a","b"],"n":null}`, `[1, 2 ,{"x" : 1.50e3}]`, `"s"`, `12345678901234567890123`, `true`} {
			m := Message{Room: "r", Seq: 3, TS: 4, From: "u", Text: strp("t"), Data: []byte(data)}
			out := checkAppend(t, func(b []byte) []byte { return AppendMessage(b, &m) })
			_, keys := parseObject(t, out)
			if want := []string{"type", "room", "seq", "ts", "from", "text", "data"}; !reflect.DeepEqual(keys, want) {
				t.Errorf("keys %q, want %q", keys, want)
			}
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(out, &raw); err != nil {
				t.Fatal(err)
			}
			if string(raw["data"]) != data {
				t.Errorf("data = %s, want verbatim %s", raw["data"], data)
			}
		}
	})

	t.Run("from a decoded request", func(t *testing.T) {
		var r Request
		in := `{"type":"send","id":"3","room":"general","text":"hi \"you\"","data":{"a" : [1,2]}}`
		if err := DecodeRequest([]byte(in), &r); err != nil {
			t.Fatal(err)
		}
		m := Message{Room: r.Room, Seq: 9, TS: 10, From: "alice", Text: r.Text, Data: r.Data}
		out := AppendMessage(nil, &m)
		want := `{"type":"message","room":"general","seq":9,"ts":10,"from":"alice","text":"hi \"you\"","data":{"a" : [1,2]}}`
		if string(out) != want {
			t.Errorf("got  %s\nwant %s", out, want)
		}
	})
}

func TestAppendAck(t *testing.T) {
	wantFields(t, checkAppend(t, func(b []byte) []byte { return AppendAck(b, "3", "general", 58, 1763779200123) }),
		map[string]any{"type": "ack", "id": "3", "room": "general", "seq": num(58), "ts": num(1763779200123)},
		[]string{"type", "id", "room", "seq", "ts"})
	wantFields(t, checkAppend(t, func(b []byte) []byte { return AppendAck(b, "", "general", 1, 2) }),
		map[string]any{"type": "ack", "room": "general", "seq": num(1), "ts": num(2)},
		[]string{"type", "room", "seq", "ts"})
	// refresh: no room, seq or ts
	wantFields(t, checkAppend(t, func(b []byte) []byte { return AppendAck(b, "7", "", 0, 0) }),
		map[string]any{"type": "ack", "id": "7"}, []string{"type", "id"})
	wantFields(t, checkAppend(t, func(b []byte) []byte { return AppendAck(b, "", "", 0, 0) }),
		map[string]any{"type": "ack"}, []string{"type"})
	// ids are the client's: anything goes through escaping
	id := "\"}],\"x\":1,\n\x01\xff"
	wantFields(t, checkAppend(t, func(b []byte) []byte { return AppendAck(b, id, "r", 1, 2) }),
		map[string]any{"type": "ack", "id": "\"}],\"x\":1,\n\x01\uFFFD", "room": "r", "seq": num(1), "ts": num(2)}, nil)
}

func TestAppendJoined(t *testing.T) {
	m1 := AppendMessage(nil, &Message{Room: "general", Seq: 41, TS: 100, From: "bob", Text: strp("one")})
	m2 := AppendMessage(nil, &Message{Room: "general", Seq: 42, TS: 101, From: "alice", Data: []byte(`{"x":[1]}`)})
	tests := []struct {
		name  string
		j     Joined
		want  map[string]any
		order []string
	}{
		{"resumed", Joined{ID: "1", Room: "general", Seq: 57, Epoch: "e9", Recovered: true, Messages: [][]byte{m1, m2}},
			map[string]any{"type": "joined", "id": "1", "room": "general", "seq": num(57), "epoch": "e9", "recovered": true,
				"messages": []any{
					map[string]any{"type": "message", "room": "general", "seq": num(41), "ts": num(100), "from": "bob", "text": "one"},
					map[string]any{"type": "message", "room": "general", "seq": num(42), "ts": num(101), "from": "alice", "data": map[string]any{"x": []any{num(1)}}},
				}},
			[]string{"type", "id", "room", "seq", "epoch", "recovered", "messages"}},
		{"one message", Joined{ID: "1", Room: "general", Seq: 41, Epoch: "e9", Messages: [][]byte{m1}},
			map[string]any{"type": "joined", "id": "1", "room": "general", "seq": num(41), "epoch": "e9", "recovered": false,
				"messages": []any{
					map[string]any{"type": "message", "room": "general", "seq": num(41), "ts": num(100), "from": "bob", "text": "one"},
				}}, nil},
		{"no id, nil messages is []", Joined{Room: "@alice", Seq: 0, Epoch: "e1"},
			map[string]any{"type": "joined", "room": "@alice", "seq": num(0), "epoch": "e1", "recovered": false, "messages": []any{}},
			[]string{"type", "room", "seq", "epoch", "recovered", "messages"}},
		{"empty messages", Joined{ID: "2", Room: "r", Seq: 3, Epoch: "", Messages: [][]byte{}},
			map[string]any{"type": "joined", "id": "2", "room": "r", "seq": num(3), "epoch": "", "recovered": false, "messages": []any{}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := checkAppend(t, func(b []byte) []byte { return AppendJoined(b, &tc.j) })
			wantFields(t, out, tc.want, tc.order)
			// the stored payloads are embedded byte for byte
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(out, &raw); err != nil {
				t.Fatal(err)
			}
			if want := "[" + string(bytes.Join(tc.j.Messages, []byte(","))) + "]"; string(raw["messages"]) != want {
				t.Errorf("messages = %s, want %s", raw["messages"], want)
			}
		})
	}
}

func TestAppendHistory(t *testing.T) {
	m1 := AppendMessage(nil, &Message{Room: "general", Seq: 55, TS: 1, From: "a", Text: strp("x")})
	m2 := AppendMessage(nil, &Message{Room: "general", Seq: 56, TS: 2, From: "b", To: "c", Text: strp("y")})
	out := checkAppend(t, func(b []byte) []byte { return AppendHistory(b, "5", "general", [][]byte{m1, m2}) })
	wantFields(t, out, map[string]any{"type": "history", "id": "5", "room": "general", "messages": []any{
		map[string]any{"type": "message", "room": "general", "seq": num(55), "ts": num(1), "from": "a", "text": "x"},
		map[string]any{"type": "message", "room": "general", "seq": num(56), "ts": num(2), "from": "b", "to": "c", "text": "y"},
	}}, []string{"type", "id", "room", "messages"})
	if !bytes.Contains(out, []byte(`"messages":[`+string(m1)+","+string(m2)+"]")) {
		t.Errorf("messages not embedded verbatim: %s", out)
	}
	wantFields(t, checkAppend(t, func(b []byte) []byte { return AppendHistory(b, "", "r", nil) }),
		map[string]any{"type": "history", "room": "r", "messages": []any{}}, []string{"type", "room", "messages"})
}

func TestAppendSmallFrames(t *testing.T) {
	tests := []struct {
		name  string
		f     func([]byte) []byte
		want  map[string]any
		order []string
	}{
		{"left", func(b []byte) []byte { return AppendLeft(b, "2", "general") },
			map[string]any{"type": "left", "id": "2", "room": "general"}, []string{"type", "id", "room"}},
		{"left no id", func(b []byte) []byte { return AppendLeft(b, "", "general") },
			map[string]any{"type": "left", "room": "general"}, []string{"type", "room"}},
		{"pong", func(b []byte) []byte { return AppendPong(b, "8") },
			map[string]any{"type": "pong", "id": "8"}, []string{"type", "id"}},
		{"pong no id", func(b []byte) []byte { return AppendPong(b, "") },
			map[string]any{"type": "pong"}, []string{"type"}},
		{"typing", func(b []byte) []byte { return AppendTyping(b, "general", "alice") },
			map[string]any{"type": "typing", "room": "general", "user": "alice"}, []string{"type", "room", "user"}},
		{"read", func(b []byte) []byte { return AppendRead(b, "general", "alice", 57) },
			map[string]any{"type": "read", "room": "general", "user": "alice", "seq": num(57)}, []string{"type", "room", "user", "seq"}},
		{"presence online", func(b []byte) []byte { return AppendPresenceEvent(b, "general", "alice", true) },
			map[string]any{"type": "presence", "room": "general", "user": "alice", "online": true}, []string{"type", "room", "user", "online"}},
		{"presence offline", func(b []byte) []byte { return AppendPresenceEvent(b, "general", "alice", false) },
			map[string]any{"type": "presence", "room": "general", "user": "alice", "online": false}, nil},
		{"presence list", func(b []byte) []byte { return AppendPresenceList(b, "6", "general", []string{"alice", "bob"}, 2) },
			map[string]any{"type": "presence", "id": "6", "room": "general", "users": []any{"alice", "bob"}, "total": num(2)},
			[]string{"type", "id", "room", "users", "total"}},
		{"presence list truncated", func(b []byte) []byte { return AppendPresenceList(b, "", "general", []string{"a"}, 5000) },
			map[string]any{"type": "presence", "room": "general", "users": []any{"a"}, "total": num(5000)}, nil},
		{"presence list empty", func(b []byte) []byte { return AppendPresenceList(b, "6", "r", nil, 0) },
			map[string]any{"type": "presence", "id": "6", "room": "r", "users": []any{}, "total": num(0)}, nil},
		{"error", func(b []byte) []byte { return AppendError(b, "3", "not_joined", "join the room first") },
			map[string]any{"type": "error", "id": "3", "code": "not_joined", "message": "join the room first"},
			[]string{"type", "id", "code", "message"}},
		{"error no id", func(b []byte) []byte { return AppendError(b, "", "bad_request", "bad request: malformed frame") },
			map[string]any{"type": "error", "code": "bad_request", "message": "bad request: malformed frame"},
			[]string{"type", "code", "message"}},
		{"error tricky message", func(b []byte) []byte {
			return AppendError(b, "x\"y", "bad_request", "invalid character '\\x00' \"\n\t\xc3(")
		},
			map[string]any{"type": "error", "id": "x\"y", "code": "bad_request", "message": "invalid character '\\x00' \"\n\t\uFFFD("}, nil},
		{"welcome", func(b []byte) []byte {
			return AppendWelcome(b, "alice", "c1f0e7a2", "gw-1", 25, Limits{MaxMessageBytes: 16384, Rate: 20, Burst: 40, MaxRooms: 100})
		},
			map[string]any{"type": "welcome", "user": "alice", "session": "c1f0e7a2", "node": "gw-1", "heartbeat": num(25),
				"limits": map[string]any{"max_message_bytes": num(16384), "rate": num(20), "burst": num(40), "max_rooms": num(100)}},
			[]string{"type", "user", "session", "node", "heartbeat", "limits"}},
		{"welcome fractional rate", func(b []byte) []byte {
			return AppendWelcome(b, "u", "s", "n", 1, Limits{MaxMessageBytes: 1, Rate: 0.5, Burst: 1, MaxRooms: 0})
		},
			map[string]any{"type": "welcome", "user": "u", "session": "s", "node": "n", "heartbeat": num(1),
				"limits": map[string]any{"max_message_bytes": num(1), "rate": num(0.5), "burst": num(1), "max_rooms": num(0)}}, nil},
		{"welcome huge rate", func(b []byte) []byte {
			return AppendWelcome(b, "u", "s", "n", 1, Limits{Rate: 1e21})
		},
			map[string]any{"type": "welcome", "user": "u", "session": "s", "node": "n", "heartbeat": num(1),
				"limits": map[string]any{"max_message_bytes": num(0), "rate": num("1000000000000000000000"), "burst": num(0), "max_rooms": num(0)}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantFields(t, checkAppend(t, tc.f), tc.want, tc.order)
		})
	}
}

// The exact bytes for the frames of docs/protocol.md's examples.
func TestAppendExactBytes(t *testing.T) {
	tests := []struct{ got, want string }{
		{string(AppendAck(nil, "3", "general", 58, 1763779200123)), `{"type":"ack","id":"3","room":"general","seq":58,"ts":1763779200123}`},
		{string(AppendMessage(nil, &Message{Room: "general", Seq: 58, TS: 1763779200123, From: "alice", Text: strp("hi")})),
			`{"type":"message","room":"general","seq":58,"ts":1763779200123,"from":"alice","text":"hi"}`},
		{string(AppendMessage(nil, &Message{Room: "@bob", Seq: 7, TS: 1763779200200, From: "alice", To: "bob", Text: strp("hi")})),
			`{"type":"message","room":"@bob","seq":7,"ts":1763779200200,"from":"alice","to":"bob","text":"hi"}`},
		{string(AppendTyping(nil, "general", "alice")), `{"type":"typing","room":"general","user":"alice"}`},
		{string(AppendRead(nil, "general", "alice", 57)), `{"type":"read","room":"general","user":"alice","seq":57}`},
		{string(AppendPresenceEvent(nil, "general", "alice", true)), `{"type":"presence","room":"general","user":"alice","online":true}`},
		{string(AppendPresenceList(nil, "6", "general", []string{"alice", "bob"}, 2)), `{"type":"presence","id":"6","room":"general","users":["alice","bob"],"total":2}`},
		{string(AppendLeft(nil, "2", "general")), `{"type":"left","id":"2","room":"general"}`},
		{string(AppendPong(nil, "8")), `{"type":"pong","id":"8"}`},
		{string(AppendJoined(nil, &Joined{ID: "1", Room: "general", Seq: 57, Epoch: "e9", Recovered: true})),
			`{"type":"joined","id":"1","room":"general","seq":57,"epoch":"e9","recovered":true,"messages":[]}`},
		{string(AppendHistory(nil, "5", "general", nil)), `{"type":"history","id":"5","room":"general","messages":[]}`},
		{string(AppendWelcome(nil, "alice", "c1f0e7a2", "gw-1", 25, Limits{MaxMessageBytes: 16384, Rate: 20, Burst: 40, MaxRooms: 100})),
			`{"type":"welcome","user":"alice","session":"c1f0e7a2","node":"gw-1","heartbeat":25,"limits":{"max_message_bytes":16384,"rate":20,"burst":40,"max_rooms":100}}`},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got  %s\nwant %s", tc.got, tc.want)
		}
	}
}

// expectedDecoded is what a JSON decoder must read back from AppendString(s):
// s itself when it is valid UTF-8; otherwise every byte that does not start
// a valid UTF-8 sequence becomes one U+FFFD (as utf8.DecodeRuneInString,
// []rune(s) and encoding/json.Marshal do). That is NOT
// strings.ToValidUTF8(s, "\uFFFD"), which collapses a run of bad bytes into
// a single U+FFFD.
func expectedDecoded(s string) string {
	return string([]rune(s))
}

func checkAppendString(t testing.TB, s string) []byte {
	t.Helper()
	out := AppendString(nil, s)
	if !utf8.Valid(out) {
		t.Fatalf("AppendString(%q) = %q: not valid UTF-8", s, out)
	}
	if !json.Valid(out) {
		t.Fatalf("AppendString(%q) = %q: not valid JSON", s, out)
	}
	var got string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("AppendString(%q) = %q: %v", s, out, err)
	}
	if want := expectedDecoded(s); got != want {
		t.Fatalf("AppendString(%q) = %q decodes to %q, want %q", s, out, got, want)
	}
	if utf8.ValidString(s) && got != s {
		t.Fatalf("valid input %q did not round-trip: %q", s, got)
	}
	// encoding/json's own encoding of s reads back the same.
	std, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var stdGot string
	if err := json.Unmarshal(std, &stdGot); err != nil {
		t.Fatal(err)
	}
	if stdGot != got {
		t.Fatalf("AppendString(%q) reads back %q, encoding/json's encoding reads back %q", s, got, stdGot)
	}
	// Nothing that breaks a JavaScript string literal or a frame is left raw.
	for i := 1; i < len(out)-1; i++ {
		if out[i] < 0x20 {
			t.Fatalf("AppendString(%q) = %q: raw control byte 0x%02x", s, out, out[i])
		}
	}
	if bytes.Contains(out, []byte("\u2028")) || bytes.Contains(out, []byte("\u2029")) {
		t.Fatalf("AppendString(%q) = %q: raw U+2028/U+2029", s, out)
	}
	return out
}

func TestAppendStringTricky(t *testing.T) {
	var ctl strings.Builder
	for c := 0; c < 0x20; c++ {
		ctl.WriteByte(byte(c))
	}
	ctl.WriteByte(0x7f)
	inputs := []string{
		"", "plain", " ", `"`, `\`, `\"`, `"\"`, `\\\\`, "'", "/", "</script>",
		"\x00", "\x1f", "\x7f", ctl.String(), "a\x00b\nc\rd\te\bf\fg",
		"<img src=x onerror=alert(1)>", "&amp;<>",
		"\u2028", "\u2029", "a\u2028b\u2029c", "\u2027\u202a",
		"é", "日本語", "😀", "👩‍👩‍👧‍👦", "\U0010FFFF", "\uFFFD", "\uFEFF",
		// invalid UTF-8
		"\xff", "\xfe\xff", "a\xffb", "\xc3", "\xc3(", "\xe2\x82", "\xe2\x82(", "\xf0\x9f\x98", "\xf0\x9f\x98!",
		"\x80", "\xbf", "\xc0\xaf", "\xc1\xbf", "\xf5\x80\x80\x80", "\xf8\x88\x80\x80\x80",
		// lone surrogates encoded as (invalid) UTF-8, and a CESU-8 pair
		"\xed\xa0\x80", "\xed\xbf\xbf", "x\xed\xa0\x80y", "\xed\xa0\xbd\xed\xb8\x80",
		// mixed
		"é\xff😀\"\\\x01\u2028" + strings.Repeat("x", 100) + "\xe2\x80",
		strings.Repeat("\xff", 1000), strings.Repeat("a\"", 1000),
	}
	for _, s := range inputs {
		checkAppendString(t, s)
	}
}

func TestAppendStringExact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"abc", `"abc"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{"\n\r\t", `"\n\r\t"`},
		{"\x00", `"\u0000"`},
		{"\x08\x0c", `"\u0008\u000c"`},
		{"\x1f", `"\u001f"`},
		{"\x7f", "\"\x7f\""},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"é😀", `"é😀"`},
		{"<>&", `"<>&"`},
		{"\xff", `"\ufffd"`},
		{"\xfe\xff", `"\ufffd\ufffd"`},
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`},
		{"a\xc3(", `"a\ufffd("`},
		{"\uFFFD", "\"\uFFFD\""}, // a real U+FFFD is kept as is
	}
	for _, tc := range tests {
		if got := string(AppendString([]byte("P"), tc.in)); got != "P"+tc.want {
			t.Errorf("AppendString(%q) = %s, want P%s", tc.in, got, tc.want)
		}
	}
}

// Documents the precise invalid-UTF-8 rule: one U+FFFD per bad byte, like
// encoding/json, not one per run like strings.ToValidUTF8.
func TestAppendStringInvalidUTF8IsPerByte(t *testing.T) {
	s := "a\xfe\xffb"
	var got string
	if err := json.Unmarshal(AppendString(nil, s), &got); err != nil {
		t.Fatal(err)
	}
	if got != "a\uFFFD\uFFFDb" {
		t.Fatalf("got %q", got)
	}
	std, _ := json.Marshal(s)
	var stdGot string
	_ = json.Unmarshal(std, &stdGot)
	if stdGot != got {
		t.Fatalf("encoding/json gives %q, AppendString %q", stdGot, got)
	}
	if strings.ToValidUTF8(s, "\uFFFD") == got {
		t.Fatal("expected strings.ToValidUTF8 to differ (it collapses runs)")
	}
}

// The hot path must not allocate when the buffer has room.
func TestAppendAllocs(t *testing.T) {
	text := "hello \"world\" \u2028 \xff 😀"
	m := Message{Room: "general", Seq: 12345, TS: 1763779200123, From: "alice", To: "bob", Text: &text, Data: []byte(`{"a":1}`)}
	j := Joined{ID: "1", Room: "general", Seq: 9, Epoch: "e", Recovered: true, Messages: [][]byte{[]byte(`{}`), []byte(`{}`)}}
	users := []string{"alice", "bob"}
	buf := make([]byte, 0, 4096)
	for name, f := range map[string]func(){
		"message":  func() { buf = AppendMessage(buf[:0], &m) },
		"ack":      func() { buf = AppendAck(buf[:0], "3", "general", 58, 1763779200123) },
		"joined":   func() { buf = AppendJoined(buf[:0], &j) },
		"history":  func() { buf = AppendHistory(buf[:0], "5", "general", j.Messages) },
		"presence": func() { buf = AppendPresenceList(buf[:0], "6", "general", users, 2) },
		"error":    func() { buf = AppendError(buf[:0], "3", "bad_request", "bad \"request\"") },
		"welcome":  func() { buf = AppendWelcome(buf[:0], "alice", "s", "n", 25, Limits{16384, 20.5, 40, 100}) },
		"string":   func() { buf = AppendString(buf[:0], text) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", name, n)
		}
	}
}
