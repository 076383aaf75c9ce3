package history

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/chatgw/gateway/codec"
)

// Cursors are kept across a restart, read as 0 in another epoch of the
// room, list the rooms behind them, and stay out of what iterates rooms:
// Rooms, Export, retention.
func TestDiskCursor(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDisk(DiskConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		appendMsg(t, d, codec.Message{Room: "general", From: "alice", Text: text("hi")})
	}
	for i := 0; i < 2; i++ {
		appendMsg(t, d, codec.Message{Room: "quiet", From: "bob", Text: text("yo")})
	}
	if c, err := d.Cursor("general"); c != 0 || err != nil {
		t.Fatalf("Cursor before any SetCursor = %d, %v; want 0", c, err)
	}
	behind(t, d, "general", "quiet")
	for room, seq := range map[string]uint64{"general": 3, "quiet": 1} {
		if err := d.SetCursor(room, seq); err != nil {
			t.Fatal(err)
		}
	}
	behind(t, d, "quiet")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart: the cursors are read back, and nothing that lists or
	// moves rooms sees their records.
	d = openExportDisk(t, DiskConfig{Dir: dir, MaxCount: 1})
	for room, want := range map[string]uint64{"general": 3, "quiet": 1, "never": 0} {
		if c, err := d.Cursor(room); c != want || err != nil {
			t.Errorf("Cursor(%q) after a restart = %d, %v; want %d", room, c, err, want)
		}
	}
	behind(t, d, "quiet")
	if got := d.Rooms(); !reflect.DeepEqual(got, []string{"general", "quiet"}) {
		t.Errorf("Rooms() = %q, want general and quiet only", got)
	}
	var out bytes.Buffer
	if n, err := d.Export("general", &out); n != 3 || err != nil {
		t.Errorf("Export(general) = %d lines, %v; want 3\n%s", n, err, out.String())
	}
	d.Sweep() // MaxCount 1: retention removes messages, not cursors
	if p, _ := d.Range("general", 0, maxSeq, 10); len(p.Messages) != 1 || p.Latest != 3 {
		t.Fatalf("after Sweep: %d messages, latest %d; want 1, 3", len(p.Messages), p.Latest)
	}
	if c, err := d.Cursor("general"); c != 3 || err != nil {
		t.Errorf("Cursor(general) after Sweep = %d, %v; want 3", c, err)
	}

	// A cursor saved in another life of the room names seqs it no
	// longer holds: it reads as 0, and the room is behind again.
	b := &kvBatch{}
	b.set(cursorKey("general"), append(binary.BigEndian.AppendUint64(nil, 3), "another-epoch"...))
	if err := d.db.commit(b, false); err != nil {
		t.Fatal(err)
	}
	if c, err := d.Cursor("general"); c != 0 || err != nil {
		t.Errorf("Cursor of another epoch = %d, %v; want 0", c, err)
	}
	behind(t, d, "general", "quiet")

	// An imported room keeps its epoch but brings no cursor: it is
	// behind from its first message.
	imp := openExportDisk(t, DiskConfig{})
	if _, _, err := imp.Import(&out); err != nil {
		t.Fatal(err)
	}
	behind(t, imp, "general")
}

func behind(t *testing.T, d *Disk, want ...string) {
	t.Helper()
	got, err := d.Behind()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Behind() = %q, %v; want %q", got, err, want)
	}
}
