package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func strp(s string) *string { return &s }
func intp(n int) *int       { return &n }
func u64p(n uint64) *uint64 { return &n }
func sincep(seq uint64, epoch string) *Since {
	return &Since{Seq: seq, Epoch: epoch}
}

// normData makes an empty Data compare equal whatever its capacity.
func normData(r Request) Request {
	if len(r.Data) == 0 {
		r.Data = nil
	}
	return r
}

// describe prints a Request with its pointer fields dereferenced, for
// failure messages.
func describe(r Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{Type:%q ID:%q Room:%q To:%q Key:%q Token:%q Data:%q", r.Type, r.ID, r.Room, r.To, r.Key, r.Token, r.Data)
	if r.Text != nil {
		fmt.Fprintf(&b, " Text:%q", *r.Text)
	} else {
		b.WriteString(" Text:nil")
	}
	if r.Since != nil {
		fmt.Fprintf(&b, " Since:%+v", *r.Since)
	} else {
		b.WriteString(" Since:nil")
	}
	if r.Limit != nil {
		fmt.Fprintf(&b, " Limit:%d", *r.Limit)
	} else {
		b.WriteString(" Limit:nil")
	}
	if r.Before != nil {
		fmt.Fprintf(&b, " Before:%d", *r.Before)
	} else {
		b.WriteString(" Before:nil")
	}
	if r.Seq != nil {
		fmt.Fprintf(&b, " Seq:%d", *r.Seq)
	} else {
		b.WriteString(" Seq:nil")
	}
	b.WriteString("}")
	return b.String()
}

func TestDecodeRequestClientFrames(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Request
	}{
		// Every row of the request table in docs/protocol.md.
		{"join", `{"type":"join","id":"1","room":"general"}`,
			Request{Type: "join", ID: "1", Room: "general"}},
		{"join since", `{"type":"join","id":"1","room":"general","since":{"seq":41,"epoch":"e9"}}`,
			Request{Type: "join", ID: "1", Room: "general", Since: sincep(41, "e9")}},
		{"join limit", `{"type":"join","id":"1","room":"general","limit":50}`,
			Request{Type: "join", ID: "1", Room: "general", Limit: intp(50)}},
		{"leave", `{"type":"leave","id":"2","room":"general"}`,
			Request{Type: "leave", ID: "2", Room: "general"}},
		{"send text", `{"type":"send","id":"3","room":"general","text":"hi"}`,
			Request{Type: "send", ID: "3", Room: "general", Text: strp("hi")}},
		{"send data", `{"type":"send","id":"3","room":"general","data":{"kind":"img","w":640}}`,
			Request{Type: "send", ID: "3", Room: "general", Data: []byte(`{"kind":"img","w":640}`)}},
		{"send key", `{"type":"send","id":"3","room":"general","text":"hi","key":"5f0c6a2e-3b8e-4c52-9a7b-1f2d3e4c5b6a"}`,
			Request{Type: "send", ID: "3", Room: "general", Text: strp("hi"), Key: "5f0c6a2e-3b8e-4c52-9a7b-1f2d3e4c5b6a"}},
		{"dm", `{"type":"dm","id":"4","to":"bob","text":"hi"}`,
			Request{Type: "dm", ID: "4", To: "bob", Text: strp("hi")}},
		{"dm key", `{"type":"dm","id":"4","to":"bob","text":"hi","key":"k1"}`,
			Request{Type: "dm", ID: "4", To: "bob", Text: strp("hi"), Key: "k1"}},
		{"typing", `{"type":"typing","room":"general"}`,
			Request{Type: "typing", Room: "general"}},
		{"read", `{"type":"read","room":"general","seq":57}`,
			Request{Type: "read", Room: "general", Seq: u64p(57)}},
		{"history", `{"type":"history","id":"5","room":"general","before":57,"limit":50}`,
			Request{Type: "history", ID: "5", Room: "general", Before: u64p(57), Limit: intp(50)}},
		{"presence", `{"type":"presence","id":"6","room":"general"}`,
			Request{Type: "presence", ID: "6", Room: "general"}},
		{"refresh", `{"type":"refresh","id":"7","token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"}`,
			Request{Type: "refresh", ID: "7", Token: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"}},
		{"ping", `{"type":"ping","id":"8"}`,
			Request{Type: "ping", ID: "8"}},
		{"ping no id", `{"type":"ping"}`,
			Request{Type: "ping"}},
		{"unknown type still decodes", `{"type":"frobnicate","id":"9"}`,
			Request{Type: "frobnicate", ID: "9"}},

		// Zero values are present, not absent.
		{"limit 0", `{"type":"join","room":"r","limit":0}`,
			Request{Type: "join", Room: "r", Limit: intp(0)}},
		{"negative limit decodes (server rejects)", `{"type":"history","room":"r","limit":-1}`,
			Request{Type: "history", Room: "r", Limit: intp(-1)}},
		{"before 0", `{"type":"history","room":"r","before":0}`,
			Request{Type: "history", Room: "r", Before: u64p(0)}},
		{"seq 0", `{"type":"read","room":"r","seq":0}`,
			Request{Type: "read", Room: "r", Seq: u64p(0)}},
		{"seq max uint64", `{"type":"read","room":"r","seq":18446744073709551615}`,
			Request{Type: "read", Room: "r", Seq: u64p(1<<64 - 1)}},
		{"empty text", `{"type":"send","room":"r","text":""}`,
			Request{Type: "send", Room: "r", Text: strp("")}},
		{"zero since", `{"type":"join","room":"r","since":{"seq":0,"epoch":""}}`,
			Request{Type: "join", Room: "r", Since: sincep(0, "")}},
		{"empty since object", `{"type":"join","room":"r","since":{}}`,
			Request{Type: "join", Room: "r", Since: sincep(0, "")}},

		// null is absence.
		{"null pointers", `{"type":"send","room":"r","text":null,"since":null,"limit":null,"before":null,"seq":null}`,
			Request{Type: "send", Room: "r"}},
		{"data null", `{"type":"send","room":"r","data":null}`,
			Request{Type: "send", Room: "r"}},

		// Text escapes and unicode.
		{"escaped text", `{"type":"send","room":"r","text":"a\"b\\c\nd\u00e9\ud83d\ude00\u2028"}`,
			Request{Type: "send", Room: "r", Text: strp("a\"b\\c\nd\u00e9\U0001F600\u2028")}},
		{"raw unicode text", `{"type":"send","room":"r","text":"héllo 😀 <img src=x onerror=alert(1)>"}`,
			Request{Type: "send", Room: "r", Text: strp("héllo 😀 <img src=x onerror=alert(1)>")}},

		// Layout does not matter.
		{"whitespace and order", " \n\t{ \"room\" : \"r\" ,\r\n \"limit\" : 7 , \"type\" : \"join\" } \n",
			Request{Type: "join", Room: "r", Limit: intp(7)}},
		{"unknown fields ignored", `{"type":"ping","id":"8","extra":{"a":[1,2,{"b":null}]},"n":1e999}`,
			Request{Type: "ping", ID: "8"}},
		{"duplicate key: last wins", `{"type":"typing","type":"ping"}`,
			Request{Type: "ping"}},

		// Bounds are inclusive.
		{"id of 64 bytes", `{"type":"ping","id":"` + strings.Repeat("i", 64) + `"}`,
			Request{Type: "ping", ID: strings.Repeat("i", 64)}},
		{"key of 64 bytes", `{"type":"send","room":"r","text":"x","key":"` + strings.Repeat("k", 64) + `"}`,
			Request{Type: "send", Room: "r", Text: strp("x"), Key: strings.Repeat("k", 64)}},
		{"id of 64 bytes written with escapes", `{"type":"ping","id":"` + strings.Repeat(`\u0069`, 64) + `"}`,
			Request{Type: "ping", ID: strings.Repeat("i", 64)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			if err := DecodeRequest([]byte(tc.in), &r); err != nil {
				t.Fatalf("DecodeRequest(%s): %v", tc.in, err)
			}
			if got, want := normData(r), normData(tc.want); !reflect.DeepEqual(got, want) {
				t.Fatalf("DecodeRequest(%s)\n got  %s\n want %s", tc.in, describe(got), describe(want))
			}
		})
	}
}

// A Request is reused by callers: every field of the previous frame must be
// gone after the next decode, whether it succeeds or not.
func TestDecodeRequestResetsReusedRequest(t *testing.T) {
	full := `{"type":"history","id":"5","room":"general","to":"bob","text":"t","data":[1],"key":"k",` +
		`"since":{"seq":1,"epoch":"e"},"limit":5,"before":9,"seq":3,"token":"tok"}`
	var r Request
	if err := DecodeRequest([]byte(full), &r); err != nil {
		t.Fatal(err)
	}
	if r.Text == nil || r.Since == nil || r.Limit == nil || r.Before == nil || r.Seq == nil || len(r.Data) == 0 ||
		r.To == "" || r.Key == "" || r.Token == "" {
		t.Fatalf("full frame not fully decoded: %s", describe(r))
	}
	if err := DecodeRequest([]byte(`{"type":"ping"}`), &r); err != nil {
		t.Fatal(err)
	}
	if got, want := normData(r), (Request{Type: "ping"}); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reuse got %s, want %s", describe(got), describe(want))
	}

	if err := DecodeRequest([]byte(full), &r); err != nil {
		t.Fatal(err)
	}
	if err := DecodeRequest([]byte(`{`), &r); err == nil {
		t.Fatal("want error")
	}
	if r.ID != "" || r.Text != nil || len(r.Data) != 0 || r.Limit != nil || r.Token != "" {
		t.Fatalf("failed decode kept the previous frame's fields: %s", describe(r))
	}

	var z Request
	z.Reset() // on a zero Request
	if !reflect.DeepEqual(normData(z), Request{}) {
		t.Fatalf("Reset of zero Request: %s", describe(z))
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	long := strings.Repeat("x", MaxIDLen+1)
	tests := []struct {
		name   string
		in     string
		wantID string // r.ID after the error
	}{
		// malformed JSON
		{"empty input", ``, ""},
		{"only spaces", "  \n ", ""},
		{"truncated object", `{"type":"ping","id":"a"`, ""},
		{"truncated after colon", `{"id":"a","type":`, ""},
		{"trailing garbage", `{"type":"ping","id":"a"} x`, ""},
		{"two objects", `{"type":"ping","id":"a"}{"type":"ping"}`, ""},
		{"trailing NUL", "{\"type\":\"ping\",\"id\":\"a\"}\x00", ""},
		{"NUL inside", "{\"type\":\"pi\x00ng\"}", ""},
		{"raw control char in string", "{\"type\":\"send\",\"text\":\"a\nb\"}", ""},
		{"single quotes", `{'type':'ping'}`, ""},
		{"unquoted key", `{type:"ping"}`, ""},
		{"trailing comma", `{"type":"ping",}`, ""},
		{"bad escape", `{"type":"p\xing"}`, ""},
		{"short unicode escape", `{"type":"p\u12"}`, ""},
		{"binary garbage", "\xff\xfe\x00\x01garbage", ""},
		{"bad data value", `{"type":"send","id":"a","data":[1,2}`, ""},
		{"bad data literal", `{"type":"send","id":"a","data":nul}`, ""},

		// not an object
		{"array", `[{"type":"ping"}]`, ""},
		{"string", `"ping"`, ""},
		{"number", `5`, ""},
		{"null", `null`, ""},
		{"true", `true`, ""},

		// missing or non-string type
		{"missing type", `{"id":"m1","room":"r"}`, "m1"},
		{"empty type", `{"type":"","id":"m2"}`, "m2"},
		{"null type", `{"type":null,"id":"m3"}`, "m3"},
		{"empty object", `{}`, ""},
		{"type is a number", `{"type":5,"id":"t1"}`, "t1"},
		{"type is a bool", `{"id":"t2","type":true}`, "t2"},
		{"type is an object", `{"type":{"a":"ping"},"id":"t3"}`, "t3"},
		{"type is an array", `{"type":["ping"],"id":"t4"}`, "t4"},

		// id and key bounds
		{"id of 65 bytes", `{"type":"ping","id":"` + long + `"}`, ""},
		{"id of 66 bytes in 33 runes", `{"type":"ping","id":"` + strings.Repeat("é", 33) + `"}`, ""},
		{"key of 65 bytes", `{"type":"send","id":"k1","room":"r","text":"x","key":"` + long + `"}`, "k1"},
		{"key of 65 bytes before id", `{"type":"send","key":"` + long + `","room":"r","id":"k2"}`, "k2"},
		{"missing type and id of 65 bytes", `{"id":"` + long + `"}`, ""},
		{"empty type and id of 65 bytes", `{"type":"","id":"` + long + `"}`, ""},
		{"missing type, id of 63 bytes that decodes to 65", "{\"id\":\"" + strings.Repeat("0", 62) + "\x80\"}", ""},
		{"id not a string", `{"type":"ping","id":5}`, ""},
		{"id an object", `{"type":"ping","id":{"a":"b"}}`, ""},
		{"long id and a bad field", `{"type":"join","id":"` + long + `","limit":"x"}`, ""},

		// wrong field types: the id is recovered
		{"limit string", `{"type":"join","id":"l1","room":"r","limit":"x"}`, "l1"},
		{"limit before id", `{"type":"join","limit":"x","room":"r","id":"l2"}`, "l2"},
		{"limit float", `{"type":"join","id":"l3","room":"r","limit":1.5}`, "l3"},
		{"limit 1e999", `{"type":"join","id":"l4","room":"r","limit":1e999}`, "l4"},
		{"limit overflows int", `{"type":"join","id":"l5","room":"r","limit":99999999999999999999999}`, "l5"},
		{"limit 2^63", `{"type":"join","id":"l6","room":"r","limit":9223372036854775808}`, "l6"},
		{"limit bool", `{"type":"join","id":"l7","room":"r","limit":true}`, "l7"},
		{"seq negative", `{"type":"read","id":"s1","room":"r","seq":-1}`, "s1"},
		{"seq 2^64", `{"type":"read","id":"s2","room":"r","seq":18446744073709551616}`, "s2"},
		{"seq huge", `{"type":"read","id":"s3","room":"r","seq":99999999999999999999999}`, "s3"},
		{"seq string", `{"type":"read","id":"s4","room":"r","seq":"57"}`, "s4"},
		{"before string", `{"type":"history","id":"b1","room":"r","before":"x"}`, "b1"},
		{"before negative", `{"type":"history","id":"b2","room":"r","before":-5}`, "b2"},
		{"since string", `{"type":"join","id":"c1","room":"r","since":"41"}`, "c1"},
		{"since seq string", `{"type":"join","id":"c2","room":"r","since":{"seq":"a","epoch":"e"}}`, "c2"},
		{"since epoch number", `{"type":"join","id":"c3","room":"r","since":{"seq":1,"epoch":9}}`, "c3"},
		{"text number", `{"type":"send","id":"x1","room":"r","text":5}`, "x1"},
		{"text object", `{"type":"send","id":"x2","room":"r","text":{"a":1}}`, "x2"},
		{"room array", `{"type":"join","id":"x3","room":["a"]}`, "x3"},
		{"to number", `{"type":"dm","id":"x4","to":1,"text":"hi"}`, "x4"},
		{"key number", `{"type":"send","id":"x5","room":"r","text":"x","key":1}`, "x5"},
		{"token bool", `{"type":"refresh","id":"x6","token":false}`, "x6"},
		{"escaped id recovered", `{"type":"join","id":"\u0061\"b","limit":"x"}`, "a\"b"},
		{"unicode id recovered", `{"limit":{},"type":"join","id":"é😀"}`, "é😀"},
		{"id of 64 bytes recovered", `{"type":"join","id":"` + strings.Repeat("i", 64) + `","limit":"x"}`, strings.Repeat("i", 64)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Request{ID: "stale", Type: "stale"}
			err := DecodeRequest([]byte(tc.in), &r)
			if err == nil {
				t.Fatalf("DecodeRequest(%q) = nil error, want bad request; got %s", tc.in, describe(r))
			}
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("DecodeRequest(%q) error %v does not wrap ErrBadRequest", tc.in, err)
			}
			if r.ID != tc.wantID {
				t.Fatalf("DecodeRequest(%q): r.ID = %q, want %q (err %v)", tc.in, r.ID, tc.wantID, err)
			}
			if len(r.ID) > MaxIDLen {
				t.Fatalf("r.ID longer than %d bytes after error", MaxIDLen)
			}
			if msg := err.Error(); strings.ContainsAny(msg, "\n") || len(msg) > 250 {
				t.Fatalf("error message not one short line (%d bytes): %q", len(msg), msg)
			}
		})
	}
}

