//go:build race

package codec

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts of pooled paths are meaningless under -race. Name
// allocation tests Test...Allocs: scripts/test.sh runs those again without
// -race (go test -run 'Allocs$'), where a skipped one does run.
const raceEnabled = true
