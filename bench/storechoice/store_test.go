package storechoice

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var modes = []struct {
	name string
	sync bool
}{{"always", true}, {"none", false}}

const epoch = 7

// TestStores checks each store's append and range code: concurrent writers
// (one room each), then the newest and the before-seq ranges and the meta
// record.
func TestStores(t *testing.T) {
	for _, c := range Candidates {
		for _, mode := range modes {
			t.Run(c.Name+"/"+mode.name, func(t *testing.T) {
				t.Parallel()
				s, err := c.Open(t.TempDir(), mode.sync)
				if err != nil {
					t.Fatal(err)
				}
				defer func() {
					if err := s.Close(); err != nil {
						t.Error(err)
					}
				}()
				const writers, perRoom = 8, 300
				var wg sync.WaitGroup
				for w := range writers {
					wg.Go(func() {
						g := NewGen(uint64(w))
						for seq := uint64(1); seq <= perRoom; seq++ {
							m := Msg{Room: uint32(w * 10), Seq: seq, Epoch: epoch}
							g.Fill(&m)
							if err := s.Append(&m); err != nil {
								t.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				for w := range writers {
					room := uint32(w * 10)
					check := func(what string, from uint64, n int, got []uint64, bodies [][]byte) {
						t.Helper()
						if len(got) != n {
							t.Fatalf("room %d %s: %d messages, want %d", room, what, len(got), n)
						}
						for i, seq := range got {
							if want := from - uint64(i); seq != want {
								t.Fatalf("room %d %s: [%d] is seq %d, want %d", room, what, i, seq, want)
							}
							if l := len(bodies[i]); l < 150 || l > 300 {
								t.Errorf("room %d %s: seq %d body of %d bytes", room, what, seq, l)
							}
						}
					}
					var seqs []uint64
					var bodies [][]byte
					visit := func(seq uint64, b []byte) {
						seqs = append(seqs, seq)
						bodies = append(bodies, slices.Clone(b))
					}
					if err := s.Newest(room, 100, visit); err != nil {
						t.Fatal(err)
					}
					check("newest 100", perRoom, 100, seqs, bodies)
					seqs, bodies = nil, nil
					if err := s.Before(room, 150, 100, visit); err != nil {
						t.Fatal(err)
					}
					check("100 before 150", 149, 100, seqs, bodies)
					seqs, bodies = nil, nil
					if err := s.Before(room, 30, 100, visit); err != nil {
						t.Fatal(err)
					}
					check("100 before 30", 29, 29, seqs, bodies)
					seqs, bodies = nil, nil
					if err := s.Newest(room+1, 100, visit); err != nil || len(seqs) != 0 {
						t.Fatalf("empty room %d: %d messages, %v", room+1, len(seqs), err)
					}
					seq, ep, err := s.Meta(room)
					if err != nil || seq != perRoom || ep != epoch {
						t.Fatalf("room %d meta: seq %d epoch %d (%v), want %d %d", room, seq, ep, err, perRoom, epoch)
					}
				}
				if mode.sync && s.Commits() == 0 {
					t.Errorf("no commits counted")
				}
			})
		}
	}
}

// TestWorkload checks the generator: body sizes and the room skew the
// docs state.
func TestWorkload(t *testing.T) {
	g := NewGen(1)
	hits := make([]int, Rooms)
	keys := 0
	const n = 200000
	for i := range n {
		m := Msg{Room: g.Room(), Seq: uint64(i) + 1}
		g.Fill(&m)
		hits[m.Room]++
		if l := len(m.Body); l < 150 || l > 300 {
			t.Fatalf("body of %d bytes: %s", l, m.Body)
		}
		if m.Key != nil {
			keys++
		}
	}
	if keys != n/4 {
		t.Errorf("%d keys in %d messages", keys, n)
	}
	sorted := slices.Clone(hits)
	slices.Sort(sorted)
	slices.Reverse(sorted)
	top10 := 0
	for _, h := range sorted[:10] {
		top10 += h
	}
	t.Logf("busiest room %.1f%%, top 10 %.1f%%, rooms with no message %d",
		100*float64(sorted[0])/n, 100*float64(top10)/n, Rooms-len(slices.DeleteFunc(sorted, func(h int) bool { return h == 0 })))
}

// BenchmarkFsync is the control: the disk's own cost of durability, one
// goroutine appending 250 bytes to a file and fdatasyncing it, as a WAL
// does. The machine's disk is shared, so its fsync latency drifts: this
// says what it was during each pass.
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rec := make([]byte, 250)
	lat := make([]time.Duration, 0, 1024)
	syscall.Sync()
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if _, err := f.Write(rec); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "syncs/s")
	b.ReportMetric(float64(quantile(lat, 0.50).Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(quantile(lat, 0.99).Nanoseconds())/1e3, "p99-µs")
}

// BenchmarkAppend: appends from 1, 8 and 64 goroutines into a fresh store,
// per candidate and durability mode. msgs/s is appends acknowledged per
// second of wall time; p50-µs and p99-µs are the latency of one Append
// (fsync included in "always"), max-µs the slowest; msgs/commit is appends
// per WAL fsync (pebble) or per write transaction (bbolt, sqlite); stall-%
// (pebble) the share of the run Pebble held writes back in write stalls.
func BenchmarkAppend(b *testing.B) {
	for _, c := range Candidates {
		for _, mode := range modes {
			for _, writers := range []int{1, 8, 64} {
				b.Run(fmt.Sprintf("store=%s/sync=%s/writers=%d", c.Name, mode.name, writers), func(b *testing.B) {
					benchAppend(b, c, mode.sync, writers)
				})
			}
		}
	}
}

func benchAppend(b *testing.B, c Candidate, durable bool, writers int) {
	s, err := c.Open(b.TempDir(), durable)
	if err != nil {
		b.Fatal(err)
	}
	var seqs [Rooms]atomic.Uint64
	lat := make([][]time.Duration, writers)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	commits0 := s.Commits()
	// Start with no dirty pages in the OS: on ext4 an fsync can wait for
	// other files' writeback, so what the benchmark before left unwritten
	// would slow this one down.
	syscall.Sync()
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			g := NewGen(uint64(w) + 1)
			l := make([]time.Duration, 0, b.N/writers+1)
			for next.Add(1) <= int64(b.N) {
				// The gateway assigns seq in memory, under its room lock,
				// before the write; the meta record is a plain overwrite.
				room := g.Room()
				m := Msg{Room: room, Seq: seqs[room].Add(1), Epoch: epoch}
				g.Fill(&m)
				t0 := time.Now()
				if err := s.Append(&m); err != nil {
					failed.CompareAndSwap(nil, &err)
					break
				}
				l = append(l, time.Since(t0))
			}
			lat[w] = l
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	commits := s.Commits() - commits0
	var stalled time.Duration
	if st, ok := s.(interface{ Stalled() time.Duration }); ok {
		stalled = st.Stalled()
		b.ReportMetric(float64(stalled.Milliseconds())/b.Elapsed().Seconds()/10, "stall-%")
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(quantile(all, 0.50).Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(quantile(all, 0.99).Nanoseconds())/1e3, "p99-µs")
	b.ReportMetric(float64(all[len(all)-1].Nanoseconds())/1e3, "max-µs")
	if commits > 0 {
		b.ReportMetric(float64(b.N)/float64(commits), "msgs/commit")
	}
}

// quantile returns the q quantile of sorted (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Range-read data: 1,000 rooms holding 100,000 messages with the append
// workload's skew, and a room of exactly 10,000 (DeepRoom), interleaved as
// they would have arrived.
const (
	rangeMsgs = 100000
	deepRoom  = Rooms // one past the skewed rooms
	deepMsgs  = 10000
	rangeN    = 100
)

// BenchmarkRange: one goroutine reads a range of 100 messages (copying
// each body out, as the gateway would into a frame), warm caches, on a
// store bulk-loaded without fsync and then settled (Pebble flushed, the
// SQLite WAL checkpointed), closed and opened again with the cache named:
// "default" is the library's (Pebble 8 MB block cache, SQLite 2 MB page
// cache), "64MB" holds the whole data set; bbolt reads its mmapped file
// ("mmap": the OS page cache). µs/range is the time per range;
// disk-B/msg the store's size on disk after the load, per message.
//
//   - newest: the newest 100 of a room, over the rooms with at least 100
//     messages in turn.
//   - before: the 100 before a seq between 1,000 and 5,000 in the
//     10,000-message room.
func BenchmarkRange(b *testing.B) {
	type cache struct {
		name string
		open func(dir string) (Store, error)
	}
	const big = 64 << 20
	stores := []struct {
		name   string
		load   func(dir string) (Store, error)
		caches []cache
	}{
		{"pebble", func(dir string) (Store, error) { return openPebble(dir, false, 0) }, []cache{
			{"default", func(dir string) (Store, error) { return openPebble(dir, false, 0) }},
			{"64MB", func(dir string) (Store, error) { return openPebble(dir, false, big) }},
		}},
		{"bbolt", func(dir string) (Store, error) { return OpenBboltCommitter(dir, false) }, []cache{
			{"mmap", func(dir string) (Store, error) { return OpenBboltBatch(dir, false) }},
		}},
		{"sqlite", func(dir string) (Store, error) { return openSQLite(dir, false, 0) }, []cache{
			{"default", func(dir string) (Store, error) { return openSQLite(dir, false, 0) }},
			{"64MB", func(dir string) (Store, error) { return openSQLite(dir, false, big) }},
		}},
	}
	for _, st := range stores {
		b.Run("store="+st.name, func(b *testing.B) {
			dir := b.TempDir()
			s, err := st.load(dir)
			if err != nil {
				b.Fatal(err)
			}
			counts, err := loadRange(s)
			if cerr := s.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				b.Fatal(err)
			}
			perMsg := float64(DirSize(dir)) / float64(rangeMsgs+deepMsgs)
			syscall.Sync()
			var full []uint32
			for room, n := range counts {
				if n >= rangeN {
					full = append(full, uint32(room))
				}
			}
			for _, c := range st.caches {
				b.Run("cache="+c.name, func(b *testing.B) {
					s, err := c.open(dir)
					if err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					if p, ok := s.(*pebbleStore); ok {
						if err := p.Settle(); err != nil {
							b.Fatal(err)
						}
					}
					benchRanges(b, s, full, perMsg)
				})
			}
		})
	}
}

func benchRanges(b *testing.B, s Store, full []uint32, diskPerMsg float64) {
	buf := make([]byte, 0, 64<<10)
	got := 0
	visit := func(_ uint64, body []byte) {
		buf = append(buf, body...)
		got++
	}
	run := func(b *testing.B, read func(i int) error) {
		b.ReportAllocs()
		start := time.Now()
		for i := 0; b.Loop(); i++ {
			buf, got = buf[:0], 0
			if err := read(i); err != nil {
				b.Fatal(err)
			}
			if got != rangeN {
				b.Fatalf("range of %d messages, want %d", got, rangeN)
			}
		}
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N)/1e3, "µs/range")
		b.ReportMetric(diskPerMsg, "disk-B/msg")
	}
	b.Run("read=newest", func(b *testing.B) {
		run(b, func(i int) error { return s.Newest(full[i%len(full)], rangeN, visit) })
	})
	b.Run("read=before", func(b *testing.B) {
		g := NewGen(99)
		run(b, func(int) error {
			return s.Before(deepRoom, 1000+g.r.Uint64N(4001), rangeN, visit)
		})
	})
}

// loadRange fills s with the range-read data and returns each room's
// message count.
func loadRange(s Store) ([]int, error) {
	counts := make([]int, Rooms+1)
	g := NewGen(42)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	sem := make(chan struct{}, 256) // concurrent appends, so the grouping stores commit in bulk
	deepEvery := (rangeMsgs + deepMsgs) / deepMsgs
	for i := range rangeMsgs + deepMsgs {
		room := uint32(deepRoom)
		if i%deepEvery != 0 || counts[deepRoom] == deepMsgs {
			room = g.Room()
		}
		counts[room]++
		m := &Msg{Room: room, Seq: uint64(counts[room]), Epoch: epoch}
		g.Fill(m)
		m.Body, m.Key = slices.Clone(m.Body), slices.Clone(m.Key)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := s.Append(m); err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	if counts[deepRoom] != deepMsgs {
		return nil, fmt.Errorf("deep room has %d messages", counts[deepRoom])
	}
	switch s := s.(type) {
	case *pebbleStore:
		return counts, s.Settle()
	case *sqliteStore:
		return counts, s.Checkpoint()
	}
	return counts, nil
}