// The server reuses the payload buffer after DecodeRequest: nothing in the
// Request may point into it, nor into any buffer the decoder keeps for the
// next call.
func TestDecodeRequestDoesNotAliasInput(t *testing.T) {
	longText := strings.Repeat("lorem ipsum dolor sit amet ", 200) // long: other scan paths
	longEsc := strings.Repeat(`a\"b\\c\u00e9`, 7000)               // escaped, beyond 64 KiB scratch
	longEscWant := strings.Repeat("a\"b\\c\u00e9", 7000)           //
	medEsc := strings.Repeat(`x\n`, 100)                           // escaped, in the scratch buffer
	medEscWant := strings.Repeat("x\n", 100)                       //
	frames := []struct {
		in   string
		want Request
	}{
		{`{"type":"send","id":"id-1","room":"general","to":"bob","key":"key-1","token":"tok",` +
			`"text":"hi there","data":{"a":[1,2,"three"],"b":{"c":null}},"since":{"seq":4,"epoch":"ep"},"limit":3,"before":2,"seq":1}`,
			Request{Type: "send", ID: "id-1", Room: "general", To: "bob", Key: "key-1", Token: "tok", Text: strp("hi there"),
				Data: []byte(`{"a":[1,2,"three"],"b":{"c":null}}`), Since: sincep(4, "ep"), Limit: intp(3), Before: u64p(2), Seq: u64p(1)}},
		{`{"type":"send","id":"\u0069d","room":"g\u0065neral","text":"esc\"aped\n\u00e9","key":"k\u0031","data":"str\"ing"}`,
			Request{Type: "send", ID: "id", Room: "general", Text: strp("esc\"aped\né"), Key: "k1", Data: []byte(`"str\"ing"`)}},
		{`{"type":"send","id":"ünï","room":"r","text":"😀 héllo wörld","data":["ü",1e3,true]}`,
			Request{Type: "send", ID: "ünï", Room: "r", Text: strp("😀 héllo wörld"), Data: []byte(`["ü",1e3,true]`)}},
		{`{"type":"send","room":"r","text":"` + longText + `","data":"` + longText + `"}`,
			Request{Type: "send", Room: "r", Text: strp(longText), Data: []byte(`"` + longText + `"`)}},
		{`{"type":"send","room":"r","text":"` + medEsc + `"}`,
			Request{Type: "send", Room: "r", Text: strp(medEscWant)}},
		{`{"type":"send","room":"r","text":"` + longEsc + `"}`,
			Request{Type: "send", Room: "r", Text: strp(longEscWant)}},
		{`{"type":"x","data":1}`,
			Request{Type: "x", Data: []byte(`1`)}},
	}
	for i, fr := range frames {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			in := []byte(fr.in)
			var r Request
			if err := DecodeRequest(in, &r); err != nil {
				t.Fatal(err)
			}
			if got, want := normData(r), normData(fr.want); !reflect.DeepEqual(got, want) {
				t.Fatalf("decode\n got  %.300s\n want %.300s", describe(got), describe(want))
			}
			for _, fill := range []byte{'Z', 0x00, '"', 0xFF} {
				for j := range in {
					in[j] = fill
				}
				if got, want := normData(r), normData(fr.want); !reflect.DeepEqual(got, want) {
					t.Fatalf("overwriting the input with %q changed the request:\n got  %.300s\n want %.300s", fill, describe(got), describe(want))
				}
			}
			// The decoder's own buffers are reused by the next call.
			for _, other := range frames {
				var o Request
				_ = DecodeRequest([]byte(other.in), &o)
				_ = DecodeRequest([]byte(strings.Repeat("Q", len(other.in))), &o)
			}
			if got, want := normData(r), normData(fr.want); !reflect.DeepEqual(got, want) {
				t.Fatalf("later decodes changed the request:\n got  %.300s\n want %.300s", describe(got), describe(want))
			}
		})
	}

	// The id recovered after an error does not alias the input either.
	in := []byte(`{"type":"join","id":"recover-me","limit":"x"}`)
	var r Request
	if err := DecodeRequest(in, &r); err == nil {
		t.Fatal("want error")
	}
	for j := range in {
		in[j] = 'Z'
	}
	if r.ID != "recover-me" {
		t.Fatalf("recovered id changed with the input: %q", r.ID)
	}
}

