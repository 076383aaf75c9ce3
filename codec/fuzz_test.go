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
		// valid although the server may answer with an error: the decoder
		// must not refuse them (limit is clamped, an unknown type is
		// unknown_type, an empty text with data is a message)
		`{"type":"history","id":"h","room":"r","limit":100000}`,
		`{"type":"join","id":"j","room":"r","since":{"seq":18446744073709551615,"epoch":""}}`,
		`{"type":"send","room":"r","text":"","data":{"k":1},"key":"` + strings.Repeat("k", 64) + `"}`,
		`{"type":"frobnicate"}`,
		`{"type":" "}`,
		// field names fold case (KELVIN SIGN and LONG S too), and the id
		// found that way is echoed after a refusal
		`{"TYPE":"join","Id":"x","ROOM":"r","\u017fince":{"SEQ":1,"Epoch":"e"}}`,
		`{"type":"join","ID":"upper","limit":"x"}`,
		`{"type":"join","id":"a","id":"b","limit":"x"}`,
		`{"type":"join","id":"a","id":5,"limit":"x"}`,
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

// refDecodeRequest is what FuzzDecodeRequest holds DecodeRequest to, in
// both directions: a frame is a valid request exactly when this accepts it,
// and then with exactly these values. It is encoding/json decoding into
// the same fields, plus the rules docs/protocol.md states ("Requests and
// replies", "Limits", "send"):
//
//   - the frame is one JSON object; a field of the wrong JSON type refuses
//     the whole frame; unknown fields are ignored;
//   - "type" must be a non-empty string (an empty one counts as none);
//   - "id" and "key" are at most MaxIDLen bytes (after unescaping);
//   - "data": null is the same as no data.
//
// On refusal it also gives the id the error reply must echo: a string id of
// at most MaxIDLen bytes, when the frame is JSON at all ("its id is still
// echoed"), else none.
//
// Where encoding/json has a rule of its own, it is the reference's rule, and
// DecodeRequest must follow it too; none of these is a deliberate
// difference:
//
//   - duplicate keys: the last one wins (`{"type":"a","type":"b"}` is b;
//     `"data":{..},"data":null` is no data);
//   - field names match case-insensitively, with Unicode simple folding
//     ("\u212aey", KELVIN SIGN, is "key");
//   - lone surrogate escapes and invalid UTF-8 inside strings decode to
//     U+FFFD (a text frame that is not UTF-8 is closed with 1007 before
//     it gets here, so only escapes reach the gateway);
//   - nesting deeper than 10000 levels is refused, even inside an ignored
//     field;
//   - numbers must fit their field exactly: 1.0 or 1e2 is not an int, -0
//     is not a uint64.
//
// Sizes are the one thing not compared: DecodeRequest has no size limit of
// its own, because the gateway measures a message against
// --max-message-bytes (1009) before decoding it.
func refDecodeRequest(in []byte) (req Request, echoID string, ok bool) {
	var std stdRequest
	if err := json.Unmarshal(in, &std); err != nil {
		return Request{}, refEchoID(in), false
	}
	if len(std.ID) > MaxIDLen {
		return Request{}, "", false
	}
	if std.Type == "" || len(std.Key) > MaxIDLen {
		return Request{}, std.ID, false
	}
	if string(std.Data) == "null" {
		std.Data = nil
	}
	return Request(std), "", true
}

// refEchoID is the id of a frame that is JSON but not a valid request (a
// field of the wrong type, say): a string of at most MaxIDLen bytes, or
// none.
func refEchoID(in []byte) string {
	var o struct {
		ID json.RawMessage `json:"id"`
	}
	var id string
	if json.Unmarshal(in, &o) != nil || json.Unmarshal(o.ID, &id) != nil || len(id) > MaxIDLen {
		return ""
	}
	return id
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

	// Both directions: refusing a valid request fails as surely as
	// accepting an invalid one.
	want, wantID, valid := refDecodeRequest(in)
	switch {
	case err == nil && !valid:
		t.Fatalf("accepted what the reference refuses: %q -> %s", in, describe(r))
	case err != nil && valid:
		t.Fatalf("refused a valid request: %q: %v\n reference: %s", in, err, describe(want))
	}

	if err != nil {
		if !errors.Is(err, ErrBadRequest) {
			t.Fatalf("error %v does not wrap ErrBadRequest", err)
		}
		if r.ID != wantID || dirty.ID != r.ID {
			t.Fatalf("after error on %q: ID %q (reused: %q), reference echoes %q", in, r.ID, dirty.ID, wantID)
		}
		return
	}
	if !reflect.DeepEqual(normData(r), normData(dirty)) {
		t.Fatalf("fresh and reused Request differ:\n%s\n%s", describe(r), describe(dirty))
	}
	if !reflect.DeepEqual(normData(r), normData(want)) {
		t.Fatalf("differs from the reference on %q:\n got  %s\n want %s", in, describe(r), describe(want))
	}
	// Data goes into message frames verbatim (the reference takes it
	// verbatim too, so this guards the reference as much as the decoder).
	if len(r.Data) > 0 && (!json.Valid(r.Data) || string(r.Data) == "null") {
		t.Fatalf("accepted Data that is not one JSON value: %q", r.Data)
	}
	for _, s := range []string{r.Type, r.ID, r.Room, r.To, r.Key, r.Token} {
		if !utf8.ValidString(s) {
			t.Fatalf("decoded string %q is not valid UTF-8", s)
		}
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
