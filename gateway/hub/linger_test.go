package hub

import (
	"testing"
	"time"
)

func TestLingerOnlyWhenCoalescingPays(t *testing.T) {
	const most = 50 * time.Millisecond
	for _, c := range []struct {
		name              string
		cost              time.Duration
		delivered, writes int64
		want              time.Duration
	}{
		{"cheap pass", 500 * time.Microsecond, 2000, 500, 0},
		{"one frame per write", 10 * time.Millisecond, 1000, 1000, 0},
		{"a few repeats", 10 * time.Millisecond, 1200, 1000, 0},
		{"hot room", 2 * time.Millisecond, 4000, 2000, 12 * time.Millisecond},
		{"bounded", 20 * time.Millisecond, 6000, 2000, most},
	} {
		if got := lingerFor(c.cost, c.delivered, c.writes, most); got != c.want {
			t.Errorf("%s: lingerFor = %v, want %v", c.name, got, c.want)
		}
	}
	if got := lingerFor(20*time.Millisecond, 6000, 2000, 0); got != 0 {
		t.Errorf("coalescing off: lingerFor = %v, want 0", got)
	}
}