// Data is the value's JSON text, byte for byte; null and absence are empty.
func TestDecodeRequestDataVerbatim(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{`{"type":"send","data":{"b":2,"a":1}}`, `{"b":2,"a":1}`},
		{`{"type":"send","data" :  {"a" : [1, 2 ,3] , "z":{ }}  ,"room":"r"}`, `{"a" : [1, 2 ,3] , "z":{ }}`},
		{"{\"type\":\"send\",\"data\":\n[\n1.50e+3,\t-0,\"x\"\n]\n}", "[\n1.50e+3,\t-0,\"x\"\n]"},
		{`{"type":"send","data":"\u00e9\n\ud83d\ude00"}`, `"\u00e9\n\ud83d\ude00"`},
		{`{"type":"send","data":"<img src=x onerror=alert(1)>"}`, `"<img src=x onerror=alert(1)>"`},
		{`{"type":"send","data":12345678901234567890123}`, `12345678901234567890123`},
		{`{"type":"send","data":1e999}`, `1e999`},
		{`{"type":"send","data":true}`, `true`},
		{`{"type":"send","data":false}`, `false`},
		{`{"type":"send","data":""}`, `""`},
		{`{"type":"send","data":[]}`, `[]`},
		{`{"type":"send","data":{"k":null}}`, `{"k":null}`},
		{`{"type":"send","data":[null]}`, `[null]`},
		{`{"type":"send","data":null}`, ``},
		{`{"type":"send","data": null }`, ``},
		{`{"type":"send","data":{"x":1},"data":null}`, ``},
		{`{"type":"send"}`, ``},
	}
	for _, tc := range tests {
		var r Request
		r.Data = append(r.Data, "leftover"...)
		if err := DecodeRequest([]byte(tc.in), &r); err != nil {
			t.Errorf("DecodeRequest(%s): %v", tc.in, err)
			continue
		}
		if string(r.Data) != tc.want {
			t.Errorf("DecodeRequest(%s): Data = %q, want %q", tc.in, r.Data, tc.want)
		}
	}
}

