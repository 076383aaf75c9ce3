package gateway

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// unmask, applied to a payload cut anywhere into pieces, gives what a byte
// by byte XOR with the key (RFC 6455 5.3) gives for the whole.
func TestUnmaskInPieces(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := rng.IntN(300)
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		key := [4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}
		want := bytes.Clone(p)
		for i := range want {
			want[i] ^= key[i%4]
		}
		got := bytes.Clone(p)
		k := key
		for off := 0; off < n; {
			m := min(n-off, 1+rng.IntN(20))
			k = unmask(got[off:off+m], k)
			off += m
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("n=%d key=%v: unmasked in pieces differs from the whole", n, key)
		}
	}
}

// A session is allocated per connection: it must stay within the 176-byte
// size class (issue 20 cut it from 192). Over it, every connection pays
// the next class's 16 bytes more.
func TestSessionSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(session{}); n > 176 {
		t.Fatalf("session is %d bytes, over the 176-byte class", n)
	}
}
