package hub

import (
	"testing"
	"time"
)

// The hold rules of budget.go, one by one: each case fails if its rule is
// dropped.
func TestHoldFor(t *testing.T) {
	const ms = int64(time.Millisecond)
	busy := func(cost time.Duration, every time.Duration) *load {
		l := &load{}
		at := time.Unix(0, 0).Add(time.Hour)
		for i := 0; i < 200; i++ {
			end := at.Add(cost)
			l.passed(at, end)
			at = at.Add(every)
		}
		return l
	}
	hot := busy(8*time.Millisecond, 20*time.Millisecond) // 40% busy
	now := hot.last + ms
	cases := []struct {
		name   string
		l      *load
		oldest int64
		now    int64
		budget time.Duration
		want   time.Duration
	}{
		{"busy: start by budget minus pass cost", hot, now, now, 25 * time.Millisecond, 17 * time.Millisecond},
		{"an older message holds for less", hot, now - 10*ms, now, 25 * time.Millisecond, 7 * time.Millisecond},
		{"past its deadline: at once", hot, now - 30*ms, now, 25 * time.Millisecond, 0},
		{"budget 0 never holds", hot, now, now, 0, 0},
		{"a pass costlier than the budget: at once", busy(30*time.Millisecond, 40*time.Millisecond), now, now, 25 * time.Millisecond, 0},
		{"cheap passes never hold", busy(500*time.Microsecond, time.Millisecond), now, now, 25 * time.Millisecond, 0},
		{"a worker busy under a quarter of the time never holds", busy(2*time.Millisecond, 10*time.Millisecond), now, now, 25 * time.Millisecond, 0},
		{"busy long ago is not busy now", hot, now + int64(loadWindow), now + int64(loadWindow), 25 * time.Millisecond, 0},
		{"a fresh worker never holds", &load{}, now, now, 25 * time.Millisecond, 0},
	}
	for _, c := range cases {
		if got := c.l.holdFor(c.oldest, c.now, c.budget); got != c.want {
			t.Errorf("%s: hold %v, want %v (busy %.2f, cost %v)", c.name, got, c.want, c.l.busyAt(c.now), c.l.cost)
		}
	}
	if b := hot.busyAt(hot.last); b < 0.35 || b > 0.45 {
		t.Errorf("8 ms passes every 20 ms: busy %.2f, want about 0.4", b)
	}
}