// Data goes into a message frame verbatim, so an accepted frame's Data must
// be one complete JSON value (and never the literal null).
func TestDecodeRequestDataIsValidJSON(t *testing.T) {
	for _, in := range []string{
		`{"type":"send","data":{"a":1}}`,
		`{"type":"send","data":[[[[[]]]]]}`,
		`{"type":"send","data":"s"}`,
		`{"type":"send","data":-0.5e-7}`,
	} {
		var r Request
		if err := DecodeRequest([]byte(in), &r); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if !json.Valid(r.Data) || bytes.Equal(r.Data, []byte("null")) {
			t.Fatalf("%s: Data %q is not one JSON value", in, r.Data)
		}
	}
}

func TestDecodeRequestDeepNesting(t *testing.T) {
	for _, depth := range []int{100, 10000, 100000} {
		for _, in := range []string{
			`{"type":"send","data":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`,
			`{"type":"send","data":` + strings.Repeat(`{"a":`, depth) + `1` + strings.Repeat("}", depth) + `}`,
			`{"type":"send","x":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`,
			strings.Repeat("[", depth),
			`{"type":"send","data":` + strings.Repeat("[", depth),
		} {
			var r Request
			err := DecodeRequest([]byte(in), &r)
			if err != nil && !errors.Is(err, ErrBadRequest) {
				t.Fatalf("depth %d: error %v does not wrap ErrBadRequest", depth, err)
			}
			if err == nil && (r.Type != "send" || (len(r.Data) > 0 && !json.Valid(r.Data))) {
				t.Fatalf("depth %d: accepted with %.100s", depth, describe(r))
			}
			if strings.HasSuffix(in, "[") && err == nil {
				t.Fatalf("depth %d: unterminated input accepted", depth)
			}
		}
	}
}
