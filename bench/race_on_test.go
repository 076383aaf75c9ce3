//go:build race

package bench

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts are meaningless under -race. Allocation tests are named
// Test...Allocs: scripts/test.sh runs those again without -race.
const raceEnabled = true
