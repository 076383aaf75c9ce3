// Package limit holds the per-connection rate limiting state: a token bucket
// refilled lazily from timestamps (no timer per connection) and a record of
// recent refusals for closing abusive clients.
//
// Neither type locks: each is owned by one connection, whose frames nbio
// handles one at a time.
package limit

// Bucket is a token bucket of Rate tokens per second up to Burst. The zero
// value is empty; call Init before use. Times are Unix nanoseconds, passed in
// so callers can share one clock reading per frame.
type Bucket struct {
	tokens float64
	last   int64
}

// Init fills the bucket to burst at time now.
func (b *Bucket) Init(burst int, now int64) {
	b.tokens = float64(burst)
	b.last = now
}

// Allow takes one token if there is one, refilling first for the time that
// passed since the last call.
func (b *Bucket) Allow(rate float64, burst int, now int64) bool {
	if now > b.last {
		b.tokens += float64(now-b.last) * rate / 1e9
		if max := float64(burst); b.tokens > max {
			b.tokens = max
		}
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// AbuseCount is how many refusals within AbuseWindow mark a client abusive.
const AbuseCount = 10

// AbuseWindow is the window, in nanoseconds, over which refusals count.
const AbuseWindow int64 = 10e9

// Refusals remembers the times of a connection's latest refusals. Its ring
// is allocated on the first refusal, so well-behaved connections pay one
// pointer.
type Refusals struct {
	ring *[AbuseCount]int64
	next int
}

// Add records a refusal at now and reports whether AbuseCount refusals have
// now happened within AbuseWindow.
func (r *Refusals) Add(now int64) bool {
	if r.ring == nil {
		r.ring = new([AbuseCount]int64)
		for i := range r.ring {
			r.ring[i] = -AbuseWindow - 1
		}
	}
	r.ring[r.next] = now
	r.next = (r.next + 1) % AbuseCount
	// The ring now holds the latest AbuseCount refusals; the oldest of them
	// (or a sentinel, when there were fewer) sits at next.
	return now-r.ring[r.next] <= AbuseWindow
}
