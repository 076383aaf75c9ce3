// Package storechoice is a one-off comparison, kept for the record, of the
// embedded databases considered for the gateway's durable chat history:
// Pebble (github.com/cockroachdb/pebble/v2), bbolt (go.etcd.io/bbolt) and
// SQLite through modernc.org/sqlite (pure Go, no cgo). README.md beside
// this file has the results, the choice and the reasons.
//
// It is a module of its own (go.mod here) so that the gateway's go.mod
// does not gain three databases' dependencies for a benchmark: the root
// module's ./... patterns (go vet, go test, CI) stop at it, though CI's
// gofmt check still reads it. Nothing in the gateway imports it.
//
// Each candidate implements Store (store.go) over the same workload
// (workload.go): appends of a 150-300 byte JSON message keyed by
// (room, seq), a per-room metadata record (latest seq, epoch) written with
// every append, and an idempotency-key record for one append in four; 1,000
// rooms chosen with a Zipf skew. Reads are "the newest 100 of a room" and
// "the 100 before seq X" in a 10,000-message room. Two durability modes:
// "always" (fsync before the append returns, group commit across
// concurrent writers) and "none" (no fsync). How each candidate groups
// commits is said in its file: pebble.go, bbolt.go, sqlite.go, committer.go.
//
// Run it from this directory, with cgo off as the gateway is built (about
// 4 minutes on 2 cores):
//
//	CGO_ENABLED=0 go test -run=NONE -bench=. -benchtime=1s -count=3 -timeout=30m .
//
// bash run.sh FILE is what made bench/results/2026-12-02-storechoice.txt
// (about 7 minutes): that matrix in three separate passes, since the shared
// machine's fsync latency drifts, then a 10-second run of Pebble,
// bbolt-committer and SQLite at 64 writers; the raw output goes to FILE
// under a header (commands, machine, date, load).
//
// The correctness check of the range code alone:
//
//	go test .
//
// deps.sh counts the modules each candidate pulls in, each from a scratch
// module of its own.
package storechoice
