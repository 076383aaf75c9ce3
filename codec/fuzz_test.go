package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// decodeSeeds is a hostile corpus for FuzzDecodeRequest, also run as a plain
// test so that `go test` exercises it without -fuzz.
func decodeSeeds() [][]byte {
	long := strings.Repeat("x", 3000)
	s := []string{
		// valid frames of every type
		`{"type":"join","id":"1","room":"general"}`,
		`{"type":"join","id":"1","room":"general","since":{"seq":41,"epoch":"e9"}}`,
		`{"type":"join","id":"1","room":"general","limit":50}`,
		`{"type":"leave","id":"2","room":"general"}`,
		`{"type":"send","id":"3","room":"general","text":"hi","key":"6f1c"}`,
		`{"type":"send","id":"3","room":"general","data":{"a":[1,{"b":null}]}}`,
		`{"type":"dm","id":"4","to":"bob","text":"hi"}`,
		`{"type":"typing","room":"general"}`,
		`{"type":"read","room":"general","seq":57}`,
		`{"type":"history","id":"5","room":"general","before":57,"limit":50}`,
		`{"type":"presence","id":"6","room":"general"}`,
		`{"type":"refresh","id":"7","token":"a.b.c"}`,
		`{"type":"ping","id":"8"}`,
		// empty and whitespace
		``, ` `, "\n\t\r ", `{}`, `[]`, `null`, `""`, `0`,
		// deep nesting
		strings.Repeat("[", 10000),
		strings.Repeat("{", 10000),
		`{"type":"send","data":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
		`{"type":"send","data":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
		`{"type":"send","x":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat("}", 5000) + `}`,
		`{"type":"send","data":` + strings.Repeat("[", 10000),
		// huge numbers
		`{"type":"join","id":"n","limit":1e999}`,
		`{"type":"join","id":"n","limit":-1e999}`,
		`{"type":"join","id":"n","limit":99999999999999999999999}`,
		`{"type":"read","id":"n","seq":99999999999999999999999}`,
		`{"type":"read","id":"n","seq":1e999}`,
		`{"type":"read","id":"n","seq":18446744073709551616}`,
		`{"type":"read","id":"n","seq":18446744073709551615}`,
		`{"type":"history","id":"n","before":-0}`,
		`{"type":"history","id":"n","before":0.0}`,
		`{"type":"history","id":"n","limit":-9223372036854775808}`,
		`{"type":"history","id":"n","limit":-9223372036854775809}`,
		`{"type":"join","id":"n","since":{"seq":1e2,"epoch":"e"}}`,
		`{"type":"send","data":1e99999999999999999999}`,
		`{"type":"send","data":-}`,
		`{"type":"send","data":01}`,
		`{"type":"send","data":1.}`,
		`{"type":"send","data":.5}`,
		// duplicate keys
		`{"type":"ping","type":"send","id":"a","id":"b"}`,
		`{"type":"send","data":{"a":1},"data":null}`,
		`{"type":"send","data":null,"data":{"a":1}}`,
		`{"type":"send","text":"a","text":null}`,
		`{"type":"join","limit":1,"limit":"x","id":"d"}`,
		`{"type":"ping","TYPE":"send","Type":"x"}`,
		`{"type":"ping","\u212aey":"kelvin"}`,
		// wrong types
		`{"type":5}`, `{"type":true}`, `{"type":null}`, `{"type":[]}`, `{"type":{}}`,
		`{"type":"ping","id":5}`, `{"type":"ping","id":null}`, `{"type":"ping","id":["a"]}`,
		`{"type":"join","id":"w","limit":"x"}`, `{"type":"join","id":"w","since":[]}`,
		`{"type":"send","id":"w","text":{}}`, `{"type":"send","id":"w","key":1}`,
		// NUL bytes
		"\x00", "{\x00}", "{\"type\":\"ping\"}\x00", "{\"type\":\"pi\x00ng\"}", "{\"type\":\"ping\",\x00\"id\":\"a\"}",
		`{"type":"ping","id":"\u0000"}`,
		// surrogates and bad UTF-8
		`{"type":"\ud800"}`, `{"type":"ping","id":"\udc00\ud800"}`, `{"type":"ping","id":"\ud83d\ude00"}`,
		`{"type":"send","text":"\ud800x","data":"\ud800"}`,
		"{\"type\":\"ping\",\"id\":\"\xed\xa0\x80\"}",
		"{\"type\":\"p\xffing\"}",
		"{\"type\":\"send\",\"data\":\"\xff\"}",
		"{\"\xff\":1,\"type\":\"ping\"}",
		// long strings
		`{"type":"ping","id":"` + strings.Repeat("i", 64) + `"}`,
		`{"type":"ping","id":"` + strings.Repeat("i", 65) + `"}`,
		`{"id":"` + strings.Repeat("i", 65) + `"}`,
		// found by the fuzzer: no type, and an id of 63 bytes that decodes
		// to 65 (the bad byte becomes U+FFFD) was kept in r.ID
		"{\"id\":\"" + strings.Repeat("0", 59) + "\x80000\"}",
		`{"type":"send","key":"` + strings.Repeat("k", 65) + `","id":"x"}`,
		`{"type":"send","text":"` + long + `"}`,
		`{"type":"send","text":"` + strings.Repeat(`\n`, 2000) + `"}`,
		`{"type":"` + long + `"}`,
		`{"` + long + `":1,"type":"x"}`,
		// escapes
		`{"type":"p\u0069ng","id":"\"\\\/\b\f\n\r\t"}`,
		`{"type":"p\ing"}`, `{"type":"p\u00"}`, `{"type":"p\uXXXX"}`, `{"type":"ping\`,
		// truncation and garbage
		`{"type":"ping"`, `{"type":`, `{"type"`, `{"`, `{`, `}`, `"`, `{"type":"ping"}}`, `{"type":"ping"}]`,
		`{"type":"ping",}`, `{,"type":"ping"}`, `{"type":"ping" "id":"a"}`,
		"\xff\xfe\xfd\x00\x01\x02\x80\x81", "\xef\xbb\xbf{\"type\":\"ping\"}",
		`{"type":"ping"}{"type":"ping"}`, `tru`, `nul`, `{"type":nul}`, `{"type":"send","data":tru}`,
	}
	out := make([][]byte, len(s))
	for i := range s {
		out[i] = []byte(s[i])
	}
	return out
}

// stdRequest mirrors Request for encoding/json, the reference decoder.
type stdRequest struct {
	Type   string          `json:"type"`
	ID     string          `json:"id"`
	Room   string          `json:"room"`
	To     string          `json:"to"`
	Text   *string         `json:"text"`
	Data   json.RawMessage `json:"data"`
	Key    string          `json:"key"`
	Since  *Since          `json:"since"`
	Limit  *int            `json:"limit"`
	Before *uint64         `json:"before"`
	Seq    *uint64         `json:"seq"`
	Token  string          `json:"token"`
}

func checkDecodeRequest(t *testing.T, in []byte) {
	orig := append([]byte(nil), in...)

	var r Request
	err := DecodeRequest(in, &r)

	// A dirty, reused Request decodes to the same result.
	dirty := Request{Type: "old", ID: "old", Room: "old", To: "old", Text: strp("old"), Data: []byte(`"old data"`),
		Key: "old", Since: sincep(1, "old"), Limit: intp(1), Before: u64p(1), Seq: u64p(1), Token: "old"}
	err2 := DecodeRequest(in, &dirty)
	if (err == nil) != (err2 == nil) {
		t.Fatalf("fresh and reused Request disagree: %v vs %v", err, err2)
	}
	if !bytes.Equal(in, orig) {
		t.Fatalf("DecodeRequest modified its input")
	}

	if err != nil {
		if !errors.Is(err, ErrBadRequest) {
			t.Fatalf("error %v does not wrap ErrBadRequest", err)
		}
		if len(r.ID) > MaxIDLen || dirty.ID != r.ID {
			t.Fatalf("after error: ID %q (reused: %q)", r.ID, dirty.ID)
		}
		return
	}
	if !reflect.DeepEqual(normData(r), normData(dirty)) {
		t.Fatalf("fresh and reused Request differ:\n%s\n%s", describe(r), describe(dirty))
	}
	if r.Type == "" {
		t.Fatalf("accepted with empty Type: %s", describe(r))
	}
	if len(r.ID) > MaxIDLen || len(r.Key) > MaxIDLen {
		t.Fatalf("accepted id of %d bytes, key of %d bytes", len(r.ID), len(r.Key))
	}
	if len(r.Data) > 0 && (!json.Valid(r.Data) || string(r.Data) == "null") {
		t.Fatalf("accepted Data that is not one JSON value: %q", r.Data)
	}
	// Only valid JSON is accepted (encoding/json is the reference).
	if !json.Valid(in) {
		t.Fatalf("accepted input that encoding/json rejects: %q -> %s", in, describe(r))
	}
	for _, s := range []string{r.Type, r.ID, r.Room, r.To, r.Key, r.Token} {
		if !utf8.ValidString(s) {
			t.Fatalf("decoded string %q is not valid UTF-8", s)
		}
	}
	// Differential: encoding/json, the reference, accepts the frame too and
	// decodes every field the same (including its case-insensitive and
	// Unicode-folded key matching, and U+FFFD for bad UTF-8 and surrogates).
	var std stdRequest
	if stdErr := json.Unmarshal(in, &std); stdErr != nil {
		t.Fatalf("accepted input that encoding/json rejects: %v\n%q", stdErr, in)
	}
	if string(std.Data) == "null" {
		std.Data = nil
	}
	if want := Request(std); !reflect.DeepEqual(normData(r), normData(want)) {
		t.Fatalf("differs from encoding/json on %q:\n got  %s\n want %s", in, describe(r), describe(want))
	}

	// Nothing aliases the input.
	snap := describe(r)
	for i := range in {
		in[i] = 'Z'
	}
	if got := describe(r); got != snap {
		t.Fatalf("overwriting the input changed the request:\n%s\n%s", snap, got)
	}
	copy(in, orig)
}

func TestDecodeRequestSeeds(t *testing.T) {
	for _, in := range decodeSeeds() {
		checkDecodeRequest(t, in)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, in := range decodeSeeds() {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDecodeRequest(t, in)
	})
}

func appendStringSeeds() []string {
	return []string{
		"", "hi", `"`, `\`, "\x00", "\x1f", "\x7f", "\n\r\t\b\f", "\u2028\u2029",
		"😀", "é", "\uFFFD", "\U0010FFFF", "<img src=x onerror=alert(1)>",
		"\xff", "\xfe\xff", "\xc3", "\xc3(", "\xed\xa0\x80", "\xed\xbf\xbf\xed\xa0\x80",
		"\xf0\x9f\x98", "\xf4\x90\x80\x80", "\xc0\x80", "a\xe2\x80\xa8b\xe2\x80",
		strings.Repeat("\xff\"", 100),
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range appendStringSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := checkAppendString(t, s)
		// appending keeps what was there
		pre := AppendString([]byte(`{"k":`), s)
		if !bytes.Equal(pre[5:], out) || string(pre[:5]) != `{"k":` {
			t.Fatalf("AppendString with a prefix: %q", pre)
		}
		// and the result embeds in a frame as a valid string field
		frame := AppendError(nil, s, "bad_request", s)
		var e map[string]string
		if err := json.Unmarshal(frame, &e); err != nil || e["id"] != expectedDecoded(s) || e["message"] != expectedDecoded(s) {
			t.Fatalf("AppendError(%q) = %q: %v", s, frame, err)
		}
	})
}
