package hook

import (
	"fmt"
	"testing"

	"github.com/chatgw/gateway/codec"
	"github.com/chatgw/gateway/gateway/history"
)

// appendTo stores n messages in room, the i-th with text "t<seq>"; every
// third a DM-style message with data.
func appendTo(t *testing.T, st history.Store, room string, n int) {
	t.Helper()
	for range n {
		_, _, _, err := st.Append(room, "alice", "", func(seq uint64, ts int64) []byte {
			m := codec.Message{Room: room, Seq: seq, TS: ts, From: "alice"}
			if seq%3 == 0 {
				m.To, m.Data = "bob", []byte(`{"n":`+fmt.Sprint(seq)+`}`)
			} else {
				s := fmt.Sprintf("t%d", seq)
				m.Text = &s
			}
			return codec.OwnedFrame(func(b []byte) []byte { return codec.AppendMessage(b, &m) })
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestHistoryRange: over a history store, pages come oldest first from
// the cursor, fields decoded from the stored frame; when history dropped
// the messages after the cursor, reading resumes at the oldest held one
// instead of skipping to the newest.
func TestHistoryRange(t *testing.T) {
	st := history.NewMemory(20, nil)
	defer st.Close()
	appendTo(t, st, "r", 12)
	got, err := HistoryRange(st, "r", 4, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[0].Seq != 5 || got[4].Seq != 9 {
		t.Fatalf("page %+v", got)
	}
	for _, m := range got {
		if m.Room != "r" || m.From != "alice" || m.TS == 0 {
			t.Errorf("message %+v", m)
		}
		if m.Seq%3 == 0 && (m.To != "bob" || string(m.Data) != fmt.Sprintf(`{"n":%d}`, m.Seq) || m.Text != nil) {
			t.Errorf("dm %+v", m)
		}
		if m.Seq%3 != 0 && (m.Text == nil || *m.Text != fmt.Sprintf("t%d", m.Seq) || m.Data != nil) {
			t.Errorf("text %+v", m)
		}
	}
	if got, _ := HistoryRange(st, "r", 10, 5); len(got) != 2 || got[1].Seq != 12 {
		t.Errorf("tail %+v", got)
	}
	if got, _ := HistoryRange(st, "r", 12, 5); len(got) != 0 {
		t.Errorf("caught up %+v", got)
	}
	if got, _ := HistoryRange(st, "none", 0, 5); len(got) != 0 {
		t.Errorf("no room %+v", got)
	}

	// 60 messages in a ring of 20: 41..60 held; a cursor at 3 resumes at 41.
	appendTo(t, st, "big", 60)
	got, err = HistoryRange(st, "big", 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[0].Seq != 41 || got[3].Seq != 44 {
		t.Errorf("after eviction: %d from %d, want 4 from 41", len(got), got[0].Seq)
	}
	// Partly evicted window: what is held of it.
	if got, _ := HistoryRange(st, "big", 38, 5); len(got) != 3 || got[0].Seq != 41 {
		t.Errorf("partial window: %+v", got)
	}
}
