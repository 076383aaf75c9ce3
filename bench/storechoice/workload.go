package storechoice

import (
	"math/rand/v2"
	"strconv"
)

// Rooms is how many rooms the workload spreads appends over.
const Rooms = 1000

// ZipfS is the skew of room activity: with s=1.1 over 1,000 rooms the
// busiest room takes about 18% of appends and the top 10 about 48%
// (TestWorkload logs it).
const ZipfS = 1.1

// Gen makes the workload's messages; one per goroutine (not safe for
// concurrent use).
type Gen struct {
	r    *rand.Rand
	z    *rand.Zipf
	n    uint64
	body []byte
	key  []byte
}

// NewGen returns a generator seeded with seed.
func NewGen(seed uint64) *Gen {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	return &Gen{r: r, z: rand.NewZipf(r, ZipfS, 1, Rooms-1)}
}

// Room picks a room with the workload's skew.
func (g *Gen) Room() uint32 { return uint32(g.z.Uint64()) }

const lorem = "the quick brown fox jumps over the lazy dog while the gateway " +
	"fans the message out to every member of the room and stores it for later; " +
	"0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ, " +
	"and once more the quick brown fox jumps over the lazy dog"

// Fill sets m's body (a 150-300 byte JSON chat message) and, for one
// message in four, an idempotency key. Room, Seq and Epoch must be set.
// m's slices are reused by the next Fill.
func (g *Gen) Fill(m *Msg) {
	g.n++
	b := g.body[:0]
	b = append(b, `{"type":"message","room":"room-`...)
	b = strconv.AppendUint(b, uint64(m.Room), 10)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, m.Seq, 10)
	b = append(b, `,"from":"user-`...)
	b = strconv.AppendUint(b, g.r.Uint64N(100000), 10)
	b = append(b, `","ts":`...)
	b = strconv.AppendInt(b, 1764633600000+int64(g.n), 10)
	b = append(b, `,"text":"`...)
	// The rest is 87-100 bytes: text of 63-200 makes 150-300 in all.
	tl := 63 + g.r.IntN(138)
	off := g.r.IntN(len(lorem) - tl)
	b = append(b, lorem[off:off+tl]...)
	b = append(b, `"}`...)
	g.body = b
	m.Body = b
	m.Key = nil
	if g.n%4 == 0 {
		k := g.key[:0]
		k = append(k, "c-"...)
		k = strconv.AppendUint(k, g.r.Uint64(), 36)
		g.key = k
		m.Key = k
	}
}
