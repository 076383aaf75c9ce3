package history

import (
	"fmt"
	"testing"
)

// TestSlot checks the CRC16 against the cluster specification's examples.
func TestSlot(t *testing.T) {
	for key, want := range map[string]int{
		"123456789":            0x31C3,
		"somekey":              11058,
		"{user1000}.following": Slot("user1000"),
		"foo{}{bar}":           Slot("foo{}{bar}"),
		"foo{{bar}}zap":        Slot("{bar"),
		"{hash_tag}:anything":  2515,
		"gw:{general}:s":       Slot("general"),
	} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
}

// TestLayoutSharded: every room's keys and channel share its bucket's
// slot, buckets sit SlotsPerBucket apart, and names parse back.
func TestLayoutSharded(t *testing.T) {
	l := Layout{Sharded: true}
	for b, tag := range bucketTags {
		if s := Slot(tag); s != b*SlotsPerBucket {
			t.Fatalf("bucket %d's tag %q is on slot %d, want %d", b, tag, s, b*SlotsPerBucket)
		}
	}
	used := map[int]int{}
	for i := 0; i < 5000; i++ {
		room := fmt.Sprint("room:", i)
		if i%2 == 0 {
			room = "@user" + fmt.Sprint(i)
		}
		slot := Slot(l.RoomKey(room) + "s")
		if Slot(l.Channel(room)) != slot || Slot(l.RoomKey(room)+"k:u:key") != slot {
			t.Fatalf("%s: keys and channel on different slots", room)
		}
		if slot%SlotsPerBucket != 0 {
			t.Fatalf("%s: slot %d is not a bucket's", room, slot)
		}
		used[slot]++
		for _, suffix := range []string{"c", "s"} {
			if got, ok := l.RoomOf(l.RoomKey(room)+suffix, suffix); !ok || got != room {
				t.Fatalf("RoomOf(%q) = %q, %v", l.RoomKey(room)+suffix, got, ok)
			}
		}
	}
	if len(used) != Buckets {
		t.Fatalf("5,000 rooms fell in %d buckets, want all %d", len(used), Buckets)
	}
	classic := Layout{}
	if classic.RoomKey("general") != "gw:{general}:" || classic.Channel("general") != "gw:{general}:c" {
		t.Fatalf("classic layout changed: %q", classic.RoomKey("general"))
	}
	if got, ok := classic.RoomOf("gw:{a:b}:s", "s"); !ok || got != "a:b" {
		t.Fatalf("classic RoomOf = %q, %v", got, ok)
	}
	if _, ok := l.RoomOf("gw:{general}:c", "c"); ok {
		t.Fatal("the sharded layout read a classic channel")
	}
}
