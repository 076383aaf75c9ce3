package history

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/chatgw/gateway/codec"
)

// Export and Import: a room moved from one Disk store to another keeps its
// messages, seqs, timestamps, epoch and latest seq; input that is not an
// export, or a room that has history already, is refused with nothing
// written.

func openExportDisk(t *testing.T, cfg DiskConfig) *Disk {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	d, err := OpenDisk(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// appendMsg stores m (its room, from, to, text, data) in d and returns the
// stored message.
func appendMsg(t *testing.T, d *Disk, m codec.Message) Message {
	t.Helper()
	msg, _, _, err := d.Append(m.Room, m.From, "", func(seq uint64, ts int64) []byte {
		m.Seq, m.TS = seq, ts
		f := codec.NewFrame()
		f.B = codec.AppendMessage(f.B, &m)
		out := f.Owned()
		f.Release()
		return out
	})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func text(s string) *string { return &s }

// fillRoom appends a text message, a direct message, a data message whose
// verbatim data holds a line break, then plain texts, count in all.
func fillRoom(t *testing.T, d *Disk, room string, count int) {
	t.Helper()
	appendMsg(t, d, codec.Message{Room: room, From: "alice", Text: text("hello \"all\"\n")})
	appendMsg(t, d, codec.Message{Room: room, From: "bob", To: "alice", Text: text("psst")})
	appendMsg(t, d, codec.Message{Room: room, From: "carol", Data: []byte("{\"k\" :\n [1, {\"x\":null}]}")})
	for i := 3; i < count; i++ {
		appendMsg(t, d, codec.Message{Room: room, From: "dave", Text: text(fmt.Sprint("m", i))})
	}
}

// decoded is a message as its seq, ts and decoded payload.
type decoded struct {
	Seq     uint64
	TS      int64
	Payload map[string]any
}

// everything is room's whole page in d, the payloads decoded (an export
// may compact a payload's whitespace).
func everything(t *testing.T, d *Disk, room string) (Page, []decoded) {
	t.Helper()
	p, err := d.Range(room, 0, maxSeq, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var out []decoded
	for _, m := range p.Messages {
		var v map[string]any
		if err := json.Unmarshal(m.Payload(), &v); err != nil {
			t.Fatalf("seq %d: payload %q: %v", m.Seq, m.Payload(), err)
		}
		out = append(out, decoded{m.Seq, m.TS, v})
	}
	p.Messages = nil
	return p, out
}

// keysOf lists d's message keys of room on disk.
func keysOf(t *testing.T, d *Disk, room string) int {
	t.Helper()
	n := 0
	if err := d.db.scan(seqKey(room, 0), seqKey(room, maxSeq), false, func(_, _ []byte) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestExportImportRoundTrip(t *testing.T) {
	a := openExportDisk(t, DiskConfig{})
	fillRoom(t, a, "general", 10)
	fillRoom(t, a, "other", 4) // not part of general's export
	appendMsg(t, a, codec.Message{Room: "general!", From: "x", Text: text("a room sorting right after")})

	var buf bytes.Buffer
	n, err := a.Export("general", &buf)
	if err != nil || n != 10 {
		t.Fatalf("Export: %d, %v; want 10 messages", n, err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 11 {
		t.Fatalf("export has %d lines, want a header and 10 messages:\n%s", len(lines), buf.String())
	}
	pa, want := everything(t, a, "general")
	if head := fmt.Sprintf(`{"version":1,"room":"general","epoch":%q,"latest":10}`, pa.Epoch); lines[0] != head {
		t.Fatalf("header %s, want %s", lines[0], head)
	}
	for i, l := range lines[1:] {
		var m struct {
			Type, Room string
			Seq        uint64
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil || m.Type != "message" || m.Room != "general" || m.Seq != uint64(i+1) {
			t.Fatalf("line %d: %s (%v), want the message of seq %d", i+2, l, err, i+1)
		}
	}

	b := openExportDisk(t, DiskConfig{})
	appendMsg(t, b, codec.Message{Room: "other", From: "zed", Text: text("b's own room")})
	room, n, err := b.Import(bytes.NewReader(buf.Bytes()))
	if err != nil || room != "general" || n != 10 {
		t.Fatalf("Import: %q, %d, %v; want general, 10", room, n, err)
	}
	pb, got := everything(t, b, "general")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("imported messages differ:\n got %v\nwant %v", got, want)
	}
	if pb.Epoch != pa.Epoch || pb.Latest != 10 || !pb.Complete {
		t.Fatalf("imported page: epoch %q latest %d complete %v; want epoch %q latest 10 complete", pb.Epoch, pb.Latest, pb.Complete, pa.Epoch)
	}
	if _, dm := got[1].Payload["to"]; !dm || got[2].Payload["data"] == nil {
		t.Fatalf("the direct message or the data message lost a field: %v, %v", got[1].Payload, got[2].Payload)
	}
	if rooms := b.Rooms(); !reflect.DeepEqual(rooms, []string{"general", "other"}) {
		t.Fatalf("Rooms after the import: %q", rooms)
	}
	// A resume from seq 7 is complete: the seqs, not only the texts, moved.
	if p, err := b.Range("general", 7, maxSeq, 100); err != nil || !p.Complete || len(p.Messages) != 3 || p.Messages[0].Seq != 8 {
		t.Fatalf("Range after 7: %+v, %v", p, err)
	}
	// The room goes on from there, under the same epoch...
	if m := appendMsg(t, b, codec.Message{Room: "general", From: "eve", Text: text("after the move")}); m.Seq != 11 {
		t.Fatalf("next append in the imported room: seq %d, want 11", m.Seq)
	}
	// ...and all of it is on disk.
	dir := b.cfg.Dir
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := openExportDisk(t, DiskConfig{Dir: dir})
	pb2, got2 := everything(t, b2, "general")
	if pb2.Epoch != pa.Epoch || pb2.Latest != 11 || len(got2) != 11 || !reflect.DeepEqual(got2[:10], want) {
		t.Fatalf("after reopening: epoch %q latest %d, %d messages", pb2.Epoch, pb2.Latest, len(got2))
	}
	// The export of the imported room is the original export, plus one.
	var again bytes.Buffer
	if _, err := b2.Export("general", &again); err != nil {
		t.Fatal(err)
	}
	againLines := strings.Split(strings.TrimSuffix(again.String(), "\n"), "\n")
	if !reflect.DeepEqual(againLines[1:11], lines[1:]) {
		t.Fatalf("re-export differs:\n%s\nwant\n%s", again.String(), buf.String())
	}
}

// TestExportImportAfterRetention: a room whose oldest messages retention
// removed moves with its first seq and latest; a room whose messages were
// all removed moves as its latest seq alone, and its seq goes on from there.
func TestExportImportAfterRetention(t *testing.T) {
	a := openExportDisk(t, DiskConfig{MaxCount: 4})
	fillRoom(t, a, "kept", 9) // seqs 6..9 kept
	fillRoom(t, a, "gone", 5)
	a.removeBelow("gone", 6)

	b := openExportDisk(t, DiskConfig{})
	for _, c := range []struct {
		room          string
		lines, latest int
	}{{"kept", 4, 9}, {"gone", 0, 5}} {
		var buf bytes.Buffer
		n, err := a.Export(c.room, &buf)
		if err != nil || n != c.lines {
			t.Fatalf("Export %s: %d, %v; want %d messages", c.room, n, err, c.lines)
		}
		pa, want := everything(t, a, c.room)
		if _, n, err := b.Import(&buf); err != nil || n != c.lines {
			t.Fatalf("Import %s: %d, %v", c.room, n, err)
		}
		pb, got := everything(t, b, c.room)
		if !reflect.DeepEqual(got, want) || pb.Epoch != pa.Epoch || pb.Latest != uint64(c.latest) {
			t.Fatalf("%s: imported %v epoch %q latest %d; want %v epoch %q latest %d", c.room, got, pb.Epoch, pb.Latest, want, pa.Epoch, c.latest)
		}
		// A resume from before the first message kept is not complete.
		if p, _ := b.Range(c.room, 4, maxSeq, 100); p.Complete {
			t.Fatalf("%s: Range after 4 complete, but seq 5 is gone", c.room)
		}
		if m := appendMsg(t, b, codec.Message{Room: c.room, From: "eve", Text: text("next")}); m.Seq != uint64(c.latest+1) {
			t.Fatalf("%s: next append seq %d, want %d", c.room, m.Seq, c.latest+1)
		}
	}
}

func TestImportRefusesRoomWithHistory(t *testing.T) {
	a := openExportDisk(t, DiskConfig{})
	fillRoom(t, a, "general", 5)
	var buf bytes.Buffer
	if _, err := a.Export("general", &buf); err != nil {
		t.Fatal(err)
	}
	// Into the store it came from, and into one where the room has other
	// messages: refused, nothing changed.
	b := openExportDisk(t, DiskConfig{})
	appendMsg(t, b, codec.Message{Room: "general", From: "zed", Text: text("b's own")})
	for name, d := range map[string]*Disk{"same store": a, "other store": b} {
		before, msgs := everything(t, d, "general")
		_, _, err := d.Import(bytes.NewReader(buf.Bytes()))
		if err == nil || !strings.Contains(err.Error(), "already has") {
			t.Fatalf("%s: Import into a room with messages: %v, want refused", name, err)
		}
		after, msgs2 := everything(t, d, "general")
		if !reflect.DeepEqual(before, after) || !reflect.DeepEqual(msgs, msgs2) {
			t.Fatalf("%s: the refused import changed the room", name)
		}
	}
	// A room whose messages retention removed keeps its seq: refused too.
	c := openExportDisk(t, DiskConfig{})
	fillRoom(t, c, "general", 3)
	c.removeBelow("general", 4)
	if _, _, err := c.Import(bytes.NewReader(buf.Bytes())); err == nil {
		t.Fatal("Import into a room whose messages were removed: accepted")
	}
	// Export of a room without history is an error.
	if _, err := a.Export("nowhere", &bytes.Buffer{}); err == nil {
		t.Fatal("Export of a room without history: no error")
	}
}

func TestImportRefusesBadInput(t *testing.T) {
	const head = `{"version":1,"room":"r","epoch":"e1","latest":3}`
	msg := func(room string, seq int) string {
		return fmt.Sprintf(`{"type":"message","room":%q,"seq":%d,"ts":%d,"from":"a","text":"t"}`, room, seq, 1000+seq)
	}
	ok := strings.Join([]string{head, msg("r", 1), msg("r", 2), msg("r", 3)}, "\n") + "\n"
	// The good input imports, with blank lines and CRLF.
	if _, n, err := openExportDisk(t, DiskConfig{}).Import(strings.NewReader(strings.ReplaceAll(ok, "\n", "\r\n\n"))); err != nil || n != 3 {
		t.Fatalf("good input: %d, %v", n, err)
	}
	var many strings.Builder // more than one transaction's worth, bad at the end
	fmt.Fprintf(&many, `{"version":1,"room":"r","epoch":"e1","latest":%d}`+"\n", importBatch*2+10)
	for i := 1; i <= importBatch*2+5; i++ {
		many.WriteString(msg("r", i) + "\n")
	}
	many.WriteString(msg("r", importBatch*2+7) + "\n")

	for _, c := range []struct{ name, in, want string }{
		{"empty", "", "empty input"},
		{"no header", msg("r", 1) + "\n", "not a history export header"},
		{"not JSON", "hello\n", "not a history export header"},
		{"other version", `{"version":2,"room":"r","epoch":"e1","latest":3}` + "\n", "version 2"},
		{"no epoch", `{"version":1,"room":"r","latest":3}` + "\n", "epoch"},
		{"no room", `{"version":1,"epoch":"e","latest":3}` + "\n", "room"},
		{"other room", strings.Join([]string{head, msg("r", 1), msg("s", 2), msg("r", 3)}, "\n"), `line 3: room "s"`},
		{"descending", strings.Join([]string{head, msg("r", 2), msg("r", 1), msg("r", 3)}, "\n"), "line 3: seq 1 after 2"},
		{"repeated", strings.Join([]string{head, msg("r", 1), msg("r", 1), msg("r", 3)}, "\n"), "line 3: seq 1 after 1"},
		{"gap", strings.Join([]string{head, msg("r", 1), msg("r", 3)}, "\n"), "line 3: seq 3 after 1"},
		{"beyond latest", strings.Join([]string{head, msg("r", 1), msg("r", 2), msg("r", 3), msg("r", 4)}, "\n"), "beyond"},
		{"cut short", strings.Join([]string{head, msg("r", 1), msg("r", 2)}, "\n"), "cut short"},
		{"bad line", strings.Join([]string{head, msg("r", 1), `{"type":"message",`, msg("r", 3)}, "\n"), "line 3"},
		{"no ts", strings.Join([]string{head, `{"type":"message","room":"r","seq":1,"from":"a"}`}, "\n"), "line 2: a message needs room, seq and ts"},
		{"not a message", strings.Join([]string{head, `{"type":"ack","room":"r","seq":1,"ts":1}`}, "\n"), `line 2: type "ack"`},
		{"bad after a commit", many.String(), fmt.Sprintf("line %d: seq %d after %d", importBatch*2+7, importBatch*2+7, importBatch*2+5)},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := openExportDisk(t, DiskConfig{})
			_, n, err := d.Import(strings.NewReader(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Import: %d, %v; want an error with %q", n, err, c.want)
			}
			if n != 0 || keysOf(t, d, "r") != 0 || len(d.Rooms()) != 0 {
				t.Fatalf("refused import stored something: n %d, %d keys, rooms %q", n, keysOf(t, d, "r"), d.Rooms())
			}
			if p, _ := d.Range("r", 0, maxSeq, 10); p.Latest != 0 || p.Epoch != d.epoch {
				t.Fatalf("refused import changed the room: latest %d epoch %q", p.Latest, p.Epoch)
			}
			// The room still takes the good input.
			if _, n, err := d.Import(strings.NewReader(ok)); err != nil || n != 3 {
				t.Fatalf("good input after the refusal: %d, %v", n, err)
			}
		})
	}
}
