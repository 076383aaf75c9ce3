package history

import (
	"testing"
)

// TestDisk runs the Store conformance suite against the disk store, each
// case in a fresh directory (a new life: a new epoch).
func TestDisk(t *testing.T) {
	testStore(t, func(t *testing.T, size int) Store {
		d, err := OpenDisk(DiskConfig{Dir: t.TempDir(), MaxCount: size})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		return d
	})
}
